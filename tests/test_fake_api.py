"""The fake Bot API server, driven by aiogram's real Bot and AiohttpSession over 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)

from bot.fake_api import DEFAULT_TOKEN, FakeBotAPI, parse_telegram_html

RESIDENT = 1001


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    fake = FakeBotAPI()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def make_bot(api: FakeBotAPI, token: str = DEFAULT_TOKEN) -> Bot:
    assert api.base_url is not None
    session = AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
    return Bot(token, session=session)


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    bot = make_bot(api)
    try:
        yield bot
    finally:
        await bot.session.close()


async def test_get_me(bot: Bot, api: FakeBotAPI) -> None:
    me = await bot.get_me()
    assert me.is_bot
    assert me.id == 123456
    assert me.username == api.bot_username
    assert api.calls_of("getMe")


async def test_wrong_token_is_unauthorized(api: FakeBotAPI) -> None:
    bot = make_bot(api, token="999:WRONG")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await bot.get_me()
    finally:
        await bot.session.close()
    assert not api.calls  # rejected before any method ran


async def test_unknown_method_is_not_found(api: FakeBotAPI) -> None:
    assert api.base_url is not None
    url = f"{api.base_url}/bot{DEFAULT_TOKEN}/sendPoll"
    async with aiohttp.ClientSession() as client, client.post(url, json={}) as response:
        assert response.status == 404
        assert await response.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found",
        }


async def test_get_and_json_requests_work_too(api: FakeBotAPI) -> None:
    assert api.base_url is not None
    api.send_text(RESIDENT, "こんにちは")
    base = f"{api.base_url}/bot{DEFAULT_TOKEN}"
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{base}/getUpdates?timeout=0") as response:
            updates = (await response.json())["result"]
        assert updates[0]["message"]["text"] == "こんにちは"
        body = {"chat_id": RESIDENT, "text": "はい", "reply_markup": {"remove_keyboard": True}}
        async with client.post(f"{base}/sendMessage", json=body) as response:
            sent = await response.json()
    assert sent["ok"] is True
    assert sent["result"]["text"] == "はい"
    assert "reply_markup" not in sent["result"]  # only inline keyboards are echoed
    assert api.messages(RESIDENT)[0].removes_keyboard


async def test_send_message_with_inline_and_reply_keyboards(bot: Bot, api: FakeBotAPI) -> None:
    api.send_text(RESIDENT, "/start")  # a chat exists once the resident has written
    inline = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="👍 役に立った", callback_data="fb:1:up"),
                InlineKeyboardButton(text="👎 役に立たなかった", callback_data="fb:1:down"),
            ],
            [InlineKeyboardButton(text="公式のページ", url="https://www.example.jp/")],
        ]
    )
    sent = await bot.send_message(
        RESIDENT, "<b>暗証番号</b>の再設定 &amp; 窓口", reply_markup=inline, parse_mode="HTML"
    )
    assert isinstance(sent, Message)
    assert sent.chat.id == RESIDENT
    assert isinstance(sent.reply_markup, InlineKeyboardMarkup)  # Telegram echoes inline ones
    echoed = sent.reply_markup.inline_keyboard
    assert [[b.callback_data for b in row] for row in echoed] == [["fb:1:up", "fb:1:down"], [None]]

    menu = ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text="質問する"), KeyboardButton(text="カテゴリから探す")]],
        resize_keyboard=True,
        is_persistent=True,
    )
    await bot.send_message(RESIDENT, "メニューです", reply_markup=menu)

    first, second = await api.wait_for_messages(RESIDENT, count=2)
    assert first.text == "暗証番号の再設定 & 窓口"  # the resident sees no tags
    assert first.button_texts() == ["👍 役に立った", "👎 役に立たなかった", "公式のページ"]
    assert first.button("役に立った").callback_data == "fb:1:up"
    assert first.button("公式").url == "https://www.example.jp/"
    assert first.keyboard is None
    assert second.keyboard == [["質問する", "カテゴリから探す"]]
    # The read cursor moved: nothing new is left.
    with pytest.raises(TimeoutError, match="got 0"):
        await api.wait_for_messages(RESIDENT, timeout=0.1)


async def test_links_in_html_are_kept() -> None:
    text, links = parse_telegram_html('くわしくは<a href="https://x.example/">こちら</a>')
    assert text == "くわしくはこちら"
    assert links == [("こちら", "https://x.example/")]


@pytest.mark.parametrize(
    ("text", "parse_mode", "description"),
    [
        ("あ" * 4097, None, "message is too long"),
        ("   ", None, "message text is empty"),
        ("<b>閉じていない", "HTML", "can't parse entities"),
        ("<script>x</script>", "HTML", "can't parse entities"),
    ],
)
async def test_telegram_rejects_what_telegram_rejects(
    bot: Bot, api: FakeBotAPI, text: str, parse_mode: str | None, description: str
) -> None:
    api.send_text(RESIDENT, "hi")
    with pytest.raises(TelegramBadRequest, match=description):
        await bot.send_message(RESIDENT, text, parse_mode=parse_mode)


async def test_exactly_4096_characters_are_accepted(bot: Bot, api: FakeBotAPI) -> None:
    api.send_text(RESIDENT, "hi")
    await bot.send_message(RESIDENT, "あ" * 4096)
    (message,) = await api.wait_for_messages(RESIDENT)
    assert message.text is not None
    assert len(message.text) == 4096


async def test_callback_data_over_64_bytes_is_rejected(bot: Bot, api: FakeBotAPI) -> None:
    api.send_text(RESIDENT, "hi")
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="長い", callback_data="あ" * 22)]]
    )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(RESIDENT, "x", reply_markup=markup)


async def test_writing_to_a_stranger_fails(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(4242, "こんにちは")


async def test_long_poll_waits_for_an_update(bot: Bot, api: FakeBotAPI) -> None:
    started = time.monotonic()
    empty = await bot.get_updates(timeout=1)
    assert empty == []
    assert time.monotonic() - started >= 0.9  # it really waited

    async def resident_writes_later() -> None:
        await asyncio.sleep(0.2)
        api.send_text(RESIDENT, "マイナンバーカードの暗証番号を忘れました")

    task = asyncio.create_task(resident_writes_later())
    started = time.monotonic()
    updates = await bot.get_updates(timeout=10)
    await task
    assert time.monotonic() - started < 5  # answered as soon as the update arrived
    assert len(updates) == 1
    message = updates[0].message
    assert message is not None
    assert message.text == "マイナンバーカードの暗証番号を忘れました"
    assert message.from_user is not None
    assert message.from_user.id == RESIDENT


async def test_offset_confirms_updates(bot: Bot, api: FakeBotAPI) -> None:
    first = api.send_text(RESIDENT, "一")
    second = api.send_text(RESIDENT, "二")
    updates = await bot.get_updates(timeout=0)
    assert [u.update_id for u in updates] == [first, second]
    assert await bot.get_updates(offset=second, timeout=0) == updates[1:]
    assert await bot.get_updates(offset=second + 1, timeout=0) == []
    assert api.pending_updates == 0
    # Confirmed updates are gone even for a poll without offset.
    assert await bot.get_updates(timeout=0) == []


async def test_resident_side_update_shapes(bot: Bot, api: FakeBotAPI) -> None:
    api.send_text(RESIDENT, "/start")
    api.send_sticker(RESIDENT)
    api.send_photo(RESIDENT)
    api.send_voice(RESIDENT)
    api.send_contact(RESIDENT)
    api.send_document(RESIDENT)
    messages = [u.message for u in await bot.get_updates(timeout=0)]
    assert all(m is not None for m in messages)
    start, sticker, photo, voice, contact, document = [m for m in messages if m]
    assert start.text == "/start"
    assert start.entities is not None
    assert start.entities[0].type == "bot_command"
    assert sticker.sticker is not None
    assert photo.photo is not None
    assert len(photo.photo) == 3
    assert voice.voice is not None
    assert contact.contact is not None
    assert document.document is not None
    assert document.document.file_name == "申請書.pdf"


async def test_press_button_carries_the_message(bot: Bot, api: FakeBotAPI) -> None:
    api.send_text(RESIDENT, "hi")
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="メニューに戻る", callback_data="menu")]]
    )
    sent = await bot.send_message(RESIDENT, "回答です", reply_markup=markup)
    update_id = api.press_button(RESIDENT, sent.message_id, "menu")
    forged = api.press_button(RESIDENT, 999, "fb:../../etc")
    updates = await bot.get_updates(offset=update_id, timeout=0)
    query = updates[0].callback_query
    assert isinstance(query, CallbackQuery)
    assert query.data == "menu"
    assert isinstance(query.message, Message)
    assert query.message.message_id == sent.message_id
    assert query.message.text == "回答です"
    assert updates[1].update_id == forged
    forged_query = updates[1].callback_query
    assert forged_query is not None
    assert forged_query.message is None  # no such message

    assert await bot.answer_callback_query(query.id, text="了解しました")
    answer = await api.wait_for_callback_answer(query.id)
    assert answer.text == "了解しました"
    assert answer.chat_id == RESIDENT
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)  # answered already


async def test_edits_replace_the_stored_message(bot: Bot, api: FakeBotAPI) -> None:
    api.send_text(RESIDENT, "hi")
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="👍", callback_data="up")]]
    )
    sent = await bot.send_message(RESIDENT, "回答です", reply_markup=markup)
    revision, _ = api.changes_since(RESIDENT, 0)
    await bot.edit_message_text(
        text="ありがとうございました", chat_id=RESIDENT, message_id=sent.message_id
    )
    stored = api.message(RESIDENT, sent.message_id)
    assert stored is not None
    assert stored.text == "ありがとうございました"
    assert stored.inline_buttons == []
    assert stored.edits == 1
    _, changed = api.changes_since(RESIDENT, revision)
    assert [m.message_id for m in changed] == [sent.message_id]

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            text="ありがとうございました", chat_id=RESIDENT, message_id=sent.message_id
        )
    await bot.edit_message_reply_markup(
        chat_id=RESIDENT, message_id=sent.message_id, reply_markup=markup
    )
    assert stored.button_texts() == ["👍"]
    assert await bot.delete_message(RESIDENT, sent.message_id)
    assert stored.deleted
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="x", chat_id=RESIDENT, message_id=sent.message_id)


async def test_send_document_uploads_the_file(bot: Bot, api: FakeBotAPI) -> None:
    api.send_text(RESIDENT, "hi")
    content = "BEGIN:VCALENDAR\r\nSUMMARY:スマホ教室\r\nEND:VCALENDAR\r\n".encode()
    sent = await bot.send_document(
        RESIDENT,
        BufferedInputFile(content, filename="sumaho.ics"),
        caption="カレンダーに入れられます",
    )
    assert sent.document is not None
    assert sent.document.file_name == "sumaho.ics"
    (message,) = await api.wait_for_messages(RESIDENT)
    assert message.document is not None
    assert message.document.content == content
    assert message.document.file_name == "sumaho.ics"
    assert message.text == "カレンダーに入れられます"


async def test_other_methods(bot: Bot, api: FakeBotAPI) -> None:
    api.send_text(RESIDENT, "hi")
    assert await bot.send_chat_action(RESIDENT, "typing")
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert api.pending_updates == 0
    assert await bot.set_my_commands([])  # aiogram sends the empty list
    assert await bot.set_webhook("https://madoguchi.example.jp/telegram/webhook")
    assert api.webhook_url == "https://madoguchi.example.jp/telegram/webhook"
    info = await bot.get_webhook_info()
    assert info.url == api.webhook_url
    with pytest.raises(Exception, match="Conflict"):
        await bot.get_updates(timeout=0)
    await bot.delete_webhook()
    assert await bot.get_updates(timeout=0) == []


# -- failure injection ------------------------------------------------------------------------


async def test_429_maps_to_retry_after(bot: Bot, api: FakeBotAPI) -> None:
    api.send_text(RESIDENT, "hi")
    api.fail_next("sendMessage", retry_after=3)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(RESIDENT, "一回目")
    assert caught.value.retry_after == 3
    await bot.send_message(RESIDENT, "二回目")  # only the next call failed
    assert [m.text for m in api.messages(RESIDENT)] == ["二回目"]
    assert len(api.calls_of("sendMessage", chat_id=RESIDENT)) == 2


async def test_5xx_maps_to_server_error(bot: Bot, api: FakeBotAPI) -> None:
    api.send_text(RESIDENT, "hi")
    api.fail_next("sendMessage", status=502, description="Bad Gateway", times=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError, match="Bad Gateway"):
            await bot.send_message(RESIDENT, "x")
    await bot.send_message(RESIDENT, "x")


async def test_blocked_resident_is_forbidden(bot: Bot, api: FakeBotAPI) -> None:
    api.send_text(RESIDENT, "hi")
    api.send_text(RESIDENT + 1, "hi")
    api.block(RESIDENT)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(RESIDENT, "x")
    await bot.send_message(RESIDENT + 1, "x")  # other residents are unaffected
    api.fail_next("sendMessage", chat_id=RESIDENT + 1)
    await bot.get_me()  # a failure for one method leaves the others alone
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(RESIDENT + 1, "x")


# -- a dispatcher polling the fake: the whole loop ------------------------------------------


async def test_start_polling_round_trip(bot: Bot, api: FakeBotAPI) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"「{message.text}」ですね")

    @dispatcher.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        await query.answer("押されました")

    task = asyncio.create_task(
        dispatcher.start_polling(
            bot, polling_timeout=1, handle_signals=False, close_bot_session=False
        )
    )
    try:
        api.send_text(RESIDENT, "こんにちは😀")
        api.send_text(RESIDENT + 1, "別の人")
        (reply,) = await api.wait_for_messages(RESIDENT)
        assert reply.text == "「こんにちは😀」ですね"
        (other,) = await api.wait_for_messages(RESIDENT + 1)
        assert other.text == "「別の人」ですね"
        update_id = api.press_button(RESIDENT, reply.message_id, "x")
        answer = await api.wait_for_callback_answer(api.callback_query_id_of(update_id))
        assert answer.text == "押されました"
    finally:
        await dispatcher.stop_polling()
        await task
    await api.wait_until(lambda: api.pending_updates == 0, timeout=1)


async def test_recorded_calls_can_be_bounded() -> None:
    fake = FakeBotAPI(max_recorded_calls=3)
    base = await fake.start()
    bot = Bot(DEFAULT_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    try:
        for _ in range(5):
            await bot.get_me()
        assert len(fake.calls) == 3
        fake.send_text(RESIDENT, "hi")
        fake.forget_chat(RESIDENT)
        assert fake.messages(RESIDENT, include_resident=True) == []
    finally:
        await bot.session.close()
        await fake.stop()
