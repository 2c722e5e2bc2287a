"""Dashboard numbers for the staff admin: what residents asked, how the bot did, class fill.

Core code (no HTTP). Days are counted in the town's zone. Everything is read with the caller's
AsyncSession; counting by day happens in Python over (created_at, outcome) pairs, so it
behaves the same on SQLite and PostgreSQL whatever their date functions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from classes.types import ClassInfo, ClassStatus
from faq.inbox import InboxGroup, count_open, list_inbox
from faq.inquiry_models import Feedback, QuestionLog
from faq.normalize import TextNormalizer
from faq.store import entries_by_id

DEFAULT_DAYS = 14
OUTCOMES = ("answered", "suggested", "fallback")


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date  # in the town's zone
    answered: int = 0
    suggested: int = 0
    fallback: int = 0

    @property
    def total(self) -> int:
        return self.answered + self.suggested + self.fallback


@dataclass(frozen=True, slots=True)
class OutcomeShare:
    answered: int = 0
    suggested: int = 0
    fallback: int = 0

    @property
    def total(self) -> int:
        return self.answered + self.suggested + self.fallback

    def share(self, outcome: str) -> float:
        """0..1; 0 when there were no questions."""
        if not self.total:
            return 0.0
        return float(getattr(self, outcome)) / self.total

    def percent(self, outcome: str) -> int:
        return round(self.share(outcome) * 100)


@dataclass(frozen=True, slots=True)
class EntryFeedback:
    faq_id: str
    question: str | None  # None: the entry has been deleted since
    helpful: int
    unhelpful: int

    @property
    def total(self) -> int:
        return self.helpful + self.unhelpful


@dataclass(frozen=True, slots=True)
class ClassFill:
    class_id: int
    title: str
    venue: str
    starts_at: datetime  # UTC
    status: ClassStatus
    capacity: int
    confirmed_seats: int
    waitlisted_seats: int
    is_sample: bool

    @property
    def rate(self) -> float:
        """Confirmed seats / capacity, 0..1 (a class with no seats counts as full)."""
        if self.capacity <= 0:
            return 1.0
        return min(1.0, self.confirmed_seats / self.capacity)

    @property
    def percent(self) -> int:
        return round(self.rate * 100)


@dataclass(frozen=True, slots=True)
class DashboardStats:
    days: int
    first_day: date  # town zone, inclusive
    last_day: date  # town zone, inclusive (today)
    per_day: tuple[DayCount, ...]  # oldest first, one per day, zeros included
    outcomes: OutcomeShare
    feedback: tuple[EntryFeedback, ...]  # most 👎 first
    helpful_total: int
    unhelpful_total: int
    top_unanswered: tuple[InboxGroup, ...]  # open unanswered groups, largest first
    open_inbox_groups: int  # among the newest questions the inbox groups (inbox.DEFAULT_LIMIT)
    classes: tuple[ClassFill, ...]  # upcoming, soonest first
    open_questions: int = 0  # every open question of the inbox, grouped or not

    @property
    def max_per_day(self) -> int:
        return max((day.total for day in self.per_day), default=0)


def period_start(now: datetime, tz: tzinfo, days: int) -> tuple[date, datetime]:
    """First local day of the period and its start instant (aware)."""
    today = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    return first, datetime.combine(first, time(0), tzinfo=tz)


async def questions_per_day(
    session: AsyncSession, *, now: datetime, tz: tzinfo, days: int = DEFAULT_DAYS
) -> list[DayCount]:
    first, start = period_start(now, tz, days)
    rows = await session.execute(
        select(QuestionLog.created_at, QuestionLog.outcome).where(
            QuestionLog.created_at >= start, QuestionLog.created_at <= now
        )
    )
    counts: Counter[tuple[date, str]] = Counter()
    for created_at, outcome in rows.tuples():
        counts[(created_at.astimezone(tz).date(), outcome)] += 1
    result = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        result.append(DayCount(day, *(counts[(day, outcome)] for outcome in OUTCOMES)))
    return result


async def entry_feedback(
    session: AsyncSession, *, since: datetime | None = None, limit: int = 10
) -> tuple[list[EntryFeedback], int, int]:
    """👍/👎 per entry (votes last changed since `since`), most 👎 first; plus both totals."""
    stmt = select(Feedback.faq_id, Feedback.helpful, func.count()).group_by(
        Feedback.faq_id, Feedback.helpful
    )
    if since is not None:
        stmt = stmt.where(Feedback.updated_at >= since)
    votes: dict[str, list[int]] = {}
    for faq_id, helpful, count in (await session.execute(stmt)).tuples():
        votes.setdefault(faq_id, [0, 0])[0 if helpful else 1] += int(count)
    helpful_total = sum(pair[0] for pair in votes.values())
    unhelpful_total = sum(pair[1] for pair in votes.values())
    ranked = sorted(votes.items(), key=lambda item: (-item[1][1], -item[1][0], item[0]))[:limit]
    questions = {
        entry.id: entry.question
        for entry in await entries_by_id(session, [faq_id for faq_id, _ in ranked])
    }
    entries = [
        EntryFeedback(faq_id, questions.get(faq_id), helpful=pair[0], unhelpful=pair[1])
        for faq_id, pair in ranked
    ]
    return entries, helpful_total, unhelpful_total


def class_fill(classes: list[ClassInfo]) -> list[ClassFill]:
    return [
        ClassFill(
            class_id=info.id,
            title=info.title,
            venue=info.venue,
            starts_at=info.starts_at,
            status=info.status,
            capacity=info.capacity,
            confirmed_seats=info.confirmed_seats,
            waitlisted_seats=info.waitlisted_seats,
            is_sample=info.is_sample,
        )
        for info in classes
    ]


async def dashboard_stats(
    session: AsyncSession,
    *,
    now: datetime,
    tz: tzinfo,
    days: int = DEFAULT_DAYS,
    normalizer: TextNormalizer | None = None,
    top: int = 10,
    include_sample_classes: bool = True,
) -> DashboardStats:
    """Everything the dashboard shows, for the `days` local days ending today."""
    from classes.service import list_upcoming_classes

    if days < 1:
        raise ValueError("days must be at least 1")
    first, start = period_start(now, tz, days)
    per_day = await questions_per_day(session, now=now, tz=tz, days=days)
    outcomes = OutcomeShare(
        answered=sum(day.answered for day in per_day),
        suggested=sum(day.suggested for day in per_day),
        fallback=sum(day.fallback for day in per_day),
    )
    feedback, helpful_total, unhelpful_total = await entry_feedback(session, since=start, limit=top)
    groups = await list_inbox(session, normalizer=normalizer)
    unanswered = sorted(
        (group for group in groups if group.kind == "unanswered"),
        key=lambda group: (-group.count, -group.latest_at.timestamp()),
    )
    upcoming = await list_upcoming_classes(
        session, now=now, include_samples=include_sample_classes, limit=top
    )
    return DashboardStats(
        days=days,
        first_day=first,
        last_day=now.astimezone(tz).date(),
        per_day=tuple(per_day),
        outcomes=outcomes,
        feedback=tuple(feedback),
        helpful_total=helpful_total,
        unhelpful_total=unhelpful_total,
        top_unanswered=tuple(unanswered[:top]),
        open_inbox_groups=len(groups),
        classes=tuple(class_fill(upcoming)),
        open_questions=await count_open(session),
    )
