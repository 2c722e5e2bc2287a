"""Character-level folding shared by the normaliser and the synonym table."""

from __future__ import annotations

import re
import unicodedata

# Control characters and line/paragraph separators separate words: they become spaces.
_CONTROL_RE = re.compile(r"[\u0000-\u001f\u007f-\u009f\u2028\u2029]")
# Invisible characters (zero-width, joiners, direction marks, BOM) are not separators at all:
# 暗証\u200b番号 is still 暗証番号.
_INVISIBLE_RE = re.compile(r"[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
# Lone surrogates (half of a UTF-16 pair, e.g. from "\ud800" in JSON) are no characters, and
# Sudachi and UTF-8 refuse them: they are dropped.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
# Dashes and bars people type for the long vowel mark: ‐ ‑ ‒ – — ― − ー ｰ
_LONG_VOWEL_RE = re.compile(r"[\u2010-\u2015\u2212\u30fc\uff70]")
_SPACE_RE = re.compile(r"\s+")
_KATAKANA_TO_HIRAGANA = {code: code - 0x60 for code in range(0x30A1, 0x30F7)}
_HIRAGANA_TO_KATAKANA = {code: code + 0x60 for code in range(0x3041, 0x3097)}


def without_surrogates(text: str) -> str:
    """The text without lone surrogates, so that it encodes as UTF-8 (Sudachi, databases)."""
    return _SURROGATE_RE.sub("", text)


def fold(text: str) -> str:
    """NFKC, lower case, one long-vowel mark, single spaces, no control characters."""
    text = unicodedata.normalize("NFKC", without_surrogates(text))
    text = _INVISIBLE_RE.sub("", text)
    text = _CONTROL_RE.sub(" ", text)
    text = _LONG_VOWEL_RE.sub("ー", text)
    text = _SPACE_RE.sub(" ", text)
    return text.strip().lower()


def to_hiragana(text: str) -> str:
    return text.translate(_KATAKANA_TO_HIRAGANA)


def to_katakana(text: str) -> str:
    return text.translate(_HIRAGANA_TO_KATAKANA)
