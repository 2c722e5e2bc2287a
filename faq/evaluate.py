"""Retrieval quality and latency of the engine on a labelled question set.

Contract (DESIGN.md): FAQ file and query file are JSON Lines; the engine is the very one the
bot uses, built in memory; the JSON report has faq_entries, queries, hit_at_1, hit_at_5,
mrr_at_10, index_build_s, query_ms_p50, query_ms_p99, and, where queries carry
"expect": "fallback", fallback_recall and wrong_answer_rate. It also prints the trade-off of
the outcome thresholds, so that they can be chosen from data rather than guessed.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faq.engine import FaqEngine, MatchThresholds
from faq.faq_file import read_faq_jsonl


@dataclass(frozen=True, slots=True)
class LabelledQuery:
    query: str
    relevant_ids: frozenset[str]
    expect_fallback: bool


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    query: LabelledQuery
    ranked_ids: tuple[str, ...]
    scores: tuple[float, ...]
    status: str
    elapsed_ms: float


@dataclass(slots=True)
class EvaluationReport:
    faq_entries: int
    queries: int
    hit_at_1: float
    hit_at_5: float
    mrr_at_10: float
    index_build_s: float
    query_ms_p50: float
    query_ms_p99: float
    fallback_recall: float | None = None
    wrong_answer_rate: float | None = None
    answered_share: float | None = None
    answered_precision: float | None = None
    threshold_table: list[dict[str, float]] = field(default_factory=list)
    suggest_table: list[dict[str, float]] = field(default_factory=list)
    # Whether the engine had a word-vector table (`madoguchi faq vectors`): rankings differ.
    word_vectors: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "faq_entries": self.faq_entries,
            "queries": self.queries,
            "hit_at_1": round(self.hit_at_1, 4),
            "hit_at_5": round(self.hit_at_5, 4),
            "mrr_at_10": round(self.mrr_at_10, 4),
            "index_build_s": round(self.index_build_s, 4),
            "query_ms_p50": round(self.query_ms_p50, 3),
            "query_ms_p99": round(self.query_ms_p99, 3),
        }
        if self.fallback_recall is not None:
            data["fallback_recall"] = round(self.fallback_recall, 4)
            data["wrong_answer_rate"] = round(self.wrong_answer_rate or 0.0, 4)
        if self.answered_share is not None:
            data["answered_share"] = round(self.answered_share, 4)
            data["answered_precision"] = round(self.answered_precision or 0.0, 4)
        data["word_vectors"] = self.word_vectors
        data["threshold_table"] = self.threshold_table
        data["suggest_table"] = self.suggest_table
        return data


def read_queries(path: Path) -> list[LabelledQuery]:
    queries: list[LabelledQuery] = []
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                relevant = raw.get("relevant_ids") or []
                if not isinstance(raw["query"], str) or not isinstance(relevant, list):
                    raise TypeError("query must be a string and relevant_ids a list")
                query = LabelledQuery(
                    query=raw["query"],
                    relevant_ids=frozenset(str(i) for i in relevant),
                    expect_fallback=raw.get("expect") == "fallback",
                )
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
                raise ValueError(f"{path}:{number}: not a query line ({error})") from error
            queries.append(query)
    return queries


def _percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def run_queries(engine: FaqEngine, queries: Sequence[LabelledQuery]) -> list[QueryOutcome]:
    outcomes: list[QueryOutcome] = []
    for labelled in queries:
        started = time.perf_counter()
        ranked = engine.rank(labelled.query, limit=10)
        status = engine.thresholds.decide([c.score for c in ranked])
        elapsed = (time.perf_counter() - started) * 1000
        outcomes.append(
            QueryOutcome(
                query=labelled,
                ranked_ids=tuple(c.faq_id for c in ranked),
                scores=tuple(c.score for c in ranked),
                status=status,
                elapsed_ms=elapsed,
            )
        )
    return outcomes


def _is_answerable(outcome: QueryOutcome) -> bool:
    return not outcome.query.expect_fallback and bool(outcome.query.relevant_ids)


def outcome_rates(
    outcomes: Sequence[QueryOutcome], thresholds: MatchThresholds
) -> dict[str, float]:
    """Answered share and precision, wrong answers and fallback recall under thresholds."""
    answerable = [o for o in outcomes if _is_answerable(o)]
    out_of_scope = [o for o in outcomes if o.query.expect_fallback]
    answered = correct = kept = 0
    for o in answerable:
        status = thresholds.decide(list(o.scores))
        kept += status != "fallback"
        if status == "answered":
            answered += 1
            correct += o.ranked_ids[0] in o.query.relevant_ids
    oos_status = Counter(thresholds.decide(list(o.scores)) for o in out_of_scope)
    fell_back = oos_status["fallback"]
    wrongly_answered_oos = oos_status["answered"]
    return {
        "answered_share": answered / len(answerable) if answerable else 0.0,
        "answered_precision": correct / answered if answered else 1.0,
        "wrong_answer_rate": (answered - correct) / len(answerable) if answerable else 0.0,
        "fallback_recall": fell_back / len(out_of_scope) if out_of_scope else 0.0,
        "out_of_scope_answered": wrongly_answered_oos / len(out_of_scope) if out_of_scope else 0.0,
        # Answerable questions that get an answer or choices rather than "ask a person".
        "not_fallback_share": kept / len(answerable) if answerable else 0.0,
    }


_TABLE_STEPS = (-0.1, -0.075, -0.05, -0.025, 0.0, 0.025, 0.05, 0.075, 0.1)


def threshold_table(
    outcomes: Sequence[QueryOutcome], base: MatchThresholds
) -> list[dict[str, float]]:
    """The trade-off around the configured answer threshold (the others kept)."""
    rows: list[dict[str, float]] = []
    for step in _TABLE_STEPS:
        answer = round(base.answer + step, 3)
        thresholds = MatchThresholds(
            answer=answer,
            margin=base.margin,
            suggest=min(base.suggest, answer),
            max_candidates=base.max_candidates,
        )
        row = {"answer_threshold": answer, **outcome_rates(outcomes, thresholds)}
        rows.append({k: round(v, 4) for k, v in row.items()})
    return rows


def suggest_table(
    outcomes: Sequence[QueryOutcome], base: MatchThresholds
) -> list[dict[str, float]]:
    """The trade-off around the configured suggest threshold: fallback recall against the
    share of answerable questions that still get an answer or choices."""
    rows: list[dict[str, float]] = []
    for step in _TABLE_STEPS:
        suggest = round(base.suggest + step, 3)
        thresholds = MatchThresholds(
            answer=max(base.answer, suggest),
            margin=base.margin,
            suggest=suggest,
            max_candidates=base.max_candidates,
        )
        rates = outcome_rates(outcomes, thresholds)
        row = {
            "suggest_threshold": suggest,
            "fallback_recall": rates["fallback_recall"],
            "not_fallback_share": rates["not_fallback_share"],
        }
        rows.append({k: round(v, 4) for k, v in row.items()})
    return rows


def evaluate(engine: FaqEngine, faq_path: Path, queries_path: Path) -> EvaluationReport:
    entries = [e for e in read_faq_jsonl(faq_path) if e.published]
    queries = read_queries(queries_path)
    documents = [e.document() for e in entries]  # the same conversion the store uses
    started = time.perf_counter()
    engine.rebuild(documents)
    build_s = time.perf_counter() - started

    outcomes = run_queries(engine, queries)
    answerable = [o for o in outcomes if _is_answerable(o)]
    hits1 = hits5 = 0
    reciprocal = 0.0
    for o in answerable:
        relevant = o.query.relevant_ids
        hits1 += bool(o.ranked_ids[:1]) and o.ranked_ids[0] in relevant
        hits5 += any(i in relevant for i in o.ranked_ids[:5])
        for rank, entry_id in enumerate(o.ranked_ids[:10], start=1):
            if entry_id in relevant:
                reciprocal += 1.0 / rank
                break
    n = max(len(answerable), 1)
    latencies = [o.elapsed_ms for o in outcomes]
    rates = outcome_rates(outcomes, engine.thresholds)
    has_fallback_queries = any(o.query.expect_fallback for o in outcomes)
    return EvaluationReport(
        faq_entries=len(documents),
        queries=len(outcomes),
        hit_at_1=hits1 / n,
        hit_at_5=hits5 / n,
        mrr_at_10=reciprocal / n,
        index_build_s=build_s,
        query_ms_p50=statistics.median(latencies) if latencies else 0.0,
        query_ms_p99=_percentile(latencies, 0.99),
        fallback_recall=rates["fallback_recall"] if has_fallback_queries else None,
        wrong_answer_rate=rates["wrong_answer_rate"] if has_fallback_queries else None,
        answered_share=rates["answered_share"],
        answered_precision=rates["answered_precision"],
        threshold_table=threshold_table(outcomes, engine.thresholds),
        suggest_table=suggest_table(outcomes, engine.thresholds),
        word_vectors=engine.word_vectors is not None,
    )


def format_report(report: EvaluationReport) -> str:
    lines = [
        f"FAQ entries        {report.faq_entries}",
        f"queries            {report.queries}",
        f"hit@1              {report.hit_at_1:.3f}",
        f"hit@5              {report.hit_at_5:.3f}",
        f"MRR@10             {report.mrr_at_10:.3f}",
        f"index build        {report.index_build_s:.3f} s",
        f"query latency      p50 {report.query_ms_p50:.2f} ms, p99 {report.query_ms_p99:.2f} ms",
        f"word vectors       {'yes' if report.word_vectors else 'no (no table)'}",
    ]
    if report.fallback_recall is not None:
        lines.append(f"fallback recall    {report.fallback_recall:.3f}")
        lines.append(f"wrong-answer rate  {report.wrong_answer_rate or 0.0:.3f}")
    if report.answered_share is not None:
        lines.append(
            f"answered           {report.answered_share:.3f} of answerable questions, "
            f"{report.answered_precision or 0.0:.3f} of them correct"
        )
    lines.append("")
    lines.append("answer threshold → answered share, precision, wrong answers, fallback recall")
    lines.extend(
        f"  {row['answer_threshold']:.3f}  answered {row['answered_share']:.3f}  "
        f"precision {row['answered_precision']:.3f}  wrong {row['wrong_answer_rate']:.3f}  "
        f"fallback recall {row['fallback_recall']:.3f}"
        for row in report.threshold_table
    )
    if report.suggest_table:
        lines.append("")
        lines.append(
            "suggest threshold → fallback recall, answerable questions not sent to a person"
        )
        lines.extend(
            f"  {row['suggest_threshold']:.3f}  fallback recall {row['fallback_recall']:.3f}  "
            f"not fallback {row['not_fallback_share']:.3f}"
            for row in report.suggest_table
        )
    return "\n".join(lines)
