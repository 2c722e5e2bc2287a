"""Fixtures of the fast bot tests: a fresh app (migrated, seeded database; FAQ index) and a
harness per test. `harness` runs on SQLite only; `db_harness` on SQLite and PostgreSQL, for
tests where database behaviour matters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from botkit import Harness, bot_settings, build_harness

from madoguchi.app import open_app


async def _harness(database_url: str) -> AsyncIterator[Harness]:
    async with open_app(bot_settings(database_url)) as context:
        harness = build_harness(context)
        try:
            yield harness
        finally:
            await harness.bot.session.close()


@pytest.fixture
async def harness(isolated_settings_env: Path, tmp_path: Path) -> AsyncIterator[Harness]:
    async for item in _harness(f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"):
        yield item


@pytest.fixture
async def db_harness(isolated_settings_env: Path, database_url: str) -> AsyncIterator[Harness]:
    async for item in _harness(database_url):
        yield item
