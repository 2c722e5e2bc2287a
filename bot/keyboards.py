"""Keyboards: the persistent main menu and the inline buttons under messages."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from bot import messages
from bot.callbacks import (
    CategoryCb,
    EntryCb,
    FeedbackCb,
    MenuAction,
    MenuCb,
    MyDataAction,
    MyDataCb,
    NoneOfTheseCb,
    StaffCb,
    SuggestCb,
    category_ref,
    entry_ref,
)
from faq.types import FaqDocument

PAGE_SIZE = 8


def main_menu() -> ReplyKeyboardMarkup:
    """Four big buttons that stay under the chat."""
    return ReplyKeyboardMarkup(
        keyboard=[
            [
                KeyboardButton(text=messages.BUTTON_ASK),
                KeyboardButton(text=messages.BUTTON_CATEGORIES),
            ],
            [
                KeyboardButton(text=messages.BUTTON_CLASSES),
                KeyboardButton(text=messages.BUTTON_CONTACT),
            ],
        ],
        resize_keyboard=True,
        is_persistent=True,
        input_field_placeholder=messages.MENU_PLACEHOLDER,
    )


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


def _menu_row() -> list[InlineKeyboardButton]:
    return [_button(messages.BUTTON_MENU, MenuCb(action=MenuAction.MENU).pack())]


def back_to_menu() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[_menu_row()])


def contact_and_menu() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(messages.BUTTON_CONTACT_INLINE, MenuCb(action=MenuAction.CONTACT).pack())],
            _menu_row(),
        ]
    )


def answer(
    faq_id: str, *, log_id: int | None, back: CategoryCb | None = None
) -> InlineKeyboardMarkup:
    """👍 / 👎 for the answer, then the way back (the list it came from, the menu)."""
    ref = entry_ref(faq_id)
    log = log_id or 0
    rows = [
        [
            _button(messages.BUTTON_HELPFUL, FeedbackCb(log=log, ref=ref, helpful=True).pack()),
            _button(
                messages.BUTTON_NOT_HELPFUL, FeedbackCb(log=log, ref=ref, helpful=False).pack()
            ),
        ]
    ]
    if back is not None:
        rows.append([_button(messages.BUTTON_BACK_TO_LIST, back.pack())])
    rows.append(_menu_row())
    return InlineKeyboardMarkup(inline_keyboard=rows)


def suggestions(log_id: int, candidates: Sequence[tuple[str, str]]) -> InlineKeyboardMarkup:
    """One button per (faq_id, question), then 「どれでもない」 and the menu."""
    rows = [
        [
            _button(
                messages.button_label(question),
                SuggestCb(log=log_id, ref=entry_ref(faq_id)).pack(),
            )
        ]
        for faq_id, question in candidates
    ]
    rows.append([_button(messages.BUTTON_NONE_OF_THESE, NoneOfTheseCb(log=log_id).pack())])
    rows.append(_menu_row())
    return InlineKeyboardMarkup(inline_keyboard=rows)


def fallback(log_id: int | None) -> InlineKeyboardMarkup:
    rows = []
    if log_id:
        rows.append([_button(messages.BUTTON_LEAVE_FOR_STAFF, StaffCb(log=log_id).pack())])
    rows.append(_menu_row())
    return InlineKeyboardMarkup(inline_keyboard=rows)


def categories(names: Sequence[str]) -> InlineKeyboardMarkup:
    rows = [[_button(name, CategoryCb(cat=category_ref(name)).pack())] for name in names]
    rows.append(_menu_row())
    return InlineKeyboardMarkup(inline_keyboard=rows)


def page_count(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def category_questions(
    category: str, documents: Sequence[FaqDocument], page: int
) -> InlineKeyboardMarkup:
    """Up to PAGE_SIZE questions, 「前へ」/「次へ」 when there are more, and the ways back."""
    cat = category_ref(category)
    start = page * PAGE_SIZE
    rows = [
        [
            _button(
                messages.button_label(document.question),
                EntryCb(ref=entry_ref(document.id), cat=cat, page=page).pack(),
            )
        ]
        for document in documents[start : start + PAGE_SIZE]
    ]
    paging = []
    if page > 0:
        paging.append(_button(messages.BUTTON_PREVIOUS, CategoryCb(cat=cat, page=page - 1).pack()))
    if start + PAGE_SIZE < len(documents):
        paging.append(_button(messages.BUTTON_NEXT, CategoryCb(cat=cat, page=page + 1).pack()))
    if paging:
        rows.append(paging)
    rows.append(
        [_button(messages.BUTTON_BACK_TO_CATEGORIES, MenuCb(action=MenuAction.CATEGORIES).pack())]
    )
    rows.append(_menu_row())
    return InlineKeyboardMarkup(inline_keyboard=rows)


def my_data() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(messages.BUTTON_DELETE_ALL, MyDataCb(action=MyDataAction.ASK_DELETE).pack())],
            _menu_row(),
        ]
    )


def confirm_delete() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(messages.BUTTON_DELETE_YES, MyDataCb(action=MyDataAction.CONFIRM).pack()),
                _button(messages.BUTTON_DELETE_NO, MyDataCb(action=MyDataAction.CANCEL).pack()),
            ]
        ]
    )
