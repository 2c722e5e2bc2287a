"""The notification dispatcher: claims, sends once, recovers, paces — on SQLite and PostgreSQL.

Time is a ManualClock: the dispatcher's rate limiter and 429 waits sleep on it, so a run that
takes 400 s of clock time takes well under a second of real time per thousand rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from classes.clock import ManualClock
from classes.models import ClassNotification, ClassRegistration, SmartphoneClass
from classes.notifications import (
    OUTCOME_EXPIRED,
    DispatchReport,
    NotificationDispatcher,
    RateLimiter,
    SendOutcome,
    SendStatus,
)
from classes.types import NotificationKind, OutgoingNotification
from madoguchi.db import create_engine, create_session_factory, session_scope
from madoguchi.residents import Resident

if TYPE_CHECKING:
    from classkit import ClassKit  # tests/classes/conftest.py: the `kit` fixture

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # the `kit`'s "now": Tuesday 09:00 in Tokyo

DAY_BEFORE = NotificationKind.DAY_BEFORE
HOURS_BEFORE = NotificationKind.HOURS_BEFORE
BOTH = ("day_before", "hours_before")


def hours(count: float) -> timedelta:
    return timedelta(hours=count)


class Killed(BaseException):
    """The process dies here (not an Exception: nothing in the dispatcher catches it)."""


@dataclass(frozen=True)
class Call:
    notification_id: int
    kind: NotificationKind
    registration_id: int
    telegram_user_id: int
    at: datetime
    outcome: SendStatus


class FakeSender:
    """Records every call with the clock time; answers from a script (default: SENT)."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.calls: list[Call] = []
        # (call index, item) -> outcome; None = SENT
        self.answer: Callable[[int, OutgoingNotification], SendOutcome | None] = lambda _i, _item: (
            None
        )
        self.kill_after: int | None = None  # die after recording this many calls
        self.latency = 0.0  # real seconds a request takes (to let two dispatchers overlap)

    async def send(self, item: OutgoingNotification) -> SendOutcome:
        at = self.clock.now()  # read at once: the moment the request would leave
        outcome = self.answer(len(self.calls), item) or SendOutcome.sent()
        self.calls.append(
            Call(
                item.notification_id,
                item.kind,
                item.registration.id,
                item.telegram_user_id,
                at,
                outcome.status,
            )
        )
        if self.kill_after is not None and len(self.calls) >= self.kill_after:
            raise Killed
        await asyncio.sleep(self.latency)  # a real request yields to the loop
        return outcome

    def delivered(self) -> Counter[tuple[int, str]]:
        """(registration id, kind) → how many times it reached the resident."""
        return Counter(
            (call.registration_id, str(call.kind))
            for call in self.calls
            if call.outcome is SendStatus.SENT
        )


def dispatcher(
    factory: async_sessionmaker[AsyncSession],
    sender: FakeSender,
    clock: ManualClock,
    *,
    worker: str = "worker-a",
    **options: object,
) -> NotificationDispatcher:
    return NotificationDispatcher(
        factory,
        sender,
        clock=clock,
        worker_id=worker,
        rate_per_second=options.pop("rate_per_second", 25.0),  # type: ignore[arg-type]
        lease_seconds=options.pop("lease_seconds", 300.0),  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


async def rows_by_status(factory: async_sessionmaker[AsyncSession]) -> Counter[str]:
    async with factory() as session:
        result = await session.execute(
            select(ClassNotification.status, func.count()).group_by(ClassNotification.status)
        )
        return Counter({status: int(count) for status, count in result.tuples()})


async def outcomes(factory: async_sessionmaker[AsyncSession]) -> dict[tuple[int, str], str]:
    """(registration id, kind) → "status/outcome" of the latest schedule version."""
    async with factory() as session:
        rows = (
            await session.scalars(
                select(ClassNotification).order_by(ClassNotification.schedule_version)
            )
        ).all()
        return {(row.registration_id, row.kind): f"{row.status}/{row.outcome}" for row in rows}


async def signed_up(kit: ClassKit, class_id: int, count: int) -> list[int]:
    """`count` residents confirmed for the class; their registration ids."""
    ids = []
    for resident_id in await kit.residents(count):
        result = await kit.sign_up(class_id, resident_id)
        assert result.registration is not None
        ids.append(result.registration.id)
    return ids


async def run_until(
    worker: NotificationDispatcher, clock: ManualClock, until: datetime, step: timedelta
) -> list[DispatchReport]:
    """Run a pass every `step` of clock time (as the scheduler would) until `until`."""
    reports = []
    while clock.now() < until:
        reports.append(await worker.run_once())
        clock.advance(step)
    return reports


# --- rate limiter (no database) -------------------------------------------------------------


async def test_rate_limiter_spaces_calls_and_pauses() -> None:
    clock = ManualClock(NOW)
    limiter = RateLimiter(clock, 25.0)
    times = []
    for _ in range(100):
        await limiter.acquire()
        times.append(clock.now())
    assert all(b - a >= timedelta(seconds=0.04) for a, b in zip(times, times[1:], strict=False))
    assert times[-1] - times[0] == timedelta(seconds=99 * 0.04)
    limiter.pause(3.0)
    paused_at = clock.now()
    await limiter.acquire()
    assert clock.now() - paused_at >= timedelta(seconds=3)


# --- every registration gets each reminder once ----------------------------------------------


async def test_every_registration_gets_each_reminder_once(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    klass = await kit.create_class()
    registrations = await signed_up(kit, klass.id, 6)
    clock = ManualClock(NOW)
    sender = FakeSender(clock)
    worker = dispatcher(session_factory, sender, clock)

    await run_until(worker, clock, klass.ends_at + hours(1), timedelta(minutes=10))

    delivered = sender.delivered()
    assert delivered == Counter(
        {(reg, str(kind)): 1 for reg in registrations for kind in (DAY_BEFORE, HOURS_BEFORE)}
    )
    for call in sender.calls:
        if call.kind is DAY_BEFORE:  # 10:00 the day before in Tokyo, within one pass
            due = datetime(2026, 12, 3, 10, 0, tzinfo=TOKYO)
        else:
            due = klass.starts_at - hours(2)
        assert due <= call.at < due + timedelta(minutes=11)
    assert await rows_by_status(session_factory) == Counter({"sent": 12})


# --- restarts ------------------------------------------------------------------------------


async def test_killed_after_claiming_sends_once_after_the_lease(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    klass = await kit.create_class()
    registrations = await signed_up(kit, klass.id, 5)
    clock = ManualClock(klass.starts_at - hours(2))  # both reminders are due
    sender = FakeSender(clock)
    both = Counter({(reg, kind): 1 for reg in registrations for kind in BOTH})

    dead = dispatcher(session_factory, sender, clock, worker="dead", lease_seconds=120)
    claimed = await dead._claim(100)  # the process dies right after committing its claim
    assert len(claimed) == 10
    assert await rows_by_status(session_factory) == Counter({"claimed": 10})

    fresh = dispatcher(session_factory, sender, clock, worker="fresh", lease_seconds=120)
    report = await fresh.run_once()  # the lease still runs: nothing to do
    assert (report.claimed, report.recovered.released, sender.calls) == (0, 0, [])

    clock.advance(timedelta(seconds=121))
    report = await fresh.run_once()
    assert report.recovered.released == 10
    assert report.sent == 10
    assert sender.delivered() == both
    assert (await fresh.run_once()).claimed == 0


async def test_killed_after_sending_before_marking_is_never_resent(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    klass = await kit.create_class()
    registrations = await signed_up(kit, klass.id, 5)
    clock = ManualClock(klass.starts_at - hours(2))
    sender = FakeSender(clock)
    sender.kill_after = 2  # the second message goes out, then the process dies
    both = Counter({(reg, kind): 1 for reg in registrations for kind in BOTH})

    dead = dispatcher(session_factory, sender, clock, worker="dead", concurrency=1)
    with pytest.raises(Killed):
        await dead.run_once()
    assert await rows_by_status(session_factory) == Counter({"sent": 1, "sending": 1, "claimed": 8})

    sender.kill_after = None
    clock.advance(timedelta(seconds=301))
    fresh = dispatcher(session_factory, sender, clock, worker="fresh")
    report = await fresh.run_once()
    assert (report.recovered.released, report.recovered.unknown) == (8, 1)
    assert report.sent == 8
    # Each reminder reached its resident exactly once overall, the interrupted one included.
    assert sender.delivered() == both
    assert await rows_by_status(session_factory) == Counter({"sent": 9, "unknown": 1})
    await run_until(fresh, clock, klass.starts_at, timedelta(minutes=30))
    assert sender.delivered() == both


async def test_two_dispatchers_at_once_send_each_row_once(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    klass = await kit.create_class(capacity=60)
    registrations = await signed_up(kit, klass.id, 60)
    clock = ManualClock(klass.starts_at - hours(2))
    sender = FakeSender(clock)
    sender.latency = 0.005
    # A second process by mistake: its own engine (own connections) on the same database.
    other_engine: AsyncEngine = create_engine(database_url)
    try:
        options: dict[str, object] = {"claim_batch": 7, "concurrency": 2}
        first = dispatcher(session_factory, sender, clock, worker="a", **options)
        second = dispatcher(
            create_session_factory(other_engine), sender, clock, worker="b", **options
        )
        await asyncio.gather(first.recover(), second.recover())  # both connected and ready
        reports = await asyncio.gather(first.run_once(), second.run_once())
    finally:
        await other_engine.dispose()
    assert sender.delivered() == Counter({(reg, kind): 1 for reg in registrations for kind in BOTH})
    assert sum(report.sent for report in reports) == 120
    assert all(report.sent > 0 for report in reports), "both really worked at the same time"
    assert await rows_by_status(session_factory) == Counter({"sent": 120})


async def test_claims_take_at_most_the_batch_and_never_overlap(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    klass = await kit.create_class()
    await signed_up(kit, klass.id, 5)
    clock = ManualClock(klass.starts_at - hours(2))
    sender = FakeSender(clock)
    first = dispatcher(session_factory, sender, clock, worker="a")
    second = dispatcher(session_factory, sender, clock, worker="b")
    claims = [await first._claim(3), await second._claim(3), await first._claim(3)]
    assert [len(ids) for ids in claims] == [3, 3, 3]
    assert len({row_id for ids in claims for row_id in ids}) == 9
    left = await rows_ids(session_factory, "pending")
    assert len(left) == 1
    assert await second._claim(3) == left
    assert await first._claim(3) == []


async def rows_ids(factory: async_sessionmaker[AsyncSession], status: str) -> list[int]:
    async with factory() as session:
        result = await session.scalars(
            select(ClassNotification.id)
            .where(ClassNotification.status == status)
            .order_by(ClassNotification.id)
        )
        return list(result.all())


# --- late, expired, changed, cancelled -------------------------------------------------------


async def test_reminders_are_sent_late_before_the_start_and_never_after(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    early = await kit.create_class()  # Friday 14:00
    later = await kit.create_class(
        starts_at=datetime(2026, 12, 4, 18, 0, tzinfo=TOKYO),
        ends_at=datetime(2026, 12, 4, 19, 0, tzinfo=TOKYO),
    )
    early_regs = await signed_up(kit, early.id, 2)
    later_regs = await signed_up(kit, later.id, 2)
    # The process was down from Wednesday to Friday 16:30 (the early class has started).
    clock = ManualClock(datetime(2026, 12, 4, 16, 30, tzinfo=TOKYO))
    sender = FakeSender(clock)
    report = await dispatcher(session_factory, sender, clock).run_once()

    assert sender.delivered() == Counter(
        {(reg, kind): 1 for reg in later_regs for kind in ("day_before", "hours_before")}
    )
    assert report.skipped == Counter({"expired": 4})
    found = await outcomes(session_factory)
    for reg in early_regs:
        assert found[(reg, "day_before")] == "skipped/expired"
        assert found[(reg, "hours_before")] == "skipped/expired"


async def test_moving_a_class_reschedules_its_reminders(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    klass = await kit.create_class()  # Friday 2026-12-04 14:00
    registrations = await signed_up(kit, klass.id, 3)
    clock = ManualClock(NOW)
    sender = FakeSender(clock)
    worker = dispatcher(session_factory, sender, clock)
    # A claim of the old schedule is in flight when staff move the class.
    clock.set(klass.starts_at - hours(2))
    in_flight = await dispatcher(session_factory, sender, clock, worker="slow")._claim(1)
    clock.set(NOW + hours(1))

    moved = await kit.update_class(
        klass.id,
        now=clock.now(),
        starts_at=datetime(2026, 12, 8, 10, 0, tzinfo=TOKYO),
        ends_at=datetime(2026, 12, 8, 11, 30, tzinfo=TOKYO),
        registration_deadline=datetime(2026, 12, 7, 17, 0, tzinfo=TOKYO),
    )
    assert moved.schedule_version == 2

    await run_until(worker, clock, moved.ends_at, timedelta(minutes=15))
    # The old claim's lease ran out; a pass after that recovered it and skipped it.
    calls = [call for call in sender.calls if call.outcome is SendStatus.SENT]
    assert sender.delivered() == Counter(
        {
            (reg, kind): 1
            for reg in registrations
            for kind in ("class_changed", "day_before", "hours_before")
        }
    )
    new_day_before = datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO)
    for call in calls:
        if call.kind is DAY_BEFORE:
            assert new_day_before <= call.at < new_day_before + timedelta(minutes=16)
        elif call.kind is HOURS_BEFORE:
            assert moved.starts_at - hours(2) <= call.at < moved.starts_at
    async with session_factory() as session:
        old = (
            await session.execute(
                select(ClassNotification.id, ClassNotification.status, ClassNotification.outcome)
                .where(ClassNotification.schedule_version == 1)
                .order_by(ClassNotification.id)
            )
        ).all()
    assert {status for _id, status, _outcome in old} == {"skipped"}
    assert {outcome for _id, _status, outcome in old} == {"superseded"}
    assert in_flight[0] in {row_id for row_id, _s, _o in old}


async def test_cancelling_a_class_sends_one_notice_each(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    klass = await kit.create_class(capacity=3)
    registrations = await signed_up(kit, klass.id, 4)  # three confirmed, one waitlisted
    clock = ManualClock(NOW + hours(3))
    sender = FakeSender(clock)
    worker = dispatcher(session_factory, sender, clock)
    await kit.cancel_class(klass.id, now=clock.now())

    await run_until(worker, clock, klass.ends_at + hours(1), timedelta(hours=1))
    assert sender.delivered() == Counter({(reg, "class_cancelled"): 1 for reg in registrations})
    found = await outcomes(session_factory)
    assert {found[(reg, "day_before")] for reg in registrations[:3]} == {"skipped/class_cancelled"}


async def test_cancelled_after_claim_is_not_sent(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """The re-check inside the UPDATE to `sending` sees changes made after the claim."""
    klass = await kit.create_class()
    registrations = await signed_up(kit, klass.id, 2)
    clock = ManualClock(klass.starts_at - hours(2))
    sender = FakeSender(clock)
    worker = dispatcher(session_factory, sender, clock)
    ids = await worker._claim(10)
    rows = await worker._load(ids)
    async with session_scope(session_factory) as session:  # the resident cancels meanwhile
        await session.execute(
            update(ClassRegistration)
            .where(ClassRegistration.id == registrations[0])
            .values(status="cancelled")
        )
    report = DispatchReport()
    await worker._process_batch(rows, report)
    assert sender.delivered() == Counter({(registrations[1], kind): 1 for kind in BOTH})
    assert report.skipped == Counter({"not_confirmed": 2})


# --- failures ------------------------------------------------------------------------------


async def test_blocked_resident_is_marked_and_skipped(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    klass = await kit.create_class()
    registrations = await signed_up(kit, klass.id, 2)
    clock = ManualClock(NOW)
    sender = FakeSender(clock)
    blocked_user: list[int] = []

    def answer(_index: int, item: OutgoingNotification) -> SendOutcome | None:
        if item.registration.id == registrations[0]:
            blocked_user.append(item.telegram_user_id)
            return SendOutcome.blocked()
        return None

    sender.answer = answer
    worker = dispatcher(session_factory, sender, clock)
    await run_until(worker, clock, klass.starts_at, timedelta(minutes=30))

    # One call found the block; the second reminder was skipped without calling Telegram.
    assert len(blocked_user) == 1
    assert sender.delivered() == Counter(
        {(registrations[1], kind): 1 for kind in ("day_before", "hours_before")}
    )
    found = await outcomes(session_factory)
    assert found[(registrations[0], "day_before")] == "skipped/blocked"
    assert found[(registrations[0], "hours_before")] == "skipped/blocked"
    async with session_factory() as session:
        resident = await session.scalar(
            select(Resident).where(Resident.telegram_user_id == blocked_user[0])
        )
    assert resident is not None and resident.blocked_at is not None


async def test_transient_failures_retry_later_then_give_up(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    klass = await kit.create_class()
    registrations = await signed_up(kit, klass.id, 3)
    clock = ManualClock(klass.starts_at - hours(6))
    async with session_scope(session_factory) as session:  # only the promotion-like notices
        await session.execute(
            update(ClassNotification)
            .where(ClassNotification.kind == "day_before")
            .values(status="skipped")
        )
        await session.execute(
            update(ClassNotification)
            .where(ClassNotification.kind == "hours_before")
            .values(due_at=clock.now())
        )
    sender = FakeSender(clock)
    failures: Counter[int] = Counter()

    def answer(_index: int, item: OutgoingNotification) -> SendOutcome | None:
        reg = item.registration.id
        if reg == registrations[0] and failures[reg] < 2:  # fails twice, then works
            failures[reg] += 1
            return SendOutcome.failed("server_error", permanent=False)
        if reg == registrations[1]:  # always fails
            failures[reg] += 1
            return SendOutcome.failed("server_error", permanent=False)
        if reg == registrations[2]:
            return SendOutcome.failed("chat_not_found", permanent=True)
        return None

    sender.answer = answer
    worker = dispatcher(session_factory, sender, clock, max_attempts=3, retry_base_seconds=60.0)
    await run_until(worker, clock, klass.starts_at, timedelta(minutes=1))
    assert sender.delivered() == Counter({(registrations[0], "hours_before"): 1})
    assert failures[registrations[1]] == 3
    found = await outcomes(session_factory)
    assert found[(registrations[0], "hours_before")] == "sent/sent"
    assert found[(registrations[1], "hours_before")] == "failed/gave_up:server_error"
    assert found[(registrations[2], "hours_before")] == "failed/chat_not_found"


async def test_stop_releases_unsent_claims(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    klass = await kit.create_class()
    await signed_up(kit, klass.id, 10)
    clock = ManualClock(klass.starts_at - hours(2))
    sender = FakeSender(clock)
    worker = dispatcher(session_factory, sender, clock, concurrency=1)

    def answer(index: int, _item: OutgoingNotification) -> SendOutcome | None:
        if index == 2:
            worker.request_stop()
        return None

    sender.answer = answer
    report = await worker.run_once()
    assert (report.sent, report.released) == (3, 17)
    statuses = await rows_by_status(session_factory)
    assert (statuses["sent"], statuses["claimed"], statuses["sending"]) == (3, 0, 0)


# --- 10,000 registrations at the configured rate -------------------------------------------


async def _bulk_registrations(
    factory: async_sessionmaker[AsyncSession], count: int, *, due: datetime, starts: datetime
) -> None:
    """One big class with `count` confirmed registrations and one due reminder each."""
    chunk = 2000
    async with session_scope(factory) as session:
        klass = SmartphoneClass(
            title="大きな教室",
            venue="体育館",
            starts_at=starts,
            ends_at=starts + hours(2),
            capacity=count,
            confirmed_seats=count,
            registration_deadline=starts - hours(24),
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(klass)
        await session.flush()
        for first in range(0, count, chunk):
            numbers = range(first, min(count, first + chunk))
            await session.execute(
                insert(Resident),
                [
                    {"telegram_user_id": 500_000 + n, "created_at": NOW, "last_seen_at": NOW}
                    for n in numbers
                ],
            )
        resident_ids = list(
            (await session.scalars(select(Resident.id).order_by(Resident.id))).all()
        )
        for first in range(0, count, chunk):
            await session.execute(
                insert(ClassRegistration),
                [
                    {
                        "class_id": klass.id,
                        "resident_id": resident_id,
                        "name": "住民",
                        "seats": 1,
                        "status": "confirmed",
                        "created_at": NOW,
                        "confirmed_at": NOW,
                        "updated_at": NOW,
                    }
                    for resident_id in resident_ids[first : first + chunk]
                ],
            )
        registration_ids = list(
            (
                await session.scalars(select(ClassRegistration.id).order_by(ClassRegistration.id))
            ).all()
        )
        for first in range(0, count, chunk):
            await session.execute(
                insert(ClassNotification),
                [
                    {
                        "registration_id": registration_id,
                        "kind": "hours_before",
                        "schedule_version": 1,
                        "due_at": due,
                        "expires_at": starts,
                        "status": "pending",
                        "attempts": 0,
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                    for registration_id in registration_ids[first : first + chunk]
                ],
            )


def _max_in_window(times: Iterable[datetime], window: timedelta) -> int:
    ordered = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.slow
async def test_ten_thousand_reminders_at_the_configured_rate_with_429s(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    count, rate = 10_000, 25.0
    starts = NOW + hours(2)
    await _bulk_registrations(session_factory, count, due=NOW, starts=starts)
    clock = ManualClock(NOW)
    sender = FakeSender(clock)
    # Flood control now and then: every 997th request is answered 429, retry after 3 s.
    sender.answer = lambda index, _item: SendOutcome.retry(3.0) if index % 997 == 996 else None
    worker = dispatcher(session_factory, sender, clock, rate_per_second=rate, claim_batch=500)

    report = await worker.run_once(limit=count)

    refused = [call for call in sender.calls if call.outcome is SendStatus.RETRY_AFTER]
    assert len(refused) == count // 997
    assert report.sent == count and report.rate_limited == len(refused)
    delivered = sender.delivered()
    assert len(delivered) == count and set(delivered.values()) == {1}  # none lost or doubled
    elapsed = clock.now() - NOW
    assert elapsed >= timedelta(seconds=count / rate - 1 + 3 * len(refused))
    # Every request Telegram sees counts, the refused ones too.
    assert _max_in_window((call.at for call in sender.calls), timedelta(seconds=1)) <= rate
    for refusal in refused:  # nothing at all went out during the 3 s Telegram asked for
        assert not any(
            refusal.at < call.at < refusal.at + timedelta(seconds=3) for call in sender.calls
        )
    assert await rows_by_status(session_factory) == Counter({"sent": count})


async def test_change_notice_claimed_before_a_second_move_is_superseded(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Staff move a class, its change notice is claimed, and staff move it again (a typo
    fixed) before the notice goes out: only the latest schedule reaches the resident."""
    klass = await kit.create_class()
    [registration] = await signed_up(kit, klass.id, 1)
    clock = ManualClock(NOW + hours(1))
    sender = FakeSender(clock)
    worker = dispatcher(session_factory, sender, clock)
    first = {
        "starts_at": datetime(2026, 12, 8, 10, 0, tzinfo=TOKYO),
        "ends_at": datetime(2026, 12, 8, 11, 30, tzinfo=TOKYO),
        "registration_deadline": datetime(2026, 12, 7, 17, 0, tzinfo=TOKYO),
    }
    await kit.update_class(klass.id, now=clock.now(), **first)
    rows = await worker._load(await worker._claim(10))
    assert [row.kind for row in rows] == [NotificationKind.CLASS_CHANGED]
    second = {**first, "starts_at": datetime(2026, 12, 8, 13, 0, tzinfo=TOKYO)}
    second["ends_at"] = datetime(2026, 12, 8, 14, 30, tzinfo=TOKYO)
    latest = await kit.update_class(klass.id, now=clock.now(), **second)
    assert latest.schedule_version == 3

    report = DispatchReport()
    await worker._process_batch(rows, report)
    assert report.skipped == Counter({"superseded": 1})
    assert sender.calls == []
    await worker.run_once()
    [call] = sender.calls
    assert (call.kind, call.registration_id) == (NotificationKind.CLASS_CHANGED, registration)


# --- the waitlist closes when the class starts ---------------------------------------------

CLOSED = "waitlist_closed"


async def waitlisted(kit: ClassKit, class_id: int, count: int) -> list[int]:
    """`count` more residents signing up for a full class: their (waitlisted) registrations."""
    ids = []
    for resident_id in await kit.residents(count):
        result = await kit.sign_up(class_id, resident_id)
        assert result.registration is not None and result.registration.status == "waitlisted"
        ids.append(result.registration.id)
    return ids


def closed_notices(sender: FakeSender) -> Counter[int]:
    """Registration id → how many waitlist-closed notices reached it."""
    return Counter(
        call.registration_id
        for call in sender.calls
        if call.kind is NotificationKind.WAITLIST_CLOSED and call.outcome is SendStatus.SENT
    )


async def test_waitlisted_residents_hear_once_that_no_seat_came_free(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    klass = await kit.create_class(capacity=2, max_seats_per_registration=1)
    confirmed = await signed_up(kit, klass.id, 2)
    waiting = await waitlisted(kit, klass.id, 3)
    clock = ManualClock(NOW)
    sender = FakeSender(clock)
    worker = dispatcher(session_factory, sender, clock)

    # A pass every 10 minutes from Tuesday until two days after the class.
    reports = await run_until(worker, clock, klass.ends_at + timedelta(days=2), hours(1) / 6)

    assert closed_notices(sender) == Counter(dict.fromkeys(waiting, 1))
    assert sender.delivered() == Counter(
        {
            **{(reg, kind): 1 for reg in confirmed for kind in BOTH},
            **{(reg, CLOSED): 1 for reg in waiting},
        }
    )
    # Right at the start (or the first pass after it), not before.
    for call in sender.calls:
        if call.kind is NotificationKind.WAITLIST_CLOSED:
            assert klass.starts_at <= call.at < klass.starts_at + timedelta(minutes=11)
    assert sum(report.queued for report in reports) == 3
    assert [r.status for r in await kit.registrations(klass.id)] == [
        "confirmed",
        "confirmed",
        "waitlisted",
        "waitlisted",
        "waitlisted",
    ]
    assert await rows_by_status(session_factory) == Counter({"sent": 7})


async def test_waitlist_closed_over_two_passes_and_two_dispatchers(
    kit: ClassKit,
    session_factory: async_sessionmaker[AsyncSession],
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    klass = await kit.create_class(capacity=1, max_seats_per_registration=1)
    await signed_up(kit, klass.id, 1)
    waiting = await waitlisted(kit, klass.id, 30)
    clock = ManualClock(klass.starts_at + timedelta(minutes=1))
    sender = FakeSender(clock)
    sender.latency = 0.002
    other_engine: AsyncEngine = create_engine(database_url)  # a second process by mistake
    try:
        options: dict[str, object] = {"claim_batch": 4, "concurrency": 2}
        first = dispatcher(session_factory, sender, clock, worker="a", **options)
        second = dispatcher(
            create_session_factory(other_engine), sender, clock, worker="b", **options
        )
        # Both queue and send at the same moment, then each runs another pass.
        reports = await asyncio.gather(first.run_once(), second.run_once())
        clock.advance(timedelta(minutes=10))
        reports += await asyncio.gather(first.run_once(), second.run_once())
    finally:
        await other_engine.dispose()
    assert closed_notices(sender) == Counter(dict.fromkeys(waiting, 1))
    assert sum(report.sent for report in reports) == 30
    assert sum(report.queued for report in reports) >= 30  # a race may count a row twice
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    async with session_factory() as session:
        rows = await session.scalar(
            select(func.count())
            .select_from(ClassNotification)
            .where(ClassNotification.kind == CLOSED)
        )
    assert rows == 30


async def test_promoted_or_confirmed_residents_get_no_waitlist_closed_notice(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    klass = await kit.create_class(capacity=2, max_seats_per_registration=1)
    residents = await kit.residents(2)
    first_reg = (await kit.sign_up(klass.id, residents[0])).registration
    assert first_reg is not None
    await signed_up(kit, klass.id, 1)
    promoted, still_waiting = await waitlisted(kit, klass.id, 2)
    # Thirty minutes before the start a resident cancels: the first waitlisted one gets the
    # seat (and a promotion notice), the second keeps waiting.
    clock = ManualClock(klass.starts_at - timedelta(minutes=30))
    result = await kit.cancel(first_reg.id, resident_id=residents[0], now=clock.now())
    assert [r.id for r in result.promoted] == [promoted]
    sender = FakeSender(clock)
    worker = dispatcher(session_factory, sender, clock)
    await run_until(worker, clock, klass.ends_at + timedelta(days=1), timedelta(minutes=10))

    assert closed_notices(sender) == Counter({still_waiting: 1})
    assert sender.delivered()[(promoted, "promoted")] == 1
    assert {reg for reg, kind in sender.delivered() if kind == CLOSED} == {still_waiting}


async def test_promoted_after_the_claim_is_not_told_the_waitlist_closed(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """The re-check inside the UPDATE to `sending`: a waitlist-closed notice needs the
    registration to be still waitlisted at the moment it goes out."""
    klass = await kit.create_class(capacity=1, max_seats_per_registration=1)
    await signed_up(kit, klass.id, 1)
    late, cancelled, waiting = await waitlisted(kit, klass.id, 3)
    clock = ManualClock(klass.starts_at)
    sender = FakeSender(clock)
    worker = dispatcher(session_factory, sender, clock)
    assert await worker.queue_waitlist_closed() == 3
    rows = await worker._load(await worker._claim(10))
    # The confirmed resident's reminders (expired at the start) and the three notices.
    assert Counter(row.kind for row in rows) == Counter(
        {NotificationKind.WAITLIST_CLOSED: 3, DAY_BEFORE: 1, HOURS_BEFORE: 1}
    )
    async with session_scope(session_factory) as session:  # meanwhile, at the last minute
        await session.execute(
            update(ClassRegistration).where(ClassRegistration.id == late).values(status="confirmed")
        )
        await session.execute(
            update(ClassRegistration)
            .where(ClassRegistration.id == cancelled)
            .values(status="cancelled")
        )
    report = DispatchReport()
    await worker._process_batch(rows, report)
    assert closed_notices(sender) == Counter({waiting: 1})
    assert report.skipped == Counter({"not_waitlisted": 2, OUTCOME_EXPIRED: 2})
    found = await outcomes(session_factory)
    assert found[(late, CLOSED)] == "skipped/not_waitlisted"


async def test_no_waitlist_closed_notice_for_a_cancelled_class(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    klass = await kit.create_class(capacity=1, max_seats_per_registration=1)
    confirmed = await signed_up(kit, klass.id, 1)
    waiting = await waitlisted(kit, klass.id, 2)
    clock = ManualClock(NOW + hours(1))
    await kit.cancel_class(klass.id, now=clock.now())
    sender = FakeSender(clock)
    worker = dispatcher(session_factory, sender, clock)
    await run_until(worker, clock, klass.ends_at + timedelta(days=1), timedelta(minutes=30))
    # One cancellation notice each, waitlisted residents included, and nothing else.
    assert sender.delivered() == Counter(
        {(reg, "class_cancelled"): 1 for reg in [*confirmed, *waiting]}
    )
    assert closed_notices(sender) == Counter()


async def test_no_waitlist_closed_notice_for_a_class_started_over_a_day_ago(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """The first pass after an upgrade (or after long downtime) does not write to residents
    about classes long gone; nor is a notice queued in time sent after it expired."""
    old = await kit.create_class(capacity=1, max_seats_per_registration=1)
    await signed_up(kit, old.id, 1)
    await waitlisted(kit, old.id, 2)
    clock = ManualClock(old.starts_at + timedelta(days=1, minutes=1))
    sender = FakeSender(clock)
    report = await dispatcher(session_factory, sender, clock).run_once()
    assert (report.queued, closed_notices(sender)) == (0, Counter())
    assert [n.kind for n in await kit.notifications()].count(CLOSED) == 0

    # Queued at the start, but the process was down until a day after the class ended.
    later = await kit.create_class(
        capacity=1,
        max_seats_per_registration=1,
        starts_at=datetime(2026, 12, 8, 10, 0, tzinfo=TOKYO),
        ends_at=datetime(2026, 12, 8, 11, 0, tzinfo=TOKYO),
        registration_deadline=datetime(2026, 12, 7, 17, 0, tzinfo=TOKYO),
    )
    await signed_up(kit, later.id, 1)
    [waiting] = await waitlisted(kit, later.id, 1)
    clock.set(later.starts_at)
    worker = dispatcher(session_factory, sender, clock)
    assert await worker.queue_waitlist_closed() == 1
    clock.set(later.ends_at + timedelta(days=1))
    report = await worker.run_once()
    # The notice, and the confirmed resident's two reminders (missed in the same downtime).
    assert (report.queued, report.skipped) == (0, Counter({OUTCOME_EXPIRED: 3}))
    assert closed_notices(sender) == Counter()
    assert (await outcomes(session_factory))[(waiting, CLOSED)] == "skipped/expired"
