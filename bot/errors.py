"""Retrying Telegram requests as Telegram asks, as a session request middleware.

- 429 (TelegramRetryAfter): wait `retry_after` seconds, then try again;
- 5xx, network errors, an unreadable answer (e.g. a proxy's HTML error page): wait with a
  bounded exponential backoff, then try again;
- anything else (400, 403 "bot was blocked by the user", 404, ...) is not retried: the
  caller sees the error at once (403 is handled in bot.middlewares.ResidentMiddleware).

Attempts are bounded, so one resident's failing request cannot hold an update for long.
`getUpdates` is not retried here: aiogram's polling loop has its own backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramEntityTooLarge,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.methods.base import TelegramType

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class RetryMiddleware(BaseRequestMiddleware):
    def __init__(
        self,
        *,
        max_attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        max_retry_after: float = 60.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_retry_after = max_retry_after
        self.sleep = sleep

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if method.__api_method__ == GetUpdates.__api_method__:
            return await make_request(bot, method)
        attempt = 1
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                if attempt >= self.max_attempts or error.retry_after > self.max_retry_after:
                    raise
                delay = float(error.retry_after)
                reason = "429"
            except TelegramEntityTooLarge:
                raise
            except (TelegramServerError, TelegramNetworkError, ClientDecodeError) as error:
                if attempt >= self.max_attempts:
                    raise
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                reason = type(error).__name__
            log.warning(
                "Telegram %s failed (%s), attempt %d of %d; retrying in %.1f s",
                method.__api_method__,
                reason,
                attempt,
                self.max_attempts,
                delay,
            )
            await self.sleep(delay)
            attempt += 1
