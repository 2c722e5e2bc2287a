"""Japanese text normalisation for FAQ matching.

The same analysis runs on FAQ text and on residents' questions, so that however a question is
typed (full-width, katakana or hiragana, dialect, typos) both sides meet in the same forms:

- `fold`: NFKC (full-width digits and letters, half-width kana), lower case, one kind of long
  vowel mark and space, no control characters.
- `kana_fold`: katakana → hiragana, small kana → large, long vowel marks dropped. Seniors often
  type without small kana (しゆうせい) or long vowels (こど), so the reading channel ignores both.
- `analyze`: SudachiPy split (mode C, plus mode A parts of compounds), normalised forms
  (引越し/引っ越し → 引っ越し, 忘れてしもた → 忘れる), function words and question frames dropped,
  synonyms mapped to one canonical term, and the kana reading of the whole text.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from faq.synonyms import SynonymTable
from faq.textfold import fold, to_hiragana

__all__ = ["Analysis", "TextNormalizer", "char_ngrams", "fold", "is_kana", "kana_fold"]

# Longest text we analyse: a 4,096-character Telegram message is cut here; the question is
# practically always in the first lines and Sudachi's cost grows with length.
MAX_ANALYZED_CHARS = 1000

_SMALL_TO_LARGE = str.maketrans("ぁぃぅぇぉっゃゅょゎゕゖ", "あいうえおつやゆよわかけ")
_KANA_RE = re.compile(r"^[\u3041-\u309f\u30a0-\u30ffー]+$")
_WORD_CHAR_RE = re.compile(r"[\w\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")
# Everything but letters, digits, kana and kanji; the kana block's punctuation (・ ゠) too.
_NON_WORD_RE = re.compile(r"[^\w\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]+|[_\u30fb\u30a0]")

# Parts of speech that carry no topic: particles, auxiliaries, punctuation, interjections,
# pronouns (これ, どこ, いつ), prefixes (お, ご) and conjunctions.
DROPPED_POS = frozenset(
    {"助詞", "助動詞", "補助記号", "空白", "記号", "感動詞", "代名詞", "接頭辞", "接続詞"}
)

# Parts of speech with no sound: spaces, punctuation, symbols.
SILENT_POS = frozenset({"補助記号", "空白", "記号"})

# Normalised forms that only frame a question or a request ("教えてください", "どうすればいい",
# "わからん", "〜したいんやけど"). They appear in every FAQ question, so they would only add noise.
FRAME_TERMS = frozenset(
    {
        "為る",
        "有る",
        "居る",
        "成る",
        "言う",
        "思う",
        "下さる",
        "呉れる",
        "貰う",
        "頂く",
        "致す",
        "御座る",
        "遣る",
        "仕舞う",
        "教える",
        "知る",
        "分かる",
        "解る",
        "良い",
        "宜しい",
        "欲しい",
        "どう",
        "如何",
        "何",
        "事",
        "物",
        "方",
        "の",
        "よう",
        "様",
        "ため",
        "為",
        "とき",
        "時",
        "ところ",
        "所",
        "ちょっと",
        "一寸",
        "すみません",
        "済む",
        "御願い",
        "お願い",
        "願う",
        "問う",
        "尋ねる",
        "聞く",
        "訊く",
        "見る",
        "今",
        "もう",
        "まだ",
        "ぜひ",
        "是非",
        "やはり",
        "矢張り",
        "ええ",
        "あかん",
        "ない",
        "無い",
        "れる",
        "られる",
        "せる",
        "ほしい",
        "いい",
        "よい",
        "ある",
        "いる",
        "する",
        "なる",
        "おる",
        "どない",
        "なんで",
        "何で",
        "どうして",
        "どうやって",
        "やり方",
        "遣り方",
        "仕方",
        "方法",
        "手順",
        "場合",
        "行く",
        "来る",
        "出来る",
        "できる",
        "さん",
        "ください",
        "もらう",
        "くれる",
        "わかる",
        "しまう",
        "みる",
        "ちゃう",
        # 〜について, 〜に関して, 〜のこと
        "つく",
        "付く",
        "関する",
        "こと",
        "もの",
        "構う",
        "へん",
    }
)


# Kansai/Harima forms that Sudachi (trained on standard Japanese) misreads, rewritten to the
# standard forms before analysis. Each rule is a grammatical pattern, not a phrase:
# 忘れてしもた → 忘れてしまった (otherwise もた is read as 持つ), とれへん → とれない,
# 入っとる → 入っている, ほしいねん → ほしい, なんぼ → いくら.
DIALECT_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"(て|で)(しも|も)う?た", r"\1しまった"),
        (r"(し|ちゃ|じゃ)も(う)?た", r"\1まった"),
        (r"でけへん|でけん(?=[。、？！?!\s]|$)", "できない"),
        (r"(せえ|せー|しい|しー)(へん|ひん)", "しない"),
        (r"(こえ|こー|けえ|けー)(へん|ひん)", "こない"),
        (r"かまへん|かまわへん", "かまわない"),
        (r"(?<=[れけらかまさたなわがばえべめてせ])へん", "ない"),
        (r"(?<=[っい])とる", "ている"),
        (r"(?<=[ん])どる", "でいる"),
        (r"(?<=[っい])とった", "ていた"),
        (r"ねん(?=[。、？！?!\sな]|$)", ""),
        (r"なんぼ", "いくら"),
        (r"(?<![一-龥])(はよ|早よ)(?=[う]?[^う])", "早く"),
        (r"ほんま", "本当"),
        (r"(?<=[いきしちにみりぎじびぴ])たない", "たくない"),
    )
)


# One search tells whether any rule applies; most texts (every FAQ answer) need none, and
# fifteen substitutions per text were a tenth of the index build.
_ANY_DIALECT_RULE = re.compile("|".join(f"(?:{pattern.pattern})" for pattern, _ in DIALECT_RULES))


def standardize_dialect(text: str) -> str:
    if _ANY_DIALECT_RULE.search(text) is None:
        return text
    for pattern, replacement in DIALECT_RULES:
        text = pattern.sub(replacement, text)
    return text


def kana_fold(text: str) -> str:
    """Reading-level folding: hiragana, no small kana, no long vowels, no punctuation."""
    text = to_hiragana(text).translate(_SMALL_TO_LARGE).replace("ー", "")
    return _NON_WORD_RE.sub("", text)


# Words and their readings repeat endlessly across an FAQ: remember the short ones.
_short_kana_fold = lru_cache(maxsize=65_536)(kana_fold)


@lru_cache(maxsize=65_536)
def is_kana(text: str) -> bool:
    return bool(_KANA_RE.match(text))


def char_ngrams(text: str, n: int = 2) -> list[str]:
    """Character n-grams; a text shorter than n gives itself (so one-kanji words still count)."""
    if not text:
        return []
    if len(text) <= n:
        return [text]
    return [text[i : i + n] for i in range(len(text) - n + 1)]


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the engine needs of one text."""

    folded: str  # fold(): for fuzzy comparison and display-free matching
    terms: tuple[str, ...]  # content words: normalised, hiragana-folded, synonyms mapped
    reading: str  # kana_fold() of the reading of the whole text
    # (term, kana_fold(reading)) of words not written in kana: lets the engine recognise
    # 暗証番号 in a question typed as あんしょうばんごう.
    term_readings: tuple[tuple[str, str], ...] = ()
    # Terms present only as parts of a compound (住民, 票 of 住民票), never as a word of
    # their own: a question weighs them less, or one compound would count three times.
    parts: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Collected:
    """What the analysis of one text gathers, segment by segment."""

    terms: list[str] = field(default_factory=list)
    readings: list[str] = field(default_factory=list)
    term_readings: list[tuple[str, str]] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)  # terms added as parts of a compound


@lru_cache(maxsize=1)
def _sudachi_dictionary() -> Any:
    from sudachipy import Dictionary

    # The core dictionary ships inside the sudachidict-core wheel: nothing is downloaded.
    return Dictionary(dict="core")


class TextNormalizer:
    """Analyses FAQ text and questions the same way. Build once and share (thread-unsafe)."""

    def __init__(self, synonyms: SynonymTable | None = None) -> None:
        from sudachipy import SplitMode

        self._split_c = SplitMode.C
        self._split_a = SplitMode.A
        dictionary = _sudachi_dictionary()
        # SudachiPy 0.7 renamed create() to tokenizer(); 0.6 only has create().
        make_tokenizer = getattr(dictionary, "tokenizer", None) or dictionary.create
        self._tokenizer = make_tokenizer(SplitMode.C)
        self.synonyms = synonyms if synonyms is not None else SynonymTable.default()
        # Normalised forms repeat endlessly across texts; remember what each one became.
        self._term_cache: dict[str, str | None] = {}

    def analyze(self, text: str) -> Analysis:
        folded = fold(text[: MAX_ANALYZED_CHARS * 2])[:MAX_ANALYZED_CHARS]
        if not folded:
            return Analysis(folded="", terms=(), reading="")
        out = _Collected()
        for segment, canonical in self.synonyms.segments(standardize_dialect(folded)):
            if canonical is None:
                self._analyze_free_text(segment, out)
            else:
                self._analyze_known_word(segment, canonical, out)
        only_parts: frozenset[str] = frozenset()
        if out.parts:
            as_part = Counter(out.parts)
            as_term = Counter(out.terms)
            only_parts = frozenset(t for t, n in as_part.items() if as_term[t] == n)
        return Analysis(
            folded=folded,
            terms=tuple(out.terms),
            reading=kana_fold("".join(out.readings)),
            term_readings=tuple(out.term_readings),
            parts=only_parts,
        )

    def _analyze_free_text(self, text: str, out: _Collected) -> None:
        terms, readings, term_readings = out.terms, out.readings, out.term_readings
        for morpheme in self._tokenize(text):
            surface = morpheme.surface()
            pos = morpheme.part_of_speech()[0]
            if pos in SILENT_POS:
                continue  # Sudachi reads spaces and brackets as キゴウ: no reading for them
            readings.append(surface if is_kana(surface) else morpheme.reading_form())
            if pos in DROPPED_POS:
                continue
            term = self._term(morpheme.normalized_form())
            if term is None:
                continue
            terms.append(term)
            # Nouns only: their reading does not change with conjugation (入っ reads はいっ).
            if pos == "名詞" and not is_kana(surface):
                term_readings.append((term, _short_kana_fold(morpheme.reading_form())))
            # Compounds (暗証番号) also count by their parts (暗証, 番号), so that a question
            # with only a part still meets them.
            if len(surface) < 3 or is_kana(surface):
                continue
            parts = morpheme.split(self._split_a)
            if len(parts) > 1:
                for part in parts:
                    if part.part_of_speech()[0] in DROPPED_POS:
                        continue
                    sub = self._term(part.normalized_form())
                    if sub is not None and sub != term:
                        terms.append(sub)
                        out.parts.append(sub)
                        if part.part_of_speech()[0] == "名詞":
                            term_readings.append((sub, _short_kana_fold(part.reading_form())))

    def _analyze_known_word(self, text: str, canonical: str, out: _Collected) -> None:
        """A word of the synonym table (already canonical): one term, plus its own parts.

        Sudachi may split such a word (マイナ + ポータル); its parts must not be mapped as
        synonyms on their own, or マイナポータル would count as マイナンバーカード.
        """
        terms, readings, term_readings = out.terms, out.readings, out.term_readings
        term = sys.intern(to_hiragana(canonical))
        terms.append(term)
        first_reading = len(readings)
        for morpheme in self._tokenize(text):
            pos = morpheme.part_of_speech()[0]
            if pos in SILENT_POS:
                continue
            surface = morpheme.surface()
            readings.append(surface if is_kana(surface) else morpheme.reading_form())
            if pos in DROPPED_POS:
                continue
            surface = morpheme.surface()
            pieces = [morpheme]
            if len(surface) >= 3 and not is_kana(surface):
                pieces.extend(morpheme.split(self._split_a))
            for piece in pieces:
                part = to_hiragana(fold(piece.normalized_form()))
                if (
                    part != term
                    and part not in terms
                    and part not in FRAME_TERMS
                    and self.synonyms.canonical_term(part) == part
                    and not (len(part) == 1 and is_kana(part))
                ):
                    terms.append(sys.intern(part))
                    out.parts.append(part)
                    if piece.part_of_speech()[0] == "名詞" and not is_kana(piece.surface()):
                        term_readings.append((part, _short_kana_fold(piece.reading_form())))
        if not is_kana(text):
            term_readings.append((term, kana_fold("".join(readings[first_reading:]))))

    def _tokenize(self, text: str) -> list[Any]:
        try:
            return list(self._tokenizer.tokenize(text))
        except Exception:  # Sudachi refuses some inputs (e.g. over its byte limit)
            return list(self._tokenizer.tokenize(text[:200]))

    def _term(self, normalized_form: str) -> str | None:
        try:
            return self._term_cache[normalized_form]
        except KeyError:
            pass
        if len(self._term_cache) > 200_000:
            self._term_cache.clear()
        term = self._compute_term(normalized_form)
        self._term_cache[normalized_form] = term
        return term

    def _compute_term(self, normalized_form: str) -> str | None:
        form = to_hiragana(fold(normalized_form))
        if not form or form in FRAME_TERMS or not _WORD_CHAR_RE.search(form):
            return None
        form = self.synonyms.canonical_term(form)
        if form in FRAME_TERMS:
            return None
        # One hiragana character alone is almost always a mis-split fragment, not a topic.
        if len(form) == 1 and is_kana(form):
            return None
        return sys.intern(form)
