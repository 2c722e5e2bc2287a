"""Japanese text normalisation: character folding, kana folding, n-grams and analysis."""

from __future__ import annotations

import warnings

import pytest

from faq.normalize import (
    MAX_ANALYZED_CHARS,
    Analysis,
    TextNormalizer,
    ask_kinds,
    char_ngrams,
    final_sentence,
    first_sentence,
    kana_fold,
)
from faq.textfold import fold, to_hiragana, to_katakana


@pytest.fixture
def normalizer() -> TextNormalizer:
    # Cheap: the Sudachi dictionary is loaded once per process and shared.
    return TextNormalizer()


def test_text_normalizer_construction_emits_no_deprecation_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TextNormalizer()


def terms_of(normalizer: TextNormalizer, text: str) -> tuple[str, ...]:
    return normalizer.analyze(text).terms


# -- fold -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３", "abc123"),
        ("ａｂｃＸＹＺ", "abcxyz"),
        ("Wi-Fi", "wi-fi"),
        ("QRコード", "qrコード"),
        ("ｶﾞｲﾄﾞ", "ガイド"),
        ("ﾏｲﾅﾝﾊﾞｰｶｰﾄﾞ", "マイナンバーカード"),
        ("ﾊﾟｽﾜｰﾄﾞ", "パスワード"),
    ],
)
def test_fold_width_and_case(raw: str, expected: str) -> None:
    assert fold(raw) == expected


@pytest.mark.parametrize(
    "dash", ["\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212", "\uff70", "ー"]
)
def test_fold_long_vowel_dashes_become_one_mark(dash: str) -> None:
    assert fold(f"コ{dash}ド") == "コード"


def test_fold_drops_lone_surrogates() -> None:
    assert fold("暗証\ud800番号\udfff") == "暗証番号"
    assert fold("😀") == "😀"  # a real pair is one character and stays


def test_fold_maps_each_dash_to_one_long_vowel_mark() -> None:
    assert fold("‐―−ｰ") == "ーーーー"


@pytest.mark.parametrize("control", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u2028", "\u202e"])
def test_fold_removes_control_characters(control: str) -> None:
    folded = fold(f"暗証番号{control}忘れた{control}")
    assert control not in folded
    assert folded.replace(" ", "") == "暗証番号忘れた"


@pytest.mark.parametrize("invisible", ["\u200b", "\u200c", "\u200d", "\u200e", "\ufeff"])
def test_fold_drops_zero_width_characters_at_the_edges(invisible: str) -> None:
    assert fold(f"{invisible}スマホ{invisible}") == "スマホ"


@pytest.mark.parametrize("invisible", ["\u200b", "\ufeff"])
def test_fold_zero_width_character_inside_a_word_is_invisible(invisible: str) -> None:
    assert fold(f"暗証{invisible}番号") == "暗証番号"


def test_fold_collapses_whitespace_and_strips() -> None:
    assert fold("  スマホ\u3000 の\t\t使い方\n\n教室  ") == "スマホ の 使い方 教室"


def test_fold_lower_cases_after_nfkc() -> None:
    assert fold("ＰＩＮ Code") == "pin code"


def test_fold_empty_and_blank() -> None:
    assert fold("") == ""
    assert fold(" \u3000\t\n\u200b") == ""


def test_to_hiragana_and_back() -> None:
    assert to_hiragana("マイナンバーカード") == "まいなんばーかーど"
    assert to_hiragana("ヴァイオリン") == "ゔぁいおりん"
    assert to_hiragana("漢字とabc") == "漢字とabc"
    assert to_katakana("すまほ") == "スマホ"


# -- kana_fold --------------------------------------------------------------------------------


def test_kana_fold_katakana_to_hiragana() -> None:
    assert kana_fold("スマホ") == "すまほ"


@pytest.mark.parametrize(
    ("small", "large"),
    [
        ("しゅうせい", "しゆうせい"),
        ("きって", "きつて"),
        ("ちぇっく", "ちえつく"),
        ("シャシン", "しやしん"),
    ],
)
def test_kana_fold_small_kana_meet_large(small: str, large: str) -> None:
    assert kana_fold(small) == kana_fold(large)


@pytest.mark.parametrize(
    ("long", "short"), [("こーど", "こど"), ("コード", "こど"), ("すまーとふぉん", "すまとふおん")]
)
def test_kana_fold_long_vowels_dropped(long: str, short: str) -> None:
    assert kana_fold(long) == kana_fold(short)


def test_kana_fold_drops_punctuation_and_spaces() -> None:
    assert kana_fold("え、ほんま？ 「こーど」！。") == "えほんまこど"
    assert kana_fold("a-b_c.d") == "abcd"


def test_kana_fold_drops_the_katakana_middle_dot() -> None:
    assert kana_fold("マイナンバー・カード") == kana_fold("マイナンバーカード")


# -- char_ngrams --------------------------------------------------------------------------------


def test_char_ngrams_edge_cases() -> None:
    assert char_ngrams("") == []
    assert char_ngrams("暗") == ["暗"]
    assert char_ngrams("暗証") == ["暗証"]
    assert char_ngrams("暗証番号") == ["暗証", "証番", "番号"]
    assert char_ngrams("あい", n=3) == ["あい"]
    assert char_ngrams("あいうえ", n=3) == ["あいう", "いうえ"]


# -- TextNormalizer.analyze ---------------------------------------------------------------------


def test_analyze_drops_particles_and_auxiliaries(normalizer: TextNormalizer) -> None:
    terms = terms_of(normalizer, "スマホの画面が暗いです")
    assert "画面" in terms
    for function_word in ("の", "が", "です"):
        assert function_word not in terms


def test_analyze_same_term_for_okurigana_variants(normalizer: TextNormalizer) -> None:
    assert terms_of(normalizer, "引越し") == terms_of(normalizer, "引っ越し")
    assert terms_of(normalizer, "引越し") != ()


def test_analyze_dialect_verb_normalised(normalizer: TextNormalizer) -> None:
    assert "忘れる" in terms_of(normalizer, "忘れてしもた")
    assert "忘れる" in terms_of(normalizer, "暗証番号を忘れました")


@pytest.mark.parametrize(
    ("text", "terms", "negated"),
    [
        # Harima progressive: Sudachi alone reads the とう of 持っとう as たい (want)
        ("保険証持っとう", ("保険証", "保険", "証", "持つ"), False),
        ("カード届いとうか", ("かーど", "届く"), False),
        # negatives Sudachi misreads: 出え (得る), あれ (a pronoun), 読めん (one word)
        ("証明書が出えへん", ("証明書", "証明", "書", "出る"), True),
        ("カードあれへん", ("かーど",), False),
        ("字が読めん", ("字", "読む"), True),
        ("住民票とれへんかった", ("住民票", "住民", "票", "とれる"), True),
        ("番号わからんくなった", ("番号",), False),  # わからない is a frame
        ("娘がしてはる", ("娘",), False),  # not そして + はる
        ("無料やん", ("無料",), False),  # not a suffix やん
    ],
)
def test_analyze_kansai_and_harima_grammar(
    normalizer: TextNormalizer, text: str, terms: tuple[str, ...], negated: bool
) -> None:
    analysis = normalizer.analyze(text)
    assert analysis.terms == terms
    assert analysis.negated is negated


@pytest.mark.parametrize(
    "frame",
    [
        "教えてください",
        "どうすればいいですか",
        "どうすればいいですか？",
        "教えてほしいです",
        "お願いします",
    ],
)
def test_analyze_question_frames_give_no_terms(normalizer: TextNormalizer, frame: str) -> None:
    assert terms_of(normalizer, frame) == ()


@pytest.mark.parametrize("text", ["暗証番号について", "暗証番号に関して", "暗証番号のこと"])
def test_analyze_compound_particle_frames_give_no_terms(
    normalizer: TextNormalizer, text: str
) -> None:
    assert terms_of(normalizer, text) == terms_of(normalizer, "暗証番号")


def test_analyze_frames_do_not_hide_the_topic(normalizer: TextNormalizer) -> None:
    assert terms_of(normalizer, "暗証番号を教えてください") == terms_of(normalizer, "暗証番号")


def test_analyze_adds_compound_parts(normalizer: TextNormalizer) -> None:
    terms = terms_of(normalizer, "暗証番号")
    assert terms[0] == "暗証番号"
    assert "番号" in terms
    # 暗証 is itself a synonym variant of 暗証番号 (see synonyms.tsv), so it counts as the whole.
    assert normalizer.synonyms.canonical_term("暗証") == "暗証番号"


def test_analyze_compound_parts_without_synonyms() -> None:
    from faq.synonyms import SynonymTable

    terms = TextNormalizer(SynonymTable([])).analyze("暗証番号").terms
    assert {"暗証番号", "暗証", "番号"} <= set(terms)


def test_analyze_marks_terms_that_are_only_compound_parts() -> None:
    from faq.synonyms import SynonymTable

    normalizer = TextNormalizer(SynonymTable([]))
    analysis = normalizer.analyze("住民票の写し")
    assert "住民票" in analysis.terms
    assert {"住民", "票"} <= analysis.parts
    assert "住民票" not in analysis.parts
    # A part that is also written as a word of its own is a whole word.
    assert "番号" not in normalizer.analyze("番号と暗証番号").parts
    assert "番号" in normalizer.analyze("暗証番号").parts


def test_analyze_parts_of_a_synonym_table_word(normalizer: TextNormalizer) -> None:
    analysis = normalizer.analyze("マイナポータル")
    assert set(analysis.parts) <= set(analysis.terms)
    assert "まいなぽーたる" not in analysis.parts


@pytest.mark.parametrize(
    ("kanji", "kana"),
    [("暗証番号", "あんしょうばんごう"), ("住民票", "じゅうみんひょう"), ("引っ越し", "ひっこし")],
)
def test_analyze_reading_of_kanji_equals_kana(
    normalizer: TextNormalizer, kanji: str, kana: str
) -> None:
    assert normalizer.analyze(kanji).reading == kana_fold(kana)
    assert normalizer.analyze(kana).reading == normalizer.analyze(kanji).reading


def test_analyze_reading_of_katakana_text(normalizer: TextNormalizer) -> None:
    assert normalizer.analyze("スマホ").reading == "すまほ"


@pytest.mark.parametrize("separator", [" ", "\u3000", "（", "〜"])
def test_analyze_reading_ignores_spaces_and_symbols(
    normalizer: TextNormalizer, separator: str
) -> None:
    assert normalizer.analyze(f"暗証番号{separator}忘れた").reading == (
        normalizer.analyze("暗証番号忘れた").reading
    )


@pytest.mark.parametrize("blank", ["", " ", "\u3000\t\n", "\u200b", "\x00\x07"])
def test_analyze_empty_input(normalizer: TextNormalizer, blank: str) -> None:
    assert normalizer.analyze(blank) == Analysis(folded="", terms=(), reading="")


def test_analyze_punctuation_only(normalizer: TextNormalizer) -> None:
    analysis = normalizer.analyze("？！。、…")
    assert analysis.terms == ()
    assert analysis.reading == ""


def test_analyze_long_input_is_cut(normalizer: TextNormalizer) -> None:
    text = ("マイナンバーカードの暗証番号を忘れました。" * 500)[:10_000]
    analysis = normalizer.analyze(text)
    assert len(analysis.folded) == MAX_ANALYZED_CHARS
    assert "暗証番号" in analysis.terms


@pytest.mark.parametrize(
    "text",
    [
        "あ" * 10_000,
        "ｱｲｳ" * 3_000,
        "マイナ" * 3_000,
        "pin" * 3_000,
        "😀" * 10_000,
        "\ufdfa" * 3_000,
    ],
)
def test_analyze_pathological_long_inputs_do_not_raise(
    normalizer: TextNormalizer, text: str
) -> None:
    analysis = normalizer.analyze(text)
    assert len(analysis.folded) <= MAX_ANALYZED_CHARS


def test_analyze_is_deterministic_with_the_term_cache(normalizer: TextNormalizer) -> None:
    first = normalizer.analyze("マイナンバーカードの暗証番号を忘れてしもた")
    second = normalizer.analyze("マイナンバーカードの暗証番号を忘れてしもた")
    assert first == second
    assert TextNormalizer().analyze("マイナンバーカードの暗証番号を忘れてしもた") == first


@pytest.mark.parametrize(
    ("text", "negated"),
    [
        ("コンビニで住民票がとれない", True),
        ("コンビニで住民票とれへんの", True),  # Kansai negation
        ("交付通知書が届きません", True),
        ("マイナ保険証使いたないねん", True),
        ("証明書が出てこない", True),
        ("暗証番号がわかりません", False),  # a negated frame
        ("登録しないといけないのですか", False),  # a duty
        ("マイナカード作らんとあかんの？", False),
        ("持ってないとダメなの", False),
        ("アプリはどこで入れるん？", False),  # Kansai の, not ん = ない
        ("マイナンバーカードを作りたい", False),
    ],
)
def test_analyze_tells_negated_predicates(
    normalizer: TextNormalizer, text: str, negated: bool
) -> None:
    assert normalizer.analyze(text).negated is negated


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("住民票の手数料はいくらですか", {"cost"}),
        ("じゅうみんひょう　てすうりょう", {"cost"}),  # kana only: Sudachi mis-splits it
        ("窓口はどこにありますか", {"place"}),
        ("どこでもらえるん", {"place"}),
        ("申請書がどっかいった", {"trouble"}),  # gone missing, not a place
        ("コンビニ交付は何時まで使えますか", {"time"}),
        ("こんびに　なんじまで", {"time"}),
        ("年末年始も窓口はあいてますか", {"time", "place"}),
        ("受け取りに何を持って行けばいいですか", {"needs"}),
        ("なにがいるの", {"needs"}),
        ("登録せなあかんの？", {"needs"}),  # a duty
        ("マイナ保険証の登録方法", {"how"}),
        ("どうやってしんせいするの", {"how"}),
        ("住民票をとりたい", {"how"}),
        ("登録できているか確かめたい", {"check", "how"}),
        ("登録されとるかわからん", {"check"}),  # whether it holds
        ("何かわからない", set()),
        ("暗証番号をわすれた", {"trouble"}),
        ("コンビニで住民票がとれない", {"trouble"}),  # a negation
        ("家族が代わりに受け取れますか", {"who"}),
        ("だいりでもいい？", {"who"}),
        ("マイナ保険証とは何ですか", {"what"}),
        ("こうきんうけとりこうざってなに", {"what"}),
        ("マイナンバーカード", set()),
        ("暗証番号を入れます。", set()),
    ],
)
def test_ask_kinds(normalizer: TextNormalizer, text: str, kinds: set[str]) -> None:
    assert ask_kinds(normalizer.analyze(text)) == kinds


@pytest.mark.parametrize(
    ("text", "last"),
    [
        (
            "カードが見つかりました。再び使う手続きを教えてください",
            "再び使う手続きを教えてください",
        ),
        ("カードが見つかりました。再び使えますか？", "再び使えますか"),
        ("更新せなあかんの？ほっといたらあかん？", "ほっといたらあかん"),
        ("更新せなあかんの!? ほっといたら？", " ほっといたら"),
        ("一行目\n二行目", "二行目"),
        ("一行目\r\n\r\n二行目", "二行目"),
        ("カードが見つかったけど、再び使えますか", None),
        ("再び使えますか。", None),
        ("3.5cmの写真", None),
        ("", None),
    ],
)
def test_final_sentence(text: str, last: str | None) -> None:
    assert final_sentence(text) == last


def test_analysis_does_not_depend_on_what_was_analysed_before() -> None:
    """Words are remembered by dictionary id and surface: a warm normaliser must give what a
    fresh one gives, for known and unknown words, compounds, spellings and contexts."""
    texts = [
        "暗証番号を忘れた",
        "暗証番号",
        "あんしょうばんごう忘れた",
        "使えない",
        "使えるようになりますか",
        "使えへんねん",
        "iPhoneで使える？",
        "IPHONEで使える？",
        "qwzxの申請",  # unknown words share one word id
        "zzqpの申請",
        "ＸＹＺ社のマイナンバーカード",
        "住民票をコンビニで取る",
        "住民票の写し",
        "手数料はいくら",
    ]
    warm = TextNormalizer()
    first_pass = [warm.analyze(text) for text in texts]
    second_pass = [warm.analyze(text) for text in reversed(texts)]
    fresh = [TextNormalizer().analyze(text) for text in texts]
    assert first_pass == fresh
    assert list(reversed(second_pass)) == fresh


@pytest.mark.parametrize(
    ("text", "first"),
    [
        (
            "写真は次の条件に合うものを使ってください。\n・大きさは縦4.5cm",
            "写真は次の条件に合うものを使ってください",
        ),
        ("\n\n送れます！ 詳しくは窓口へ", "送れます"),
        ("3.5cmの写真", "3.5cmの写真"),
        ("。\n", ""),
        ("", ""),
    ],
)
def test_first_sentence(text: str, first: str) -> None:
    assert first_sentence(text) == first
