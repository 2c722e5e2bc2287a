"""Keyboards of the smartphone classes: one big button per row, always a way back and
「メニューに戻る」. The phone step uses a reply keyboard (Telegram's share-contact button)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import IntEnum
from zoneinfo import ZoneInfo

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from bot import messages
from bot import messages_classes as texts
from bot.callbacks import (
    ClassAction,
    ClassCb,
    MenuAction,
    MenuCb,
    RegistrationAction,
    RegistrationCb,
    SignUpAction,
    SignUpCb,
)
from classes.types import ClassInfo, RegistrationStatus, ResidentRegistration


class Step(IntEnum):
    """Steps of the sign-up flow that 戻る can return to (SignUpCb.value)."""

    NAME = 1
    PHONE = 2
    SEATS = 3


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


def _menu_row() -> list[InlineKeyboardButton]:
    return [_button(messages.BUTTON_MENU, MenuCb(action=MenuAction.MENU).pack())]


def _classes_row(label: str = texts.BUTTON_BACK) -> list[InlineKeyboardButton]:
    return [_button(label, ClassCb(action=ClassAction.LIST).pack())]


def _mine_row() -> list[InlineKeyboardButton]:
    return [_button(texts.BUTTON_MY_REGISTRATIONS, ClassCb(action=ClassAction.MINE).pack())]


def class_list(
    classes: Sequence[ClassInfo], now: datetime, zone: ZoneInfo, *, show_mine: bool
) -> InlineKeyboardMarkup:
    rows = [
        [
            _button(
                messages.button_label(texts.class_button(klass, now, zone)),
                ClassCb(action=ClassAction.DETAILS, id=klass.id).pack(),
            )
        ]
        for klass in classes
    ]
    if show_mine:
        rows.append(_mine_row())
    rows.append(_menu_row())
    return InlineKeyboardMarkup(inline_keyboard=rows)


def class_details(class_id: int, *, can_apply: bool, registered: bool) -> InlineKeyboardMarkup:
    rows = []
    if registered:
        rows.append(_mine_row())
    elif can_apply:
        rows.append(
            [_button(texts.BUTTON_APPLY, ClassCb(action=ClassAction.APPLY, id=class_id).pack())]
        )
    rows += [_classes_row(), _menu_row()]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def to_class(class_id: int) -> InlineKeyboardMarkup:
    """After a refusal or an expired flow: back to the class, or the menu."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(
                    texts.BUTTON_BACK_TO_CLASS,
                    ClassCb(action=ClassAction.DETAILS, id=class_id).pack(),
                )
            ],
            _menu_row(),
        ]
    )


def to_classes() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[_classes_row(texts.BUTTON_BACK_TO_CLASSES), _menu_row()]
    )


def name_step(class_id: int, *, suggested: bool) -> InlineKeyboardMarkup:
    rows = []
    if suggested:
        rows.append(
            [
                _button(
                    texts.BUTTON_USE_NAME,
                    SignUpCb(action=SignUpAction.USE_NAME, cls=class_id).pack(),
                )
            ]
        )
    rows.append(
        [_button(texts.BUTTON_BACK, ClassCb(action=ClassAction.DETAILS, id=class_id).pack())]
    )
    rows.append(_menu_row())
    return InlineKeyboardMarkup(inline_keyboard=rows)


def phone_step() -> ReplyKeyboardMarkup:
    """Telegram's share-contact button (the resident's own number only), skip, back, menu."""
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=texts.BUTTON_SEND_PHONE, request_contact=True)],
            [KeyboardButton(text=texts.BUTTON_NO_PHONE)],
            [KeyboardButton(text=texts.BUTTON_BACK), KeyboardButton(text=texts.BUTTON_MENU)],
        ],
        resize_keyboard=True,
        is_persistent=True,
        input_field_placeholder=texts.PHONE_PLACEHOLDER,
    )


def _back_row(class_id: int, step: Step) -> list[InlineKeyboardButton]:
    return [
        _button(
            texts.BUTTON_BACK,
            SignUpCb(action=SignUpAction.BACK, cls=class_id, value=step).pack(),
        )
    ]


def seats_step(class_id: int, max_seats: int) -> InlineKeyboardMarkup:
    rows = [
        [
            _button(
                texts.seats_button(seats),
                SignUpCb(action=SignUpAction.SEATS, cls=class_id, value=seats).pack(),
            )
        ]
        for seats in range(1, max_seats + 1)
    ]
    rows += [_back_row(class_id, Step.PHONE), _menu_row()]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def confirm_step(class_id: int, back_to: Step) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(
                    texts.BUTTON_APPLY, SignUpCb(action=SignUpAction.SUBMIT, cls=class_id).pack()
                )
            ],
            _back_row(class_id, back_to),
            _menu_row(),
        ]
    )


def after_sign_up() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[_mine_row(), _classes_row(texts.BUTTON_BACK_TO_CLASSES), _menu_row()]
    )


def my_registrations(items: Sequence[ResidentRegistration], zone: ZoneInfo) -> InlineKeyboardMarkup:
    rows = []
    for item in items:
        registration, klass = item.registration, item.klass
        if registration.status is RegistrationStatus.CONFIRMED:
            rows.append(
                [
                    _button(
                        texts.calendar_button(klass, zone),
                        RegistrationCb(
                            action=RegistrationAction.CALENDAR, id=registration.id
                        ).pack(),
                    )
                ]
            )
        rows.append(
            [
                _button(
                    texts.cancel_button(klass, zone),
                    RegistrationCb(action=RegistrationAction.ASK_CANCEL, id=registration.id).pack(),
                )
            ]
        )
    rows += [_classes_row(texts.BUTTON_BACK_TO_CLASSES), _menu_row()]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def confirm_cancel(registration_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(
                    texts.BUTTON_CANCEL_YES,
                    RegistrationCb(action=RegistrationAction.CANCEL, id=registration_id).pack(),
                )
            ],
            [_button(texts.BUTTON_CANCEL_NO, ClassCb(action=ClassAction.MINE).pack())],
            _menu_row(),
        ]
    )


def after_cancel() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[_mine_row(), _classes_row(texts.BUTTON_BACK_TO_CLASSES), _menu_row()]
    )
