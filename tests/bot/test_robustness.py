"""Whatever residents send, and whatever Telegram answers, the bot stays polite and running."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botkit import TOKEN, TOWN, Harness, RecordingSession, bot_settings, build_harness
from sqlalchemy import select

from bot import messages
from bot.errors import RetryMiddleware
from bot.factory import create_bot, create_dispatcher, create_storage
from bot.runner import BotRuntime
from faq.inquiry_models import QuestionLog

HANAKO = 111
PHONE = "090-1234-5678"
FILE = {"file_id": "AgAD", "file_unique_id": "AQAD"}


def capture_logs(caplog: pytest.LogCaptureFixture) -> None:
    """The production level (INFO) everywhere, and DEBUG for our code and aiogram.

    (aiosqlite's own DEBUG records quote SQL parameters, i.e. the stored, masked question:
    deployments must not run the database driver at DEBUG.)
    """
    caplog.set_level(logging.INFO)
    for name in ("bot", "faq", "madoguchi", "aiogram"):
        caplog.set_level(logging.DEBUG, logger=name)


NON_TEXT: dict[str, dict[str, Any]] = {
    "sticker": {
        "sticker": {
            **FILE,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }
    },
    "photo": {"photo": [{**FILE, "width": 90, "height": 90}], "caption": "これ何？"},
    "voice": {"voice": {**FILE, "duration": 3}},
    "video": {"video": {**FILE, "width": 640, "height": 480, "duration": 5}},
    "contact": {"contact": {"phone_number": PHONE, "first_name": "花子"}},
    "document": {"document": {**FILE, "file_name": "申請書.pdf"}},
    "location": {"location": {"latitude": 35.0, "longitude": 135.0}},
}


@pytest.mark.parametrize("kind", list(NON_TEXT))
async def test_non_text_messages_get_a_polite_reply(harness: Harness, kind: str) -> None:
    [sent] = await harness.send(HANAKO, **NON_TEXT[kind])
    assert sent.text == messages.NOT_TEXT
    assert "文字のメッセージとボタンだけ" in sent.text
    assert sent.reply_buttons == [["質問する", "カテゴリから探す"], ["スマホ教室", "窓口・電話"]]
    async with harness.context.session_factory() as session:
        assert list(await session.scalars(select(QuestionLog))) == []


@pytest.mark.parametrize(
    "text",
    [
        "あ" * 4096,
        ("マイナンバーカードの暗証番号を忘れました。" * 200)[:4096],
        "🙂👨‍👩‍👧‍👦\u200b\u202e\ufeff𠮷野家\U0010fffd" * 100,
        "\n\n\n",
        "Ａ" * 4096,
    ],
    ids=["4096-kana", "4096-repeated-question", "emoji-and-controls", "blank", "4096-fullwidth"],
)
async def test_any_text_up_to_4096_characters(harness: Harness, text: str) -> None:
    sent = await harness.text(HANAKO, text)
    assert sent
    assert all(len(message.text) <= 4096 for message in sent)
    assert all(message.text != messages.APOLOGY for message in sent)


async def test_an_exception_in_a_handler_is_apologised_for_and_the_next_update_works(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.handlers import questions

    real = questions.answer_question

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(questions, "answer_question", broken)
    capture_logs(caplog)
    question = f"電話{PHONE}の人の暗証番号を忘れました"
    [apology] = await harness.text(HANAKO, question)
    assert apology.text == messages.APOLOGY
    assert apology.reply_buttons  # the menu
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and "RuntimeError" in errors[0].getMessage()
    async with harness.context.session_factory() as session:
        assert list(await session.scalars(select(QuestionLog))) == []  # rolled back

    monkeypatch.setattr(questions, "answer_question", real)
    [answer] = await harness.text(
        HANAKO, "マイナンバーカードの暗証番号を忘れました。どうすればいいですか？"
    )
    assert answer.text.startswith("■")
    for record in caplog.records:
        text = record.getMessage()
        assert "暗証番号を忘れ" not in text
        assert PHONE not in text and "12345678" not in text


async def test_an_exception_in_a_button_handler_answers_the_button(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.handlers import categories

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("boom")

    monkeypatch.setattr(categories, "find_category", broken)
    [sent], [ack] = await harness.press(HANAKO, "c:12345678:0")
    assert sent.text == messages.APOLOGY
    assert ack.text is None


async def test_no_log_record_contains_question_text_or_phone_numbers(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    capture_logs(caplog)
    questions = [
        f"私の電話番号は{PHONE}です。暗証番号を忘れました",
        "マイナンバーは123456789012です",
        "メールは hanako@example.jp です",
    ]
    for question in questions:
        await harness.text(HANAKO, question)
    await harness.send(HANAKO, **NON_TEXT["contact"])
    assert caplog.records  # aiogram does log each update
    for record in caplog.records:
        text = record.getMessage()
        for needle in (PHONE, "123456789012", "hanako@example.jp", "電話番号は", "メールは"):
            assert needle not in text
    async with harness.context.session_factory() as session:
        stored = [log.question for log in await session.scalars(select(QuestionLog))]
    assert stored == [
        "私の電話番号は＊＊＊です。暗証番号を忘れました",
        "マイナンバーは＊＊＊です",
        "メールは ＊＊＊ です",
    ]


# -- Telegram errors ------------------------------------------------------------------------


async def test_429_is_retried_after_retry_after(harness: Harness) -> None:
    harness.session.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    [first, second] = await harness.text(HANAKO, "/start")
    assert first.text == second.text  # the same message, sent again
    assert harness.sleeps == [7.0]


async def test_5xx_is_retried_with_bounded_exponential_backoff(harness: Harness) -> None:
    harness.session.fail_next("sendMessage", 502, "Bad Gateway", times=2)
    sent = await harness.text(HANAKO, "/start")
    assert len(sent) == 3
    assert harness.sleeps == [0.5, 1.0]


async def test_retries_give_up_after_bounded_attempts(harness: Harness) -> None:
    harness.session.fail_next("sendMessage", 500, "Internal Server Error", times=10)
    sent = await harness.text(HANAKO, "/start")
    # 4 attempts for the greeting, then 4 for the apology: both fail, nothing raises.
    assert len(sent) == 8
    assert harness.sleeps == [0.5, 1.0, 2.0] * 2
    harness.session.failures.clear()
    [menu] = await harness.text(HANAKO, "/menu")
    assert menu.text == messages.MENU


async def test_400_is_not_retried(harness: Harness) -> None:
    harness.session.fail_next("sendMessage", 400, "Bad Request: chat not found")
    await harness.text(HANAKO, "/start")
    assert harness.sleeps == []


async def test_too_long_retry_after_is_not_waited_for() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    session = RecordingSession()
    bot = create_bot(TOKEN, session=session, retry=RetryMiddleware(sleep=sleep, max_retry_after=30))
    session.fail_next("sendMessage", 429, "Too Many Requests", retry_after=3600)
    from aiogram.exceptions import TelegramRetryAfter

    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(HANAKO, "テスト")
    assert slept == []


# -- runtime: polling and webhook -------------------------------------------------------------


async def test_runtime_polls_and_stops(harness: Harness) -> None:
    session = RecordingSession()
    bot = create_bot(TOKEN, session=session)
    runtime = BotRuntime(harness.context, token=TOKEN, bot=bot)
    await runtime.start_polling()
    try:
        session.updates.append(
            {
                "update_id": 1,
                "message": {
                    "message_id": 1,
                    "date": 1700000000,
                    "chat": {"id": HANAKO, "type": "private"},
                    "from": {"id": HANAKO, "is_bot": False, "first_name": "花子"},
                    "text": "/start",
                },
            }
        )
        for _ in range(300):
            if any(r.__api_method__ == "sendMessage" for r in session.requests):
                break
            await asyncio.sleep(0.01)
        methods = [r.__api_method__ for r in session.requests]
        assert methods[:2] == ["deleteWebhook", "setMyCommands"]
        assert "sendMessage" in methods
    finally:
        await runtime.stop()
    assert session.closed


async def test_webhook_checks_the_secret_token(isolated_settings_env: Any, tmp_path: Any) -> None:
    from madoguchi.app import open_app

    settings = bot_settings(f"sqlite+aiosqlite:///{tmp_path / 'hook.sqlite3'}").model_copy(
        update={
            "webhook_url": "https://madoguchi.example.jp/",
            "webhook_secret": __import__("pydantic").SecretStr("s3cret-TOKEN_1"),
        }
    )
    async with open_app(settings) as context:
        session = RecordingSession()
        runtime = BotRuntime(context, token=TOKEN, bot=create_bot(TOKEN, session=session))
        app = web.Application()
        runtime.setup_webhook(app)
        update = {
            "update_id": 5,
            "message": {
                "message_id": 1,
                "date": 1700000000,
                "chat": {"id": HANAKO, "type": "private"},
                "from": {"id": HANAKO, "is_bot": False, "first_name": "花子"},
                "text": "/start",
            },
        }
        async with TestClient(TestServer(app)) as client:
            set_webhook = [r for r in session.requests if r.__api_method__ == "setWebhook"]
            assert [(r.url, r.secret_token) for r in set_webhook] == [  # type: ignore[attr-defined]
                ("https://madoguchi.example.jp/telegram/webhook", "s3cret-TOKEN_1")
            ]
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                response = await client.post("/telegram/webhook", json=update, headers=headers)
                assert response.status == 401
            assert not [r for r in session.requests if r.__api_method__ == "sendMessage"]
            response = await client.post(
                "/telegram/webhook",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-TOKEN_1"},
            )
            assert response.status == 200
            for _ in range(300):
                if any(r.__api_method__ == "sendMessage" for r in session.requests):
                    break
                await asyncio.sleep(0.01)
            [greeting] = [r for r in session.requests if r.__api_method__ == "sendMessage"]
            assert TOWN["town_name"] in greeting.text  # type: ignore[attr-defined]
        await runtime.stop()


async def test_webhook_needs_a_secret(isolated_settings_env: Any, tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="WEBHOOK_SECRET"):
        bot_settings(f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}").model_validate(
            {"database_url": "sqlite+aiosqlite:///x", "webhook_url": "https://example.jp"}
        )


async def test_storage_and_fresh_dispatchers(harness: Harness) -> None:
    from aiogram.fsm.storage.memory import MemoryStorage

    assert isinstance(create_storage(harness.context.settings), MemoryStorage)
    # Routers are built per dispatcher: a second one in the same process works.
    second = build_harness(harness.context)
    assert create_dispatcher(harness.context) is not second.dispatcher
    [sent] = await second.text(HANAKO, "/start")
    assert "こんにちは" in sent.text
