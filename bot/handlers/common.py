"""Helpers the handlers share: sending answers and menus, finding entries and categories.

Not a router. Entries and categories come from the FAQ engine's index, which holds exactly
the published entries.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import CallbackQuery

from bot import keyboards, messages
from bot.callbacks import CategoryCb, category_ref, matches_entry_ref
from faq.engine import FaqEngine
from faq.inquiries import Channel
from faq.service import render_answer
from faq.types import FaqDocument
from madoguchi.settings import Settings, TownInfo


def channel_of(settings: Settings) -> Channel:
    return "demo" if settings.demo_mode else "telegram"


def find_entry(engine: FaqEngine, ref: str) -> FaqDocument | None:
    """The published entry a button refers to, or None (unknown, deleted or unpublished)."""
    document = engine.get(ref)
    if document is not None:
        return document
    if ref.startswith("~"):
        for candidate in engine.documents():
            if matches_entry_ref(ref, candidate.id):
                return candidate
    return None


def published_categories(engine: FaqEngine) -> list[str]:
    return sorted({document.category for document in engine.documents() if document.category})


def find_category(engine: FaqEngine, ref: str) -> str | None:
    for category in published_categories(engine):
        if category_ref(category) == ref:
            return category
    return None


def category_documents(engine: FaqEngine, category: str) -> list[FaqDocument]:
    documents = [document for document in engine.documents() if document.category == category]
    return sorted(documents, key=lambda document: document.id)


async def send_menu(bot: Bot, chat_id: int, text: str = messages.MENU) -> None:
    await bot.send_message(chat_id, text, reply_markup=keyboards.main_menu())


async def send_answer(
    bot: Bot,
    chat_id: int,
    document: FaqDocument,
    town: TownInfo,
    *,
    log_id: int | None,
    back: CategoryCb | None = None,
) -> None:
    """The answer (split politely when long), its official link, and 👍 / 👎 / the way back."""
    text = messages.answer_text(
        document.question, render_answer(document.answer, town), document.url or None
    )
    parts = messages.split_message(text)
    for part in parts[:-1]:
        await bot.send_message(chat_id, part)
    await bot.send_message(
        chat_id, parts[-1], reply_markup=keyboards.answer(document.id, log_id=log_id, back=back)
    )


async def send_fallback(bot: Bot, chat_id: int, town: TownInfo, *, log_id: int | None) -> None:
    await bot.send_message(
        chat_id, messages.fallback_text(town), reply_markup=keyboards.fallback(log_id)
    )


async def send_categories(bot: Bot, chat_id: int, engine: FaqEngine) -> None:
    names = published_categories(engine)
    if not names:
        await bot.send_message(
            chat_id, messages.NO_CATEGORIES, reply_markup=keyboards.back_to_menu()
        )
        return
    await bot.send_message(chat_id, messages.CATEGORIES, reply_markup=keyboards.categories(names))


async def stale(callback: CallbackQuery) -> None:
    """Answer a button whose data is stale or forged; nothing else happens."""
    await callback.answer(messages.STALE, show_alert=True)
