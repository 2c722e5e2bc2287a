"""What the classes services return: plain frozen dataclasses, never ORM rows."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class ClassStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    CHANGED = "changed"  # moved or edited by staff after residents signed up
    CANCELLED = "cancelled"


class RegistrationStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"
    ATTENDED = "attended"


class NotificationKind(enum.StrEnum):
    DAY_BEFORE = "day_before"  # reminder, the day before at a set time (default 10:00)
    HOURS_BEFORE = "hours_before"  # reminder, some hours before the start (default 2)
    PROMOTED = "promoted"  # a waitlisted resident got a seat
    CLASS_CHANGED = "class_changed"  # staff moved the class (new date/time/venue)
    CLASS_CANCELLED = "class_cancelled"  # staff cancelled the class
    # The class started while the registration was still waitlisted: no seat came free.
    WAITLIST_CLOSED = "waitlist_closed"


@dataclass(frozen=True, slots=True)
class ClassDraft:
    """What staff enter to create or edit a class."""

    title: str
    venue: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    registration_deadline: datetime
    description: str = ""
    what_to_bring: str = ""
    max_seats_per_registration: int = 2
    waitlist_enabled: bool = True


@dataclass(frozen=True, slots=True)
class ClassInfo:
    id: int
    title: str
    description: str
    what_to_bring: str
    venue: str
    starts_at: datetime  # UTC; adapters show it in the town's zone
    ends_at: datetime
    capacity: int
    confirmed_seats: int
    waitlisted_seats: int
    waitlisted_registrations: int
    max_seats_per_registration: int
    waitlist_enabled: bool
    registration_deadline: datetime
    status: ClassStatus
    schedule_version: int
    is_sample: bool

    @property
    def seats_left(self) -> int:
        return max(0, self.capacity - self.confirmed_seats)


@dataclass(frozen=True, slots=True)
class RegistrationInfo:
    id: int
    class_id: int
    resident_id: int
    name: str
    phone: str | None  # staff views only; adapters for residents show "登録あり" at most
    seats: int
    status: RegistrationStatus
    # 1-based place in the waitlist (by arrival) while waitlisted, else None.
    waitlist_position: int | None
    created_at: datetime
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    cancelled_by: str | None
    attended_at: datetime | None


@dataclass(frozen=True, slots=True)
class ResidentRegistration:
    """One of a resident's registrations with its class, for 予約の確認."""

    registration: RegistrationInfo
    klass: ClassInfo


class SignUpRefusal(enum.StrEnum):
    """Why a sign-up was refused; each adapter maps these to its own wording."""

    NOT_FOUND = "not_found"
    CANCELLED = "cancelled"
    PAST = "past"  # the class has started or ended
    DEADLINE_PASSED = "deadline_passed"
    FULL = "full"  # full and no waitlist
    TOO_MANY_SEATS = "too_many_seats"  # more than max_seats_per_registration
    INVALID_NAME = "invalid_name"
    INVALID_PHONE = "invalid_phone"


@dataclass(frozen=True, slots=True)
class SignUpResult:
    """`registration` is set unless `refused`; `already_registered` is True when the resident
    already had an active registration (a double tap): that one is returned unchanged."""

    registration: RegistrationInfo | None
    klass: ClassInfo | None
    refused: SignUpRefusal | None = None
    already_registered: bool = False


@dataclass(frozen=True, slots=True)
class CancelResult:
    """`cancelled` is None when there was nothing to cancel (already cancelled, not the
    resident's own, unknown id) or, with `class_finished`, when a resident tried to cancel
    after the class had ended. `promoted` lists the waitlisted registrations confirmed by
    the seats this cancellation freed (each gets a PROMOTED notification)."""

    cancelled: RegistrationInfo | None
    promoted: tuple[RegistrationInfo, ...] = ()
    class_finished: bool = False


@dataclass(frozen=True, slots=True)
class OutgoingNotification:
    """One claimed message for a sender to deliver; rendered to text by the adapter."""

    notification_id: int
    kind: NotificationKind
    telegram_user_id: int
    registration: RegistrationInfo
    klass: ClassInfo
