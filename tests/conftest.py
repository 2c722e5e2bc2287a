"""Shared fixtures.

Database tests take `database_url`, `engine`, `session_factory` or `session` and then run
once per backend: SQLite (a file in tmp_path) and PostgreSQL (a throwaway database on the
server named by MADOGUCHI_TEST_POSTGRES_URL; skipped when that is unset). Each test gets a
freshly migrated, empty database of its own.
"""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from madoguchi.db import create_engine, create_session_factory, upgrade_database

POSTGRES_URL_VARIABLE = "MADOGUCHI_TEST_POSTGRES_URL"
TEST_DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    """Folder of small fixture files (e.g. a sample FAQ)."""
    return TEST_DATA


@asynccontextmanager
async def _postgres_database(server_url: str) -> AsyncIterator[str]:
    """Create a uniquely named database on the server, yield its URL, drop it afterwards."""
    name = f"madoguchi_test_{uuid.uuid4().hex[:16]}"
    # NullPool + AUTOCOMMIT: CREATE/DROP DATABASE cannot run inside a transaction.
    admin = create_async_engine(server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                # Connections a failed test left open would block DROP DATABASE.
                await connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        await admin.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """URL of a freshly migrated, empty database (one per test and backend)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'madoguchi.sqlite3'}"
        await upgrade_database(url)
        yield url
        return
    server_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not server_url:
        pytest.skip(
            f"{POSTGRES_URL_VARIABLE} is not set: PostgreSQL tests skipped; .ci/run sets it"
        )
    async with _postgres_database(server_url) as url:
        await upgrade_database(url)
        yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@pytest.fixture
async def session(session_factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One session; tests commit themselves where they mean to."""
    async with session_factory() as session:
        yield session


# -- environment isolation (added for the CLI, web, service and synonym tests) ------------------

DEPLOYMENT_VARIABLES = ("BOT_TOKEN", "TELEGRAM_API_BASE")


def _is_deployment_variable(name: str) -> bool:
    """Variables that Settings reads; MADOGUCHI_TEST_* configure the tests and are kept."""
    if name.startswith("MADOGUCHI_TEST_"):
        return False
    return name.startswith("MADOGUCHI_") or name in DEPLOYMENT_VARIABLES


@pytest.fixture(autouse=True)
def _without_word_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Engines built from settings get no word-vector table, whether or not `make` built one
    in ./var: rankings in the tests do not depend on the checkout (test_wordvectors.py gives
    its engines small tables of its own)."""
    monkeypatch.setenv("MADOGUCHI_FAQ_WORD_VECTORS", "")


@pytest.fixture
def isolated_settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No deployment variables and no `.env` (cwd is tmp_path): Settings see defaults only."""
    for name in list(os.environ):
        if _is_deployment_variable(name):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for the `madoguchi` command in a subprocess (run it with cwd=tmp_path).

    The developer's deployment variables are dropped; the database is a SQLite file in
    tmp_path; output is UTF-8 whatever the machine's locale.
    """
    env = {name: value for name, value in os.environ.items() if not _is_deployment_variable(name)}
    env["MADOGUCHI_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'madoguchi.sqlite3'}"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


# -- word vectors (test_wordvectors.py, test_cli.py) ---------------------------------------------


def _msgpack_map(items: dict[int, int]) -> bytes:
    """A msgpack map as spaCy writes key2row (uint64 keys, small rows)."""
    out = bytearray(b"\xde" + len(items).to_bytes(2, "big"))
    for key, row in items.items():
        out += b"\xcf" + key.to_bytes(8, "big")
        out += bytes([row]) if row < 0x80 else b"\xcd" + row.to_bytes(2, "big")
    return bytes(out)


@pytest.fixture
def fake_ginza_wheel(tmp_path: Path) -> Path:
    """A wheel laid out like ja_ginza's: vocab strings, key2row by MurmurHash64A, vectors
    (盗難, カード, 引っ越し have rows; no-vector has none)."""
    from faq.wordvectors import murmurhash64a

    strings = ["盗難", "カード", "引っ越し", "no-vector"]
    rows = {murmurhash64a(w.encode()): r for r, w in enumerate(strings[:3])}
    vectors = np.array([[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]], dtype=np.float32)
    wheel = tmp_path / "ja_ginza-5.3.0-py3-none-any.whl"
    buffer = io.BytesIO()
    np.save(buffer, vectors)
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("ja_ginza/ja_ginza-5.3.0/vocab/strings.json", json.dumps(strings))
        archive.writestr("ja_ginza/ja_ginza-5.3.0/vocab/key2row", _msgpack_map(rows))
        archive.writestr("ja_ginza/ja_ginza-5.3.0/vocab/vectors", buffer.getvalue())
    return wheel
