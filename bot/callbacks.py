"""Inline button data. Short prefixes keep every packed value within Telegram's 64 bytes.

FAQ entries are referred to by id when it is short, else by a hash of the id (see
`entry_ref`); categories always by a hash of their name (`category_ref`). Anything a button
carries is checked again when it comes back: data can be stale or forged.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

from aiogram.filters.callback_data import CallbackData

ENTRY_REF_MAX = 32
_HASH_MARK = "~"


def _short_hash(value: str, length: int) -> str:
    return hashlib.sha1(value.encode("utf-8"), usedforsecurity=False).hexdigest()[:length]


def entry_ref(faq_id: str) -> str:
    """The id itself when short (FAQ ids are [A-Za-z0-9-]), else "~" and 12 hex digits."""
    if len(faq_id) <= ENTRY_REF_MAX and ":" not in faq_id and _HASH_MARK not in faq_id:
        return faq_id
    return _HASH_MARK + _short_hash(faq_id, 12)


def matches_entry_ref(ref: str, faq_id: str) -> bool:
    return entry_ref(faq_id) == ref


def category_ref(category: str) -> str:
    return _short_hash(category, 8)


class MenuAction(StrEnum):
    MENU = "m"
    ASK = "q"
    CATEGORIES = "c"
    CLASSES = "k"
    CONTACT = "t"


class MenuCb(CallbackData, prefix="m"):
    """Main-menu actions as inline buttons (メニューに戻る, カテゴリ一覧に戻る, ...)."""

    action: MenuAction


class CategoryCb(CallbackData, prefix="c"):
    """One page of the questions in a category."""

    cat: str
    page: int = 0


class EntryCb(CallbackData, prefix="e"):
    """An entry picked while browsing; `cat`/`page` say where 「一覧に戻る」 goes."""

    ref: str
    cat: str = ""
    page: int = 0


class SuggestCb(CallbackData, prefix="s"):
    """A candidate picked from 「もしかして」 for the resident's question log `log`."""

    log: int
    ref: str


class NoneOfTheseCb(CallbackData, prefix="n"):
    """「どれでもない」 under the suggestions of question log `log`."""

    log: int


class FeedbackCb(CallbackData, prefix="f"):
    """👍 (helpful=1) / 👎 (helpful=0) on entry `ref`; `log` is 0 when browsing."""

    log: int
    ref: str
    helpful: bool


class StaffCb(CallbackData, prefix="t"):
    """「職員に質問を伝える」 for question log `log`."""

    log: int


class MyDataAction(StrEnum):
    ASK_DELETE = "a"
    CONFIRM = "y"
    CANCEL = "n"


class MyDataCb(CallbackData, prefix="d"):
    action: MyDataAction


# --- smartphone classes (issue 5) -----------------------------------------------------------


class ClassAction(StrEnum):
    LIST = "l"  # スマホ教室: the upcoming classes
    DETAILS = "d"  # one class
    APPLY = "a"  # 申し込む: starts the sign-up flow
    MINE = "r"  # 予約の確認


class ClassCb(CallbackData, prefix="k"):
    """The classes menu; `id` is the class for DETAILS and APPLY (0 otherwise)."""

    action: ClassAction
    id: int = 0


class SignUpAction(StrEnum):
    USE_NAME = "n"  # この名前で申し込む (the name prefilled from Telegram)
    SEATS = "s"  # `value` seats
    SUBMIT = "y"  # 申し込む on the confirmation screen
    BACK = "b"  # 戻る to step `value` (see bot.handlers.classes.Step)


class SignUpCb(CallbackData, prefix="j"):
    """A step of the sign-up flow for class `cls`; checked against the flow's FSM data."""

    action: SignUpAction
    cls: int
    value: int = 0


class RegistrationAction(StrEnum):
    ASK_CANCEL = "a"  # キャンセルする: asks 「本当にキャンセルしますか」
    CANCEL = "y"  # はい、キャンセルします
    CALENDAR = "i"  # the .ics file again


class RegistrationCb(CallbackData, prefix="r"):
    """One of the resident's registrations; ownership is checked when it comes back."""

    action: RegistrationAction
    id: int
