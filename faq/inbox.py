"""The staff inbox: questions the bot could not answer and answers residents marked 👎.

Core code (no HTTP): the admin pages call these functions with their own AsyncSession; nothing
here commits. What the inbox holds:

- "unanswered": question logs with outcome `fallback`, or that the resident left for staff;
- "unhelpful": question logs whose answer the resident marked 👎 (Feedback.helpful False;
  a vote without a question log cannot be tracked and is left to the dashboard's counts).

Only logs still `open` (QuestionLog.staff_status) are listed. Similar questions are grouped
(greedy clustering against each group's representative, the newest question), newest group
first. Staff then, for a whole group at once: create a new FAQ entry from it, add it as an
alternative phrasing of an existing entry (both mark the group's logs `converted`), or dismiss
it (`dismissed`). Forms carry the log ids of the group as shown, so a question that arrived
after the page was drawn is not swept along unseen.

Resident ids are never part of these results: staff see only the redacted question text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from rapidfuzz import fuzz
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from faq.inquiry_models import Feedback, QuestionLog
from faq.normalize import TextNormalizer, kana_fold
from faq.store import FaqEntryNotFound, create_entry, entries_by_id, get_entry, update_entry
from faq.textfold import fold
from faq.types import FaqEntry, FaqEntryData

InboxKind = Literal["unanswered", "unhelpful"]

# How many open logs of each kind the inbox groups at most (the newest). Grouping compares
# every question with every group's representative, on the event loop the bot shares:
# measured with distinct questions and the real normaliser, 1000 took about 1.3 s, 200
# about 0.1 s. Older open questions wait until the newer ones are handled.
DEFAULT_LIMIT = 200


@dataclass(frozen=True, slots=True)
class GroupingThresholds:
    """Two questions are grouped when either measure reaches its threshold.

    `fuzzy`: rapidfuzz ratio (0..1) of the folded texts (width, case and katakana/hiragana
    ignored) — catches typos and variant spellings of the same sentence.
    `terms`: Jaccard overlap of the normaliser's content terms (Sudachi normalised forms with
    synonyms mapped) — catches the same question worded differently. Only used when a
    normaliser is given; then a fuzzy match also needs `fuzzy_terms_floor` overlap, so that
    「犬の登録はどこで」 and 「猫の登録はどこで」 (one character apart) stay apart.
    """

    fuzzy: float = 0.8
    terms: float = 0.6
    fuzzy_terms_floor: float = 0.5


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One open question in the inbox (never the resident's id)."""

    log_id: int
    question: str  # as stored: already masked by faq.redact
    at: datetime  # asked (unanswered) or marked 👎 (unhelpful); UTC
    outcome: str  # answered / suggested / fallback
    left_for_staff: bool
    faq_id: str | None  # unhelpful: the entry marked 👎


@dataclass(frozen=True, slots=True)
class InboxGroup:
    kind: InboxKind
    items: tuple[InboxItem, ...]  # newest first; items[0] is the representative
    faq_id: str | None = None  # unhelpful: the entry residents marked 👎
    faq_question: str | None = None  # that entry's question, None if it is gone

    @property
    def representative(self) -> InboxItem:
        return self.items[0]

    @property
    def key(self) -> str:
        """Stable while the representative stays the newest question of the group."""
        return f"{self.kind}-{self.representative.log_id}"

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def latest_at(self) -> datetime:
        return self.items[0].at

    @property
    def log_ids(self) -> tuple[int, ...]:
        return tuple(item.log_id for item in self.items)

    @property
    def left_for_staff_count(self) -> int:
        return sum(1 for item in self.items if item.left_for_staff)

    @property
    def phrasings(self) -> tuple[str, ...]:
        """The distinct question texts of the group, newest first."""
        seen: dict[str, None] = {}
        for item in self.items:
            seen.setdefault(item.question.strip(), None)
        return tuple(text for text in seen if text)


class QuestionSimilarity:
    """Decides whether two questions are "the same question" for grouping."""

    def __init__(
        self,
        normalizer: TextNormalizer | None = None,
        thresholds: GroupingThresholds | None = None,
    ) -> None:
        self._normalizer = normalizer
        self.thresholds = thresholds or GroupingThresholds()
        self._cache: dict[str, tuple[str, frozenset[str]]] = {}

    def _key(self, text: str) -> tuple[str, frozenset[str]]:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        folded = kana_fold(fold(text))
        terms: frozenset[str] = frozenset()
        if self._normalizer is not None:
            terms = frozenset(self._normalizer.analyze(text).terms)
        key = (folded, terms)
        self._cache[text] = key
        return key

    def similar(self, a: str, b: str) -> bool:
        folded_a, terms_a = self._key(a)
        folded_b, terms_b = self._key(b)
        if folded_a == folded_b:
            return True
        fuzzy = fuzz.ratio(folded_a, folded_b) / 100 if folded_a and folded_b else 0.0
        if not (terms_a and terms_b):
            return fuzzy >= self.thresholds.fuzzy
        overlap = len(terms_a & terms_b) / len(terms_a | terms_b)
        if overlap >= self.thresholds.terms:
            return True
        return fuzzy >= self.thresholds.fuzzy and overlap >= self.thresholds.fuzzy_terms_floor


def group_items(
    kind: InboxKind, items: Iterable[InboxItem], similarity: QuestionSimilarity
) -> list[InboxGroup]:
    """Greedy clustering: items newest first; each joins the first group whose representative
    it resembles (unhelpful ones only within the same entry), else starts a new group."""
    ordered = sorted(items, key=lambda item: (item.at, item.log_id), reverse=True)
    groups: list[list[InboxItem]] = []
    for item in ordered:
        for members in groups:
            head = members[0]
            if head.faq_id == item.faq_id and similarity.similar(head.question, item.question):
                members.append(item)
                break
        else:
            groups.append([item])
    return [
        InboxGroup(kind=kind, items=tuple(members), faq_id=members[0].faq_id) for members in groups
    ]


async def _unanswered_items(session: AsyncSession, limit: int) -> list[InboxItem]:
    rows = await session.scalars(
        select(QuestionLog)
        .where(
            QuestionLog.staff_status == "open",
            or_(QuestionLog.outcome == "fallback", QuestionLog.left_for_staff.is_(True)),
        )
        .order_by(QuestionLog.created_at.desc(), QuestionLog.id.desc())
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    return [_item(row, at=row.created_at, faq_id=None) for row in rows]


def _item(row: QuestionLog, *, at: datetime, faq_id: str | None) -> InboxItem:
    return InboxItem(
        log_id=row.id,
        question=row.question,
        at=at,
        outcome=row.outcome,
        left_for_staff=row.left_for_staff,
        faq_id=faq_id,
    )


async def _unhelpful_items(session: AsyncSession, limit: int) -> list[InboxItem]:
    rows = await session.execute(
        select(QuestionLog, Feedback.faq_id, Feedback.updated_at)
        .join(Feedback, Feedback.question_log_id == QuestionLog.id)
        .where(Feedback.helpful.is_(False), QuestionLog.staff_status == "open")
        .order_by(Feedback.updated_at.desc(), Feedback.id.desc())
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    items: dict[int, InboxItem] = {}
    for log, faq_id, marked_at in rows.tuples():
        if log.id in items:  # one log, several 👎 (other suggestions): keep the latest
            continue
        items[log.id] = _item(log, at=marked_at, faq_id=faq_id)
    return list(items.values())


async def list_inbox(
    session: AsyncSession,
    *,
    normalizer: TextNormalizer | None = None,
    thresholds: GroupingThresholds | None = None,
    kind: InboxKind | None = None,
    limit: int | None = None,
) -> list[InboxGroup]:
    """Open inbox groups, the most recent activity first, from the newest `limit` open
    questions of each kind (DEFAULT_LIMIT; `count_open` tells how many there are in all).

    Pass the engine's normaliser (`context.faq_engine.normalizer`) to group by meaning as well
    as by spelling. A question that is both unanswered (left for staff) and marked 👎 is listed
    once, as 👎 (with the entry it got).
    """
    limit = DEFAULT_LIMIT if limit is None else limit
    similarity = QuestionSimilarity(normalizer, thresholds)
    unhelpful = await _unhelpful_items(session, limit) if kind != "unanswered" else []
    groups = group_items("unhelpful", unhelpful, similarity)
    if kind != "unhelpful":
        seen = {item.log_id for item in unhelpful}
        unanswered = [
            item for item in await _unanswered_items(session, limit) if item.log_id not in seen
        ]
        groups += group_items("unanswered", unanswered, similarity)
    entry_ids = sorted({group.faq_id for group in groups if group.faq_id})
    questions = {entry.id: entry.question for entry in await entries_by_id(session, entry_ids)}
    groups = [
        replace(group, faq_question=questions.get(group.faq_id)) if group.faq_id else group
        for group in groups
    ]
    groups.sort(key=lambda group: (group.latest_at, group.representative.log_id), reverse=True)
    return groups


async def count_open(session: AsyncSession, *, kind: InboxKind | None = None) -> int:
    """How many open questions the inbox holds in all (of `kind`, or both kinds; a question
    that is both counts once), grouped or not."""
    unhelpful = (
        select(Feedback.id)
        .where(Feedback.question_log_id == QuestionLog.id, Feedback.helpful.is_(False))
        .exists()
    )
    unanswered = or_(QuestionLog.outcome == "fallback", QuestionLog.left_for_staff.is_(True))
    condition = {"unanswered": unanswered, "unhelpful": unhelpful, None: or_(unanswered, unhelpful)}
    count = await session.scalar(
        select(func.count())
        .select_from(QuestionLog)
        .where(QuestionLog.staff_status == "open", condition[kind])
    )
    return int(count or 0)


async def open_items(session: AsyncSession, log_ids: Sequence[int]) -> list[InboxItem]:
    """The still-open logs among these ids, newest first (to prefill a form for a group)."""
    if not log_ids:
        return []
    rows = await session.scalars(
        select(QuestionLog)
        .where(QuestionLog.id.in_(list(log_ids)), QuestionLog.staff_status == "open")
        .order_by(QuestionLog.created_at.desc(), QuestionLog.id.desc())
        .execution_options(populate_existing=True)
    )
    return [_item(row, at=row.created_at, faq_id=row.faq_id) for row in rows]


async def _close(
    session: AsyncSession, log_ids: Sequence[int], status: Literal["dismissed", "converted"]
) -> int:
    """Set the still-open logs among these ids to `status`; how many changed."""
    ids = sorted({int(log_id) for log_id in log_ids})
    if not ids:
        return 0
    result = await session.execute(
        update(QuestionLog)
        .where(QuestionLog.id.in_(ids), QuestionLog.staff_status == "open")
        .values(staff_status=status)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def dismiss(session: AsyncSession, log_ids: Sequence[int]) -> int:
    """対応不要: the group leaves the inbox. Returns how many logs were still open."""
    return await _close(session, log_ids, "dismissed")


@dataclass(frozen=True, slots=True)
class ConvertResult:
    entry: FaqEntry
    closed: int  # logs of the group that were still open and are now converted
    changed: bool = True  # False when the phrasing was already part of the entry


async def create_entry_from_group(
    session: AsyncSession, log_ids: Sequence[int], data: FaqEntryData, *, actor: str
) -> ConvertResult:
    """新しいFAQを作る: a new entry (store validation applies), the group's logs converted.

    Raises the store's FaqValidationError / FaqEntryExists; nothing is closed then.
    """
    entry = await create_entry(session, data, actor=actor)
    return ConvertResult(entry=entry, closed=await _close(session, log_ids, "converted"))


async def add_as_alternative(
    session: AsyncSession,
    log_ids: Sequence[int],
    *,
    entry_id: str,
    phrasing: str,
    actor: str,
    expected_revision: int | None = None,
) -> ConvertResult:
    """既存のFAQに言い換えとして追加: `phrasing` joins the entry's alternatives.

    With `expected_revision` a newer stored revision raises FaqConflict (someone else edited
    the entry meanwhile); an unknown entry raises FaqEntryNotFound. A phrasing the entry
    already has (as its question or an alternative) changes nothing but still closes the
    group.
    """
    entry = await get_entry(session, entry_id)
    if entry is None:
        raise FaqEntryNotFound(entry_id)
    phrasing = " ".join(phrasing.split())
    known = {fold(text) for text in (entry.question, *entry.alternatives)}
    changed = bool(phrasing) and fold(phrasing) not in known
    if changed:
        data = replace(entry.data(), alternatives=(*entry.alternatives, phrasing))
        entry = await update_entry(session, data, actor=actor, expected_revision=expected_revision)
    closed = await _close(session, log_ids, "converted")
    return ConvertResult(entry=entry, closed=closed, changed=changed)
