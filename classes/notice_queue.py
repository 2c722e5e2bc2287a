"""Creating, recomputing and skipping the rows of `class_notifications`.

These functions only write rows; the dispatcher of `classes.notifications` claims and sends
them. They run inside the caller's transaction (normally one of `classes.service`, after its
serialising UPDATE of the class row) and never commit.

Row rules (see `classes.models.ClassNotification`):
- Reminders (day_before, hours_before) belong to one schedule version of the class, are due
  at their time, expire at the class start, and are only created when due after `now`.
- Notices (promoted, class_changed) are due at once and expire at the class start; a
  cancellation notice is due at once and never expires (the resident must learn of it).
- A waitlist-closed notice (the class started and the registration was still waitlisted) is
  queued by the dispatcher's own pass, not by a service: due at once, expiring a day after the
  class end. A started class can only be moved to a start still ahead (the service refuses
  anything else), so a new schedule version means a new start and, if the resident is still
  waiting then, a new notice for it.
- The unique (registration, kind, schedule version) constraint makes every insert here
  idempotent: an existing row is kept as it is, never duplicated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from classes.models import (
    ACTIVE_REGISTRATION_STATUSES,
    ClassNotification,
    ClassRegistration,
    SmartphoneClass,
)
from classes.types import ClassStatus, NotificationKind, RegistrationStatus

REMINDER_KINDS = (NotificationKind.DAY_BEFORE, NotificationKind.HOURS_BEFORE)

# Classes that started longer ago than this get no waitlist-closed notices: the first pass
# after an upgrade (or after long downtime) must not write to residents about old classes.
WAITLIST_CLOSED_LOOKBACK = timedelta(days=1)
# A waitlist-closed notice is not worth sending later than this after the class end.
WAITLIST_CLOSED_VALID_AFTER_END = timedelta(days=1)

# Outcomes written on rows skipped here (short machine reasons, see the model).
OUTCOME_SUPERSEDED = "superseded"
OUTCOME_CLASS_CANCELLED = "class_cancelled"

_PENDING = "pending"
_SKIPPED = "skipped"


class _ReminderSettings(Protocol):
    """The part of `madoguchi.settings.Settings` a policy is built from."""

    @property
    def reminder_day_before_time(self) -> str: ...
    @property
    def reminder_hours_before(self) -> float: ...
    @property
    def tzinfo(self) -> ZoneInfo: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ReminderPolicy:
    """When reminders are due: the day before at a local time, and some hours before.

    Either may be None (disabled). `tz` is the town's zone: "the day before at 10:00" means
    10:00 there, whatever zone the server runs in.
    """

    tz: ZoneInfo
    day_before_at: time | None = time(10, 0)
    hours_before: float | None = 2.0

    @classmethod
    def from_settings(cls, settings: _ReminderSettings) -> ReminderPolicy:
        raw_time = settings.reminder_day_before_time.strip()
        hours = settings.reminder_hours_before
        return cls(
            tz=settings.tzinfo,
            day_before_at=time.fromisoformat(raw_time) if raw_time else None,
            hours_before=hours if hours > 0 else None,
        )

    def reminder_times(self, starts_at: datetime) -> list[tuple[NotificationKind, datetime]]:
        """Each enabled reminder kind with its due time (aware) for a class starting then.

        Reminders not strictly before the start are dropped: they would expire on arrival.
        """
        times: list[tuple[NotificationKind, datetime]] = []
        if self.day_before_at is not None:
            local_day = starts_at.astimezone(self.tz).date() - timedelta(days=1)
            due = datetime.combine(local_day, self.day_before_at, tzinfo=self.tz)
            times.append((NotificationKind.DAY_BEFORE, due))
        if self.hours_before is not None:
            times.append(
                (NotificationKind.HOURS_BEFORE, starts_at - timedelta(hours=self.hours_before))
            )
        return [(kind, due) for kind, due in times if due < starts_at]


# Signatures of the service say "notifications"; it is the same policy.
NotificationPolicy = ReminderPolicy


# --- helpers --------------------------------------------------------------------------------


async def _insert_missing(
    session: AsyncSession, rows: Sequence[dict[str, Any]], *, now: datetime
) -> int:
    """Insert notification rows whose (registration, kind, version) is not there yet.

    Returns how many were new. Existing rows win: they may already be claimed or sent.
    """
    if not rows:
        return 0
    registration_ids = {row["registration_id"] for row in rows}
    existing = set(
        (
            await session.execute(
                select(
                    ClassNotification.registration_id,
                    ClassNotification.kind,
                    ClassNotification.schedule_version,
                ).where(ClassNotification.registration_id.in_(registration_ids))
            )
        ).tuples()
    )
    missing = [
        {
            **row,
            "status": _PENDING,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for row in rows
        if (row["registration_id"], str(row["kind"]), row["schedule_version"]) not in existing
    ]
    if not missing:
        return 0
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # The conflict clause is only a backstop: the caller holds the class lock, so no other
    # transaction inserts rows for these registrations meanwhile.
    await session.execute(
        insert(ClassNotification).on_conflict_do_nothing(
            index_elements=["registration_id", "kind", "schedule_version"]
        ),
        missing,
    )
    return len(missing)


async def _skip_pending(
    session: AsyncSession,
    registration_ids: Iterable[int],
    *,
    outcome: str,
    now: datetime,
    kinds: Iterable[NotificationKind] | None = None,
    below_version: int | None = None,
) -> int:
    """Mark pending rows of these registrations skipped; claimed or sent rows stay as they are
    (the dispatcher owns them once claimed)."""
    ids = list(registration_ids)
    if not ids:
        return 0
    statement = update(ClassNotification).where(
        ClassNotification.registration_id.in_(ids), ClassNotification.status == _PENDING
    )
    if kinds is not None:
        statement = statement.where(ClassNotification.kind.in_([str(kind) for kind in kinds]))
    if below_version is not None:
        statement = statement.where(ClassNotification.schedule_version < below_version)
    result = await session.execute(
        statement.values(status=_SKIPPED, outcome=outcome, updated_at=now).execution_options(
            synchronize_session=False
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def _class_of_registration(
    session: AsyncSession, registration_id: int
) -> tuple[ClassRegistration, SmartphoneClass] | None:
    row = (
        await session.execute(
            select(ClassRegistration, SmartphoneClass)
            .join(SmartphoneClass, SmartphoneClass.id == ClassRegistration.class_id)
            .where(ClassRegistration.id == registration_id)
            .execution_options(populate_existing=True)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def _load_class(session: AsyncSession, class_id: int) -> SmartphoneClass | None:
    return await session.get(SmartphoneClass, class_id, populate_existing=True)


async def _registration_ids(
    session: AsyncSession, class_id: int, statuses: Iterable[str]
) -> list[int]:
    result = await session.scalars(
        select(ClassRegistration.id)
        .where(ClassRegistration.class_id == class_id, ClassRegistration.status.in_(statuses))
        .order_by(ClassRegistration.id)
    )
    return list(result)


def _reminder_rows(
    registration_ids: Iterable[int],
    klass: SmartphoneClass,
    *,
    policy: ReminderPolicy,
    now: datetime,
) -> list[dict[str, Any]]:
    # A resident who signs up after a reminder's time gets none for it (the confirmation
    # screen already told them what they need to know).
    due_times = [(k, due) for k, due in policy.reminder_times(klass.starts_at) if due > now]
    return [
        {
            "registration_id": registration_id,
            "kind": str(kind),
            "schedule_version": klass.schedule_version,
            "due_at": due,
            "expires_at": klass.starts_at,
        }
        for registration_id in registration_ids
        for kind, due in due_times
    ]


def _notice_rows(
    registration_ids: Iterable[int],
    klass: SmartphoneClass,
    kind: NotificationKind,
    *,
    now: datetime,
    expires_at: datetime | None,
) -> list[dict[str, Any]]:
    return [
        {
            "registration_id": registration_id,
            "kind": str(kind),
            "schedule_version": klass.schedule_version,
            "due_at": now,
            "expires_at": expires_at,
        }
        for registration_id in registration_ids
    ]


# --- public API -----------------------------------------------------------------------------


async def queue_reminders(
    session: AsyncSession, registration_id: int, *, policy: ReminderPolicy, now: datetime
) -> int:
    """Reminder rows for a confirmed registration, for its class's current schedule version.

    Returns how many rows were created (0 for a registration that is not confirmed, a
    cancelled class, or reminders whose time has passed).
    """
    loaded = await _class_of_registration(session, registration_id)
    if loaded is None:
        return 0
    registration, klass = loaded
    if registration.status != RegistrationStatus.CONFIRMED or klass.status == ClassStatus.CANCELLED:
        return 0
    return await _insert_missing(
        session, _reminder_rows([registration.id], klass, policy=policy, now=now), now=now
    )


async def queue_promotion_notice(
    session: AsyncSession, registration_id: int, *, now: datetime
) -> None:
    """Tell a resident moved from the waitlist to confirmed: due now, useless after the start."""
    loaded = await _class_of_registration(session, registration_id)
    if loaded is None:
        return
    _registration, klass = loaded
    await _insert_missing(
        session,
        _notice_rows(
            [registration_id], klass, NotificationKind.PROMOTED, now=now, expires_at=klass.starts_at
        ),
        now=now,
    )


async def reschedule_reminders(
    session: AsyncSession, class_id: int, *, policy: ReminderPolicy, now: datetime
) -> int:
    """After staff moved a class (its schedule_version already bumped): pending reminders of
    older versions are skipped as superseded and confirmed registrations get reminders for the
    new times that are still ahead. Pending promotion notices follow the new start.

    Returns how many reminder rows were created.
    """
    klass = await _load_class(session, class_id)
    if klass is None:
        return 0
    all_ids = await _registration_ids(
        session, class_id, [*ACTIVE_REGISTRATION_STATUSES, RegistrationStatus.ATTENDED]
    )
    await _skip_pending(
        session,
        all_ids,
        outcome=OUTCOME_SUPERSEDED,
        now=now,
        kinds=REMINDER_KINDS,
        below_version=klass.schedule_version,
    )
    if all_ids:
        # A promotion notice is still worth sending until the (new) start, not the old one.
        await session.execute(
            update(ClassNotification)
            .where(
                ClassNotification.registration_id.in_(all_ids),
                ClassNotification.kind == str(NotificationKind.PROMOTED),
                ClassNotification.status == _PENDING,
            )
            .values(expires_at=klass.starts_at, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    if klass.status == ClassStatus.CANCELLED:
        return 0
    confirmed = await _registration_ids(session, class_id, [RegistrationStatus.CONFIRMED])
    return await _insert_missing(
        session, _reminder_rows(confirmed, klass, policy=policy, now=now), now=now
    )


async def queue_class_changed_notices(
    session: AsyncSession, class_id: int, *, now: datetime
) -> int:
    """One CLASS_CHANGED notice per active registration (confirmed and waitlisted) for the
    class's current schedule version; an older change notice still pending is superseded by
    it, so a resident hears only the latest schedule. Returns how many were created."""
    klass = await _load_class(session, class_id)
    if klass is None or klass.status == ClassStatus.CANCELLED:
        return 0
    active = await _registration_ids(session, class_id, ACTIVE_REGISTRATION_STATUSES)
    await _skip_pending(
        session,
        active,
        outcome=OUTCOME_SUPERSEDED,
        now=now,
        kinds=[NotificationKind.CLASS_CHANGED],
        below_version=klass.schedule_version,
    )
    return await _insert_missing(
        session,
        _notice_rows(
            active, klass, NotificationKind.CLASS_CHANGED, now=now, expires_at=klass.starts_at
        ),
        now=now,
    )


async def queue_class_cancelled_notices(
    session: AsyncSession, class_id: int, *, now: datetime
) -> int:
    """One CLASS_CANCELLED notice per registration the cancellation affects; every other
    pending row of theirs (reminders, promotion or change notices) is skipped.

    Affected = still active, or already cancelled by the class cancellation (the service may
    cancel the registrations before or after calling this). Returns how many were created.
    """
    klass = await _load_class(session, class_id)
    if klass is None:
        return 0
    result = await session.scalars(
        select(ClassRegistration.id)
        .where(
            ClassRegistration.class_id == class_id,
            ClassRegistration.status.in_(ACTIVE_REGISTRATION_STATUSES)
            | (
                (ClassRegistration.status == RegistrationStatus.CANCELLED)
                & (ClassRegistration.cancelled_by == OUTCOME_CLASS_CANCELLED)
            ),
        )
        .order_by(ClassRegistration.id)
    )
    affected = list(result)
    other_kinds = [kind for kind in NotificationKind if kind != NotificationKind.CLASS_CANCELLED]
    await _skip_pending(
        session, affected, outcome=OUTCOME_CLASS_CANCELLED, now=now, kinds=other_kinds
    )
    return await _insert_missing(
        session,
        _notice_rows(affected, klass, NotificationKind.CLASS_CANCELLED, now=now, expires_at=None),
        now=now,
    )


async def skip_pending_for_registration(
    session: AsyncSession, registration_id: int, *, reason: str, now: datetime
) -> int:
    """Skip every pending row of a registration (it was cancelled or deleted), with `reason`
    as the outcome. Returns how many rows were skipped."""
    return await _skip_pending(session, [registration_id], outcome=reason, now=now)


async def queue_waitlist_closed_notices(
    session: AsyncSession,
    *,
    now: datetime,
    lookback: timedelta = WAITLIST_CLOSED_LOOKBACK,
) -> int:
    """One WAITLIST_CLOSED notice for each registration still waitlisted in a class that has
    started (`starts_at <= now`), is not cancelled (those residents got the cancellation
    notice) and started less than `lookback` ago. The registration itself is left as it is.

    Due now, expiring a day after the class end; one per registration and schedule version
    (the unique key), so a registration that has its row gets no second one. Cheap when
    there is nothing to do (one read, no write), so the dispatcher calls it at the start of
    every pass. Returns how many rows were created.
    """
    notice = str(NotificationKind.WAITLIST_CLOSED)
    already = exists(
        select(1).where(
            ClassNotification.registration_id == ClassRegistration.id,
            ClassNotification.kind == notice,
            ClassNotification.schedule_version == SmartphoneClass.schedule_version,
        )
    )
    found = (
        await session.execute(
            select(
                ClassRegistration.id,
                SmartphoneClass.schedule_version,
                SmartphoneClass.ends_at,
            )
            .join(SmartphoneClass, SmartphoneClass.id == ClassRegistration.class_id)
            .where(
                SmartphoneClass.status != ClassStatus.CANCELLED,
                SmartphoneClass.starts_at <= now,
                SmartphoneClass.starts_at > now - lookback,
                ClassRegistration.status == RegistrationStatus.WAITLISTED,
                ~already,
            )
            .order_by(ClassRegistration.id)  # one order for every writer: no deadlocks
        )
    ).all()
    rows = [
        {
            "registration_id": registration_id,
            "kind": notice,
            "schedule_version": version,
            "due_at": now,
            "expires_at": ends_at + WAITLIST_CLOSED_VALID_AFTER_END,
        }
        for registration_id, version, ends_at in found
    ]
    # Two dispatchers running this at the same moment both find the same rows missing: the
    # unique (registration, kind, version) constraint and ON CONFLICT DO NOTHING in
    # `_insert_missing` keep one of each.
    return await _insert_missing(session, rows, now=now)
