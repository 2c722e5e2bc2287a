"""The aiogram sender of reminders and notices, against the fake Bot API over 127.0.0.1.

The bot is built by `bot.factory.create_bot`, so its session carries the retry middleware:
these tests also show that the sender goes below it (one request per send, 429 reported).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import SendMessage

from bot.callbacks import ClassAction, ClassCb, MenuAction, MenuCb
from bot.factory import create_bot
from bot.fake_api import FakeBotAPI
from bot.messages import TELEGRAM_TEXT_LIMIT
from bot.notifier import TelegramNotificationSender, outcome_of, render
from classes.clock import ManualClock
from classes.notifications import SendStatus
from classes.types import (
    ClassInfo,
    ClassStatus,
    NotificationKind,
    OutgoingNotification,
    RegistrationInfo,
    RegistrationStatus,
)
from madoguchi.settings import TownInfo

TOKYO = ZoneInfo("Asia/Tokyo")
RESIDENT = 4242
TOKEN = "777:NOTIFIER-TEST"
TOWN = TownInfo(
    town_name="みどり町",
    counter_name="みどり町役場 住民課",
    counter_phone="0555-12-3456",
    counter_hours="平日 8:30〜17:15",
    counter_place="役場 1階",
    class_contact="みどり町役場 情報政策係",
)


def item(kind: NotificationKind, *, user: int = RESIDENT) -> OutgoingNotification:
    created = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    waiting = kind is NotificationKind.WAITLIST_CLOSED  # still on the waitlist at the start
    klass = ClassInfo(
        id=7,
        title="はじめてのスマホ",
        description="電話のかけ方から",
        what_to_bring="スマートフォン、老眼鏡",
        venue="町民センター 2階",
        starts_at=datetime(2026, 12, 3, 5, 0, tzinfo=UTC),  # 14:00 in Tokyo, a Thursday
        ends_at=datetime(2026, 12, 3, 6, 30, tzinfo=UTC),
        capacity=10,
        confirmed_seats=4,
        waitlisted_seats=0,
        waitlisted_registrations=0,
        max_seats_per_registration=2,
        waitlist_enabled=True,
        registration_deadline=datetime(2026, 12, 2, 8, 0, tzinfo=UTC),
        status=ClassStatus.CANCELLED
        if kind is NotificationKind.CLASS_CANCELLED
        else ClassStatus.SCHEDULED,
        schedule_version=1,
        is_sample=False,
    )
    registration = RegistrationInfo(
        id=11,
        class_id=7,
        resident_id=3,
        name="山田 花子",
        phone="090-1234-5678",
        seats=2,
        status=RegistrationStatus.WAITLISTED if waiting else RegistrationStatus.CONFIRMED,
        waitlist_position=3 if waiting else None,
        created_at=created,
        confirmed_at=None if waiting else created,
        cancelled_at=None,
        cancelled_by=None,
        attended_at=None,
    )
    return OutgoingNotification(
        notification_id=99,
        kind=kind,
        telegram_user_id=user,
        registration=registration,
        klass=klass,
    )


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    fake = FakeBotAPI(token=TOKEN)
    await fake.start()
    fake.send_text(RESIDENT, "こんにちは")  # a bot can only write to residents who wrote first
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    assert api.base_url is not None
    bot = create_bot(TOKEN, api_base=api.base_url)  # with the session's retry middleware
    try:
        yield bot
    finally:
        await bot.session.close()


def sends(api: FakeBotAPI) -> int:
    return len(api.calls_of("sendMessage"))


async def test_sends_the_reminder_with_buttons(api: FakeBotAPI, bot: Bot) -> None:
    sender = TelegramNotificationSender(bot, TOKYO, town=TOWN)
    outcome = await sender.send(item(NotificationKind.DAY_BEFORE))
    assert outcome.status is SendStatus.SENT
    [message] = api.messages(RESIDENT)
    assert message.text is not None
    assert "12月3日（木）14:00〜15:30" in message.text
    assert "町民センター 2階" in message.text
    assert "スマートフォン、老眼鏡" in message.text
    assert "キャンセル" in message.text
    assert "090" not in message.text  # the phone is never repeated in a reminder
    labels = message.button_texts()
    assert labels == ["予約の確認", "メニューに戻る"]
    assert message.button("予約の確認").callback_data == ClassCb(action=ClassAction.MINE).pack()
    assert message.button("メニュー").callback_data == MenuCb(action=MenuAction.MENU).pack()


async def test_waitlist_closed_notice_leads_to_other_classes(api: FakeBotAPI, bot: Bot) -> None:
    """The class has started and no seat came free: one kind message, no registration left to
    check, so the buttons lead to the other classes and the menu."""
    sender = TelegramNotificationSender(bot, TOKYO, town=TOWN)
    outcome = await sender.send(item(NotificationKind.WAITLIST_CLOSED))
    assert outcome.status is SendStatus.SENT
    [message] = api.messages(RESIDENT)
    assert message.text is not None
    assert message.text.startswith(
        "キャンセル待ちのまま、教室の日になりました。\n今回は席が空きませんでした。申し訳ありません。\n"
    )
    assert "はじめてのスマホ" in message.text
    assert "12月3日（木）14:00〜15:30" in message.text
    assert "町民センター 2階" in message.text
    assert "お手続きはいりません。" in message.text
    assert "ご不明な点は、みどり町役場 情報政策係にお電話ください。電話：0555-12-3456" in (
        message.text
    )
    assert "090" not in message.text  # the phone is never repeated
    assert "持ち物" not in message.text  # the class is on without them: nothing to bring
    assert message.button_texts() == ["スマホ教室", "メニューに戻る"]
    assert message.button("スマホ教室").callback_data == ClassCb(action=ClassAction.LIST).pack()
    assert message.button("メニュー").callback_data == MenuCb(action=MenuAction.MENU).pack()


def test_waitlist_closed_without_town_details_has_no_contact_line() -> None:
    text = render(item(NotificationKind.WAITLIST_CLOSED), TOKYO)
    assert "席が空きませんでした" in text
    assert "お電話" not in text


async def test_429_is_reported_not_retried_by_the_session(api: FakeBotAPI, bot: Bot) -> None:
    api.fail_next("sendMessage", status=429, retry_after=7)
    outcome = await TelegramNotificationSender(bot, TOKYO).send(item(NotificationKind.PROMOTED))
    assert (outcome.status, outcome.retry_after) == (SendStatus.RETRY_AFTER, 7.0)
    assert sends(api) == 1  # the dispatcher waits and retries, on its own clock and rate
    assert api.messages(RESIDENT) == []


async def test_server_error_is_transient(api: FakeBotAPI, bot: Bot) -> None:
    api.fail_next("sendMessage", status=502)
    outcome = await TelegramNotificationSender(bot, TOKYO).send(item(NotificationKind.HOURS_BEFORE))
    assert (outcome.status, outcome.permanent) == (SendStatus.FAILED, False)
    assert sends(api) == 1


async def test_blocked_resident(api: FakeBotAPI, bot: Bot) -> None:
    api.block(RESIDENT)
    outcome = await TelegramNotificationSender(bot, TOKYO).send(item(NotificationKind.DAY_BEFORE))
    assert outcome.status is SendStatus.BLOCKED


async def test_unknown_chat_is_permanent(api: FakeBotAPI, bot: Bot) -> None:
    sender = TelegramNotificationSender(bot, TOKYO)
    outcome = await sender.send(item(NotificationKind.DAY_BEFORE, user=5555))
    assert (outcome.status, outcome.permanent, outcome.reason) == (
        SendStatus.FAILED,
        True,
        "chat_not_found",
    )


async def test_no_server_is_a_transient_network_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bot = create_bot(TOKEN, api_base=f"http://127.0.0.1:{port}")
    try:
        outcome = await TelegramNotificationSender(bot, TOKYO).send(
            item(NotificationKind.DAY_BEFORE)
        )
    finally:
        await bot.session.close()
    assert (outcome.status, outcome.permanent, outcome.reason) == (
        SendStatus.FAILED,
        False,
        "network_error",
    )


def test_a_timeout_may_have_delivered_it() -> None:
    method = SendMessage(chat_id=RESIDENT, text="x")
    timeout = TelegramNetworkError(method=method, message="Request timeout error")
    assert outcome_of(timeout).status is SendStatus.UNCERTAIN


@pytest.mark.parametrize("kind", list(NotificationKind))
def test_every_kind_reads_as_polite_japanese(kind: NotificationKind) -> None:
    text = render(item(kind), TOKYO, TOWN)
    assert "12月3日（木）" in text
    assert "町民センター 2階" in text
    assert "はじめてのスマホ" in text
    assert "です" in text or "ます" in text
    assert not any("a" <= char.lower() <= "z" for char in text)  # no English reaches a resident
    if kind is NotificationKind.CLASS_CANCELLED:
        assert "中止" in text and TOWN.counter_phone in text
    elif kind is NotificationKind.WAITLIST_CLOSED:
        assert "席が空きませんでした" in text and TOWN.counter_phone in text
    else:
        assert "予約の確認" in text  # how to cancel


async def test_a_day_before_reminder_sent_late_on_the_day_does_not_say_tomorrow(
    api: FakeBotAPI, bot: Bot
) -> None:
    """After downtime the day-before reminder goes out late, on the class day itself (it is
    still before the start): it must not tell the resident the class is 「明日」."""
    on_time = ManualClock(datetime(2026, 12, 2, 1, 0, tzinfo=UTC))  # Wed 10:00 in Tokyo
    late = ManualClock(datetime(2026, 12, 2, 23, 30, tzinfo=UTC))  # Thu 08:30, class day
    for clock in (on_time, late):
        sender = TelegramNotificationSender(bot, TOKYO, town=TOWN, clock=clock)
        outcome = await sender.send(item(NotificationKind.DAY_BEFORE))
        assert outcome.status is SendStatus.SENT
    first, second = (message.text or "" for message in api.messages(RESIDENT))
    assert first.startswith("明日 12月3日（木） は、スマホ教室の日です。")
    assert "明日" not in second
    assert second.startswith("本日 12月3日（木） は、スマホ教室の日です。")


def test_day_before_text_follows_the_moment_of_sending() -> None:
    reminder = item(NotificationKind.DAY_BEFORE)
    day_before = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    class_day = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)
    assert render(reminder, TOKYO, TOWN).startswith("明日 ")  # no time given: as scheduled
    assert render(reminder, TOKYO, TOWN, now=day_before).startswith("明日 ")
    assert render(reminder, TOKYO, TOWN, now=class_day).startswith("本日 ")


@pytest.mark.parametrize("kind", list(NotificationKind))
def test_no_notice_is_longer_than_telegram_allows(kind: NotificationKind) -> None:
    """Staff may enter up to 5,000 characters of 持ち物 (and 200 of title and venue); a
    message over 4,096 characters is refused by Telegram and the reminder would be lost."""
    long = item(kind)
    klass = replace(long.klass, title="教" * 200, venue="場" * 200, what_to_bring="持" * 5000)
    text = render(replace(long, klass=klass), TOKYO, TOWN)
    assert len(text) <= TELEGRAM_TEXT_LIMIT
    if kind not in (NotificationKind.CLASS_CANCELLED, NotificationKind.WAITLIST_CLOSED):
        assert "持ち物：持持持" in text
