"""The audit log: who changed what, when. Written in the same transaction as the change.

`detail` holds ids, field names and counts: never passwords, and no residents' text beyond
what the change itself is about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.models import AuditLogEntry
from madoguchi.db import utcnow

# Japanese labels of the actions this package records; other modules may add their own
# action names (e.g. "class.create") and ACTION_LABELS entries.
ACTION_LABELS: dict[str, str] = {
    "staff.create": "職員アカウントを作成",
    "staff.login": "ログイン",
    "staff.login_failed": "ログイン失敗",
    "staff.locked": "ログインを一時停止（失敗が続いたため）",
    "staff.logout": "ログアウト",
    "faq.create": "FAQを作成",
    "faq.update": "FAQを編集",
    "faq.publish": "FAQを公開",
    "faq.unpublish": "FAQを非公開に",
    "faq.delete": "FAQを削除",
    "faq.restore": "FAQを以前の版に戻す",
    "faq.import": "FAQをCSVから取り込み",
    "faq.export": "FAQをCSVで書き出し",
}


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    detail: dict[str, Any]

    @property
    def action_label(self) -> str:
        return ACTION_LABELS.get(self.action, self.action)


async def record(  # noqa: PLR0917 -- record(session, actor, action, type, id, detail) reads best positionally
    session: AsyncSession,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | int = "",
    detail: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> None:
    """Add one audit entry (flushed with the caller's transaction; not committed here)."""
    session.add(
        AuditLogEntry(
            at=at or utcnow(),
            actor=actor[:64],
            action=action[:64],
            target_type=target_type[:32],
            target_id=str(target_id)[:64],
            detail=detail or {},
        )
    )
    await session.flush()


async def list_records(
    session: AsyncSession,
    *,
    limit: int = 100,
    offset: int = 0,
    actor: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
) -> list[AuditRecord]:
    """Newest first."""
    stmt = select(AuditLogEntry)
    if actor:
        stmt = stmt.where(AuditLogEntry.actor == actor)
    if target_type:
        stmt = stmt.where(AuditLogEntry.target_type == target_type)
    if target_id:
        stmt = stmt.where(AuditLogEntry.target_id == target_id)
    rows = await session.scalars(
        stmt.order_by(AuditLogEntry.at.desc(), AuditLogEntry.id.desc()).limit(limit).offset(offset)
    )
    return [
        AuditRecord(
            id=row.id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            target_type=row.target_type,
            target_id=row.target_id,
            detail=dict(row.detail or {}),
        )
        for row in rows
    ]


async def count_records(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(AuditLogEntry)) or 0
