"""First-run seeding of the curated FAQ that ships with the package.

Seeding happens once per database: the app_meta key "faq_seeded_at" records it, so an FAQ
that staff later emptied on purpose is never filled again, and staff edits are never
overwritten.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from faq.faq_file import read_faq_jsonl
from faq.store import count_entries, insert_new_entries, normalize_entry_data, validate_entry_data
from faq.types import FaqEntryData
from madoguchi.db import utcnow
from madoguchi.meta import get_meta, set_meta

CURATED_FAQ_PATH = Path(__file__).parent / "data" / "curated_faq.jsonl"
SEEDED_KEY = "faq_seeded_at"


def load_curated_faq(path: Path = CURATED_FAQ_PATH) -> list[FaqEntryData]:
    """The curated entries, normalised; ValueError names any entry that would not be saved."""
    entries = [normalize_entry_data(data) for data in read_faq_jsonl(path)]
    problems = [
        f"{path}: {data.id or '(no id)'}: {message}"
        for data in entries
        for message in validate_entry_data(data)
    ]
    if problems:
        raise ValueError("\n".join(problems))
    return entries


async def seed_curated_faq(
    session: AsyncSession, *, path: Path = CURATED_FAQ_PATH, actor: str = "初期データ"
) -> int:
    """Insert the curated FAQ into a never-seeded, empty store; return how many were added.

    Marks the database as seeded whenever it runs for the first time, even when staff had
    already added entries (those are then left alone). Does not commit. If two processes
    seed at once, the loser's flush fails and its caller rolls back; nothing is doubled.
    """
    if await get_meta(session, SEEDED_KEY) is not None:
        return 0
    inserted = 0
    if await count_entries(session) == 0:
        inserted = await insert_new_entries(session, load_curated_faq(path), actor=actor)
    await set_meta(session, SEEDED_KEY, utcnow().isoformat())
    await session.flush()
    return inserted
