"""Application assembly: everything `madoguchi run` and the CLI need, built by factories.

`AppContext` holds the per-process objects (settings, database engine, session factory, FAQ
engine). Nothing here is module-level state: each command or test builds its own context.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from faq.engine import FaqEngine
from faq.index_sync import FaqIndex
from faq.seed import seed_curated_faq
from faq.service import create_engine_from_settings
from madoguchi.db import create_engine, create_session_factory, session_scope, upgrade_database
from madoguchi.settings import Settings

if TYPE_CHECKING:
    from bot.runner import BotRuntime

log = logging.getLogger(__name__)


@dataclass(slots=True)
class AppContext:
    settings: Settings
    db_engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    # Each statement commits on its own: for the question log (see db.create_engine).
    log_session_factory: async_sessionmaker[AsyncSession]
    faq_index: FaqIndex

    @property
    def faq_engine(self) -> FaqEngine:
        return self.faq_index.engine

    async def reload_faq(self) -> int:
        """Rebuild the whole FAQ index from the database (start-up)."""
        async with self.session_factory() as session:
            return await self.faq_index.load(session)

    async def refresh_faq(self) -> int:
        """Re-index only the entries staff changed since the last load or refresh."""
        async with self.session_factory() as session:
            report = await self.faq_index.refresh(session)
        if report.changed:
            log.info(
                "FAQ index updated: %d changed, %d removed",
                len(report.upserted),
                len(report.removed),
            )
        return len(report.upserted) + len(report.removed)


async def keep_faq_in_step(context: AppContext, stop: asyncio.Event, interval: float) -> None:
    """Pick up FAQ edits made elsewhere (admin, `faq import`, another instance) while running."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        if stop.is_set():
            return
        try:
            await context.refresh_faq()
        except Exception:  # a database hiccup must not stop the bot; try again next time
            log.exception("FAQ index refresh failed; will retry")


@asynccontextmanager
async def open_app(settings: Settings, *, seed: bool = True) -> AsyncIterator[AppContext]:
    """Migrate the database, seed the curated FAQ on first start, build the FAQ index."""
    await upgrade_database(settings.database_url)
    db_engine = create_engine(settings.database_url)
    log_engine = create_engine(settings.database_url, autocommit=True)
    try:
        session_factory = create_session_factory(db_engine)
        if seed:
            async with session_scope(session_factory) as session:
                seeded = await seed_curated_faq(session)
            if seeded:
                log.info("curated FAQ loaded into the empty database: %d entries", seeded)
        context = AppContext(
            settings=settings,
            db_engine=db_engine,
            session_factory=session_factory,
            log_session_factory=create_session_factory(log_engine),
            faq_index=FaqIndex(create_engine_from_settings(settings)),
        )
        count = await context.reload_faq()
        log.info("FAQ index built: %d published entries", count)
        yield context
    finally:
        await db_engine.dispose()
        await log_engine.dispose()


async def _add_demo_sample_classes(context: AppContext) -> None:
    """Demo only: a few 【サンプル】 classes so visitors can try the sign-up flow."""
    from classes.samples import ensure_sample_classes
    from madoguchi.db import utcnow

    async with session_scope(context.session_factory) as session:
        created = await ensure_sample_classes(session, now=utcnow(), tz=context.settings.tzinfo)
    if created:
        log.info("demo: %d sample classes created", created)


async def _start_reminders(
    context: AppContext, runtime: BotRuntime, stack: contextlib.AsyncExitStack
) -> None:
    """Reminders and class notices (issue 5). Registered after runtime.stop, so it stops
    first: the pass in flight finishes before the bot's session closes."""
    from bot.notifier import TelegramNotificationSender
    from classes.scheduler import build_notification_scheduler

    settings = context.settings
    sender = TelegramNotificationSender(runtime.bot, settings.tzinfo, town=settings.town)
    reminders = build_notification_scheduler(settings, context.session_factory, sender)
    reminders.start()
    stack.push_async_callback(reminders.stop)


async def _finish(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def serve(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """`madoguchi run`: the web server and the bot (or the local demo) until SIGINT/SIGTERM.

    With `BOT_TOKEN`: the bot polls Telegram (or `TELEGRAM_API_BASE`), or, when
    `MADOGUCHI_WEBHOOK_URL` is set, Telegram posts updates to the webhook on this web server.
    Without it: a fake Bot API on 127.0.0.1, the same bot polling it, and the demo chat at `/`.
    """
    from bot.demo import DemoChat, demo_token
    from bot.fake_api import FakeBotAPI
    from bot.runner import BotRuntime
    from madoguchi.web import start_web_server

    stop_event = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop_event.set)

    async with open_app(settings) as context, contextlib.AsyncExitStack() as stack:
        demo: DemoChat | None = None
        if settings.demo_mode:
            await _add_demo_sample_classes(context)
            fake = FakeBotAPI(
                token=demo_token(), bot_first_name="まどぐち（体験版）", max_recorded_calls=1000
            )
            api_base = await fake.start()
            stack.push_async_callback(fake.stop)
            runtime = BotRuntime(context, token=fake.token, api_base=api_base)
            demo = DemoChat(fake, town_name=settings.town_name)
        else:
            assert settings.bot_token is not None
            runtime = BotRuntime(
                context,
                token=settings.bot_token.get_secret_value(),
                api_base=settings.telegram_api_base,
                workers=settings.bot_workers,
            )
        stack.push_async_callback(runtime.stop)
        webhook = bool(settings.webhook_url) and not settings.demo_mode
        runner, url = await start_web_server(
            context, demo=demo, setup=runtime.setup_webhook if webhook else None
        )
        # Registered last, so it runs first: stop taking requests, then stop the bot.
        stack.push_async_callback(runner.cleanup)
        if demo is not None:
            stack.push_async_callback(demo.close)  # answer the pages' long polls first
        if not webhook:
            await runtime.start_polling()
        if settings.scheduler_enabled:
            await _start_reminders(context, runtime, stack)
        refresher = asyncio.create_task(
            keep_faq_in_step(context, stop_event, settings.faq_refresh_seconds)
        )
        stack.push_async_callback(_finish, refresher)
        print(f"madoguchi が起動しました / madoguchi is running: {url}", flush=True)
        print(f"  FAQ: {len(context.faq_engine)} 件を検索できます", flush=True)
        print(
            f"  職員用の管理画面 / staff admin: {url.rstrip('/')}/admin/"
            "（ログインは madoguchi staff add 名前 で作ります）",
            flush=True,
        )
        if demo is not None:
            print(f"  体験版のチャット / demo chat (no BOT_TOKEN): {url}", flush=True)
        elif webhook:
            target = f"{settings.webhook_url}{settings.webhook_path}"
            print(f"  Telegram bot: webhook at {target}", flush=True)
        else:
            where = settings.telegram_api_base or "api.telegram.org"
            print(f"  Telegram bot: polling {where}", flush=True)
        if workers := len(runtime.worker_pids()):
            print(f"  Telegram bot: {workers} worker processes", flush=True)
        print("  止めるには Ctrl+C / stop with Ctrl+C", flush=True)
        await stop_event.wait()
    print("madoguchi を停止しました / stopped", flush=True)
