"""カテゴリから探す: categories → questions (8 a page) → the answer, by buttons only."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.types import CallbackQuery

from bot import keyboards, messages
from bot.callbacks import CategoryCb, EntryCb
from bot.handlers.common import category_documents, find_category, find_entry, send_answer, stale
from faq.engine import FaqEngine
from madoguchi.settings import Settings


async def category_page(
    callback: CallbackQuery, callback_data: CategoryCb, bot: Bot, faq_engine: FaqEngine
) -> None:
    category = find_category(faq_engine, callback_data.cat)
    if category is None:
        await stale(callback)
        return
    documents = category_documents(faq_engine, category)
    pages = keyboards.page_count(len(documents))
    if not 0 <= callback_data.page < pages:
        await stale(callback)
        return
    await callback.answer()
    await bot.send_message(
        callback.from_user.id,
        messages.category_questions(category, callback_data.page, pages),
        reply_markup=keyboards.category_questions(category, documents, callback_data.page),
    )


async def entry_picked(
    callback: CallbackQuery,
    *,
    callback_data: EntryCb,
    bot: Bot,
    settings: Settings,
    faq_engine: FaqEngine,
) -> None:
    document = find_entry(faq_engine, callback_data.ref)
    if document is None:
        await stale(callback)
        return
    await callback.answer()
    back = (
        CategoryCb(cat=callback_data.cat, page=max(0, callback_data.page))
        if callback_data.cat
        else None
    )
    await send_answer(bot, callback.from_user.id, document, settings.town, log_id=None, back=back)


def create_router() -> Router:
    router = Router(name=__name__)
    router.callback_query.register(category_page, CategoryCb.filter())
    router.callback_query.register(entry_picked, EntryCb.filter())
    return router
