"""Masking of personal data in text that is kept (question logs).

Residents sometimes type their phone number, My Number (12 digits), or e-mail address into a
question. Before a question is stored, these are replaced with 「＊＊＊」:

- any run of 7 or more digits, also when split by hyphens, spaces or brackets
  (090-1234-5678, ０３（１２３４）５６７８, 1234 5678 9012), in half- or full-width digits;
- e-mail addresses (half- or full-width, with @ or ＠).

Shorter numbers (4-digit PINs are not stored either way, dates, amounts, "3回") are kept so that
staff can still read what was asked. Dates written with hyphens (2024-12-03) have 8 digits and
are masked too: we prefer masking too much to keeping a phone number.
"""

from __future__ import annotations

import re

from faq.textfold import without_surrogates

MASK = "＊＊＊"
MIN_DIGITS = 7

_DIGIT = "[0-9０-９]"
# One or two separator characters between digit groups: ASCII and full-width hyphens, the
# long vowel mark (often typed as a hyphen), spaces and brackets.
_SEPARATOR = "[-‐‑‒–—―−－ーｰ ()（）\u3000]"
_NUMBER_RE = re.compile(rf"[(（]?{_DIGIT}+(?:{_SEPARATOR}{{1,2}}{_DIGIT}+)*")
_EMAIL_CHAR = "[A-Za-z0-9Ａ-Ｚａ-ｚ０-９._%+\\-＿．]"
_DOMAIN_CHAR = "[A-Za-z0-9Ａ-Ｚａ-ｚ０-９\\-－]"
_EMAIL_RE = re.compile(rf"{_EMAIL_CHAR}+[@＠]{_DOMAIN_CHAR}+(?:[.．]{_DOMAIN_CHAR}+)+")
_DIGIT_RE = re.compile(_DIGIT)


def _mask_number(match: re.Match[str]) -> str:
    if len(_DIGIT_RE.findall(match.group(0))) >= MIN_DIGITS:
        return MASK
    return match.group(0)


def redact(text: str) -> str:
    """The text with phone numbers, long digit runs and e-mail addresses masked (and without
    lone surrogates, which no database would store)."""
    text = _EMAIL_RE.sub(MASK, without_surrogates(text))
    return _NUMBER_RE.sub(_mask_number, text)
