"""Residents who talk to the bot: the minimum needed to keep their questions and votes apart.

Only the Telegram user id and three timestamps are stored: no names, usernames or phone
numbers. Every function takes the caller's AsyncSession and never commits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Integer, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from madoguchi.db import Base, utcnow

# last_seen_at is refreshed at most this often, so that a busy resident costs no write per
# message.
LAST_SEEN_RESOLUTION = timedelta(minutes=5)


class Resident(Base):
    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    # Set when Telegram says the resident blocked the bot (403); cleared when they write again.
    blocked_at: Mapped[datetime | None]


@dataclass(frozen=True, slots=True)
class ResidentInfo:
    id: int
    telegram_user_id: int
    created_at: datetime
    last_seen_at: datetime
    blocked_at: datetime | None


@dataclass(frozen=True, slots=True)
class ResidentDataSummary:
    """What /mydata shows: everything the bot keeps about one resident, counted."""

    since: datetime
    last_seen_at: datetime
    questions: int
    questions_left_for_staff: int
    feedback: int


@dataclass(frozen=True, slots=True)
class DeletedData:
    residents: int
    questions: int
    feedback: int


async def get_resident(session: AsyncSession, telegram_user_id: int) -> ResidentInfo | None:
    return await _load_info(session, telegram_user_id)


# Built once: every update looks its resident up, and building the statement each time cost
# more than running it.
_SELECT_RESIDENT = select(
    Resident.id,
    Resident.telegram_user_id,
    Resident.created_at,
    Resident.last_seen_at,
    Resident.blocked_at,
).where(Resident.telegram_user_id == bindparam("telegram_user_id"))


async def get_or_create_resident(
    session: AsyncSession, telegram_user_id: int, *, now: datetime | None = None
) -> ResidentInfo:
    """The resident with this Telegram id, created on first contact; last_seen_at refreshed."""
    resident, _wrote = await visit_resident(session, telegram_user_id, now=now)
    return resident


async def visit_resident(
    session: AsyncSession, telegram_user_id: int, *, now: datetime | None = None
) -> tuple[ResidentInfo, bool]:
    """As `get_or_create_resident`, and whether it wrote (created the row or refreshed
    last_seen_at), i.e. whether the session now holds uncommitted changes.

    Safe when two updates of a new resident arrive at once: the insert ignores a conflict on
    the unique Telegram id and the row is read back.
    """
    now = now or utcnow()
    # Core statements, not ORM objects: this runs for every update, and the ORM's identity
    # map and flush bookkeeping cost more than the statements themselves.
    info = await _load_info(session, telegram_user_id)
    if info is None:
        bind = session.get_bind()
        insert = postgresql_insert if bind.dialect.name == "postgresql" else sqlite_insert
        await session.execute(
            insert(Resident)
            .values(telegram_user_id=telegram_user_id, created_at=now, last_seen_at=now)
            .on_conflict_do_nothing(index_elements=["telegram_user_id"])
        )
        info = await _load_info(session, telegram_user_id)
        assert info is not None
        return info, True
    if now - info.last_seen_at >= LAST_SEEN_RESOLUTION:
        await session.execute(
            update(Resident).where(Resident.id == info.id).values(last_seen_at=now)
        )
        return replace(info, last_seen_at=now), True
    return info, False


async def _load_info(session: AsyncSession, telegram_user_id: int) -> ResidentInfo | None:
    row = (await session.execute(_SELECT_RESIDENT, {"telegram_user_id": telegram_user_id})).first()
    return None if row is None else ResidentInfo(*row)


async def mark_blocked(
    session: AsyncSession, telegram_user_id: int, *, now: datetime | None = None
) -> bool:
    """Remember that the resident blocked the bot (Telegram answered 403). False if unknown."""
    result = await session.execute(
        update(Resident)
        .where(Resident.telegram_user_id == telegram_user_id, Resident.blocked_at.is_(None))
        .values(blocked_at=now or utcnow())
    )
    if result.rowcount:  # type: ignore[attr-defined]
        return True
    return await _load_info(session, telegram_user_id) is not None


async def clear_blocked(session: AsyncSession, telegram_user_id: int) -> None:
    """The resident wrote again (or unblocked the bot): they can be messaged again."""
    await session.execute(
        update(Resident)
        .where(Resident.telegram_user_id == telegram_user_id, Resident.blocked_at.is_not(None))
        .values(blocked_at=None)
    )


async def resident_data_summary(session: AsyncSession, resident_id: int) -> ResidentDataSummary:
    from faq.inquiry_models import Feedback, QuestionLog

    row = await session.get(Resident, resident_id, populate_existing=True)
    if row is None:
        raise LookupError(f"resident {resident_id} does not exist")
    questions = await session.scalar(
        select(func.count()).select_from(QuestionLog).where(QuestionLog.resident_id == row.id)
    )
    left = await session.scalar(
        select(func.count())
        .select_from(QuestionLog)
        .where(QuestionLog.resident_id == row.id, QuestionLog.left_for_staff.is_(True))
    )
    feedback = await session.scalar(
        select(func.count()).select_from(Feedback).where(Feedback.resident_id == row.id)
    )
    return ResidentDataSummary(
        since=row.created_at,
        last_seen_at=row.last_seen_at,
        questions=questions or 0,
        questions_left_for_staff=left or 0,
        feedback=feedback or 0,
    )


async def delete_resident_data(session: AsyncSession, resident_id: int) -> DeletedData:
    """Delete the resident and everything tied to them (question logs, feedback).

    The foreign keys cascade too, but the explicit deletes make SQLite connections without
    `PRAGMA foreign_keys=ON` behave the same.
    """
    from faq.inquiry_models import Feedback, QuestionLog

    feedback = await session.execute(delete(Feedback).where(Feedback.resident_id == resident_id))
    questions = await session.execute(
        delete(QuestionLog).where(QuestionLog.resident_id == resident_id)
    )
    residents = await session.execute(delete(Resident).where(Resident.id == resident_id))
    session.expunge_all()
    return DeletedData(
        residents=residents.rowcount,  # type: ignore[attr-defined]
        questions=questions.rowcount,  # type: ignore[attr-defined]
        feedback=feedback.rowcount,  # type: ignore[attr-defined]
    )
