"""/mydata: what the bot stores about the resident, and deleting all of it."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot import keyboards, messages
from bot.callbacks import MyDataAction, MyDataCb
from madoguchi.residents import ResidentInfo, delete_resident_data, resident_data_summary
from madoguchi.settings import Settings


async def my_data(
    message: Message, session: AsyncSession, resident: ResidentInfo, settings: Settings
) -> None:
    summary = await resident_data_summary(session, resident.id)
    await message.answer(
        messages.my_data_text(
            since=summary.since,
            questions=summary.questions,
            left_for_staff=summary.questions_left_for_staff,
            feedback=summary.feedback,
            zone=settings.tzinfo,
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
) -> None:
    chat_id = callback.from_user.id
    await callback.answer()
    if callback_data.action is MyDataAction.ASK_DELETE:
        await bot.send_message(
            chat_id, messages.CONFIRM_DELETE, reply_markup=keyboards.confirm_delete()
        )
    elif callback_data.action is MyDataAction.CONFIRM:
        await delete_resident_data(session, resident.id)
        await session.commit()  # only say "deleted" once it is
        await bot.send_message(chat_id, messages.DELETED, reply_markup=keyboards.main_menu())
    else:
        await bot.send_message(chat_id, messages.NOT_DELETED, reply_markup=keyboards.back_to_menu())


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(my_data, Command("mydata"))
    router.callback_query.register(my_data_action, MyDataCb.filter())
    return router
