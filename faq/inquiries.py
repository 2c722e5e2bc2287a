"""What residents asked, what they left for staff, and how they rated answers.

Core code: no Telegram here, so a web demo or a future LINE adapter logs the same way. Every
function takes the caller's AsyncSession and never commits. Question text is masked with
faq.redact before it is stored, and never written to the logging module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast, get_args

from sqlalchemy import Table, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from faq.inquiry_models import Feedback, QuestionLog
from faq.redact import redact
from faq.types import MatchStatus
from madoguchi.db import utcnow

Channel = Literal["telegram", "demo"]
StaffStatus = Literal["open", "dismissed", "converted"]
FeedbackOutcome = Literal["recorded", "changed", "unchanged", "rejected"]

QUESTION_MAX = 5000


@dataclass(frozen=True, slots=True)
class QuestionLogEntry:
    id: int
    resident_id: int | None
    channel: str
    question: str
    outcome: str
    faq_id: str | None
    score: float
    created_at: datetime
    left_for_staff: bool
    staff_status: str


@dataclass(frozen=True, slots=True)
class FeedbackEntry:
    id: int
    resident_id: int
    question_log_id: int | None
    faq_id: str
    helpful: bool
    created_at: datetime
    updated_at: datetime


def _log_entry(row: QuestionLog) -> QuestionLogEntry:
    return QuestionLogEntry(
        id=row.id,
        resident_id=row.resident_id,
        channel=row.channel,
        question=row.question,
        outcome=row.outcome,
        faq_id=row.faq_id,
        score=row.score,
        created_at=row.created_at,
        left_for_staff=row.left_for_staff,
        staff_status=row.staff_status,
    )


def _feedback_entry(row: Feedback) -> FeedbackEntry:
    return FeedbackEntry(
        id=row.id,
        resident_id=row.resident_id,
        question_log_id=row.question_log_id,
        faq_id=row.faq_id,
        helpful=row.helpful,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


_QUESTION_LOGS = cast(Table, QuestionLog.__table__)
# No RETURNING: on SQLite a statement with RETURNING stays open (and keeps the write lock)
# until its row is fetched, a second round trip; the new id is the cursor's lastrowid.
_INSERT_QUESTION_LOG = insert(_QUESTION_LOGS)


async def log_question(
    session: AsyncSession,
    *,
    resident_id: int | None,
    channel: Channel,
    question: str,
    outcome: MatchStatus,
    faq_id: str | None,
    score: float,
    now: datetime | None = None,
) -> int:
    """Store one question (masked with faq.redact) and what the engine made of it; its id.

    One statement: with a session of `AppContext.log_session_factory` it is stored at once.
    """
    if channel not in get_args(Channel):
        raise ValueError(f"unknown channel {channel!r}")
    # One prepared Core INSERT: this runs for every question, and building an ORM object or a
    # fresh statement each time cost more than executing it.
    result = await session.execute(
        _INSERT_QUESTION_LOG,
        {
            "resident_id": resident_id,
            "channel": channel,
            "question": redact(question)[:QUESTION_MAX],
            "outcome": outcome,
            "faq_id": faq_id,
            "score": float(score),
            "created_at": now or utcnow(),
            "left_for_staff": False,
            "staff_status": "open",
        },
    )
    (log_id,) = result.inserted_primary_key  # type: ignore[attr-defined]
    return int(log_id)


async def get_question_log(session: AsyncSession, question_log_id: int) -> QuestionLogEntry | None:
    row = await session.get(QuestionLog, question_log_id, populate_existing=True)
    return None if row is None else _log_entry(row)


async def owned_question_log(
    session: AsyncSession, question_log_id: int, resident_id: int
) -> QuestionLogEntry | None:
    """The log if it exists and belongs to this resident, else None (forged or deleted)."""
    entry = await get_question_log(session, question_log_id)
    if entry is None or entry.resident_id != resident_id:
        return None
    return entry


async def leave_for_staff(session: AsyncSession, question_log_id: int, resident_id: int) -> bool:
    """The resident passes their question on to staff. Only their own log; False otherwise."""
    result = await session.execute(
        update(QuestionLog)
        .where(QuestionLog.id == question_log_id, QuestionLog.resident_id == resident_id)
        .values(left_for_staff=True, staff_status="open")
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _vote_key(question_log_id: int | None, faq_id: str) -> str:
    return f"{question_log_id if question_log_id is not None else '-'}:{faq_id}"


async def record_feedback(
    session: AsyncSession,
    *,
    resident_id: int,
    faq_id: str,
    helpful: bool,
    question_log_id: int | None = None,
    now: datetime | None = None,
) -> FeedbackOutcome:
    """Store a vote: one per resident, question and entry.

    "recorded" for a first vote, "changed" when the resident changed their mind, "unchanged"
    for a repeated tap, "rejected" when the question log is not the resident's own (forged or
    deleted). Concurrent double taps are safe: the insert upserts on the unique key.
    """
    now = now or utcnow()
    if (
        question_log_id is not None
        and await owned_question_log(session, question_log_id, resident_id) is None
    ):
        return "rejected"
    key = _vote_key(question_log_id, faq_id)
    existing = (
        await session.scalars(
            select(Feedback)
            .where(Feedback.resident_id == resident_id, Feedback.vote_key == key)
            .execution_options(populate_existing=True)
        )
    ).first()
    if existing is not None:
        if existing.helpful == helpful:
            return "unchanged"
        existing.helpful = helpful
        existing.updated_at = now
        await session.flush()
        return "changed"
    bind = session.get_bind()
    insert = postgresql_insert if bind.dialect.name == "postgresql" else sqlite_insert
    statement = insert(Feedback).values(
        resident_id=resident_id,
        question_log_id=question_log_id,
        faq_id=faq_id,
        helpful=helpful,
        vote_key=key,
        created_at=now,
        updated_at=now,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["resident_id", "vote_key"],
            set_={"helpful": statement.excluded.helpful, "updated_at": now},
        )
    )
    return "recorded"


async def list_feedback(
    session: AsyncSession, *, faq_id: str | None = None, limit: int = 500
) -> list[FeedbackEntry]:
    """Votes, newest first (for the admin: which resident, which entry, when)."""
    stmt = select(Feedback).order_by(Feedback.updated_at.desc(), Feedback.id.desc()).limit(limit)
    if faq_id is not None:
        stmt = stmt.where(Feedback.faq_id == faq_id)
    result = await session.scalars(stmt.execution_options(populate_existing=True))
    return [_feedback_entry(row) for row in result]


async def list_unanswered(
    session: AsyncSession,
    *,
    status: StaffStatus | None = "open",
    left_for_staff_only: bool = False,
    limit: int = 200,
) -> list[QuestionLogEntry]:
    """Questions the bot could not answer or that residents left for staff, newest first."""
    stmt = select(QuestionLog)
    if left_for_staff_only:
        stmt = stmt.where(QuestionLog.left_for_staff.is_(True))
    else:
        stmt = stmt.where(
            or_(QuestionLog.outcome == "fallback", QuestionLog.left_for_staff.is_(True))
        )
    if status is not None:
        stmt = stmt.where(QuestionLog.staff_status == status)
    stmt = stmt.order_by(QuestionLog.created_at.desc(), QuestionLog.id.desc()).limit(limit)
    result = await session.scalars(stmt.execution_options(populate_existing=True))
    return [_log_entry(row) for row in result]


async def set_staff_status(
    session: AsyncSession, question_log_id: int, status: StaffStatus
) -> bool:
    """Staff dismissed the question or turned it into an FAQ entry. False if it is gone."""
    if status not in get_args(StaffStatus):
        raise ValueError(f"unknown staff status {status!r}")
    result = await session.execute(
        update(QuestionLog).where(QuestionLog.id == question_log_id).values(staff_status=status)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
