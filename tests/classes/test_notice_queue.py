"""classes.notice_queue: reminder times, and creating, recomputing and skipping rows."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from classes import notice_queue
from classes.models import ClassNotification
from classes.notice_queue import NotificationPolicy, ReminderPolicy
from classes.types import NotificationKind
from madoguchi.db import session_scope
from madoguchi.settings import load_settings

if TYPE_CHECKING:
    from classkit import ClassKit

TOKYO = ZoneInfo("Asia/Tokyo")
DAY_BEFORE = NotificationKind.DAY_BEFORE
HOURS_BEFORE = NotificationKind.HOURS_BEFORE


# --- policy ---------------------------------------------------------------------------------


def test_policy_from_settings(isolated_settings_env: Path) -> None:
    default = ReminderPolicy.from_settings(load_settings())
    assert default == ReminderPolicy(tz=TOKYO, day_before_at=time(10, 0), hours_before=2.0)
    assert NotificationPolicy is ReminderPolicy

    custom = ReminderPolicy.from_settings(
        load_settings(
            reminder_day_before_time="18:30",
            reminder_hours_before=1.5,
            timezone="America/New_York",
        )
    )
    assert custom == ReminderPolicy(
        tz=ZoneInfo("America/New_York"), day_before_at=time(18, 30), hours_before=1.5
    )
    off = ReminderPolicy.from_settings(
        load_settings(reminder_day_before_time="", reminder_hours_before=0)
    )
    assert (off.day_before_at, off.hours_before) == (None, None)


def test_reminder_times_use_the_town_zone() -> None:
    policy = ReminderPolicy(tz=TOKYO)
    # 00:30 Tokyo on Dec 4 is still Dec 3 in UTC; "the day before" is Dec 3 in Tokyo.
    start = datetime(2026, 12, 4, 0, 30, tzinfo=TOKYO)
    assert policy.reminder_times(start.astimezone(UTC)) == [
        (DAY_BEFORE, datetime(2026, 12, 3, 10, 0, tzinfo=TOKYO)),
        (HOURS_BEFORE, datetime(2026, 12, 3, 22, 30, tzinfo=TOKYO)),
    ]


def test_disabled_and_impossible_reminders_are_left_out() -> None:
    start = datetime(2026, 12, 4, 5, 0, tzinfo=UTC)
    assert ReminderPolicy(tz=TOKYO, day_before_at=None).reminder_times(start) == [
        (HOURS_BEFORE, start - timedelta(hours=2))
    ]
    assert ReminderPolicy(tz=TOKYO, hours_before=None).reminder_times(start) == [
        (DAY_BEFORE, datetime(2026, 12, 3, 10, 0, tzinfo=TOKYO))
    ]
    assert (
        ReminderPolicy(tz=TOKYO, day_before_at=None, hours_before=None).reminder_times(start) == []
    )


# --- rows -----------------------------------------------------------------------------------


async def test_sign_up_queues_both_reminders_due_before_the_start(kit: ClassKit) -> None:
    klass = await kit.create_class()
    (resident,) = await kit.residents(1)
    registration = (await kit.sign_up(klass.id, resident)).registration
    assert registration is not None
    rows = {n.kind: n for n in await kit.notifications(registration.id)}
    assert set(rows) == {"day_before", "hours_before"}
    assert rows["day_before"].due_at == datetime(2026, 12, 3, 10, 0, tzinfo=TOKYO)
    assert rows["hours_before"].due_at == datetime(2026, 12, 4, 12, 0, tzinfo=TOKYO)
    for row in rows.values():
        assert (row.status, row.schedule_version, row.expires_at) == (
            "pending",
            1,
            klass.starts_at,
        )


async def test_late_sign_up_gets_only_reminders_still_ahead(kit: ClassKit) -> None:
    klass = await kit.create_class()
    a, b = await kit.residents(2)
    after_day_before = datetime(2026, 12, 3, 10, 0, tzinfo=TOKYO)
    at_deadline = klass.registration_deadline
    ra = (await kit.sign_up(klass.id, a, now=after_day_before)).registration
    assert ra is not None
    # Due exactly now counts as passed: it would never be claimed "in the future".
    assert [n.kind for n in await kit.notifications(ra.id)] == ["hours_before"]
    rb = (await kit.sign_up(klass.id, b, now=at_deadline)).registration
    assert rb is not None
    assert [n.kind for n in await kit.notifications(rb.id)] == ["hours_before"]


async def test_waitlisted_get_no_reminders_and_queueing_is_idempotent(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=1)
    a, b = await kit.residents(2)
    ra = (await kit.sign_up(klass.id, a)).registration
    rb = (await kit.sign_up(klass.id, b)).registration
    assert ra and rb
    async with session_scope(kit.factory) as session:
        assert (
            await notice_queue.queue_reminders(session, rb.id, policy=kit.policy, now=kit.now) == 0
        )
        assert (
            await notice_queue.queue_reminders(session, ra.id, policy=kit.policy, now=kit.now) == 0
        )
        assert await notice_queue.queue_reminders(session, 999, policy=kit.policy, now=kit.now) == 0
        await notice_queue.queue_promotion_notice(session, 999, now=kit.now)
        await notice_queue.queue_promotion_notice(session, ra.id, now=kit.now)
        await notice_queue.queue_promotion_notice(session, ra.id, now=kit.now)
    assert await kit.notifications(rb.id) == []
    assert sorted(n.kind for n in await kit.notifications(ra.id)) == [
        "day_before",
        "hours_before",
        "promoted",
    ]


async def test_reschedule_leaves_claimed_and_sent_rows_alone(kit: ClassKit) -> None:
    """Rows the dispatcher owns (claimed, sending, sent) are never rewritten here."""
    klass = await kit.create_class()
    (resident,) = await kit.residents(1)
    registration = (await kit.sign_up(klass.id, resident)).registration
    assert registration is not None
    async with session_scope(kit.factory) as session:
        await session.execute(
            update(ClassNotification)
            .where(ClassNotification.kind == "day_before")
            .values(status="sent", sent_at=kit.now)
        )
    start = klass.starts_at + timedelta(days=1)
    await kit.update_class(
        klass.id,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        registration_deadline=klass.registration_deadline,
    )
    rows = {(n.kind, n.schedule_version): n for n in await kit.notifications(registration.id)}
    assert rows["day_before", 1].status == "sent"
    assert (rows["hours_before", 1].status, rows["hours_before", 1].outcome) == (
        "skipped",
        "superseded",
    )
    assert rows["day_before", 2].status == "pending"
    assert rows["hours_before", 2].status == "pending"


async def test_pending_promotion_notice_follows_a_move(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=1)
    a, b = await kit.residents(2)
    ra = (await kit.sign_up(klass.id, a)).registration
    rb = (await kit.sign_up(klass.id, b)).registration
    assert ra and rb
    await kit.cancel(ra.id, resident_id=a)
    start = klass.starts_at + timedelta(days=2)
    await kit.update_class(
        klass.id,
        capacity=1,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        registration_deadline=klass.registration_deadline,
    )
    promoted = [n for n in await kit.notifications(rb.id) if n.kind == "promoted"]
    assert [(n.status, n.expires_at) for n in promoted] == [("pending", start)]


async def test_skip_pending_for_registration(kit: ClassKit) -> None:
    klass = await kit.create_class()
    (resident,) = await kit.residents(1)
    registration = (await kit.sign_up(klass.id, resident)).registration
    assert registration is not None
    async with session_scope(kit.factory) as session:
        await session.execute(
            update(ClassNotification)
            .where(ClassNotification.kind == "hours_before")
            .values(status="claimed", claimed_by="worker-1")
        )
    async with session_scope(kit.factory) as session:
        skipped = await notice_queue.skip_pending_for_registration(
            session, registration.id, reason="blocked", now=kit.now
        )
    assert skipped == 1
    rows = {n.kind: n for n in await kit.notifications(registration.id)}
    assert (rows["day_before"].status, rows["day_before"].outcome) == ("skipped", "blocked")
    assert rows["hours_before"].status == "claimed"


async def test_class_notice_functions_for_unknown_classes(kit: ClassKit) -> None:
    async with session_scope(kit.factory) as session:
        assert (
            await notice_queue.reschedule_reminders(session, 9, policy=kit.policy, now=kit.now) == 0
        )
        assert await notice_queue.queue_class_changed_notices(session, 9, now=kit.now) == 0
        assert await notice_queue.queue_class_cancelled_notices(session, 9, now=kit.now) == 0


async def test_cancelled_notices_are_created_once(kit: ClassKit) -> None:
    klass = await kit.create_class()
    a, b = await kit.residents(2)
    await kit.sign_up(klass.id, a)
    await kit.sign_up(klass.id, b)
    await kit.cancel_class(klass.id)
    async with session_scope(kit.factory) as session:
        again = await notice_queue.queue_class_cancelled_notices(session, klass.id, now=kit.now)
        changed = await notice_queue.queue_class_changed_notices(session, klass.id, now=kit.now)
    assert (again, changed) == (0, 0)
    cancelled = [n for n in await kit.notifications() if n.kind == "class_cancelled"]
    assert len(cancelled) == 2


@pytest.mark.parametrize("hours_before", [2.0, 26.0])
async def test_many_registrations_get_each_reminder_once(
    kit: ClassKit, hours_before: float
) -> None:
    kit.policy = ReminderPolicy(tz=TOKYO, hours_before=hours_before)
    klass = await kit.create_class(capacity=30, max_seats_per_registration=1)
    residents = await kit.residents(30)
    for resident in residents:
        await kit.sign_up(klass.id, resident)
    rows = await kit.notifications()
    keys = [(n.registration_id, n.kind, n.schedule_version) for n in rows]
    assert len(keys) == len(set(keys)) == 60


# --- waitlist closed ------------------------------------------------------------------------


async def _queue_closed(kit: ClassKit, now: datetime) -> int:
    async with session_scope(kit.factory) as session:
        return await notice_queue.queue_waitlist_closed_notices(session, now=now)


async def test_waitlist_closed_notices_are_queued_once_after_the_start(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=1)
    a, b, c = await kit.residents(3)
    confirmed = (await kit.sign_up(klass.id, a)).registration
    waiting = [(await kit.sign_up(klass.id, r)).registration for r in (b, c)]
    assert confirmed is not None and all(waiting)
    waiting_ids = [r.id for r in waiting if r is not None]

    assert await _queue_closed(kit, klass.starts_at - timedelta(seconds=1)) == 0
    at_start = klass.starts_at
    assert await _queue_closed(kit, at_start) == 2
    assert await _queue_closed(kit, at_start) == 0  # idempotent
    assert await _queue_closed(kit, at_start + timedelta(hours=3)) == 0

    closed = [n for n in await kit.notifications() if n.kind == "waitlist_closed"]
    assert [n.registration_id for n in closed] == waiting_ids
    for row in closed:
        assert (row.status, row.schedule_version, row.due_at, row.expires_at) == (
            "pending",
            1,
            at_start,
            klass.ends_at + timedelta(days=1),
        )
    # The registrations themselves are left as they are.
    statuses = {r.id: r.status for r in await kit.registrations(klass.id)}
    assert statuses == {confirmed.id: "confirmed", **dict.fromkeys(waiting_ids, "waitlisted")}


async def test_no_waitlist_closed_notice_for_cancelled_or_old_classes(kit: ClassKit) -> None:
    cancelled = await kit.create_class(capacity=1)
    old = await kit.create_class(capacity=1)
    residents = await kit.residents(4)
    for klass, pair in ((cancelled, residents[:2]), (old, residents[2:])):
        for resident in pair:
            await kit.sign_up(klass.id, resident)
    await kit.cancel_class(cancelled.id)
    # Both classes started more than a day ago (an upgrade, or long downtime): nothing.
    assert await _queue_closed(kit, old.starts_at + timedelta(days=1)) == 0
    assert await _queue_closed(kit, old.starts_at + timedelta(days=1, seconds=-1)) == 1
    kinds = Counter(n.kind for n in await kit.notifications())
    assert kinds["waitlist_closed"] == 1
    waiting = [r for r in await kit.registrations(old.id) if r.status == "waitlisted"]
    closed = [n for n in await kit.notifications() if n.kind == "waitlist_closed"]
    assert [n.registration_id for n in closed] == [waiting[0].id]


async def test_a_class_postponed_after_its_start_closes_its_waitlist_again(
    kit: ClassKit,
) -> None:
    """Staff postpone a class on the day, after its start: the resident still waiting hears
    about the waitlist again when the new date comes (one row per schedule version)."""
    klass = await kit.create_class(capacity=1)
    a, b = await kit.residents(2)
    await kit.sign_up(klass.id, a)
    await kit.sign_up(klass.id, b)
    after = klass.starts_at + timedelta(minutes=10)
    assert await _queue_closed(kit, after) == 1
    new_start = klass.starts_at + timedelta(days=7)
    postponed = await kit.update_class(
        klass.id,
        now=after,
        capacity=1,
        starts_at=new_start,
        ends_at=new_start + timedelta(hours=1),
        registration_deadline=new_start - timedelta(days=1),
    )
    assert postponed.schedule_version == 2
    assert await _queue_closed(kit, after + timedelta(minutes=1)) == 0  # not started again
    assert await _queue_closed(kit, new_start) == 1
    assert await _queue_closed(kit, new_start + timedelta(minutes=1)) == 0
    closed = [n for n in await kit.notifications() if n.kind == "waitlist_closed"]
    assert [(n.schedule_version, n.due_at) for n in closed] == [(1, after), (2, new_start)]


async def test_waitlist_closed_queued_by_two_transactions_at_once_is_kept_once(
    kit: ClassKit,
) -> None:
    """Two dispatchers queue at the same moment: the second does not see the first's rows
    yet (not committed), tries to insert them too, and the unique key keeps one of each."""
    klass = await kit.create_class(capacity=1)
    a, b, c = await kit.residents(3)
    for resident in (a, b, c):
        await kit.sign_up(klass.id, resident)
    async with session_scope(kit.factory) as first:
        assert await notice_queue.queue_waitlist_closed_notices(first, now=klass.starts_at) == 2
        # The second one runs until it waits for the first's write (lock or unique key).
        second = asyncio.create_task(_queue_closed(kit, klass.starts_at))
        await asyncio.sleep(0.2)
        assert not second.done()
    assert await second in (0, 2)  # counted, but nothing was inserted twice
    closed = [n for n in await kit.notifications() if n.kind == "waitlist_closed"]
    assert len(closed) == 2
