"""操作履歴: the audit log, newest first, with simple filters."""

from __future__ import annotations

from aiohttp import web

from admin.audit import count_records, list_records
from admin.web import app_context, render

PAGE_SIZE = 100


async def audit_log(request: web.Request) -> web.StreamResponse:
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    actor = request.query.get("actor", "").strip() or None
    target_type = request.query.get("target_type", "").strip() or None
    target_id = request.query.get("target_id", "").strip() or None
    async with app_context(request).session_factory() as db:
        records = await list_records(
            db,
            limit=PAGE_SIZE + 1,
            offset=(page - 1) * PAGE_SIZE,
            actor=actor,
            target_type=target_type,
            target_id=target_id,
        )
        total = await count_records(db)
    return render(
        request,
        "audit.html",
        records=records[:PAGE_SIZE],
        has_next=len(records) > PAGE_SIZE,
        page=page,
        total=total,
        actor=actor or "",
        target_type=target_type or "",
        target_id=target_id or "",
    )


def add_routes(routes: web.RouteTableDef) -> None:
    routes.get("/audit")(audit_log)
