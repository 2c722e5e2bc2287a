"""スマホ教室 in the bot: the list, details, the sign-up flow step by step, refusals, forged and
stale buttons, double taps, timeouts, 予約の確認 with cancelling, and /mydata.

Real dispatcher, handlers and keyboards with the recording Bot API session; the database is
real (SQLite; the `db` tests also PostgreSQL); time comes from a ManualClock injected as the
dispatcher's `clock`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiogram.methods import AnswerCallbackQuery, SendDocument, TelegramMethod
from aiogram.types import BufferedInputFile
from botkit import BOT_USER, TOKEN, Harness, RecordingSession, Sent, bot_settings, sent_messages
from icalendar import Calendar
from sqlalchemy import select

from bot import ics, messages
from bot import messages_classes as texts
from bot.callbacks import (
    ClassAction,
    ClassCb,
    RegistrationAction,
    RegistrationCb,
    SignUpAction,
    SignUpCb,
)
from bot.errors import RetryMiddleware
from bot.factory import create_bot, create_dispatcher
from bot.handlers.classes import FLOW_TIMEOUT
from classes import service
from classes.clock import ManualClock
from classes.models import ClassNotification, ClassRegistration
from classes.types import (
    ClassDraft,
    ClassInfo,
    ClassStatus,
    RegistrationInfo,
    RegistrationStatus,
)
from faq.inquiry_models import QuestionLog
from madoguchi.app import open_app
from madoguchi.db import session_scope
from madoguchi.residents import Resident

TOKYO = ZoneInfo("Asia/Tokyo")
HANAKO = 111
TARO = 222
JIRO = 333
# 2025-11-20 09:00 in Tokyo; the class is on Wednesday 2025-12-03, 14:00–15:30 Tokyo.
START = datetime(2025, 11, 20, 0, 0, tzinfo=UTC)
WHEN = "12月3日（水）14:00〜15:30"
MENU_ROWS = [["質問する", "カテゴリから探す"], ["スマホ教室", "窓口・電話"]]


def draft(**overrides: Any) -> ClassDraft:
    base = ClassDraft(
        title="はじめてのスマホ",
        venue="中央公民館 2階",
        starts_at=datetime(2025, 12, 3, 14, 0, tzinfo=TOKYO),
        ends_at=datetime(2025, 12, 3, 15, 30, tzinfo=TOKYO),
        capacity=3,
        registration_deadline=datetime(2025, 12, 2, 17, 0, tzinfo=TOKYO),
        description="電話のかけ方と、写真のとり方を学びます。",
        what_to_bring="スマートフォン、老眼鏡",
    )
    return replace(base, **overrides)


class DocumentSession(RecordingSession):
    """The recording session, answering sendDocument with a Message like Telegram does."""

    def _result(self, method: TelegramMethod[Any]) -> Any:
        if isinstance(method, SendDocument):
            self.next_message_id += 1
            name = getattr(method.document, "filename", None) or "document"
            return {
                "message_id": self.next_message_id,
                "date": int(datetime.now(UTC).timestamp()),
                "chat": {"id": method.chat_id, "type": "private"},
                "from": BOT_USER,
                "document": {"file_id": "DOC1", "file_unique_id": "U1", "file_name": name},
                "caption": method.caption,
            }
        return super()._result(method)


@dataclass
class Town:
    """The bot, the clock, and direct access to the classes in the database."""

    h: Harness
    clock: ManualClock

    async def create(self, **overrides: Any) -> ClassInfo:
        async with session_scope(self.h.context.session_factory) as session:
            return await service.create_class(
                session, draft(**overrides), actor="test", now=self.clock.now()
            )

    async def cancel_class(self, class_id: int) -> None:
        async with session_scope(self.h.context.session_factory) as session:
            await service.cancel_class(session, class_id, actor="test", now=self.clock.now())

    async def registrations(self) -> list[ClassRegistration]:
        async with self.h.context.session_factory() as session:
            rows = await session.scalars(select(ClassRegistration).order_by(ClassRegistration.id))
            return list(rows)

    async def resident_id(self, user_id: int) -> int:
        async with self.h.context.session_factory() as session:
            resident_id = await session.scalar(
                select(Resident.id).where(Resident.telegram_user_id == user_id)
            )
            assert resident_id is not None
            return resident_id

    async def questions(self) -> list[str]:
        async with self.h.context.session_factory() as session:
            return list(await session.scalars(select(QuestionLog.question)))

    async def tap(
        self, user: int, data: str
    ) -> tuple[list[Sent], list[SendDocument], AnswerCallbackQuery]:
        """Tap a button: the messages, the documents and the (one) callback answer."""
        before = len(self.h.session.requests)
        sent, answers = await self.h.press(user, data)
        documents = [r for r in self.h.session.requests[before:] if isinstance(r, SendDocument)]
        assert len(answers) == 1, answers
        return sent, documents, answers[0]

    async def contact(self, user: int, *, of: int, phone: str = "819012345678") -> list[Sent]:
        contact = {"phone_number": phone, "first_name": "花子", "user_id": of}
        return await self.h.send(user, contact=contact)

    async def open_class(self, user: int, class_id: int) -> Sent:
        [details], _, _ = await self.tap(
            user, ClassCb(action=ClassAction.DETAILS, id=class_id).pack()
        )
        return details

    async def sign_up(
        self,
        user: int,
        class_id: int,
        *,
        name: str | None = None,
        phone: str | None = None,
        seats: int = 1,
    ) -> tuple[list[Sent], list[SendDocument]]:
        """The whole flow; returns what the final 申し込む produced."""
        details = await self.open_class(user, class_id)
        [prompt], _, _ = await self.tap(user, details.button("申し込む"))
        if name is None:
            [phone_prompt], _, _ = await self.tap(user, prompt.button("この名前で申し込む"))
        else:
            [phone_prompt] = await self.h.text(user, name)
        assert phone_prompt.text == texts.PHONE_PROMPT
        _ack, seats_prompt = await self.h.text(user, phone or "電話番号なしで進む")
        [confirm], _, _ = await self.tap(user, seats_prompt.button(texts.seats_button(seats)))
        sent, documents, _ = await self.tap(user, confirm.button("申し込む"))
        return sent, documents


async def _town(database_url: str) -> AsyncIterator[Town]:
    async with open_app(bot_settings(database_url)) as context:
        session = DocumentSession()

        async def no_sleep(_seconds: float) -> None:
            return None

        bot = create_bot(TOKEN, session=session, retry=RetryMiddleware(sleep=no_sleep))
        dispatcher = create_dispatcher(context)
        clock = ManualClock(START)
        dispatcher["clock"] = clock
        harness = Harness(context=context, bot=bot, dispatcher=dispatcher, session=session)
        try:
            yield Town(harness, clock)
        finally:
            await bot.session.close()


@pytest.fixture
async def town(isolated_settings_env: Path, tmp_path: Path) -> AsyncIterator[Town]:
    async for item in _town(f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"):
        yield item


@pytest.fixture
async def db_town(isolated_settings_env: Path, database_url: str) -> AsyncIterator[Town]:
    async for item in _town(database_url):
        yield item


def ics_of(document: SendDocument) -> Calendar:
    assert isinstance(document.document, BufferedInputFile)
    assert (document.document.filename or "").endswith(".ics")
    return Calendar.from_ical(document.document.data)


# --- the list and the details ---------------------------------------------------------------


async def test_no_classes_says_so_with_the_contact(town: Town) -> None:
    [sent] = await town.h.text(HANAKO, "スマホ教室")
    assert sent.text == texts.no_classes(bot_settings("sqlite://").town)
    assert sent.labels == ["メニューに戻る"]


async def test_list_shows_date_venue_and_seats_as_buttons(town: Town) -> None:
    open_class = await town.create()
    full = await town.create(
        title="マイナポータル入門",
        capacity=1,
        starts_at=datetime(2025, 12, 5, 10, 0, tzinfo=TOKYO),
        ends_at=datetime(2025, 12, 5, 11, 0, tzinfo=TOKYO),
    )
    closed = await town.create(
        title="写真の送り方",
        capacity=1,
        waitlist_enabled=False,
        starts_at=datetime(2025, 12, 6, 10, 0, tzinfo=TOKYO),
        ends_at=datetime(2025, 12, 6, 11, 0, tzinfo=TOKYO),
    )
    await town.sign_up(TARO, full.id)
    await town.sign_up(TARO, closed.id)
    [sent] = await town.h.text(HANAKO, "スマホ教室")
    assert sent.text.startswith("スマホ教室の予定です。")
    assert WHEN in sent.text
    assert "中央公民館 2階" in sent.text
    assert "残り3席" in sent.text
    assert "満席・キャンセル待ちできます" in sent.text
    assert sent.labels == [
        "12月3日（水）14:00 はじめてのスマホ 残り3席",
        "12月5日（金）10:00 マイナポータル入門 満席・キャンセル待ちできます",
        "12月6日（土）10:00 写真の送り方 満席",
        "予約の確認",
        "メニューに戻る",
    ]
    assert sent.buttons[0][0][1] == ClassCb(action=ClassAction.DETAILS, id=open_class.id).pack()
    # The same list from the inline menu button.
    [again], _, _ = await town.tap(HANAKO, "m:k")
    assert again.text == sent.text


async def test_details_show_everything_with_apply_back_and_menu(town: Town) -> None:
    klass = await town.create()
    details = await town.open_class(HANAKO, klass.id)
    for part in (
        "■ はじめてのスマホ",
        "電話のかけ方と、写真のとり方を学びます。",
        f"日時：{WHEN}",
        "場所：中央公民館 2階",
        "持ち物：スマートフォン、老眼鏡",
        "定員：3人（残り3席）",
        "申し込みの締め切り：12月2日（火）17:00",
    ):
        assert part in details.text
    assert details.labels == ["申し込む", "戻る", "メニューに戻る"]
    [listing], _, _ = await town.tap(HANAKO, details.button("戻る"))
    assert listing.text.startswith("スマホ教室の予定です。")


# --- the sign-up flow -----------------------------------------------------------------------


async def test_sign_up_step_by_step_with_prefilled_name_and_shared_contact(town: Town) -> None:
    klass = await town.create()
    details = await town.open_class(HANAKO, klass.id)
    [prompt], _, _ = await town.tap(HANAKO, details.button("申し込む"))
    assert "「花子」でよろしければ" in prompt.text
    assert prompt.labels == ["この名前で申し込む", "戻る", "メニューに戻る"]
    [phone], _, _ = await town.tap(HANAKO, prompt.button("この名前で申し込む"))
    assert phone.text == texts.PHONE_PROMPT
    assert phone.reply_buttons == [
        ["電話番号を送る"],
        ["電話番号なしで進む"],
        ["戻る", "メニューに戻る"],
    ]
    assert phone.reply_markup.keyboard[0][0].request_contact is True
    ack, seats = await town.contact(HANAKO, of=HANAKO)
    assert ack.text == texts.PHONE_SAVED
    assert ack.reply_buttons == MENU_ROWS  # the menu keyboard is back
    assert "付き添い" in seats.text
    assert seats.labels == [
        "1人（ご本人だけ）",
        "2人（付き添いのご家族と）",
        "戻る",
        "メニューに戻る",
    ]
    [confirm], _, _ = await town.tap(HANAKO, seats.button("2人（付き添いのご家族と）"))
    for part in (
        "この内容で申し込みます。",
        "■ はじめてのスマホ",
        f"日時：{WHEN}",
        "場所：中央公民館 2階",
        "持ち物：スマートフォン、老眼鏡",
        "人数：2人",
        "お名前：花子",
        "電話番号：09012345678",
    ):
        assert part in confirm.text
    assert "キャンセル待ち" not in confirm.text
    assert confirm.labels == ["申し込む", "戻る", "メニューに戻る"]
    assert await town.registrations() == []  # nothing is stored before 申し込む

    [done], [document], ack_answer = await town.tap(HANAKO, confirm.button("申し込む"))
    assert ack_answer.show_alert is not True
    assert done.text.startswith("申し込みが完了しました。")
    assert f"日時：{WHEN}" in done.text
    assert "教室の前にも、このチャットでお知らせします。" in done.text
    assert document.caption == texts.ICS_CAPTION
    assert document.reply_markup is not None
    [row] = await town.registrations()
    assert (row.name, row.phone, row.seats, row.status) == ("花子", "09012345678", 2, "confirmed")
    assert row.resident_id == await town.resident_id(HANAKO)

    [event] = ics_of(document).walk("VEVENT")
    assert event.decoded("dtstart") == datetime(2025, 12, 3, 5, 0, tzinfo=UTC)
    assert event.decoded("dtend") == datetime(2025, 12, 3, 6, 30, tzinfo=UTC)
    assert str(event["summary"]) == "はじめてのスマホ"
    assert str(event["location"]) == "中央公民館 2階"
    assert "スマートフォン、老眼鏡" in str(event["description"])
    assert str(event["uid"]) == f"class-{klass.id}-registration-{row.id}@madoguchi.invalid"


async def test_typed_name_and_phone_then_waitlist(town: Town) -> None:
    klass = await town.create(capacity=1)
    await town.sign_up(TARO, klass.id)
    details = await town.open_class(HANAKO, klass.id)
    assert "満席・キャンセル待ちできます" in details.text
    [prompt], _, _ = await town.tap(HANAKO, details.button("申し込む"))
    [phone] = await town.h.text(HANAKO, "  山田　花子  ")
    assert phone.text == texts.PHONE_PROMPT
    [invalid] = await town.h.text(HANAKO, "でんわ")
    assert invalid.text == texts.PHONE_INVALID
    ack, seats = await town.h.text(HANAKO, "０９０－１２３４－５６７８")
    assert ack.text == texts.PHONE_SAVED
    [confirm], _, _ = await town.tap(HANAKO, seats.button("1人（ご本人だけ）"))
    assert "キャンセル待ちでの受付になります" in confirm.text
    assert "お名前：山田 花子" in confirm.text
    [done], documents, _ = await town.tap(HANAKO, confirm.button("申し込む"))
    assert done.text.startswith("キャンセル待ちで受け付けました（1番目）。")
    assert documents == []  # no calendar file without a seat
    assert done.labels == ["予約の確認", "教室の一覧に戻る", "メニューに戻る"]
    rows = await town.registrations()
    assert [(r.name, r.phone, r.status) for r in rows] == [
        ("花子", None, "confirmed"),
        ("山田 花子", "09012345678", "waitlisted"),
    ]


async def test_name_limits_and_someone_elses_contact(town: Town) -> None:
    klass = await town.create()
    details = await town.open_class(HANAKO, klass.id)
    await town.tap(HANAKO, details.button("申し込む"))
    [too_long] = await town.h.text(HANAKO, "あ" * 101)
    assert too_long.text == texts.NAME_TOO_LONG
    [phone] = await town.h.text(HANAKO, "あ" * 100)
    assert phone.text == texts.PHONE_PROMPT
    [not_own] = await town.contact(HANAKO, of=TARO)
    assert not_own.text == texts.PHONE_NOT_OWN
    assert not_own.reply_buttons[0] == ["電話番号を送る"]
    [no_button] = await town.h.text(HANAKO, "電話番号を送る")  # the demo chat sends the label
    assert no_button.text == texts.PHONE_BUTTON_UNAVAILABLE
    ack, _seats = await town.h.text(HANAKO, "電話番号なしで進む")
    assert ack.text == texts.PHONE_SKIPPED
    assert await town.registrations() == []


async def test_every_step_goes_back_and_to_the_menu(town: Town) -> None:
    klass = await town.create()
    details = await town.open_class(HANAKO, klass.id)
    [name], _, _ = await town.tap(HANAKO, details.button("申し込む"))
    [phone], _, _ = await town.tap(HANAKO, name.button("この名前で申し込む"))
    # 戻る on the phone step's keyboard: back to the name, the menu keyboard restored.
    back, name_again = await town.h.text(HANAKO, "戻る")
    assert back.reply_buttons == MENU_ROWS
    assert name_again.text == name.text
    [phone] = await town.h.text(HANAKO, "花子")
    _ack, seats = await town.h.text(HANAKO, "電話番号なしで進む")
    [phone_again], _, _ = await town.tap(HANAKO, seats.button("戻る"))
    assert phone_again.text == texts.PHONE_PROMPT
    _ack, seats = await town.h.text(HANAKO, "電話番号なしで進む")
    [confirm], _, _ = await town.tap(HANAKO, seats.button("1人（ご本人だけ）"))
    [seats_again], _, _ = await town.tap(HANAKO, confirm.button("戻る"))
    assert seats_again.labels == seats.labels
    [confirm], _, _ = await town.tap(HANAKO, seats_again.button("2人（付き添いのご家族と）"))
    assert "人数：2人" in confirm.text
    # 戻る on the name step returns to the class; メニューに戻る anywhere ends the flow.
    [details_again], _, _ = await town.tap(HANAKO, name.button("戻る"))
    assert details_again.text == details.text
    [menu], _, _ = await town.tap(HANAKO, confirm.button("メニューに戻る"))
    assert menu.text == messages.MENU
    # The flow is over: the old 申し込む asks to start again and registers nobody.
    [again], _, _ = await town.tap(HANAKO, confirm.button("申し込む"))
    assert again.text == texts.FLOW_EXPIRED
    assert await town.registrations() == []
    # メニューに戻る typed on the phone keyboard.
    [name], _, _ = await town.tap(HANAKO, details.button("申し込む"))
    await town.tap(HANAKO, name.button("この名前で申し込む"))
    [menu] = await town.h.text(HANAKO, "メニューに戻る")
    assert menu.text == messages.MENU
    assert menu.reply_buttons == MENU_ROWS


async def test_max_one_seat_skips_the_seats_step(town: Town) -> None:
    klass = await town.create(max_seats_per_registration=1)
    details = await town.open_class(HANAKO, klass.id)
    [name], _, _ = await town.tap(HANAKO, details.button("申し込む"))
    await town.tap(HANAKO, name.button("この名前で申し込む"))
    _ack, confirm = await town.h.text(HANAKO, "電話番号なしで進む")
    assert "人数：1人" in confirm.text
    [phone], _, _ = await town.tap(HANAKO, confirm.button("戻る"))
    assert phone.text == texts.PHONE_PROMPT
    # A forged seats button for more than the class allows changes nothing.
    forged = SignUpCb(action=SignUpAction.SEATS, cls=klass.id, value=2).pack()
    _ack, confirm = await town.h.text(HANAKO, "電話番号なしで進む")
    sent, _, answer = await town.tap(HANAKO, forged)
    assert sent == [] and answer.text == messages.STALE


async def test_text_in_the_flow_is_the_answer_and_elsewhere_a_question(town: Town) -> None:
    klass = await town.create()
    question = "マイナンバーカードの暗証番号を忘れました"
    details = await town.open_class(HANAKO, klass.id)
    await town.tap(HANAKO, details.button("申し込む"))
    [phone] = await town.h.text(HANAKO, question)  # taken as the name
    assert phone.text == texts.PHONE_PROMPT
    assert await town.questions() == []
    # A menu button leaves the flow; the next text is a question again.
    [ask] = await town.h.text(HANAKO, "質問する")
    assert ask.text == messages.ASK_PROMPT
    [answer] = await town.h.text(HANAKO, question)
    assert answer.text != texts.PHONE_PROMPT
    assert await town.questions() == [question]
    # So does a command.
    [name], _, _ = await town.tap(HANAKO, details.button("申し込む"))
    [start] = await town.h.text(HANAKO, "/start")
    assert "こんにちは" in start.text
    await town.h.text(HANAKO, question)
    assert await town.questions() == [question, question]


async def test_an_abandoned_flow_times_out_harmlessly(town: Town) -> None:
    klass = await town.create()
    details = await town.open_class(HANAKO, klass.id)
    [name], _, _ = await town.tap(HANAKO, details.button("申し込む"))
    [phone], _, _ = await town.tap(HANAKO, name.button("この名前で申し込む"))
    _ack, seats = await town.h.text(HANAKO, "電話番号なしで進む")
    [confirm], _, _ = await town.tap(HANAKO, seats.button("1人（ご本人だけ）"))
    town.clock.advance(FLOW_TIMEOUT + timedelta(minutes=1))
    [expired], documents, answer = await town.tap(HANAKO, confirm.button("申し込む"))
    assert expired.text == texts.FLOW_EXPIRED
    assert expired.labels == ["教室の案内に戻る", "メニューに戻る"]
    assert documents == []
    assert await town.registrations() == []
    # Starting again works.
    sent, documents = await town.sign_up(HANAKO, klass.id)
    assert sent[0].text.startswith("申し込みが完了しました。")
    assert len(documents) == 1
    # A name step left for hours: the text typed later is a question, not a name.
    other = await town.create(title="LINEの使い方")
    details = await town.open_class(TARO, other.id)
    await town.tap(TARO, details.button("申し込む"))
    town.clock.advance(timedelta(hours=3))
    [reply] = await town.h.text(TARO, "マイナンバーカードの暗証番号を忘れました")
    assert reply.text != texts.PHONE_PROMPT
    assert len(await town.questions()) == 1


async def test_double_tap_on_apply_registers_once_and_shows_it(town: Town) -> None:
    klass = await town.create()
    details = await town.open_class(HANAKO, klass.id)
    [name], _, _ = await town.tap(HANAKO, details.button("申し込む"))
    await town.tap(HANAKO, name.button("この名前で申し込む"))
    _ack, seats = await town.h.text(HANAKO, "電話番号なしで進む")
    [confirm], _, _ = await town.tap(HANAKO, seats.button("1人（ご本人だけ）"))
    [done], _, _ = await town.tap(HANAKO, confirm.button("申し込む"))
    assert done.text.startswith("申し込みが完了しました。")
    [again], documents, _ = await town.tap(HANAKO, confirm.button("申し込む"))
    assert again.text.startswith("この教室は、もう申し込み済みです。")
    assert "状態：申し込み済み" in again.text
    assert documents == []
    assert len(await town.registrations()) == 1
    # 申し込む on the details again: the existing registration, no second flow.
    [shown], _, _ = await town.tap(HANAKO, details.button("申し込む"))
    assert shown.text.startswith("この教室は、もう申し込み済みです。")
    details = await town.open_class(HANAKO, klass.id)
    assert "申し込み済みです" in details.text
    assert "申し込む" not in details.labels


async def test_concurrent_double_tap_registers_once(db_town: Town) -> None:
    town = db_town
    klass = await town.create()
    details = await town.open_class(HANAKO, klass.id)
    [name], _, _ = await town.tap(HANAKO, details.button("申し込む"))
    await town.tap(HANAKO, name.button("この名前で申し込む"))
    _ack, seats = await town.h.text(HANAKO, "電話番号なしで進む")
    [confirm], _, _ = await town.tap(HANAKO, seats.button("1人（ご本人だけ）"))
    before = len(town.h.session.requests)
    await asyncio.gather(*(town.h.press(HANAKO, confirm.button("申し込む")) for _ in range(2)))
    replies = sent_messages(town.h.session.requests[before:])
    assert sorted(r.text.split("\n")[0] for r in replies) == [
        "この教室は、もう申し込み済みです。",
        "申し込みが完了しました。",
    ]
    [row] = await town.registrations()
    assert row.status == "confirmed"


# --- refusals -------------------------------------------------------------------------------


async def test_refusals_each_get_their_own_polite_message(town: Town) -> None:
    settings = bot_settings("sqlite://")
    deadline = await town.create(
        registration_deadline=START + timedelta(minutes=10), title="締め切りの近い教室"
    )
    closed = await town.create(capacity=1, waitlist_enabled=False, title="満席の教室")
    await town.sign_up(TARO, closed.id)
    cancelled = await town.create(title="中止の教室")
    await town.cancel_class(cancelled.id)
    soon = await town.create(
        title="まもなく始まる教室",
        starts_at=START + timedelta(hours=3),
        ends_at=START + timedelta(hours=4),
        registration_deadline=START + timedelta(hours=2),
    )

    full_details = await town.open_class(HANAKO, closed.id)
    assert "キャンセル待ちも受け付けていません" in full_details.text
    assert "申し込む" not in full_details.labels
    cancelled_details = await town.open_class(HANAKO, cancelled.id)
    assert "この教室は中止になりました" in cancelled_details.text
    assert settings.class_contact in cancelled_details.text
    assert "申し込む" not in cancelled_details.labels

    # A flow started in time, finished after the deadline: refused at 申し込む.
    details = await town.open_class(HANAKO, deadline.id)
    [name], _, _ = await town.tap(HANAKO, details.button("申し込む"))
    await town.tap(HANAKO, name.button("この名前で申し込む"))
    _ack, seats = await town.h.text(HANAKO, "電話番号なしで進む")
    [confirm], _, _ = await town.tap(HANAKO, seats.button("1人（ご本人だけ）"))
    town.clock.advance(timedelta(minutes=11))
    [refused], documents, _ = await town.tap(HANAKO, confirm.button("申し込む"))
    assert refused.text.startswith("申し訳ありません。この教室の申し込みは締め切りました。")
    assert "締め切り：11月20日（木）9:10" in refused.text
    assert documents == []
    # Old 申し込む buttons of the other refusals (forged or stale) are refused the same way.
    apply = ClassAction.APPLY
    [cancelled_reply], _, _ = await town.tap(HANAKO, ClassCb(action=apply, id=cancelled.id).pack())
    assert cancelled_reply.text.startswith("申し訳ありません。この教室は中止になりました。")
    [full_reply], _, _ = await town.tap(HANAKO, ClassCb(action=apply, id=closed.id).pack())
    assert "満席です" in full_reply.text
    town.clock.advance(timedelta(hours=3))
    [past_reply], _, _ = await town.tap(HANAKO, ClassCb(action=apply, id=soon.id).pack())
    assert "もう始まっているか、終わっています" in past_reply.text
    rows = await town.registrations()
    assert [(r.resident_id, r.class_id) for r in rows] == [
        (await town.resident_id(TARO), closed.id)
    ]


async def test_class_cancelled_during_the_flow(town: Town) -> None:
    klass = await town.create()
    details = await town.open_class(HANAKO, klass.id)
    [name], _, _ = await town.tap(HANAKO, details.button("申し込む"))
    await town.tap(HANAKO, name.button("この名前で申し込む"))
    _ack, seats = await town.h.text(HANAKO, "電話番号なしで進む")
    await town.cancel_class(klass.id)
    [refused], _, _ = await town.tap(HANAKO, seats.button("1人（ご本人だけ）"))
    assert refused.text.startswith("申し訳ありません。この教室は中止になりました。")
    assert await town.registrations() == []


async def test_forged_and_stale_buttons_touch_nothing(town: Town) -> None:
    klass = await town.create()
    await town.sign_up(TARO, klass.id)
    [taro_row] = await town.registrations()
    await town.h.text(HANAKO, "/start")
    for data in (
        ClassCb(action=ClassAction.DETAILS, id=999).pack(),
        ClassCb(action=ClassAction.APPLY, id=999).pack(),
        SignUpCb(action=SignUpAction.SUBMIT, cls=999).pack(),
    ):
        sent, _, answer = await town.tap(HANAKO, data)
        assert sent == [], data
        assert answer.text == texts.CLASS_NOT_FOUND
        assert answer.show_alert is True
    for action in RegistrationAction:
        for registration_id in (taro_row.id, 999):
            data = RegistrationCb(action=action, id=registration_id).pack()
            sent, documents, answer = await town.tap(HANAKO, data)
            assert sent == [] and documents == [], data
            assert answer.text == messages.STALE
    for data in ("k:zz", "k:d:abc", "j:y:abc", "r:y:", "j:q:1"):
        sent, _, answer = await town.tap(HANAKO, data)
        assert sent == [], data
        assert answer.text == messages.STALE
    # A flow button without a flow: polite, nothing stored.
    [expired], _, _ = await town.tap(
        HANAKO, SignUpCb(action=SignUpAction.SUBMIT, cls=klass.id).pack()
    )
    assert expired.text == texts.FLOW_EXPIRED
    [row] = await town.registrations()
    assert (row.id, row.status, row.cancelled_at) == (taro_row.id, "confirmed", None)


# --- 予約の確認 and cancelling ------------------------------------------------------------------


async def test_my_registrations_calendar_and_cancel_promotes_the_next(db_town: Town) -> None:
    town = db_town
    klass = await town.create(capacity=1)
    await town.sign_up(HANAKO, klass.id)
    waited, _ = await town.sign_up(TARO, klass.id)
    assert waited[0].text.startswith("キャンセル待ちで受け付けました（1番目）。")
    hanako_row, taro_row = await town.registrations()

    [mine], _, _ = await town.tap(HANAKO, ClassCb(action=ClassAction.MINE).pack())
    assert mine.text.startswith("お申し込みの一覧です。")
    assert "状態：申し込み済み（席が確保されています）" in mine.text
    assert mine.labels == [
        "カレンダーに追加：12月3日（水）",
        "キャンセルする：12月3日（水）",
        "教室の一覧に戻る",
        "メニューに戻る",
    ]
    [taro_mine], _, _ = await town.tap(TARO, ClassCb(action=ClassAction.MINE).pack())
    assert "状態：キャンセル待ち（1番目）" in taro_mine.text
    assert taro_mine.labels[0] == "キャンセルする：12月3日（水）"
    # The waitlisted resident gets no calendar file (a forged button says why).
    data = RegistrationCb(action=RegistrationAction.CALENDAR, id=taro_row.id).pack()
    _, documents, answer = await town.tap(TARO, data)
    assert documents == [] and answer.text == texts.ICS_NOT_CONFIRMED

    _, [document], _ = await town.tap(HANAKO, mine.button("カレンダーに追加：12月3日（水）"))
    [event] = ics_of(document).walk("VEVENT")
    assert event.decoded("dtstart") == datetime(2025, 12, 3, 5, 0, tzinfo=UTC)
    assert str(event["uid"]).startswith(f"class-{klass.id}-registration-{hanako_row.id}@")

    [ask], _, _ = await town.tap(HANAKO, mine.button("キャンセルする：12月3日（水）"))
    assert ask.text.startswith("本当にキャンセルしますか？")
    assert ask.labels == ["はい、キャンセルします", "いいえ、キャンセルしません", "メニューに戻る"]
    [kept], _, _ = await town.tap(HANAKO, ask.button("いいえ、キャンセルしません"))
    assert kept.text == mine.text
    assert [r.status for r in await town.registrations()] == ["confirmed", "waitlisted"]

    [done], _, _ = await town.tap(HANAKO, ask.button("はい、キャンセルします"))
    assert done.text.startswith("キャンセルしました。")
    rows = await town.registrations()
    assert [(r.id, r.status) for r in rows] == [
        (hanako_row.id, "cancelled"),
        (taro_row.id, "confirmed"),
    ]
    async with town.h.context.session_factory() as session:
        kinds = list(
            await session.scalars(
                select(ClassNotification.kind).where(
                    ClassNotification.registration_id == taro_row.id
                )
            )
        )
    assert "promoted" in kinds  # REMIND's dispatcher tells Taro
    # A second tap on はい: already cancelled, nothing else happens.
    [again], _, _ = await town.tap(HANAKO, ask.button("はい、キャンセルします"))
    assert again.text == texts.ALREADY_CANCELLED
    [empty], _, _ = await town.tap(HANAKO, ClassCb(action=ClassAction.MINE).pack())
    assert empty.text == texts.NO_REGISTRATIONS
    assert [(r.id, r.status) for r in await town.registrations()] == [
        (hanako_row.id, "cancelled"),
        (taro_row.id, "confirmed"),
    ]


async def test_mydata_counts_and_deletes_registrations_and_promotes(db_town: Town) -> None:
    town = db_town
    klass = await town.create(capacity=1)
    await town.sign_up(HANAKO, klass.id, phone="090-1234-5678")
    await town.sign_up(TARO, klass.id)
    [summary] = await town.h.text(HANAKO, "/mydata")
    assert "スマホ教室のお申し込み：1件" in summary.text
    [confirm], _, _ = await town.tap(HANAKO, summary.button("すべて削除する"))
    assert confirm.text == messages.CONFIRM_DELETE_WITH_CLASSES
    [done], _, _ = await town.tap(HANAKO, confirm.button("はい、削除します"))
    assert done.text == messages.DELETED
    [row] = await town.registrations()
    assert row.status == "confirmed"  # Taro got the freed seat
    async with town.h.context.session_factory() as session:
        users = list(await session.scalars(select(Resident.telegram_user_id)))
    assert users == [TARO]
    [taro_summary] = await town.h.text(TARO, "/mydata")
    assert "スマホ教室のお申し込み：1件" in taro_summary.text
    [jiro_summary] = await town.h.text(JIRO, "/mydata")
    assert "スマホ教室のお申し込み：0件" in jiro_summary.text
    assert "お名前や電話番号は記録していません。" in jiro_summary.text


# --- the calendar file and dates ------------------------------------------------------------


def _info(**overrides: Any) -> ClassInfo:
    base = ClassInfo(
        id=7,
        title="はじめてのスマホ",
        description="電話のかけ方",
        what_to_bring="スマートフォン",
        venue="中央公民館",
        starts_at=datetime(2025, 12, 3, 5, 0, tzinfo=UTC),
        ends_at=datetime(2025, 12, 3, 6, 30, tzinfo=UTC),
        capacity=10,
        confirmed_seats=2,
        waitlisted_seats=0,
        waitlisted_registrations=0,
        max_seats_per_registration=2,
        waitlist_enabled=True,
        registration_deadline=datetime(2025, 12, 2, 8, 0, tzinfo=UTC),
        status=ClassStatus.SCHEDULED,
        schedule_version=1,
        is_sample=False,
    )
    return replace(base, **overrides)


def test_calendar_file_is_stable_per_registration_and_follows_a_move() -> None:
    settings = bot_settings("sqlite://")
    registration = RegistrationInfo(
        id=42,
        class_id=7,
        resident_id=1,
        name="花子",
        phone="09012345678",
        seats=2,
        status=RegistrationStatus.CONFIRMED,
        waitlist_position=None,
        created_at=datetime(2025, 11, 20, 0, 0, tzinfo=UTC),
        confirmed_at=datetime(2025, 11, 20, 0, 0, tzinfo=UTC),
        cancelled_at=None,
        cancelled_by=None,
        attended_at=None,
    )
    first = ics.registration_calendar(_info(), registration, settings.town)
    assert first == ics.registration_calendar(_info(), registration, settings.town)
    assert b"DTSTART:20251203T050000Z" in first
    assert b"09012345678" not in first  # the phone number never leaves for a calendar
    moved = _info(
        starts_at=datetime(2025, 12, 4, 5, 0, tzinfo=UTC),
        ends_at=datetime(2025, 12, 4, 6, 0, tzinfo=UTC),
        schedule_version=2,
    )
    [event] = Calendar.from_ical(
        ics.registration_calendar(moved, registration, settings.town)
    ).walk("VEVENT")
    assert str(event["uid"]) == "class-7-registration-42@madoguchi.invalid"
    assert event.decoded("dtstart") == datetime(2025, 12, 4, 5, 0, tzinfo=UTC)
    assert event.decoded("sequence") == 1
    assert ics.file_name(moved, settings.tzinfo) == "smartphone-class-20251204-7.ics"
    # 08:30 in Tokyo on 5 December is still 4 December in UTC: the name follows the town.
    early = _info(
        starts_at=datetime(2025, 12, 4, 23, 30, tzinfo=UTC),
        ends_at=datetime(2025, 12, 5, 0, 30, tzinfo=UTC),
    )
    assert ics.file_name(early, settings.tzinfo) == "smartphone-class-20251205-7.ics"


def test_dates_in_the_town_zone() -> None:
    start = datetime(2025, 12, 3, 5, 0, tzinfo=UTC)
    assert texts.when(start, start + timedelta(minutes=90), TOKYO) == WHEN
    assert (
        texts.when(start, start + timedelta(hours=20), TOKYO)
        == "12月3日（水）14:00〜12月4日（木）10:00"
    )
    assert texts.title(_info(is_sample=True)) == "はじめてのスマホ（サンプル）"


def test_flow_screens_fit_in_one_telegram_message_with_a_very_long_what_to_bring() -> None:
    """持ち物 may be 5,000 characters (the admin allows it); the confirmation, done, already
    registered and cancel screens are single messages and must stay within 4,096."""
    klass = ClassInfo(
        id=1,
        title="教" * 200,
        description="",
        what_to_bring="持" * 5000,
        venue="場" * 200,
        starts_at=datetime(2025, 12, 3, 5, 0, tzinfo=UTC),
        ends_at=datetime(2025, 12, 3, 6, 30, tzinfo=UTC),
        capacity=3,
        confirmed_seats=0,
        waitlisted_seats=0,
        waitlisted_registrations=0,
        max_seats_per_registration=2,
        waitlist_enabled=True,
        registration_deadline=datetime(2025, 12, 2, 8, 0, tzinfo=UTC),
        status=ClassStatus.SCHEDULED,
        schedule_version=1,
        is_sample=False,
    )
    registration = RegistrationInfo(
        id=1,
        class_id=1,
        resident_id=1,
        name="名" * 100,
        phone="09012345678",
        seats=2,
        status=RegistrationStatus.CONFIRMED,
        waitlist_position=None,
        created_at=START,
        confirmed_at=START,
        cancelled_at=None,
        cancelled_by=None,
        attended_at=None,
    )
    screens = [
        texts.confirmation(
            klass, TOKYO, name="名" * 100, phone="+" + "9" * 15, seats=2, waitlist_expected=True
        ),
        texts.signed_up(klass, registration, TOKYO, reminded=True),
        texts.already_registered(klass, registration, TOKYO),
        texts.confirm_cancel(klass, registration, TOKYO),
    ]
    for screen in screens:
        assert len(screen) <= messages.TELEGRAM_TEXT_LIMIT
        assert "持ち物：持持持" in screen


async def test_a_slow_but_active_sign_up_is_not_cut_off(town: Town) -> None:
    """The 30 minutes count from the resident's last step, not from 申し込む: someone who
    looks for their phone number for 20 minutes and takes 20 more to choose is still in."""
    klass = await town.create()
    details = await town.open_class(HANAKO, klass.id)
    [name], _, _ = await town.tap(HANAKO, details.button("申し込む"))
    [_phone], _, _ = await town.tap(HANAKO, name.button("この名前で申し込む"))
    town.clock.advance(timedelta(minutes=20))
    _ack, seats = await town.h.text(HANAKO, "090-1234-5678")
    town.clock.advance(timedelta(minutes=20))
    [confirm], _, _ = await town.tap(HANAKO, seats.button("1人（ご本人だけ）"))
    assert confirm.text.startswith("この内容で申し込みます。")
    town.clock.advance(timedelta(minutes=20))
    [done], documents, _ = await town.tap(HANAKO, confirm.button("申し込む"))
    assert done.text.startswith("申し込みが完了しました。")
    assert len(documents) == 1


async def test_an_old_cancel_button_after_the_class_changes_nothing(town: Town) -> None:
    klass = await town.create()
    await town.sign_up(HANAKO, klass.id)
    [mine], _, _ = await town.tap(HANAKO, ClassCb(action=ClassAction.MINE).pack())
    [ask], _, _ = await town.tap(HANAKO, mine.button("キャンセルする：12月3日（水）"))
    town.clock.set(klass.ends_at + timedelta(days=1))
    for button in (
        mine.button("キャンセルする：12月3日（水）"),
        ask.button("はい、キャンセルします"),
    ):
        [reply], _, _ = await town.tap(HANAKO, button)
        assert reply.text == texts.CLASS_OVER
        assert reply.labels == ["予約の確認", "教室の一覧に戻る", "メニューに戻る"]
    [row] = await town.registrations()
    assert (row.status, row.cancelled_at) == ("confirmed", None)
