"""APScheduler 3.11 wiring of the notification dispatcher.

Following APScheduler's own guidance for version 3: one scheduler per deployment, built by a
factory (never at module level), with the in-memory job store only. The durable state is in
our `class_notifications` table, so the job store holds nothing worth keeping: one interval
job that looks for due rows (each pass first queues the waitlist-closed notices of classes
that have just started, see `NotificationDispatcher.run_once`). A restarted process simply
starts the job again; missed runs are merged into one (`coalesce`) and never overlap
(`max_instances=1`).

Only the process with `MADOGUCHI_SCHEDULER_ENABLED` starts this. A second one started by
mistake would still not double any message (rows are claimed atomically), but it would have
its own rate limiter, so the overall rate could be exceeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import UTC, datetime

# APScheduler 3 ships no type information.
from apscheduler.executors.asyncio import AsyncIOExecutor  # type: ignore[import-untyped]
from apscheduler.jobstores.memory import MemoryJobStore  # type: ignore[import-untyped]
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classes.clock import Clock, SystemClock
from classes.notifications import DispatchReport, NotificationDispatcher, NotificationSender
from madoguchi.settings import Settings

log = logging.getLogger(__name__)

JOB_ID = "madoguchi-class-notifications"


def default_worker_id() -> str:
    """Unique per process (claims are told apart by it), at most 64 characters."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def create_scheduler() -> AsyncIOScheduler:
    """An AsyncIOScheduler with only the in-memory job store (state lives in our tables)."""
    return AsyncIOScheduler(
        jobstores={"default": MemoryJobStore()},
        executors={"default": AsyncIOExecutor()},
        job_defaults={
            "coalesce": True,  # runs missed while busy or suspended: one catch-up run
            "max_instances": 1,  # never two passes of the same dispatcher at once
            "misfire_grace_time": None,  # late is fine: rows say themselves what has expired
        },
        timezone=UTC,
    )


class NotificationScheduler:
    """The interval job around a dispatcher: recover once, then send due rows every tick."""

    def __init__(
        self,
        dispatcher: NotificationDispatcher,
        *,
        interval_seconds: float,
        batch_limit: int = 500,
        scheduler: AsyncIOScheduler | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.interval_seconds = interval_seconds
        self.batch_limit = batch_limit
        self.scheduler = scheduler or create_scheduler()
        self.ticks = 0
        self.last_report: DispatchReport | None = None
        self._recovered = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running)

    async def tick(self) -> None:
        """One run of the job: `recover()` on the first, then as many passes as are full."""
        if self.dispatcher.stopping:
            return
        self._idle.clear()
        try:
            if not self._recovered:
                await self.dispatcher.recover()
                self._recovered = True
            while not self.dispatcher.stopping:
                report = await self.dispatcher.run_once(limit=self.batch_limit)
                self.last_report = report
                # A full pass means more rows are due (a big class, a backlog after downtime):
                # go on at once instead of waiting for the next tick.
                if report.claimed < self.batch_limit:
                    break
        except Exception:  # a database hiccup: log it, the next tick tries again
            log.exception("notification pass failed; will retry at the next tick")
        finally:
            self.ticks += 1
            self._idle.set()

    def start(self) -> None:
        """Start on the running event loop; the first pass runs at once."""
        self.scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.interval_seconds,
            id=JOB_ID,
            replace_existing=True,
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.start()
        log.info("notification scheduler started: every %g s", self.interval_seconds)

    async def stop(self, *, timeout: float = 30.0) -> None:
        """Let the pass in flight finish its current sends (the rest of its claims go back to
        pending), then shut the scheduler down. Call before the bot's session closes."""
        self.dispatcher.request_stop()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=timeout)
        except TimeoutError:
            # Cancelled below by the executor: a row caught mid-call becomes `unknown` at the
            # next start (never resent), claimed ones go back to pending when their lease ends.
            log.warning("notification pass still running after %.0f s; cancelling it", timeout)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            # AsyncIOScheduler.shutdown is scheduled on the loop: let it run now.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0)
        log.info("notification scheduler stopped")


def build_notification_scheduler(
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    sender: NotificationSender,
    *,
    clock: Clock | None = None,
    worker_id: str | None = None,
    scheduler: AsyncIOScheduler | None = None,
) -> NotificationScheduler:
    """The dispatcher and its job, configured from settings (rate, check interval)."""
    dispatcher = NotificationDispatcher(
        session_factory,
        sender,
        clock=clock or SystemClock(),
        rate_per_second=settings.send_rate_per_second,
        worker_id=worker_id or default_worker_id(),
    )
    return NotificationScheduler(
        dispatcher, interval_seconds=settings.reminder_check_seconds, scheduler=scheduler
    )
