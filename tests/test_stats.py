"""Dashboard numbers (faq.stats) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from faq.inquiries import log_question, record_feedback
from faq.stats import (
    DayCount,
    OutcomeShare,
    dashboard_stats,
    entry_feedback,
    period_start,
    questions_per_day,
)
from faq.store import create_entry
from faq.types import FaqEntryData, MatchStatus
from madoguchi.models import import_all_models
from madoguchi.residents import get_or_create_resident

import_all_models()

TOKYO = ZoneInfo("Asia/Tokyo")
# 2025-03-10 12:00 in Tokyo.
NOW = datetime(2025, 3, 10, 3, 0, tzinfo=UTC)


async def _ask(
    session: AsyncSession, at: datetime, outcome: MatchStatus, text: str = "質問", user: int = 1
) -> int:
    resident = await get_or_create_resident(session, 5000 + user, now=at)
    return await log_question(
        session,
        resident_id=resident.id,
        channel="telegram",
        question=text,
        outcome=outcome,
        faq_id=None if outcome == "fallback" else "a",
        score=0.5,
        now=at,
    )


def test_period_start_is_local_midnight() -> None:
    first, start = period_start(NOW, TOKYO, 14)
    assert first == date(2025, 2, 25)
    assert start == datetime(2025, 2, 25, tzinfo=TOKYO)
    assert start.astimezone(UTC) == datetime(2025, 2, 24, 15, 0, tzinfo=UTC)


def test_outcome_share_and_day_total() -> None:
    share = OutcomeShare(answered=6, suggested=3, fallback=1)
    assert share.total == 10
    assert share.share("answered") == 0.6
    assert share.percent("fallback") == 10
    assert OutcomeShare().share("answered") == 0.0
    assert DayCount(date(2025, 1, 1), 1, 2, 3).total == 6


async def test_questions_per_day_counts_in_the_town_zone(session: AsyncSession) -> None:
    # 2025-03-09 15:30 UTC is 2025-03-10 00:30 in Tokyo: today, not yesterday.
    await _ask(session, datetime(2025, 3, 9, 15, 30, tzinfo=UTC), "answered")
    await _ask(session, datetime(2025, 3, 9, 14, 30, tzinfo=UTC), "fallback")  # 3/9 23:30
    await _ask(session, datetime(2025, 3, 9, 14, 45, tzinfo=UTC), "suggested")
    await _ask(session, datetime(2025, 2, 24, 14, 59, tzinfo=UTC), "answered")  # before period
    await _ask(session, datetime(2025, 2, 24, 15, 0, tzinfo=UTC), "answered")  # first day 0:00
    await _ask(session, NOW + timedelta(minutes=1), "answered")  # in the future: not counted
    await session.commit()

    days = await questions_per_day(session, now=NOW, tz=TOKYO, days=14)
    assert len(days) == 14
    assert days[0] == DayCount(date(2025, 2, 25), answered=1)
    assert days[-1] == DayCount(date(2025, 3, 10), answered=1)
    assert days[-2] == DayCount(date(2025, 3, 9), suggested=1, fallback=1)
    assert sum(day.total for day in days) == 4


async def test_entry_feedback_ranks_by_thumbs_down(session: AsyncSession) -> None:
    for entry_id in ("a", "b"):
        await create_entry(
            session,
            FaqEntryData(id=entry_id, question=f"質問{entry_id}", answer="答え"),
            actor="t",
        )
    votes = [("a", True), ("a", False), ("b", False), ("b", False), ("gone", True)]
    for user, (entry_id, helpful) in enumerate(votes):
        log = await _ask(session, NOW - timedelta(hours=1), "answered", user=user)
        resident = await get_or_create_resident(session, 5000 + user)
        await record_feedback(
            session,
            resident_id=resident.id,
            faq_id=entry_id,
            helpful=helpful,
            question_log_id=log,
            now=NOW - timedelta(hours=1),
        )
    await session.commit()
    entries, up, down = await entry_feedback(session)
    assert (up, down) == (2, 3)
    assert [(e.faq_id, e.question, e.helpful, e.unhelpful) for e in entries] == [
        ("b", "質問b", 0, 2),
        ("a", "質問a", 1, 1),
        ("gone", None, 1, 0),
    ]
    since_later, h, u = await entry_feedback(session, since=NOW)
    assert (since_later, h, u) == ([], 0, 0)


async def test_dashboard_stats_puts_it_together(session: AsyncSession) -> None:
    pytest.importorskip("classes.service")
    await _ask(session, NOW - timedelta(hours=2), "answered")
    await _ask(session, NOW - timedelta(hours=2), "fallback", text="犬の登録はどこで", user=2)
    await _ask(session, NOW - timedelta(hours=1), "fallback", text="犬の登録はどこで？", user=3)
    await _ask(session, NOW - timedelta(days=1), "fallback", text="児童手当の申請", user=4)
    await session.commit()
    stats = await dashboard_stats(session, now=NOW, tz=TOKYO, days=7)
    assert stats.days == 7
    assert stats.first_day == date(2025, 3, 4)
    assert stats.last_day == date(2025, 3, 10)
    assert stats.outcomes == OutcomeShare(answered=1, suggested=0, fallback=3)
    assert stats.max_per_day == 3
    assert [group.count for group in stats.top_unanswered] == [2, 1]
    assert stats.top_unanswered[0].representative.question == "犬の登録はどこで？"
    assert stats.open_inbox_groups == 2
    assert stats.open_questions == 3  # every open question, not only those grouped
    assert stats.classes == ()
    with pytest.raises(ValueError, match="days"):
        await dashboard_stats(session, now=NOW, tz=TOKYO, days=0)


async def test_dashboard_class_fill_rates(session: AsyncSession) -> None:
    from classes.notice_queue import ReminderPolicy
    from classes.service import cancel_class, create_class, sign_up
    from classes.types import ClassDraft

    def draft(title: str, days: int, capacity: int) -> ClassDraft:
        return ClassDraft(
            title=title,
            venue="公民館",
            starts_at=NOW + timedelta(days=days),
            ends_at=NOW + timedelta(days=days, hours=1),
            capacity=capacity,
            registration_deadline=NOW + timedelta(days=days - 1),
        )

    later = await create_class(session, draft("後の教室", 9, 4), actor="t", now=NOW)
    soon = await create_class(session, draft("次の教室", 2, 2), actor="t", now=NOW)
    gone = await create_class(session, draft("中止の教室", 3, 2), actor="t", now=NOW)
    await cancel_class(session, gone.id, actor="t", now=NOW)
    policy = ReminderPolicy(tz=TOKYO)
    for user, seats in ((1, 2), (2, 1)):
        resident = await get_or_create_resident(session, 7000 + user, now=NOW)
        await sign_up(
            session,
            soon.id,
            resident.id,
            name="山田",
            phone=None,
            seats=seats,
            now=NOW,
            policy=policy,
        )
    await session.commit()
    stats = await dashboard_stats(session, now=NOW, tz=TOKYO)
    assert [
        (c.class_id, c.confirmed_seats, c.waitlisted_seats, c.percent) for c in stats.classes
    ] == [
        (soon.id, 2, 1, 100),
        (later.id, 0, 0, 0),
    ]
