"""The APScheduler wiring: one in-memory interval job that recovers once and sends due rows."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classes.clock import ManualClock
from classes.notifications import SendOutcome
from classes.scheduler import JOB_ID, build_notification_scheduler, create_scheduler
from classes.types import OutgoingNotification
from madoguchi.settings import Settings

if TYPE_CHECKING:
    from classkit import ClassKit  # tests/classes/conftest.py: the `kit` fixture


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    async def send(self, item: OutgoingNotification) -> SendOutcome:
        self.sent.append((item.registration.id, str(item.kind)))
        return SendOutcome.sent()


async def _wait_for(predicate: object, timeout: float = 10.0) -> None:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_scheduler_uses_memory_store_and_safe_job_defaults() -> None:
    scheduler = create_scheduler()
    assert type(scheduler._jobstores["default"]).__name__ == "MemoryJobStore"
    assert scheduler._job_defaults["coalesce"] is True
    assert scheduler._job_defaults["max_instances"] == 1
    assert not scheduler.running


async def test_scheduler_sends_due_reminders_and_stops_cleanly(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    klass = await kit.create_class()
    registrations = []
    for resident_id in await kit.residents(3):
        result = await kit.sign_up(klass.id, resident_id)
        assert result.registration is not None
        registrations.append(result.registration.id)
    # A row left `claimed` by a dead process long ago: the first tick's recover() frees it.
    clock = ManualClock(klass.starts_at - timedelta(hours=2))
    sender = RecordingSender()
    settings = Settings(reminder_check_seconds=0.05, send_rate_per_second=25.0)
    reminders = build_notification_scheduler(
        settings, session_factory, sender, clock=clock, worker_id="scheduler-test"
    )
    dead = build_notification_scheduler(
        settings, session_factory, sender, clock=clock, worker_id="dead"
    ).dispatcher
    assert len(await dead._claim(1)) == 1
    clock.advance(timedelta(seconds=301))

    reminders.start()
    try:
        assert reminders.running
        job = reminders.scheduler.get_job(JOB_ID)
        assert job.coalesce is True and job.max_instances == 1
        await _wait_for(lambda: len(sender.sent) == 6)
        await _wait_for(lambda: reminders.ticks >= 3)  # it keeps ticking, sending nothing new
    finally:
        await reminders.stop()
    assert not reminders.running
    assert Counter(sender.sent) == Counter(
        {(reg, kind): 1 for reg in registrations for kind in ("day_before", "hours_before")}
    )
    ticks = reminders.ticks
    await asyncio.sleep(0.15)
    assert reminders.ticks == ticks  # stopped means stopped


async def test_stop_waits_for_the_pass_in_flight(
    kit: ClassKit, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    klass = await kit.create_class()
    for resident_id in await kit.residents(4):
        await kit.sign_up(klass.id, resident_id)
    clock = ManualClock(klass.starts_at - timedelta(hours=2))
    started = asyncio.Event()
    release = asyncio.Event()

    class SlowSender(RecordingSender):
        async def send(self, item: OutgoingNotification) -> SendOutcome:
            started.set()
            await release.wait()
            return await super().send(item)

    sender = SlowSender()
    reminders = build_notification_scheduler(
        Settings(reminder_check_seconds=60.0),
        session_factory,
        sender,
        clock=clock,
        worker_id="slow",
    )
    reminders.dispatcher.concurrency = 1
    reminders.start()
    await asyncio.wait_for(started.wait(), timeout=10)
    stopping = asyncio.create_task(reminders.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # the message in flight is finished first
    release.set()
    await asyncio.wait_for(stopping, timeout=10)
    assert len(sender.sent) == 1  # the other claims went back to pending, not sent
    report = await build_notification_scheduler(
        Settings(), session_factory, sender, clock=clock, worker_id="next"
    ).dispatcher.run_once()
    assert report.sent == 7 and len(sender.sent) == 8
