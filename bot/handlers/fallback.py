"""What no other handler took: unknown commands, stickers and photos, stale buttons.

Included last. Also follows the resident blocking and unblocking the bot.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatMemberStatus
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot import keyboards, messages
from bot.filters import Magic
from bot.handlers.common import stale
from madoguchi.residents import clear_blocked, mark_blocked


async def unknown_command(message: Message) -> None:
    await message.answer(messages.UNKNOWN_COMMAND, reply_markup=keyboards.main_menu())


async def not_text(message: Message) -> None:
    """Stickers, photos, voice, video, contacts, files, locations, ...: only text is read."""
    await message.answer(messages.NOT_TEXT, reply_markup=keyboards.main_menu())


async def unknown_button(callback: CallbackQuery) -> None:
    await stale(callback)


async def membership_changed(event: ChatMemberUpdated, session: AsyncSession) -> None:
    if event.chat.type != "private":
        return
    status = event.new_chat_member.status
    if status == ChatMemberStatus.KICKED:
        await mark_blocked(session, event.from_user.id)
    elif status == ChatMemberStatus.MEMBER:
        await clear_blocked(session, event.from_user.id)


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(unknown_command, Magic(F.text.startswith("/")))
    router.message.register(not_text)
    router.callback_query.register(unknown_button)
    router.my_chat_member.register(membership_changed)
    return router
