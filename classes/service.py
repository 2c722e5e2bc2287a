"""Smartphone classes: classes, registrations, the waitlist and automatic promotion.

Every function takes the caller's AsyncSession and never commits (the caller's
`session_scope` does); results are `classes.types` dataclasses, never ORM rows.

Concurrency (see classes/CONTRACT.md): every change of a class's seats starts its transaction
with `UPDATE smartphone_classes SET confirmed_seats = confirmed_seats WHERE id = ...`. On
PostgreSQL that takes the class row's lock; on SQLite it takes the database write lock
*before* anything is read, so a WAL snapshot can never be stale (SQLITE_BUSY_SNAPSHOT) and
busy_timeout queues the writers. Sign-ups, cancellations and promotions of one class are thus
serialised on both backends, and id order is commit order: the FIFO waitlist is id order.
The check constraint `confirmed_seats <= capacity` and the partial unique index on active
registrations are the backstop: their IntegrityError is caught in a SAVEPOINT and reported as
the matching result.

Wording is the adapters' job: refusals are `SignUpRefusal` values and staff mistakes are
`ClassRuleError` codes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from classes.models import (
    ACTIVE_REGISTRATION_STATUSES,
    ClassNotification,
    ClassRegistration,
    SmartphoneClass,
)
from classes.notice_queue import (
    NotificationPolicy,
    ReminderPolicy,
    queue_class_cancelled_notices,
    queue_class_changed_notices,
    queue_promotion_notice,
    queue_reminders,
    reschedule_reminders,
    skip_pending_for_registration,
)
from classes.types import (
    CancelResult,
    ClassDraft,
    ClassInfo,
    ClassStatus,
    RegistrationInfo,
    RegistrationStatus,
    ResidentRegistration,
    SignUpRefusal,
    SignUpResult,
)
from madoguchi.residents import Resident

__all__ = [
    "ClassRuleError",
    "NotificationPolicy",
    "ReminderPolicy",
    "cancel_class",
    "cancel_registration",
    "create_class",
    "delete_resident_registrations",
    "get_class",
    "get_registration",
    "list_classes",
    "list_registrations",
    "list_upcoming_classes",
    "mark_attended",
    "normalize_phone",
    "resident_registrations",
    "sign_up",
    "sign_up_refusal",
    "update_class",
    "validate_name",
]

TITLE_MAX = 200
VENUE_MAX = 200
TEXT_MAX = 5000
NAME_MAX = 100
ACTOR_MAX = 100
CAPACITY_MAX = 10_000
MAX_SEATS_LIMIT = 10
PHONE_MIN_DIGITS = 10
PHONE_MAX_DIGITS = 15
JAPAN_CODE = "81"

# Who cancelled a registration (class_registrations.cancelled_by).
BY_RESIDENT = "resident"
BY_STAFF = "staff"
BY_CLASS_CANCELLED = "class_cancelled"

# Outcome of notification rows skipped because their registration was cancelled.
OUTCOME_REGISTRATION_CANCELLED = "registration_cancelled"

# Seats that count against capacity (the model keeps confirmed_seats equal to their sum).
_SEATED = (RegistrationStatus.CONFIRMED, RegistrationStatus.ATTENDED)
_ACTIVE = tuple(ACTIVE_REGISTRATION_STATUSES)

# Dashes a resident may type in a phone number (ASCII, full-width, Unicode hyphens and
# minus, and the long-vowel mark that Japanese keyboards produce by mistake).
_PHONE_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―−－ーｰ()（）]")


class ClassRuleError(Exception):
    """A staff action breaks a class rule; adapters word `code` for staff.

    Codes: not_found, invalid_title, invalid_venue, invalid_description, invalid_what_to_bring,
    naive_datetime, ends_before_start, deadline_after_start, starts_in_past, invalid_capacity,
    invalid_max_seats, capacity_below_confirmed, class_cancelled, class_finished,
    not_confirmed (attendance of a registration without a seat).
    """

    def __init__(self, code: str, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}" if detail else code)


# --- validation -----------------------------------------------------------------------------


def validate_name(name: str) -> str | None:
    """The name as stored (trimmed), or None when empty, too long or holding control
    characters (a newline in a name would break the staff roster)."""
    cleaned = name.strip()
    if not 1 <= len(cleaned) <= NAME_MAX:
        return None
    if any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} for char in cleaned):
        return None
    return cleaned


def normalize_phone(phone: str | None) -> tuple[bool, str | None]:
    """(valid, normalised) for an optional phone number.

    Blank = no phone. Otherwise digits (full-width too), dashes, spaces and brackets are
    accepted; 10–15 digits remain, e.g. "09012345678". A Japanese number in international
    form ("+81 90-1234-5678", as Telegram shares contacts) becomes "09012345678"; other
    countries' numbers keep their leading +.
    """
    if phone is None or not phone.strip():
        return True, None
    text = unicodedata.normalize("NFKC", phone).strip()
    plus = text.startswith("+")
    digits = _PHONE_SEPARATORS.sub("", text.removeprefix("+"))
    if not digits.isascii() or not digits.isdigit():
        return False, None
    if plus and digits.startswith(JAPAN_CODE) and 9 <= len(digits) - len(JAPAN_CODE) <= 10:
        # A Japanese number in international form (Telegram's shared contacts): staff read
        # and dial it as 090…, so it is kept in the domestic form.
        return True, "0" + digits[len(JAPAN_CODE) :]
    if not PHONE_MIN_DIGITS <= len(digits) <= PHONE_MAX_DIGITS:
        return False, None
    return True, ("+" if plus else "") + digits


def _require_aware(*moments: datetime) -> None:
    if any(moment.tzinfo is None or moment.utcoffset() is None for moment in moments):
        raise ClassRuleError("naive_datetime")


def _clean_draft(draft: ClassDraft) -> ClassDraft:
    """The draft with trimmed texts, or ClassRuleError for the first broken rule."""
    title = draft.title.strip()
    venue = draft.venue.strip()
    if not 1 <= len(title) <= TITLE_MAX:
        raise ClassRuleError("invalid_title")
    if not 1 <= len(venue) <= VENUE_MAX:
        raise ClassRuleError("invalid_venue")
    if len(draft.description) > TEXT_MAX:
        raise ClassRuleError("invalid_description")
    if len(draft.what_to_bring) > TEXT_MAX:
        raise ClassRuleError("invalid_what_to_bring")
    _require_aware(draft.starts_at, draft.ends_at, draft.registration_deadline)
    if draft.ends_at <= draft.starts_at:
        raise ClassRuleError("ends_before_start")
    if draft.registration_deadline > draft.starts_at:
        raise ClassRuleError("deadline_after_start")
    if not 1 <= draft.capacity <= CAPACITY_MAX:
        raise ClassRuleError("invalid_capacity")
    if not 1 <= draft.max_seats_per_registration <= MAX_SEATS_LIMIT:
        raise ClassRuleError("invalid_max_seats")
    return ClassDraft(
        title=title,
        venue=venue,
        starts_at=draft.starts_at.astimezone(UTC),
        ends_at=draft.ends_at.astimezone(UTC),
        capacity=draft.capacity,
        registration_deadline=draft.registration_deadline.astimezone(UTC),
        description=draft.description.strip(),
        what_to_bring=draft.what_to_bring.strip(),
        max_seats_per_registration=draft.max_seats_per_registration,
        waitlist_enabled=draft.waitlist_enabled,
    )


# --- rows to types --------------------------------------------------------------------------


async def waitlist_totals(
    session: AsyncSession, class_ids: Sequence[int]
) -> dict[int, tuple[int, int]]:
    """class id -> (waitlisted registrations, waitlisted seats)."""
    if not class_ids:
        return {}
    rows = await session.execute(
        select(
            ClassRegistration.class_id,
            func.count(ClassRegistration.id),
            func.coalesce(func.sum(ClassRegistration.seats), 0),
        )
        .where(
            ClassRegistration.class_id.in_(class_ids),
            ClassRegistration.status == RegistrationStatus.WAITLISTED,
        )
        .group_by(ClassRegistration.class_id)
    )
    return {class_id: (int(count), int(seats)) for class_id, count, seats in rows.tuples()}


def class_info_of(row: SmartphoneClass, waitlist: tuple[int, int]) -> ClassInfo:
    return ClassInfo(
        id=row.id,
        title=row.title,
        description=row.description,
        what_to_bring=row.what_to_bring,
        venue=row.venue,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        capacity=row.capacity,
        confirmed_seats=row.confirmed_seats,
        waitlisted_seats=waitlist[1],
        waitlisted_registrations=waitlist[0],
        max_seats_per_registration=row.max_seats_per_registration,
        waitlist_enabled=row.waitlist_enabled,
        registration_deadline=row.registration_deadline,
        status=ClassStatus(row.status),
        schedule_version=row.schedule_version,
        is_sample=row.is_sample,
    )


async def _class_infos(session: AsyncSession, rows: Sequence[SmartphoneClass]) -> list[ClassInfo]:
    totals = await waitlist_totals(session, [row.id for row in rows])
    return [class_info_of(row, totals.get(row.id, (0, 0))) for row in rows]


async def _load_class(session: AsyncSession, class_id: int) -> SmartphoneClass | None:
    # populate_existing: the caller's session may hold this row from before the lock.
    return await session.get(SmartphoneClass, class_id, populate_existing=True)


async def _fresh_class_info(session: AsyncSession, class_id: int) -> ClassInfo:
    row = await _load_class(session, class_id)
    assert row is not None, "the class row is locked by this transaction"
    return (await _class_infos(session, [row]))[0]


def registration_info_of(row: ClassRegistration, position: int | None) -> RegistrationInfo:
    status = RegistrationStatus(row.status)
    return RegistrationInfo(
        id=row.id,
        class_id=row.class_id,
        resident_id=row.resident_id,
        name=row.name,
        phone=row.phone,
        seats=row.seats,
        status=status,
        waitlist_position=position if status == RegistrationStatus.WAITLISTED else None,
        created_at=row.created_at,
        confirmed_at=row.confirmed_at,
        cancelled_at=row.cancelled_at,
        cancelled_by=row.cancelled_by,
        attended_at=row.attended_at,
    )


async def _waitlist_position(session: AsyncSession, row: ClassRegistration) -> int | None:
    if row.status != RegistrationStatus.WAITLISTED:
        return None
    ahead = await session.scalar(
        select(func.count(ClassRegistration.id)).where(
            ClassRegistration.class_id == row.class_id,
            ClassRegistration.status == RegistrationStatus.WAITLISTED,
            ClassRegistration.id <= row.id,
        )
    )
    return int(ahead or 0)


async def _registration_result(session: AsyncSession, row: ClassRegistration) -> RegistrationInfo:
    return registration_info_of(row, await _waitlist_position(session, row))


# --- locking and seats ----------------------------------------------------------------------


async def _lock_where(session: AsyncSession, class_id: ColumnElement[int] | int) -> int | None:
    """`UPDATE smartphone_classes SET confirmed_seats = confirmed_seats WHERE id = ...`:
    the FIRST statement of every seat-changing transaction, so the lock comes before any read.
    `class_id` may be a scalar subquery, which finds the class without a separate read.
    Returns the locked class's id, or None when there is no such class."""
    locked: int | None = await session.scalar(
        update(SmartphoneClass)
        .where(SmartphoneClass.id == class_id)
        .values(confirmed_seats=SmartphoneClass.confirmed_seats)
        .returning(SmartphoneClass.id)
        .execution_options(synchronize_session=False)
    )
    return locked


async def _lock_class(session: AsyncSession, class_id: int) -> bool:
    return await _lock_where(session, class_id) is not None


async def _lock_class_of_registration(session: AsyncSession, registration_id: int) -> int | None:
    """Lock the class of a registration; its id, or None for an unknown registration."""
    class_of = (
        select(ClassRegistration.class_id)
        .where(ClassRegistration.id == registration_id)
        .scalar_subquery()
    )
    return await _lock_where(session, class_of)


async def _add_seats(session: AsyncSession, class_id: int, delta: int) -> None:
    if delta:
        await session.execute(
            update(SmartphoneClass)
            .where(SmartphoneClass.id == class_id)
            .values(confirmed_seats=SmartphoneClass.confirmed_seats + delta)
            .execution_options(synchronize_session=False)
        )


async def _promote(
    session: AsyncSession, class_id: int, *, policy: ReminderPolicy, now: datetime
) -> list[RegistrationInfo]:
    """Confirm waitlisted registrations, oldest first, while seats are free.

    A registration needing more seats than are free is skipped and keeps its place; a later,
    smaller one may be confirmed. Nothing is promoted once the class has started or when it is
    cancelled. The caller holds the class lock.
    """
    klass = await _load_class(session, class_id)
    if klass is None or klass.status == ClassStatus.CANCELLED or now >= klass.starts_at:
        return []
    free = klass.capacity - klass.confirmed_seats
    if free <= 0:
        return []
    waiting = await session.scalars(
        select(ClassRegistration)
        .where(
            ClassRegistration.class_id == class_id,
            ClassRegistration.status == RegistrationStatus.WAITLISTED,
            ClassRegistration.seats <= free,
        )
        .order_by(ClassRegistration.id)
        .execution_options(populate_existing=True)
    )
    chosen: list[ClassRegistration] = []
    for row in waiting.all():
        if row.seats <= free:
            chosen.append(row)
            free -= row.seats
        if free == 0:
            break
    for row in chosen:
        row.status = RegistrationStatus.CONFIRMED
        row.confirmed_at = now
        row.updated_at = now
    await session.flush()
    await _add_seats(session, class_id, sum(row.seats for row in chosen))
    for row in chosen:
        await queue_promotion_notice(session, row.id, now=now)
        await queue_reminders(session, row.id, policy=policy, now=now)
    return [registration_info_of(row, None) for row in chosen]


# --- classes --------------------------------------------------------------------------------


async def create_class(
    session: AsyncSession,
    draft: ClassDraft,
    *,
    actor: str,
    now: datetime,
    is_sample: bool = False,
) -> ClassInfo:
    """A new scheduled class. ClassRuleError for a broken rule (see its codes)."""
    clean = _clean_draft(draft)
    _require_aware(now)
    if clean.starts_at <= now:
        raise ClassRuleError("starts_in_past")
    row = SmartphoneClass(
        title=clean.title,
        description=clean.description,
        what_to_bring=clean.what_to_bring,
        venue=clean.venue,
        starts_at=clean.starts_at,
        ends_at=clean.ends_at,
        capacity=clean.capacity,
        confirmed_seats=0,
        max_seats_per_registration=clean.max_seats_per_registration,
        waitlist_enabled=clean.waitlist_enabled,
        registration_deadline=clean.registration_deadline,
        status=ClassStatus.SCHEDULED,
        schedule_version=1,
        is_sample=is_sample,
        created_at=now,
        updated_at=now,
        updated_by=actor[:ACTOR_MAX],
    )
    session.add(row)
    await session.flush()
    return class_info_of(row, (0, 0))


def _is_move(row: SmartphoneClass, clean: ClassDraft) -> bool:
    """A change residents must hear about and reminders must follow: time or place."""
    return (
        row.starts_at != clean.starts_at or row.ends_at != clean.ends_at or row.venue != clean.venue
    )


async def update_class(
    session: AsyncSession,
    class_id: int,
    draft: ClassDraft,
    *,
    actor: str,
    now: datetime,
    policy: ReminderPolicy,
) -> ClassInfo:
    """Staff edit a class.

    Moving it (start, end or venue) bumps schedule_version, marks it CHANGED, reschedules the
    reminders and queues one change notice per active registration. A larger capacity
    promotes from the waitlist.
    """
    clean = _clean_draft(draft)
    _require_aware(now)
    if not await _lock_class(session, class_id):
        raise ClassRuleError("not_found")
    row = await _load_class(session, class_id)
    assert row is not None
    if row.status == ClassStatus.CANCELLED:
        raise ClassRuleError("class_cancelled")
    if clean.capacity < row.confirmed_seats:
        raise ClassRuleError("capacity_below_confirmed", f"{row.confirmed_seats} seats taken")
    moved = _is_move(row, clean)
    if moved and clean.starts_at <= now:
        raise ClassRuleError("starts_in_past")
    row.title = clean.title
    row.description = clean.description
    row.what_to_bring = clean.what_to_bring
    row.venue = clean.venue
    row.starts_at = clean.starts_at
    row.ends_at = clean.ends_at
    row.capacity = clean.capacity
    row.max_seats_per_registration = clean.max_seats_per_registration
    row.waitlist_enabled = clean.waitlist_enabled
    row.registration_deadline = clean.registration_deadline
    row.updated_at = now
    row.updated_by = actor[:ACTOR_MAX]
    if moved:
        row.schedule_version += 1
        row.status = ClassStatus.CHANGED
    await session.flush()
    if moved:
        await reschedule_reminders(session, class_id, policy=policy, now=now)
        await queue_class_changed_notices(session, class_id, now=now)
    await _promote(session, class_id, policy=policy, now=now)
    return await _fresh_class_info(session, class_id)


async def cancel_class(
    session: AsyncSession, class_id: int, *, actor: str, now: datetime
) -> ClassInfo:
    """Staff cancel a class: every active registration is cancelled (by "class_cancelled"),
    pending reminders are skipped and each affected resident gets one cancellation notice.
    Cancelling a cancelled class changes nothing."""
    _require_aware(now)
    if not await _lock_class(session, class_id):
        raise ClassRuleError("not_found")
    row = await _load_class(session, class_id)
    assert row is not None
    if row.status == ClassStatus.CANCELLED:
        return await _fresh_class_info(session, class_id)
    if now >= row.ends_at:
        raise ClassRuleError("class_finished")
    active = (
        await session.scalars(
            select(ClassRegistration)
            .where(ClassRegistration.class_id == class_id, ClassRegistration.status.in_(_ACTIVE))
            .execution_options(populate_existing=True)
        )
    ).all()
    freed = 0
    for registration in active:
        if registration.status == RegistrationStatus.CONFIRMED:
            freed += registration.seats
        registration.status = RegistrationStatus.CANCELLED
        registration.cancelled_at = now
        registration.cancelled_by = BY_CLASS_CANCELLED
        registration.updated_at = now
    row.status = ClassStatus.CANCELLED
    row.updated_at = now
    row.updated_by = actor[:ACTOR_MAX]
    await session.flush()
    await _add_seats(session, class_id, -freed)
    await queue_class_cancelled_notices(session, class_id, now=now)
    return await _fresh_class_info(session, class_id)


async def get_class(session: AsyncSession, class_id: int) -> ClassInfo | None:
    row = await _load_class(session, class_id)
    return None if row is None else (await _class_infos(session, [row]))[0]


async def list_upcoming_classes(
    session: AsyncSession, *, now: datetime, include_samples: bool = True, limit: int = 20
) -> list[ClassInfo]:
    """Classes residents can look at: not cancelled, not started, soonest first."""
    statement = (
        select(SmartphoneClass)
        .where(SmartphoneClass.status != ClassStatus.CANCELLED, SmartphoneClass.starts_at > now)
        .order_by(SmartphoneClass.starts_at, SmartphoneClass.id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    if not include_samples:
        statement = statement.where(SmartphoneClass.is_sample.is_(False))
    rows = (await session.scalars(statement)).all()
    return await _class_infos(session, rows)


async def list_classes(
    session: AsyncSession, *, include_past: bool = False, now: datetime | None = None
) -> list[ClassInfo]:
    """Staff list, cancelled ones included, by start. Without include_past only classes that
    have not ended yet (at `now`, the current time when not given)."""
    statement = (
        select(SmartphoneClass)
        .order_by(SmartphoneClass.starts_at, SmartphoneClass.id)
        .execution_options(populate_existing=True)
    )
    if not include_past:
        statement = statement.where(SmartphoneClass.ends_at > (now or datetime.now(UTC)))
    rows = (await session.scalars(statement)).all()
    return await _class_infos(session, rows)


# --- registrations --------------------------------------------------------------------------


async def _active_registration(
    session: AsyncSession, class_id: int, resident_id: int
) -> ClassRegistration | None:
    result = await session.scalars(
        select(ClassRegistration)
        .where(
            ClassRegistration.class_id == class_id,
            ClassRegistration.resident_id == resident_id,
            ClassRegistration.status.in_(_ACTIVE),
        )
        .execution_options(populate_existing=True)
    )
    return result.first()


def sign_up_refusal(
    klass: SmartphoneClass | ClassInfo, seats: int, *, now: datetime
) -> SignUpRefusal | None:
    """Why this class takes no sign-up of `seats` now (a full class with a waitlist still
    does). Adapters ask it of a ClassInfo before starting a sign-up flow; `sign_up` asks it
    again of the locked row, which decides."""
    if klass.status == ClassStatus.CANCELLED:
        return SignUpRefusal.CANCELLED
    if now >= klass.starts_at:
        return SignUpRefusal.PAST
    if now > klass.registration_deadline:
        return SignUpRefusal.DEADLINE_PASSED
    if seats > klass.max_seats_per_registration:
        return SignUpRefusal.TOO_MANY_SEATS
    if klass.confirmed_seats + seats > klass.capacity and not klass.waitlist_enabled:
        return SignUpRefusal.FULL
    return None


async def _already(
    session: AsyncSession, existing: ClassRegistration, class_id: int
) -> SignUpResult:
    return SignUpResult(
        registration=await _registration_result(session, existing),
        klass=await _fresh_class_info(session, class_id),
        already_registered=True,
    )


async def _refused(
    session: AsyncSession, refusal: SignUpRefusal, class_id: int | None = None
) -> SignUpResult:
    klass = None if class_id is None else await _fresh_class_info(session, class_id)
    return SignUpResult(registration=None, klass=klass, refused=refusal)


async def sign_up(
    session: AsyncSession,
    class_id: int,
    resident_id: int,
    *,
    name: str,
    phone: str | None,
    seats: int,
    now: datetime,
    policy: ReminderPolicy,
) -> SignUpResult:
    """Register a resident: confirmed when the seats fit, else waitlisted (if the class has a
    waitlist), else refused FULL. A resident with an active registration for the class gets
    that one back with already_registered=True (a double tap registers once)."""
    _require_aware(now)
    if seats < 1:
        raise ValueError("seats must be at least 1")
    clean_name = validate_name(name)
    valid_phone, clean_phone = normalize_phone(phone)
    # No database work before the lock: checking the input first keeps the lock short.
    if clean_name is None:
        return await _refused(session, SignUpRefusal.INVALID_NAME)
    if not valid_phone:
        return await _refused(session, SignUpRefusal.INVALID_PHONE)
    if not await _lock_class(session, class_id):
        return SignUpResult(registration=None, klass=None, refused=SignUpRefusal.NOT_FOUND)
    existing = await _active_registration(session, class_id, resident_id)
    if existing is not None:
        return await _already(session, existing, class_id)
    klass = await _load_class(session, class_id)
    assert klass is not None
    refusal = sign_up_refusal(klass, seats, now=now)
    if refusal is not None:
        return await _refused(session, refusal, class_id)
    # Seats free while others wait means only larger registrations are waiting (promotion
    # fills every seat it can): a smaller one may then take them, as promotion would.
    confirmed = klass.confirmed_seats + seats <= klass.capacity
    row = ClassRegistration(
        class_id=class_id,
        resident_id=resident_id,
        name=clean_name,
        phone=clean_phone,
        seats=seats,
        status=RegistrationStatus.CONFIRMED if confirmed else RegistrationStatus.WAITLISTED,
        created_at=now,
        confirmed_at=now if confirmed else None,
        updated_at=now,
    )
    try:
        # A SAVEPOINT, so that a violated constraint undoes only this insert.
        async with session.begin_nested():
            session.add(row)
            await session.flush()
            if confirmed:
                await _add_seats(session, class_id, seats)
    except IntegrityError:
        # Only reachable when some writer skipped the class lock: the unique index (a racing
        # double tap) or the seats check (overbooking) stopped it.
        existing = await _active_registration(session, class_id, resident_id)
        if existing is not None:
            return await _already(session, existing, class_id)
        return await _refused(session, SignUpRefusal.FULL, class_id)
    if confirmed:
        await queue_reminders(session, row.id, policy=policy, now=now)
    return SignUpResult(
        registration=await _registration_result(session, row),
        klass=await _fresh_class_info(session, class_id),
    )


async def _cancel_locked(
    session: AsyncSession,
    row: ClassRegistration,
    *,
    by: str,
    now: datetime,
    policy: ReminderPolicy,
) -> CancelResult:
    """Cancel an active registration whose class the caller has locked; promote others."""
    held = row.seats if row.status == RegistrationStatus.CONFIRMED else 0
    row.status = RegistrationStatus.CANCELLED
    row.cancelled_at = now
    row.cancelled_by = by
    row.updated_at = now
    await session.flush()
    await skip_pending_for_registration(
        session, row.id, reason=OUTCOME_REGISTRATION_CANCELLED, now=now
    )
    promoted: list[RegistrationInfo] = []
    if held:
        await _add_seats(session, row.class_id, -held)
        promoted = await _promote(session, row.class_id, policy=policy, now=now)
    return CancelResult(cancelled=registration_info_of(row, None), promoted=tuple(promoted))


async def cancel_registration(
    session: AsyncSession,
    registration_id: int,
    *,
    resident_id: int | None,
    now: datetime,
    policy: ReminderPolicy,
    by: str = BY_RESIDENT,
) -> CancelResult:
    """Cancel a confirmed or waitlisted registration and promote from the waitlist.

    With `resident_id` only that resident's own registration is touched: a forged or stale
    id (someone else's, unknown, already cancelled) gives CancelResult(None) and changes
    nothing; so does an old button tapped after the class has ended (`class_finished`): the
    roster of that day stays as staff saw it. `resident_id=None` is a staff cancellation.
    """
    _require_aware(now)
    class_id = await _lock_class_of_registration(session, registration_id)
    if class_id is None:
        return CancelResult(cancelled=None)
    row = await session.get(ClassRegistration, registration_id, populate_existing=True)
    if row is None or row.status not in _ACTIVE:
        return CancelResult(cancelled=None)
    if resident_id is not None:
        if row.resident_id != resident_id:
            return CancelResult(cancelled=None)
        klass = await _load_class(session, class_id)
        if klass is not None and now >= klass.ends_at:
            return CancelResult(cancelled=None, class_finished=True)
    return await _cancel_locked(session, row, by=by, now=now, policy=policy)


async def mark_attended(
    session: AsyncSession, registration_id: int, *, attended: bool, now: datetime
) -> RegistrationInfo:
    """Staff record attendance (or take it back). Only registrations holding a seat qualify;
    the seat stays counted either way."""
    _require_aware(now)
    if await _lock_class_of_registration(session, registration_id) is None:
        raise ClassRuleError("not_found")
    row = await session.get(ClassRegistration, registration_id, populate_existing=True)
    assert row is not None
    if row.status not in _SEATED:
        raise ClassRuleError("not_confirmed")
    if attended and row.status == RegistrationStatus.CONFIRMED:
        row.status = RegistrationStatus.ATTENDED
        row.attended_at = now
        row.updated_at = now
    elif not attended and row.status == RegistrationStatus.ATTENDED:
        row.status = RegistrationStatus.CONFIRMED
        row.attended_at = None
        row.updated_at = now
    await session.flush()
    return registration_info_of(row, None)


async def list_registrations(session: AsyncSession, class_id: int) -> list[RegistrationInfo]:
    """Every registration of a class in arrival order, waitlist places numbered."""
    rows = (
        await session.scalars(
            select(ClassRegistration)
            .where(ClassRegistration.class_id == class_id)
            .order_by(ClassRegistration.id)
            .execution_options(populate_existing=True)
        )
    ).all()
    return _with_positions(rows)


def _with_positions(rows: Iterable[ClassRegistration]) -> list[RegistrationInfo]:
    """Infos of one class's registrations given in id order, waitlist places counted."""
    position = 0
    infos: list[RegistrationInfo] = []
    for row in rows:
        if row.status == RegistrationStatus.WAITLISTED:
            position += 1
        infos.append(registration_info_of(row, position))
    return infos


async def get_registration(session: AsyncSession, registration_id: int) -> RegistrationInfo | None:
    row = await session.get(ClassRegistration, registration_id, populate_existing=True)
    return None if row is None else await _registration_result(session, row)


async def resident_registrations(
    session: AsyncSession, resident_id: int, *, now: datetime, include_past: bool = False
) -> list[ResidentRegistration]:
    """A resident's registrations with their classes, soonest class first.

    By default only active ones (confirmed or waitlisted) of classes that have not ended;
    with include_past every registration of theirs, cancelled and attended too.
    """
    statement = (
        select(ClassRegistration, SmartphoneClass)
        .join(SmartphoneClass, SmartphoneClass.id == ClassRegistration.class_id)
        .where(ClassRegistration.resident_id == resident_id)
        .order_by(SmartphoneClass.starts_at, ClassRegistration.id)
        .execution_options(populate_existing=True)
    )
    if not include_past:
        statement = statement.where(
            ClassRegistration.status.in_(_ACTIVE), SmartphoneClass.ends_at > now
        )
    pairs = [(row[0], row[1]) for row in (await session.execute(statement)).all()]
    infos = {
        info.id: info
        for info in await _class_infos(session, list({c.id: c for _, c in pairs}.values()))
    }
    return [
        ResidentRegistration(
            registration=await _registration_result(session, registration),
            klass=infos[klass.id],
        )
        for registration, klass in pairs
    ]


async def _lock_next_class_of_resident(
    session: AsyncSession, resident_id: int, after_class_id: int
) -> int | None:
    """Lock the lowest-id class above `after_class_id` in which the resident holds seats or
    a waitlist place; locking in id order keeps two deletions from deadlocking."""
    next_class = (
        select(func.min(ClassRegistration.class_id))
        .where(
            ClassRegistration.resident_id == resident_id,
            ClassRegistration.class_id > after_class_id,
            ClassRegistration.status.in_([*_ACTIVE, RegistrationStatus.ATTENDED]),
        )
        .scalar_subquery()
    )
    return await _lock_where(session, next_class)


async def delete_resident_registrations(
    session: AsyncSession, resident_id: int, *, now: datetime, policy: ReminderPolicy
) -> int:
    """Delete all of a resident's registrations (/mydata). Active ones are cancelled first,
    so their seats go to the waitlist; attended seats are released from the count. Returns
    how many registrations were deleted.

    On PostgreSQL the resident row is locked first (FOR UPDATE): a sign-up of the same
    resident racing this deletion (another update of theirs) then waits at its foreign-key
    check, and fails once the caller has deleted the resident, instead of committing a
    registration that the loop below no longer sees and that the resident row's ON DELETE
    CASCADE would remove without giving its seats back. (On SQLite the first UPDATE below
    already takes the database's write lock for the whole transaction.)"""
    _require_aware(now)
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            select(Resident.id).where(Resident.id == resident_id).with_for_update()
        )
    class_id = 0
    while (
        locked := await _lock_next_class_of_resident(session, resident_id, class_id)
    ) is not None:
        class_id = locked
        rows = (
            await session.scalars(
                select(ClassRegistration)
                .where(
                    ClassRegistration.class_id == class_id,
                    ClassRegistration.resident_id == resident_id,
                    ClassRegistration.status != RegistrationStatus.CANCELLED,
                )
                .execution_options(populate_existing=True)
            )
        ).all()
        for row in rows:
            if row.status == RegistrationStatus.ATTENDED:
                await _add_seats(session, class_id, -row.seats)
                row.status = RegistrationStatus.CANCELLED
                row.updated_at = now
                await session.flush()
            else:
                await _cancel_locked(session, row, by=BY_RESIDENT, now=now, policy=policy)
    return await _delete_cancelled_rows(session, resident_id)


async def _delete_cancelled_rows(session: AsyncSession, resident_id: int) -> int:
    """Delete the resident's registrations that hold no seat (all of them, once the loop
    above has run) and their notification rows. The foreign keys cascade too, but SQLite
    connections without foreign_keys=ON would leave the notifications behind."""
    mine = select(ClassRegistration.id).where(
        ClassRegistration.resident_id == resident_id,
        ClassRegistration.status == RegistrationStatus.CANCELLED,
    )
    await session.execute(
        delete(ClassNotification)
        .where(ClassNotification.registration_id.in_(mine))
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(
        delete(ClassRegistration)
        .where(
            ClassRegistration.resident_id == resident_id,
            ClassRegistration.status == RegistrationStatus.CANCELLED,
        )
        .execution_options(synchronize_session="fetch")
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
