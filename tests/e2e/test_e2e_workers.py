"""Several bot processes (MADOGUCHI_BOT_WORKERS): this process polls the fake Bot API and
hands updates to real worker processes, which answer through the same dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any, cast

from e2ekit import LOSS_HOTLINE, LOST_QUESTION, TOWN, Resident, menu_of

from bot import messages
from bot.fake_api import FakeBotAPI
from bot.runner import BotRuntime
from bot.workers import WorkerPool, poll_into, resident_key, settings_payload
from madoguchi.app import AppContext
from madoguchi.settings import Settings

# Worker start-up imports the stack and builds the FAQ index: allow for a slow machine.
SLOW = 60.0


def test_resident_key_follows_the_user_of_any_update_kind() -> None:
    message = {"update_id": 7, "message": {"from": {"id": 41}, "chat": {"id": 41}}}
    callback = {"update_id": 8, "callback_query": {"id": "x", "from": {"id": 42}}}
    member = {"update_id": 9, "my_chat_member": {"chat": {"id": 43}, "from": {"id": 43}}}
    unknown = {"update_id": 10, "something_new": {"no": "user"}}
    assert [resident_key(u) for u in (message, callback, member, unknown)] == [41, 42, 43, 10]


def test_settings_reach_the_workers_whole_secrets_included(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}",
        bot_token="123:SECRET",  # type: ignore[arg-type]
        webhook_url="https://example.jp",
        webhook_secret="hook-secret",  # type: ignore[arg-type]
        bot_workers=3,
        **TOWN,  # type: ignore[arg-type]
    )
    again = Settings(**settings_payload(settings))
    assert again == settings
    assert again.bot_token is not None and again.bot_token.get_secret_value() == "123:SECRET"


async def test_two_workers_answer_residents_and_a_dead_worker_is_replaced(
    context: AppContext, api: FakeBotAPI
) -> None:
    runtime = BotRuntime(context, token=api.token, api_base=api.base_url, workers=2)
    await runtime.start_polling()
    try:
        pids = runtime.worker_pids()
        assert len(pids) == 2 and os.getpid() not in pids
        # Residents 6000 and 6001 land on different workers (user id modulo 2).
        hanako, taro = Resident(api, 6000, timeout=SLOW), Resident(api, 6001, timeout=SLOW)
        greetings = await asyncio.gather(hanako.say("/start"), taro.say("/start"))
        for greeting in greetings:
            assert menu_of(greeting)[:2] == [messages.BUTTON_ASK, messages.BUTTON_CATEGORIES]
        answer = await hanako.say(LOST_QUESTION)
        assert LOSS_HOTLINE in (answer.text or "")
        assert messages.BUTTON_HELPFUL in answer.button_texts()

        # The worker of even user ids dies; the next update finds it dead and a new one
        # answers it.
        os.kill(pids[0], signal.SIGKILL)
        await asyncio.sleep(0.5)
        again = await hanako.say(LOST_QUESTION)
        assert LOSS_HOTLINE in (again.text or "")
        new_pids = runtime.worker_pids()
        assert new_pids[0] != pids[0] and new_pids[1] == pids[1]
        # Buttons sent before the worker died work with the new one.
        assert await hanako.taps(answer, messages.BUTTON_HELPFUL, replies=0) == []
        assert api.callback_answers[-1].text == messages.FEEDBACK_THANKS
    finally:
        await runtime.stop()
    assert still_running(new_pids) == [], "workers still running after stop"


def still_running(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive


class RecordingPool:
    """Stands in for the worker pool: what polling hands on."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def dispatch(self, update: dict[str, Any]) -> None:
        self.updates.append(update)
        self.arrived.set()


async def test_polling_for_workers_goes_on_after_telegram_errors(api: FakeBotAPI) -> None:
    """A 5xx and then a 429 from getUpdates: polling waits and asks again, nothing is lost."""
    api.fail_next("getUpdates", status=502)
    api.fail_next("getUpdates", status=429, retry_after=1)
    api.send_text(6100, LOST_QUESTION)
    pool = RecordingPool()
    polling = asyncio.create_task(
        poll_into(
            cast(WorkerPool, pool), token=api.token, api_base=api.base_url, allowed_updates=[]
        )
    )
    try:
        async with asyncio.timeout(SLOW):
            await pool.arrived.wait()
    finally:
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
    assert [u["message"]["text"] for u in pool.updates] == [LOST_QUESTION]
    assert len(api.calls_of("getUpdates")) >= 3
