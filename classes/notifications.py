"""Sending the rows of `class_notifications`: claim, send at a bounded rate, recover.

The durable state is the row itself (see `classes.models.ClassNotification`):

    pending ──claim──> claimed ──just before the Bot API call──> sending ──> sent
       ^                  │                                         │
       └── lease expired ─┘                    lease expired ───────┴──> unknown (never resent)

- Claiming is a conditional UPDATE (`status = 'pending'` re-checked; on PostgreSQL the due
  rows are first locked with `FOR UPDATE SKIP LOCKED`), committed before anything is sent, so
  two dispatchers on the same database (a second process started by mistake) never claim the
  same row.
- Every later transition is conditional on `claimed_by` = this worker and the expected status,
  so a dispatcher whose lease ran out and whose rows another one recovered cannot touch them.
- `sending` is written (committed) just before the call; `sent` right after it, together with
  the next write (see `_tx`). A crash in between leaves `sending`, which recovery turns into
  `unknown` — it may have gone out, and a resident must never get the same reminder twice.
- A 429 means "not sent": the row goes back to `claimed` while the whole dispatcher waits for
  `retry_after`, then it is tried again (bounded), so nothing is lost or doubled.
- Whether a row is still worth sending (registration still confirmed, class not cancelled or
  moved, resident not blocked, not expired) is checked again inside the UPDATE that marks it
  `sending`, so a cancellation committed after the claim still stops the message. A
  waitlist-closed notice is the other way round: it needs a class that has started and a
  registration still waitlisted (a resident promoted at the last minute does not get it).
- Each pass starts by queueing the waitlist-closed notices of classes that have just started
  (`classes.notice_queue.queue_waitlist_closed_notices`), in a short transaction of its own.

Core code: no aiogram here. The adapter (`bot.notifier`) implements `NotificationSender`.
Nothing is logged about a row but its id, kind and outcome: never message text or a phone.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections import Counter, deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Protocol, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Table,
    Update,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from classes.clock import Clock
from classes.models import (
    ACTIVE_REGISTRATION_STATUSES,
    ClassNotification,
    ClassRegistration,
    SmartphoneClass,
)
from classes.notice_queue import queue_waitlist_closed_notices
from classes.service import class_info_of, registration_info_of, waitlist_totals
from classes.types import (
    ClassStatus,
    NotificationKind,
    OutgoingNotification,
    RegistrationStatus,
)
from madoguchi.db import UTCDateTime
from madoguchi.residents import Resident, mark_blocked

log = logging.getLogger(__name__)

REMINDER_KINDS = frozenset({NotificationKind.DAY_BEFORE, NotificationKind.HOURS_BEFORE})

# Row outcomes written here (short machine reasons; never text or phone numbers).
OUTCOME_SENT = "sent"
OUTCOME_EXPIRED = "expired"
OUTCOME_BLOCKED = "blocked"
OUTCOME_SUPERSEDED = "superseded"  # the class was moved after this row was created
OUTCOME_CLASS_CANCELLED = "class_cancelled"
OUTCOME_NOT_CONFIRMED = "not_confirmed"  # the registration was cancelled (or is waitlisted)
OUTCOME_NOT_CANCELLED = "class_not_cancelled"  # a cancel notice for a class that is on again
OUTCOME_NOT_WAITLISTED = "not_waitlisted"  # waitlist-closed notice, but promoted or cancelled
OUTCOME_NOT_STARTED = "not_started"  # waitlist-closed notice, but the class was moved later
OUTCOME_INTERRUPTED = "interrupted"  # `sending` left behind by a crash: may have gone out
OUTCOME_GAVE_UP = "gave_up"

_PENDING, _CLAIMED, _SENDING = "pending", "claimed", "sending"
_SENT, _SKIPPED, _UNKNOWN, _FAILED = "sent", "skipped", "unknown", "failed"


# --- what a sender answers ----------------------------------------------------------------------


class SendStatus(enum.StrEnum):
    SENT = "sent"
    BLOCKED = "blocked"  # the resident blocked the bot (Telegram 403)
    RETRY_AFTER = "retry_after"  # flood control (Telegram 429): not sent, try again later
    FAILED = "failed"  # not sent; `permanent` says whether trying again can help
    # The request may or may not have reached the resident (a timeout after the request left,
    # a connection dropped before the answer). Treated like a crash mid-send: never repeated.
    UNCERTAIN = "uncertain"


@dataclass(frozen=True, slots=True)
class SendOutcome:
    status: SendStatus
    retry_after: float = 0.0
    permanent: bool = False
    reason: str = ""  # short machine reason for the row's `outcome` (no message text)

    @classmethod
    def sent(cls) -> SendOutcome:
        return cls(SendStatus.SENT)

    @classmethod
    def blocked(cls) -> SendOutcome:
        return cls(SendStatus.BLOCKED, reason=OUTCOME_BLOCKED)

    @classmethod
    def retry(cls, seconds: float) -> SendOutcome:
        return cls(SendStatus.RETRY_AFTER, retry_after=max(0.0, float(seconds)))

    @classmethod
    def failed(cls, reason: str, *, permanent: bool) -> SendOutcome:
        return cls(SendStatus.FAILED, permanent=permanent, reason=reason)

    @classmethod
    def uncertain(cls, reason: str) -> SendOutcome:
        return cls(SendStatus.UNCERTAIN, reason=reason)


class NotificationSender(Protocol):
    async def send(self, item: OutgoingNotification) -> SendOutcome:
        """Deliver one message. Must not retry on its own: the dispatcher paces and retries."""
        ...


# --- rate limiter -------------------------------------------------------------------------------


class RateLimiter:
    """A token bucket on the injected clock: at most `rate_per_second` acquisitions a second.

    With the default `burst` of 1 the sends are evenly spaced (1/rate apart), so no window of
    one second ever holds more than `rate_per_second` of them. `pause` (after a 429) empties
    the bucket and holds every caller until the pause is over: the whole loop slows down, not
    only the row that was refused.
    """

    def __init__(self, clock: Clock, rate_per_second: float, *, burst: float = 1.0) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self._clock = clock
        self.rate = float(rate_per_second)
        self.burst = float(burst)
        self._tokens = self.burst
        self._updated: datetime | None = None
        self._paused_until: datetime | None = None
        self._lock = asyncio.Lock()

    def _refill(self, now: datetime) -> None:
        if self._updated is None:
            self._updated = now
            return
        elapsed = (now - self._updated).total_seconds()
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._updated = now

    def _wait_needed(self) -> float:
        """Seconds until a token is there (0 when one is); refills first."""
        now = self._clock.now()
        if self._paused_until is not None and now < self._paused_until:
            return (self._paused_until - now).total_seconds()
        self._refill(now)
        if self._tokens >= 1.0:
            return 0.0
        return (1.0 - self._tokens) / self.rate

    async def _sleep(self, seconds: float) -> None:
        # At least a microsecond (the clock's resolution), or a rounding remainder would spin.
        await self._clock.sleep(max(seconds, 1e-6))

    async def wait_ready(self) -> None:
        """Wait until a token is available, without taking it."""
        async with self._lock:
            while (wait := self._wait_needed()) > 0:
                await self._sleep(wait)

    async def acquire(self) -> None:
        """Take one token, waiting for it (callers are served one at a time)."""
        async with self._lock:
            while (wait := self._wait_needed()) > 0:
                await self._sleep(wait)
            self._tokens -= 1.0

    def pause(self, seconds: float) -> None:
        """Nobody gets a token for `seconds` from now (Telegram said 429 retry_after)."""
        now = self._clock.now()
        until = now + timedelta(seconds=max(0.0, seconds))
        if self._paused_until is None or until > self._paused_until:
            self._paused_until = until
        self._tokens = 0.0
        self._updated = max(self._updated or until, until)


# --- reports ------------------------------------------------------------------------------------


@dataclass(slots=True)
class RecoveryReport:
    released: int = 0  # expired claims back to pending (nothing had been sent)
    unknown: int = 0  # stale `sending` rows: may have gone out, never repeated


@dataclass(slots=True)
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # by outcome
    rate_limited: int = 0  # 429 answers honoured
    rescheduled: int = 0  # transient failures (and exhausted 429 retries) back to pending
    failed: int = 0  # given up: permanent failure, or too many transient ones
    unknown: int = 0  # the sender could not tell whether the message went out
    lost_claims: int = 0  # rows another dispatcher took over after our lease ran out
    released: int = 0  # claimed but not processed (stop requested): back to pending
    queued: int = 0  # waitlist-closed notices created at the start of the pass
    recovered: RecoveryReport = field(default_factory=RecoveryReport)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


# --- the dispatcher -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Claimed:
    """A claimed row with what is needed to decide and to send it."""

    id: int
    kind: NotificationKind
    schedule_version: int
    expires_at: datetime | None
    attempts: int
    resident_blocked: bool
    item: OutgoingNotification


def _skip_reason(
    kind: NotificationKind,
    *,
    schedule_version: int,
    expires_at: datetime | None,
    registration_status: str,
    class_status: str,
    class_version: int,
    starts_at: datetime,
    blocked: bool,
    now: datetime,
) -> str | None:
    """Why a row should not be sent now (an outcome), or None to send it.

    Mirrors `_sending_statement`, which makes the same decision inside the UPDATE.
    """
    if expires_at is not None and expires_at <= now:
        return OUTCOME_EXPIRED
    if kind is NotificationKind.CLASS_CANCELLED:
        reason = None if class_status == ClassStatus.CANCELLED else OUTCOME_NOT_CANCELLED
    elif class_status == ClassStatus.CANCELLED:
        reason = OUTCOME_CLASS_CANCELLED
    elif kind is NotificationKind.WAITLIST_CLOSED:
        reason = _waitlist_closed_skip_reason(registration_status, starts_at=starts_at, now=now)
    else:
        reason = _before_start_skip_reason(
            kind,
            schedule_version=schedule_version,
            registration_status=registration_status,
            class_version=class_version,
            starts_at=starts_at,
            now=now,
        )
    if reason is None and blocked:
        return OUTCOME_BLOCKED
    return reason


def _waitlist_closed_skip_reason(
    registration_status: str, *, starts_at: datetime, now: datetime
) -> str | None:
    """A waitlist-closed notice needs a class that has started and a registration still
    waitlisted: one promoted at the last minute must not get it. No schedule version check: a
    started class can only be moved to a start still ahead, which `starts_at > now` covers."""
    if starts_at > now:
        return OUTCOME_NOT_STARTED
    if registration_status != RegistrationStatus.WAITLISTED:
        return OUTCOME_NOT_WAITLISTED
    return None


def _before_start_skip_reason(
    kind: NotificationKind,
    *,
    schedule_version: int,
    registration_status: str,
    class_version: int,
    starts_at: datetime,
    now: datetime,
) -> str | None:
    """Reminders, promotion and change notices: only before the start, only to a confirmed
    registration (a change notice: any active one), only for the current schedule."""
    if starts_at <= now:
        return OUTCOME_EXPIRED
    allowed = (
        ACTIVE_REGISTRATION_STATUSES
        if kind is NotificationKind.CLASS_CHANGED
        else (RegistrationStatus.CONFIRMED,)
    )
    if registration_status not in allowed:
        return OUTCOME_NOT_CONFIRMED
    if kind is not NotificationKind.PROMOTED and schedule_version != class_version:
        return OUTCOME_SUPERSEDED
    return None


_T = cast(Table, ClassNotification.__table__)
_NOW = bindparam("now", type_=UTCDateTime())


@cache
def _sending_statement(kind: NotificationKind) -> Update:
    """claimed → sending for one row of ours, only if its registration, class and resident
    still call for this message now (the same decision as `_skip_reason`, made atomically).

    Built once per kind with bind parameters (nid, worker, now, version, lease_end): the
    statement runs once per message, so it must be cheap to execute.
    """
    r = ClassRegistration.__table__
    c = SmartphoneClass.__table__
    res = Resident.__table__
    conditions: list[ColumnElement[bool]] = [
        r.c.id == _T.c.registration_id,
        res.c.blocked_at.is_(None),
    ]
    if kind is NotificationKind.CLASS_CANCELLED:
        conditions.append(c.c.status == str(ClassStatus.CANCELLED))
    elif kind is NotificationKind.WAITLIST_CLOSED:
        conditions += [
            c.c.status != str(ClassStatus.CANCELLED),
            c.c.starts_at <= _NOW,
            r.c.status == str(RegistrationStatus.WAITLISTED),
        ]
    else:
        conditions += [c.c.status != str(ClassStatus.CANCELLED), c.c.starts_at > _NOW]
        if kind is NotificationKind.CLASS_CHANGED:
            conditions.append(r.c.status.in_(ACTIVE_REGISTRATION_STATUSES))
        else:
            conditions.append(r.c.status == str(RegistrationStatus.CONFIRMED))
        if kind is not NotificationKind.PROMOTED:
            conditions.append(c.c.schedule_version == bindparam("version", type_=Integer()))
    relevant = exists(
        select(1)
        .select_from(r.join(c, c.c.id == r.c.class_id).join(res, res.c.id == r.c.resident_id))
        .where(and_(*conditions))
    )
    return (
        update(_T)
        .where(
            _T.c.id == bindparam("nid", type_=Integer()),
            _T.c.status == _CLAIMED,
            _T.c.claimed_by == bindparam("worker", type_=String()),
            or_(_T.c.expires_at.is_(None), _T.c.expires_at > _NOW),
            relevant,
        )
        .values(
            status=_SENDING,
            attempts=_T.c.attempts + 1,
            claim_expires_at=bindparam("lease_end", type_=UTCDateTime()),
            updated_at=_NOW,
        )
    )


@cache
def _transition_statement(expected: tuple[str, ...], keys: tuple[str, ...]) -> Update:
    """One of our rows (nid, worker) in an expected status gets new values (`v_<column>`)."""
    values: dict[str, Any] = {key: bindparam(f"v_{key}", type_=_T.c[key].type) for key in keys}
    return (
        update(_T)
        .where(
            _T.c.id == bindparam("nid", type_=Integer()),
            or_(*(_T.c.status == status for status in expected)),  # no IN: executemany
            _T.c.claimed_by == bindparam("worker", type_=String()),
        )
        .values(updated_at=_NOW, **values)
    )


class NotificationDispatcher:
    """Claims due notification rows and hands them to a sender at a bounded rate.

    `concurrency` requests may be in flight at once (a Bot API call takes a few hundred
    milliseconds, so one at a time could not reach the allowed rate); the shared rate limiter
    keeps the total at `rate_per_second`. Two dispatchers never send the same row, but each
    has its own limiter: run one per deployment (the scheduler), as DESIGN.md says.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        sender: NotificationSender,
        *,
        clock: Clock,
        rate_per_second: float = 25.0,
        worker_id: str,
        lease_seconds: float = 300.0,
        concurrency: int = 8,
        claim_batch: int = 200,
        max_attempts: int = 5,
        max_rate_limited: int = 5,
        retry_base_seconds: float = 60.0,
        retry_max_seconds: float = 3600.0,
    ) -> None:
        if not worker_id or len(worker_id) > 64:
            raise ValueError("worker_id must be 1 to 64 characters")
        if concurrency < 1 or claim_batch < 1 or max_attempts < 1 or max_rate_limited < 0:
            raise ValueError("concurrency, claim_batch and max_attempts must be at least 1")
        self.session_factory = session_factory
        engine = session_factory.kw.get("bind")
        if not isinstance(engine, AsyncEngine):
            raise TypeError("the session factory must be bound to an AsyncEngine")
        self.engine = engine
        # On SQLite this dispatcher's writers take turns (see `_tx`).
        self._serialise_writes = engine.dialect.name == "sqlite"
        self.sender = sender
        self.clock = clock
        self.worker_id = worker_id
        self.lease = timedelta(seconds=lease_seconds)
        self.limiter = RateLimiter(clock, rate_per_second)
        self.concurrency = concurrency
        self.claim_batch = claim_batch
        self.max_attempts = max_attempts
        self.max_rate_limited = max_rate_limited
        self.retry_base_seconds = retry_base_seconds
        self.retry_max_seconds = retry_max_seconds
        self._stopping = False
        self._finished: list[tuple[int, datetime]] = []  # sent, not yet written `sent`
        self._write_lock = asyncio.Lock()

    # -- control ---------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Finish the rows in flight, release the other claimed rows, then return."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping

    # -- recovery --------------------------------------------------------------------------

    async def recover(self) -> RecoveryReport:
        """Expired claims → pending (nothing was sent); `sending` rows whose lease ran out →
        unknown (the process died during the call: the message may have gone out).

        Leases, not worker ids, decide: a second dispatcher still working is left alone.
        """
        now = self.clock.now()
        N = ClassNotification  # noqa: N806
        async with self._tx() as session:
            released = await session.execute(
                update(N)
                .where(
                    N.status == _CLAIMED,
                    or_(N.claim_expires_at.is_(None), N.claim_expires_at <= now),
                )
                .values(status=_PENDING, claimed_by=None, claim_expires_at=None, updated_at=now)
            )
            unknown = await session.execute(
                update(N)
                .where(
                    N.status == _SENDING,
                    or_(N.claim_expires_at.is_(None), N.claim_expires_at <= now),
                )
                .values(status=_UNKNOWN, outcome=OUTCOME_INTERRUPTED, updated_at=now)
            )
        report = RecoveryReport(
            released=int(released.rowcount),
            unknown=int(unknown.rowcount),
        )
        if report.released or report.unknown:
            log.warning(
                "notifications recovered: %d claims released, %d interrupted sends marked unknown",
                report.released,
                report.unknown,
            )
        return report

    # -- queueing --------------------------------------------------------------------------

    async def queue_waitlist_closed(self) -> int:
        """Queue the waitlist-closed notices now due, in a short transaction of its own.

        A failure here is logged and the pass goes on: reminders already queued matter more,
        and the next pass tries again (the rows are created idempotently).
        """
        try:
            async with self._tx() as connection, AsyncSession(bind=connection) as session:
                # The ORM session joins the connection's transaction; `_tx` commits it.
                queued = await queue_waitlist_closed_notices(session, now=self.clock.now())
        except Exception:
            log.exception("queueing waitlist-closed notices failed; the next pass tries again")
            return 0
        if queued:
            log.info("notifications: %d waitlist-closed notices queued", queued)
        return queued

    # -- one pass --------------------------------------------------------------------------

    async def run_once(self, *, limit: int = 500) -> DispatchReport:
        """Send up to `limit` due rows (in batches) and return what happened to them.

        Starts with `recover()`, so that claims of a dispatcher that died are picked up
        without a restart once their lease has run out, then queues the waitlist-closed
        notices of classes that have started since (sent in this same pass).
        """
        report = DispatchReport()
        report.recovered = await self.recover()
        report.queued = await self.queue_waitlist_closed()
        while report.claimed < limit and not self._stopping:
            ids = await self._claim(min(self.claim_batch, limit - report.claimed))
            if not ids:
                break
            report.claimed += len(ids)
            rows = await self._load(ids)
            await self._process_batch(rows, report)
            if len(ids) < self.claim_batch:
                break
        if report.claimed:
            log.info(
                "notifications: %d claimed, %d sent, %d skipped, %d rescheduled, %d failed, "
                "%d unknown, %d rate limited",
                report.claimed,
                report.sent,
                report.skipped_total,
                report.rescheduled,
                report.failed,
                report.unknown,
                report.rate_limited,
            )
        return report

    async def _claim(self, count: int) -> list[int]:
        """Claim up to `count` due pending rows for this worker, committed at once."""
        now = self.clock.now()
        N = ClassNotification  # noqa: N806
        async with self._tx() as session:
            due = (
                select(N.id)
                .where(N.status == _PENDING, N.due_at <= now)
                .order_by(N.due_at, N.id)
                .limit(count)
            )
            candidates: Any
            if session.dialect.name == "postgresql":
                # Lock the due rows first, passing over those another dispatcher is claiming
                # right now. A separate statement on purpose: as a subquery of the UPDATE,
                # PostgreSQL may run a LIMIT ... SKIP LOCKED subquery more than once and
                # claim more rows than asked for.
                locked = await session.scalars(due.with_for_update(skip_locked=True))
                candidates = list(locked.all())
                if not candidates:
                    return []
            else:
                # SQLite runs the subquery once, inside the write lock this UPDATE takes.
                candidates = due.scalar_subquery()
            # `status = 'pending'` again: the latest committed state, seen under the lock.
            result = await session.scalars(
                update(N)
                .where(N.id.in_(candidates), N.status == _PENDING)
                .values(
                    status=_CLAIMED,
                    claimed_by=self.worker_id,
                    claim_expires_at=now + self.lease,
                    updated_at=now,
                )
                .returning(N.id)
            )
            # Read before the commit; the claim is committed before anything is sent.
            return sorted(result.all())

    async def _load(self, ids: Sequence[int]) -> list[_Claimed]:
        """The claimed rows with registration, class and resident, in due order."""
        N, R, C = ClassNotification, ClassRegistration, SmartphoneClass  # noqa: N806
        async with self.session_factory() as session:
            rows = (
                await session.execute(
                    select(N, R, C, Resident.telegram_user_id, Resident.blocked_at)
                    .join(R, R.id == N.registration_id)
                    .join(C, C.id == R.class_id)
                    .join(Resident, Resident.id == R.resident_id)
                    .where(N.id.in_(ids))
                    .order_by(N.due_at, N.id)
                )
            ).all()
            class_ids = {klass.id for _n, _r, klass, _t, _b in rows}
            waitlisted = await waitlist_totals(session, sorted(class_ids))
            loaded = []
            for note, registration, klass, telegram_user_id, blocked_at in rows:
                position = None
                if registration.status == RegistrationStatus.WAITLISTED:
                    position = 1 + int(
                        await session.scalar(
                            select(func.count()).where(
                                R.class_id == registration.class_id,
                                R.status == RegistrationStatus.WAITLISTED,
                                R.id < registration.id,
                            )
                        )
                        or 0
                    )
                kind = NotificationKind(note.kind)
                loaded.append(
                    _Claimed(
                        id=note.id,
                        kind=kind,
                        schedule_version=note.schedule_version,
                        expires_at=note.expires_at,
                        attempts=note.attempts,
                        resident_blocked=blocked_at is not None,
                        item=OutgoingNotification(
                            notification_id=note.id,
                            kind=kind,
                            telegram_user_id=int(telegram_user_id),
                            registration=registration_info_of(registration, position),
                            klass=class_info_of(klass, waitlisted.get(klass.id, (0, 0))),
                        ),
                    )
                )
        return loaded

    async def _process_batch(self, rows: list[_Claimed], report: DispatchReport) -> None:
        queue = deque(rows)

        async def worker() -> None:
            while queue and not self._stopping:
                row = queue.popleft()
                try:
                    await self._process(row, report)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # A database error: the row stays claimed (or sending) and recovery deals
                    # with it when its lease runs out; the other rows go on.
                    log.exception("notification %d: processing failed", row.id)

        try:
            await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(rows)))))
        finally:
            with contextlib.suppress(Exception):  # else recovery marks them unknown: no harm
                await self._flush_finished()
        if queue:
            report.released += await self._release([row.id for row in queue])

    # -- one row ---------------------------------------------------------------------------

    async def _process(self, row: _Claimed, report: DispatchReport) -> None:
        reason = _skip_reason(
            row.kind,
            schedule_version=row.schedule_version,
            expires_at=row.expires_at,
            registration_status=row.item.registration.status,
            class_status=row.item.klass.status,
            class_version=row.item.klass.schedule_version,
            starts_at=row.item.klass.starts_at,
            blocked=row.resident_blocked,
            now=self.clock.now(),
        )
        if reason is not None:
            await self._finish_claimed(row.id, _SKIPPED, reason, report)
            return
        rate_limited = 0
        calls = 0  # sender calls in this pass (each counted in the row's `attempts`)
        while True:
            # Wait for the limiter before writing `sending`, so that a crash while waiting
            # (a 429 pause can be long) leaves a claim that will be sent, not an `unknown`.
            await self.limiter.wait_ready()
            if not await self._mark_sending(row):
                await self._explain_refusal(row, report)
                return
            calls += 1
            await self.limiter.acquire()
            outcome = await self._call_sender(row)
            now = self.clock.now()
            if outcome.status is SendStatus.SENT:
                self._finished.append((row.id, now))  # written `sent` with the next write
                report.sent += 1
                return
            if outcome.status is SendStatus.RETRY_AFTER:
                report.rate_limited += 1
                rate_limited += 1
                self.limiter.pause(outcome.retry_after)
                if rate_limited > self.max_rate_limited:
                    # Not sent: back to the queue, due after the wait Telegram asked for.
                    later = now + timedelta(seconds=outcome.retry_after)
                    await self._set(
                        row.id, (_SENDING,), report, status=_PENDING, claimed_by=None,
                        claim_expires_at=None, due_at=later,
                    )  # fmt: skip
                    report.rescheduled += 1
                    return
                # Not sent either: hold the row as a claim (a crash now must not lose it).
                lease_end = now + timedelta(seconds=outcome.retry_after) + self.lease
                if not await self._set(
                    row.id, (_SENDING,), report, status=_CLAIMED, claim_expires_at=lease_end
                ):
                    return
                continue
            await self._after_failure(row, outcome, report, attempts=row.attempts + calls)
            return

    async def _call_sender(self, row: _Claimed) -> SendOutcome:
        try:
            return await self.sender.send(row.item)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # We cannot know how far the sender got: never repeat it.
            log.error(
                "notification %d (%s): sender raised %s",
                row.id,
                row.kind,
                type(error).__name__,
            )
            return SendOutcome.uncertain("sender_error")

    async def _after_failure(
        self, row: _Claimed, outcome: SendOutcome, report: DispatchReport, *, attempts: int
    ) -> None:
        now = self.clock.now()
        if outcome.status is SendStatus.BLOCKED:
            async with self._tx() as session, AsyncSession(bind=session) as orm:
                # The ORM session joins the connection's transaction; `_tx` commits it.
                await mark_blocked(orm, row.item.telegram_user_id, now=now)
                await self._transition(
                    session, row.id, (_SENDING,), status=_SKIPPED, outcome=OUTCOME_BLOCKED, now=now
                )
            report.skipped[OUTCOME_BLOCKED] += 1
            return
        if outcome.status is SendStatus.UNCERTAIN:
            await self._set(
                row.id, (_SENDING,), report, status=_UNKNOWN, outcome=outcome.reason or _UNKNOWN
            )
            report.unknown += 1
            log.warning(
                "notification %d (%s): delivery unknown (%s)", row.id, row.kind, outcome.reason
            )
            return
        if outcome.permanent or attempts >= self.max_attempts:
            reason = outcome.reason or "failed"
            if not outcome.permanent:
                reason = f"{OUTCOME_GAVE_UP}:{reason}"[:64]
            await self._set(row.id, (_SENDING,), report, status=_FAILED, outcome=reason)
            report.failed += 1
            log.warning("notification %d (%s): failed (%s)", row.id, row.kind, reason)
            return
        delay = min(self.retry_max_seconds, self.retry_base_seconds * 2 ** (attempts - 1))
        await self._set(
            row.id, (_SENDING,), report, status=_PENDING, claimed_by=None, claim_expires_at=None,
            due_at=now + timedelta(seconds=delay), outcome=(outcome.reason or "failed")[:64],
        )  # fmt: skip
        report.rescheduled += 1

    # -- transactions ----------------------------------------------------------------------

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        """One committed write transaction, which also records the sends finished since the
        last one as `sent`.

        Writing `sent` with the next transaction (a fraction of a second later) instead of in
        one of its own halves the writes per message. A crash in between leaves such rows
        `sending`, and recovery calls them `unknown`: never resent, which is right, since
        they did go out. On SQLite this dispatcher's writers take turns (an asyncio lock):
        the database has one writer at a time anyway, and waiting in SQLite's busy handler
        is far slower than waiting here.
        """
        lock = self._write_lock if self._serialise_writes else contextlib.nullcontext()
        # A plain connection, not an ORM session: this runs once or twice per message and
        # only executes prepared UPDATE statements.
        async with lock, self.engine.begin() as session:
            finished, self._finished = self._finished, []
            try:
                if finished:
                    await session.execute(
                        _transition_statement((_SENDING,), ("status", "sent_at", "outcome")),
                        [
                            {
                                "nid": row_id,
                                "worker": self.worker_id,
                                "now": sent_at,
                                "v_status": _SENT,
                                "v_sent_at": sent_at,
                                "v_outcome": OUTCOME_SENT,
                            }
                            for row_id, sent_at in finished
                        ],
                    )
                yield session
            except BaseException:
                self._finished[:0] = finished  # rolled back: record them next time
                raise

    async def _flush_finished(self) -> None:
        if self._finished:
            async with self._tx():
                pass

    async def _mark_sending(self, row: _Claimed) -> bool:
        """claimed → sending (committed), only while ours and still worth sending."""
        now = self.clock.now()
        async with self._tx() as session:
            result = await session.execute(
                _sending_statement(row.kind),
                {
                    "nid": row.id,
                    "worker": self.worker_id,
                    "now": now,
                    "version": row.schedule_version,
                    "lease_end": now + self.lease,
                },
            )
        return bool(result.rowcount)

    async def _explain_refusal(self, row: _Claimed, report: DispatchReport) -> None:
        """`_mark_sending` refused: find out why with fresh data and record it."""
        now = self.clock.now()
        N, R, C = ClassNotification, ClassRegistration, SmartphoneClass  # noqa: N806
        async with self._tx() as session:
            found = (
                await session.execute(
                    select(
                        N.status,
                        N.claimed_by,
                        N.expires_at,
                        R.status,
                        C.status,
                        C.schedule_version,
                        C.starts_at,
                        Resident.blocked_at,
                    )
                    .join(R, R.id == N.registration_id)
                    .join(C, C.id == R.class_id)
                    .join(Resident, Resident.id == R.resident_id)
                    .where(N.id == row.id)
                )
            ).first()
            if found is None or found[0] != _CLAIMED or found[1] != self.worker_id:
                report.lost_claims += 1  # someone else owns it now (or it was deleted)
                return
            reason = (
                _skip_reason(
                    row.kind,
                    schedule_version=row.schedule_version,
                    expires_at=found[2],
                    registration_status=found[3],
                    class_status=found[4],
                    class_version=found[5],
                    starts_at=found[6],
                    blocked=found[7] is not None,
                    now=now,
                )
                or OUTCOME_EXPIRED  # only a race with the clock is left
            )
            if await self._transition(
                session, row.id, (_CLAIMED,), now=now, status=_SKIPPED, outcome=reason
            ):
                report.skipped[reason] += 1
            else:
                report.lost_claims += 1

    async def _finish_claimed(
        self, row_id: int, status: str, outcome: str, report: DispatchReport
    ) -> None:
        if await self._set(row_id, (_CLAIMED,), report, status=status, outcome=outcome):
            report.skipped[outcome] += 1

    async def _set(
        self, row_id: int, expected: tuple[str, ...], report: DispatchReport, **values: Any
    ) -> bool:
        async with self._tx() as session:
            done = await self._transition(session, row_id, expected, now=self.clock.now(), **values)
        if not done:
            report.lost_claims += 1
        return done

    async def _transition(
        self,
        session: AsyncConnection,
        row_id: int,
        expected: tuple[str, ...],
        *,
        now: datetime,
        **values: Any,
    ) -> bool:
        """Move one of our rows on, if it is still ours and in an expected status."""
        statement = _transition_statement(expected, tuple(sorted(values)))
        params = {"nid": row_id, "worker": self.worker_id, "now": now}
        params.update({f"v_{key}": value for key, value in values.items()})
        result = await session.execute(statement, params)
        return bool(result.rowcount)

    async def _release(self, ids: list[int]) -> int:
        """Claimed rows we will not process now (stopping): back to pending at once."""
        now = self.clock.now()
        N = ClassNotification  # noqa: N806
        async with self._tx() as session:
            result = await session.execute(
                update(N)
                .where(N.id.in_(ids), N.status == _CLAIMED, N.claimed_by == self.worker_id)
                .values(status=_PENDING, claimed_by=None, claim_expires_at=None, updated_at=now)
            )
        return int(result.rowcount)
