"""The last line of defence: an update whose handler raised.

The error is logged without any message text (type and stack only: exception messages can
quote the data, e.g. SQL parameters), the resident gets an apology with the menu, and the
dispatcher goes on with the next update.
"""

from __future__ import annotations

import logging
import traceback
from contextlib import suppress
from typing import TYPE_CHECKING

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.types import ErrorEvent, Update

from bot import keyboards, messages
from madoguchi.db import session_scope
from madoguchi.residents import mark_blocked

if TYPE_CHECKING:
    from madoguchi.app import AppContext

log = logging.getLogger(__name__)


def _user_id(update: Update) -> int | None:
    user = None
    if update.message is not None:
        user = update.message.from_user
    elif update.callback_query is not None:
        user = update.callback_query.from_user
    elif update.edited_message is not None:
        user = update.edited_message.from_user
    return None if user is None else user.id


async def on_error(event: ErrorEvent, bot: Bot, context: AppContext) -> bool:
    error = event.exception
    stack = "".join(traceback.format_tb(error.__traceback__))
    log.error(
        "update %d failed with %s; apologised to the resident\n%s",
        event.update.update_id,
        type(error).__name__,
        stack,
    )
    user_id = _user_id(event.update)
    if user_id is None:
        return True
    try:
        if event.update.callback_query is not None:
            with suppress(TelegramAPIError):
                await event.update.callback_query.answer()
        await bot.send_message(user_id, messages.APOLOGY, reply_markup=keyboards.main_menu())
    except TelegramForbiddenError:
        async with session_scope(context.session_factory) as session:
            await mark_blocked(session, user_id)
    except TelegramAPIError as send_error:
        log.warning("could not send the apology: %s", type(send_error).__name__)
    return True


def create_router() -> Router:
    router = Router(name=__name__)
    router.errors.register(on_error)
    return router
