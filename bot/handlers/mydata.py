"""/mydata: what the bot stores about the resident, and deleting all of it.

Class registrations count too: deleting cancels the active ones first (the core promotes the
next waitlisted residents), then removes every registration with the rest of the data.
"""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot import keyboards, messages
from bot.callbacks import MyDataAction, MyDataCb
from classes.clock import Clock, SystemClock
from classes.notice_queue import ReminderPolicy
from classes.service import delete_resident_registrations, resident_registrations
from madoguchi.residents import ResidentInfo, delete_resident_data, resident_data_summary
from madoguchi.settings import Settings


async def my_data(
    message: Message,
    *,
    session: AsyncSession,
    resident: ResidentInfo,
    settings: Settings,
    clock: Clock | None = None,
) -> None:
    now = (clock or SystemClock()).now()
    summary = await resident_data_summary(session, resident.id)
    registrations = await resident_registrations(session, resident.id, now=now, include_past=True)
    await message.answer(
        messages.my_data_text(
            since=summary.since,
            questions=summary.questions,
            left_for_staff=summary.questions_left_for_staff,
            feedback=summary.feedback,
            zone=settings.tzinfo,
            class_registrations=len(registrations),
        ),
        reply_markup=keyboards.my_data(),
    )


async def my_data_action(
    callback: CallbackQuery,
    *,
    callback_data: MyDataCb,
    bot: Bot,
    session: AsyncSession,
    resident: ResidentInfo,
    settings: Settings,
    state: FSMContext,
    clock: Clock | None = None,
) -> None:
    chat_id = callback.from_user.id
    now = (clock or SystemClock()).now()
    await callback.answer()
    if callback_data.action is MyDataAction.ASK_DELETE:
        active = await resident_registrations(session, resident.id, now=now)
        await bot.send_message(
            chat_id,
            messages.CONFIRM_DELETE_WITH_CLASSES if active else messages.CONFIRM_DELETE,
            reply_markup=keyboards.confirm_delete(),
        )
    elif callback_data.action is MyDataAction.CONFIRM:
        # Registrations first: their seats go to the waitlist before the resident row goes.
        await delete_resident_registrations(
            session, resident.id, now=now, policy=ReminderPolicy.from_settings(settings)
        )
        await delete_resident_data(session, resident.id)
        await session.commit()  # only say "deleted" once it is
        await state.clear()  # an unfinished class sign-up holds a name and phone number too
        await bot.send_message(chat_id, messages.DELETED, reply_markup=keyboards.main_menu())
    else:
        await bot.send_message(chat_id, messages.NOT_DELETED, reply_markup=keyboards.back_to_menu())


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(my_data, Command("mydata"))
    router.callback_query.register(my_data_action, MyDataCb.filter())
    return router
