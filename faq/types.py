"""Plain data types of the FAQ core, shared by the store, the engine and the adapters.

They are frozen dataclasses, never ORM rows, so they are safe to pass around after the
session that loaded them has closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

MatchStatus = Literal["answered", "suggested", "fallback"]


@dataclass(frozen=True, slots=True)
class FaqDocument:
    """What the matching engine indexes for one published entry."""

    id: str
    question: str
    answer: str
    alternatives: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    category: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class FaqEntryData:
    """The editable fields of an entry: what staff type in a form or a CSV row."""

    id: str
    question: str
    answer: str
    alternatives: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    category: str = ""
    reference_url: str = ""
    department: str = ""
    published: bool = True
    staff_note: str = ""  # for staff only (e.g. what to confirm locally); never shown to residents

    def document(self) -> FaqDocument:
        return FaqDocument(
            id=self.id,
            question=self.question,
            answer=self.answer,
            alternatives=self.alternatives,
            keywords=self.keywords,
            category=self.category,
            url=self.reference_url,
        )


@dataclass(frozen=True, slots=True)
class FaqEntry:
    """An entry as stored, with its bookkeeping."""

    id: str
    question: str
    answer: str
    alternatives: tuple[str, ...]
    keywords: tuple[str, ...]
    category: str
    reference_url: str
    department: str
    published: bool
    staff_note: str
    created_at: datetime
    updated_at: datetime
    updated_by: str
    revision: int

    def data(self) -> FaqEntryData:
        return FaqEntryData(
            id=self.id,
            question=self.question,
            answer=self.answer,
            alternatives=self.alternatives,
            keywords=self.keywords,
            category=self.category,
            reference_url=self.reference_url,
            department=self.department,
            published=self.published,
            staff_note=self.staff_note,
        )

    def document(self) -> FaqDocument:
        return self.data().document()


@dataclass(frozen=True, slots=True)
class FaqRevision:
    """One kept version of an entry (every create, edit, restore and delete)."""

    entry_id: str
    revision: int
    action: Literal["create", "update", "restore", "delete"]
    data: FaqEntryData
    changed_at: datetime
    changed_by: str


@dataclass(frozen=True, slots=True)
class Candidate:
    faq_id: str
    question: str
    score: float


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The engine's verdict on one query."""

    status: MatchStatus
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None
