"""The one web server of a deployment (aiohttp, which aiogram already uses).

It carries the demo chat at `/` (without `BOT_TOKEN`), the Telegram webhook (webhook mode),
a health check for the deploying engineer's monitoring and the staff admin at `/admin/`
(admin/web.py: a sub-application with its own login, CSRF and security middleware). With a token set, `/` is a short page saying where residents find the bot.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from aiohttp import web

from admin.web import MAX_REQUEST_BYTES, create_admin_app, mount_admin
from bot.demo import DemoChat
from madoguchi.app import AppContext

CONTEXT_KEY: web.AppKey[AppContext] = web.AppKey("madoguchi_context", AppContext)

BOT_PAGE = """<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>まどぐち — {town}</title>
<style>
 body {{ font-family: "Noto Sans CJK JP", sans-serif; font-size: 22px; line-height: 1.7;
        max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #16202a; }}
 h1 {{ font-size: 1.5rem; }}
</style>
</head>
<body>
<h1>まどぐち（{town}）</h1>
<p>よくある質問にお答えするチャットは、Telegram でご利用いただけます。</p>
<p>困ったときは {counter_name}（電話 {counter_phone}、{counter_hours}）へお問い合わせください。</p>
</body>
</html>
"""


async def bot_page(request: web.Request) -> web.Response:
    town = request.app[CONTEXT_KEY].settings.town
    page = BOT_PAGE.format(
        town=html.escape(town.town_name),
        counter_name=html.escape(town.counter_name),
        counter_phone=html.escape(town.counter_phone),
        counter_hours=html.escape(town.counter_hours),
    )
    return web.Response(text=page, content_type="text/html", charset="utf-8")


async def healthz(request: web.Request) -> web.Response:
    context = request.app[CONTEXT_KEY]
    return web.json_response({"status": "ok", "faq_entries": len(context.faq_engine)})


def create_web_app(
    context: AppContext,
    *,
    demo: DemoChat | None = None,
    setup: Callable[[web.Application], None] | None = None,
    admin: web.Application | None = None,
) -> web.Application:
    """The application: the demo chat at `/` when given, `/healthz`, the staff admin at
    `/admin/` (`admin`, or one built from `context`), and whatever `setup` registers (the
    Telegram webhook handler of `BotRuntime.setup_webhook`)."""
    # Room for the admin's CSV upload (5 MB); every other handler checks its own sizes.
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[CONTEXT_KEY] = context
    if demo is not None:
        demo.add_routes(app)
    else:
        app.router.add_get("/", bot_page)
    app.router.add_get("/healthz", healthz)
    mount_admin(app, admin if admin is not None else create_admin_app(context))
    if setup is not None:
        setup(app)
    return app


async def start_web_server(
    context: AppContext,
    *,
    demo: DemoChat | None = None,
    setup: Callable[[web.Application], None] | None = None,
) -> tuple[web.AppRunner, str]:
    """Start listening on MADOGUCHI_HTTP_HOST:PORT; returns the runner and the base URL."""
    settings = context.settings
    app = create_web_app(context, demo=demo, setup=setup)
    # A demo page may hold a long poll open: do not wait a minute for it on shutdown.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    port = settings.http_port
    # With port 0 (tests) the OS picks the port: read back the one actually bound.
    sockets = getattr(site._server, "sockets", None)
    if sockets:
        port = sockets[0].getsockname()[1]
    return runner, f"http://{settings.http_host}:{port}/"
