"""The black-box run of issue 4: `madoguchi run` in a subprocess with BOT_TOKEN set and
TELEGRAM_API_BASE pointing at a fake Bot API on 127.0.0.1 that this test runs."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from e2ekit import COUNTER_PHONE, LOSS_HOTLINE, LOST_QUESTION, UNKNOWN_QUESTION, Resident

from bot import messages
from bot.fake_api import FakeBotAPI

TOKEN = "777000:BLACK-BOX-TOKEN"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def madoguchi_command() -> list[str]:
    script = Path(sys.executable).parent / "madoguchi"
    return [str(script)] if script.exists() else [sys.executable, "-m", "madoguchi.cli"]


class RunningApp:
    def __init__(self, process: asyncio.subprocess.Process, workers: int = 1) -> None:
        self.process = process
        self.workers = workers
        self.lines: list[str] = []

    async def wait_for_line(self, marker: str, timeout: float = 60) -> str:
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            for line in self.lines:
                if marker in line:
                    return line
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    pytest.fail(f"output ended before {marker!r}: {''.join(self.lines)}")
                line = raw.decode("utf-8")
                self.lines.append(line)
                if marker in line:
                    return line


# The whole run once as one process and once with two bot worker processes.
@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers"])
async def app(
    request: pytest.FixtureRequest, api: FakeBotAPI, cli_env: dict[str, str], tmp_path: Path
) -> AsyncIterator[RunningApp]:
    env = {
        **cli_env,
        "MADOGUCHI_BOT_WORKERS": str(request.param),
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": api.base_url or "",
        "MADOGUCHI_HTTP_HOST": "127.0.0.1",
        "MADOGUCHI_HTTP_PORT": str(free_port()),
        "MADOGUCHI_COUNTER_PHONE": COUNTER_PHONE,
    }
    stderr = (tmp_path / "stderr.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        *madoguchi_command(),
        "run",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )
    try:
        yield RunningApp(process, workers=request.param)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        stderr.close()


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    fake = FakeBotAPI(token=TOKEN)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def test_black_box_run(app: RunningApp, api: FakeBotAPI, tmp_path: Path) -> None:
    running = await app.wait_for_line("madoguchi is running")
    url = running.split("madoguchi is running:", 1)[1].strip()
    await app.wait_for_line("Telegram bot: polling")
    if app.workers > 1:
        await app.wait_for_line(f"Telegram bot: {app.workers} worker processes")
    await api.wait_until(lambda: bool(api.calls_of("getUpdates")), timeout=30)

    hanako = Resident(api, user_id=8001, timeout=15)
    greeting = await hanako.say("/start")
    assert "まどぐち" in (greeting.text or "")
    assert [b for row in greeting.keyboard or [] for b in row] == list(messages.MENU_BUTTONS)

    answer = await hanako.say(LOST_QUESTION)
    assert (answer.text or "").startswith("■ ")
    assert LOSS_HOTLINE in (answer.text or "")
    assert answer.button_texts() == [
        messages.BUTTON_HELPFUL,
        messages.BUTTON_NOT_HELPFUL,
        messages.BUTTON_MENU,
    ]

    fallback = await hanako.say(UNKNOWN_QUESTION)
    assert "お答えできませんでした" in (fallback.text or "")
    assert COUNTER_PHONE in (fallback.text or "")

    api.send_sticker(hanako.user_id)
    (polite,) = await api.wait_for_messages(hanako.user_id, timeout=15)
    assert polite.text == messages.NOT_TEXT

    long_reply = await hanako.say(("マイナンバーカードの暗証番号😀" * 400)[:4096])
    assert long_reply.text
    update_id = api.press_button(hanako.user_id, answer.message_id, "f:0:forged:1")
    await api.wait_for_callback_answer(api.callback_query_id_of(update_id), timeout=15)
    update_id = api.press_button(hanako.user_id, answer.message_id, "\u0000💥" * 10)
    await api.wait_for_callback_answer(api.callback_query_id_of(update_id), timeout=15)

    # Still alive and well: no apology anywhere, the health check and /start still answer.
    assert app.process.returncode is None
    assert not any(messages.APOLOGY in (m.text or "") for m in api.messages(hanako.user_id))
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{url.rstrip('/')}/healthz") as response:
            assert response.status == 200
            assert (await response.json())["status"] == "ok"
        async with client.get(url) as response:  # with a token, no demo chat
            assert "Telegram" in await response.text()
    assert (await hanako.say("/menu")).text == messages.MENU

    os.kill(app.process.pid, signal.SIGINT)
    async with asyncio.timeout(20):
        assert await app.process.wait() == 0
    await app.wait_for_line("stopped", timeout=5)
    log = (tmp_path / "stderr.log").read_text("utf-8")
    assert "Traceback" not in log
    assert "ERROR" not in log


async def test_a_refused_token_is_explained(
    api: FakeBotAPI, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **cli_env,
        "BOT_TOKEN": "777000:WRONG",  # the fake API knows another token
        "TELEGRAM_API_BASE": api.base_url or "",
        "MADOGUCHI_HTTP_PORT": str(free_port()),
    }
    process = await asyncio.create_subprocess_exec(
        *madoguchi_command(),
        "run",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _, stderr = await process.communicate()
    assert process.returncode == 1
    message = stderr.decode("utf-8")
    assert "BOT_TOKEN を確かめてください" in message
    assert "Traceback" not in message
