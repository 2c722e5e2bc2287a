"""The per-update path's own parts: JSON requests to the Bot API, parsed-response types built
once, every filter checked on the event loop (see bot/http.py and bot/filters.py), and a stop
that lets the updates in flight finish."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pydantic._internal._generics as pydantic_generics
import pytest
from aiogram import Bot, F, Router
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
    Update,
)
from aiohttp import web
from botkit import Harness

from bot.factory import create_bot
from bot.filters import Magic
from bot.middlewares import InFlightMiddleware

TOKEN = "4242:TEST"


@dataclass
class Request:
    method: str
    content_type: str
    body: bytes


def _message(chat_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "message_id": 7,
        "date": 1_700_000_000,
        "chat": {"id": chat_id, "type": "private"},
        "from": {"id": 4242, "is_bot": True, "first_name": "まどぐち"},
        **extra,
    }


@pytest.fixture
async def recorded() -> AsyncIterator[tuple[str, list[Request]]]:
    """A minimal Bot API on 127.0.0.1 that records each request as it arrived."""
    requests: list[Request] = []

    async def handle(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        requests.append(Request(method, request.content_type, await request.read()))
        result = _message(1, text="ok") if method == "sendMessage" else _message(1)
        return web.json_response({"ok": True, "result": result})

    app = web.Application()
    app.router.add_post(f"/bot{TOKEN}/{{method}}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", requests
    finally:
        await runner.cleanup()


@pytest.fixture
async def bot(recorded: tuple[str, list[Request]]) -> AsyncIterator[Bot]:
    bot = create_bot(TOKEN, api_base=recorded[0])
    try:
        yield bot
    finally:
        await bot.session.close()


async def test_a_call_without_files_is_one_json_document(
    bot: Bot, recorded: tuple[str, list[Request]]
) -> None:
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="👍 役に立った", callback_data="fb:1:x:+")]]
    )
    sent = await bot.send_message(1, "マイナンバーカード & <窓口>\n２行目", reply_markup=markup)

    assert sent.message_id == 7
    (request,) = recorded[1]
    assert request.content_type == "application/json"
    body = json.loads(request.body)
    assert body["chat_id"] == 1
    assert body["text"] == "マイナンバーカード & <窓口>\n２行目"
    assert body["reply_markup"] == {
        "inline_keyboard": [[{"text": "👍 役に立った", "callback_data": "fb:1:x:+"}]]
    }
    # The bot's defaults (no parse mode, no link previews) are applied as with the form.
    assert "parse_mode" not in body
    assert body["link_preview_options"] == {"is_disabled": True}


async def test_a_call_with_a_file_keeps_the_form(
    bot: Bot, recorded: tuple[str, list[Request]]
) -> None:
    await bot.send_document(1, BufferedInputFile(b"BEGIN:VCALENDAR\r\n", filename="class.ics"))

    (request,) = recorded[1]
    assert request.method == "sendDocument"
    assert request.content_type == "multipart/form-data"
    assert b"BEGIN:VCALENDAR" in request.body
    assert b'filename="class.ics"' in request.body


async def test_response_types_are_built_once(
    bot: Bot, recorded: tuple[str, list[Request]], monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.send_message(1, "一通目")
    built: list[Any] = []
    original = pydantic_generics.create_generic_submodel

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(pydantic_generics, "create_generic_submodel", counting)
    gc.collect()  # without a strong reference, this dropped Response[Message]
    await bot.send_message(1, "二通目")

    assert built == []
    assert len(recorded[1]) == 2


def _routers(router: Router) -> Iterator[Router]:
    yield router
    for child in router.sub_routers:
        yield from _routers(child)


async def test_every_filter_and_handler_runs_on_the_event_loop(harness: Harness) -> None:
    """aiogram runs non-async callables in a worker thread, one round trip each."""
    checked = 0
    for router in _routers(harness.dispatcher):
        for name, observer in router.observers.items():
            router_filters = getattr(observer, "_handler").filters or []  # noqa: B009
            for handler in [*observer.handlers]:
                assert handler.awaitable, f"{router.name}.{name}: {handler.callback!r}"
                for event_filter in handler.filters or []:
                    assert event_filter.awaitable, f"{router.name}.{name}: {event_filter!r}"
                    checked += 1
            for event_filter in router_filters:
                assert event_filter.awaitable, f"{router.name}.{name}: {event_filter!r}"
                checked += 1
    assert checked > 10  # the walk found the routers' filters at all


async def test_magic_matches_what_the_magic_filter_matches(harness: Harness) -> None:
    command = Magic(~F.text.startswith("/"))
    sent = await harness.text(5001, "マイナンバーカードの申請方法")
    assert sent  # the question was answered: the filters let free text through
    message = Message.model_validate(_message(5001, text="/start"))
    question = Message.model_validate(_message(5001, text="マイナカード"))
    sticker = Message.model_validate(_message(5001))
    assert not await command(message)
    assert await command(question)
    assert await Magic(F.text)(question) == "マイナカード"
    assert not await Magic(F.text)(sticker)


async def test_a_stop_waits_for_the_updates_in_flight() -> None:
    in_flight = InFlightMiddleware()
    release = asyncio.Event()

    async def answering(_event: TelegramObject, _data: dict[str, Any]) -> str:
        await release.wait()  # the answer is still on its way
        return "answered"

    task = asyncio.create_task(in_flight(answering, Update(update_id=1), {}))
    await asyncio.sleep(0)
    assert await in_flight.wait(0.01) == 1  # gave up waiting: one still running
    release.set()
    assert await in_flight.wait(1.0) == 0
    assert await task == "answered"
    assert await in_flight.wait(0.01) == 0  # nothing left behind
