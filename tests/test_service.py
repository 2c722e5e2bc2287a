"""FAQ answering as the adapters use it: placeholders and the `ask --json` object."""

from __future__ import annotations

import json
from typing import Any

import pytest

from faq.engine import FaqEngine, MatchThresholds
from faq.service import Answer, answer_question, render_answer, thresholds_from_settings
from faq.types import FaqDocument
from madoguchi.settings import SAMPLE_MARK, Settings, TownInfo

TOWN = TownInfo(
    town_name="テスト町",
    counter_name="テスト町役場 住民課",
    counter_phone="0123-45-6789",
    counter_hours="平日 9:00〜17:00",
    counter_place="役場 1階",
    class_contact="情報政策係",
)

DOCUMENTS = (
    FaqDocument(
        id="pin-forgot",
        question="マイナンバーカードの暗証番号を忘れました。",
        answer="{counter_name}（電話 {counter_phone}）で設定し直せます。{unknown_name}",
        alternatives=("暗証番号がわからなくなった",),
        url="https://example.jp/pin",
    ),
    FaqDocument(
        id="pin-change",
        question="マイナンバーカードの暗証番号を変更したいです。",
        answer="マイナンバーカードを持って{counter_place}に来てください。",
        alternatives=("暗証番号を変えたい",),
    ),
    FaqDocument(
        id="qr-read",
        question="QRコードの読み取り方を教えてください。",
        answer="カメラアプリをQRコードに向けてください。",
    ),
    FaqDocument(
        id="class-apply",
        question="スマホ教室に申し込みたいです。",
        answer="{class_contact}で受け付けています。",
    ),
)

CONTRACT_KEYS = {"status", "faq_id", "question", "answer", "score", "candidates"}


@pytest.fixture
def engine() -> FaqEngine:
    engine = FaqEngine(thresholds=MatchThresholds(answer=0.55, margin=0.06, suggest=0.36))
    engine.rebuild(DOCUMENTS)
    return engine


def as_json(answer: Answer) -> dict[str, Any]:
    """The object as `ask --json` prints it (and it must survive a JSON round trip)."""
    data = json.loads(json.dumps(answer.to_json(), ensure_ascii=False))
    assert isinstance(data, dict)
    assert set(data) >= CONTRACT_KEYS
    assert isinstance(data["candidates"], list)
    for candidate in data["candidates"]:
        assert set(candidate) == {"faq_id", "question", "score"}
        assert isinstance(candidate["faq_id"], str)
        assert isinstance(candidate["question"], str)
        assert isinstance(candidate["score"], float)
    assert isinstance(data["score"], float)
    return data


# -- render_answer ----------------------------------------------------------------------------


def test_render_answer_fills_every_town_placeholder() -> None:
    text = (
        "{town_name}の{counter_name}（{counter_place}）、電話 {counter_phone}、"
        "{counter_hours}。教室は{class_contact}。"
    )
    assert render_answer(text, TOWN) == (
        "テスト町のテスト町役場 住民課（役場 1階）、電話 0123-45-6789、"
        "平日 9:00〜17:00。教室は情報政策係。"
    )


def test_render_answer_leaves_unknown_and_odd_braces_alone() -> None:
    text = "{foo} と {Counter_phone} と { counter_phone } と {} と {{counter_phone}}"
    assert render_answer(text, TOWN) == (
        "{foo} と {Counter_phone} と { counter_phone } と {} と {0123-45-6789}"
    )


def test_render_answer_without_placeholders_is_unchanged() -> None:
    assert render_answer("窓口へどうぞ。", TOWN) == "窓口へどうぞ。"
    assert render_answer("", TOWN) == ""


def test_render_answer_does_not_expand_placeholders_inside_values() -> None:
    town = TownInfo(
        town_name="{counter_phone}",
        counter_name="窓口",
        counter_phone="0123",
        counter_hours="",
        counter_place="",
        class_contact="",
    )
    assert render_answer("{town_name}", town) == "{counter_phone}"


def test_settings_town_defaults_are_marked_samples(isolated_settings_env: object) -> None:
    town = Settings().town
    for value in town.placeholders().values():
        assert value.endswith(SAMPLE_MARK)


def test_thresholds_from_settings(isolated_settings_env: object) -> None:
    settings = Settings(
        faq_answer_threshold=0.7,
        faq_answer_margin=0.1,
        faq_suggest_threshold=0.4,
        faq_max_candidates=3,
    )
    assert thresholds_from_settings(settings) == MatchThresholds(
        answer=0.7, margin=0.1, suggest=0.4, max_candidates=3
    )


# -- answer_question --------------------------------------------------------------------------


def test_answered_shape(engine: FaqEngine) -> None:
    data = as_json(answer_question(engine, "暗証番号を忘れてしもた", TOWN))
    assert data["status"] == "answered"
    assert data["faq_id"] == "pin-forgot"
    assert data["question"] == "マイナンバーカードの暗証番号を忘れました。"
    assert (
        data["answer"] == "テスト町役場 住民課（電話 0123-45-6789）で設定し直せます。{unknown_name}"
    )
    assert data["url"] == "https://example.jp/pin"
    assert data["candidates"][0]["faq_id"] == "pin-forgot"
    assert data["score"] == data["candidates"][0]["score"]
    assert 0.55 <= data["score"] <= 1.0


def test_answered_without_url_gives_null(engine: FaqEngine) -> None:
    data = as_json(answer_question(engine, "QRコードを読みたい", TOWN))
    assert data["status"] == "answered"
    assert data["faq_id"] == "qr-read"
    assert data["url"] is None


def test_suggested_shape(engine: FaqEngine) -> None:
    data = as_json(answer_question(engine, "マイナンバーカードの暗証番号", TOWN))
    assert data["status"] == "suggested"
    assert data["faq_id"] is None
    assert data["question"] is None
    assert data["answer"] is None
    candidate_ids = [c["faq_id"] for c in data["candidates"]]
    assert {"pin-forgot", "pin-change"} <= set(candidate_ids)
    assert data["score"] == data["candidates"][0]["score"]
    assert data["candidates"][0]["question"] in {d.question for d in DOCUMENTS}


@pytest.mark.parametrize("question", ["今日の天気は？", "", "あ"])
def test_fallback_shape(engine: FaqEngine, question: str) -> None:
    data = as_json(answer_question(engine, question, TOWN))
    assert data["status"] == "fallback"
    assert data["faq_id"] is None
    assert data["question"] is None
    assert data["answer"] is None
    assert 0.0 <= data["score"] < 0.36


def test_fallback_on_an_empty_engine() -> None:
    data = as_json(answer_question(FaqEngine(), "暗証番号を忘れました", TOWN))
    assert data["status"] == "fallback"
    assert data["score"] == 0.0
    assert data["candidates"] == []
