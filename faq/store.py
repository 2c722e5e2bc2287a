"""FAQ store: validation, CRUD with revision history, and what the engine indexes.

Every function takes the caller's AsyncSession and never commits (it may flush): the caller
commits when the whole operation succeeded and rolls back otherwise. Results are faq.types
dataclasses, never ORM rows.

Concurrency: each change bumps `revision`, and the UPDATE or DELETE only matches the row
version that was read (`WHERE revision = :old`, via the mapper's version_id_col). On
PostgreSQL the row is also read with SELECT ... FOR UPDATE, so concurrent writers queue up
instead of failing; on SQLite the loser gets FaqConflict. The unique (entry_id, revision)
constraint on the history backs both up.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, Literal, cast, get_args

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from faq.models import FaqEntryRow, FaqRevisionRow
from faq.types import FaqDocument, FaqEntry, FaqEntryData, FaqRevision
from madoguchi.db import utcnow

RevisionAction = Literal["create", "update", "restore", "delete"]
SaveOutcome = Literal["created", "updated", "unchanged"]

ID_MAX = 64
QUESTION_MAX = 500
ANSWER_MAX = 5000
ALTERNATIVE_MAX = 500
ALTERNATIVES_MAX_COUNT = 50
KEYWORD_MAX = 100
KEYWORDS_MAX_COUNT = 50
CATEGORY_MAX = 100
DEPARTMENT_MAX = 100
URL_MAX = 2000
STAFF_NOTE_MAX = 5000

_ID_RE = re.compile(r"[A-Za-z0-9-]+")
_URL_RE = re.compile(r"https?://[^\s/?#]+[^\s]*")
# Alternatives and keywords are single-line values; CSV cells separate them with these.
_LIST_SEPARATORS = re.compile(r"[\n|｜]")


# --- errors -------------------------------------------------------------------------------


class FaqError(Exception):
    """Base of the store's errors; str() is a Japanese message fit to show staff."""


class FaqValidationError(FaqError):
    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("\n".join(messages))


class FaqEntryExists(FaqError):
    def __init__(self, entry_id: str) -> None:
        self.entry_id = entry_id
        super().__init__(f"ID「{entry_id}」はすでに使われています。別のIDにしてください")


class FaqEntryNotFound(FaqError):
    def __init__(self, entry_id: str, message: str | None = None) -> None:
        self.entry_id = entry_id
        super().__init__(
            message or f"ID「{entry_id}」の問い合わせは見つかりません（削除された可能性があります）"
        )


class FaqRevisionNotFound(FaqEntryNotFound):
    def __init__(self, entry_id: str, revision: int) -> None:
        self.revision = revision
        super().__init__(entry_id, f"ID「{entry_id}」の版{revision}は見つかりません")


class FaqConflict(FaqError):
    """Someone else changed the entry since it was read (optimistic concurrency)."""

    def __init__(
        self, entry_id: str, expected: int | None = None, actual: int | None = None
    ) -> None:
        self.entry_id = entry_id
        self.expected = expected
        self.actual = actual
        detail = ""
        if expected is not None and actual is not None:
            detail = f"（開いたときは版{expected}、いまは版{actual}）"
        super().__init__(
            f"ID「{entry_id}」は、ほかの方が先に更新しました{detail}。"
            "最新の内容を読み込み直してから、もう一度保存してください"
        )


# --- normalisation and validation ---------------------------------------------------------


def _clean_text(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _clean_list(values: Iterable[str]) -> tuple[str, ...]:
    """Single-line values, stripped, without empties or repeats, in their first order."""
    seen: dict[str, None] = {}
    for value in values:
        for part in _LIST_SEPARATORS.split(_clean_text(value)):
            if part.strip():
                seen.setdefault(part.strip(), None)
    return tuple(seen)


def normalize_entry_data(data: FaqEntryData) -> FaqEntryData:
    """Strip whitespace, unify line ends, drop empty and repeated alternatives and keywords.

    A value holding newlines or "|" becomes several values, as in a CSV cell.
    """
    return FaqEntryData(
        id=data.id.strip(),
        question=_clean_text(data.question),
        answer=_clean_text(data.answer),
        alternatives=_clean_list(data.alternatives),
        keywords=_clean_list(data.keywords),
        category=_clean_text(data.category),
        reference_url=data.reference_url.strip(),
        department=_clean_text(data.department),
        published=data.published,
        staff_note=_clean_text(data.staff_note),
    )


def entry_problems(data: FaqEntryData) -> list[tuple[str, str]]:
    """(field name, Japanese message) for each problem of the normalised data."""
    data = normalize_entry_data(data)
    problems: list[tuple[str, str]] = []

    def check_length(field: str, label: str, value: str, limit: int) -> None:
        if len(value) > limit:
            problems.append(
                (field, f"{label}は{limit}文字以内にしてください（いま{len(value)}文字）")
            )

    if not data.id:
        problems.append(("id", "IDが空です"))
    elif not _ID_RE.fullmatch(data.id) or len(data.id) > ID_MAX:
        problems.append(("id", "IDは半角英数字とハイフン（-）で、64文字以内にしてください"))
    if not data.question:
        problems.append(("question", "問い合わせ文が空です"))
    check_length("question", "問い合わせ文", data.question, QUESTION_MAX)
    if not data.answer:
        problems.append(("answer", "応答文が空です"))
    check_length("answer", "応答文", data.answer, ANSWER_MAX)
    for field, label, values, each_max, count_max in (
        ("alternatives", "言い換え", data.alternatives, ALTERNATIVE_MAX, ALTERNATIVES_MAX_COUNT),
        ("keywords", "キーワード", data.keywords, KEYWORD_MAX, KEYWORDS_MAX_COUNT),
    ):
        if len(values) > count_max:
            problems.append(
                (field, f"{label}は{count_max}個までにしてください（いま{len(values)}個）")
            )
        for number, value in enumerate(values, start=1):
            check_length(field, f"{label}の{number}個目", value, each_max)
    check_length("category", "カテゴリ", data.category, CATEGORY_MAX)
    if data.reference_url and not _URL_RE.fullmatch(data.reference_url):
        problems.append(
            (
                "reference_url",
                "参考URLは http:// か https:// で始まるURLにしてください（空欄でもかまいません）",
            )
        )
    check_length("reference_url", "参考URL", data.reference_url, URL_MAX)
    check_length("department", "担当課", data.department, DEPARTMENT_MAX)
    check_length("staff_note", "職員メモ", data.staff_note, STAFF_NOTE_MAX)
    return problems


def validate_entry_data(data: FaqEntryData) -> list[str]:
    """Japanese messages for everything wrong with the (normalised) data; empty when fine."""
    return [message for _field, message in entry_problems(data)]


def _checked(data: FaqEntryData) -> FaqEntryData:
    data = normalize_entry_data(data)
    messages = validate_entry_data(data)
    if messages:
        raise FaqValidationError(messages)
    return data


# --- conversions --------------------------------------------------------------------------


def _row_data(row: FaqEntryRow) -> FaqEntryData:
    return FaqEntryData(
        id=row.id,
        question=row.question,
        answer=row.answer,
        alternatives=tuple(row.alternatives),
        keywords=tuple(row.keywords),
        category=row.category,
        reference_url=row.reference_url,
        department=row.department,
        published=row.published,
        staff_note=row.staff_note,
    )


def _to_entry(row: FaqEntryRow) -> FaqEntry:
    data = _row_data(row)
    return FaqEntry(
        id=data.id,
        question=data.question,
        answer=data.answer,
        alternatives=data.alternatives,
        keywords=data.keywords,
        category=data.category,
        reference_url=data.reference_url,
        department=data.department,
        published=data.published,
        staff_note=data.staff_note,
        created_at=row.created_at,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        revision=row.revision,
    )


def _snapshot(data: FaqEntryData) -> dict[str, Any]:
    return {
        "id": data.id,
        "question": data.question,
        "answer": data.answer,
        "alternatives": list(data.alternatives),
        "keywords": list(data.keywords),
        "category": data.category,
        "reference_url": data.reference_url,
        "department": data.department,
        "published": data.published,
        "staff_note": data.staff_note,
    }


def _from_snapshot(entry_id: str, snapshot: dict[str, Any]) -> FaqEntryData:
    # .get with defaults: snapshots written before a field existed still load.
    return FaqEntryData(
        id=str(snapshot.get("id", entry_id)),
        question=str(snapshot.get("question", "")),
        answer=str(snapshot.get("answer", "")),
        alternatives=tuple(snapshot.get("alternatives", ())),
        keywords=tuple(snapshot.get("keywords", ())),
        category=str(snapshot.get("category", "")),
        reference_url=str(snapshot.get("reference_url", "")),
        department=str(snapshot.get("department", "")),
        published=bool(snapshot.get("published", True)),
        staff_note=str(snapshot.get("staff_note", "")),
    )


def _to_revision(row: FaqRevisionRow) -> FaqRevision:
    action = row.action if row.action in get_args(RevisionAction) else "update"
    return FaqRevision(
        entry_id=row.entry_id,
        revision=row.revision,
        action=cast(RevisionAction, action),
        data=_from_snapshot(row.entry_id, row.snapshot),
        changed_at=row.changed_at,
        changed_by=row.changed_by,
    )


def _apply(row: FaqEntryRow, data: FaqEntryData) -> None:
    # New list objects, so the JSON columns register as changed.
    row.question = data.question
    row.answer = data.answer
    row.alternatives = list(data.alternatives)
    row.keywords = list(data.keywords)
    row.category = data.category
    row.reference_url = data.reference_url
    row.department = data.department
    row.published = data.published
    row.staff_note = data.staff_note


# --- reading ------------------------------------------------------------------------------


async def _load_row(session: AsyncSession, entry_id: str, *, lock: bool) -> FaqEntryRow | None:
    stmt = select(FaqEntryRow).where(FaqEntryRow.id == entry_id)
    if lock:
        stmt = stmt.with_for_update()  # PostgreSQL only; SQLite ignores it
    # populate_existing: another session may have changed the row since this one cached it.
    result = await session.execute(stmt.execution_options(populate_existing=True))
    return result.scalar_one_or_none()


async def get_entry(session: AsyncSession, entry_id: str) -> FaqEntry | None:
    row = await _load_row(session, entry_id, lock=False)
    return None if row is None else _to_entry(row)


def _search_key(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _matches(entry: FaqEntry, needle: str) -> bool:
    fields = (entry.id, entry.question, entry.answer, *entry.alternatives, *entry.keywords)
    return any(needle in _search_key(value) for value in fields)


def _sort_key(entry: FaqEntry) -> tuple[str, str]:
    return (entry.category, entry.id)


async def list_entries(
    session: AsyncSession,
    *,
    published_only: bool = False,
    category: str | None = None,
    search: str | None = None,
) -> list[FaqEntry]:
    """Entries ordered by category, then id.

    `search` is a case- and width-insensitive substring of the id, question, answer,
    alternatives or keywords. It filters in Python: the FAQ has a few thousand rows at most,
    and this behaves the same on SQLite and PostgreSQL. Sorting is in Python too, so the
    order does not depend on the database's collation.
    """
    stmt = select(FaqEntryRow)
    if published_only:
        stmt = stmt.where(FaqEntryRow.published.is_(True))
    if category is not None:
        stmt = stmt.where(FaqEntryRow.category == category)
    result = await session.execute(stmt.execution_options(populate_existing=True))
    entries = [_to_entry(row) for row in result.scalars()]
    needle = _search_key(search.strip()) if search else ""
    if needle:
        entries = [entry for entry in entries if _matches(entry, needle)]
    return sorted(entries, key=_sort_key)


async def list_categories(session: AsyncSession) -> list[str]:
    """The non-empty categories in use, sorted."""
    result = await session.scalars(select(FaqEntryRow.category).distinct())
    return sorted(category for category in result if category)


async def count_entries(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(FaqEntryRow)) or 0


async def entries_by_id(session: AsyncSession, entry_ids: Sequence[str]) -> list[FaqEntry]:
    """The stored entries among these ids (published or not), in no particular order."""
    if not entry_ids:
        return []
    result = await session.execute(
        select(FaqEntryRow)
        .where(FaqEntryRow.id.in_(entry_ids))
        .execution_options(populate_existing=True)
    )
    return [_to_entry(row) for row in result.scalars()]


async def published_documents(session: AsyncSession) -> list[FaqDocument]:
    """What the matching engine indexes: every published entry."""
    return [entry.document() for entry in await list_entries(session, published_only=True)]


async def list_revisions(session: AsyncSession, entry_id: str) -> list[FaqRevision]:
    """The history of an entry, newest first; deleted entries keep theirs."""
    result = await session.scalars(
        select(FaqRevisionRow)
        .where(FaqRevisionRow.entry_id == entry_id)
        .order_by(FaqRevisionRow.revision.desc())
    )
    return [_to_revision(row) for row in result]


# --- writing ------------------------------------------------------------------------------


async def _flush(session: AsyncSession, entry_id: str) -> None:
    """Flush, turning a lost race into FaqConflict (the caller must then roll back)."""
    try:
        await session.flush()
    except (StaleDataError, IntegrityError) as exc:
        raise FaqConflict(entry_id) from exc


async def _last_revisions(session: AsyncSession, entry_ids: Sequence[str]) -> dict[str, int]:
    """Highest kept revision per id: a re-created id continues its old history."""
    if not entry_ids:
        return {}
    result = await session.execute(
        select(FaqRevisionRow.entry_id, func.max(FaqRevisionRow.revision))
        .where(FaqRevisionRow.entry_id.in_(entry_ids))
        .group_by(FaqRevisionRow.entry_id)
    )
    return dict(result.tuples().all())


def _history_row(
    data: FaqEntryData, revision: int, action: RevisionAction, actor: str
) -> FaqRevisionRow:
    return FaqRevisionRow(
        entry_id=data.id,
        revision=revision,
        action=action,
        snapshot=_snapshot(data),
        changed_at=utcnow(),
        changed_by=actor,
    )


def _new_row(data: FaqEntryData, revision: int, actor: str) -> FaqEntryRow:
    now = utcnow()
    row = FaqEntryRow(
        id=data.id, created_at=now, updated_at=now, updated_by=actor, revision=revision
    )
    _apply(row, data)
    return row


async def _insert(
    session: AsyncSession, data: FaqEntryData, *, actor: str, action: RevisionAction
) -> FaqEntry:
    revision = (await _last_revisions(session, [data.id])).get(data.id, 0) + 1
    row = _new_row(data, revision, actor)
    session.add(row)
    session.add(_history_row(data, revision, action, actor))
    try:
        await session.flush()
    except IntegrityError as exc:  # inserted by someone else meanwhile
        raise FaqEntryExists(data.id) from exc
    return _to_entry(row)


async def _change(
    session: AsyncSession,
    row: FaqEntryRow,
    data: FaqEntryData,
    *,
    actor: str,
    action: RevisionAction,
) -> FaqEntry:
    """Apply data to a loaded row as the next revision (unless nothing changed)."""
    if _row_data(row) == data:
        return _to_entry(row)
    _apply(row, data)
    row.revision += 1
    row.updated_at = utcnow()
    row.updated_by = actor
    await _flush(session, data.id)  # the versioned UPDATE first: it detects a lost race
    session.add(_history_row(data, row.revision, action, actor))
    await _flush(session, data.id)
    return _to_entry(row)


async def create_entry(session: AsyncSession, data: FaqEntryData, *, actor: str) -> FaqEntry:
    """A new entry at revision 1 (an id used before continues its old numbering)."""
    data = _checked(data)
    if await _load_row(session, data.id, lock=False) is not None:
        raise FaqEntryExists(data.id)
    return await _insert(session, data, actor=actor, action="create")


async def update_entry(
    session: AsyncSession,
    data: FaqEntryData,
    *,
    actor: str,
    expected_revision: int | None = None,
) -> FaqEntry:
    """Save changed fields as the next revision; an unchanged entry is returned as it is.

    With `expected_revision` (the revision the editor started from) a newer stored revision
    raises FaqConflict instead of silently overwriting someone else's edit.
    """
    data = _checked(data)
    row = await _load_row(session, data.id, lock=True)
    if row is None:
        raise FaqEntryNotFound(data.id)
    if expected_revision is not None and row.revision != expected_revision:
        raise FaqConflict(data.id, expected_revision, row.revision)
    return await _change(session, row, data, actor=actor, action="update")


async def save_entry(
    session: AsyncSession, data: FaqEntryData, *, actor: str
) -> tuple[FaqEntry, SaveOutcome]:
    """Create or update (upsert), saying which happened."""
    data = _checked(data)
    row = await _load_row(session, data.id, lock=True)
    if row is None:
        return await _insert(session, data, actor=actor, action="create"), "created"
    before = row.revision
    entry = await _change(session, row, data, actor=actor, action="update")
    return entry, "unchanged" if entry.revision == before else "updated"


async def delete_entry(session: AsyncSession, entry_id: str, *, actor: str) -> None:
    """Delete an entry; a "delete" revision keeps its last text for restoring."""
    row = await _load_row(session, entry_id, lock=True)
    if row is None:
        raise FaqEntryNotFound(entry_id)
    data = _row_data(row)
    revision = row.revision + 1
    await session.delete(row)
    await _flush(session, entry_id)
    session.add(_history_row(data, revision, "delete", actor))
    await _flush(session, entry_id)


async def restore_revision(
    session: AsyncSession, entry_id: str, revision: int, *, actor: str
) -> FaqEntry:
    """Bring back the text of an old revision, re-creating the entry if it was deleted."""
    kept = await session.scalar(
        select(FaqRevisionRow).where(
            FaqRevisionRow.entry_id == entry_id, FaqRevisionRow.revision == revision
        )
    )
    if kept is None:
        raise FaqRevisionNotFound(entry_id, revision)
    # Old snapshots were valid when written; normalising keeps them comparable to today's data.
    data = replace(normalize_entry_data(_to_revision(kept).data), id=entry_id)
    row = await _load_row(session, entry_id, lock=True)
    if row is None:
        return await _insert(session, data, actor=actor, action="restore")
    return await _change(session, row, data, actor=actor, action="restore")


async def insert_new_entries(
    session: AsyncSession, entries: Sequence[FaqEntryData], *, actor: str
) -> int:
    """Create many entries in one flush (seeding); any id already present fails it all."""
    checked = [_checked(data) for data in entries]
    ids = [data.id for data in checked]
    repeated = sorted(entry_id for entry_id, n in Counter(ids).items() if n > 1)
    if repeated:
        raise FaqValidationError([f"ID「{entry_id}」が2回以上あります" for entry_id in repeated])
    last = await _last_revisions(session, [data.id for data in checked])
    for data in checked:
        revision = last.get(data.id, 0) + 1
        session.add(_new_row(data, revision, actor))
        session.add(_history_row(data, revision, "create", actor))
    try:
        await session.flush()
    except IntegrityError as exc:
        raise FaqError("すでにあるIDと同じIDの問い合わせは、まとめて追加できません") from exc
    return len(checked)
