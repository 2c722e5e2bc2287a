"""スマホ教室: upcoming classes → details → 申し込む → name → phone (optional) → seats →
confirmation → done (with a .ics file); 予約の確認 → キャンセルする → confirmation → done.

The sign-up flow keeps its answers in FSM state data (class id, started-at and last-step
times, name, phone, seats); every button of the flow names its class and is checked against
that data, so stale or forged buttons do nothing. A flow left without a step for FLOW_TIMEOUT
is forgotten: its buttons say politely to start again, and text typed into it is read as a
question again. While the flow waits for a name or a phone number, typed text is the answer,
not a question; the menu buttons and commands leave the flow.

Capacity, waitlist, deadlines and double taps are decided by `classes.service`; the checks
here only spare a resident a flow that cannot succeed, and the service has the last word.
Every change is committed before the resident is told about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiogram import Bot, F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, CallbackQuery, Message, User
from sqlalchemy.ext.asyncio import AsyncSession

from bot import ics, keyboards, messages
from bot import keyboards_classes as kb
from bot import messages_classes as texts
from bot.callbacks import (
    ClassAction,
    ClassCb,
    RegistrationAction,
    RegistrationCb,
    SignUpAction,
    SignUpCb,
)
from bot.filters import Magic
from bot.handlers.common import stale
from bot.keyboards_classes import Step
from classes import service
from classes.clock import Clock, SystemClock
from classes.notice_queue import ReminderPolicy
from classes.types import (
    ClassInfo,
    RegistrationInfo,
    RegistrationStatus,
    ResidentRegistration,
    SignUpRefusal,
)
from madoguchi.residents import ResidentInfo
from madoguchi.settings import Settings

# An unfinished sign-up is forgotten this long after it started.
FLOW_TIMEOUT = timedelta(minutes=30)
_ACTIVE = (RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED)


class SignUp(StatesGroup):
    name = State()
    phone = State()
    seats = State()
    confirm = State()


@dataclass(frozen=True, slots=True)
class _Turn:
    """What the steps of one update share: the chat, the update's session, the time."""

    bot: Bot
    chat_id: int
    session: AsyncSession
    settings: Settings
    state: FSMContext
    now: datetime

    async def say(self, text: str, reply_markup: Any = None) -> None:
        await self.bot.send_message(self.chat_id, text, reply_markup=reply_markup)


def _now(clock: Clock | None) -> datetime:
    """The current time from the dispatcher's `clock` (tests inject one), else the system's."""
    return (clock or SystemClock()).now()


def _policy(settings: Settings) -> ReminderPolicy:
    return ReminderPolicy.from_settings(settings)


def _visible(klass: ClassInfo | None, settings: Settings) -> ClassInfo | None:
    """Sample classes exist only for the local demo; elsewhere they are not shown."""
    if klass is None or (klass.is_sample and not settings.demo_mode):
        return None
    return klass


def open_refusal(klass: ClassInfo, now: datetime) -> SignUpRefusal | None:
    """Why a one-seat sign-up for this class would be refused now, so that nobody fills in a
    flow that cannot succeed (the core's rule; `sign_up` decides in the end)."""
    return service.sign_up_refusal(klass, 1, now=now)


def telegram_name(user: User) -> str | None:
    """The resident's name as Telegram shows it (first name, last name), if it can be used."""
    name = " ".join(" ".join(part for part in (user.first_name, user.last_name) if part).split())
    return service.validate_name(name)


async def _active_registrations(
    session: AsyncSession, resident_id: int, now: datetime
) -> list[ResidentRegistration]:
    items = await service.resident_registrations(session, resident_id, now=now)
    return [item for item in items if item.registration.status in _ACTIVE]


async def _active_for_class(
    session: AsyncSession, resident_id: int, class_id: int, now: datetime
) -> ResidentRegistration | None:
    for item in await _active_registrations(session, resident_id, now):
        if item.klass.id == class_id:
            return item
    return None


async def _send_long(bot: Bot, chat_id: int, text: str, reply_markup: Any) -> None:
    parts = messages.split_message(text)
    for part in parts[:-1]:
        await bot.send_message(chat_id, part)
    await bot.send_message(chat_id, parts[-1], reply_markup=reply_markup)


# --- the list and one class -----------------------------------------------------------------


async def send_class_list(
    bot: Bot,
    chat_id: int,
    *,
    session: AsyncSession,
    resident_id: int,
    settings: Settings,
    now: datetime,
) -> None:
    """スマホ教室: the upcoming classes as buttons, 予約の確認 and the menu."""
    zone = settings.tzinfo
    upcoming = await service.list_upcoming_classes(
        session, now=now, include_samples=settings.demo_mode
    )
    has_registrations = bool(await _active_registrations(session, resident_id, now))
    if not upcoming:
        await bot.send_message(
            chat_id,
            texts.no_classes(settings.town),
            reply_markup=kb.class_list([], now, zone, show_mine=has_registrations),
        )
        return
    await _send_long(
        bot,
        chat_id,
        texts.class_list(upcoming, now, zone),
        kb.class_list(upcoming, now, zone, show_mine=True),
    )


async def send_class_details(
    bot: Bot,
    chat_id: int,
    klass: ClassInfo,
    *,
    session: AsyncSession,
    resident_id: int,
    settings: Settings,
    now: datetime,
) -> None:
    zone = settings.tzinfo
    registered = await _active_for_class(session, resident_id, klass.id, now) is not None
    refusal = open_refusal(klass, now)
    text = texts.class_details(klass, now, zone)
    if refusal is not None and not registered:
        text += "\n\n" + texts.refusal_text(refusal, klass, zone, settings.town)
    elif registered:
        text += "\n\nこの教室は、申し込み済みです。"
    await _send_long(
        bot,
        chat_id,
        text,
        kb.class_details(klass.id, can_apply=refusal is None, registered=registered),
    )


async def class_menu(
    callback: CallbackQuery,
    *,
    callback_data: ClassCb,
    bot: Bot,
    session: AsyncSession,
    resident: ResidentInfo,
    settings: Settings,
    state: FSMContext,
    clock: Clock | None = None,
) -> None:
    """The list (LIST), one class (DETAILS), 予約の確認 (MINE); 申し込む (APPLY) starts the flow."""
    now = _now(clock)
    chat_id = callback.from_user.id
    action = callback_data.action
    if action is ClassAction.APPLY:
        turn = _Turn(bot, chat_id, session, settings, state, now)
        await _start_sign_up(callback, callback_data.id, turn, resident)
        return
    await state.clear()  # 戻る from the name step lands here: the flow is over
    if action is ClassAction.LIST:
        await callback.answer()
        await send_class_list(
            bot, chat_id, session=session, resident_id=resident.id, settings=settings, now=now
        )
    elif action is ClassAction.DETAILS:
        klass = _visible(await service.get_class(session, callback_data.id), settings)
        if klass is None:
            await callback.answer(texts.CLASS_NOT_FOUND, show_alert=True)
            return
        await callback.answer()
        await send_class_details(
            bot,
            chat_id,
            klass,
            session=session,
            resident_id=resident.id,
            settings=settings,
            now=now,
        )
    else:
        await callback.answer()
        await send_my_registrations(
            bot, chat_id, session=session, resident=resident, settings=settings, now=now
        )


# --- the sign-up flow -----------------------------------------------------------------------


async def _start_sign_up(
    callback: CallbackQuery, class_id: int, turn: _Turn, resident: ResidentInfo
) -> None:
    settings, state, now = turn.settings, turn.state, turn.now
    zone = settings.tzinfo
    await state.clear()
    klass = _visible(await service.get_class(turn.session, class_id), settings)
    if klass is None:
        await callback.answer(texts.CLASS_NOT_FOUND, show_alert=True)
        return
    await callback.answer()
    existing = await _active_for_class(turn.session, resident.id, class_id, now)
    if existing is not None:
        await turn.say(
            texts.already_registered(existing.klass, existing.registration, zone),
            kb.after_sign_up(),
        )
        return
    refusal = open_refusal(klass, now)
    if refusal is not None:
        await turn.say(texts.refusal_text(refusal, klass, zone, settings.town), kb.to_classes())
        return
    suggested = telegram_name(callback.from_user)
    await state.set_state(SignUp.name)
    await state.set_data(
        {"class_id": class_id, "started_at": now.isoformat(), "suggested": suggested}
    )
    await turn.say(
        texts.name_prompt(suggested), kb.name_step(class_id, suggested=suggested is not None)
    )


def _expired(data: dict[str, Any], now: datetime) -> bool:
    """No step for FLOW_TIMEOUT: counted from the last step (`active_at`), so a slow but
    active resident is not cut off; flows stored before it existed count from the start."""
    try:
        last = datetime.fromisoformat(str(data.get("active_at") or data["started_at"]))
    except (KeyError, ValueError):
        return True
    return last.tzinfo is None or now - last > FLOW_TIMEOUT


async def _flow_data(state: FSMContext, now: datetime) -> dict[str, Any] | None:
    """The running flow's data, or None (no flow, or one that timed out: it is forgotten).
    A live flow's clock restarts: this update is a step of it."""
    if await state.get_state() is None:
        return None
    data = await state.get_data()
    if "class_id" not in data or _expired(data, now):
        await state.clear()
        return None
    return await state.update_data(active_at=now.isoformat())


async def _class_for_step(turn: _Turn, class_id: int) -> ClassInfo | None:
    """The class of the flow, still open for sign-up; else the resident is told why and the
    flow ends."""
    return await _still_open(
        turn, _visible(await service.get_class(turn.session, class_id), turn.settings)
    )


async def _still_open(turn: _Turn, klass: ClassInfo | None) -> ClassInfo | None:
    if klass is None:
        await turn.state.clear()
        await turn.say(texts.CLASS_NOT_FOUND, kb.to_classes())
        return None
    refusal = open_refusal(klass, turn.now)
    if refusal is not None:
        await turn.state.clear()
        await turn.say(
            texts.refusal_text(refusal, klass, turn.settings.tzinfo, turn.settings.town),
            kb.to_classes(),
        )
        return None
    return klass


async def _ask_name(turn: _Turn, data: dict[str, Any]) -> None:
    await turn.state.set_state(SignUp.name)
    suggested = data.get("suggested")
    await turn.say(
        texts.name_prompt(suggested),
        kb.name_step(int(data["class_id"]), suggested=bool(suggested)),
    )


async def _ask_phone(turn: _Turn) -> None:
    await turn.state.set_state(SignUp.phone)
    await turn.say(texts.PHONE_PROMPT, kb.phone_step())


async def _ask_seats(turn: _Turn, klass: ClassInfo) -> None:
    await turn.state.set_state(SignUp.seats)
    await turn.say(
        texts.seats_prompt(klass), kb.seats_step(klass.id, klass.max_seats_per_registration)
    )


async def _confirm(turn: _Turn, klass: ClassInfo, data: dict[str, Any]) -> None:
    seats = int(data["seats"])
    await turn.state.set_state(SignUp.confirm)
    back_to = Step.SEATS if klass.max_seats_per_registration > 1 else Step.PHONE
    await turn.say(
        texts.confirmation(
            klass,
            turn.settings.tzinfo,
            name=str(data["name"]),
            phone=data.get("phone"),
            seats=seats,
            waitlist_expected=seats > klass.seats_left,
        ),
        kb.confirm_step(klass.id, back_to),
    )


async def _after_phone(turn: _Turn, phone: str | None) -> None:
    """Phone given or skipped: the menu keyboard comes back, then seats (or confirmation)."""
    data = await turn.state.update_data(phone=phone)
    await turn.say(texts.PHONE_SAVED if phone else texts.PHONE_SKIPPED, keyboards.main_menu())
    klass = await _class_for_step(turn, int(data["class_id"]))
    if klass is None:
        return
    if klass.max_seats_per_registration <= 1:
        data = await turn.state.update_data(seats=1)
        await _confirm(turn, klass, data)
    else:
        await _ask_seats(turn, klass)


async def leave_flow_by_message(message: Message, state: FSMContext) -> None:
    """A menu button or a command during the flow: the flow ends, the menu handles it."""
    await state.clear()
    raise SkipHandler


async def leave_flow_by_button(callback: CallbackQuery, state: FSMContext) -> None:
    """Any other button during the flow (an older message, the menu): the flow ends first."""
    await state.clear()
    raise SkipHandler


async def name_typed(
    message: Message,
    *,
    bot: Bot,
    session: AsyncSession,
    settings: Settings,
    state: FSMContext,
    clock: Clock | None = None,
) -> None:
    turn = _Turn(bot, message.chat.id, session, settings, state, _now(clock))
    if await _flow_data(state, turn.now) is None:
        raise SkipHandler  # an abandoned flow: the text is a question again
    text = " ".join((message.text or "").split())
    if text == texts.BUTTON_MENU:
        await state.clear()
        await turn.say(messages.MENU, keyboards.main_menu())
        return
    if len(text) > texts.NAME_MAX:
        await turn.say(texts.NAME_TOO_LONG)
        return
    name = service.validate_name(text)
    if name is None:
        await turn.say(texts.NAME_EMPTY)
        return
    await state.update_data(name=name)
    await _ask_phone(turn)


async def phone_typed(
    message: Message,
    *,
    bot: Bot,
    session: AsyncSession,
    settings: Settings,
    state: FSMContext,
    clock: Clock | None = None,
) -> None:
    turn = _Turn(bot, message.chat.id, session, settings, state, _now(clock))
    text = (message.text or "").strip()
    data = await _flow_data(state, turn.now)
    if data is None:
        if text in texts.PHONE_STEP_LABELS:
            await turn.say(texts.FLOW_EXPIRED, keyboards.main_menu())
            return
        raise SkipHandler  # an abandoned flow: the text is a question again
    if text == texts.BUTTON_MENU:
        await state.clear()
        await turn.say(messages.MENU, keyboards.main_menu())
        return
    if text == texts.BUTTON_BACK:
        await turn.say(texts.BACK_TO_NAME, keyboards.main_menu())
        await _ask_name(turn, data)
        return
    if text == texts.BUTTON_SEND_PHONE:
        await turn.say(texts.PHONE_BUTTON_UNAVAILABLE, kb.phone_step())
        return
    phone: str | None = None
    if text != texts.BUTTON_NO_PHONE:
        valid, phone = service.normalize_phone(text)
        if not valid or phone is None:
            await turn.say(texts.PHONE_INVALID, kb.phone_step())
            return
    await _after_phone(turn, phone)


async def contact_shared(
    message: Message,
    *,
    bot: Bot,
    session: AsyncSession,
    settings: Settings,
    state: FSMContext,
    clock: Clock | None = None,
) -> None:
    """Telegram's share-contact button: only the resident's own number is taken."""
    turn = _Turn(bot, message.chat.id, session, settings, state, _now(clock))
    if await _flow_data(state, turn.now) is None:
        await turn.say(texts.FLOW_EXPIRED, keyboards.main_menu())
        return
    contact = message.contact
    sender = message.from_user
    if contact is None or sender is None or contact.user_id != sender.id:
        await turn.say(texts.PHONE_NOT_OWN, kb.phone_step())
        return
    number = contact.phone_number.strip()
    if number and not number.startswith("+"):
        number = "+" + number  # Telegram sends international numbers without the plus
    valid, phone = service.normalize_phone(number)
    if not valid or phone is None:
        await turn.say(texts.PHONE_INVALID, kb.phone_step())
        return
    await _after_phone(turn, phone)


async def stray_phone_label(message: Message) -> None:
    """A phone-step keyboard button tapped after the flow ended: bring the menu back."""
    await message.answer(messages.MENU, reply_markup=keyboards.main_menu())


_ANY_STEP = frozenset(state.state for state in SignUp.__states__)
_STEP_STATES = {
    SignUpAction.USE_NAME: _ANY_STEP,
    SignUpAction.SEATS: frozenset({SignUp.seats.state, SignUp.confirm.state}),
    SignUpAction.SUBMIT: frozenset({SignUp.confirm.state}),
    SignUpAction.BACK: _ANY_STEP,
}


async def _no_flow(
    callback: CallbackQuery,
    callback_data: SignUpCb,
    turn: _Turn,
    resident: ResidentInfo,
    *,
    other_flow: bool,
) -> None:
    """A flow button with no flow of its class: it timed out, finished (a second tap on
    申し込む shows the registration made by the first), or was never started (forged)."""
    class_id = callback_data.cls
    klass = _visible(await service.get_class(turn.session, class_id), turn.settings)
    if klass is None:
        await callback.answer(texts.CLASS_NOT_FOUND, show_alert=True)
        return
    await callback.answer()
    existing = await _active_for_class(turn.session, resident.id, class_id, turn.now)
    if callback_data.action is SignUpAction.SUBMIT and existing is not None:
        await turn.say(
            texts.already_registered(existing.klass, existing.registration, turn.settings.tzinfo),
            kb.after_sign_up(),
        )
    elif other_flow:  # a sign-up for another class is running: leave it alone
        await turn.say(texts.FLOW_MOVED_ON)
    else:
        await turn.say(texts.FLOW_EXPIRED, kb.to_class(class_id))


async def flow_button(
    callback: CallbackQuery,
    *,
    callback_data: SignUpCb,
    bot: Bot,
    session: AsyncSession,
    resident: ResidentInfo,
    settings: Settings,
    state: FSMContext,
    clock: Clock | None = None,
) -> None:
    turn = _Turn(bot, callback.from_user.id, session, settings, state, _now(clock))
    current = await state.get_state()
    data = await _flow_data(state, turn.now)
    if data is None or int(data["class_id"]) != callback_data.cls:
        await _no_flow(callback, callback_data, turn, resident, other_flow=data is not None)
        return
    action = callback_data.action
    if current not in _STEP_STATES[action]:
        await callback.answer(texts.FLOW_MOVED_ON, show_alert=True)
        return
    if action is SignUpAction.USE_NAME:
        if not data.get("suggested"):
            await stale(callback)
            return
        await callback.answer()
        await state.update_data(name=data["suggested"])
        await _ask_phone(turn)
    elif action is SignUpAction.BACK:
        await _go_back(callback, callback_data.value, turn, data)
    elif action is SignUpAction.SEATS:
        await _seats_chosen(callback, callback_data.value, turn, data)
    else:
        await callback.answer()
        await _submit(turn, data, resident)


async def _seats_chosen(
    callback: CallbackQuery, seats: int, turn: _Turn, data: dict[str, Any]
) -> None:
    klass = _visible(await service.get_class(turn.session, int(data["class_id"])), turn.settings)
    if klass is not None and not 1 <= seats <= klass.max_seats_per_registration:
        await stale(callback)
        return
    await callback.answer()
    klass = await _still_open(turn, klass)
    if klass is not None:
        await _confirm(turn, klass, await turn.state.update_data(seats=seats))


async def _go_back(callback: CallbackQuery, value: int, turn: _Turn, data: dict[str, Any]) -> None:
    if value == Step.NAME:
        await callback.answer()
        await _ask_name(turn, data)
    elif value == Step.PHONE and "name" in data:
        await callback.answer()
        await _ask_phone(turn)
    elif value == Step.SEATS and "name" in data:
        await callback.answer()
        klass = await _class_for_step(turn, int(data["class_id"]))
        if klass is not None:
            await _ask_seats(turn, klass)
    else:
        await stale(callback)


async def _submit(turn: _Turn, data: dict[str, Any], resident: ResidentInfo) -> None:
    settings, now = turn.settings, turn.now
    zone = settings.tzinfo
    policy = _policy(settings)
    result = await service.sign_up(
        turn.session,
        int(data["class_id"]),
        resident.id,
        name=str(data["name"]),
        phone=data.get("phone"),
        seats=int(data["seats"]),
        now=now,
        policy=policy,
    )
    await turn.session.commit()  # registered before the resident is told so
    await turn.state.clear()
    if result.refused is not None or result.registration is None or result.klass is None:
        refusal = result.refused or SignUpRefusal.NOT_FOUND
        await turn.say(
            texts.refusal_text(refusal, result.klass, zone, settings.town), kb.to_classes()
        )
        return
    klass, registration = result.klass, result.registration
    if result.already_registered:
        await turn.say(texts.already_registered(klass, registration, zone), kb.after_sign_up())
        return
    reminded = any(due > now for _kind, due in policy.reminder_times(klass.starts_at))
    confirmed = registration.status is RegistrationStatus.CONFIRMED
    await turn.say(
        texts.signed_up(klass, registration, zone, reminded=reminded),
        None if confirmed else kb.after_sign_up(),
    )
    if confirmed:
        await send_calendar(turn.bot, turn.chat_id, klass, registration, settings)


async def send_calendar(
    bot: Bot, chat_id: int, klass: ClassInfo, registration: RegistrationInfo, settings: Settings
) -> None:
    await bot.send_document(
        chat_id,
        BufferedInputFile(
            ics.registration_calendar(klass, registration, settings.town),
            filename=ics.file_name(klass, settings.tzinfo),
        ),
        caption=texts.ICS_CAPTION,
        reply_markup=kb.after_sign_up(),
    )


# --- 予約の確認 and cancelling ----------------------------------------------------------------


async def send_my_registrations(
    bot: Bot,
    chat_id: int,
    *,
    session: AsyncSession,
    resident: ResidentInfo,
    settings: Settings,
    now: datetime,
) -> None:
    zone = settings.tzinfo
    items = await _active_registrations(session, resident.id, now)
    if not items:
        await bot.send_message(chat_id, texts.NO_REGISTRATIONS, reply_markup=kb.to_classes())
        return
    blocks = [texts.registration_block(item.klass, item.registration, zone) for item in items]
    await _send_long(bot, chat_id, texts.my_registrations(blocks), kb.my_registrations(items, zone))


async def registration_button(
    callback: CallbackQuery,
    *,
    callback_data: RegistrationCb,
    bot: Bot,
    session: AsyncSession,
    resident: ResidentInfo,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    now = _now(clock)
    chat_id = callback.from_user.id
    zone = settings.tzinfo
    registration = await service.get_registration(session, callback_data.id)
    if registration is None or registration.resident_id != resident.id:
        await stale(callback)  # unknown, or someone else's: nothing is touched
        return
    klass = await service.get_class(session, registration.class_id)
    if klass is None:
        await stale(callback)
        return
    action = callback_data.action
    if action is RegistrationAction.CALENDAR:
        if registration.status is not RegistrationStatus.CONFIRMED:
            await callback.answer(texts.ICS_NOT_CONFIRMED, show_alert=True)
            return
        await callback.answer()
        await send_calendar(bot, chat_id, klass, registration, settings)
        return
    if registration.status not in _ACTIVE:
        await callback.answer()
        await bot.send_message(chat_id, texts.ALREADY_CANCELLED, reply_markup=kb.after_cancel())
        return
    if klass.ends_at <= now:  # an old button: the service refuses it too (class_finished)
        await callback.answer()
        await bot.send_message(chat_id, texts.CLASS_OVER, reply_markup=kb.after_cancel())
        return
    if action is RegistrationAction.ASK_CANCEL:
        await callback.answer()
        await bot.send_message(
            chat_id,
            texts.confirm_cancel(klass, registration, zone),
            reply_markup=kb.confirm_cancel(registration.id),
        )
        return
    result = await service.cancel_registration(
        session, registration.id, resident_id=resident.id, now=now, policy=_policy(settings)
    )
    await session.commit()  # cancelled (and the next resident promoted) before saying so
    await callback.answer()
    if result.cancelled is None:
        text = texts.CLASS_OVER if result.class_finished else texts.ALREADY_CANCELLED
        await bot.send_message(chat_id, text, reply_markup=kb.after_cancel())
        return
    await bot.send_message(chat_id, texts.cancelled(klass, zone), reply_markup=kb.after_cancel())


def create_router() -> Router:
    """Included before the menu router: while a sign-up waits for typed answers, this router
    sees the text first."""
    router = Router(name=__name__)
    in_flow = StateFilter(SignUp)
    router.message.register(
        leave_flow_by_message,
        in_flow,
        Magic(F.text.in_(set(messages.MENU_BUTTONS)) | F.text.startswith("/")),
    )
    router.message.register(name_typed, StateFilter(SignUp.name), Magic(F.text))
    router.message.register(phone_typed, StateFilter(SignUp.phone), Magic(F.text))
    router.message.register(contact_shared, StateFilter(SignUp.phone), Magic(F.contact))
    router.message.register(stray_phone_label, Magic(F.text.in_(set(texts.PHONE_STEP_LABELS))))
    router.callback_query.register(leave_flow_by_button, in_flow, ~SignUpCb.filter())
    router.callback_query.register(class_menu, ClassCb.filter())
    router.callback_query.register(flow_button, SignUpCb.filter())
    router.callback_query.register(registration_button, RegistrationCb.filter())
    return router
