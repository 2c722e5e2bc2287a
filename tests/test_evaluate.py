"""`faq evaluate`: metrics on a tiny labelled set whose values are known by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from faq.engine import FaqEngine, MatchThresholds
from faq.evaluate import EvaluationReport, evaluate, format_report, read_queries

CONTRACT_KEYS = {
    "faq_entries",
    "queries",
    "hit_at_1",
    "hit_at_5",
    "mrr_at_10",
    "index_build_s",
    "query_ms_p50",
    "query_ms_p99",
}
FALLBACK_KEYS = {"fallback_recall", "wrong_answer_rate"}

FAQ: list[dict[str, Any]] = [
    {
        "id": "pin-forgot",
        "question": "マイナンバーカードの暗証番号を忘れました",
        "answer": "役場の窓口で暗証番号を設定し直せます。",
        "alternatives": ["暗証番号がわからなくなった"],
        "category": "マイナンバーカード",
    },
    {
        "id": "pin-change",
        "question": "マイナンバーカードの暗証番号を変更したい",
        "answer": "役場の窓口で暗証番号を変更できます。",
    },
    {
        "id": "card-lost",
        "question": "マイナンバーカードをなくしました",
        "answer": "0120-95-0178 に電話して一時停止してください。",
    },
    {
        "id": "qr",
        "question": "QRコードの読み取り方を教えてください",
        "answer": "カメラアプリをQRコードに向けます。",
    },
    {
        "id": "wifi",
        "question": "家でWi-Fiにつなぐ方法",
        "answer": "設定からネットワークを選びます。",
        "source": "an unknown key of the FAQ file",
    },
    {
        "id": "hidden",
        "question": "職員だけが見る非公開の質問",
        "answer": "公開されていません。",
        "published": False,
    },
]

# Hand computation (5 published entries, so every entry is ranked for every query):
#   q1 exact question of pin-forgot, relevant pin-forgot   → rank 1, answered, correct
#   q2 exact question of qr, relevant qr or wifi           → rank 1, answered, correct
#   q3 pin-forgot's question, labelled pin-change only     → pin-change ranks 2 (it shares
#      マイナンバーカード and 暗証番号), answered with pin-forgot: a wrong answer
#   q4 labelled with the unpublished entry                 → found nowhere, not answered
#   q5, q6 out of scope, "expect": "fallback"              → fallback
# hit@1 = 2/4, hit@5 = 3/4, MRR@10 = (1 + 1 + 1/2 + 0)/4, wrong answers 1/4, fallback 2/2,
# answered 3 of 4 answerable, 2 of them correct.
QUERIES: list[dict[str, Any]] = [
    {"query": "マイナンバーカードの暗証番号を忘れました", "relevant_ids": ["pin-forgot"]},
    {
        "query": "QRコードの読み取り方を教えてください",
        "relevant_ids": ["qr", "wifi"],
        "style": "polite",
        "notes": {"nested": ["ignored", 1]},
    },
    {"query": "マイナンバーカードの暗証番号を忘れました。", "relevant_ids": ["pin-change"]},
    {"query": "職員だけが見る非公開の質問", "relevant_ids": ["hidden"]},
    {"query": "今日の天気は？", "relevant_ids": [], "expect": "fallback", "style": "short"},
    {"query": "明日は雨が降りますか", "expect": "fallback"},
]


def write_jsonl(path: Path, records: list[dict[str, Any]], *, bom: bool = False) -> Path:
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n\n" for r in records)
    path.write_text(("\ufeff" if bom else "") + lines, encoding="utf-8")
    return path


def make_engine() -> FaqEngine:
    # The thresholds the hand computation assumes (the defaults get re-calibrated).
    return FaqEngine(thresholds=MatchThresholds(answer=0.62, margin=0.06, suggest=0.36))


@pytest.fixture
def report(tmp_path: Path) -> EvaluationReport:
    faq = write_jsonl(tmp_path / "faq.jsonl", FAQ, bom=True)
    queries = write_jsonl(tmp_path / "queries.jsonl", QUERIES)
    return evaluate(make_engine(), faq, queries)


def test_exact_metrics(report: EvaluationReport) -> None:
    assert report.faq_entries == 5  # the unpublished entry is not indexed
    assert report.queries == 6
    assert report.hit_at_1 == pytest.approx(0.5)
    assert report.hit_at_5 == pytest.approx(0.75)
    assert report.mrr_at_10 == pytest.approx(0.625)
    assert report.fallback_recall == pytest.approx(1.0)
    assert report.wrong_answer_rate == pytest.approx(0.25)
    assert report.answered_share == pytest.approx(0.75)
    assert report.answered_precision == pytest.approx(2 / 3)


def test_to_json_contract(report: EvaluationReport) -> None:
    data = json.loads(json.dumps(report.to_json()))
    assert set(data) >= CONTRACT_KEYS | FALLBACK_KEYS
    assert data["faq_entries"] == 5
    assert data["queries"] == 6
    assert data["hit_at_1"] == 0.5
    assert data["hit_at_5"] == 0.75
    assert data["mrr_at_10"] == 0.625
    assert data["fallback_recall"] == 1.0
    assert data["wrong_answer_rate"] == 0.25
    assert data["answered_precision"] == 0.6667
    assert data["index_build_s"] >= 0.0
    assert 0.0 <= data["query_ms_p50"] <= data["query_ms_p99"]
    assert data["threshold_table"]
    for row in data["threshold_table"]:
        assert 0.0 <= row["wrong_answer_rate"] <= 1.0


def test_trade_off_tables_centre_on_the_configured_thresholds(report: EvaluationReport) -> None:
    data = report.to_json()
    answers = [row["answer_threshold"] for row in data["threshold_table"]]
    suggests = [row["suggest_threshold"] for row in data["suggest_table"]]
    assert 0.62 in answers
    assert 0.36 in suggests
    assert answers == sorted(answers)
    assert suggests == sorted(suggests)
    recall = [row["fallback_recall"] for row in data["suggest_table"]]
    kept = [row["not_fallback_share"] for row in data["suggest_table"]]
    # A higher suggest threshold sends more questions to a person, never fewer.
    assert recall == sorted(recall)
    assert kept == sorted(kept, reverse=True)


def test_format_report_mentions_the_metrics(report: EvaluationReport) -> None:
    text = format_report(report)
    for label in (
        "hit@1",
        "hit@5",
        "MRR@10",
        "fallback recall",
        "wrong-answer rate",
        "suggest threshold",
    ):
        assert label in text
    assert "0.625" in text


def test_without_fallback_queries_there_are_no_fallback_keys(tmp_path: Path) -> None:
    faq = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    queries = write_jsonl(tmp_path / "queries.jsonl", QUERIES[:2])
    report = evaluate(make_engine(), faq, queries)
    data = report.to_json()
    assert set(data) >= CONTRACT_KEYS
    assert not FALLBACK_KEYS & set(data)
    assert data["hit_at_1"] == 1.0
    assert data["mrr_at_10"] == 1.0


def test_empty_query_file(tmp_path: Path) -> None:
    faq = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n\n", encoding="utf-8")
    report = evaluate(make_engine(), faq, queries)
    assert report.queries == 0
    assert report.hit_at_1 == 0.0
    assert report.query_ms_p50 == 0.0


def test_read_queries_ignores_unknown_keys(tmp_path: Path) -> None:
    queries = read_queries(write_jsonl(tmp_path / "q.jsonl", QUERIES))
    assert len(queries) == 6
    assert queries[1].relevant_ids == frozenset({"qr", "wifi"})
    assert not queries[1].expect_fallback
    assert queries[4].expect_fallback
    assert queries[5].relevant_ids == frozenset()


@pytest.mark.parametrize(
    "bad_line",
    [
        "{not json",
        '{"relevant_ids": ["qr"]}',
        '["query", "qr"]',
        "42",
        '{"query": "x", "relevant_ids": 5}',
    ],
)
def test_malformed_query_line_names_the_line(tmp_path: Path, bad_line: str) -> None:
    path = tmp_path / "queries.jsonl"
    path.write_text(
        '{"query": "暗証番号", "relevant_ids": ["pin-forgot"]}\n\n' + bad_line + "\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"queries\.jsonl:3:"):
        read_queries(path)
    faq = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    with pytest.raises(ValueError, match=r":3:"):
        evaluate(make_engine(), faq, path)


def test_relevant_ids_must_be_a_list(tmp_path: Path) -> None:
    path = tmp_path / "queries.jsonl"
    path.write_text('{"query": "QRコード", "relevant_ids": "qr"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r":1:"):
        read_queries(path)


def test_malformed_faq_line_names_the_line(tmp_path: Path) -> None:
    faq = tmp_path / "faq.jsonl"
    faq.write_text(
        json.dumps(FAQ[0], ensure_ascii=False) + "\n" + '{"id": "x", "question": "q"}\n',
        encoding="utf-8",
    )
    queries = write_jsonl(tmp_path / "queries.jsonl", QUERIES)
    with pytest.raises(ValueError, match=r"faq\.jsonl:2:"):
        evaluate(make_engine(), faq, queries)
