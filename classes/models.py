"""ORM tables of the smartphone classes. Only the `classes` services touch them; adapters get
the dataclasses of `classes.types`.

Rules the database itself enforces, so that no code path (bot, admin, a second process) can
break them:
- `confirmed_seats <= capacity` on the class row: the services keep `confirmed_seats` equal to
  the sum of seats of its confirmed/attended registrations, inside the same transaction.
- one active (confirmed or waitlisted) registration per resident and class: a partial unique
  index, on SQLite and PostgreSQL alike.
- one notification row per registration, kind and schedule version: a reminder is claimed
  from that row, so it cannot be sent twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from madoguchi.db import Base

CLASS_STATUSES = ("scheduled", "changed", "cancelled")
REGISTRATION_STATUSES = ("confirmed", "waitlisted", "cancelled", "attended")
ACTIVE_REGISTRATION_STATUSES = ("confirmed", "waitlisted")
NOTIFICATION_STATUSES = ("pending", "claimed", "sending", "sent", "skipped", "unknown", "failed")

_ACTIVE = "status IN ('confirmed', 'waitlisted')"


class SmartphoneClass(Base):
    """One smartphone class (スマホ教室) on one date."""

    __tablename__ = "smartphone_classes"
    __table_args__ = (
        CheckConstraint("status IN ('scheduled', 'changed', 'cancelled')", name="status"),
        CheckConstraint("capacity >= 0", name="capacity"),
        CheckConstraint("confirmed_seats >= 0 AND confirmed_seats <= capacity", name="seats"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("max_seats_per_registration >= 1", name="max_seats"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    what_to_bring: Mapped[str] = mapped_column(Text, default="")
    venue: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]
    capacity: Mapped[int] = mapped_column(Integer)
    # Seats held by confirmed (and attended) registrations, kept by the services in the same
    # transaction; the check constraint above makes overbooking impossible.
    confirmed_seats: Mapped[int] = mapped_column(Integer, default=0)
    max_seats_per_registration: Mapped[int] = mapped_column(Integer, default=2)
    waitlist_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    registration_deadline: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    # Bumped whenever staff move the class: reminders belong to one schedule version.
    schedule_version: Mapped[int] = mapped_column(Integer, default=1)
    # Demo data of `madoguchi run` without a token; never created otherwise.
    is_sample: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(100), default="")


class ClassRegistration(Base):
    """A resident's registration for one class. `id` order is arrival order (FIFO waitlist)."""

    __tablename__ = "class_registrations"
    __table_args__ = (
        CheckConstraint(
            "status IN ('confirmed', 'waitlisted', 'cancelled', 'attended')", name="status"
        ),
        CheckConstraint("seats >= 1", name="seats"),
        Index(
            "uq_class_registrations_active_resident",
            "class_id",
            "resident_id",
            unique=True,
            sqlite_where=text(_ACTIVE),
            postgresql_where=text(_ACTIVE),
        ),
        Index("ix_class_registrations_class_id_status", "class_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("smartphone_classes.id", ondelete="CASCADE"))
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    # As the resident gave it (prefilled from Telegram, editable); shown to staff only.
    name: Mapped[str] = mapped_column(String(100))
    # Optional, only for reaching the resident about this class; never logged.
    phone: Mapped[str | None] = mapped_column(String(30))
    seats: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    # resident / staff / class_cancelled
    cancelled_by: Mapped[str | None] = mapped_column(String(20))
    attended_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class ClassNotification(Base):
    """One message owed to one registration: a reminder, a promotion or a change/cancel notice.

    Durable reminder state lives here, not in APScheduler's job store. A sender claims rows
    (pending → claimed, with a lease), marks each one `sending` just before the Bot API call
    and `sent` after it. After a crash, expired `claimed` rows go back to pending (nothing was
    sent); a `sending` row left behind is marked `unknown` and never repeated (it may have
    gone out).
    """

    __tablename__ = "class_notifications"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'claimed', 'sending', 'sent', 'skipped', 'unknown', 'failed')",
            name="status",
        ),
        UniqueConstraint(
            "registration_id",
            "kind",
            "schedule_version",
            name="uq_class_notifications_registration_id_kind_version",
        ),
        Index("ix_class_notifications_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("class_registrations.id", ondelete="CASCADE"), index=True
    )
    # day_before / hours_before / promoted / class_changed / class_cancelled
    kind: Mapped[str] = mapped_column(String(32))
    schedule_version: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime]
    # Not sent after this moment (reminders: the class start); NULL = no limit.
    expires_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claim_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None]
    # Short machine reason (blocked, expired, superseded, …); never message text or a phone.
    outcome: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
