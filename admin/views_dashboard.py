"""ダッシュボード: questions per day, answered / suggested / fallback, 👍/👎 per entry, top
unanswered questions and class fill rates, as tables and simple bars a manager reads at a
glance. Bars are inline SVG (the admin's Content-Security-Policy allows no inline styles)."""

from __future__ import annotations

from aiohttp import web

from admin.web import app_context, now, render
from faq.stats import DEFAULT_DAYS, dashboard_stats

PERIODS = (7, 14, 30, 90)


async def dashboard(request: web.Request) -> web.StreamResponse:
    try:
        days = int(request.query.get("days", DEFAULT_DAYS))
    except ValueError:
        days = DEFAULT_DAYS
    if days not in PERIODS:
        days = DEFAULT_DAYS
    context = app_context(request)
    async with context.session_factory() as db:
        stats = await dashboard_stats(
            db,
            now=now(request),
            tz=context.settings.tzinfo,
            days=days,
            normalizer=context.faq_engine.normalizer,
        )
    return render(request, "dashboard/index.html", stats=stats, periods=PERIODS)


def add_routes(routes: web.RouteTableDef) -> None:
    routes.get("/dashboard")(dashboard)
