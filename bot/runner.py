"""BotRuntime: the bot and its dispatcher running inside `madoguchi run` (polling or webhook)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot import messages
from bot.factory import create_bot, create_dispatcher
from bot.middlewares import InFlightMiddleware
from bot.workers import WorkerPool, poll_into, webhook_handler

if TYPE_CHECKING:
    from madoguchi.app import AppContext

log = logging.getLogger(__name__)

# How long a stop waits for the updates being handled (answers on their way) to finish.
STOP_GRACE_SECONDS = 10.0


class BotRuntime:
    def __init__(
        self,
        context: AppContext,
        *,
        token: str,
        api_base: str | None = None,
        bot: Bot | None = None,
        workers: int = 1,
    ) -> None:
        """`workers` > 1: updates are handled by that many worker processes (bot/workers.py);
        this process only receives them (and sends reminders with `self.bot`)."""
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.context = context
        self.bot = bot or create_bot(token, api_base=api_base)
        self.dispatcher = create_dispatcher(context)
        self._polling: asyncio.Task[None] | None = None
        self._pool = (
            WorkerPool(context.settings, token=token, api_base=api_base, count=workers)
            if workers > 1
            else None
        )
        self._token = token
        self._api_base = api_base

    def worker_pids(self) -> list[int]:
        """The worker processes' ids (none when this process handles the updates itself)."""
        return self._pool.pids() if self._pool else []

    async def _set_commands(self) -> None:
        commands = [BotCommand(command=name, description=text) for name, text in messages.COMMANDS]
        try:
            await self.bot.set_my_commands(commands)
        except TelegramAPIError as error:  # the bot works without its "/" menu
            log.warning("setMyCommands failed: %s", type(error).__name__)

    async def start_polling(self) -> None:
        """Start long polling in a background task; return once polling has started."""
        if self._polling is not None:
            raise RuntimeError("polling is already running")
        await self.bot.delete_webhook(drop_pending_updates=False)
        await self._set_commands()
        if self._pool is not None:
            await self._pool.start()
            self._polling = asyncio.create_task(
                poll_into(
                    self._pool,
                    token=self._token,
                    api_base=self._api_base,
                    allowed_updates=self.dispatcher.resolve_used_update_types(),
                ),
                name="madoguchi-bot-polling",
            )
            return
        started = asyncio.Event()

        async def on_startup() -> None:
            started.set()

        self.dispatcher.startup.register(on_startup)
        self._polling = asyncio.create_task(
            self.dispatcher.start_polling(self.bot, handle_signals=False, close_bot_session=False),
            name="madoguchi-bot-polling",
        )
        waiter = asyncio.create_task(started.wait())
        done, _pending = await asyncio.wait(
            {self._polling, waiter}, return_when=asyncio.FIRST_COMPLETED
        )
        if self._polling in done:
            waiter.cancel()
            task, self._polling = self._polling, None
            task.result()  # raises what stopped polling
            raise RuntimeError("polling stopped at once")

    def webhook_url(self) -> str:
        settings = self.context.settings
        if not settings.webhook_url:
            raise ValueError("MADOGUCHI_WEBHOOK_URL is not set")
        return settings.webhook_url.rstrip("/") + settings.webhook_path

    def setup_webhook(self, app: web.Application) -> None:
        """Serve Telegram's webhook at settings.webhook_path on `app`.

        Every request must carry the secret token (X-Telegram-Bot-Api-Secret-Token), or it is
        refused with 401; on start-up the webhook is registered with Telegram.
        """
        settings = self.context.settings
        if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
            raise ValueError("MADOGUCHI_WEBHOOK_SECRET is required for the webhook")
        secret = settings.webhook_secret.get_secret_value()
        pool = self._pool
        if pool is None:
            SimpleRequestHandler(self.dispatcher, self.bot, secret_token=secret).register(
                app, path=settings.webhook_path
            )
        else:
            app.router.add_post(settings.webhook_path, webhook_handler(pool, secret))

        async def on_startup(_app: web.Application) -> None:
            if pool is not None:
                await pool.start()
            await self._set_commands()
            await self.bot.set_webhook(self.webhook_url(), secret_token=secret)

        app.on_startup.append(on_startup)

    async def stop(self) -> None:
        """Stop polling (if running) and close the bot's HTTP session and FSM storage."""
        task, self._polling = self._polling, None
        if task is not None:
            with contextlib.suppress(RuntimeError):
                await self.dispatcher.stop_polling()
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pool is not None:
            # Each worker answers the updates it has, within the same grace period.
            await self._pool.stop(timeout=STOP_GRACE_SECONDS + 5.0)
        in_flight = self.dispatcher.workflow_data.get("in_flight")
        if isinstance(in_flight, InFlightMiddleware):
            unfinished = await in_flight.wait(STOP_GRACE_SECONDS)
            if unfinished:
                log.warning("stopped with %d update(s) still being handled", unfinished)
        await self.bot.session.close()
        await self.dispatcher.storage.close()  # the Redis connection, when there is one
