"""The one web server of a deployment (aiohttp, which aiogram already uses).

It will carry the demo chat at `/`, the staff admin at `/admin/` and the Telegram webhook;
this version serves a page that asks the FAQ engine (the same answers `madoguchi ask` and the
bot give) and a health check for the deploying engineer's monitoring.
"""

from __future__ import annotations

import html
from urllib.parse import quote

from aiohttp import web

from faq.service import answer_question
from madoguchi.app import AppContext

CONTEXT_KEY: web.AppKey[AppContext] = web.AppKey("madoguchi_context", AppContext)
MAX_QUESTION_CHARS = 4096

PAGE = """<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>窓口 — {town}</title>
<style>
 body {{ font-family: "Noto Sans CJK JP", sans-serif; font-size: 20px; line-height: 1.7;
        max-width: 46rem; margin: 1.5rem auto; padding: 0 1rem; color: #1a1a1a; }}
 h1 {{ font-size: 1.6rem; }}
 form {{ display: flex; gap: .5rem; flex-wrap: wrap; }}
 input[type=text] {{ flex: 1 1 18rem; font-size: 1.2rem; padding: .6rem; }}
 button {{ font-size: 1.2rem; padding: .6rem 1.4rem; }}
 .answer {{ background: #f3f7ff; border-radius: .5rem; padding: 1rem; margin-top: 1rem;
           white-space: pre-wrap; }}
 .note {{ color: #555; font-size: .9rem; }}
</style>
</head>
<body>
<h1>窓口 — ご質問にお答えします</h1>
<p>マイナンバーカード、マイナポータル、オンライン手続、スマホの使い方について質問を入力してください。</p>
<form method="post" action="/">
 <input type="text" name="q" value="{question}" maxlength="{max_chars}" aria-label="質問" autofocus>
 <button type="submit">質問する</button>
</form>
{result}
<p class="note">困ったときは {counter_name}（電話 {counter_phone}、{counter_hours}）へお問い合わせください。</p>
</body>
</html>
"""


def _result_html(context: AppContext, question: str) -> str:
    if not question.strip():
        return ""
    answer = answer_question(context.faq_engine, question, context.settings.town)
    if answer.status == "answered" and answer.answer:
        link = (
            f'<p>くわしくは <a href="{html.escape(answer.url)}">公式のページ</a></p>'
            if answer.url
            else ""
        )
        return (
            f'<div class="answer"><strong>{html.escape(answer.question or "")}</strong>\n\n'
            f"{html.escape(answer.answer)}</div>{link}"
        )
    if answer.status == "suggested":
        items = "".join(
            f'<li><a href="/?q={quote(c.question)}">{html.escape(c.question)}</a></li>'
            for c in answer.candidates
        )
        return f'<div class="answer">もしかして、次のご質問ですか？<ul>{items}</ul></div>'
    town = context.settings.town
    return (
        '<div class="answer">申し訳ありません。このご質問にはお答えできませんでした。\n'
        f"{html.escape(town.counter_name)}（電話 {html.escape(town.counter_phone)}、"
        f"{html.escape(town.counter_hours)}）へお問い合わせください。</div>"
    )


async def index(request: web.Request) -> web.Response:
    context = request.app[CONTEXT_KEY]
    # The form posts, since a long Japanese question does not fit in a URL (aiohttp refuses
    # request lines over 8 KB); the 「もしかして」 links use ?q=.
    if request.method == "POST":
        form = await request.post()
        raw = form.get("q", "")
        question = raw if isinstance(raw, str) else ""
    else:
        question = request.query.get("q", "")
    question = question[:MAX_QUESTION_CHARS]
    town = context.settings.town
    page = PAGE.format(
        town=html.escape(town.town_name),
        question=html.escape(question),
        max_chars=MAX_QUESTION_CHARS,
        result=_result_html(context, question),
        counter_name=html.escape(town.counter_name),
        counter_phone=html.escape(town.counter_phone),
        counter_hours=html.escape(town.counter_hours),
    )
    return web.Response(text=page, content_type="text/html", charset="utf-8")


async def healthz(request: web.Request) -> web.Response:
    context = request.app[CONTEXT_KEY]
    return web.json_response({"status": "ok", "faq_entries": len(context.faq_engine)})


def create_web_app(context: AppContext) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[CONTEXT_KEY] = context
    app.router.add_get("/", index)
    app.router.add_post("/", index)
    app.router.add_get("/healthz", healthz)
    return app


async def start_web_server(context: AppContext) -> tuple[web.AppRunner, str]:
    """Start listening on MADOGUCHI_HTTP_HOST:PORT; returns the runner and the base URL."""
    settings = context.settings
    runner = web.AppRunner(create_web_app(context), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    port = settings.http_port
    # With port 0 (tests) the OS picks the port: read back the one actually bound.
    sockets = getattr(site._server, "sockets", None)
    if sockets:
        port = sockets[0].getsockname()[1]
    return runner, f"http://{settings.http_host}:{port}/"
