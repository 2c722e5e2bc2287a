"""A small Telegram Bot API server on 127.0.0.1, for the local demo and for end-to-end tests.

`FakeBotAPI` answers `/bot{token}/{method}` the way api.telegram.org does (GET or POST, query
string, url-encoded or multipart form, or JSON; `{"ok": true, "result": ...}` or Telegram's
error shape), so a real `aiogram.Bot` with
`AiohttpSession(api=TelegramAPIServer.from_base(base))` and `Dispatcher.start_polling` talks to
it exactly as it talks to Telegram: serialisation, keyboards, long polling and error mapping
are exercised for real.

It plays both sides of the chat:

- the bot side: every request is recorded (`calls`); what the bot sends is kept per chat as
  `SentMessage` objects (text with Telegram's HTML parsed to plain text, the reply markup as
  parsed JSON, documents with file name and bytes); edits replace the stored message;
  callback answers are recorded;
- the resident side: `send_text`, `send_sticker`, `send_photo`, `send_voice`, `send_contact`,
  `send_document` and `press_button` queue updates that `getUpdates` hands out, honouring
  `offset`, `limit` and `timeout` (long polling);
- failure injection: `fail_next` (the next calls of a method answer 429 with
  `parameters.retry_after`, or a 5xx) and `block` (a resident who blocked the bot: every
  request for that chat answers 403 "Forbidden: bot was blocked by the user").

Like Telegram it is strict where bots commonly go wrong: text longer than 4,096 characters,
empty text, broken HTML, callback data over 64 bytes, editing a message without changing it,
answering an unknown callback query: each is a 400 with Telegram's description.

Not a complete Bot API: private chats only, no inline mode, no payments, no file downloads.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

JSON = dict[str, Any]

DEFAULT_TOKEN = "123456:DEMO-TOKEN"
MAX_MESSAGE_CHARS = 4096
MAX_CAPTION_CHARS = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_POLL_TIMEOUT = 50.0  # seconds; Telegram also caps long polling
BLOCKED_DESCRIPTION = "Forbidden: bot was blocked by the user"

# Form fields that Telegram clients send JSON-encoded (aiogram does for every dict or list).
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "allowed_updates",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "commands",
        "scope",
        "menu_button",
    }
)
_INT_FIELDS = frozenset(
    {"chat_id", "message_id", "offset", "limit", "timeout", "cache_time", "max_connections"}
)
_BOOL_FIELDS = frozenset(
    {
        "show_alert",
        "disable_notification",
        "protect_content",
        "drop_pending_updates",
        "disable_web_page_preview",
    }
)


class ApiError(Exception):
    """A Telegram error answer: HTTP status, description and optional `parameters`."""

    def __init__(
        self, status: int, description: str, parameters: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = dict(parameters) if parameters else None

    def payload(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One request the bot made: method name (as sent) and its decoded parameters."""

    method: str
    params: JSON
    at: float


@dataclass(frozen=True, slots=True)
class SentDocument:
    file_name: str
    content: bytes
    mime_type: str
    file_id: str


@dataclass(frozen=True, slots=True)
class Button:
    """One inline button: its label and what pressing it does (callback data or a URL)."""

    text: str
    callback_data: str | None = None
    url: str | None = None


@dataclass(slots=True)
class SentMessage:
    """A message in a chat as the resident sees it now (edits applied).

    `from_bot` is False for the resident's own messages, which the transcript keeps too so the
    demo page can show the whole conversation.
    """

    chat_id: int
    message_id: int
    from_bot: bool
    date: int
    text: str | None = None
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, url) from <a href>
    reply_markup: JSON | None = None
    document: SentDocument | None = None
    kind: str = "text"  # text, document, sticker, photo, voice, contact, command, button
    edits: int = 0
    deleted: bool = False
    revision: int = 0  # the chat revision of the last change (send, edit or delete)
    contact_phone: str | None = None  # the number of a contact the resident shared

    @property
    def inline_buttons(self) -> list[list[Button]]:
        """The inline keyboard under the message, row by row (empty if none)."""
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or []
        return [
            [
                Button(
                    text=str(button.get("text", "")),
                    callback_data=button.get("callback_data"),
                    url=button.get("url"),
                )
                for button in row
            ]
            for row in rows
        ]

    @property
    def keyboard(self) -> list[list[str]] | None:
        """The reply keyboard (menu under the input) this message sets, if any."""
        markup = self.reply_markup or {}
        rows = markup.get("keyboard")
        if rows is None:
            return None
        return [
            [str(b.get("text", "")) if isinstance(b, dict) else str(b) for b in row] for row in rows
        ]

    @property
    def removes_keyboard(self) -> bool:
        return bool((self.reply_markup or {}).get("remove_keyboard"))

    @property
    def keyboard_buttons(self) -> list[list[JSON]] | None:
        """The reply keyboard this message sets, each button as Telegram's KeyboardButton
        object (`text` plus `request_contact` and the like), or None if it sets none."""
        markup = self.reply_markup or {}
        rows = markup.get("keyboard")
        if rows is None:
            return None
        return [[dict(b) if isinstance(b, dict) else {"text": str(b)} for b in row] for row in rows]

    def button_texts(self) -> list[str]:
        """Every inline button label, row by row flattened."""
        return [button.text for row in self.inline_buttons for button in row]

    def button(self, label: str) -> Button:
        """The inline button whose label contains `label` (AssertionError if none)."""
        for row in self.inline_buttons:
            for button in row:
                if label in button.text:
                    return button
        raise AssertionError(f"no button {label!r} in {self.button_texts()!r}")

    def to_json(self) -> JSON:
        """The page's view of the message (the demo chat's JSON)."""
        return {
            "message_id": self.message_id,
            "from_bot": self.from_bot,
            "kind": self.kind,
            "text": self.text,
            "links": [{"text": label, "url": url} for label, url in self.links],
            "inline_keyboard": [
                [{"text": b.text, "callback_data": b.callback_data, "url": b.url} for b in row]
                for row in self.inline_buttons
            ],
            "keyboard": self.keyboard,
            "remove_keyboard": self.removes_keyboard,
            "document": (
                {"file_name": self.document.file_name, "size": len(self.document.content)}
                if self.document
                else None
            ),
            "edits": self.edits,
            "deleted": self.deleted,
            "revision": self.revision,
        }


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    callback_query_id: str
    chat_id: int | None
    text: str | None
    show_alert: bool


@dataclass(slots=True)
class _Failure:
    method: str
    remaining: int
    error: ApiError
    chat_id: int | None


@dataclass(slots=True)
class _Chat:
    chat_id: int
    first_name: str
    messages: dict[int, SentMessage] = field(default_factory=dict)
    next_message_id: int = 1
    revision: int = 0
    read_cursor: int = 0  # the last bot message id handed out by wait_for_messages
    notices: list[tuple[int, CallbackAnswer]] = field(default_factory=list)  # (revision, answer)
    bot_message_ids: list[int] = field(default_factory=list)  # in sending order (ascending)

    def new_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def touch(self, message: SentMessage) -> None:
        self.revision += 1
        message.revision = self.revision


class _TelegramHtml(HTMLParser):
    """Telegram's HTML parse mode: tags become formatting, the text stays plain."""

    ALLOWED = frozenset(
        {
            "b",
            "strong",
            "i",
            "em",
            "u",
            "ins",
            "s",
            "strike",
            "del",
            "a",
            "code",
            "pre",
            "tg-spoiler",
            "span",
            "blockquote",
            "tg-emoji",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[tuple[str, str]] = []
        self._open: list[tuple[str, str | None, int]] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.ALLOWED:
            self.error = f'Unsupported start tag "{tag}"'
            return
        href = dict(attrs).get("href") if tag == "a" else None
        self._open.append((tag, href, len("".join(self.parts))))

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open[-1][0] != tag:
            self.error = f'Unexpected end tag "{tag}"'
            return
        _, href, start = self._open.pop()
        if tag == "a" and href:
            self.links.append(("".join(self.parts)[start:], href))

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def parse_telegram_html(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Plain text and (label, url) links of an HTML-formatted message; ApiError like Telegram."""
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    if parser.error is None and parser._open:
        parser.error = f'Can\'t find end tag corresponding to start tag "{parser._open[-1][0]}"'
    if parser.error is not None:
        raise _bad_request(f"can't parse entities: {parser.error}")
    return "".join(parser.parts), parser.links


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class FakeBotAPI:
    """A Telegram Bot API server on 127.0.0.1 with a scripted resident side (see module doc).

    Use `await start()` (returns the base URL for `TelegramAPIServer.from_base`) and
    `await stop()`, or mount `routes()` in an aiohttp application of your own.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        bot_first_name: str = "窓口",
        bot_username: str = "madoguchi_demo_bot",
        clock: Callable[[], float] = time.time,
        max_recorded_calls: int | None = None,
    ) -> None:
        bot_id, _, secret = token.partition(":")
        if not bot_id.isdigit() or not secret:
            raise ValueError("a bot token looks like 123456:ABC...")
        self.token = token
        self.bot_id = int(bot_id)
        self.bot_first_name = bot_first_name
        self.bot_username = bot_username
        self._clock = clock
        # Every request, oldest first (only the last `max_recorded_calls` when set: the
        # long-running demo keeps its memory bounded).
        self.calls: deque[ApiCall] = deque(maxlen=max_recorded_calls)
        self.callback_answers: list[CallbackAnswer] = []
        self.webhook_url: str | None = None
        self.commands: list[JSON] = []
        self._chats: dict[int, _Chat] = {}
        self._updates: list[JSON] = []
        self._next_update_id = 1
        self._confirmed_offset = 0
        self._callbacks: dict[str, int] = {}  # open callback query id -> chat id
        self._query_of_update: dict[int, str] = {}  # press_button update id -> query id
        self._callback_ids = itertools.count(1)
        self._failures: list[_Failure] = []
        self._blocked: set[int] = set()
        # Waiters re-check their condition synchronously after every change: no lock, and
        # no task wake-up for a waiter whose condition still does not hold.
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.base_url: str | None = None

    # -- server -------------------------------------------------------------------------------

    def routes(self) -> web.Application:
        """An aiohttp application answering /bot{token}/{method} (mountable under a prefix)."""
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0: a free port); returns the API base URL."""
        runner = web.AppRunner(self.routes(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None)
        bound = sockets[0].getsockname()[1] if sockets else port
        self.base_url = f"http://{host}:{bound}"
        return self.base_url

    async def stop(self) -> None:
        """Wake every long poll (they answer with no updates) and shut the server down."""
        self._closing = True
        self._changed()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _changed(self) -> None:
        """Something changed: release every waiter whose condition now holds."""
        if not self._waiters:
            return
        waiting = []
        for predicate, future in self._waiters:
            if future.done():
                continue
            if predicate():
                future.set_result(None)
            else:
                waiting.append((predicate, future))
        self._waiters = waiting

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        try:
            params = await self._read_params(request)
            self.calls.append(ApiCall(method=method, params=params, at=self._clock()))
            self._changed()
            self._inject_failure(method, params)
            handler = self._methods().get(method.lower())
            if handler is None:
                raise ApiError(404, "Not Found")
            result = await handler(params)
        except ApiError as error:
            return web.json_response(error.payload(), status=error.status)
        return web.json_response({"ok": True, "result": result})

    async def _read_params(self, request: web.Request) -> JSON:
        raw: dict[str, Any] = {}
        if request.method == "POST" and request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError as error:
                raise _bad_request("can't parse JSON") from error
            if not isinstance(body, dict):
                raise _bad_request("JSON object expected")
            return body
        raw.update(request.query)
        if request.method == "POST" and request.body_exists:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    raw[key] = SentDocument(
                        file_name=value.filename,
                        content=value.file.read(),
                        mime_type=value.content_type or "application/octet-stream",
                        file_id=f"DOC{secrets.token_hex(8)}",
                    )
                else:
                    raw[key] = value
        params: JSON = {}
        for key, value in raw.items():
            if isinstance(value, str):
                params[key] = self._decode_field(key, value)
            else:
                params[key] = value
        # Files sent as "attach://name" in another field.
        for key, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                params[key] = raw.get(value.removeprefix("attach://"), value)
        return params

    @staticmethod
    def _decode_field(key: str, value: str) -> Any:
        if key in _JSON_FIELDS:
            try:
                return json.loads(value)
            except ValueError as error:
                raise _bad_request(f"can't parse {key} JSON object") from error
        if key in _INT_FIELDS:
            try:
                return int(value)
            except ValueError:
                return value  # chat_id may be "@channel"; rejected later
        if key in _BOOL_FIELDS:
            return value.lower() in {"true", "1"}
        return value

    def _inject_failure(self, method: str, params: JSON) -> None:
        chat_id = params.get("chat_id")
        if isinstance(chat_id, int) and chat_id in self._blocked:
            raise ApiError(403, BLOCKED_DESCRIPTION)
        for failure in self._failures:
            if failure.method.lower() != method.lower() or failure.remaining <= 0:
                continue
            if failure.chat_id is not None and failure.chat_id != chat_id:
                continue
            failure.remaining -= 1
            raise failure.error

    # -- failure injection --------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        times: int = 1,
        status: int = 429,
        retry_after: int = 1,
        description: str | None = None,
        chat_id: int | None = None,
    ) -> None:
        """The next `times` calls of `method` (for `chat_id`, if given) fail.

        429 carries `parameters.retry_after` as Telegram's flood control does; other statuses
        (500, 502, ...) answer with the description given or Telegram's usual one.
        """
        if status == 429:
            error = ApiError(
                429,
                description or f"Too Many Requests: retry after {retry_after}",
                {"retry_after": retry_after},
            )
        else:
            error = ApiError(status, description or "Internal Server Error")
        self._failures.append(_Failure(method, times, error, chat_id))

    def block(self, user_id: int) -> None:
        """The resident blocked the bot: every request for this chat answers 403."""
        self._blocked.add(user_id)

    def unblock(self, user_id: int) -> None:
        self._blocked.discard(user_id)

    def calls_of(self, method: str, *, chat_id: int | None = None) -> list[ApiCall]:
        """The recorded requests of one method (case-insensitive), optionally for one chat."""
        return [
            call
            for call in self.calls
            if call.method.lower() == method.lower()
            and (chat_id is None or call.params.get("chat_id") == chat_id)
        ]

    # -- resident side ------------------------------------------------------------------------

    def _chat(self, user_id: int, first_name: str = "花子") -> _Chat:
        chat = self._chats.get(user_id)
        if chat is None:
            chat = self._chats[user_id] = _Chat(chat_id=user_id, first_name=first_name)
        return chat

    def _user(self, chat: _Chat) -> JSON:
        return {
            "id": chat.chat_id,
            "is_bot": False,
            "first_name": chat.first_name,
            "language_code": "ja",
        }

    def _chat_json(self, chat: _Chat) -> JSON:
        return {"id": chat.chat_id, "type": "private", "first_name": chat.first_name}

    def _bot_user(self) -> JSON:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def _enqueue(self, update: JSON) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        self._updates.append({"update_id": update_id, **update})
        self._changed()
        return update_id

    def _resident_message(
        self, user_id: int, first_name: str, content: JSON, *, kind: str, text: str | None
    ) -> int:
        chat = self._chat(user_id, first_name)
        message_id = chat.new_message_id()
        date = int(self._clock())
        stored = SentMessage(
            chat_id=user_id, message_id=message_id, from_bot=False, date=date, text=text, kind=kind
        )
        chat.messages[message_id] = stored
        chat.touch(stored)
        message = {
            "message_id": message_id,
            "date": date,
            "chat": self._chat_json(chat),
            "from": self._user(chat),
            **content,
        }
        return self._enqueue({"message": message})

    def send_text(self, user_id: int, text: str, *, first_name: str = "花子") -> int:
        """The resident types `text` (a leading /command gets its bot_command entity)."""
        content: JSON = {"text": text}
        kind = "text"
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            content["entities"] = [
                {"type": "bot_command", "offset": 0, "length": _utf16_length(command)}
            ]
            kind = "command"
        return self._resident_message(user_id, first_name, content, kind=kind, text=text)

    def send_sticker(self, user_id: int, *, emoji: str = "😊") -> int:
        sticker = {
            "file_id": f"STK{secrets.token_hex(6)}",
            "file_unique_id": secrets.token_hex(4),
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return self._resident_message(
            user_id, "花子", {"sticker": sticker}, kind="sticker", text=emoji
        )

    def send_photo(self, user_id: int, *, caption: str | None = None) -> int:
        photo = [
            {
                "file_id": f"PHO{secrets.token_hex(6)}",
                "file_unique_id": secrets.token_hex(4),
                "width": width,
                "height": width * 3 // 4,
                "file_size": width * 100,
            }
            for width in (90, 320, 1280)
        ]
        content: JSON = {"photo": photo}
        if caption:
            content["caption"] = caption
        return self._resident_message(user_id, "花子", content, kind="photo", text=caption)

    def send_voice(self, user_id: int, *, duration: int = 3) -> int:
        voice = {
            "file_id": f"VOI{secrets.token_hex(6)}",
            "file_unique_id": secrets.token_hex(4),
            "duration": duration,
            "mime_type": "audio/ogg",
        }
        return self._resident_message(user_id, "花子", {"voice": voice}, kind="voice", text=None)

    def send_contact(
        self, user_id: int, *, phone_number: str = "+81 90-0000-0000", first_name: str = "花子"
    ) -> int:
        """The resident shares their own contact (Telegram's request_contact button)."""
        contact = {"phone_number": phone_number, "first_name": first_name, "user_id": user_id}
        update_id = self._resident_message(
            user_id, first_name, {"contact": contact}, kind="contact", text=None
        )
        chat = self._chat(user_id)
        chat.messages[chat.next_message_id - 1].contact_phone = phone_number
        return update_id

    def send_document(self, user_id: int, *, file_name: str = "申請書.pdf") -> int:
        document = {
            "file_id": f"DOC{secrets.token_hex(6)}",
            "file_unique_id": secrets.token_hex(4),
            "file_name": file_name,
            "mime_type": "application/pdf",
            "file_size": 12345,
        }
        return self._resident_message(
            user_id, "花子", {"document": document}, kind="document", text=file_name
        )

    def press_button(self, user_id: int, message_id: int, callback_data: str) -> int:
        """The resident taps an inline button: a callback_query update carrying the message.

        The data is sent as given, so a test can press buttons the message never had (forged
        or stale data) or a message that does not exist (`message` is then left out, as
        Telegram does for very old messages).
        """
        chat = self._chat(user_id)
        query_id = f"{self.bot_id}{next(self._callback_ids):08d}"
        self._callbacks[query_id] = user_id
        query: JSON = {
            "id": query_id,
            "from": self._user(chat),
            "chat_instance": f"ci{user_id}",
            "data": callback_data,
        }
        message = chat.messages.get(message_id)
        if message is not None and message.from_bot and not message.deleted:
            query["message"] = self._message_json(chat, message)
        update_id = self._enqueue({"callback_query": query})
        self._query_of_update[update_id] = query_id
        return update_id

    def open_chat(self, user_id: int, *, first_name: str = "花子") -> None:
        """Name the resident of this chat before anything is sent (no update is queued).

        Otherwise the chat is created, with the default name, by whatever touches it first.
        """
        self._chat(user_id, first_name)

    def send_raw_update(self, update: JSON) -> int:
        """Queue any update object (its update_id is assigned here)."""
        return self._enqueue(dict(update))

    # -- reading the transcript ---------------------------------------------------------------

    def messages(self, user_id: int, *, include_resident: bool = False) -> list[SentMessage]:
        """The chat as it stands: the bot's messages (and the resident's), oldest first."""
        chat = self._chats.get(user_id)
        if chat is None:
            return []
        return [
            message for message in chat.messages.values() if include_resident or message.from_bot
        ]

    def changes_since(self, user_id: int, revision: int) -> tuple[int, list[SentMessage]]:
        """The chat's current revision and the messages (both sides) changed after `revision`."""
        chat = self._chats.get(user_id)
        if chat is None:
            return 0, []
        changed = [m for m in chat.messages.values() if m.revision > revision]
        changed.sort(key=lambda m: m.revision)
        return chat.revision, changed

    def notices_since(self, user_id: int, revision: int) -> list[CallbackAnswer]:
        """Callback answers with a text (toasts, alerts) shown in this chat after `revision`."""
        chat = self._chats.get(user_id)
        if chat is None:
            return []
        return [answer for at, answer in chat.notices if at > revision]

    def forget_chat(self, user_id: int) -> None:
        """Drop a chat's transcript (the demo does when a visitor's session expires)."""
        self._chats.pop(user_id, None)

    def message(self, user_id: int, message_id: int) -> SentMessage | None:
        chat = self._chats.get(user_id)
        return chat.messages.get(message_id) if chat else None

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed by the bot (a later getUpdates offset)."""
        return sum(1 for u in self._updates if u["update_id"] >= self._confirmed_offset)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds (checked after every change); TimeoutError if not."""
        if predicate():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        try:
            async with asyncio.timeout(timeout):
                await future
        finally:
            future.cancel()  # no-op when it completed; drops it from the next check

    async def wait_for_change(
        self,
        user_id: int,
        revision: int,
        timeout: float,
        *,
        give_up: Callable[[], bool] = lambda: False,
    ) -> int:
        """Wait (at most `timeout`, or until `give_up()` or `stop`) until the chat's revision
        passes `revision`; returns the revision then."""
        with contextlib.suppress(TimeoutError):
            await self.wait_until(
                lambda: self._closing or give_up() or self._chat(user_id).revision > revision,
                timeout,
            )
        return self._chat(user_id).revision

    async def wake(self) -> None:
        """Re-check every waiter's condition now (after an outside `give_up` flag changed)."""
        self._changed()

    async def wait_for_messages(
        self, user_id: int, count: int = 1, timeout: float = 5.0
    ) -> list[SentMessage]:
        """The next `count` messages the bot sends to this chat (after those already returned).

        Each call moves a read cursor, so a scripted conversation reads replies in order.
        Raises TimeoutError, naming what did arrive, when fewer come within `timeout`.
        """
        chat = self._chat(user_id)
        if count <= 0:
            return []

        ids = chat.bot_message_ids

        def fresh() -> int:
            return len(ids) - bisect.bisect_right(ids, chat.read_cursor)

        try:
            await self.wait_until(lambda: fresh() >= count, timeout)
        except TimeoutError:
            start = bisect.bisect_right(ids, chat.read_cursor)
            got = [chat.messages[i].text for i in ids[start:]]
            raise TimeoutError(
                f"chat {user_id}: expected {count} new bot message(s) within {timeout} s, "
                f"got {len(got)}: {got!r}"
            ) from None
        start = bisect.bisect_right(ids, chat.read_cursor)
        result = [chat.messages[i] for i in ids[start : start + count]]
        chat.read_cursor = result[-1].message_id
        return result

    async def wait_for_callback_answer(
        self, callback_query_id: str | None = None, timeout: float = 5.0
    ) -> CallbackAnswer:
        def found() -> CallbackAnswer | None:
            for answer in self.callback_answers:
                if callback_query_id is None or answer.callback_query_id == callback_query_id:
                    return answer
            return None

        await self.wait_until(lambda: found() is not None, timeout)
        answer = found()
        assert answer is not None
        return answer

    def callback_query_id_of(self, update_id: int) -> str:
        """The callback query id of a queued `press_button` update."""
        return self._query_of_update[update_id]

    # -- Bot API methods ----------------------------------------------------------------------

    def _methods(self) -> dict[str, Callable[[JSON], Any]]:
        return {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "deletewebhook": self._delete_webhook,
            "setwebhook": self._set_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "setmycommands": self._set_my_commands,
            "deletemycommands": self._true,
            "getmycommands": self._get_my_commands,
            "setmydescription": self._true,
            "setmyshortdescription": self._true,
            "setchatmenubutton": self._true,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "senddocument": self._send_document,
            "deletemessage": self._delete_message,
            "sendchataction": self._send_chat_action,
            "close": self._true,
            "logout": self._true,
        }

    async def _true(self, _params: JSON) -> bool:
        return True

    async def _get_me(self, _params: JSON) -> JSON:
        return {
            **self._bot_user(),
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _get_updates(self, params: JSON) -> list[JSON]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = min(max(float(params.get("timeout") or 0), 0.0), MAX_POLL_TIMEOUT)
        allowed = params.get("allowed_updates") or None
        if offset:
            # Telegram forgets every update before the offset: they are confirmed.
            self._confirmed_offset = max(self._confirmed_offset, offset)
            self._updates = [u for u in self._updates if u["update_id"] >= offset]

        def ready() -> list[JSON]:
            found = [
                u
                for u in self._updates
                if u["update_id"] >= offset
                and (allowed is None or any(kind in u for kind in allowed))
            ]
            return found[:limit]

        if not ready() and timeout > 0 and not self._closing:
            with contextlib.suppress(TimeoutError):
                await self.wait_until(lambda: bool(ready()) or self._closing, timeout)
        return ready()

    async def _delete_webhook(self, params: JSON) -> bool:
        self.webhook_url = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _set_webhook(self, params: JSON) -> bool:
        url = str(params.get("url") or "")
        if url and not url.startswith("https://"):
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook_url = url or None
        return True

    async def _get_webhook_info(self, _params: JSON) -> JSON:
        return {
            "url": self.webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": self.pending_updates,
        }

    async def _set_my_commands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request('parameter "commands" is required')
        self.commands = commands
        return True

    async def _get_my_commands(self, _params: JSON) -> list[JSON]:
        return self.commands

    def _target_chat(self, params: JSON) -> _Chat:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise _bad_request("chat not found")
        chat = self._chats.get(chat_id)
        if chat is None:
            # A bot can only write to residents who have written to it first.
            raise _bad_request("chat not found")
        return chat

    def _message_json(self, chat: _Chat, message: SentMessage) -> JSON:
        data: JSON = {
            "message_id": message.message_id,
            "date": message.date,
            "chat": self._chat_json(chat),
            "from": self._bot_user() if message.from_bot else self._user(chat),
        }
        if message.edits:
            data["edit_date"] = message.date
        if message.text is not None and message.kind != "document":
            data["text"] = message.text
        if message.document is not None:
            data["document"] = {
                "file_id": message.document.file_id,
                "file_unique_id": message.document.file_id[-8:],
                "file_name": message.document.file_name,
                "mime_type": message.document.mime_type,
                "file_size": len(message.document.content),
            }
            if message.text:
                data["caption"] = message.text
        # Telegram echoes only inline keyboards in the message object.
        if message.reply_markup and "inline_keyboard" in message.reply_markup:
            data["reply_markup"] = message.reply_markup
        return data

    @staticmethod
    def _formatted(params: JSON, key: str, limit: int) -> tuple[str, list[tuple[str, str]]]:
        raw = params.get(key)
        text = "" if raw is None else str(raw)
        links: list[tuple[str, str]] = []
        if str(params.get("parse_mode") or "").upper() == "HTML":
            text, links = parse_telegram_html(text)
        if _utf16_length(text) > limit:
            raise _bad_request(
                "message is too long" if key == "text" else "message caption is too long"
            )
        return text, links

    @staticmethod
    def _check_markup(markup: Any) -> JSON | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard") or []:
            for button in row:
                if not str(button.get("text", "")).strip():
                    raise _bad_request("text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not (
                    0 < len(str(data).encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES
                ):
                    raise _bad_request("BUTTON_DATA_INVALID")
                if data is None and not button.get("url") and len(button) <= 1:
                    raise _bad_request("can't parse inline keyboard button")
        for row in markup.get("keyboard") or []:
            for button in row:
                label = button.get("text") if isinstance(button, dict) else button
                if not str(label or "").strip():
                    raise _bad_request("keyboard button text is empty")
        return markup

    def _store(self, chat: _Chat, message: SentMessage) -> JSON:
        if message.message_id not in chat.messages:
            chat.bot_message_ids.append(message.message_id)
        chat.messages[message.message_id] = message
        chat.touch(message)
        self._changed()
        return self._message_json(chat, message)

    async def _send_message(self, params: JSON) -> JSON:
        chat = self._target_chat(params)
        text, links = self._formatted(params, "text", MAX_MESSAGE_CHARS)
        if not text.strip():
            raise _bad_request("message text is empty")
        markup = self._check_markup(params.get("reply_markup"))
        message = SentMessage(
            chat_id=chat.chat_id,
            message_id=chat.new_message_id(),
            from_bot=True,
            date=int(self._clock()),
            text=text,
            links=links,
            reply_markup=markup,
        )
        return self._store(chat, message)

    async def _send_document(self, params: JSON) -> JSON:
        chat = self._target_chat(params)
        document = params.get("document")
        if isinstance(document, str) and document:
            document = SentDocument(
                file_name="document",
                content=b"",
                mime_type="application/octet-stream",
                file_id=document,
            )
        if not isinstance(document, SentDocument):
            raise _bad_request("there is no document in the request")
        caption, links = self._formatted(params, "caption", MAX_CAPTION_CHARS)
        message = SentMessage(
            chat_id=chat.chat_id,
            message_id=chat.new_message_id(),
            from_bot=True,
            date=int(self._clock()),
            text=caption or None,
            links=links,
            reply_markup=self._check_markup(params.get("reply_markup")),
            document=document,
            kind="document",
        )
        return self._store(chat, message)

    def _bot_message(self, params: JSON) -> tuple[_Chat, SentMessage]:
        if params.get("inline_message_id"):
            raise _bad_request("inline messages are not supported by this fake")
        chat = self._target_chat(params)
        message_id = params.get("message_id")
        message = chat.messages.get(message_id) if isinstance(message_id, int) else None
        if message is None or message.deleted:
            raise _bad_request("message to edit not found")
        if not message.from_bot:
            raise _bad_request("message can't be edited")
        return chat, message

    async def _edit_message_text(self, params: JSON) -> JSON:
        chat, message = self._bot_message(params)
        text, links = self._formatted(params, "text", MAX_MESSAGE_CHARS)
        if not text.strip():
            raise _bad_request("message text is empty")
        markup = self._check_markup(params.get("reply_markup"))
        if text == message.text and markup == message.reply_markup:
            raise _bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        message.text, message.links, message.reply_markup = text, links, markup
        message.edits += 1
        return self._store(chat, message)

    async def _edit_message_reply_markup(self, params: JSON) -> JSON:
        chat, message = self._bot_message(params)
        markup = self._check_markup(params.get("reply_markup"))
        if markup == message.reply_markup:
            raise _bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        message.reply_markup = markup
        message.edits += 1
        return self._store(chat, message)

    async def _delete_message(self, params: JSON) -> bool:
        chat = self._target_chat(params)
        message_id = params.get("message_id")
        message = chat.messages.get(message_id) if isinstance(message_id, int) else None
        if message is None or message.deleted:
            raise _bad_request("message to delete not found")
        message.deleted = True
        self._store(chat, message)
        return True

    async def _send_chat_action(self, params: JSON) -> bool:
        self._target_chat(params)
        return True

    async def _answer_callback_query(self, params: JSON) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._callbacks:
            raise _bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        chat_id = self._callbacks.pop(query_id)
        text = params.get("text")
        answer = CallbackAnswer(
            callback_query_id=query_id,
            chat_id=chat_id,
            text=str(text) if text is not None else None,
            show_alert=bool(params.get("show_alert")),
        )
        self.callback_answers.append(answer)
        chat = self._chats.get(chat_id)
        if chat is not None and answer.text:
            # The resident sees the text as a toast (or an alert box): part of the chat view.
            chat.revision += 1
            chat.notices.append((chat.revision, answer))
        self._changed()
        return True


__all__ = [
    "DEFAULT_TOKEN",
    "ApiCall",
    "ApiError",
    "Button",
    "CallbackAnswer",
    "FakeBotAPI",
    "SentDocument",
    "SentMessage",
    "parse_telegram_html",
]
