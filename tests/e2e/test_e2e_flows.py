"""Every resident flow of issue 4, end to end: aiogram's real aiohttp session polls the fake
Bot API on 127.0.0.1 and a scripted resident reads the replies and taps the buttons."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from e2ekit import (
    COUNTER_PHONE,
    LOSS_HOTLINE,
    LOST_ID,
    LOST_QUESTION,
    TOWN,
    UNKNOWN_QUESTION,
    VAGUE_QUESTION,
    Resident,
    menu_of,
)

from bot import messages
from bot.fake_api import FakeBotAPI, SentMessage
from bot.runner import BotRuntime
from faq.inquiries import list_feedback, list_unanswered
from madoguchi.app import AppContext, open_app
from madoguchi.residents import get_resident
from madoguchi.settings import Settings

MENU = list(messages.MENU_BUTTONS)
FEEDBACK_BUTTONS = [messages.BUTTON_HELPFUL, messages.BUTTON_NOT_HELPFUL, messages.BUTTON_MENU]


def assert_no_apology(resident: Resident) -> None:
    assert not any(messages.APOLOGY in text for text in resident.transcript())


def assert_answer_to(message: SentMessage, question_word: str) -> None:
    assert message.text is not None
    assert message.text.startswith("■ ")
    assert question_word in message.text.splitlines()[0]
    assert message.button_texts() == FEEDBACK_BUTTONS


async def test_start_help_menu_and_unknown_command(hanako: Resident) -> None:
    greeting = await hanako.say("/start")
    assert greeting.text == messages.greeting(Settings(**TOWN).town)  # type: ignore[arg-type]
    assert TOWN["town_name"] in (greeting.text or "")
    assert menu_of(greeting) == MENU  # the persistent menu of big buttons

    help_message = await hanako.say("/help")
    assert "使い方" in (help_message.text or "")
    assert menu_of(help_message) == MENU

    menu = await hanako.say("/menu")
    assert menu.text == messages.MENU
    assert menu_of(menu) == MENU

    unknown = await hanako.say("/nanikore")
    assert unknown.text == messages.UNKNOWN_COMMAND
    assert menu_of(unknown) == MENU

    contact = await hanako.say(messages.BUTTON_CONTACT)  # a menu button sends its label
    assert COUNTER_PHONE in (contact.text or "")
    classes = await hanako.say(messages.BUTTON_CLASSES)
    assert "スマホ教室" in (classes.text or "")
    back = await hanako.tap(classes, messages.BUTTON_MENU)
    assert menu_of(back) == MENU
    assert_no_apology(hanako)


async def test_my_number_question_answered_with_feedback(
    hanako: Resident, context: AppContext, api: FakeBotAPI
) -> None:
    await hanako.say("/start")
    prompt = await hanako.say(messages.BUTTON_ASK)
    assert prompt.text == messages.ASK_PROMPT

    answer = await hanako.say(LOST_QUESTION)
    assert_answer_to(answer, "なくし")
    assert LOSS_HOTLINE in (answer.text or "")
    assert "{counter_" not in (answer.text or "")
    assert TOWN["counter_name"] in (answer.text or "")  # town details filled in

    no_message = await hanako.taps(answer, messages.BUTTON_HELPFUL, replies=0)
    assert no_message == []
    assert api.callback_answers[-1].text == messages.FEEDBACK_THANKS
    async with context.session_factory() as session:
        votes = await list_feedback(session)
        resident = await get_resident(session, hanako.user_id)
    assert resident is not None
    assert [(v.faq_id, v.helpful, v.resident_id) for v in votes] == [(LOST_ID, True, resident.id)]

    # Changing one's mind: 👎 keeps one vote, now unhelpful, and offers a person.
    sorry = await hanako.tap(answer, messages.BUTTON_NOT_HELPFUL)
    assert COUNTER_PHONE in (sorry.text or "")
    assert messages.BUTTON_LEAVE_FOR_STAFF in sorry.button_texts()
    async with context.session_factory() as session:
        votes = await list_feedback(session)
    assert [(v.faq_id, v.helpful) for v in votes] == [(LOST_ID, False)]

    menu = await hanako.tap(answer, messages.BUTTON_MENU)
    assert menu_of(menu) == MENU
    assert_no_apology(hanako)


async def test_unknown_question_fallback_then_left_for_staff(
    hanako: Resident, context: AppContext
) -> None:
    question = f"{UNKNOWN_QUESTION} 電話は090-1234-5678です"
    fallback = await hanako.say(question)
    assert fallback.text is not None
    assert "お答えできませんでした" in fallback.text
    assert COUNTER_PHONE in fallback.text
    assert TOWN["counter_hours"] in fallback.text
    assert messages.BUTTON_LEAVE_FOR_STAFF in fallback.button_texts()

    thanks = await hanako.tap(fallback, messages.BUTTON_LEAVE_FOR_STAFF)
    assert thanks.text == messages.left_for_staff_text(Settings(**TOWN).town)  # type: ignore[arg-type]
    async with context.session_factory() as session:
        left = await list_unanswered(session, left_for_staff_only=True)
    assert len(left) == 1
    assert "天気" in left[0].question
    assert "090-1234-5678" not in left[0].question  # no phone numbers in the logs

    # Tapping again does not leave it twice.
    await hanako.taps(fallback, messages.BUTTON_LEAVE_FOR_STAFF, replies=0)
    async with context.session_factory() as session:
        assert len(await list_unanswered(session, left_for_staff_only=True)) == 1
    assert_no_apology(hanako)


async def test_suggestions_pick_a_candidate_or_none(hanako: Resident) -> None:
    suggestions = await hanako.say(VAGUE_QUESTION)
    assert suggestions.text == messages.SUGGESTIONS
    buttons = suggestions.button_texts()
    assert messages.BUTTON_NONE_OF_THESE in buttons
    labels = [b for b in buttons if b not in {messages.BUTTON_NONE_OF_THESE, messages.BUTTON_MENU}]
    assert len(labels) >= 2  # the candidate questions
    assert all("暗証番号" in label for label in labels[:2])

    answer = await hanako.tap(suggestions, labels[0])
    assert_answer_to(answer, labels[0].rstrip("…")[:10])

    fallback = await hanako.tap(suggestions, messages.BUTTON_NONE_OF_THESE)
    assert "お答えできませんでした" in (fallback.text or "")
    assert COUNTER_PHONE in (fallback.text or "")
    assert_no_apology(hanako)


async def test_browse_categories_with_buttons_only(hanako: Resident) -> None:
    await hanako.say("/start")
    categories = await hanako.say(messages.BUTTON_CATEGORIES)
    assert categories.text == messages.CATEGORIES
    names = categories.button_texts()
    assert any("マイナンバーカード" in name for name in names)
    category = next(name for name in names if "マイナンバーカード" in name)

    questions = await hanako.tap(categories, category)
    assert (questions.text or "").startswith(f"「{category}」の質問です")
    question_labels = [
        label
        for label in questions.button_texts()
        if label not in {messages.BUTTON_BACK_TO_CATEGORIES, messages.BUTTON_MENU}
        and label not in {messages.BUTTON_NEXT, messages.BUTTON_PREVIOUS}
    ]
    assert question_labels
    answer = await hanako.tap(questions, question_labels[0])
    assert answer.text is not None
    assert answer.text.startswith(f"■ {question_labels[0].rstrip('…')}")
    assert messages.BUTTON_HELPFUL in answer.button_texts()

    back = await hanako.tap(questions, messages.BUTTON_BACK_TO_CATEGORIES)
    assert back.text == messages.CATEGORIES
    assert_no_apology(hanako)


async def test_mydata_shows_and_deletes_everything(
    hanako: Resident, taro: Resident, context: AppContext
) -> None:
    answer = await hanako.say(LOST_QUESTION)
    await hanako.taps(answer, messages.BUTTON_HELPFUL, replies=0)
    await taro.say(LOST_QUESTION)

    summary = await hanako.say("/mydata")
    assert summary.text is not None
    assert "これまでのご質問：1件" in summary.text
    assert "回答：1件" in summary.text
    confirm = await hanako.tap(summary, messages.BUTTON_DELETE_ALL)
    assert confirm.text == messages.CONFIRM_DELETE
    done = await hanako.tap(confirm, messages.BUTTON_DELETE_YES)
    assert done.text == messages.DELETED

    async with context.session_factory() as session:
        assert await list_feedback(session) == []
        assert await get_resident(session, taro.user_id) is not None  # only her own data
    again = await hanako.say("/mydata")
    assert "これまでのご質問：0件" in (again.text or "")
    assert_no_apology(hanako)


async def test_stickers_photos_voice_contacts_files_get_a_polite_reply(
    hanako: Resident, api: FakeBotAPI, context: AppContext
) -> None:
    senders = [
        api.send_sticker,
        api.send_photo,
        api.send_voice,
        api.send_contact,
        api.send_document,
    ]
    for send in senders:
        send(hanako.user_id)
        (reply,) = await api.wait_for_messages(hanako.user_id, timeout=10)
        assert reply.text == messages.NOT_TEXT, send.__name__
        assert menu_of(reply) == MENU
    async with context.session_factory() as session:
        assert await list_unanswered(session, status=None) == []  # no phone number kept
    assert_no_apology(hanako)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(("マイナンバーカードの暗証番号を忘れました。" * 300)[:4096], id="4096-chars"),
        pytest.param("あ" * 4096, id="4096-same-char"),
        pytest.param("👵🏻スマホ\u200bの\u0301使い方\U0001f4f1？ \u202eabc \ufeff", id="unicode"),
        pytest.param("<b>太字</b> & <script>alert(1)</script>", id="markup"),
    ],
)
async def test_long_and_unusual_messages_are_handled(hanako: Resident, text: str) -> None:
    reply = await hanako.say(text)
    assert reply.text
    assert reply.text != messages.APOLOGY
    assert len(reply.text) <= 4096


async def test_forged_and_stale_buttons_are_answered_politely(
    hanako: Resident, taro: Resident, api: FakeBotAPI, context: AppContext
) -> None:
    fallback = await taro.say(UNKNOWN_QUESTION)
    staff_data = fallback.button(messages.BUTTON_LEAVE_FOR_STAFF).callback_data
    assert staff_data is not None
    hanakos = await hanako.say("/start")

    forged = [
        staff_data,  # taro's question log, pressed by hanako
        "f:999999:zzzz:1",
        "e:nonexistent",
        "c:deadbeef:7",
        "s:-1:x",
        "m:nope",
        "totally-unknown",
        "d:y:extra",
        "f:1:" + "x" * 50,
    ]
    for data in forged:
        update_id = api.press_button(hanako.user_id, hanakos.message_id, data)
        answer = await api.wait_for_callback_answer(api.callback_query_id_of(update_id), 10)
        assert answer.text in {messages.STALE, None}, data
    # A button on a message that does not exist (no `message` in the query).
    update_id = api.press_button(hanako.user_id, 999_999, "m:m")
    await api.wait_for_callback_answer(api.callback_query_id_of(update_id), 10)

    async with context.session_factory() as session:
        assert await list_unanswered(session, left_for_staff_only=True) == []
    assert_no_apology(hanako)
    # The bot is still there.
    assert menu_of(await hanako.say("/menu")) == MENU


async def test_429_is_retried_and_the_message_arrives(hanako: Resident, api: FakeBotAPI) -> None:
    api.fail_next("sendMessage", retry_after=1, chat_id=hanako.user_id)
    answer = await hanako.say(LOST_QUESTION)
    assert_answer_to(answer, "なくし")
    calls = api.calls_of("sendMessage", chat_id=hanako.user_id)
    assert len(calls) == 2  # refused once, sent after retry_after
    assert calls[1].at - calls[0].at >= 0.9


async def test_5xx_is_retried(hanako: Resident, api: FakeBotAPI) -> None:
    api.fail_next("sendMessage", status=502, description="Bad Gateway", chat_id=hanako.user_id)
    assert (await hanako.say("/start")).text


async def test_blocked_resident_is_marked_and_not_retried(
    hanako: Resident, taro: Resident, api: FakeBotAPI, context: AppContext
) -> None:
    await hanako.say("/start")
    api.block(hanako.user_id)
    api.send_text(hanako.user_id, LOST_QUESTION)

    async def blocked() -> bool:
        async with context.session_factory() as session:
            resident = await get_resident(session, hanako.user_id)
        return resident is not None and resident.blocked_at is not None

    for _ in range(100):
        if await blocked():
            break
        await asyncio.sleep(0.05)
    assert await blocked()
    await asyncio.sleep(0.3)  # time for a retry, if there were one
    refused = [
        call
        for call in api.calls_of("sendMessage", chat_id=hanako.user_id)
        if call.params.get("text") != messages.greeting(context.settings.town)
    ]
    assert len(refused) == 1  # tried once, never again
    # Others are served meanwhile.
    assert (await taro.say("/start")).text


# -- the same flow on each database backend ---------------------------------------------------


@pytest.fixture
async def bot_on_backend(
    isolated_settings_env: Path, database_url: str, api: FakeBotAPI
) -> AsyncIterator[tuple[Resident, AppContext]]:
    settings = Settings(database_url=database_url, **TOWN)  # type: ignore[arg-type]
    async with open_app(settings) as context:
        assert api.base_url is not None
        runtime = BotRuntime(context, token=api.token, api_base=api.base_url)
        await runtime.start_polling()
        try:
            yield Resident(api, user_id=6001), context
        finally:
            await runtime.stop()


async def test_question_feedback_and_staff_log_on_each_backend(
    bot_on_backend: tuple[Resident, AppContext],
) -> None:
    resident, context = bot_on_backend
    answer = await resident.say(LOST_QUESTION)
    await resident.taps(answer, messages.BUTTON_HELPFUL, replies=0)
    fallback = await resident.say(UNKNOWN_QUESTION)
    await resident.tap(fallback, messages.BUTTON_LEAVE_FOR_STAFF)
    async with context.session_factory() as session:
        assert [(v.faq_id, v.helpful) for v in await list_feedback(session)] == [(LOST_ID, True)]
        left = await list_unanswered(session, left_for_staff_only=True)
    assert [entry.question for entry in left] == [UNKNOWN_QUESTION]
