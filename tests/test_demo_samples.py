"""The sample classes of the local demo (issue 5): `serve()` without BOT_TOKEN creates the
【サンプル】 classes (once), `serve()` with a token never does; and a visitor of the demo chat
signs up for one through the page's endpoints, sharing the demo contact with the
「電話番号を送る」 button and fetching the calendar file from their own chat only.

`serve()` runs in-process with a stop event that is already set: it starts everything (web
server, fake or real Bot API polling) and shuts down again at once. The token run polls a
`FakeBotAPI` on 127.0.0.1 through TELEGRAM_API_BASE, as the black-box test does.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot import messages
from bot import messages_classes as texts
from bot.demo import DEMO_FIRST_NAME, DEMO_PHONE_SHOWN, DemoChat
from bot.fake_api import FakeBotAPI
from bot.runner import BotRuntime
from classes.models import SmartphoneClass
from classes.samples import SAMPLE_PREFIX, SAMPLES, ensure_sample_classes
from madoguchi.app import open_app, serve
from madoguchi.db import create_engine, session_scope, utcnow
from madoguchi.settings import Settings
from madoguchi.web import create_web_app

Client = TestClient[web.Request, web.Application]

TOKEN = "778899:SAMPLES-TEST-TOKEN"


@pytest.fixture
def database_file(isolated_settings_env: Path) -> str:
    return f"sqlite+aiosqlite:///{isolated_settings_env / 'samples.sqlite3'}"


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeBotAPI]:
    fake = FakeBotAPI(token=TOKEN)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def run_once(settings: Settings) -> None:
    """`madoguchi run` in-process: start everything, then stop at once."""
    stop = asyncio.Event()
    stop.set()
    try:
        async with asyncio.timeout(60):
            await serve(settings, stop=stop)
    finally:  # serve() set SIGINT/SIGTERM handlers on this loop: do not leave them behind
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def classes_in(database_url: str) -> list[tuple[str, bool]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(SmartphoneClass.title, SmartphoneClass.is_sample).order_by(
                    SmartphoneClass.starts_at
                )
            )
            return [(title, bool(is_sample)) for title, is_sample in rows]
    finally:
        await engine.dispose()


def settings_for(database_url: str, **overrides: object) -> Settings:
    return Settings(
        database_url=database_url,
        http_port=0,
        scheduler_enabled=False,
        **overrides,  # type: ignore[arg-type]
    )


async def test_demo_mode_creates_the_sample_classes_once(database_file: str) -> None:
    settings = settings_for(database_file)
    assert settings.demo_mode

    await run_once(settings)
    found = await classes_in(database_file)
    assert found == [(sample.title, True) for sample in SAMPLES]
    assert all(title.startswith(SAMPLE_PREFIX) for title, _ in found)

    await run_once(settings)  # a restart while they are still upcoming adds none
    assert await classes_in(database_file) == found


async def test_a_deployment_with_a_token_gets_no_sample_class(
    database_file: str, fake_telegram: FakeBotAPI
) -> None:
    assert fake_telegram.base_url is not None
    settings = settings_for(
        database_file, bot_token=TOKEN, telegram_api_base=fake_telegram.base_url
    )
    assert not settings.demo_mode

    await run_once(settings)
    # It really ran against the fake Telegram: the bot identified itself there.
    assert fake_telegram.calls_of("getMe")
    assert await classes_in(database_file) == []


# --- the demo chat's sign-up for a sample class, over the page's JSON endpoints ----------------


@pytest.fixture
async def demo_client(database_file: str) -> AsyncIterator[Client]:
    """The demo as `madoguchi run` builds it (sample classes, fake API, the real bot polling
    it, the page's endpoints), driven over HTTP as the page does."""
    settings = settings_for(database_file, town_name="みどり町")
    async with open_app(settings) as context:
        async with session_scope(context.session_factory) as session:
            await ensure_sample_classes(session, now=utcnow(), tz=settings.tzinfo)
        api = FakeBotAPI(token="5550002:DEMO-SAMPLES")
        runtime = BotRuntime(context, token=api.token, api_base=await api.start())
        await runtime.start_polling()
        demo = DemoChat(api, town_name=settings.town_name)
        try:
            async with TestClient(TestServer(create_web_app(context, demo=demo))) as client:
                yield client
        finally:
            await runtime.stop()
            await api.stop()


class Page:
    """What the demo page does: post, long-poll, keep the chat revision."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.revision = 0
        self.state: dict[str, Any] = {}  # the last answer of /demo/api/messages
        self.seen: dict[int, dict[str, Any]] = {}  # every message, both sides, as it is now

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = await self.client.post(path, json=body)
        data: dict[str, Any] = await response.json()
        return response.status, data

    async def bot_replies(self, count: int = 1) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        async with asyncio.timeout(15):
            while len(found) < count:
                response = await self.client.get(f"/demo/api/messages?since={self.revision}&wait=2")
                assert response.status == 200
                data = await response.json()
                self.revision = data["revision"]
                self.state = data
                self.seen.update((m["message_id"], m) for m in data["messages"])
                found += [m for m in data["messages"] if m["from_bot"] and not m["edits"]]
        return found

    async def say(self, text: str, count: int = 1) -> list[dict[str, Any]]:
        assert (await self.post("/demo/api/send", {"text": text}))[0] == 200
        return await self.bot_replies(count)

    async def tap(
        self, message: dict[str, Any], label: str, count: int = 1
    ) -> list[dict[str, Any]]:
        [data] = [
            b["callback_data"]
            for row in message["inline_keyboard"]
            for b in row
            if label in b["text"]
        ][:1]
        body = {"message_id": message["message_id"], "data": data}
        assert (await self.post("/demo/api/press", body))[0] == 200
        return await self.bot_replies(count)


async def test_demo_sign_up_with_the_contact_button_and_the_calendar_file(
    demo_client: Client,
) -> None:
    page = Page(demo_client)
    await page.say("/start")
    # No share-contact button on screen: the endpoint refuses, nothing is sent.
    status, refused = await page.post("/demo/api/contact", {})
    assert status == 400
    assert refused["error"] == "そのボタンは、もう使えません。"

    [listing] = await page.say(messages.BUTTON_CLASSES)
    for sample in SAMPLES:
        assert f"■ {sample.title}" in listing["text"]
    [details] = await page.tap(listing, SAMPLE_PREFIX)
    assert SAMPLES[0].title in details["text"]
    [name] = await page.tap(details, texts.BUTTON_APPLY)
    assert f"「{DEMO_FIRST_NAME}」でよろしければ" in name["text"]

    # The phone step: the page is told which button shares a contact, and the placeholder.
    [phone] = await page.tap(name, texts.BUTTON_USE_NAME)
    assert phone["text"] == texts.PHONE_PROMPT
    rows = page.state["keyboard_rows"]
    assert rows[0] == [{"text": texts.BUTTON_SEND_PHONE, "action": "contact"}]
    assert {"text": texts.BUTTON_NO_PHONE, "action": "text"} in rows[1]
    assert page.state["keyboard"][0] == [texts.BUTTON_SEND_PHONE]  # labels, as before
    assert page.state["placeholder"] == texts.PHONE_PLACEHOLDER
    assert page.state["demo_phone"] == DEMO_PHONE_SHOWN

    status, _ = await page.post("/demo/api/contact", {})
    assert status == 200
    saved, seats = await page.bot_replies(2)
    assert saved["text"] == texts.PHONE_SAVED
    [shared] = [m for m in page.seen.values() if m["kind"] == "contact"]
    assert not shared["from_bot"]
    assert shared["contact"] == {"phone_number": DEMO_PHONE_SHOWN}
    assert [b["text"] for row in page.state["keyboard_rows"] for b in row] == list(
        messages.MENU_BUTTONS
    )  # the menu keyboard is back, and no share-contact button any more
    assert (await page.post("/demo/api/contact", {}))[0] == 400

    [confirm] = await page.tap(seats, "1人")
    assert "電話番号：09000000000" in confirm["text"]
    done, calendar = await page.tap(confirm, texts.BUTTON_APPLY, count=2)
    assert done["text"].startswith("申し込みが完了しました。")
    assert calendar["text"] == texts.ICS_CAPTION
    assert calendar["document"]["file_name"].endswith(".ics")

    response = await demo_client.get(f"/demo/api/document/{calendar['message_id']}")
    assert response.status == 200
    assert response.headers["Content-Security-Policy"].startswith("sandbox")
    content = await response.read()
    assert content.startswith(b"BEGIN:VCALENDAR")
    assert calendar["document"]["size"] == len(content)
    # The resident's own contact message is no file to fetch; another visitor gets nothing.
    assert (await demo_client.get(f"/demo/api/document/{shared['message_id']}")).status == 404
    app = demo_client.app
    assert app is not None
    async with TestClient(TestServer(app)) as other:  # another cookie: another visitor
        response = await other.get(f"/demo/api/document/{calendar['message_id']}")
        assert response.status == 404

    [mine] = await page.tap(calendar, texts.BUTTON_MY_REGISTRATIONS)
    assert "状態：申し込み済み（席が確保されています）" in mine["text"]
    assert SAMPLES[0].title in mine["text"]
