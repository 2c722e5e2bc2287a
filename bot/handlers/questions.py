"""Free text is a question: answered, 「もしかして」 suggestions, or an honest fallback.

Every question is logged (masked) with its outcome; the message text itself never goes to
the logging module.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import keyboards, messages
from bot.callbacks import NoneOfTheseCb, StaffCb, SuggestCb
from bot.filters import Magic
from bot.handlers.common import (
    channel_of,
    find_entry,
    send_answer,
    send_fallback,
    send_menu,
    stale,
)
from faq.engine import FaqEngine
from faq.inquiries import leave_for_staff, log_question, owned_question_log
from faq.service import answer_question
from madoguchi.residents import ResidentInfo
from madoguchi.settings import Settings


async def question(
    message: Message,
    *,
    bot: Bot,
    log_sessions: async_sessionmaker[AsyncSession],
    resident: ResidentInfo,
    settings: Settings,
    faq_engine: FaqEngine,
) -> None:
    text = (message.text or "").strip()
    chat_id = message.chat.id
    if not text:
        await send_menu(bot, chat_id)
        return
    town = settings.town
    answer = answer_question(faq_engine, text, town)
    # The buttons sent next carry this log's id, so it is stored (committed) before the
    # resident can tap them: one statement in a session that commits each one.
    async with log_sessions() as log_session:
        log_id = await log_question(
            log_session,
            resident_id=resident.id,
            channel=channel_of(settings),
            question=text,
            outcome=answer.status,
            faq_id=answer.faq_id,
            score=answer.score,
        )
    if answer.status == "answered" and answer.faq_id is not None:
        document = faq_engine.get(answer.faq_id)
        if document is not None:
            await send_answer(bot, chat_id, document, town, log_id=log_id)
            return
    if answer.status == "suggested" and answer.candidates:
        await bot.send_message(
            chat_id,
            messages.SUGGESTIONS,
            reply_markup=keyboards.suggestions(
                log_id, [(c.faq_id, c.question) for c in answer.candidates]
            ),
        )
        return
    await send_fallback(bot, chat_id, town, log_id=log_id)


async def suggestion_picked(
    callback: CallbackQuery,
    *,
    callback_data: SuggestCb,
    bot: Bot,
    session: AsyncSession,
    resident: ResidentInfo,
    settings: Settings,
    faq_engine: FaqEngine,
) -> None:
    log = await owned_question_log(session, callback_data.log, resident.id)
    document = find_entry(faq_engine, callback_data.ref)
    if log is None or document is None:
        await stale(callback)
        return
    await callback.answer()
    await send_answer(bot, callback.from_user.id, document, settings.town, log_id=log.id)


async def none_of_these(
    callback: CallbackQuery,
    *,
    callback_data: NoneOfTheseCb,
    bot: Bot,
    session: AsyncSession,
    resident: ResidentInfo,
    settings: Settings,
) -> None:
    log = await owned_question_log(session, callback_data.log, resident.id)
    if log is None:
        await stale(callback)
        return
    await callback.answer()
    await send_fallback(bot, callback.from_user.id, settings.town, log_id=log.id)


async def leave_question_for_staff(
    callback: CallbackQuery,
    *,
    callback_data: StaffCb,
    bot: Bot,
    session: AsyncSession,
    resident: ResidentInfo,
    settings: Settings,
) -> None:
    log = await owned_question_log(session, callback_data.log, resident.id)
    if log is None:
        await stale(callback)
        return
    if log.left_for_staff:
        await callback.answer(messages.ALREADY_LEFT_FOR_STAFF, show_alert=True)
        return
    await leave_for_staff(session, log.id, resident.id)
    await session.commit()  # stored before the resident is told it was passed on
    await callback.answer()
    await bot.send_message(
        callback.from_user.id,
        messages.left_for_staff_text(settings.town),
        reply_markup=keyboards.back_to_menu(),
    )


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(question, Magic(F.text), Magic(~F.text.startswith("/")))
    router.callback_query.register(suggestion_picked, SuggestCb.filter())
    router.callback_query.register(none_of_these, NoneOfTheseCb.filter())
    router.callback_query.register(leave_question_for_staff, StaffCb.filter())
    return router
