"""Database plumbing: declarative base, engine and session factories, migrations.

Nothing here is created at import time: callers build an engine from settings and pass
session factories down (see DESIGN.md, "no module-level engine").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from madoguchi.settings import sqlite_file_of

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes, stored as UTC on every backend.

    SQLite keeps no zone, so values come back naive; this type refuses naive input and
    always returns aware UTC datetimes, so code never compares naive with aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012


def utcnow() -> datetime:
    return datetime.now(UTC)


def _enable_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers work while one writer commits; busy_timeout makes concurrent writers
    # wait instead of failing at once with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(
    database_url: str, *, echo: bool = False, autocommit: bool = False
) -> AsyncEngine:
    """An async engine for the URL; SQLite files get their folder created and sane pragmas.

    `autocommit`: every statement commits on its own, for single-statement writes on the
    bot's busy path (the question log). SQLite has one write lock for the whole file. In a
    transaction, the lock taken by an INSERT is held until the COMMIT, a separate round trip
    to the database thread that waits behind every other update on the event loop: with many
    residents writing at once (or several bot processes on one file), writers queued in
    SQLite's busy handler for up to seconds. A statement that commits by itself holds the lock
    only while SQLite runs it.
    """
    sqlite_file = sqlite_file_of(database_url)
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    # Pinging before each checkout guards against a database server that dropped the
    # connection; a local SQLite file cannot, so it would only add a round trip per update.
    # hide_parameters: a failed statement's error (logged by the bot's error handler) must not
    # carry residents' names or phone numbers from its bound values.
    engine = create_async_engine(
        database_url,
        echo=echo,
        pool_pre_ping=sqlite_file is None,
        hide_parameters=True,
        **(
            # Nothing is ever left open to roll back on check-in.
            {"isolation_level": "AUTOCOMMIT", "pool_reset_on_return": None} if autocommit else {}
        ),
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _enable_sqlite_pragmas)
    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def session_scope(
    factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One session, committed when the block succeeds and rolled back when it raises."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade_database_sync(database_url: str, revision: str = "head") -> None:
    """Run Alembic migrations up to `revision` (blocking; creates the SQLite folder)."""
    from alembic import command

    sqlite_file = sqlite_file_of(database_url)
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), revision)


async def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Migrate from async code: Alembic's async env runs its own loop, so use a thread."""
    await asyncio.to_thread(upgrade_database_sync, database_url, revision)
