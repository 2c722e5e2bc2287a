"""Reminders and notices through Telegram: the aiogram side of `classes.notifications`.

`TelegramNotificationSender` renders one claimed notification with the texts of
`bot.messages_classes` and sends it with buttons to 予約の確認 (スマホ教室 when there is no
registration left to check) and the menu, then tells the dispatcher what happened in the
dispatcher's own terms (`SendOutcome`).

No retrying here, on purpose. The bot's session carries `bot.errors.RetryMiddleware`, which
sleeps on the real clock and repeats 429s and 5xx answers by itself: behind the dispatcher
that would send faster than its rate limiter allows (the limiter never sees the repeats) and
hide every 429 from it. So the request is made with `session.make_request`, below the
session's middlewares, and the dispatcher alone paces, waits for `retry_after` and retries.
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot import messages_classes as texts
from bot.callbacks import ClassAction, ClassCb, MenuAction, MenuCb
from classes.clock import Clock, SystemClock
from classes.notifications import SendOutcome
from classes.types import NotificationKind, OutgoingNotification
from madoguchi.settings import TownInfo

log = logging.getLogger(__name__)

# Connection errors where the request provably never left: safe to send again later. Any other
# network error (a timeout, a connection dropped after the request was written) may have
# delivered the message.
_NOT_SENT_NETWORK_ERRORS = ("ClientConnectorError", "ClientConnectorDNSError", "ClientProxy")


def render(
    item: OutgoingNotification,
    zone: ZoneInfo,
    town: TownInfo | None = None,
    *,
    now: datetime | None = None,
) -> str:
    """The text of one notification, in the town's zone; `now` is the moment of sending (a
    day-before reminder sent late, on the class day, words the day accordingly)."""
    klass, registration = item.klass, item.registration
    if item.kind is NotificationKind.DAY_BEFORE:
        return texts.reminder_day_before(klass, registration, zone, now)
    if item.kind is NotificationKind.HOURS_BEFORE:
        return texts.reminder_hours_before(klass, registration, zone)
    if item.kind is NotificationKind.PROMOTED:
        return texts.promoted_notice(klass, registration, zone)
    if item.kind is NotificationKind.CLASS_CHANGED:
        return texts.class_changed_notice(klass, registration, zone)
    if item.kind is NotificationKind.WAITLIST_CLOSED:
        return texts.waitlist_closed_notice(klass, zone, town)
    return texts.class_cancelled_notice(klass, zone, town)


def keyboard(item: OutgoingNotification) -> InlineKeyboardMarkup:
    """予約の確認 (or スマホ教室 after a cancellation or a waitlist that closed: nothing left
    to check, other classes are the next step) and the menu."""
    if item.kind in (NotificationKind.CLASS_CANCELLED, NotificationKind.WAITLIST_CLOSED):
        first = InlineKeyboardButton(
            text=texts.NOTICE_CLASSES_BUTTON,
            callback_data=ClassCb(action=ClassAction.LIST).pack(),
        )
    else:
        first = InlineKeyboardButton(
            text=texts.BUTTON_MY_REGISTRATIONS,
            callback_data=ClassCb(action=ClassAction.MINE).pack(),
        )
    menu = InlineKeyboardButton(
        text=texts.BUTTON_MENU, callback_data=MenuCb(action=MenuAction.MENU).pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[[first], [menu]])


def outcome_of(error: TelegramAPIError) -> SendOutcome:
    """What a Bot API error means for the dispatcher."""
    if isinstance(error, TelegramRetryAfter):
        return SendOutcome.retry(float(error.retry_after))
    if isinstance(error, TelegramForbiddenError):
        return SendOutcome.blocked()
    if isinstance(error, TelegramEntityTooLarge):  # a network error, but waiting cannot help
        return SendOutcome.failed("too_large", permanent=True)
    if isinstance(error, TelegramServerError):
        return SendOutcome.failed("server_error", permanent=False)
    if isinstance(error, TelegramNetworkError):
        if error.message.startswith(_NOT_SENT_NETWORK_ERRORS):
            return SendOutcome.failed("network_error", permanent=False)
        return SendOutcome.uncertain("network_uncertain")
    if isinstance(error, TelegramUnauthorizedError):
        # A revoked token: every row would fail the same way, so keep them for later.
        return SendOutcome.failed("unauthorized", permanent=False)
    if isinstance(error, TelegramBadRequest):
        description = error.message.lower()
        if "chat not found" in description:
            return SendOutcome.failed("chat_not_found", permanent=True)
        if "user is deactivated" in description:
            return SendOutcome.failed("user_deactivated", permanent=True)
        return SendOutcome.failed("bad_request", permanent=True)
    if isinstance(error, TelegramNotFound):
        return SendOutcome.failed("not_found", permanent=True)
    return SendOutcome.failed("api_error", permanent=True)


class TelegramNotificationSender:
    """`classes.notifications.NotificationSender` over an aiogram Bot."""

    def __init__(
        self,
        bot: Bot,
        tz: ZoneInfo,
        *,
        town: TownInfo | None = None,
        request_timeout: int | None = 30,
        clock: Clock | None = None,
    ) -> None:
        self.bot = bot
        self.tz = tz
        self.town = town
        self.request_timeout = request_timeout
        self.clock = clock or SystemClock()

    async def send(self, item: OutgoingNotification) -> SendOutcome:
        method = SendMessage(
            chat_id=item.telegram_user_id,
            text=render(item, self.tz, self.town, now=self.clock.now()),
            reply_markup=keyboard(item),
        )
        try:
            # Below the session's middlewares: no second retry loop (see the module doc).
            await self.bot.session.make_request(self.bot, method, timeout=self.request_timeout)
        except TelegramAPIError as error:
            outcome = outcome_of(error)
            if outcome.reason == "bad_request":
                log.warning("notification %d: Telegram refused it (400)", item.notification_id)
            return outcome
        except ClientDecodeError:
            # An answer we could not read (a proxy's error page): Telegram may have sent it.
            return SendOutcome.uncertain("unreadable_answer")
        return SendOutcome.sent()
