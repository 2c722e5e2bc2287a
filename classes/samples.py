"""Sample classes for the local demo (`madoguchi run` without a bot token).

They are marked twice: `is_sample=True` on the row (so they can be filtered out) and a
title starting with 【サンプル】 (so nobody mistakes them for a real class). Only the demo
start-up calls this; a deployment with a token never gets them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from classes.models import SmartphoneClass
from classes.service import create_class
from classes.types import ClassDraft, ClassStatus

SAMPLE_PREFIX = "【サンプル】"
SAMPLE_ACTOR = "sample"
SAMPLE_VENUE = "町民センター 2階 会議室（サンプル）"
# Registration closes at this local time on the day before each sample class.
DEADLINE_TIME = time(17, 0)
# The first sample class is at least this many days ahead, so its deadline (the day
# before) is still ahead whatever the time of day now.
FIRST_DAY_OFFSET = 2
SATURDAY = 5


@dataclass(frozen=True, slots=True)
class _Sample:
    title: str
    description: str
    what_to_bring: str
    start: time
    minutes: int
    capacity: int


SAMPLES = (
    _Sample(
        title=f"{SAMPLE_PREFIX}はじめてのスマホ",
        description="電源の入れ方、電話のかけ方、文字の入力から、ゆっくり進めます。",
        what_to_bring="お持ちのスマートフォン（お持ちでない方には貸し出しがあります）",
        start=time(10, 0),
        minutes=90,
        capacity=12,
    ),
    _Sample(
        title=f"{SAMPLE_PREFIX}マイナンバーカードをスマホで使う",
        description="スマートフォンでマイナンバーカードを読み取る方法を練習します。",
        what_to_bring="スマートフォン、マイナンバーカード、暗証番号（数字4桁）",
        start=time(14, 0),
        minutes=90,
        capacity=8,
    ),
    _Sample(
        # Few seats on purpose: the demo shows the waitlist (キャンセル待ち) quickly.
        title=f"{SAMPLE_PREFIX}マイナポータルにログインしてみよう",
        description="マイナポータルのアプリを入れて、ログインするところまで一緒に操作します。",
        what_to_bring="スマートフォン、マイナンバーカード、暗証番号（数字4桁）",
        start=time(10, 0),
        minutes=60,
        capacity=3,
    ),
)


def _weekdays_from(first: date, count: int) -> list[date]:
    days: list[date] = []
    day = first
    while len(days) < count:
        if day.weekday() < SATURDAY:
            days.append(day)
        day += timedelta(days=1)
    return days


def _draft(sample: _Sample, day: date, tz: ZoneInfo) -> ClassDraft:
    starts_at = datetime.combine(day, sample.start, tzinfo=tz)
    return ClassDraft(
        title=sample.title,
        venue=SAMPLE_VENUE,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=sample.minutes),
        capacity=sample.capacity,
        registration_deadline=datetime.combine(day - timedelta(days=1), DEADLINE_TIME, tzinfo=tz),
        description=sample.description,
        what_to_bring=sample.what_to_bring,
    )


async def _has_upcoming_sample(session: AsyncSession, now: datetime) -> bool:
    found = await session.scalar(
        select(SmartphoneClass.id)
        .where(
            SmartphoneClass.is_sample.is_(True),
            SmartphoneClass.status != ClassStatus.CANCELLED,
            SmartphoneClass.starts_at > now,
        )
        .limit(1)
    )
    return found is not None


async def ensure_sample_classes(session: AsyncSession, *, now: datetime, tz: ZoneInfo) -> int:
    """Create the sample classes on the next weekdays (in the town's zone) unless an upcoming
    sample class exists already. Returns how many were created. Never commits."""
    if await _has_upcoming_sample(session, now):
        return 0
    today = now.astimezone(tz).date()
    days = _weekdays_from(today + timedelta(days=FIRST_DAY_OFFSET), len(SAMPLES))
    for sample, day in zip(SAMPLES, days, strict=True):
        await create_class(
            session, _draft(sample, day, tz), actor=SAMPLE_ACTOR, now=now, is_sample=True
        )
    return len(SAMPLES)
