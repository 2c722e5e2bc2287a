"""/start, /menu, /help and the four menu buttons (as reply buttons and as inline buttons)."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot import keyboards, messages
from bot.callbacks import MenuAction, MenuCb
from bot.filters import Magic
from bot.handlers.classes import send_class_list
from bot.handlers.common import send_categories, send_menu
from classes.clock import Clock, SystemClock
from faq.engine import FaqEngine
from madoguchi.residents import ResidentInfo
from madoguchi.settings import Settings


async def start(message: Message, settings: Settings) -> None:
    await message.answer(messages.greeting(settings.town), reply_markup=keyboards.main_menu())


async def menu(message: Message) -> None:
    await message.answer(messages.MENU, reply_markup=keyboards.main_menu())


async def help_command(message: Message, settings: Settings) -> None:
    await message.answer(messages.help_text(settings.town), reply_markup=keyboards.main_menu())


async def _run(
    action: MenuAction,
    bot: Bot,
    chat_id: int,
    settings: Settings,
    faq_engine: FaqEngine,
    *,
    session: AsyncSession,
    resident: ResidentInfo,
    clock: Clock | None,
) -> None:
    town = settings.town
    if action is MenuAction.ASK:
        await bot.send_message(chat_id, messages.ASK_PROMPT, reply_markup=keyboards.main_menu())
    elif action is MenuAction.CATEGORIES:
        await send_categories(bot, chat_id, faq_engine)
    elif action is MenuAction.CLASSES:
        await send_class_list(
            bot,
            chat_id,
            session=session,
            resident_id=resident.id,
            settings=settings,
            now=(clock or SystemClock()).now(),
        )
    elif action is MenuAction.CONTACT:
        await bot.send_message(
            chat_id, messages.contact_text(town), reply_markup=keyboards.back_to_menu()
        )
    else:
        await send_menu(bot, chat_id)


_BUTTON_ACTIONS = {
    messages.BUTTON_ASK: MenuAction.ASK,
    messages.BUTTON_CATEGORIES: MenuAction.CATEGORIES,
    messages.BUTTON_CLASSES: MenuAction.CLASSES,
    messages.BUTTON_CONTACT: MenuAction.CONTACT,
}


async def menu_button(
    message: Message,
    *,
    bot: Bot,
    settings: Settings,
    faq_engine: FaqEngine,
    session: AsyncSession,
    resident: ResidentInfo,
    clock: Clock | None = None,
) -> None:
    assert message.text is not None
    await _run(
        _BUTTON_ACTIONS[message.text],
        bot,
        message.chat.id,
        settings,
        faq_engine,
        session=session,
        resident=resident,
        clock=clock,
    )


async def menu_callback(
    callback: CallbackQuery,
    *,
    callback_data: MenuCb,
    bot: Bot,
    settings: Settings,
    faq_engine: FaqEngine,
    session: AsyncSession,
    resident: ResidentInfo,
    clock: Clock | None = None,
) -> None:
    await callback.answer()
    await _run(
        callback_data.action,
        bot,
        callback.from_user.id,
        settings,
        faq_engine,
        session=session,
        resident=resident,
        clock=clock,
    )


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(start, CommandStart())
    router.message.register(menu, Command("menu"))
    router.message.register(help_command, Command("help"))
    router.message.register(menu_button, Magic(F.text.in_(set(messages.MENU_BUTTONS))))
    router.callback_query.register(menu_callback, MenuCb.filter())
    return router
