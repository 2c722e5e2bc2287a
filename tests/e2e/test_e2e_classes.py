"""Smartphone classes end to end (issue 5): the production bot polls the fake Bot API over
real HTTP; two residents tap through the sign-up flow, the .ics file travels as a multipart
upload, and the promotion notice goes out through REMIND's dispatcher and Telegram sender
against the same database and bot.

Resident A (花子) takes the only seat, resident B (太郎) joins the waitlist, A finds the
registration in 予約の確認, gets the calendar file, cancels with confirmation, and B is
promoted and told so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from e2ekit import Resident, menu_of
from icalendar import Calendar
from sqlalchemy import select

from bot import messages
from bot import messages_classes as texts
from bot.fake_api import FakeBotAPI, SentMessage
from bot.runner import BotRuntime
from classes import service
from classes.clock import SystemClock
from classes.models import ClassRegistration
from classes.types import ClassDraft, ClassInfo
from madoguchi.app import AppContext
from madoguchi.db import session_scope

VENUE = "中央公民館 2階"


async def _create_class(context: AppContext) -> ClassInfo:
    now = datetime.now(UTC)
    starts = (now + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    draft = ClassDraft(
        title="はじめてのスマホ",
        venue=VENUE,
        starts_at=starts,
        ends_at=starts + timedelta(minutes=90),
        capacity=1,
        registration_deadline=starts - timedelta(days=1),
        description="電話のかけ方から学びます。",
        what_to_bring="スマートフォン",
    )
    async with session_scope(context.session_factory) as session:
        return await service.create_class(session, draft, actor="e2e", now=now)


def _event_times(document: SentMessage) -> tuple[datetime, datetime, str]:
    assert document.kind == "document" and document.document is not None
    assert document.document.file_name.endswith(".ics")
    calendar = Calendar.from_ical(document.document.content)
    [event] = calendar.walk("VEVENT")
    return event.decoded("dtstart"), event.decoded("dtend"), str(event["uid"])


async def _sign_up(
    resident: Resident, api: FakeBotAPI, *, share_contact: bool
) -> list[SentMessage]:
    """スマホ教室 → the class → 申し込む → name → phone → 1人 → 申し込む."""
    listing = await resident.say("スマホ教室")
    assert "スマホ教室の予定です。" in (listing.text or "")
    details = await resident.tap(listing, "はじめてのスマホ")
    assert "■ はじめてのスマホ" in (details.text or "")
    name = await resident.tap(details, "申し込む")
    assert "「花子」でよろしければ" in (name.text or "")
    phone = await resident.tap(name, "この名前で申し込む")
    assert phone.text == texts.PHONE_PROMPT
    assert phone.reply_markup is not None
    share = phone.reply_markup["keyboard"][0][0]
    assert share == {"text": "電話番号を送る", "request_contact": True}
    if share_contact:
        api.send_contact(resident.user_id, phone_number="+81 90-1111-2222")
        ack, seats = await api.wait_for_messages(resident.user_id, 2, resident.timeout)
    else:
        ack, seats = await resident.says("電話番号なしで進む", replies=2)
    assert menu_of(ack) == list(messages.MENU_BUTTONS)  # the menu keyboard is back
    confirm = await resident.tap(seats, "1人")
    assert "この内容で申し込みます。" in (confirm.text or "")
    waitlisted = "キャンセル待ち" in (confirm.text or "")
    return await resident.taps(confirm, "申し込む", replies=1 if waitlisted else 2)


async def test_sign_up_waitlist_calendar_cancel_and_promotion(
    api: FakeBotAPI, context: AppContext, runtime: BotRuntime, hanako: Resident, taro: Resident
) -> None:
    klass = await _create_class(context)

    # A takes the only seat: the summary and the calendar file (uploaded as multipart).
    done, document = await _sign_up(hanako, api, share_contact=True)
    assert (done.text or "").startswith("申し込みが完了しました。")
    assert document.text == texts.ICS_CAPTION
    starts, ends, uid = _event_times(document)
    assert (starts, ends) == (klass.starts_at, klass.ends_at)
    [send_document] = api.calls_of("sendDocument", chat_id=hanako.user_id)
    assert send_document.params["document"].content == document.document.content  # type: ignore[union-attr]

    # B joins the waitlist.
    [waited] = await _sign_up(taro, api, share_contact=False)
    assert (waited.text or "").startswith("キャンセル待ちで受け付けました（1番目）。")

    # A sees the registration in 予約の確認 and gets the file again: the same event.
    mine = await hanako.tap(document, "予約の確認")
    assert "状態：申し込み済み（席が確保されています）" in (mine.text or "")
    again = await hanako.tap(mine, "カレンダーに追加")
    assert _event_times(again) == (klass.starts_at, klass.ends_at, uid)

    # A cancels, with a confirmation step.
    ask = await hanako.tap(mine, "キャンセルする")
    assert (ask.text or "").startswith("本当にキャンセルしますか？")
    cancelled = await hanako.tap(ask, "はい、キャンセルします")
    assert (cancelled.text or "").startswith("キャンセルしました。")
    async with context.session_factory() as session:
        statuses = list(
            await session.scalars(select(ClassRegistration.status).order_by(ClassRegistration.id))
        )
    assert statuses == ["cancelled", "confirmed"]  # the core promoted B at once

    # B is told by the reminder dispatcher (REMIND), run once against the same database/bot.
    from bot.notifier import TelegramNotificationSender
    from classes.notifications import NotificationDispatcher

    settings = context.settings
    dispatcher = NotificationDispatcher(
        context.session_factory,
        TelegramNotificationSender(runtime.bot, settings.tzinfo, town=settings.town),
        clock=SystemClock(),
        worker_id="e2e",
    )
    report = await dispatcher.run_once()
    assert report.sent == 1
    [notice] = await api.wait_for_messages(taro.user_id, 1, taro.timeout)
    assert (notice.text or "").startswith("キャンセル待ちの席が空きました。")
    taro_mine = await taro.tap(notice, "予約の確認")
    assert "状態：申し込み済み（席が確保されています）" in (taro_mine.text or "")
    assert not any(messages.APOLOGY in text for text in hanako.transcript() + taro.transcript())
