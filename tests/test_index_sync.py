"""Staff edits reach the engine one entry at a time, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from faq.engine import FaqEngine, MatchThresholds
from faq.index_sync import FaqIndex
from faq.store import create_entry, delete_entry, update_entry
from faq.types import FaqEntryData
from madoguchi.db import session_scope

PIN = FaqEntryData(
    id="pin",
    question="マイナンバーカードの暗証番号を忘れました",
    answer="窓口で暗証番号を設定し直します。",
    alternatives=("暗証番号がわからない",),
)
QR = FaqEntryData(
    id="qr",
    question="QRコードはどうやって読み取りますか",
    answer="カメラアプリをQRコードに向けます。",
)
WIFI = FaqEntryData(
    id="wifi",
    question="Wi-Fiにつなぐにはどうしますか",
    answer="設定アプリでWi-Fiを選びます。",
)


def make_index() -> FaqIndex:
    return FaqIndex(FaqEngine(thresholds=MatchThresholds(answer=0.6, margin=0.06, suggest=0.38)))


async def test_load_then_refresh_applies_only_changes(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_scope(session_factory) as session:
        await create_entry(session, PIN, actor="staff")
        await create_entry(session, QR, actor="staff")
    index = make_index()
    async with session_factory() as session:
        assert await index.load(session) == 2
        report = await index.refresh(session)
    assert not report.changed  # nothing happened since the load

    # A new entry, an edited one and a deleted one, as staff would do them.
    async with session_scope(session_factory) as session:
        await create_entry(session, WIFI, actor="staff")
        await update_entry(
            session,
            replace(PIN, alternatives=("ぴんばんごうを失念",), answer="新しい説明です。"),
            actor="staff",
        )
        await delete_entry(session, "qr", actor="staff")
    async with session_factory() as session:
        report = await index.refresh(session)
    assert report.upserted == ("pin", "wifi")
    assert report.removed == ("qr",)
    assert len(index) == 2
    assert index.engine.get("pin") is not None
    assert index.engine.get("pin").answer == "新しい説明です。"  # type: ignore[union-attr]
    assert index.engine.rank("ワイファイにつなぎたい")[0].faq_id == "wifi"
    assert all(c.faq_id != "qr" for c in index.engine.rank("QRコードの読み取り"))


async def test_unpublishing_removes_and_republishing_restores(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_scope(session_factory) as session:
        await create_entry(session, PIN, actor="staff")
        await create_entry(session, QR, actor="staff")
    index = make_index()
    async with session_factory() as session:
        await index.load(session)

    async with session_scope(session_factory) as session:
        await update_entry(session, replace(QR, published=False), actor="staff")
    async with session_factory() as session:
        report = await index.refresh(session)
    assert report.removed == ("qr",)
    assert "qr" not in index.engine

    async with session_scope(session_factory) as session:
        await update_entry(session, replace(QR, published=True), actor="staff")
    async with session_factory() as session:
        report = await index.refresh(session)
    assert report.upserted == ("qr",)
    assert index.engine.rank("QRコードの読み取り")[0].faq_id == "qr"


async def test_refresh_matches_a_fresh_load(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_scope(session_factory) as session:
        for data in (PIN, QR, WIFI):
            await create_entry(session, data, actor="staff")
    index = make_index()
    async with session_factory() as session:
        await index.load(session)
    async with session_scope(session_factory) as session:
        await update_entry(session, replace(WIFI, question="無線LANの設定方法"), actor="staff")
    async with session_factory() as session:
        await index.refresh(session)
        fresh = make_index()
        await fresh.load(session)
    for query in ("無線LANの設定", "暗証番号を忘れた", "QRコード"):
        assert [c.faq_id for c in index.engine.rank(query)] == [
            c.faq_id for c in fresh.engine.rank(query)
        ]


async def test_running_app_picks_up_an_edit_made_elsewhere(tmp_path: Path) -> None:
    """An import from the command line while `madoguchi run` runs reaches the bot by itself."""
    from madoguchi.app import keep_faq_in_step, open_app
    from madoguchi.db import create_engine, create_session_factory
    from madoguchi.settings import Settings

    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'app.sqlite3'}")
    async with open_app(settings) as context:
        assert "wifi-test" not in context.faq_engine
        stop = asyncio.Event()
        refresher = asyncio.create_task(keep_faq_in_step(context, stop, 0.05))
        # Another process's connection, as `madoguchi faq import` would use.
        other = create_engine(settings.database_url)
        try:
            async with session_scope(create_session_factory(other)) as session:
                await create_entry(session, replace(WIFI, id="wifi-test"), actor="CSV取り込み")
        finally:
            await other.dispose()
        for _ in range(100):
            if "wifi-test" in context.faq_engine:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await refresher
        assert "wifi-test" in context.faq_engine
