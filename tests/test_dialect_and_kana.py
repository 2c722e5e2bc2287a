"""Kansai/Harima forms and questions typed all in hiragana."""

from __future__ import annotations

import pytest

from faq.engine import FaqEngine, MatchThresholds, RankingParameters
from faq.normalize import (
    _DIALECT_CUES,
    DIALECT_RULES,
    TextNormalizer,
    conjugated_readings,
    standardize_dialect,
)
from faq.types import FaqDocument

DIALECT_EXAMPLES = [
    ("忘れてしもた", "忘れてしまった"),
    ("ロックしてもた", "ロックしてしまった"),
    ("なくしてもうた", "なくしてしまった"),
    ("とれへん", "とれない"),
    ("わからへん", "わからない"),
    ("でけへん", "できない"),
    ("せえへん", "しない"),
    ("動いとる", "動いている"),
    ("持っとった", "持っていた"),
    ("ほしいねん", "ほしい"),
    ("なんぼ", "いくら"),
    ("かまへん", "かまわない"),
    ("使いたない", "使いたくない"),
    # 〜へん/〜ひん after every kind of stem, and their past
    ("わからへんかった", "わからなかった"),
    ("ありまへん", "ありません"),
    ("書いてあれへん", "書いてない"),
    ("来えへん", "来ない"),
    ("来ーへん", "来ない"),
    ("出えへん", "出ない"),
    ("見いひん", "見ない"),
    ("見えへん", "見えない"),  # 見える, not 見る
    ("起きひん", "起きない"),
    # 〜ん (negative) that Sudachi takes into the verb
    ("読めん", "読めない"),
    ("使えんかった", "使えなかった"),
    ("わからんくなった", "わからなくなった"),
    # Harima progressive 〜とう (= 〜ている)
    ("持っとう", "持っている"),
    ("書いとうか", "書いているか"),
    ("忘れとう", "忘れている"),
    ("登録しとうけど", "登録しているけど"),
    ("登録されとう", "登録されている"),
    ("住んどう", "住んでいる"),
    # honorific 〜てはる
    ("してはる", "している"),
    ("行ってはった", "行っていた"),
    ("無料やん", "無料じゃん"),
    ("行かなあかん", "行かなければいけない"),
]


@pytest.mark.parametrize(("dialect", "standard"), DIALECT_EXAMPLES)
def test_dialect_forms_become_standard(dialect: str, standard: str) -> None:
    assert standardize_dialect(dialect) == standard


@pytest.mark.parametrize("dialect", [dialect for dialect, _ in DIALECT_EXAMPLES])
def test_every_rule_that_applies_has_a_cue(dialect: str) -> None:
    # standardize_dialect skips texts without a cue: a rule without one would never run.
    for pattern, _ in DIALECT_RULES:
        if pattern.search(dialect):
            assert _DIALECT_CUES.search(dialect), pattern.pattern


@pytest.mark.parametrize(
    "text",
    [
        "大変です",
        "たいへんです",
        "へんな画面",
        "住民票とる",
        "ねんきん",
        # kana of standard words that look like the rules above
        "ありがとう",
        "おめでとう",
        "さいとうさんの",
        "れいとうの",
        "とうとう",
        "めんどうな",
        "ほけんの",
        "使えません",
        "何べんか",
        "手紙が来てんけど",  # 来てん is a past (来たんや), not a negative
        "入れんの",  # 入れるの
        "はりまちょうでは",
        "ここではるかに",
    ],
)
def test_dialect_rules_leave_standard_words_alone(text: str) -> None:
    assert standardize_dialect(text) == text


def test_shimota_is_not_read_as_motsu() -> None:
    # Without the rule Sudachi reads the もた of してもた as 持つ.
    terms = TextNormalizer().analyze("暗証番号忘れてロックしてもた").terms
    assert "持つ" not in terms
    assert "忘れる" in terms


@pytest.fixture(scope="module")
def engine() -> FaqEngine:
    engine = FaqEngine(thresholds=MatchThresholds(answer=0.6, margin=0.06, suggest=0.38))
    engine.rebuild(
        [
            FaqDocument(
                id="pin",
                question="マイナンバーカードの暗証番号を忘れました",
                answer="窓口で暗証番号を初期化して設定し直します。",
            ),
            FaqDocument(
                id="account",
                question="公金受取口座を登録したい",
                answer="マイナポータルから登録できます。",
            ),
            FaqDocument(
                id="cert",
                question="電子証明書の有効期限が切れました",
                answer="窓口で更新します。",
            ),
            FaqDocument(
                id="within",
                question="転入届は何日以内に出しますか",
                answer="住み始めてから14日以内です。",
            ),
        ]
    )
    return engine


def test_hiragana_question_finds_kanji_words_by_reading(engine: FaqEngine) -> None:
    analysis = engine.normalizer.analyze("あんしょうばんごうわすれた")
    assert "暗証番号" not in analysis.terms  # Sudachi alone cannot split it
    assert "暗証番号" in engine._words_in_kana(analysis.folded, analysis.terms)
    assert engine.rank("あんしょうばんごうわすれた")[0].faq_id == "pin"


def test_hiragana_compound_found(engine: FaqEngine) -> None:
    assert engine.rank("こうきんうけとりこうざ　とうろくしたい")[0].faq_id == "account"


def test_short_grammar_kana_is_not_taken_for_a_word(engine: FaqEngine) -> None:
    # いない (is not) reads like 以内: a 3-kana match inside a longer run is ignored.
    analysis = engine.normalizer.analyze("カードを持っていないのですが")
    assert "以内" not in engine._words_in_kana(analysis.folded, analysis.terms)


def test_reading_of_a_whole_short_run_counts(engine: FaqEngine) -> None:
    # A run of kana that is exactly a word's reading is that word.
    analysis = engine.normalizer.analyze("以内　いない")
    assert analysis.terms  # 以内 itself
    found = engine._words_in_kana("いない", ())
    assert found == ("以内",)


def test_words_no_entry_has_any_more_are_not_added(engine: FaqEngine) -> None:
    engine.remove("cert")
    try:
        found = engine._words_in_kana("でんししょうめいしょ", ())
        assert "電子証明書" not in found
    finally:
        engine.upsert(
            FaqDocument(
                id="cert",
                question="電子証明書の有効期限が切れました",
                answer="窓口で更新します。",
            )
        )


def test_sudachi_fragments_of_a_word_found_by_reading_are_dropped(engine: FaqEngine) -> None:
    analysis = engine.normalizer.analyze("こうきんうけとりこうざ　とうろくしたい")
    assert {"こう", "きん"} <= set(analysis.terms)  # Sudachi's split of the unknown kana
    cleaned, found = engine._without_kana_fragments(analysis)
    assert "公金受取口座" in found
    assert not {"こう", "きん"} & set(cleaned.terms)
    assert "登録" in cleaned.terms


def test_sudachi_words_the_faq_has_are_no_fragments() -> None:
    engine = FaqEngine()
    engine.rebuild(
        [
            FaqDocument(id="nursery", question="保育園の申し込み", answer="役場で受け付けます。"),
            FaqDocument(id="class", question="教室に申し込むには", answer="電話で受け付けます。"),
        ]
    )
    analysis = engine.normalizer.analyze("ほいくえん　もうしこみ")
    assert "えん" in analysis.terms  # ほいく + えん
    cleaned, found = engine._without_kana_fragments(analysis)
    assert "保育園" in found
    assert "えん" not in cleaned.terms  # kana covered by 保育園
    # Sudachi's own words stay where the FAQ has them, though 申し込み covers もうしこみ.
    assert {"保育", "申し込む"} <= set(cleaned.terms)


def test_kana_dialect_text_keeps_its_terms(engine: FaqEngine) -> None:
    # A dialect rule changes the text: offsets would not match, so nothing is dropped.
    analysis = engine.normalizer.analyze("こうきんうけとりこうざ　とうろくしてもた")
    assert analysis.kana_terms == ()
    assert engine._without_kana_fragments(analysis)[0] == analysis


def test_run_read_end_to_end_allows_three_letter_words(engine: FaqEngine) -> None:
    # 口座 (こうざ) followed by a particle: the run is read as words end to end.
    assert engine._words_in_kana("こうざが", ()) == ("口座",)
    assert engine._words_in_kana("こうざをとうろく", ()) == ("口座", "登録")
    # Not when some of the run is no word (きれた), nor with a particle first (にいない).
    assert "口座" not in engine._words_in_kana("こうざがきれた", ())
    assert engine._words_in_kana("いないの", ()) == ("以内",)
    assert engine._words_in_kana("にいないの", ()) == ()


def test_kana_verbs_meet_the_faqs_verbs_by_dictionary_form() -> None:
    engine = FaqEngine()
    engine.rebuild(
        [
            FaqDocument(id="phone", question="スマホを保険証として使えますか", answer="使えます。"),
            FaqDocument(id="old", question="古い保険証はいつまで有効ですか", answer="一年です。"),
        ]
    )
    analysis = engine.normalizer.analyze("すまほを　ほけんしょうがわりに　つかえる？")
    assert "つかえる" in analysis.terms  # Sudachi leaves the kana verb as it is
    # 使え of 使えますか is indexed by つかえる (dictionary form) and つかう (normalised).
    assert "使う" in engine._words_in_kana(analysis.folded, analysis.terms)
    assert "使う" in engine._words_in_kana("つかう", ())


@pytest.mark.parametrize(
    ("question", "words"),
    [
        ("みちで　かーど　おとしたかも", {"かーど"}),  # was か + ど, both dropped
        ("つうちかーどしかもってない", {"通知", "かーど", "持つ"}),
        ("あぷりをだうんろーどするには", {"あぷり", "だうんろーど"}),
        ("ふりーだいやるは", {"ふりー", "だいやる"}),  # two nouns, not the name フリーダ
    ],
)
def test_loanwords_typed_in_hiragana_are_read_as_in_katakana(
    question: str, words: set[str]
) -> None:
    normalizer = TextNormalizer()
    assert words <= set(normalizer.analyze(question).terms)
    assert "ふりーだ" not in normalizer.analyze(question).terms


def test_hiragana_without_loanwords_is_left_alone() -> None:
    normalizer = TextNormalizer()
    assert normalizer.analyze("えーと、あー").terms == ()
    # A synonym written in hiragana is still the table's word, not a loanword in parts.
    assert normalizer.analyze("まいなぽーたる").terms == normalizer.analyze("マイナポータル").terms


@pytest.mark.parametrize(
    ("reading", "conjugation", "forms"),
    [
        ("もつ", "五段-タ行", {"もつてない", "もたない", "もちます", "もてる", "もつた"}),
        ("とる", "五段-ラ行", {"とられた", "とれない", "とつて", "とらない"}),
        ("つくりなおす", "五段-サ行", {"つくりなおし", "つくりなおさない", "つくりなおして"}),
        ("かく", "五段-カ行", {"かいて", "かかれる", "かけない"}),
        ("よむ", "五段-マ行", {"よんで", "よんだ", "よまない"}),
        ("いく", "五段-カ行", {"いつて", "いつた"}),  # 行って, not 行いて
        ("すぎる", "上一段-ガ行", {"すぎた", "すぎてる", "すぎない"}),
        ("かえる", "下一段-ア行", {"かえたい", "かえられる", "かえれる", "かえて"}),
        ("あいする", "サ行変格", {"あいして", "あいしない", "あいされる"}),
        ("ちいさい", "形容詞", {"ちいさく", "ちいさかつた", "ちいさくない"}),
    ],
)
def test_conjugated_readings_follow_the_grammar(
    reading: str, conjugation: str, forms: set[str]
) -> None:
    generated = conjugated_readings(reading, conjugation)
    assert forms <= set(generated)
    assert reading not in generated
    assert conjugated_readings(reading, "*") == ()


def _conjugation_engine() -> FaqEngine:
    engine = FaqEngine()
    engine.rebuild(
        [
            FaqDocument(
                id="expired",
                question="有効期限が過ぎたカードはどうすればいいですか",
                answer="作り直す必要があります。",
            ),
            FaqDocument(id="cert", question="証明書が取れないときは", answer="窓口へ。"),
            FaqDocument(id="first", question="初めての申請", answer="無料です。"),
            FaqDocument(id="start", question="いつから始めますか", answer="四月です。"),
            FaqDocument(id="photo", question="写真をLINEで送る方法", answer="共有を押します。"),
            FaqDocument(id="account", question="口座を変える", answer="マイナポータルで。"),
        ]
    )
    return engine


def test_kana_run_meets_conjugated_forms_of_the_faqs_verbs() -> None:
    engine = _conjugation_engine()
    # とれない: Sudachi leaves とれる in kana; the run meets the FAQ's 取れる.
    analysis = engine.normalizer.analyze("しょうめいしょとれない")
    in_kana = engine._without_kana_fragments(analysis)[1]
    assert {"証明書", "取れる"} <= set(in_kana)
    # おくれない: Sudachi reads 遅れる, which the FAQ lacks; the potential of 送る.
    analysis = engine.normalizer.analyze("しゃしん　らいんで　おくれない")
    assert "遅れる" in analysis.terms
    cleaned, in_kana = engine._without_kana_fragments(analysis)
    assert "送る" in in_kana
    assert "遅れる" not in cleaned.terms
    # かえたい: Sudachi leaves かえる in kana.
    assert "変える" in engine._words_in_kana("こうざ　かえたい", ())


def test_conjugated_forms_keep_out_of_grammar_and_known_words() -> None:
    engine = _conjugation_engine()
    # Shorter than four letters: no conjugated form (でよう, うてる are grammar, mostly).
    assert engine._words_in_kana("すぎた", ()) == ()
    for grammar in ("いない", "ある", "している", "いるの"):
        assert engine._words_in_kana(grammar, ()) == ()
    # はじめて is Sudachi's 初めて, a word the FAQ has: not 始める's て-form there.
    analysis = engine.normalizer.analyze("はじめてのかーど")
    assert "初めて" in analysis.terms
    assert "始める" not in engine._without_kana_fragments(analysis)[1]
    # Without the switch, nothing is read as a conjugated form.
    plain = FaqEngine(parameters=RankingParameters(kana_conjugations=False))
    plain.rebuild(engine.documents())
    assert "取れる" not in plain._words_in_kana("しょうめいしょとれない", ())
