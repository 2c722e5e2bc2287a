"""👍 役に立った / 👎 役に立たなかった: one vote per resident, question and entry."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.types import CallbackQuery
from sqlalchemy.ext.asyncio import AsyncSession

from bot import keyboards, messages
from bot.callbacks import FeedbackCb
from bot.handlers.common import find_entry, stale
from faq.engine import FaqEngine
from faq.inquiries import record_feedback
from madoguchi.residents import ResidentInfo
from madoguchi.settings import Settings


async def feedback(
    callback: CallbackQuery,
    *,
    callback_data: FeedbackCb,
    bot: Bot,
    session: AsyncSession,
    resident: ResidentInfo,
    settings: Settings,
    faq_engine: FaqEngine,
) -> None:
    document = find_entry(faq_engine, callback_data.ref)
    if document is None or callback_data.log < 0:
        await stale(callback)
        return
    log_id = callback_data.log or None
    outcome = await record_feedback(
        session,
        resident_id=resident.id,
        faq_id=document.id,
        helpful=callback_data.helpful,
        question_log_id=log_id,
    )
    if outcome == "rejected":
        await stale(callback)
        return
    await session.commit()  # stored before the resident is thanked (see questions.question)
    await callback.answer(messages.FEEDBACK_THANKS)
    if not callback_data.helpful and outcome != "unchanged":
        keyboard = keyboards.fallback(log_id) if log_id else keyboards.contact_and_menu()
        await bot.send_message(
            callback.from_user.id,
            messages.not_helpful_text(settings.town, can_leave_for_staff=log_id is not None),
            reply_markup=keyboard,
        )


def create_router() -> Router:
    router = Router(name=__name__)
    router.callback_query.register(feedback, FeedbackCb.filter())
    return router
