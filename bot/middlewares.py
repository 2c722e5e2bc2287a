"""Update middlewares: one database session per update, and the resident behind it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.exceptions import TelegramForbiddenError
from aiogram.types import TelegramObject, Update, User
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from madoguchi.residents import clear_blocked, mark_blocked, visit_resident

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class DbSessionMiddleware(BaseMiddleware):
    """Opens one AsyncSession per update as `session`: committed when the update was handled,
    rolled back when a handler raised."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self.session_factory = session_factory

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        async with self.session_factory() as session:
            data["session"] = session
            try:
                result = await handler(event, data)
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
            return result


class ResidentMiddleware(BaseMiddleware):
    """Finds or creates the resident (by Telegram user id only) as `resident`.

    A resident who writes again is no longer marked as having blocked the bot. When Telegram
    answers 403 while a handler sends (the resident blocked the bot), the resident is marked,
    nothing is retried, and what the handler stored (e.g. the question log) is kept.
    """

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        session: AsyncSession | None = data.get("session")
        if user is None or session is None or user.is_bot:
            return await handler(event, data)
        resident, wrote = await visit_resident(session, user.id)
        wrote_again = isinstance(event, Update) and (
            event.message is not None or event.callback_query is not None
        )
        if resident.blocked_at is not None and wrote_again:
            await clear_blocked(session, user.id)
            wrote = True
        if wrote:
            # Committed before the handler runs: its own writes may use another connection
            # (the question log), which must neither wait for this transaction's lock nor
            # miss a new resident's row.
            await session.commit()
        data["resident"] = resident
        try:
            return await handler(event, data)
        except TelegramForbiddenError:
            await mark_blocked(session, user.id)
            log.info("resident %d blocked the bot (403): marked, not retried", resident.id)
            return None


class InFlightMiddleware(BaseMiddleware):
    """Knows the updates being handled, so that stopping the bot lets them finish first.

    Polling hands each update to its own task; without this, a stop closed the HTTP session
    under a handler that was still answering, and aiogram opened a new one that nobody closed
    (and the resident's answer was lost).
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        task = asyncio.current_task()
        if task is None:
            return await handler(event, data)
        self._tasks.add(task)
        try:
            return await handler(event, data)
        finally:
            self._tasks.discard(task)

    async def wait(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for the updates in flight; how many were still running."""
        pending = self._tasks - {asyncio.current_task()}
        if not pending:
            return 0
        _done, still_running = await asyncio.wait(pending, timeout=timeout)
        return len(still_running)
