"""FAQ store: CRUD, history, validation and concurrent edits, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from faq.models import FaqRevisionRow
from faq.store import (
    FaqConflict,
    FaqEntryExists,
    FaqEntryNotFound,
    FaqError,
    FaqRevisionNotFound,
    FaqValidationError,
    count_entries,
    create_entry,
    delete_entry,
    get_entry,
    list_categories,
    list_entries,
    list_revisions,
    normalize_entry_data,
    published_documents,
    restore_revision,
    save_entry,
    update_entry,
    validate_entry_data,
)
from faq.types import FaqDocument, FaqEntryData, FaqRevision
from madoguchi.db import session_scope

GOMI = FaqEntryData(
    id="gomi-001",
    question="粗大ごみはどうやって出しますか？",
    answer="電話で申し込んでください。",
    alternatives=("粗大ごみの出し方",),
    keywords=("粗大ごみ",),
    category="ごみ",
    reference_url="https://example.jp/gomi",
    department="環境課",
)
JUMIN = FaqEntryData(
    id="juminhyo-001",
    question="住民票の写しはどこで取れますか？",
    answer="役場の窓口かコンビニで取れます。",
    category="戸籍・住民票",
)


# --- validation (no database) -------------------------------------------------------------


def test_normalize_strips_and_drops_empty_and_repeated_values() -> None:
    data = FaqEntryData(
        id="  a-1 ",
        question=" 質問？\r\n",
        answer="\n答え\r\n二行目\n",
        alternatives=(" 言い換え ", "", "言い換え", "別|もう一つ", "  "),
        keywords=("k", "k ", "\n"),
        category=" ごみ ",
    )
    assert normalize_entry_data(data) == FaqEntryData(
        id="a-1",
        question="質問？",
        answer="答え\n二行目",
        alternatives=("言い換え", "別", "もう一つ"),
        keywords=("k",),
        category="ごみ",
    )


def test_valid_data_has_no_messages() -> None:
    assert validate_entry_data(GOMI) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": ""}, "IDが空です"),
        ({"id": "ごみ"}, "IDは半角英数字とハイフン（-）で、64文字以内にしてください"),
        ({"id": "a_b"}, "IDは半角英数字とハイフン（-）で、64文字以内にしてください"),
        ({"id": "a" * 65}, "IDは半角英数字とハイフン（-）で、64文字以内にしてください"),
        ({"question": "  "}, "問い合わせ文が空です"),
        ({"question": "あ" * 501}, "問い合わせ文は500文字以内にしてください（いま501文字）"),
        ({"answer": ""}, "応答文が空です"),
        ({"answer": "あ" * 5001}, "応答文は5000文字以内にしてください（いま5001文字）"),
        (
            {"alternatives": ("あ" * 501,)},
            "言い換えの1個目は500文字以内にしてください（いま501文字）",
        ),
        (
            {"alternatives": tuple(f"言い換え{i}" for i in range(51))},
            "言い換えは50個までにしてください（いま51個）",
        ),
        (
            {"reference_url": "example.jp"},
            "参考URLは http:// か https:// で始まるURLにしてください（空欄でもかまいません）",
        ),
        ({"category": "あ" * 101}, "カテゴリは100文字以内にしてください（いま101文字）"),
    ],
)
def test_validation_messages(changes: dict[str, object], message: str) -> None:
    assert validate_entry_data(replace(GOMI, **changes)) == [message]  # type: ignore[arg-type]


def test_validation_reports_every_problem() -> None:
    messages = validate_entry_data(FaqEntryData(id="", question="", answer=""))
    assert messages == ["IDが空です", "問い合わせ文が空です", "応答文が空です"]


# --- create, read, update, delete ---------------------------------------------------------


async def test_create_and_get(session: AsyncSession) -> None:
    created = await create_entry(
        session, replace(GOMI, question=" 粗大ごみはどうやって出しますか？ "), actor="tanaka"
    )
    await session.commit()
    assert created.data() == GOMI
    assert (created.revision, created.updated_by) == (1, "tanaka")
    assert created.created_at == created.updated_at
    assert created.created_at.tzinfo is not None

    loaded = await get_entry(session, "gomi-001")
    assert loaded == created
    assert await get_entry(session, "nothing") is None
    assert await count_entries(session) == 1
    [revision] = await list_revisions(session, "gomi-001")
    assert (revision.revision, revision.action, revision.data, revision.changed_by) == (
        1,
        "create",
        GOMI,
        "tanaka",
    )


async def test_create_rejects_invalid_data_and_existing_ids(session: AsyncSession) -> None:
    with pytest.raises(FaqValidationError) as caught:
        await create_entry(session, replace(GOMI, answer=" "), actor="tanaka")
    assert caught.value.messages == ["応答文が空です"]
    await create_entry(session, GOMI, actor="tanaka")
    with pytest.raises(FaqEntryExists, match="ID「gomi-001」はすでに使われています"):
        await create_entry(session, GOMI, actor="suzuki")


async def test_update_writes_a_revision(session: AsyncSession) -> None:
    await create_entry(session, GOMI, actor="tanaka")
    await session.commit()
    changed = replace(GOMI, answer="役場の環境課に電話で申し込んでください。", keywords=())
    updated = await update_entry(session, changed, actor="suzuki", expected_revision=1)
    await session.commit()
    assert updated.data() == changed
    assert (updated.revision, updated.updated_by) == (2, "suzuki")
    assert updated.updated_at >= updated.created_at
    assert await get_entry(session, GOMI.id) == updated
    assert [(r.revision, r.action, r.data) for r in await list_revisions(session, GOMI.id)] == [
        (2, "update", changed),
        (1, "create", GOMI),
    ]


async def test_update_without_changes_writes_nothing(session: AsyncSession) -> None:
    created = await create_entry(session, GOMI, actor="tanaka")
    await session.commit()
    # Only whitespace differs: normalisation makes it the same entry.
    same = replace(GOMI, answer=GOMI.answer + "\n", alternatives=(*GOMI.alternatives, ""))
    assert await update_entry(session, same, actor="suzuki") == created
    await session.commit()
    assert len(await list_revisions(session, GOMI.id)) == 1


async def test_update_of_a_missing_entry(session: AsyncSession) -> None:
    with pytest.raises(FaqEntryNotFound, match="ID「gomi-001」の問い合わせは見つかりません"):
        await update_entry(session, GOMI, actor="tanaka")


async def test_save_entry_upserts(session: AsyncSession) -> None:
    entry, outcome = await save_entry(session, GOMI, actor="tanaka")
    assert (outcome, entry.revision) == ("created", 1)
    entry, outcome = await save_entry(session, GOMI, actor="tanaka")
    assert (outcome, entry.revision) == ("unchanged", 1)
    entry, outcome = await save_entry(session, replace(GOMI, published=False), actor="tanaka")
    assert (outcome, entry.revision, entry.published) == ("updated", 2, False)


async def test_delete_keeps_history_and_restore_brings_it_back(session: AsyncSession) -> None:
    await create_entry(session, GOMI, actor="tanaka")
    edited = replace(GOMI, answer="新しい答え")
    await update_entry(session, edited, actor="tanaka")
    await session.commit()

    await delete_entry(session, GOMI.id, actor="suzuki")
    await session.commit()
    assert await get_entry(session, GOMI.id) is None
    history = await list_revisions(session, GOMI.id)
    assert [(r.revision, r.action) for r in history] == [
        (3, "delete"),
        (2, "update"),
        (1, "create"),
    ]
    assert history[0].data == edited  # the last text stays readable
    with pytest.raises(FaqEntryNotFound):
        await delete_entry(session, GOMI.id, actor="suzuki")

    restored = await restore_revision(session, GOMI.id, 1, actor="sato")
    await session.commit()
    assert (restored.data(), restored.revision, restored.updated_by) == (GOMI, 4, "sato")
    assert await get_entry(session, GOMI.id) == restored
    assert [(r.revision, r.action) for r in await list_revisions(session, GOMI.id)][:2] == [
        (4, "restore"),
        (3, "delete"),
    ]


async def test_restore_of_an_existing_entry(session: AsyncSession) -> None:
    await create_entry(session, GOMI, actor="tanaka")
    await update_entry(session, replace(GOMI, answer="間違った答え"), actor="tanaka")
    restored = await restore_revision(session, GOMI.id, 1, actor="suzuki")
    assert (restored.answer, restored.revision) == (GOMI.answer, 3)
    assert (await list_revisions(session, GOMI.id))[0].action == "restore"
    # Restoring what is already there changes nothing.
    assert await restore_revision(session, GOMI.id, 3, actor="suzuki") == restored
    with pytest.raises(FaqRevisionNotFound, match="ID「gomi-001」の版9は見つかりません"):
        await restore_revision(session, GOMI.id, 9, actor="suzuki")


async def test_recreating_a_deleted_id_continues_its_history(session: AsyncSession) -> None:
    await create_entry(session, GOMI, actor="tanaka")
    await delete_entry(session, GOMI.id, actor="tanaka")
    again = await create_entry(session, GOMI, actor="tanaka")
    assert again.revision == 3
    assert [r.action for r in await list_revisions(session, GOMI.id)] == [
        "create",
        "delete",
        "create",
    ]


async def test_lists_search_and_documents(session: AsyncSession) -> None:
    hidden = FaqEntryData(
        id="gomi-002",
        question="分別表はありますか？",
        answer="窓口で配っています。",
        category="ごみ",
        published=False,
    )
    for data in (JUMIN, GOMI, hidden):
        await create_entry(session, data, actor="tanaka")
    await session.commit()

    assert [e.id for e in await list_entries(session)] == ["gomi-001", "gomi-002", "juminhyo-001"]
    assert [e.id for e in await list_entries(session, published_only=True)] == [
        "gomi-001",
        "juminhyo-001",
    ]
    assert [e.id for e in await list_entries(session, category="ごみ")] == ["gomi-001", "gomi-002"]
    assert [e.id for e in await list_entries(session, search="コンビニ")] == ["juminhyo-001"]
    assert [e.id for e in await list_entries(session, search="GOMI-00")] == ["gomi-001", "gomi-002"]
    assert [e.id for e in await list_entries(session, search="出し方")] == [
        "gomi-001"
    ]  # alternative
    assert [e.id for e in await list_entries(session, search="ｇｏｍｉ-002")] == [
        "gomi-002"
    ]  # full width
    assert await list_entries(session, search="ないもの") == []
    assert await list_categories(session) == ["ごみ", "戸籍・住民票"]
    assert await published_documents(session) == [
        FaqDocument(
            id="gomi-001",
            question=GOMI.question,
            answer=GOMI.answer,
            alternatives=GOMI.alternatives,
            keywords=GOMI.keywords,
            category="ごみ",
            url="https://example.jp/gomi",
        ),
        JUMIN.document(),
    ]


async def test_store_functions_never_commit(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        await create_entry(session, GOMI, actor="tanaka")
        await session.rollback()
    async with session_factory() as session:
        assert await count_entries(session) == 0


# --- concurrent edits ---------------------------------------------------------------------


async def test_expected_revision_guards_against_lost_updates(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_scope(session_factory) as session:
        await create_entry(session, GOMI, actor="tanaka")
    # Two members of staff opened revision 1 in their browsers; the first save wins.
    async with session_scope(session_factory) as session:
        await update_entry(
            session, replace(GOMI, answer="田中の答え"), actor="tanaka", expected_revision=1
        )
    with pytest.raises(
        FaqConflict, match="ほかの方が先に更新しました（開いたときは版1、いまは版2）"
    ):
        async with session_scope(session_factory) as session:
            await update_entry(
                session, replace(GOMI, answer="鈴木の答え"), actor="suzuki", expected_revision=1
            )
    async with session_factory() as session:
        entry = await get_entry(session, GOMI.id)
        assert entry is not None
        assert (entry.answer, entry.revision) == ("田中の答え", 2)


async def test_simultaneous_updates_never_share_a_revision_number(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with session_scope(session_factory) as session:
        await create_entry(session, GOMI, actor="tanaka")
    first_written = asyncio.Event()

    async def writer(name: str, *, go_first: bool) -> str:
        try:
            async with session_scope(session_factory) as session:
                if not go_first:
                    await first_written.wait()
                await update_entry(session, replace(GOMI, answer=f"{name}の答え"), actor=name)
                if go_first:
                    # Hold the uncommitted change while the other writer starts its own.
                    first_written.set()
                    await asyncio.sleep(0.3)
        except FaqConflict:
            return "conflict"
        return "saved"

    async def others() -> list[str]:
        return list(await asyncio.gather(*(writer(f"職員{i}", go_first=False) for i in range(3))))

    first, rest = await asyncio.gather(writer("職員A", go_first=True), others())
    outcomes = [first, *rest]
    assert first == "saved"
    assert set(outcomes) <= {"saved", "conflict"}
    if engine.dialect.name == "postgresql":
        # SELECT ... FOR UPDATE queues the writers: each saves on top of the one before.
        assert outcomes == ["saved"] * 4
    else:
        # SQLite has no row locks: a writer working from a stale copy must be refused.
        assert outcomes == ["saved", "conflict", "conflict", "conflict"]

    async with session_factory() as session:
        numbers = list(
            await session.scalars(
                select(FaqRevisionRow.revision).where(FaqRevisionRow.entry_id == GOMI.id)
            )
        )
        entry = await get_entry(session, GOMI.id)
        duplicates = await session.scalar(
            select(func.count())
            .select_from(FaqRevisionRow)
            .group_by(FaqRevisionRow.revision)
            .having(func.count() > 1)
        )
    assert duplicates is None
    assert sorted(numbers) == list(range(1, outcomes.count("saved") + 2))
    assert entry is not None
    assert entry.revision == max(numbers)
    [last] = [r for r in await _revisions(session_factory) if r.revision == entry.revision]
    assert last.data.answer == entry.answer


async def _revisions(session_factory: async_sessionmaker[AsyncSession]) -> list[FaqRevision]:
    async with session_factory() as session:
        return list(await list_revisions(session, GOMI.id))


def test_errors_share_a_base() -> None:
    for error in (
        FaqValidationError(["x"]),
        FaqEntryExists("a"),
        FaqEntryNotFound("a"),
        FaqConflict("a"),
    ):
        assert isinstance(error, FaqError)
