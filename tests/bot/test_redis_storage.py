"""With MADOGUCHI_REDIS_URL the bot keeps its conversation state in Redis (several instances)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from botkit import Harness, build_harness

from bot import messages
from bot.factory import create_storage
from madoguchi.app import open_app
from madoguchi.settings import Settings

REDIS_URL = os.environ.get("MADOGUCHI_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(
    not REDIS_URL,
    reason="MADOGUCHI_TEST_REDIS_URL is not set: Redis tests skipped; .ci/run sets it",
)


async def test_storage_is_redis_and_round_trips() -> None:
    storage = create_storage(Settings(redis_url=REDIS_URL))
    assert isinstance(storage, RedisStorage)
    key = StorageKey(bot_id=1, chat_id=uuid.uuid4().int % 10**9, user_id=42)
    try:
        await storage.set_state(key, "asking")
        await storage.set_data(key, {"step": 2, "text": "暗証番号"})
        # A second instance (another storage object) sees the same state.
        other = create_storage(Settings(redis_url=REDIS_URL))
        try:
            assert await other.get_state(key) == "asking"
            assert await other.get_data(key) == {"step": 2, "text": "暗証番号"}
        finally:
            await other.close()
    finally:
        await storage.set_state(key, None)
        await storage.set_data(key, {})
        await storage.close()


@pytest.fixture
async def redis_harness(isolated_settings_env: Path, tmp_path: Path) -> AsyncIterator[Harness]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}", redis_url=REDIS_URL
    )
    async with open_app(settings) as context:
        harness = build_harness(context)
        try:
            yield harness
        finally:
            await harness.bot.session.close()
            await harness.dispatcher.storage.close()


async def test_flows_run_with_redis_storage(redis_harness: Harness) -> None:
    assert isinstance(redis_harness.dispatcher.storage, RedisStorage)
    user = 700_000_000 + uuid.uuid4().int % 1000
    (greeting,) = await redis_harness.text(user, "/start")
    assert [messages.BUTTON_ASK, messages.BUTTON_CATEGORIES] in greeting.reply_buttons
    sent = await redis_harness.text(user, "マイナンバーカードをなくしました")
    answer = sent[-1]
    assert "0120-95-0178" in "".join(s.text for s in sent)  # the loss hotline
    answer.button(messages.BUTTON_HELPFUL)  # the feedback buttons are there
