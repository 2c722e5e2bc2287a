"""The staff inbox (faq.inbox): grouping of unanswered and 👎 questions, and the three actions.

Runs on SQLite and PostgreSQL (the `session` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from faq import inbox
from faq.inbox import (
    InboxItem,
    QuestionSimilarity,
    add_as_alternative,
    count_open,
    create_entry_from_group,
    dismiss,
    group_items,
    list_inbox,
    open_items,
)
from faq.inquiries import leave_for_staff, log_question, record_feedback
from faq.inquiry_models import QuestionLog
from faq.normalize import TextNormalizer
from faq.redact import MASK
from faq.store import FaqConflict, FaqEntryExists, create_entry, get_entry, update_entry
from faq.types import FaqEntryData, MatchStatus
from madoguchi.models import import_all_models
from madoguchi.residents import get_or_create_resident

import_all_models()

T0 = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def normalizer() -> TextNormalizer:
    return TextNormalizer()


async def _ask(
    session: AsyncSession,
    text: str,
    *,
    minutes: int,
    user: int = 1,
    outcome: MatchStatus = "fallback",
    faq_id: str | None = None,
) -> int:
    resident = await get_or_create_resident(session, 1000 + user, now=T0)
    return await log_question(
        session,
        resident_id=resident.id,
        channel="telegram",
        question=text,
        outcome=outcome,
        faq_id=faq_id,
        score=0.1,
        now=T0 + timedelta(minutes=minutes),
    )


async def _entry(session: AsyncSession, entry_id: str = "gomi-1") -> None:
    await create_entry(
        session,
        FaqEntryData(id=entry_id, question="粗大ごみの出し方は？", answer="予約してください。"),
        actor="test",
    )


def _item(log_id: int, text: str, minutes: int, faq_id: str | None = None) -> InboxItem:
    return InboxItem(
        log_id=log_id,
        question=text,
        at=T0 + timedelta(minutes=minutes),
        outcome="fallback",
        left_for_staff=False,
        faq_id=faq_id,
    )


# -- grouping without a database ---------------------------------------------------------------


def test_similar_spellings_group_and_different_topics_do_not() -> None:
    similarity = QuestionSimilarity()
    assert similarity.similar("粗大ゴミの出し方", "粗大ごみの出し方？")
    assert similarity.similar("ＰＣＲ検査はどこ", "pcr検査はどこ")
    assert not similarity.similar("ごみの日", "ごみの袋")
    assert not similarity.similar("犬の登録", "児童手当の申請")


def test_terms_group_differently_worded_questions(normalizer: TextNormalizer) -> None:
    plain = QuestionSimilarity()
    with_terms = QuestionSimilarity(normalizer)
    a, b = "スマホでマイナポータルにログインしたい", "マイナポータルにスマートフォンからログイン"
    assert not plain.similar(a, b)
    assert with_terms.similar(a, b)
    assert not with_terms.similar("犬の登録はどこで", "猫の登録はどこで")


def test_group_items_newest_first_with_representative_and_count() -> None:
    items = [
        _item(1, "粗大ごみの出し方", 0),
        _item(2, "犬の登録", 5),
        _item(3, "粗大ゴミの出し方", 10),
        _item(4, "粗大ごみの出しかた", 20),
    ]
    groups = group_items("unanswered", items, QuestionSimilarity())
    assert [group.log_ids for group in groups] == [(4, 3, 1), (2,)]
    first = groups[0]
    assert first.representative.log_id == 4
    assert first.count == 3
    assert first.latest_at == T0 + timedelta(minutes=20)
    assert first.key == "unanswered-4"
    assert first.phrasings == ("粗大ごみの出しかた", "粗大ゴミの出し方", "粗大ごみの出し方")


def test_unhelpful_items_group_only_within_one_entry() -> None:
    items = [_item(1, "ごみの出し方", 0, "a"), _item(2, "ごみの出し方", 1, "b")]
    groups = group_items("unhelpful", items, QuestionSimilarity())
    assert len(groups) == 2
    assert {group.faq_id for group in groups} == {"a", "b"}


# -- listing from the database -------------------------------------------------------------------


async def test_inbox_lists_fallbacks_left_for_staff_and_thumbs_down(session: AsyncSession) -> None:
    await _entry(session)
    fallback_old = await _ask(session, "粗大ごみの出し方", minutes=0)
    fallback_new = await _ask(session, "粗大ゴミの出し方？", minutes=30, user=2)
    unrelated = await _ask(session, "犬の登録はどこでしますか", minutes=10)
    answered_ok = await _ask(session, "住民票", minutes=1, outcome="answered", faq_id="gomi-1")
    left = await _ask(session, "住民票の写し", minutes=2, outcome="suggested", faq_id="gomi-1")
    assert await leave_for_staff(session, left, (await get_or_create_resident(session, 1001)).id)
    thumbs = await _ask(
        session, "ソファを捨てたい", minutes=40, outcome="answered", faq_id="gomi-1"
    )
    resident = await get_or_create_resident(session, 1001)
    assert (
        await record_feedback(
            session,
            resident_id=resident.id,
            faq_id="gomi-1",
            helpful=False,
            question_log_id=thumbs,
            now=T0 + timedelta(minutes=41),
        )
        == "recorded"
    )
    # 👍 on another answered log keeps it out of the inbox.
    await record_feedback(
        session,
        resident_id=resident.id,
        faq_id="gomi-1",
        helpful=True,
        question_log_id=answered_ok,
        now=T0 + timedelta(minutes=42),
    )
    await session.commit()

    groups = await list_inbox(session)
    assert [(group.kind, group.log_ids) for group in groups] == [
        ("unhelpful", (thumbs,)),
        ("unanswered", (fallback_new, fallback_old)),
        ("unanswered", (unrelated,)),
        ("unanswered", (left,)),
    ]
    thumbs_group = groups[0]
    assert thumbs_group.faq_id == "gomi-1"
    assert thumbs_group.faq_question == "粗大ごみの出し方は？"
    assert thumbs_group.latest_at == T0 + timedelta(minutes=41)
    assert groups[3].left_for_staff_count == 1
    assert [g.kind for g in await list_inbox(session, kind="unhelpful")] == ["unhelpful"]
    assert len(await list_inbox(session, kind="unanswered")) == 3


async def test_a_log_both_left_for_staff_and_thumbs_down_is_listed_once(
    session: AsyncSession,
) -> None:
    await _entry(session)
    log = await _ask(session, "ソファを捨てたい", minutes=0, outcome="answered", faq_id="gomi-1")
    resident = await get_or_create_resident(session, 1001)
    await record_feedback(
        session, resident_id=resident.id, faq_id="gomi-1", helpful=False, question_log_id=log
    )
    assert await leave_for_staff(session, log, resident.id)
    groups = await list_inbox(session)
    assert [(group.kind, group.log_ids) for group in groups] == [("unhelpful", (log,))]
    assert groups[0].left_for_staff_count == 1


async def test_only_the_newest_questions_are_grouped_and_all_are_counted(
    session: AsyncSession,
) -> None:
    await _entry(session)
    topics = ["犬の登録", "ごみの日", "図書館の時間", "水道の開栓"]
    logs = [await _ask(session, f"{topic}は？", minutes=i) for i, topic in enumerate(topics)]
    both = await _ask(session, "ソファを捨てたい", minutes=9, outcome="answered", faq_id="gomi-1")
    resident = await get_or_create_resident(session, 1001)
    await record_feedback(
        session, resident_id=resident.id, faq_id="gomi-1", helpful=False, question_log_id=both
    )
    assert await leave_for_staff(session, both, resident.id)
    await dismiss(session, [logs[0]])
    await session.commit()

    groups = await list_inbox(session, limit=2, kind="unanswered")
    assert [group.log_ids for group in groups] == [(both,), (logs[3],)]  # the newest two
    assert await count_open(session, kind="unanswered") == 4  # logs[1:] and `both`
    assert await count_open(session, kind="unhelpful") == 1
    assert await count_open(session) == 4  # `both` once
    assert inbox.DEFAULT_LIMIT <= 300  # grouping stays short on the shared event loop


async def test_inbox_never_exposes_resident_ids_and_shows_masked_text(
    session: AsyncSession,
) -> None:
    await _ask(session, "電話は090-1234-5678です。折り返してほしい", minutes=0)
    (group,) = await list_inbox(session)
    assert MASK in group.representative.question
    assert "5678" not in group.representative.question
    for item in group.items:
        assert not hasattr(item, "resident_id")


# -- actions ---------------------------------------------------------------------------------------


async def _statuses(session: AsyncSession, *ids: int) -> list[str]:
    rows = await session.execute(
        select(QuestionLog.id, QuestionLog.staff_status)
        .where(QuestionLog.id.in_(ids))
        .execution_options(populate_existing=True)
    )
    found = dict(rows.tuples().all())
    return [found[i] for i in ids]


async def test_dismiss_closes_only_the_shown_open_logs(session: AsyncSession) -> None:
    a = await _ask(session, "粗大ごみの出し方", minutes=0)
    b = await _ask(session, "粗大ゴミの出し方", minutes=1)
    (group,) = await list_inbox(session)
    late = await _ask(session, "粗大ごみの出し方？", minutes=2)  # arrives after the page
    assert await dismiss(session, group.log_ids) == 2
    assert await dismiss(session, group.log_ids) == 0  # a second click changes nothing
    await session.commit()
    assert await _statuses(session, a, b, late) == ["dismissed", "dismissed", "open"]
    assert [g.log_ids for g in await list_inbox(session)] == [(late,)]


async def test_create_entry_from_group_converts_its_logs(session: AsyncSession) -> None:
    a = await _ask(session, "犬の登録はどこで", minutes=0)
    b = await _ask(session, "犬の登録はどこで？", minutes=1)
    (group,) = await list_inbox(session)
    data = FaqEntryData(id="dog-1", question="犬の登録はどこでしますか？", answer="役場で。")
    result = await create_entry_from_group(session, group.log_ids, data, actor="staff1")
    await session.commit()
    assert result.closed == 2
    assert result.entry.id == "dog-1"
    assert result.entry.updated_by == "staff1"
    assert await _statuses(session, a, b) == ["converted", "converted"]
    assert await list_inbox(session) == []


async def test_create_entry_that_fails_validation_closes_nothing(session: AsyncSession) -> None:
    await _entry(session)
    a = await _ask(session, "犬の登録", minutes=0)
    await session.commit()
    with pytest.raises(FaqEntryExists):
        await create_entry_from_group(
            session, [a], FaqEntryData(id="gomi-1", question="q", answer="a"), actor="s"
        )
    await session.rollback()
    assert await _statuses(session, a) == ["open"]


async def test_add_as_alternative_appends_phrasing_and_converts(session: AsyncSession) -> None:
    await _entry(session)
    a = await _ask(session, "ソファを捨てたい", minutes=0)
    entry = await get_entry(session, "gomi-1")
    assert entry is not None
    result = await add_as_alternative(
        session,
        [a],
        entry_id="gomi-1",
        phrasing="  ソファを 捨てたい ",
        actor="staff1",
        expected_revision=entry.revision,
    )
    await session.commit()
    assert result.changed
    assert result.closed == 1
    assert result.entry.alternatives == ("ソファを 捨てたい",)
    assert result.entry.revision == entry.revision + 1
    assert await _statuses(session, a) == ["converted"]

    # The same phrasing again (full-width, other spacing) does not add a duplicate.
    b = await _ask(session, "ソファを 捨てたい", minutes=1)
    again = await add_as_alternative(
        session, [b], entry_id="gomi-1", phrasing="ソファを 捨てたい", actor="staff1"
    )
    assert not again.changed
    assert again.entry.alternatives == ("ソファを 捨てたい",)
    assert again.closed == 1


async def test_add_as_alternative_refuses_a_stale_revision(session: AsyncSession) -> None:
    await _entry(session)
    a = await _ask(session, "ソファを捨てたい", minutes=0)
    entry = await get_entry(session, "gomi-1")
    assert entry is not None
    await session.commit()
    await update_entry(
        session, FaqEntryData(id="gomi-1", question="粗大ごみ", answer="変更"), actor="other"
    )
    with pytest.raises(FaqConflict):
        await add_as_alternative(
            session,
            [a],
            entry_id="gomi-1",
            phrasing="ソファを捨てたい",
            actor="staff1",
            expected_revision=entry.revision,
        )
    await session.rollback()
    assert await _statuses(session, a) == ["open"]


async def test_open_items_returns_only_open_logs_newest_first(session: AsyncSession) -> None:
    a = await _ask(session, "犬の登録", minutes=0)
    b = await _ask(session, "犬の登録？", minutes=1)
    c = await _ask(session, "猫", minutes=2)
    await dismiss(session, [c])
    assert [item.log_id for item in await open_items(session, [a, b, c])] == [b, a]
    assert await open_items(session, []) == []
