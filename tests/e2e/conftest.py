"""Fixtures of the end-to-end tests: per test a fresh database, FAQ index, fake Bot API on
127.0.0.1 and the production BotRuntime polling it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from e2ekit import TOWN, Resident

from bot.fake_api import FakeBotAPI
from bot.runner import BotRuntime
from madoguchi.app import AppContext, open_app
from madoguchi.settings import Settings


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    fake = FakeBotAPI(token="424242:E2E-TEST-TOKEN")
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def context(isolated_settings_env: Path, tmp_path: Path) -> AsyncIterator[AppContext]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'e2e.sqlite3'}",
        **TOWN,  # type: ignore[arg-type]
    )
    async with open_app(settings) as context:
        yield context


@pytest.fixture
async def runtime(context: AppContext, api: FakeBotAPI) -> AsyncIterator[BotRuntime]:
    assert api.base_url is not None
    runtime = BotRuntime(context, token=api.token, api_base=api.base_url)
    await runtime.start_polling()
    try:
        yield runtime
    finally:
        await runtime.stop()


@pytest.fixture
def hanako(api: FakeBotAPI, runtime: BotRuntime) -> Resident:
    return Resident(api, user_id=5001)


@pytest.fixture
def taro(api: FakeBotAPI, runtime: BotRuntime) -> Resident:
    return Resident(api, user_id=5002)
