"""The local demo: a chat page in the browser in front of the real bot and a fake Bot API.

`madoguchi run` without `BOT_TOKEN` starts a `FakeBotAPI` on 127.0.0.1 (a random token, its
own free port), the bot's `BotRuntime` polling it, and this page at `/`. What the visitor types
or taps becomes an update from their own demo resident; the page shows what the bot sent to
that chat: the same texts, inline buttons and menu keyboard a Telegram user sees, produced by
the same dispatcher and handlers.

Telegram's client-side buttons work as in Telegram: a reply-keyboard button sends its label
as text, and a `request_contact` button (「電話番号を送る」) shares the resident's own contact,
which in the demo is an obviously fake sample number (DEMO_PHONE), said so on the page.
Documents the bot sends (a class's .ics file) are shown with their name and caption, and
downloaded from /demo/api/document/{message_id}, only from the visitor's own chat.

Each browser gets its own resident id through a random cookie, so two visitors never see each
other's chat. The page is plain HTML with a small script (no framework); every text is put in
with `textContent`, so nothing the bot or a visitor writes can become markup.
"""

from __future__ import annotations

import html
import json
import math
import secrets
from collections import OrderedDict
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.fake_api import FakeBotAPI, SentMessage
from faq.textfold import without_surrogates

COOKIE_NAME = "madoguchi_demo"
MAX_TEXT_CHARS = 4096  # what Telegram lets a resident send in one message
MAX_WAIT_SECONDS = 25.0
FIRST_DEMO_USER_ID = 7_000_000_001
# The demo resident's Telegram name (the sign-up offers it as the name to register).
DEMO_FIRST_NAME = "体験ユーザー"
# What a demo resident's 「電話番号を送る」 shares: a sample number, never a real one. Telegram
# sends shared numbers in international form without the plus.
DEMO_PHONE = "819000000000"
DEMO_PHONE_SHOWN = "090-0000-0000"
# Reply-keyboard buttons that ask the Telegram app for something; the demo does contacts only.
_REQUEST_KEYS = (
    "request_location",
    "request_poll",
    "request_users",
    "request_user",
    "request_chat",
    "web_app",
)
PAGE_TEMPLATE = Path(__file__).with_name("demo_page.html")


def demo_token() -> str:
    """A fresh bot token for the in-process fake API (never a real Telegram token)."""
    return f"{secrets.randbelow(9_000_000) + 1_000_000}:DEMO-{secrets.token_urlsafe(24)}"


def load_page_template() -> str:
    return PAGE_TEMPLATE.read_text(encoding="utf-8")


class DemoChat:
    """The demo page and its JSON endpoints under /demo/api/, in front of a FakeBotAPI."""

    def __init__(self, api: FakeBotAPI, *, town_name: str, max_visitors: int = 10_000) -> None:
        self.api = api
        self.town_name = town_name
        self.max_visitors = max_visitors
        self._visitors: OrderedDict[str, int] = OrderedDict()
        self._next_user_id = FIRST_DEMO_USER_ID
        self._template = load_page_template()
        self._closed = False

    async def close(self) -> None:
        """Answer the page's open long polls now (before the web server shuts down)."""
        self._closed = True
        await self.api.wake()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.page)
        app.router.add_get("/demo/api/messages", self.messages)
        app.router.add_post("/demo/api/send", self.send)
        app.router.add_post("/demo/api/press", self.press)
        app.router.add_post("/demo/api/contact", self.contact)
        app.router.add_get("/demo/api/document/{message_id:\\d+}", self.document)

    # -- visitors -----------------------------------------------------------------------------

    def visitor(self, request: web.Request) -> tuple[int, str | None]:
        """The demo resident id of this browser, and a new cookie value to set (if any)."""
        token = request.cookies.get(COOKIE_NAME)
        if token and token in self._visitors:
            self._visitors.move_to_end(token)
            return self._visitors[token], None
        token = secrets.token_urlsafe(18)
        user_id = self._next_user_id
        self._next_user_id += 1
        self._visitors[token] = user_id
        self.api.open_chat(user_id, first_name=DEMO_FIRST_NAME)
        while len(self._visitors) > self.max_visitors:
            _, forgotten = self._visitors.popitem(last=False)
            self.api.forget_chat(forgotten)
        return user_id, token

    @staticmethod
    def _with_cookie(response: web.StreamResponse, token: str | None) -> web.StreamResponse:
        if token is not None:
            response.set_cookie(
                COOKIE_NAME, token, httponly=True, samesite="Strict", path="/", max_age=86_400
            )
        return response

    # -- handlers -----------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.StreamResponse:
        _, token = self.visitor(request)
        nonce = secrets.token_urlsafe(16)
        body = self._template.replace("__TOWN__", html.escape(self.town_name)).replace(
            "__NONCE__", nonce
        )
        response = web.Response(text=body, content_type="text/html", charset="utf-8")
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
            "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return self._with_cookie(response, token)

    def _keyboard_message(self, user_id: int) -> SentMessage | None:
        """The message whose reply keyboard is shown now (None once removed or never set)."""
        current: SentMessage | None = None
        for message in self.api.messages(user_id):
            if message.keyboard is not None:
                current = message
            elif message.removes_keyboard:
                current = None
        return current

    @staticmethod
    def _keyboard_rows(message: SentMessage | None) -> list[list[dict[str, str]]] | None:
        """The page's view of the reply keyboard: each button's label and what a tap does
        (`text`: send the label; `contact`: share the demo contact; `unsupported`)."""
        rows = message.keyboard_buttons if message is not None else None
        if rows is None:
            return None
        return [
            [{"text": str(b.get("text", "")), "action": _action(b)} for b in row] for row in rows
        ]

    @staticmethod
    def _message_json(message: SentMessage) -> dict[str, Any]:
        """The fake API's view of a message, plus the number of a shared contact."""
        data = message.to_json()
        phone = message.contact_phone
        if phone == DEMO_PHONE:
            phone = DEMO_PHONE_SHOWN
        data["contact"] = {"phone_number": phone} if phone is not None else None
        return data

    async def messages(self, request: web.Request) -> web.StreamResponse:
        """Messages changed after `since` (a chat revision); waits up to `wait` s for news."""
        user_id, token = self.visitor(request)
        since = _int_param(request.query.get("since"), default=0)
        wait = min(max(_float_param(request.query.get("wait")), 0.0), MAX_WAIT_SECONDS)
        if token is None and wait > 0:
            await self.api.wait_for_change(user_id, since, wait, give_up=lambda: self._closed)
        revision, changed = self.api.changes_since(user_id, since)
        keyboard = self._keyboard_message(user_id)
        markup = (keyboard.reply_markup or {}) if keyboard is not None else {}
        placeholder = markup.get("input_field_placeholder")
        payload: dict[str, Any] = {
            "revision": revision,
            "messages": [self._message_json(m) for m in changed],
            "keyboard": keyboard.keyboard if keyboard is not None else None,
            "keyboard_rows": self._keyboard_rows(keyboard),
            "placeholder": placeholder if isinstance(placeholder, str) else None,
            "demo_phone": DEMO_PHONE_SHOWN,
            "notices": [
                {"text": notice.text, "alert": notice.show_alert}
                for notice in self.api.notices_since(user_id, since)
            ],
        }
        response = web.json_response(payload, dumps=_dumps)
        response.headers["Cache-Control"] = "no-store"
        return self._with_cookie(response, token)

    async def send(self, request: web.Request) -> web.StreamResponse:
        user_id, token = self.visitor(request)
        body = await _json_body(request)
        text = body.get("text")
        if isinstance(text, str):
            # JSON may carry half a UTF-16 pair ("\ud800"): it could never be sent back.
            text = without_surrogates(text)
        if not isinstance(text, str) or not text.strip():
            return _error("メッセージが空です。文字を入力してください。", token)
        if len(text) > MAX_TEXT_CHARS:
            return _error(f"長すぎます。{MAX_TEXT_CHARS}文字までにしてください。", token)
        self.api.send_text(user_id, text, first_name=DEMO_FIRST_NAME)
        return self._with_cookie(web.json_response({"ok": True}), token)

    async def contact(self, request: web.Request) -> web.StreamResponse:
        """「電話番号を送る」 (a request_contact button of the reply keyboard shown now): the
        demo resident shares their contact, with the sample number DEMO_PHONE."""
        user_id, token = self.visitor(request)
        await _json_body(request)
        rows = self._keyboard_rows(self._keyboard_message(user_id)) or []
        if not any(button["action"] == "contact" for row in rows for button in row):
            return _error("そのボタンは、もう使えません。", token)
        self.api.send_contact(user_id, phone_number=DEMO_PHONE, first_name=DEMO_FIRST_NAME)
        return self._with_cookie(web.json_response({"ok": True}), token)

    async def press(self, request: web.Request) -> web.StreamResponse:
        """Press an inline button that really is on one of the bot's messages in this chat."""
        user_id, token = self.visitor(request)
        body = await _json_body(request)
        message_id, data = body.get("message_id"), body.get("data")
        message = self.api.message(user_id, message_id) if isinstance(message_id, int) else None
        if message is None or not message.from_bot or not _has_button(message, data):
            return _error("そのボタンは、もう使えません。", token)
        assert isinstance(data, str)
        self.api.press_button(user_id, message.message_id, data)
        return self._with_cookie(web.json_response({"ok": True}), token)

    async def document(self, request: web.Request) -> web.StreamResponse:
        """A file the bot sent to this visitor's own chat (another visitor's: 404)."""
        user_id, _ = self.visitor(request)
        message = self.api.message(user_id, int(request.match_info["message_id"]))
        if message is None or not message.from_bot or message.document is None or message.deleted:
            raise web.HTTPNotFound()
        document = message.document
        return web.Response(
            body=document.content,
            content_type=document.mime_type,
            headers={
                "Content-Disposition": (
                    f"attachment; filename*=UTF-8''{quote(document.file_name)}"
                ),
                "Content-Security-Policy": "sandbox; default-src 'none'",
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )


def _action(button: dict[str, Any]) -> str:
    if button.get("request_contact"):
        return "contact"
    if any(button.get(key) for key in _REQUEST_KEYS):
        return "unsupported"
    return "text"


def _has_button(message: SentMessage, data: object) -> bool:
    return isinstance(data, str) and any(
        button.callback_data == data for row in message.inline_buttons for button in row
    )


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def _error(message: str, token: str | None) -> web.StreamResponse:
    response = web.json_response({"ok": False, "error": message}, status=400, dumps=_dumps)
    return DemoChat._with_cookie(response, token)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="application/json expected")
    try:
        body = await request.json()
    except ValueError as error:
        raise web.HTTPBadRequest(text="malformed JSON") from error
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="a JSON object expected")
    return body


def _int_param(raw: str | None, *, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def _float_param(raw: str | None) -> float:
    try:
        value = float(raw) if raw is not None else 0.0
    except ValueError:
        return 0.0
    return value if math.isfinite(value) else 0.0
