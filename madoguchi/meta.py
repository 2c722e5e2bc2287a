"""A tiny key-value table for facts about the deployment itself (e.g. when the FAQ was seeded)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from madoguchi.db import Base, utcnow


class AppMeta(Base):
    __tablename__ = "app_meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


async def get_meta(session: AsyncSession, key: str) -> str | None:
    value: str | None = await session.scalar(select(AppMeta.value).where(AppMeta.key == key))
    return value


async def set_meta(session: AsyncSession, key: str, value: str) -> None:
    row = await session.get(AppMeta, key)
    if row is None:
        session.add(AppMeta(key=key, value=value, updated_at=utcnow()))
    else:
        row.value = value
        row.updated_at = utcnow()
