"""Fast bot tests: a recording Bot API session and a harness that feeds updates.

`RecordingSession` answers every request itself (no network): results are generated in
Telegram's shapes (sendMessage → a Message with increasing message_id, ...) and pass through
aiogram's own `check_response`, so injected failures (429, 5xx, 403) raise the very
exceptions a real server would cause.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.methods import AnswerCallbackQuery, SendMessage, TelegramMethod
from aiogram.types import InlineKeyboardMarkup, ReplyKeyboardMarkup, Update

from bot.errors import RetryMiddleware
from bot.factory import create_bot, create_dispatcher
from madoguchi.app import AppContext
from madoguchi.settings import Settings

TOKEN = "123456:TEST-TOKEN"
TOWN = {
    "town_name": "みどり町",
    "counter_name": "みどり町役場 住民課",
    "counter_phone": "0555-12-3456",
    "counter_hours": "平日 8:30〜17:15",
    "counter_place": "役場 1階 2番窓口",
    "class_contact": "みどり町役場 情報政策係",
}


def bot_settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, **TOWN)  # type: ignore[arg-type]


BOT_USER = {"id": 123456, "is_bot": True, "first_name": "まどぐち", "username": "madoguchi_bot"}


class RecordingSession(BaseSession):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[TelegramMethod[Any]] = []
        self.failures: dict[str, deque[tuple[int, dict[str, Any]]]] = defaultdict(deque)
        self.next_message_id = 1000
        self.closed = False
        self.updates: deque[dict[str, Any]] = deque()  # served by getUpdates (polling tests)

    def fail_next(
        self,
        method: str,
        status: int,
        description: str,
        *,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` calls of `method` (e.g. "sendMessage") answer with this error."""
        payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            payload["parameters"] = {"retry_after": retry_after}
        for _ in range(times):
            self.failures[method].append((status, payload))

    def _result(self, method: TelegramMethod[Any]) -> Any:
        if isinstance(method, SendMessage):
            self.next_message_id += 1
            return {
                "message_id": self.next_message_id,
                "date": int(datetime.now(UTC).timestamp()),
                "chat": {"id": method.chat_id, "type": "private"},
                "from": BOT_USER,
                "text": method.text,
            }
        if method.__api_method__ == "getMe":
            return BOT_USER
        if method.__api_method__ == "getUpdates":
            updates = list(self.updates)
            self.updates.clear()
            return updates
        return True

    async def make_request(
        self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None
    ) -> Any:
        if method.__api_method__ == "getUpdates":
            if not self.updates:
                await asyncio.sleep(0.01)  # a short "long poll"
        else:
            self.requests.append(method)
        queue = self.failures.get(method.__api_method__)
        if queue:
            status, payload = queue.popleft()
        else:
            status, payload = 200, {"ok": True, "result": self._result(method)}
        response = self.check_response(bot, method, status, json.dumps(payload))
        return response.result

    async def close(self) -> None:
        self.closed = True

    async def stream_content(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError


@dataclass
class Sent:
    """One message the bot sent, as a resident sees it."""

    chat_id: int
    text: str
    buttons: list[list[tuple[str, str]]]  # inline: (text, callback_data)
    reply_buttons: list[list[str]]  # reply keyboard button texts
    reply_markup: Any
    message_id: int = 0

    def button(self, text: str) -> str:
        """callback_data of the inline button with this text."""
        for row in self.buttons:
            for label, data in row:
                if label == text:
                    return data
        raise AssertionError(f"no button {text!r} in {self.buttons}")

    @property
    def labels(self) -> list[str]:
        return [label for row in self.buttons for label, _ in row]


@dataclass
class Harness:
    context: AppContext
    bot: Bot
    dispatcher: Dispatcher
    session: RecordingSession
    sleeps: list[float] = field(default_factory=list)
    _update_id: int = 0
    _message_id: int = 0

    # -- resident side ----------------------------------------------------------------------

    def _user(self, user_id: int) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": "花子", "language_code": "ja"}

    def _message(self, user_id: int, **content: Any) -> dict[str, Any]:
        self._message_id += 1
        return {
            "message_id": self._message_id,
            "date": int(datetime.now(UTC).timestamp()),
            "chat": {"id": user_id, "type": "private", "first_name": "花子"},
            "from": self._user(user_id),
            **content,
        }

    async def feed(self, update: dict[str, Any]) -> list[TelegramMethod[Any]]:
        """Feed one update; the requests the bot made while handling it."""
        self._update_id += 1
        before = len(self.session.requests)
        parsed = Update.model_validate(
            {"update_id": self._update_id, **update}, context={"bot": self.bot}
        )
        await self.dispatcher.feed_update(self.bot, parsed)
        return self.session.requests[before:]

    async def send(self, user_id: int, **content: Any) -> list[Sent]:
        requests = await self.feed({"message": self._message(user_id, **content)})
        return sent_messages(requests)

    async def text(self, user_id: int, text: str) -> list[Sent]:
        return await self.send(user_id, text=text)

    async def press(self, user_id: int, data: str) -> tuple[list[Sent], list[AnswerCallbackQuery]]:
        """Tap an inline button: the messages sent and the callback answers."""
        callback = {
            "id": f"cb{self._update_id + 1}",
            "from": self._user(user_id),
            "chat_instance": "ci",
            "data": data,
            "message": self._message(user_id, text="…"),
        }
        requests = await self.feed({"callback_query": callback})
        answers = [r for r in requests if isinstance(r, AnswerCallbackQuery)]
        return sent_messages(requests), answers


def sent_messages(requests: list[TelegramMethod[Any]]) -> list[Sent]:
    result = []
    for request in requests:
        if not isinstance(request, SendMessage):
            continue
        markup = request.reply_markup
        buttons: list[list[tuple[str, str]]] = []
        reply_buttons: list[list[str]] = []
        if isinstance(markup, InlineKeyboardMarkup):
            buttons = [
                [(b.text, b.callback_data or "") for b in row] for row in markup.inline_keyboard
            ]
        elif isinstance(markup, ReplyKeyboardMarkup):
            reply_buttons = [[b.text for b in row] for row in markup.keyboard]
        assert isinstance(request.chat_id, int)
        result.append(
            Sent(
                chat_id=request.chat_id,
                text=request.text,
                buttons=buttons,
                reply_buttons=reply_buttons,
                reply_markup=markup,
            )
        )
    return result


def build_harness(context: AppContext) -> Harness:
    session = RecordingSession()
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    bot = create_bot(TOKEN, session=session, retry=RetryMiddleware(sleep=fake_sleep))
    return Harness(
        context=context,
        bot=bot,
        dispatcher=create_dispatcher(context),
        session=session,
        sleeps=sleeps,
    )
