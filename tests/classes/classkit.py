"""Helpers of the classes tests: a fixed "now" and a `ClassKit` that runs each service call
in its own committed transaction (as the bot and the admin do). The fixtures are in conftest.py.

Test modules here need unique basenames (tests/ has no __init__.py, and a package named
`tests.classes` would shadow the real `classes` package).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classes import service
from classes.models import ClassNotification
from classes.notice_queue import ReminderPolicy
from classes.types import (
    CancelResult,
    ClassDraft,
    ClassInfo,
    RegistrationInfo,
    SignUpResult,
)
from madoguchi.db import session_scope
from madoguchi.residents import get_or_create_resident

TOKYO = ZoneInfo("Asia/Tokyo")
# 09:00 in Tokyo on a Tuesday.
NOW = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def default_draft(**overrides: Any) -> ClassDraft:
    """A class on Friday 2026-12-04, 14:00–15:30 Tokyo, 10 seats, deadline the day before."""
    draft = ClassDraft(
        title="はじめてのスマホ",
        venue="町民センター 2階",
        starts_at=datetime(2026, 12, 4, 14, 0, tzinfo=TOKYO),
        ends_at=datetime(2026, 12, 4, 15, 30, tzinfo=TOKYO),
        capacity=10,
        registration_deadline=datetime(2026, 12, 3, 17, 0, tzinfo=TOKYO),
        description="電話のかけ方から",
        what_to_bring="スマートフォン",
    )
    return replace(draft, **overrides)


@dataclass
class NotificationRow:
    registration_id: int
    kind: str
    schedule_version: int
    due_at: datetime
    expires_at: datetime | None
    status: str
    outcome: str | None


@dataclass
class ClassKit:
    """Service calls, each in its own committed transaction."""

    factory: async_sessionmaker[AsyncSession]
    policy: ReminderPolicy
    now: datetime = NOW
    tz: ZoneInfo = TOKYO
    _next_telegram_id: int = 1000

    def draft(self, **overrides: Any) -> ClassDraft:
        return default_draft(**overrides)

    async def create_class(self, *, now: datetime | None = None, **overrides: Any) -> ClassInfo:
        async with session_scope(self.factory) as session:
            return await service.create_class(
                session, default_draft(**overrides), actor="staff", now=now or self.now
            )

    async def residents(self, count: int) -> list[int]:
        ids: list[int] = []
        async with session_scope(self.factory) as session:
            for _ in range(count):
                self._next_telegram_id += 1
                resident = await get_or_create_resident(
                    session, self._next_telegram_id, now=self.now
                )
                ids.append(resident.id)
        return ids

    async def sign_up(
        self,
        class_id: int,
        resident_id: int,
        *,
        seats: int = 1,
        name: str = "山田 花子",
        phone: str | None = None,
        now: datetime | None = None,
    ) -> SignUpResult:
        async with session_scope(self.factory) as session:
            return await service.sign_up(
                session,
                class_id,
                resident_id,
                name=name,
                phone=phone,
                seats=seats,
                now=now or self.now,
                policy=self.policy,
            )

    async def cancel(
        self,
        registration_id: int,
        *,
        resident_id: int | None,
        now: datetime | None = None,
        by: str = "resident",
    ) -> CancelResult:
        async with session_scope(self.factory) as session:
            return await service.cancel_registration(
                session,
                registration_id,
                resident_id=resident_id,
                now=now or self.now,
                policy=self.policy,
                by=by,
            )

    async def update_class(
        self, class_id: int, *, now: datetime | None = None, **overrides: Any
    ) -> ClassInfo:
        async with session_scope(self.factory) as session:
            return await service.update_class(
                session,
                class_id,
                default_draft(**overrides),
                actor="staff",
                now=now or self.now,
                policy=self.policy,
            )

    async def cancel_class(self, class_id: int, *, now: datetime | None = None) -> ClassInfo:
        async with session_scope(self.factory) as session:
            return await service.cancel_class(session, class_id, actor="staff", now=now or self.now)

    async def get_class(self, class_id: int) -> ClassInfo:
        async with session_scope(self.factory) as session:
            info = await service.get_class(session, class_id)
        assert info is not None
        return info

    async def registrations(self, class_id: int) -> list[RegistrationInfo]:
        async with session_scope(self.factory) as session:
            return await service.list_registrations(session, class_id)

    async def notifications(self, registration_id: int | None = None) -> list[NotificationRow]:
        statement = select(ClassNotification).order_by(ClassNotification.id)
        if registration_id is not None:
            statement = statement.where(ClassNotification.registration_id == registration_id)
        async with session_scope(self.factory) as session:
            rows = (await session.scalars(statement)).all()
            return [
                NotificationRow(
                    registration_id=row.registration_id,
                    kind=row.kind,
                    schedule_version=row.schedule_version,
                    due_at=row.due_at,
                    expires_at=row.expires_at,
                    status=row.status,
                    outcome=row.outcome,
                )
                for row in rows
            ]


def hours(count: float) -> timedelta:
    return timedelta(hours=count)
