"""FAQ answering as the adapters use it: engine built from the database, answers rendered.

Adapters (bot, admin, CLI) call these functions; none of them holds matching rules.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from faq.engine import FaqEngine, MatchThresholds
from faq.normalize import TextNormalizer
from faq.synonyms import SynonymTable
from faq.types import Candidate, MatchStatus
from faq.wordvectors import WordVectors, load_word_vectors
from madoguchi.settings import Settings, TownInfo

_PLACEHOLDER_RE = re.compile(r"\{([a-z_]+)\}")


def thresholds_from_settings(settings: Settings) -> MatchThresholds:
    return MatchThresholds(
        answer=settings.faq_answer_threshold,
        margin=settings.faq_answer_margin,
        suggest=settings.faq_suggest_threshold,
        max_candidates=settings.faq_max_candidates,
    )


def create_engine_from_settings(settings: Settings) -> FaqEngine:
    """An empty engine configured as the deployment says (thresholds, extra synonyms)."""
    synonyms = SynonymTable.default()
    if settings.faq_synonyms_file:
        synonyms = synonyms.extended_from_files([Path(settings.faq_synonyms_file)])
    return FaqEngine(
        TextNormalizer(synonyms),
        thresholds_from_settings(settings),
        word_vectors=word_vectors_from_settings(settings),
    )


def word_vectors_from_settings(settings: Settings) -> WordVectors | None:
    """The word-vector table the settings name, mapped; None when unset or not built."""
    if not settings.faq_word_vectors:
        return None
    return load_word_vectors(Path(settings.faq_word_vectors))


def render_answer(text: str, town: TownInfo) -> str:
    """Fill the town placeholders ({counter_phone}, ...) that curated answers contain.

    Unknown names are left as they are, so a typo in an answer stays visible to staff.
    """
    values = town.placeholders()
    return _PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the bot would say to one question: the `ask --json` object of DESIGN.md."""

    status: MatchStatus
    faq_id: str | None
    question: str | None
    answer: str | None
    url: str | None
    score: float
    candidates: tuple[Candidate, ...]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["candidates"] = [asdict(c) for c in self.candidates]
        return data


def answer_question(engine: FaqEngine, text: str, town: TownInfo) -> Answer:
    result = engine.match(text)
    best = result.best
    if result.status != "answered" or best is None:
        return Answer(
            status=result.status,
            faq_id=None,
            question=None,
            answer=None,
            url=None,
            score=best.score if best else 0.0,
            candidates=result.candidates,
        )
    document = engine.get(best.faq_id)
    assert document is not None  # ranked entries are always indexed
    return Answer(
        status="answered",
        faq_id=document.id,
        question=document.question,
        answer=render_answer(document.answer, town),
        url=document.url or None,
        score=best.score,
        candidates=result.candidates,
    )
