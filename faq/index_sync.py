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
from faq.store import published_documents
from faq.types import FaqDocument


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
        versions = await _published_versions(session)
        documents = await published_documents(session)
        self.engine.rebuild(documents)
        self._versions = {d.id: versions[d.id] for d in documents if d.id in versions}
        return len(documents)

    async def refresh(self, session: AsyncSession) -> RefreshReport:
        """Apply what changed in the database since the last load or refresh."""
        current = await _published_versions(session)
        removed = tuple(sorted(set(self._versions) - set(current)))
        changed = sorted(i for i, rev in current.items() if self._versions.get(i) != rev)
        for entry_id in removed:
            self.engine.remove(entry_id)
            del self._versions[entry_id]
        if changed:
            rows = await session.scalars(select(FaqEntryRow).where(FaqEntryRow.id.in_(changed)))
            for row in rows:
                if not row.published:  # unpublished between the two queries
                    continue
                self.engine.upsert(_document(row))
                self._versions[row.id] = row.revision
        return RefreshReport(upserted=tuple(changed), removed=removed)


async def _published_versions(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(FaqEntryRow.id, FaqEntryRow.revision).where(FaqEntryRow.published.is_(True))
    )
    return dict(rows.tuples().all())


def _document(row: FaqEntryRow) -> FaqDocument:
    return FaqDocument(
        id=row.id,
        question=row.question,
        answer=row.answer,
        alternatives=tuple(row.alternatives or ()),
        keywords=tuple(row.keywords or ()),
        category=row.category,
        url=row.reference_url,
    )
