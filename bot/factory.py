"""Factories for the bot and its dispatcher. Nothing is built at import time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ChatType
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage

from bot.errors import RetryMiddleware
from bot.filters import Magic
from bot.handlers import get_error_router, get_routers
from bot.http import JsonAiohttpSession
from bot.middlewares import DbSessionMiddleware, InFlightMiddleware, ResidentMiddleware
from madoguchi.settings import Settings

if TYPE_CHECKING:
    from madoguchi.app import AppContext


def create_bot(
    token: str,
    *,
    api_base: str | None = None,
    session: BaseSession | None = None,
    retry: RetryMiddleware | None = None,
) -> Bot:
    """A Bot talking to Telegram, or to the Bot API server at `api_base` (self-hosted, tests).

    Its session retries 429 (after `retry_after`) and 5xx/network errors (bounded backoff).
    `session` replaces the aiohttp session (tests); the retry middleware is added to it too.
    """
    if session is None:
        session = (
            JsonAiohttpSession(api=TelegramAPIServer.from_base(api_base))
            if api_base
            else JsonAiohttpSession()
        )
    session.middleware(retry or RetryMiddleware())
    # Plain text (no parse mode): FAQ answers may contain < and &; no link previews under
    # answers, they push the buttons out of sight on small screens.
    return Bot(
        token,
        session=session,
        default=DefaultBotProperties(parse_mode=None, link_preview_is_disabled=True),
    )


def create_storage(settings: Settings) -> BaseStorage:
    """FSM storage: Redis when several instances share the work, else in-process."""
    if settings.redis_url:
        from aiogram.fsm.storage.redis import RedisStorage

        return RedisStorage.from_url(settings.redis_url)
    return MemoryStorage()


def create_dispatcher(context: AppContext) -> Dispatcher:
    """The dispatcher with every resident flow, one database session per update, the
    resident behind each update, and the error handler (apology, log, go on)."""
    in_flight = InFlightMiddleware()
    dispatcher = Dispatcher(
        storage=create_storage(context.settings),
        in_flight=in_flight,
        context=context,
        settings=context.settings,
        faq_engine=context.faq_engine,
        log_sessions=context.log_session_factory,
    )
    # First, so that it also waits for the session and resident middlewares (see BotRuntime.stop).
    dispatcher.update.outer_middleware(in_flight)
    dispatcher.update.outer_middleware(DbSessionMiddleware(context.session_factory))
    dispatcher.update.outer_middleware(ResidentMiddleware())
    residents = Router(name="bot.residents")
    # Private chats only: in a group, every message would otherwise be taken as a question.
    residents.message.filter(Magic(F.chat.type == ChatType.PRIVATE))
    residents.include_routers(*get_routers())
    dispatcher.include_routers(residents, get_error_router())
    return dispatcher
