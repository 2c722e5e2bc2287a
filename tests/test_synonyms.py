"""The synonym table: parsing, rewriting, staff extensions, and its effect on matching."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faq.engine import FaqEngine
from faq.normalize import TextNormalizer
from faq.service import create_engine_from_settings
from faq.synonyms import (
    DEFAULT_SYNONYMS_PATH,
    SynonymGroup,
    SynonymTable,
    _longest_first,
    parse_synonym_text,
)
from faq.textfold import fold
from faq.types import FaqDocument
from madoguchi.settings import Settings


@pytest.fixture
def table() -> SynonymTable:
    return SynonymTable.default()


def rewrite(table: SynonymTable, text: str) -> str:
    return table.rewrite(fold(text))


@settings(max_examples=300, deadline=None)
@given(
    words=st.sets(st.text(alphabet="あいうア*.\\", min_size=1, max_size=5), min_size=1),
    text=st.text(alphabet="あいうア*.\\x", max_size=30),
)
def test_the_trie_pattern_finds_what_the_words_longest_first_find(
    words: set[str], text: str
) -> None:
    """Forms are searched as a trie, which must find the same as the forms one after another,
    longest first (the longest form that begins at the first place where any begins)."""
    plain = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)))
    trie = re.compile(_longest_first(words))
    assert [(m.start(), m.group()) for m in trie.finditer(text)] == [
        (m.start(), m.group()) for m in plain.finditer(text)
    ]


def test_the_default_table_segments_the_faq_as_its_forms_longest_first(
    table: SynonymTable,
) -> None:
    from faq.bench import synthetic_entries

    forms = sorted(table._surface_map, key=len, reverse=True)
    plain = re.compile("|".join(re.escape(form) for form in forms))
    assert table._pattern is not None
    for document in synthetic_entries(200):
        text = fold(document.question + document.answer + "".join(document.alternatives))
        assert [m.span() for m in table._pattern.finditer(text)] == [
            m.span() for m in plain.finditer(text)
        ]


# -- parsing ----------------------------------------------------------------------------------


def test_parse_tabs_commas_comments_and_blank_lines() -> None:
    text = (
        "# 見出しのメモ\n"
        "\n"
        "スマホ\tスマートフォン\tけいたい\n"
        "   \n"
        "紛失, 無くす ,落とす  # 行末のメモ\n"
        "窓口、まどぐち\n"
        "\t,\t,\n"
        "マイナス\n"
        "#スマホ\tこれは全部メモ\n"
        "暗証番号\t\tパスワード\t\n"
    )
    assert parse_synonym_text(text) == [
        SynonymGroup(canonical="スマホ", variants=("スマートフォン", "けいたい")),
        SynonymGroup(canonical="紛失", variants=("無くす", "落とす")),
        SynonymGroup(canonical="窓口", variants=("まどぐち",)),
        SynonymGroup(canonical="マイナス", variants=()),
        SynonymGroup(canonical="暗証番号", variants=("パスワード",)),
    ]


def test_parse_empty_text() -> None:
    assert parse_synonym_text("") == []
    assert parse_synonym_text("# only a comment\n\n") == []


def test_default_table_loads(table: SynonymTable) -> None:
    assert DEFAULT_SYNONYMS_PATH.is_file()
    assert len(table) > 10
    canonicals = {group.canonical for group in table.groups}
    assert {"マイナンバーカード", "スマホ", "マイナポータル", "マイナス"} <= canonicals


def test_default_table_is_packaged() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text("utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["faq"]
    relative = DEFAULT_SYNONYMS_PATH.relative_to(DEFAULT_SYNONYMS_PATH.parents[1]).as_posix()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in globs), globs


def test_from_files_reads_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.tsv"
    path.write_bytes("\ufeffスマホ\tすまーとふぉん\n".encode())
    table = SynonymTable.from_files([path])
    assert table.groups == [SynonymGroup(canonical="スマホ", variants=("すまーとふぉん",))]


# -- rewriting --------------------------------------------------------------------------------


def test_rewrite_longest_first(table: SynonymTable) -> None:
    # マイナポータル and マイナス are canonical forms themselves: マイナ does not eat into them.
    assert rewrite(table, "マイナポータル") == "マイナポータル"
    assert rewrite(table, "マイナス") == "マイナス"
    assert rewrite(table, "マイナ") == "マイナンバーカード"
    assert rewrite(table, "マイナポータルとマイナスとマイナ") == (
        "マイナポータルとマイナスとマイナンバーカード"
    )
    # 個人番号カード is one variant; 個人番号 (→ マイナンバー) must not win over it.
    assert rewrite(table, "個人番号カードをなくした") == "マイナンバーカードをなくした"
    assert rewrite(table, "個人番号を知りたい") == "マイナンバーを知りたい"


@pytest.mark.parametrize(
    "spelling", ["マイナカード", "まいなかーど", "ﾏｲﾅｶｰﾄﾞ", "まいなんばかーど", "マイナンバカード"]
)
def test_rewrite_katakana_and_hiragana_spellings(table: SynonymTable, spelling: str) -> None:
    assert rewrite(table, f"{spelling}の暗証番号") == "マイナンバーカードの暗証番号"


def test_rewrite_leaves_unknown_text_alone(table: SynonymTable) -> None:
    assert rewrite(table, "今日の天気は?") == "今日の天気は?"
    assert SynonymTable([]).rewrite("マイナ") == "マイナ"


def test_canonical_term(table: SynonymTable) -> None:
    assert table.canonical_term("すまーとふぉん") == "すまほ"
    assert table.canonical_term("けいたい") == "すまほ"
    assert table.canonical_term("ぱすわーど") == "暗証番号"
    assert table.canonical_term("すまほ") == "すまほ"
    assert table.canonical_term("天気") == "天気"


def test_extended_from_files_adds_and_overrides(tmp_path: Path, table: SynonymTable) -> None:
    staff = tmp_path / "staff.tsv"
    staff.write_text("# 職員が足した行\nスマホ教室\tぴよぴよ\n締め切り\t期限\n", encoding="utf-8")
    extended = table.extended_from_files([staff])
    assert len(extended) == len(table) + 2
    # A new group, in both kana spellings.
    assert rewrite(extended, "ぴよぴよの日程") == "スマホ教室の日程"
    assert rewrite(extended, "ピヨピヨの日程") == "スマホ教室の日程"
    assert extended.canonical_term("ぴよぴよ") == "すまほ教室"
    # An override: 期限 meant 有効期限 in the defaults and now means 締め切り.
    assert rewrite(table, "期限") == "有効期限"
    assert rewrite(extended, "期限") == "締め切り"
    assert extended.canonical_term("期限") == "締め切り"
    # Longer default forms still win over the staff's shorter variant.
    assert rewrite(extended, "有効期限") == "有効期限"
    # The default table is not changed by extending it.
    assert rewrite(table, "ぴよぴよ") == "ぴよぴよ"


# -- analysis ---------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["スマホ", "スマートフォン", "けいたい", "携帯電話", "ケータイ"])
def test_analysis_maps_variants_to_one_term(word: str) -> None:
    assert TextNormalizer().analyze(word).terms == ("すまほ",)


@pytest.mark.parametrize("word", ["マイナポータル", "マイナ保険証"])
def test_analysis_of_a_protected_canonical_form_is_not_the_short_variant(word: str) -> None:
    terms = TextNormalizer().analyze(word).terms
    assert "まいなんばーかーど" not in terms


# -- through the engine -----------------------------------------------------------------------

DOCUMENTS = (
    FaqDocument(
        id="sumaho-moji",
        question="スマホの文字を大きくするには？",
        answer="設定の画面から文字の大きさを変えられます。",
    ),
    FaqDocument(
        id="mn-lost",
        question="マイナンバーカードをなくしました。",
        answer="0120-95-0178 に電話して、カードを一時停止してください。",
    ),
    FaqDocument(
        id="sumaho-class",
        question="スマホ教室はいつありますか？",
        answer="毎月第2水曜日の午後に公民館で開いています。",
    ),
    FaqDocument(
        id="qr", question="QRコードの読み取り方", answer="カメラアプリをQRコードに向けます。"
    ),
    FaqDocument(
        id="wifi", question="家でWi-Fiにつなぐには", answer="設定からネットワークを選びます。"
    ),
    FaqDocument(id="tax", question="確定申告はいつまでですか", answer="3月15日までです。"),
)


def engine_with(table: SynonymTable) -> FaqEngine:
    engine = FaqEngine(TextNormalizer(table))
    engine.rebuild(DOCUMENTS)
    return engine


@pytest.mark.parametrize(
    ("question", "expected_id"),
    [
        ("スマートフォンの文字を大きくしたい", "sumaho-moji"),
        ("けいたいの文字を大きくしたい", "sumaho-moji"),
        ("個人番号カードをなくした", "mn-lost"),
    ],
)
def test_synonym_path_makes_a_question_match(question: str, expected_id: str) -> None:
    with_synonyms = engine_with(SynonymTable.default()).match(question)
    assert with_synonyms.status == "answered"
    assert with_synonyms.best is not None
    assert with_synonyms.best.faq_id == expected_id
    # Without the table the same question is not answered: the synonym is what matched it.
    without = engine_with(SynonymTable([])).match(question)
    assert without.status != "answered"


def test_staff_synonym_file_turns_a_fallback_into_an_answer(
    isolated_settings_env: Path,
) -> None:
    question = "ぴよぴよはいつありますか"
    plain = create_engine_from_settings(Settings())
    plain.rebuild(DOCUMENTS)
    assert plain.match(question).status == "fallback"

    staff = isolated_settings_env / "staff_synonyms.tsv"
    staff.write_text("スマホ教室\tぴよぴよ\n", encoding="utf-8")
    engine = create_engine_from_settings(Settings(faq_synonyms_file=str(staff)))
    engine.rebuild(DOCUMENTS)
    result = engine.match(question)
    assert result.status == "answered"
    assert result.best is not None
    assert result.best.faq_id == "sumaho-class"
    # The defaults still apply next to the staff's file.
    assert engine.normalizer.synonyms.canonical_term("けいたい") == "すまほ"
