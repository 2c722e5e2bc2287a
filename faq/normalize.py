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
from faq.textfold import fold, to_hiragana, to_katakana

__all__ = [
    "ASK_KINDS",
    "Analysis",
    "TextNormalizer",
    "ask_kinds",
    "char_ngrams",
    "final_sentence",
    "first_sentence",
    "fold",
    "is_kana",
    "kana_fold",
]

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


# Negation: the auxiliaries ない, ず (ません, 行けん) and the adjective 無い after a verb
# (使いたくない). Verbs whose negation only frames the question or states a duty
# (わからない, 知らない, いけない, ならない, かまわない, すみません, かもしれない) are not
# negated content (see `_NegationTracker`).
NEGATIONS = frozenset({"ない", "無い", "ず", "ぬ"})
NEGATION_POS = frozenset({"助動詞", "形容詞"})
# A negation followed by these states a duty (しないといけない, せなあかん), not a negation.
OBLIGATIONS = frozenset({"行く", "成る"})
OBLIGATION_WORDS = frozenset({"駄目", "だめ"})  # あかん is rewritten to いけない first
PREDICATE_POS = frozenset({"動詞", "形容詞"})
NEGATED_FRAMES = frozenset(
    {"分かる", "解る", "知る", "知れる", "行く", "成る", "構う", "済む", "仕方", "仕様", "違い"}
)


# What a question asks, apart from its topic: siblings on one topic (the fee, the place, the
# deadline, what to bring for the same procedure) share their words and differ in this. Cues
# are general civic-question vocabulary: Sudachi normalised forms of single words, and surface
# patterns (kanji and kana spellings, since Sudachi mis-splits kana-only text) for phrases.
ASK_KINDS = (
    "cost",
    "place",
    "time",
    "needs",
    "how",
    "check",
    "trouble",
    "who",
    "what",
)
ASK_FORMS: dict[str, str] = {
    **dict.fromkeys(
        ("幾ら", "費用", "料金", "手数料", "お金", "金額", "無料", "有料", "只", "値段", "代金"),
        "cost",
    ),
    **dict.fromkeys(("何処", "どこ", "どちら", "場所", "窓口"), "place"),
    **dict.fromkeys(
        (
            "いつ",
            "何時",
            "期間",
            "何日",
            "時間",
            "曜日",
            "即日",
            "締め切り",
            "締切",
            # when a counter or a service is open
            "受付時間",
            "営業時間",
            "平日",
            "土日",
            "土日祝日",
            "土曜",
            "土曜日",
            "日曜",
            "日曜日",
            "祝日",
            "休日",
            "夜間",
            "深夜",
            "早朝",
            "年末",
            "年始",
            "年末年始",
            "正月",
            "大晦日",
        ),
        "time",
    ),
    **dict.fromkeys(("確認", "確かめる", "調べる", "照会"), "check"),
    **dict.fromkeys(("必要", "持ち物", "要る", "書類", "用意", "準備", "必須", "義務"), "needs"),
    **dict.fromkeys(
        ("方法", "手続き", "遣り方", "仕方", "手順", "使い方", "申し込み方", "流れ"), "how"
    ),
    **dict.fromkeys(
        (
            "忘れる",
            "無くす",
            "なくす",
            "失くす",
            "紛失",
            "落とす",
            "盗む",
            "盗難",
            "エラー",
            "壊れる",
            "故障",
            "間違える",
            "間違い",
            "困る",
        ),
        "trouble",
    ),
    **dict.fromkeys(("代理", "代わり", "代わる", "本人以外", "委任", "誰", "付き添い"), "who"),
}
# Cues that are one only as this part of speech: 申し込み方 and 入れ方 ask for a way to do
# something, 申し込みたい asks how to.
ASK_FORMS_BY_POS: dict[tuple[str, str], str] = {("方", "接尾辞"): "how", ("たい", "助動詞"): "how"}
# Phrases, matched on the folded text (kanji and kana spellings).
ASK_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile("|".join(patterns)))
    for kind, patterns in (
        (
            "cost",
            ("いくら", "ひよう", "りょうきん", "てすうりょう", "おかね", "むりょう", "ねだん"),
        ),
        # どこ(か)いった is "it went missing", not a question of place.
        (
            "place",
            ("どこ(?!(?:か|に|へ)?(?:いった|行った))", "どちら", "ばしょ", "窓口", "まどぐち"),
        ),
        (
            "time",
            ("なんにち", "なんじ", "じかん", "ようび", "ど[のれ][くぐ]らい", "なんねん", "何年")
            + ("何か月", "何ヶ月", "なんかげつ", "そくじつ", "今日中", "きょうじゅう"),
        ),
        (
            "needs",
            ("ひつよう", "もちもの", "持って[い行]", "もってい?[くきけか]", "しょるい", "いります")
            + ("(?:何|なに|なん)が?(?:いる|いり|要)",)
            # duties: 作らないといけない, 持ってなくちゃだめ, せなあかん
            + ("(?:な|ない|なく)(?:と|ちゃ|きゃ|ければ)(?:いけ|だめ|ダメ|あかん|なら)", "なあかん"),
        ),
        (
            "how",
            (
                "どうやって",
                "どうやる",
                "どうす(?:れば|る)",
                "どうし(?:ます|たら|て)",
                "どない[しす]",
            )
            + ("ほうほう", "やりかた", "しかた", "てつづき", "てじゅん", "つかいかた")
            # also inside compounds (登録方法, 転入手続き); 〜するには？ asks how to
            + ("方法", "手続", "手順", "には[?？]*$"),
        ),
        (
            "check",
            ("たしかめ", "しらべ")
            # 〜か(どうか)わからない: whether something holds (not 何か, どこか, 誰かわからない)
            + ("(?<![にこつれ何誰])か(?:どうか)?(?:わから|分から|わかん|しら[なん]|知ら[なん])",),
        ),
        (
            "trouble",
            ("わすれ", "なくし", "なくなっ", "おとし", "ぬすま", "こわれ", "まちが")
            + ("ど[こっ]か?(?:に|へ)?(?:いった|行った)",),
        ),
        ("who", ("だいり", "かわりに", "ほんにんいがい", "いにん", "だれ", "つきそ")),
        (
            "what",
            ("(?<![こも])とは", "って(?:何|なに|なん(?!で))", "どんなもの", "どういう(?:もの|こと)")
            + ("(?:は|って)(?:何|なに|なん)(?:です|でしょう|なの|[?？]|$)",)
            + ("(?:何|なに|なん)のこと", "(?:何|なに)に(?:使|つか)", "(?:何|なに)ができ"),
        ),
    )
)


# Kansai/Harima forms that Sudachi (trained on standard Japanese) misreads, rewritten to the
# standard forms before analysis. Each rule is a grammatical pattern, not a phrase:
# 忘れてしもた → 忘れてしまった (otherwise もた is read as 持つ), とれへん → とれない,
# 入っとる → 入っている, ほしいねん → ほしい, なんぼ → いくら, あかん → いけない
# (Sudachi splits あかん into あ + かん). Most rules need a kanji or a verb ending before them,
# since the same kana occur inside standard words typed in kana (さいとう, ほけんの, へんな).
# What a sentence may go on with after a Harima progressive (〜とう) or a negative 〜ん.
_CLAUSE_ENDINGS = r"[。、？！?!\s]|$|か|や|ね|よ|わ|で|けど|から|って"
_CLAUSE_END = rf"(?={_CLAUSE_ENDINGS})"
_PROGRESSIVE_END = rf"(?={_CLAUSE_ENDINGS}|の|ん|な)"
DIALECT_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"(て|で)(しも|も)う?た", r"\1しまった"),
        (r"(し|ちゃ|じゃ)も(う)?た", r"\1まった"),
        (r"でけへん|でけん(?=[。、？！?!\s]|$)", "できない"),
        (r"(せえ|せー|しい|しー)(へん|ひん)", "しない"),
        (r"(こえ|こー|けえ|けー)(へん|ひん)", "こない"),
        (r"かまへん|かまわへん", "かまわない"),
        # 〜まへん is the polite 〜ません (ありまへん), not ま + ない
        (r"まへん", "ません"),
        # あらへん, あれへん: there is none (あれ would be read as the pronoun)
        (r"あ[られ]へん", "ない"),
        # one-kanji verbs, whose stem vowel is drawn out: 来えへん, 出えへん, 見いひん, 来ーへん
        (
            r"([見出寝来着居似煮])(?:(?<=[出寝来])え|(?<=[見着居似煮来])い|ー|(?<=来)や)?"
            r"(?:へん|ひん)",
            r"\1ない",
        ),
        (r"([れけらかさたなわがばえべめてせ])(?:へん|ひん)", r"\1ない"),
        # Kyoto-style 〜ひん after an い-row stem written with its kanji: 起きひん, 借りひん
        (r"([一-龥][きぎしじちにびみり])ひん", r"\1ない"),
        # 〜ん after an e-row stem (potential or ichidan verb) that Sudachi takes as one word:
        # 読めん, 使えん; not 何べん or 何ねん
        (r"((?!何)[一-龥][えけげせべめれ])ん(?=かっ)", r"\1な"),
        (rf"((?!何)[一-龥][えけげせべめれ])ん{_CLAUSE_END}", r"\1ない"),
        # わからんくなった, できんくて: the negative ん conjugated like ない
        (r"([かがさたなばまらわえけげせてねべめれきぎじちにびみり])んく(?=な|て)", r"\1なく"),
        (r"(?<=[っい])とる", "ている"),
        (r"(?<=[ん])どる", "でいる"),
        (r"(?<=[っい])とった", "ていた"),
        # Harima progressive 〜とう/〜どう (= 〜ている), which Sudachi reads as たい (want):
        # 持っとう, 書いとう, 忘れとう, 登録しとう, 住んどう
        (
            r"(っ|[一-龥]い|[一-龥][えけげせてねべめれきぎじちにびみり]|[さら]れ|[見出寝来着居]"
            rf"|[^し]し)とう{_PROGRESSIVE_END}",
            r"\1ている",
        ),
        (rf"([一-龥]ん)どう{_PROGRESSIVE_END}", r"\1でいる"),
        # 〜てはる (honorific 〜ている): してはる is otherwise read as そして + はる
        (r"([てで])は(?:(る)(?!か[にな])|っ(?=[たて])|り(?=ま[すしせ]))", r"\1い\2"),
        # the tag やん after a noun (無料やん), otherwise read as a suffix like ちゃん
        (rf"([一-龥ァ-ヴー])やん{_CLAUSE_END}", r"\1じゃん"),
        (r"ねん(?=[。、？！?!\sな]|$)", ""),
        (r"なんぼ", "いくら"),
        (r"(?<![一-龥])(はよ|早よ)(?=[う]?[^う])", "早く"),
        (r"ほんま", "本当"),
        # 〜なあかん (must): as ないけない, Sudachi splits 行かないけない into 行 + か + な
        (r"([あかがさたなばまらわせしこ来])なあかん", r"\1なければいけない"),
        (r"あかん(?!かっ)", "いけない"),
        (r"(?<=[いきしちにみりぎじびぴ])たない", "たくない"),
        # the past of every negative above: わからへんかった → わからないかった → わからなかった
        (r"ないかった", "なかった"),
    )
)


# One search tells whether any rule may apply; most texts (every FAQ answer) need none, and
# one substitution per rule and text was a tenth of the index build. Every rule's match
# contains one of these cues (tests check it). Searching for the rules' own patterns joined
# (most begin with a lookbehind or a character class) took ten times as long.
_DIALECT_CUES = re.compile(
    "もう?た|でけ|へん|ひん|[一-龥][えけげせべめれ]ん|んく|とる|どる|とった|とう|んどう"
    "|は[るっり]|やん|ねん|なんぼ|はよ|早よ|ほんま|あかん|たない|ないかった"
)


# Hiragana runs with a long-vowel mark, where loanwords typed in hiragana are (かーど).
_HIRAGANA_LOANWORD_RUN_RE = re.compile(r"[\u3041-\u3096ー]*[\u3041-\u3096]ー[\u3041-\u3096ー]*")
_MAX_LOANWORD_LENGTH = 10
_MAX_LOANWORD_MARKS = 20


def standardize_dialect(text: str) -> str:
    if _DIALECT_CUES.search(text) is None:
        return text
    for pattern, replacement in DIALECT_RULES:
        text = pattern.sub(replacement, text)
    return text


# kana_fold's letters in one table: katakana → hiragana, small → large, ー dropped (one pass
# over the text instead of three; it runs on every reading and every folded text).
_KANA_FOLD_TABLE: dict[int, int | None] = {
    **{code: _SMALL_TO_LARGE.get(code - 0x60, code - 0x60) for code in range(0x30A1, 0x30F7)},
    **_SMALL_TO_LARGE,
    ord("ー"): None,
}


def kana_fold(text: str) -> str:
    """Reading-level folding: hiragana, no small kana, no long vowels, no punctuation."""
    return _NON_WORD_RE.sub("", text.translate(_KANA_FOLD_TABLE))


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
    if n == 2:  # the engine's case; pairs of letters are a third faster than slices
        return [first + second for first, second in zip(text, text[1:], strict=False)]
    return [text[i : i + n] for i in range(len(text) - n + 1)]


# Where a sentence ends: 。！？ (either width) and line breaks. Not "." (decimals, URLs) nor
# clause endings (〜けど、〜が、): splitting there too was measured, and changed more
# questions for the worse than for the better (see `RankingParameters.earlier_sentence_weight`).
_SENTENCE_END_RE = re.compile(r"[。！？!?\n\r]+")


def final_sentence(text: str) -> str | None:
    """The last sentence of a text of two or more sentences; None for a single sentence.

    A resident's long message usually tells its story first and asks last
    (…止めてもらったカードが見つかりました。再び使う手続きを教えてください).
    """
    sentences = [s for s in _SENTENCE_END_RE.split(text) if s.strip()]
    return sentences[-1] if len(sentences) >= 2 else None


def first_sentence(text: str) -> str:
    """The first sentence of a text (all of it if it has one sentence; "" if blank).

    An FAQ answer's first sentence usually restates what the entry is about
    (写真は次の条件に合うものを使ってください。…).
    """
    for sentence in _SENTENCE_END_RE.split(text):
        if sentence.strip():
            return sentence
    return ""


# Conjugation (questions typed in kana: すぎた, とれない, もってない meet 過ぎる, 取れる, 持つ).
# A godan verb's last kana and the kana of its stems: 未然 (+ない), 連用 (+ます), 仮定 and
# potential (+る, +ば), volitional (+う), and the onbin before て/た (書いて, 持って, 読んで).
_GODAN_ROWS = {
    "う": ("わ", "い", "え", "お", "っ"),
    "く": ("か", "き", "け", "こ", "い"),
    "ぐ": ("が", "ぎ", "げ", "ご", "い"),
    "す": ("さ", "し", "せ", "そ", "し"),
    "つ": ("た", "ち", "て", "と", "っ"),
    "ぬ": ("な", "に", "ね", "の", "ん"),
    "ぶ": ("ば", "び", "べ", "ぼ", "ん"),
    "む": ("ま", "み", "め", "も", "ん"),
    "る": ("ら", "り", "れ", "ろ", "っ"),
}
# What follows each stem in the forms generated (longer ones let a form inside a run reach
# the engine's minimum reading length: もってない, とられた).
_AFTER_CONTINUATIVE = ("", "ます", "ました", "ません", "たい", "たく", "たかった")
_AFTER_NEGATIVE = ("ない", "なかった", "なく", "なきゃ", "ず")
_AFTER_PASSIVE = ("る", "た", "て", "ない", "なかった", "ます")  # after 〜れ / 〜られ
_AFTER_POTENTIAL = ("る", "ない", "なかった", "なく", "た", "て", "ます", "ません", "ば")
_AFTER_TE = ("", "る", "た", "ない", "なかった", "いる", "いない", "いた", "ます", "しまった")
_AFTER_TA = ("", "ら")


def _te_forms(te: str, ta: str) -> list[str]:
    return [te + end for end in _AFTER_TE] + [ta + end for end in _AFTER_TA]


@lru_cache(maxsize=16_384)
def conjugated_readings(reading: str, conjugation: str) -> tuple[str, ...]:
    """kana_fold() readings of common conjugated forms of a verb or adjective.

    `reading` is the folded reading of its dictionary form, `conjugation` Sudachi's
    conjugation type of it (五段-カ行, 下一段-ラ行, サ行変格, カ行変格, 形容詞). Rules of the
    grammar, not a word list; () for a type it does not know. The dictionary form itself is
    not among them.
    """
    forms: list[str] = []
    if len(reading) < 2:
        return ()
    if conjugation.startswith("五段"):
        row = _GODAN_ROWS.get(reading[-1])
        if row is None:
            return ()
        base = reading[:-1]
        a, i, e, o, onbin = row
        if reading.endswith(("いく", "ゆく")):  # 行く: 行って, not 行いて
            onbin = "っ"
        voiced = reading[-1] in "ぐぬぶむ"
        forms += [base + i + end for end in _AFTER_CONTINUATIVE]
        forms += [base + a + end for end in _AFTER_NEGATIVE]
        forms += [base + a + "れ" + end for end in _AFTER_PASSIVE]
        forms += [base + e + end for end in _AFTER_POTENTIAL]
        forms.append(base + o + "う")
        forms += _te_forms(
            base + onbin + ("で" if voiced else "て"), base + onbin + ("だ" if voiced else "た")
        )
    elif conjugation.startswith(("上一段", "下一段")):
        if reading[-1] != "る":
            return ()
        stem = reading[:-1]
        forms += [stem + end for end in _AFTER_CONTINUATIVE]
        forms += [stem + end for end in _AFTER_NEGATIVE]
        forms += [stem + "られ" + end for end in _AFTER_PASSIVE]
        forms += [stem + "れ" + end for end in _AFTER_PASSIVE]  # ら抜き: 見れる
        forms += [stem + "れば", stem + "よう"]
        forms += _te_forms(stem + "て", stem + "た")
    elif conjugation == "サ行変格":
        if not reading.endswith("する"):
            return ()
        base = reading[:-2]
        forms += [base + "し" + end for end in _AFTER_CONTINUATIVE]
        forms += [base + "し" + end for end in _AFTER_NEGATIVE]
        forms += [base + "され" + end for end in _AFTER_PASSIVE]
        forms += [base + "できる", base + "できない", base + "すれば", base + "しよう"]
        forms += _te_forms(base + "して", base + "した")
    elif conjugation == "カ行変格":
        if not reading.endswith("くる"):
            return ()
        base = reading[:-2]
        forms += [base + "き" + end for end in _AFTER_CONTINUATIVE]
        forms += [base + "こ" + end for end in _AFTER_NEGATIVE]
        forms += [base + "こられ" + end for end in _AFTER_PASSIVE]
        forms += [base + "これ" + end for end in _AFTER_PASSIVE]
        forms += [base + "くれば", base + "こよう"]
        forms += _te_forms(base + "きて", base + "きた")
    elif conjugation == "形容詞":
        if reading[-1] != "い":
            return ()
        stem = reading[:-1]
        forms += [
            stem + end
            for end in (
                "く",
                "くない",
                "くなかった",
                "かった",
                "くて",
                "ければ",
                "くなった",
                "くなる",
                "くなって",
            )
        ]
    return tuple(dict.fromkeys(f for f in map(kana_fold, forms) if f and f != reading))


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
    # The text negates a content word (使えない, とれへん, 届きません): "it does not work"
    # questions are a kind of their own. Negated frames (わからない, いけない) do not count.
    negated: bool = False
    # Ask kinds found by single Sudachi words (see `ASK_FORMS`); `ask_kinds` adds the rest.
    ask_cues: frozenset[str] = frozenset()
    # (index in `terms`, start, end in `folded`) of the terms Sudachi made of kana: in text
    # typed all in kana these are often fragments of a word it does not know (こうきん of
    # こうきんうけとりこうざ), which the engine drops where it finds an FAQ word by reading.
    # Empty when a dialect rule changed the text (the offsets would not be `folded`'s).
    kana_terms: tuple[tuple[int, int, int], ...] = ()
    # (term, readings of its conjugated forms) of the verbs and adjectives not written in
    # kana (see `conjugated_readings`): lets the engine recognise 過ぎる in すぎた.
    conjugations: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # (start, end) in `folded` of the words of the synonym table (ひっこし → 引っ越し).
    known_spans: tuple[tuple[int, int], ...] = ()


@dataclass(slots=True)
class _Collected:
    """What the analysis of one text gathers, segment by segment."""

    terms: list[str] = field(default_factory=list)
    readings: list[str] = field(default_factory=list)
    term_readings: list[tuple[str, str]] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)  # terms added as parts of a compound
    negated: bool = False
    ask_cues: set[str] = field(default_factory=set)
    kana_terms: list[tuple[int, int, int]] = field(default_factory=list)
    conjugations: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    known_spans: list[tuple[int, int]] = field(default_factory=list)


# What a morpheme is to `_NegationTracker` (`negation_role`): nothing, a negation, a word of
# duty (だめ), a predicate (verb or adjective).
_NO_ROLE, _NEGATION_ROLE, _OBLIGATION_ROLE, _PREDICATE_ROLE = 0, 1, 2, 3


def _negation_role(normalized: str, pos: str) -> int:
    if normalized in NEGATIONS and pos in NEGATION_POS:
        return _NEGATION_ROLE
    if normalized in OBLIGATION_WORDS:
        return _OBLIGATION_ROLE
    if pos in PREDICATE_POS:
        return _PREDICATE_ROLE
    return _NO_ROLE


@dataclass(frozen=True, slots=True)
class _WordFacts:
    """What one dictionary word contributes to an analysis wherever it occurs."""

    silent: bool
    reading: str = ""
    kana_surface: bool = False
    normalized: str = ""
    conjugation_form: str = ""
    negation_role: int = _NO_ROLE
    ask_kind: str | None = None
    term: str | None = None  # None: not a content word
    term_readings: tuple[tuple[str, str], ...] = ()
    parts: tuple[tuple[str, tuple[str, str] | None], ...] = ()  # (part, its term reading)
    conjugations: tuple[tuple[str, tuple[str, ...]], ...] = ()


_SILENT_WORD = _WordFacts(silent=True)


@dataclass(frozen=True, slots=True)
class _KnownWord:
    """What one word of the synonym table contributes to an analysis wherever it occurs."""

    term: str
    readings: tuple[str, ...]
    # Its parts, each with its term reading, before the check that the text lacks them.
    parts: tuple[tuple[str, tuple[str, str] | None], ...]
    term_reading: tuple[str, str] | None


class _NegationTracker:
    """Tells, morpheme by morpheme, whether a text negates a content predicate.

    使えない and 届きません count; negated frames (わからない) do not, nor duties
    (作らないといけない, 持ってないとだめ), nor the Kansai の after a dictionary form (入れるん？).
    Only the morphemes with a role (`_negation_role`) are shown to it, each with its position
    among the text's morphemes (spaces and punctuation not counted) and the conjugation form
    of the morpheme before it: most morphemes have none, and this runs for every one.
    """

    __slots__ = ("_negations", "_predicate")

    # A duty is a negation followed this closely (in morphemes) by いけない, ならない, だめ.
    DUTY_DISTANCE = 4

    def __init__(self) -> None:
        self._predicate: str | None = None  # the last verb or adjective (normalised)
        self._negations: list[int] = []  # positions of negated content predicates

    @property
    def negated(self) -> bool:
        return bool(self._negations)

    def see(self, role: int, normalized: str, position: int, previous_form: str) -> None:
        if role == _NEGATION_ROLE:
            predicate = self._predicate
            if predicate is None or previous_form.startswith(("終止形", "連体形")):
                pass
            elif predicate not in NEGATED_FRAMES:
                self._negations.append(position)
            elif predicate in OBLIGATIONS:
                self._drop_duty(position)
        elif role == _OBLIGATION_ROLE:
            self._drop_duty(position)
        elif role == _PREDICATE_ROLE:
            self._predicate = normalized

    def _drop_duty(self, position: int) -> None:
        if self._negations and position - self._negations[-1] <= self.DUTY_DISTANCE:
            self._negations.pop()


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
        # The same for whole dictionary words, by (word id, surface): most of an FAQ's
        # analysis time went into asking Sudachi's morphemes the same things again.
        self._word_facts: dict[tuple[int, str], _WordFacts] = {}
        # What each word of the synonym table yields, by (text, canonical form): no more
        # entries than the table has forms.
        self._known_words: dict[tuple[str, str], _KnownWord] = {}
        # Whether a katakana string reads as common nouns (see `_katakana_loanwords`).
        self._loanwords: dict[str, bool] = {}

    def analyze(self, text: str) -> Analysis:
        folded = fold(text[: MAX_ANALYZED_CHARS * 2])[:MAX_ANALYZED_CHARS]
        if not folded:
            return Analysis(folded="", terms=(), reading="")
        out = _Collected()
        standard = standardize_dialect(folded)
        located = standard == folded
        segments = self.synonyms.located_segments(standard)
        for number, (start, segment, canonical) in enumerate(segments):
            if canonical is None:
                text = self._katakana_loanwords(segment)
                self._analyze_free_text(text, out, start if located else None)
            else:
                self._analyze_known_word(segment, canonical, out)
                if located:
                    end = segments[number + 1][0] if number + 1 < len(segments) else len(folded)
                    out.known_spans.append((start, end))
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
            negated=out.negated,
            ask_cues=frozenset(out.ask_cues),
            kana_terms=tuple(out.kana_terms),
            conjugations=tuple(out.conjugations),
            known_spans=tuple(out.known_spans),
        )

    def _katakana_loanwords(self, text: str) -> str:
        """`text` with loanwords typed in hiragana (かーど, ぱすわーど) in katakana.

        Sudachi knows loanwords in katakana only: かーど became the particles か and ど and
        was lost. Around each long-vowel mark of a hiragana run, the longest stretch that
        Sudachi reads in katakana as common nouns (カード; フリー + ダイヤル) is converted.
        The length stays, so offsets into the folded text stay true.
        """
        if "ー" not in text:
            return text
        chars = list(text)
        looked_at = 0
        for run in _HIRAGANA_LOANWORD_RUN_RE.finditer(text):
            begin, end = run.span()
            floor, mark = begin, begin + 1
            while (mark := text.find("ー", mark, end)) != -1:
                looked_at += 1
                if looked_at > _MAX_LOANWORD_MARKS:  # bounded work for pathological input
                    return "".join(chars)
                found = self._loanword_around(text, max(floor, mark - 5), mark, end)
                if found is None:
                    mark += 1
                    continue
                start, stop = found
                chars[start:stop] = to_katakana(text[start:stop])
                floor = mark = stop
        return "".join(chars)

    def _loanword_around(
        self, text: str, lowest: int, mark: int, end: int
    ) -> tuple[int, int] | None:
        """The longest stretch [start, stop) holding the letter before `mark` and the mark
        itself, at least three letters, that reads in katakana as common nouns."""
        for length in range(min(_MAX_LOANWORD_LENGTH, end - lowest), 2, -1):
            for start in range(lowest, mark):
                stop = start + length
                if mark < stop <= end and self._is_loanword(to_katakana(text[start:stop])):
                    return start, stop
        return None

    def _is_loanword(self, katakana: str) -> bool:
        known = self._loanwords.get(katakana)
        if known is None:
            if len(self._loanwords) > 20_000:  # bounded: questions bring new strings
                self._loanwords.clear()
            morphemes = self._tokenize(katakana)
            known = self._loanwords[katakana] = bool(morphemes) and all(
                not m.is_oov()
                and m.part_of_speech()[0] == "名詞"
                and m.part_of_speech()[1] != "固有名詞"  # ふりーだ is no name (フリーダ)
                and len(m.surface()) >= 2
                for m in morphemes
            )
        return known

    def _analyze_free_text(self, text: str, out: _Collected, start: int | None = None) -> None:
        """`start`: where `text` begins in the folded text, if its offsets are the same."""
        terms, readings, term_readings = out.terms, out.readings, out.term_readings
        negation = _NegationTracker()
        position, previous_form = 0, ""  # for the negation tracker
        facts_cache = self._word_facts
        for morpheme in self._tokenize(text):
            surface = morpheme.surface()
            # What a dictionary word yields is the same every time it occurs; unknown words
            # (one word id for many strings) are worked out each time.
            key = None if morpheme.is_oov() else (morpheme.word_id(), surface)
            facts = facts_cache.get(key) if key is not None else None
            if facts is None:
                facts = self._word_facts_of(morpheme, surface)
                if key is not None:
                    if len(facts_cache) > 50_000:  # bounded: questions bring new words
                        facts_cache.clear()
                    facts_cache[key] = facts
            if facts.silent:
                continue  # Sudachi reads spaces and brackets as キゴウ: no reading for them
            readings.append(facts.reading)
            position += 1
            if facts.negation_role:
                negation.see(facts.negation_role, facts.normalized, position, previous_form)
            previous_form = facts.conjugation_form
            if facts.ask_kind is not None:
                out.ask_cues.add(facts.ask_kind)
            if facts.term is None:
                continue
            if start is not None and facts.kana_surface:
                begin = start + morpheme.begin()
                out.kana_terms.append((len(terms), begin, begin + len(surface)))
            terms.append(facts.term)
            term_readings.extend(facts.term_readings)
            if facts.conjugations:
                out.conjugations.extend(facts.conjugations)
            for sub, sub_reading in facts.parts:
                terms.append(sub)
                out.parts.append(sub)
                if sub_reading is not None:
                    term_readings.append(sub_reading)
        out.negated = out.negated or negation.negated

    def _word_facts_of(self, morpheme: Any, surface: str) -> _WordFacts:
        part_of_speech = morpheme.part_of_speech()
        pos = part_of_speech[0]
        if pos in SILENT_POS:
            return _SILENT_WORD
        normalized = morpheme.normalized_form()
        kind = ASK_FORMS.get(normalized) or ASK_FORMS_BY_POS.get((normalized, pos))
        kana_surface = is_kana(surface)
        reading = surface if kana_surface else morpheme.reading_form()
        term = None if pos in DROPPED_POS else self._term(normalized)
        term_readings: list[tuple[str, str]] = []
        conjugations: list[tuple[str, tuple[str, ...]]] = []
        parts: list[tuple[str, tuple[str, str] | None]] = []
        if term is not None:
            # Nouns by their reading; verbs and adjectives, whose reading changes with
            # conjugation (入っ reads はいっ), by the readings of their dictionary and
            # normalised forms (使え: つかえる and つかう), as a question typed in kana has
            # them (つかえる, which Sudachi leaves in kana). Development set, hit@1 before →
            # after, with `RankingParameters.drop_kana_fragments` (alone nothing changes):
            # whole 569 → 571 of 626 (independent part 199 → 201, tuning part 370 → 370),
            # stand-in 430 → 430 and its independent questions 149 → 149; hiragana
            # questions 131 → 133 of 137; hit@5, fallback recall and wrong answers unchanged.
            if pos == "名詞" and not kana_surface:
                term_readings.append((term, _short_kana_fold(morpheme.reading_form())))
            elif pos in PREDICATE_POS and not kana_surface:
                self._predicate_readings(morpheme, normalized, term, term_readings, conjugations)
            # Compounds (暗証番号) also count by their parts (暗証, 番号), so that a question
            # with only a part still meets them.
            if len(surface) >= 3 and not kana_surface:
                pieces = morpheme.split(self._split_a)
                if len(pieces) > 1:
                    for piece in pieces:
                        piece_pos = piece.part_of_speech()[0]
                        if piece_pos in DROPPED_POS:
                            continue
                        sub = self._term(piece.normalized_form())
                        if sub is not None and sub != term:
                            sub_reading = None
                            if piece_pos == "名詞":
                                sub_reading = (sub, _short_kana_fold(piece.reading_form()))
                            parts.append((sub, sub_reading))
        return _WordFacts(
            silent=False,
            reading=reading,
            kana_surface=kana_surface,
            normalized=normalized,
            conjugation_form=part_of_speech[5],
            negation_role=_negation_role(normalized, pos),
            ask_kind=kind,
            term=term,
            term_readings=tuple(term_readings),
            parts=tuple(parts),
            conjugations=tuple(conjugations),
        )

    def _predicate_readings(
        self,
        morpheme: Any,
        normalized: str,
        term: str,
        term_readings: list[tuple[str, str]],
        conjugations: list[tuple[str, tuple[str, ...]]],
    ) -> None:
        """Adds the readings of a verb's or adjective's dictionary and normalised forms, and
        of their conjugated forms (see `conjugated_readings`)."""
        for form in dict.fromkeys((morpheme.dictionary_form(), normalized)):
            form_reading, conjugation = self._reading_of(form)
            if form_reading:
                term_readings.append((term, form_reading))
                forms = conjugated_readings(form_reading, conjugation)
                if forms:
                    conjugations.append((term, forms))

    def _analyze_known_word(self, text: str, canonical: str, out: _Collected) -> None:
        """A word of the synonym table (already canonical): one term, plus its own parts.

        Sudachi may split such a word (マイナ + ポータル); its parts must not be mapped as
        synonyms on their own, or マイナポータル would count as マイナンバーカード.
        """
        known = self._known_words.get((text, canonical))
        if known is None:
            known = self._known_words[(text, canonical)] = self._known_word_of(text, canonical)
        terms = out.terms
        terms.append(known.term)
        out.readings.extend(known.readings)
        for part, part_reading in known.parts:
            if part not in terms:  # nor an earlier word's term or part in this text
                terms.append(part)
                out.parts.append(part)
                if part_reading is not None:
                    out.term_readings.append(part_reading)
        if known.term_reading is not None:
            out.term_readings.append(known.term_reading)

    def _known_word_of(self, text: str, canonical: str) -> _KnownWord:
        """What a word of the synonym table yields wherever it occurs (see
        `_analyze_known_word`): the same every time, and the table is small."""
        term = sys.intern(to_hiragana(canonical))
        readings: list[str] = []
        parts: list[tuple[str, tuple[str, str] | None]] = []
        for morpheme in self._tokenize(text):
            pos = morpheme.part_of_speech()[0]
            if pos in SILENT_POS:
                continue
            surface = morpheme.surface()
            readings.append(surface if is_kana(surface) else morpheme.reading_form())
            if pos in DROPPED_POS:
                continue
            pieces = [morpheme]
            if len(surface) >= 3 and not is_kana(surface):
                pieces.extend(morpheme.split(self._split_a))
            for piece in pieces:
                part = to_hiragana(fold(piece.normalized_form()))
                if (
                    part != term
                    and part not in FRAME_TERMS
                    and self.synonyms.canonical_term(part) == part
                    and not (len(part) == 1 and is_kana(part))
                ):
                    part_reading = None
                    if piece.part_of_speech()[0] == "名詞" and not is_kana(piece.surface()):
                        part_reading = (part, _short_kana_fold(piece.reading_form()))
                    parts.append((sys.intern(part), part_reading))
        term_reading = None if is_kana(text) else (term, kana_fold("".join(readings)))
        return _KnownWord(
            term=term, readings=tuple(readings), parts=tuple(parts), term_reading=term_reading
        )

    def _reading_of(self, word: str) -> tuple[str, str]:
        """kana_fold() of the reading of one word written alone ("" for kana and unknowns),
        and its conjugation type ("*" for words that do not conjugate).

        Called once per dictionary word (see `_word_facts_of`), so it needs no cache of its own.
        """
        if is_kana(word):
            return "", ""
        morphemes = self._tokenize(word)
        if len(morphemes) == 1 and not morphemes[0].is_oov():
            return kana_fold(morphemes[0].reading_form()), morphemes[0].part_of_speech()[4]
        return "", ""

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


def ask_kinds(analysis: Analysis) -> frozenset[str]:
    """What the text asks (cost, place, time, ...; see `ASK_KINDS`), empty when unclear.

    Meant for questions and ways of asking, not answers (an answer mentions everything).
    """
    kinds = set(analysis.ask_cues)
    text = analysis.folded
    kinds.update(kind for kind, pattern in ASK_PATTERNS if pattern.search(text))
    if analysis.negated:
        kinds.add("trouble")
    return frozenset(kinds)
