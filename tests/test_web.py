"""The web server: the demo chat (in-process, with the real bot polling a fake Bot API), the
health check, the Telegram webhook, and `madoguchi run` for real."""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest
from aiogram.types import BufferedInputFile
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot import messages
from bot.demo import COOKIE_NAME, DemoChat
from bot.factory import create_bot
from bot.fake_api import FakeBotAPI
from bot.runner import BotRuntime
from madoguchi.app import AppContext, open_app
from madoguchi.settings import Settings
from madoguchi.web import create_web_app

Client = TestClient[web.Request, web.Application]

COUNTER_PHONE = "0999-11-2222"
LOSS_HOTLINE = "0120-95-0178"  # in the answer of the curated entry mn-lost-stolen
LOST_QUESTION = "マイナンバーカードをなくしました"


@pytest.fixture
async def context(isolated_settings_env: Path) -> AsyncIterator[AppContext]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{isolated_settings_env / 'web.sqlite3'}",
        http_port=0,
        counter_phone=COUNTER_PHONE,
        town_name="みどり町<script>",
    )
    async with open_app(settings) as context:
        yield context


@pytest.fixture
async def demo(context: AppContext) -> AsyncIterator[DemoChat]:
    """The demo as `madoguchi run` builds it: fake API, the real bot polling it, the page."""
    api = FakeBotAPI(token="5550001:WEB-TEST")
    base = await api.start()
    runtime = BotRuntime(context, token=api.token, api_base=base)
    await runtime.start_polling()
    try:
        yield DemoChat(api, town_name=context.settings.town_name)
    finally:
        await runtime.stop()
        await api.stop()


@pytest.fixture
async def client(context: AppContext, demo: DemoChat) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_web_app(context, demo=demo))) as client:
        yield client


async def get_page(client: Client) -> str:
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.charset == "utf-8"
    return await response.text()


async def send(client: Client, text: str) -> None:
    response = await client.post("/demo/api/send", json={"text": text})
    assert response.status == 200, await response.text()


async def fetch(client: Client, since: int = 0, wait: float = 0) -> dict[str, Any]:
    response = await client.get(f"/demo/api/messages?since={since}&wait={wait}")
    assert response.status == 200
    data: dict[str, Any] = await response.json()
    return data


async def bot_replies(client: Client, count: int = 1, since: int = 0) -> list[dict[str, Any]]:
    """Long-poll until `count` bot messages changed after `since` (as the page does)."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        data = await fetch(client, since, wait=2)
        found += [m for m in data["messages"] if m["from_bot"]]
        since = data["revision"]
        if len(found) >= count:
            return found
    pytest.fail(f"expected {count} bot replies, got {found!r}")


async def test_demo_page(client: Client) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.charset == "utf-8"
    page = await response.text()
    assert '<meta charset="utf-8">' in page
    assert "体験版" in page
    assert "実際のTelegramやLINEではありません" in page
    assert "はじめる" in page
    assert "みどり町&lt;script&gt;" in page  # escaped
    assert "<script>" not in page.replace('<script nonce="', "")
    assert "innerHTML" not in page  # the script only ever sets textContent
    assert COOKIE_NAME in response.cookies
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'nonce-" in policy
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'<script nonce="{nonce}">' in page


async def test_demo_chat_start_and_answer(client: Client) -> None:
    assert (await fetch(client))["messages"] == []
    await send(client, "/start")
    (greeting,) = await bot_replies(client)
    assert "まどぐち" in greeting["text"]
    data = await fetch(client)
    assert data["keyboard"] == [
        list(row) for row in [messages.MENU_BUTTONS[:2], messages.MENU_BUTTONS[2:]]
    ]
    assert [m["from_bot"] for m in data["messages"]] == [False, True]  # both sides shown

    await send(client, LOST_QUESTION)
    (answer,) = await bot_replies(client, since=data["revision"])
    assert LOSS_HOTLINE in answer["text"]
    labels = [b["text"] for row in answer["inline_keyboard"] for b in row]
    assert labels == [messages.BUTTON_HELPFUL, messages.BUTTON_NOT_HELPFUL, messages.BUTTON_MENU]

    revision = (await fetch(client))["revision"]
    menu_data = answer["inline_keyboard"][1][0]["callback_data"]
    response = await client.post(
        "/demo/api/press", json={"message_id": answer["message_id"], "data": menu_data}
    )
    assert response.status == 200
    (menu,) = await bot_replies(client, since=revision)
    assert menu["text"] == messages.MENU


async def test_unknown_question_shows_the_counter(client: Client) -> None:
    await send(client, "今日の天気は？")
    (reply,) = await bot_replies(client)
    assert "お答えできませんでした" in reply["text"]
    assert COUNTER_PHONE in reply["text"]


async def test_visitors_do_not_see_each_other(client: Client, demo: DemoChat) -> None:
    await send(client, "/start")
    await bot_replies(client)
    async with TestClient(TestServer(client.server.app)) as other:  # type: ignore[arg-type]
        assert (await fetch(other))["messages"] == []
        await send(other, "/help")
        (help_reply,) = await bot_replies(other)
        assert "使い方" in help_reply["text"]
    texts = [m["text"] for m in (await fetch(client))["messages"]]
    assert "/help" not in texts
    assert len(demo.api.calls_of("sendMessage")) == 2


async def test_old_demo_sessions_are_forgotten(context: AppContext, demo: DemoChat) -> None:
    small = DemoChat(demo.api, town_name="みどり町", max_visitors=1)
    app = web.Application()
    small.add_routes(app)
    async with TestClient(TestServer(app)) as first, TestClient(TestServer(app)) as second:
        await send(first, "/start")
        await bot_replies(first)
        await send(second, "/start")  # the second visitor pushes the first one out
        await bot_replies(second)
        assert len(demo.api.calls_of("sendMessage")) == 2
        data = await fetch(first)  # a new, empty chat
        assert data["messages"] == []
        assert data["revision"] == 0


async def test_only_real_buttons_can_be_pressed(client: Client) -> None:
    await send(client, "/start")
    (greeting,) = await bot_replies(client)
    for body in (
        {"message_id": greeting["message_id"], "data": "f:1:forged:1"},  # not on the message
        {"message_id": 999, "data": "m:m"},
        {"message_id": "1", "data": "m:m"},
        {"data": "m:m"},
    ):
        response = await client.post("/demo/api/press", json=body)
        assert response.status == 400
        assert (await response.json())["error"] == "そのボタンは、もう使えません。"


@pytest.mark.parametrize(
    ("text", "status"),
    [("", 400), ("   ", 400), ("あ" * 4097, 400), ("あ" * 4096, 200), ("😀" * 10, 200)],
)
async def test_send_checks_the_text(client: Client, text: str, status: int) -> None:
    response = await client.post("/demo/api/send", json={"text": text})
    assert response.status == status
    if status == 400:
        assert "ok" in await response.json()


async def test_lone_surrogates_do_not_break_the_chat(client: Client) -> None:
    # JSON's "\ud800" is half a UTF-16 pair; echoed back it made every later poll fail.
    await send(client, "暗証番号\ud800を忘れました")
    data = await fetch(client)
    assert data["messages"][0]["text"] == "暗証番号を忘れました"
    await bot_replies(client)
    response = await client.post("/demo/api/send", json={"text": "\udfff"})
    assert response.status == 400  # nothing left to send


async def test_send_needs_json(client: Client) -> None:
    response = await client.post("/demo/api/send", data={"text": "x"})
    assert response.status == 415


async def test_markup_in_messages_stays_text(client: Client) -> None:
    await send(client, '<img src=x onerror="alert(1)">')
    data = await fetch(client)
    assert data["messages"][0]["text"] == '<img src=x onerror="alert(1)">'  # JSON, set as text
    await bot_replies(client)


async def test_documents_are_downloadable(client: Client, demo: DemoChat) -> None:
    await send(client, "/start")
    await bot_replies(client)
    (chat_id,) = {call.params["chat_id"] for call in demo.api.calls_of("sendMessage")}
    assert demo.api.base_url is not None
    sender = create_bot(demo.api.token, api_base=demo.api.base_url)  # e.g. a class's .ics
    try:
        content = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
        await sender.send_document(chat_id, BufferedInputFile(content, "スマホ教室.ics"))
    finally:
        await sender.session.close()
    data = await fetch(client)
    (document,) = [m for m in data["messages"] if m["document"]]
    assert document["document"]["file_name"] == "スマホ教室.ics"
    response = await client.get(f"/demo/api/document/{document['message_id']}")
    assert response.status == 200
    assert await response.read() == content
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    async with TestClient(TestServer(client.server.app)) as other:  # type: ignore[arg-type]
        response = await other.get(f"/demo/api/document/{document['message_id']}")
        assert response.status == 404  # another visitor's chat


async def test_healthz(client: Client, context: AppContext) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    data = await response.json()
    assert data["status"] == "ok"
    assert data["faq_entries"] > 0
    assert data["faq_entries"] == len(context.faq_engine)


async def test_unknown_path_is_404(client: Client) -> None:
    response = await client.get("/no-such-page")
    assert response.status == 404


async def test_with_a_token_the_page_points_to_telegram(context: AppContext) -> None:
    async with TestClient(TestServer(create_web_app(context))) as client:
        page = await get_page(client)
        assert "Telegram" in page
        assert COUNTER_PHONE in page
        assert (await client.get("/demo/api/messages")).status == 404


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
async def test_webhook_mode(isolated_settings_env: Path, workers: int) -> None:
    """Webhook mode: the secret is checked on every request and updates reach the bot (or,
    with MADOGUCHI_BOT_WORKERS, its worker processes)."""
    api = FakeBotAPI(token="5550002:WEBHOOK-TEST")
    base = await api.start()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{isolated_settings_env / 'hook.sqlite3'}",
        webhook_url="https://madoguchi.example.jp",
        webhook_secret="s3cret-token_value",  # type: ignore[arg-type]
    )
    try:
        async with open_app(settings) as context:
            runtime = BotRuntime(context, token=api.token, api_base=base, workers=workers)
            app = create_web_app(context, setup=runtime.setup_webhook)
            try:
                async with TestClient(TestServer(app)) as client:
                    assert api.webhook_url == "https://madoguchi.example.jp/telegram/webhook"
                    assert len(runtime.worker_pids()) == (workers if workers > 1 else 0)
                    api.send_text(4321, "/start")  # opens the chat on the fake's side
                    update = {
                        "update_id": 1,
                        "message": {
                            "message_id": 1,
                            "date": 1_700_000_000,
                            "chat": {"id": 4321, "type": "private", "first_name": "花子"},
                            "from": {"id": 4321, "is_bot": False, "first_name": "花子"},
                            "text": "/start",
                        },
                    }
                    refused = await client.post("/telegram/webhook", json=update)
                    assert refused.status == 401
                    wrong = await client.post(
                        "/telegram/webhook",
                        json=update,
                        headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                    )
                    assert wrong.status == 401
                    assert api.messages(4321) == []
                    accepted = await client.post(
                        "/telegram/webhook",
                        json=update,
                        headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token_value"},
                    )
                    assert accepted.status == 200
                    (greeting,) = await api.wait_for_messages(4321, timeout=10)
                    assert "まどぐち" in (greeting.text or "")
            finally:
                await runtime.stop()
    finally:
        await api.stop()


# -- black box: `madoguchi run` ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def server_process(cli_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    script = Path(sys.executable).parent / "madoguchi"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "madoguchi.cli"]
    env = {**cli_env, "MADOGUCHI_HTTP_PORT": str(free_port()), "MADOGUCHI_HTTP_HOST": "127.0.0.1"}
    with (tmp_path / "server.log").open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [*command, "run"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            encoding="utf-8",
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
            assert process.stdout is not None
            process.stdout.close()


def line_reader(process: subprocess.Popen[str]) -> Queue[str | None]:
    """Stdout lines in a queue (None at end of output), read by a daemon thread."""
    lines: Queue[str | None] = Queue()
    stream = process.stdout
    assert stream is not None

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def wait_for_line(lines: Queue[str | None], marker: str, timeout: float) -> tuple[str, list[str]]:
    """The first line containing marker, and every line read so far."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except Empty:
            pytest.fail(f"no {marker!r} within {timeout} s; output: {''.join(seen)}")
        if line is None:
            pytest.fail(f"output ended before {marker!r}; output: {''.join(seen)}")
        seen.append(line)
        if marker in line:
            return line, seen


def test_run_serves_and_stops_on_sigint(
    server_process: subprocess.Popen[str], tmp_path: Path
) -> None:
    lines = line_reader(server_process)
    running, _ = wait_for_line(lines, "madoguchi is running", timeout=30)
    url = running.split("madoguchi is running:", 1)[1].strip()
    assert url.startswith("http://127.0.0.1:")

    with urllib.request.urlopen(f"{url.rstrip('/')}/healthz", timeout=10) as response:
        assert response.status == 200
        health = json.loads(response.read().decode("utf-8"))
    assert health["status"] == "ok"
    assert health["faq_entries"] > 0

    # The demo chat: a visitor (with its cookie) starts the chat and gets the greeting.
    demo_line, _ = wait_for_line(lines, "demo chat", timeout=5)
    assert url in demo_line
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(url, timeout=10) as response:
        assert "charset=utf-8" in response.headers["Content-Type"]
        assert "体験版" in response.read().decode("utf-8")
    request = urllib.request.Request(
        f"{url}demo/api/send",
        data=json.dumps({"text": "/start"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with opener.open(request, timeout=10) as response:
        assert response.status == 200
    with opener.open(f"{url}demo/api/messages?since=1&wait=10", timeout=20) as response:
        data = json.loads(response.read().decode("utf-8"))
    assert any(m["from_bot"] and "まどぐち" in m["text"] for m in data["messages"])

    os.kill(server_process.pid, signal.SIGINT)
    assert server_process.wait(timeout=10) == 0, (tmp_path / "server.log").read_text("utf-8")
    wait_for_line(lines, "stopped", timeout=5)
