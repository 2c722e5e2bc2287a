"""Keeps the matching engine in step with the FAQ in the database, one entry at a time.

Staff edits (admin, CSV import from the command line, another instance of the app) reach the
bot without a restart: `refresh` compares each entry's revision counter with the one the
index holds and re-indexes only what changed; entries deleted or unpublished leave the index.
Comparing versions rather than following a change log cannot miss a change whose transaction
committed late.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from faq.engine import FaqEngine
from faq.models import FaqEntryRow
from faq.store import entries_by_id, list_entries


@dataclass(frozen=True, slots=True)
class RefreshReport:
    upserted: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.upserted or self.removed)


@dataclass
class FaqIndex:
    """The engine plus the revision of every entry it holds."""

    engine: FaqEngine
    _versions: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.engine)

    async def load(self, session: AsyncSession) -> int:
        """Rebuild the whole index from the published entries (start-up)."""
        entries = await list_entries(session, published_only=True)
        self.engine.rebuild(entry.document() for entry in entries)
        self._versions = {entry.id: entry.revision for entry in entries}
        return len(entries)

    async def refresh(self, session: AsyncSession) -> RefreshReport:
        """Apply what changed in the database since the last load or refresh."""
        current = await _published_versions(session)
        removed = tuple(sorted(set(self._versions) - set(current)))
        changed = sorted(i for i, rev in current.items() if self._versions.get(i) != rev)
        for entry_id in removed:
            self.engine.remove(entry_id)
            del self._versions[entry_id]
        for entry in await entries_by_id(session, changed):
            if not entry.published:  # unpublished between the two queries
                continue
            self.engine.upsert(entry.document())
            self._versions[entry.id] = entry.revision
        return RefreshReport(upserted=tuple(changed), removed=removed)


async def _published_versions(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(FaqEntryRow.id, FaqEntryRow.revision).where(FaqEntryRow.published.is_(True))
    )
    return dict(rows.tuples().all())
