"""Question logs, feedback, residents and masking: the core services behind the bot."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, func, inspect, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from faq.inquiries import (
    leave_for_staff,
    list_feedback,
    list_unanswered,
    log_question,
    owned_question_log,
    record_feedback,
    set_staff_status,
)
from faq.inquiry_models import Feedback, QuestionLog
from faq.redact import MASK, redact
from madoguchi.db import Base, create_engine, create_session_factory, session_scope
from madoguchi.models import import_all_models
from madoguchi.residents import (
    LAST_SEEN_RESOLUTION,
    Resident,
    clear_blocked,
    delete_resident_data,
    get_or_create_resident,
    get_resident,
    mark_blocked,
    resident_data_summary,
    visit_resident,
)

import_all_models()

# -- masking --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("電話は090-1234-5678です", f"電話は{MASK}です"),
        ("09012345678に電話して", f"{MASK}に電話して"),
        ("０９０ー１２３４ー５６７８", MASK),
        ("０３（１２３４）５６７８まで", f"{MASK}まで"),
        ("(03) 1234-5678", MASK),
        ("+81 90 1234 5678", f"+{MASK}"),
        ("マイナンバーは123456789012です", f"マイナンバーは{MASK}です"),
        ("1234 5678 9012", MASK),
        ("番号１２３４５６７８９０１２", f"番号{MASK}"),
        ("taro.yamada+faq@example.co.jp に送って", f"{MASK} に送って"),
        ("ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ", MASK),
        ("メールはhanako@mail.example.jpです", f"メールは{MASK}です"),
    ],
)
def test_personal_numbers_and_addresses_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "暗証番号を3回まちがえた",
        "4桁の暗証番号",
        "12月3日14:00から",
        "手数料は1,000円",
        "郵便番号は123-456",  # 6 digits: kept
        "マイナンバーカード",
        "",
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert redact(text) == text


# -- schema ---------------------------------------------------------------------------------


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _foreign_keys(connection: Connection) -> dict[str, list[tuple[str, str | None]]]:
    inspector = inspect(connection)
    return {
        table: sorted(
            (fk["referred_table"], (fk.get("options") or {}).get("ondelete"))
            for fk in inspector.get_foreign_keys(table)
        )
        for table in ("question_logs", "feedback")
    }


async def test_migration_0002_matches_the_models(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_differences) == []
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {"residents", "question_logs", "feedback"} <= tables
        keys = await connection.run_sync(_foreign_keys)
    assert keys == {
        "question_logs": [("residents", "CASCADE")],
        "feedback": [("question_logs", "SET NULL"), ("residents", "CASCADE")],
    }


# -- residents ------------------------------------------------------------------------------


async def _resident(session: AsyncSession, telegram_user_id: int) -> int:
    return (await get_or_create_resident(session, telegram_user_id)).id


async def test_visit_resident_says_when_it_wrote(session: AsyncSession) -> None:
    """The bot commits the resident's row before its handlers run only when it changed."""
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    created, wrote = await visit_resident(session, 77, now=start)
    assert wrote and created.last_seen_at == start
    same, wrote = await visit_resident(session, 77, now=start + timedelta(minutes=1))
    assert not wrote and same.id == created.id
    later = start + LAST_SEEN_RESOLUTION
    refreshed, wrote = await visit_resident(session, 77, now=later)
    assert wrote and refreshed.last_seen_at == later


async def test_get_or_create_resident(session: AsyncSession) -> None:
    first = await get_or_create_resident(session, 10**12)  # a BigInteger id
    again = await get_or_create_resident(session, 10**12)
    assert first.id == again.id
    assert first.blocked_at is None
    assert first.created_at.tzinfo is not None
    later = first.last_seen_at + timedelta(hours=1)
    touched = await get_or_create_resident(session, 10**12, now=later)
    assert touched.last_seen_at == later
    assert touched.created_at == first.created_at
    # Stored, not only returned: read back (a minute later is within the resolution).
    stored = await get_or_create_resident(session, 10**12, now=later + timedelta(minutes=1))
    assert stored.last_seen_at == later
    await session.commit()


async def test_concurrent_first_contact_creates_one_resident(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async def contact() -> int:
        async with session_scope(session_factory) as session:
            return (await get_or_create_resident(session, 4242)).id

    ids = await asyncio.gather(*(contact() for _ in range(5)))
    assert len(set(ids)) == 1


async def test_telegram_user_id_is_unique(session: AsyncSession) -> None:
    now = datetime.now(UTC)
    session.add_all(
        [Resident(telegram_user_id=7, created_at=now, last_seen_at=now) for _ in range(2)]
    )
    with pytest.raises(IntegrityError):
        await session.flush()
    await session.rollback()


async def test_blocked_mark(session: AsyncSession) -> None:
    await _resident(session, 1)
    assert await mark_blocked(session, 1) is True
    assert await mark_blocked(session, 1) is True  # already marked: still known
    assert await mark_blocked(session, 999) is False
    resident = await get_resident(session, 1)
    assert resident is not None and resident.blocked_at is not None
    await clear_blocked(session, 1)
    resident = await get_resident(session, 1)
    assert resident is not None and resident.blocked_at is None


# -- question logs --------------------------------------------------------------------------


async def test_a_log_session_stores_the_question_at_once_and_holds_no_lock(
    database_url: str, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """The bot logs through an autocommit session: the row is visible to others as soon as
    log_question returns, and nothing stays locked (on SQLite, the file's one write lock,
    which another writer with no patience at all must get at once)."""
    async with session_scope(session_factory) as session:
        resident = await _resident(session, 1)
    log_engine = create_engine(database_url, autocommit=True)
    try:
        async with create_session_factory(log_engine)() as log_session:
            log_id = await log_question(
                log_session,
                resident_id=resident,
                channel="telegram",
                question="暗証番号を忘れました",
                outcome="answered",
                faq_id="mn-pin-forgotten",
                score=0.9,
            )
            # Still inside the log session, never committed by hand:
            async with session_factory() as other:
                entry = await owned_question_log(other, log_id, resident)
                assert entry is not None and entry.question == "暗証番号を忘れました"
                if database_url.startswith("sqlite"):
                    await other.execute(text("PRAGMA busy_timeout=0"))
                await other.execute(
                    update(QuestionLog).where(QuestionLog.id == log_id).values(score=0.5)
                )
                await other.commit()
    finally:
        await log_engine.dispose()


async def test_log_question_stores_masked_text(session: AsyncSession) -> None:
    resident = await _resident(session, 1)
    log_id = await log_question(
        session,
        resident_id=resident,
        channel="telegram",
        question="電話 090-1234-5678 の者です。暗証番号を忘れました",
        outcome="answered",
        faq_id="mn-pin-forgotten",
        score=0.9,
    )
    await session.commit()
    entry = await owned_question_log(session, log_id, resident)
    assert entry is not None
    assert entry.question == f"電話 {MASK} の者です。暗証番号を忘れました"
    assert "5678" not in entry.question
    assert (entry.outcome, entry.faq_id, entry.staff_status) == (
        "answered",
        "mn-pin-forgotten",
        "open",
    )
    with pytest.raises(ValueError, match="channel"):
        await log_question(
            session,
            resident_id=resident,
            channel="line",  # type: ignore[arg-type]
            question="x",
            outcome="fallback",
            faq_id=None,
            score=0.0,
        )


async def test_a_question_with_a_lone_surrogate_is_stored(session: AsyncSession) -> None:
    # JSON may carry half of a UTF-16 pair ("\ud800"); UTF-8 databases refuse it.
    resident = await _resident(session, 1)
    log_id = await log_question(
        session,
        resident_id=resident,
        channel="demo",
        question="暗証番号\ud800を忘れました",
        outcome="suggested",
        faq_id=None,
        score=0.5,
    )
    await session.commit()
    entry = await owned_question_log(session, log_id, resident)
    assert entry is not None and entry.question == "暗証番号を忘れました"


async def test_leave_for_staff_only_for_the_residents_own_question(session: AsyncSession) -> None:
    hanako = await _resident(session, 1)
    taro = await _resident(session, 2)
    log_id = await log_question(
        session,
        resident_id=hanako,
        channel="demo",
        question="プールは何時から？",
        outcome="fallback",
        faq_id=None,
        score=0.1,
    )
    assert await leave_for_staff(session, log_id, taro) is False
    assert await leave_for_staff(session, 999999, hanako) is False
    assert await owned_question_log(session, log_id, taro) is None
    entry = await owned_question_log(session, log_id, hanako)
    assert entry is not None and entry.left_for_staff is False
    assert await leave_for_staff(session, log_id, hanako) is True
    entry = await owned_question_log(session, log_id, hanako)
    assert entry is not None and entry.left_for_staff is True


async def test_list_unanswered_and_staff_status(session: AsyncSession) -> None:
    resident = await _resident(session, 1)
    base = datetime(2024, 12, 2, 1, 0, tzinfo=UTC)
    ids = {}
    for minutes, (name, outcome) in enumerate(
        [("answered", "answered"), ("fallback", "fallback"), ("suggested", "suggested")]
    ):
        ids[name] = await log_question(
            session,
            resident_id=resident,
            channel="telegram",
            question=name,
            outcome=outcome,  # type: ignore[arg-type]
            faq_id="mn-pin-types" if outcome == "answered" else None,
            score=0.5,
            now=base + timedelta(minutes=minutes),
        )
    await leave_for_staff(session, ids["suggested"], resident)
    open_items = await list_unanswered(session)
    assert [item.id for item in open_items] == [ids["suggested"], ids["fallback"]]
    assert [item.id for item in await list_unanswered(session, left_for_staff_only=True)] == [
        ids["suggested"]
    ]
    assert await set_staff_status(session, ids["fallback"], "dismissed") is True
    assert [item.id for item in await list_unanswered(session)] == [ids["suggested"]]
    assert [item.id for item in await list_unanswered(session, status="dismissed")] == [
        ids["fallback"]
    ]
    assert await set_staff_status(session, 999999, "converted") is False


# -- feedback -------------------------------------------------------------------------------


async def test_feedback_one_vote_per_question_and_entry(session: AsyncSession) -> None:
    hanako = await _resident(session, 1)
    taro = await _resident(session, 2)
    log_id = await log_question(
        session,
        resident_id=hanako,
        channel="telegram",
        question="暗証番号",
        outcome="suggested",
        faq_id=None,
        score=0.5,
    )

    async def vote(resident: int, faq_id: str, helpful: bool, log: int | None = log_id) -> str:
        return await record_feedback(
            session, resident_id=resident, faq_id=faq_id, helpful=helpful, question_log_id=log
        )

    assert await vote(hanako, "mn-pin-types", True) == "recorded"
    assert await vote(hanako, "mn-pin-types", True) == "unchanged"
    assert await vote(hanako, "mn-pin-types", False) == "changed"
    assert await vote(hanako, "mn-pin-locked", True) == "recorded"  # another candidate
    assert await vote(hanako, "mn-pin-types", True, None) == "recorded"  # while browsing
    assert await vote(hanako, "mn-pin-types", True, None) == "unchanged"
    assert await vote(taro, "mn-pin-types", True) == "rejected"  # not Taro's question
    assert await vote(taro, "mn-pin-types", True, 999999) == "rejected"
    await session.commit()
    votes = await list_feedback(session)
    assert {(v.resident_id, v.question_log_id, v.faq_id, v.helpful) for v in votes} == {
        (hanako, log_id, "mn-pin-types", False),
        (hanako, log_id, "mn-pin-locked", True),
        (hanako, None, "mn-pin-types", True),
    }
    assert [v.faq_id for v in await list_feedback(session, faq_id="mn-pin-locked")] == [
        "mn-pin-locked"
    ]


async def test_concurrent_double_tap_counts_once(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_scope(session_factory) as session:
        resident = await _resident(session, 1)

    async def tap() -> str:
        async with session_scope(session_factory) as session:
            return await record_feedback(
                session, resident_id=resident, faq_id="mn-pin-types", helpful=True
            )

    outcomes = await asyncio.gather(tap(), tap(), tap())
    assert "recorded" in outcomes
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Feedback)) == 1


# -- /mydata ----------------------------------------------------------------------------------


async def _populate(session: AsyncSession, telegram_user_id: int) -> int:
    resident = await _resident(session, telegram_user_id)
    for outcome in ("answered", "fallback"):
        log_id = await log_question(
            session,
            resident_id=resident,
            channel="telegram",
            question="質問",
            outcome=outcome,  # type: ignore[arg-type]
            faq_id="mn-pin-types" if outcome == "answered" else None,
            score=0.5,
        )
    await leave_for_staff(session, log_id, resident)
    await record_feedback(
        session, resident_id=resident, faq_id="mn-pin-types", helpful=True, question_log_id=log_id
    )
    return resident


async def test_summary_and_deletion_of_one_residents_data(session: AsyncSession) -> None:
    hanako = await _populate(session, 1)
    taro = await _populate(session, 2)
    await session.commit()
    summary = await resident_data_summary(session, hanako)
    assert (summary.questions, summary.questions_left_for_staff, summary.feedback) == (2, 1, 1)

    deleted = await delete_resident_data(session, hanako)
    await session.commit()
    assert (deleted.residents, deleted.questions, deleted.feedback) == (1, 2, 1)
    assert await get_resident(session, 1) is None
    remaining = await session.execute(select(QuestionLog.resident_id))
    assert {row[0] for row in remaining} == {taro}
    remaining = await session.execute(select(Feedback.resident_id))
    assert {row[0] for row in remaining} == {taro}
    with pytest.raises(LookupError):
        await resident_data_summary(session, hanako)


async def test_foreign_keys_cascade_in_the_database(session: AsyncSession) -> None:
    hanako = await _populate(session, 1)
    taro = await _populate(session, 2)
    await session.commit()
    await session.execute(delete(Resident).where(Resident.id == hanako))  # plain SQL delete
    await session.commit()
    logs = await session.execute(select(QuestionLog.resident_id))
    assert {row[0] for row in logs} == {taro}
    votes = await session.execute(select(Feedback.resident_id))
    assert {row[0] for row in votes} == {taro}
