"""First-run seeding of the curated FAQ, and the JSON Lines FAQ file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from faq.faq_file import read_faq_jsonl, write_faq_jsonl
from faq.seed import CURATED_FAQ_PATH, SEEDED_KEY, load_curated_faq, seed_curated_faq
from faq.store import (
    create_entry,
    delete_entry,
    get_entry,
    list_entries,
    list_revisions,
    update_entry,
)
from faq.types import FaqEntryData
from madoguchi.meta import get_meta


@pytest.fixture
def sample_faq(data_dir: Path) -> Path:
    return data_dir / "sample_faq.jsonl"


def test_curated_faq_path_is_package_data() -> None:
    assert CURATED_FAQ_PATH.parent.name == "data"
    assert CURATED_FAQ_PATH.parent.parent.name == "faq"


def test_read_sample_file(sample_faq: Path) -> None:
    entries = read_faq_jsonl(sample_faq)
    assert [e.id for e in entries] == ["juminhyo-001", "gomi-001", "gomi-002"]
    assert entries[0].alternatives == ("住民票が欲しい", "住民票 コンビニ")
    assert (entries[0].keywords, entries[0].department) == (("住民票",), "住民課")
    assert (entries[1].reference_url, entries[1].published) == (
        "https://example.jp/gomi/sodai",
        True,
    )
    assert (entries[2].published, entries[2].staff_note) == (False, "2025年版に差し替え予定")


def test_write_then_read_gives_the_same_entries(sample_faq: Path, tmp_path: Path) -> None:
    entries = read_faq_jsonl(sample_faq)
    copy = tmp_path / "copy.jsonl"
    write_faq_jsonl(copy, entries)
    assert read_faq_jsonl(copy) == entries
    assert "住民票" in copy.read_text(encoding="utf-8")  # Japanese kept readable


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"id": "a", "question": "q"', "Expecting"),
        ('["a", "q", "a"]', "expected a JSON object"),
        ('{"id": "a", "answer": "x"}', '"question" is required'),
        ('{"id": 1, "question": "q", "answer": "x"}', '"id" is required and must be a string'),
        (
            '{"id": "a", "question": "q", "answer": "x", "alternatives": "y"}',
            '"alternatives" must be a list',
        ),
        (
            '{"id": "a", "question": "q", "answer": "x", "published": "yes"}',
            '"published" must be true or false',
        ),
        ('{"id": "juminhyo-001", "question": "q", "answer": "x"}', "repeats line 1"),
    ],
)
def test_read_errors_name_the_line(
    tmp_path: Path, sample_faq: Path, line: str, problem: str
) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text(sample_faq.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=problem) as caught:
        read_faq_jsonl(broken)
    assert str(caught.value).startswith(f"{broken}:5: ")


def test_load_curated_faq_rejects_entries_that_would_not_save(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a 1", "question": "q", "answer": " "}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="a 1: 応答文が空です"):
        load_curated_faq(bad)


async def test_seeds_an_empty_database_once(session: AsyncSession, sample_faq: Path) -> None:
    assert await seed_curated_faq(session, path=sample_faq) == 3
    await session.commit()
    entries = await list_entries(session)
    assert [e.id for e in entries] == ["gomi-001", "gomi-002", "juminhyo-001"]
    assert {(e.revision, e.updated_by) for e in entries} == {(1, "初期データ")}
    assert [r.action for r in await list_revisions(session, "gomi-001")] == ["create"]
    assert await get_meta(session, SEEDED_KEY) is not None

    assert await seed_curated_faq(session, path=sample_faq) == 0
    assert len(await list_entries(session)) == 3


async def test_staff_edits_and_deletions_are_never_undone(
    session: AsyncSession, sample_faq: Path
) -> None:
    await seed_curated_faq(session, path=sample_faq)
    await session.commit()
    gomi = await get_entry(session, "gomi-001")
    assert gomi is not None
    await update_entry(session, replace(gomi.data(), answer="職員が直した答え"), actor="tanaka")
    await session.commit()
    assert await seed_curated_faq(session, path=sample_faq) == 0
    edited = await get_entry(session, "gomi-001")
    assert edited is not None
    assert edited.answer == "職員が直した答え"

    for entry in await list_entries(session):
        await delete_entry(session, entry.id, actor="tanaka")
    await session.commit()
    assert await seed_curated_faq(session, path=sample_faq) == 0
    assert await list_entries(session) == []


async def test_existing_entries_are_left_alone_and_mark_the_database(
    session: AsyncSession, sample_faq: Path
) -> None:
    # A database that staff filled (e.g. by CSV) before the first seeding run.
    own = FaqEntryData(id="own-1", question="独自の質問", answer="独自の答え")
    await create_entry(session, own, actor="tanaka")
    assert await seed_curated_faq(session, path=sample_faq) == 0
    assert [e.id for e in await list_entries(session)] == ["own-1"]
    assert await get_meta(session, SEEDED_KEY) is not None
