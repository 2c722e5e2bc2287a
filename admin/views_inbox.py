"""未回答・👎: questions the bot could not answer and answers residents marked unhelpful.

Each group offers three one-click actions (forms with the session's CSRF token):
新しいFAQを作る (a prefilled create form), 既存のFAQに言い換えとして追加 (choose the entry
from the engine's candidates or a search), 対応不要 (dismiss). Every change is audited in the
same transaction and FAQ changes reach the bot at once (`refresh_faq`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from admin.audit import ACTION_LABELS, record
from admin.web import actor, app_context, form_data, form_text, render, see_other, shorten
from faq.inbox import (
    InboxItem,
    InboxKind,
    add_as_alternative,
    count_open,
    create_entry_from_group,
    dismiss,
    list_inbox,
    open_items,
)
from faq.store import (
    FaqConflict,
    FaqEntryExists,
    FaqEntryNotFound,
    FaqValidationError,
    entries_by_id,
    list_categories,
    list_entries,
)
from faq.types import FaqEntry, FaqEntryData
from madoguchi.db import session_scope

INBOX = "/admin/inbox"
MAX_LOGS = 1000
MAX_LOG_ID = 2**31 - 1
SEARCH_LIMIT = 30
CANDIDATES = 8

ACTION_LABELS.update(
    {
        "inbox.create": "未回答の質問から新しいFAQを作成",
        "inbox.alternative": "未回答の質問をFAQの言い換えに追加",
        "inbox.dismiss": "未回答の質問を対応不要に",
    }
)

_KIND_FILTERS: dict[str, InboxKind | None] = {
    "": None,
    "unanswered": "unanswered",
    "unhelpful": "unhelpful",
}


def parse_log_ids(value: str) -> list[int]:
    """ "12,13,20" → [12, 13, 20]; anything else is ignored (at most MAX_LOGS ids)."""
    ids = [int(part) for part in re.findall(r"\d{1,12}", value)]
    # Larger numbers cannot be log ids (INTEGER keys; PostgreSQL would refuse the query).
    return [log_id for log_id in dict.fromkeys(ids) if log_id <= MAX_LOG_ID][:MAX_LOGS]


def join_log_ids(ids: Sequence[int]) -> str:
    return ",".join(str(log_id) for log_id in ids)


def _suggest_id(log_ids: Sequence[int]) -> str:
    return f"inbox-{min(log_ids)}" if log_ids else ""


async def inbox_page(request: web.Request) -> web.StreamResponse:
    kind_name = request.query.get("kind", "")
    kind = _KIND_FILTERS.get(kind_name)
    context = app_context(request)
    async with context.session_factory() as db:
        groups = await list_inbox(db, normalizer=context.faq_engine.normalizer, kind=kind)
        total = await count_open(db, kind=kind)
    shown = sum(group.count for group in groups)
    return render(
        request,
        "inbox/list.html",
        groups=groups,
        older=max(0, total - shown),
        kind=kind_name if kind_name in _KIND_FILTERS else "",
        join_log_ids=join_log_ids,
    )


# --- 新しいFAQを作る -------------------------------------------------------------------------


def _draft_from_form(form: Mapping[str, Any]) -> FaqEntryData:
    return FaqEntryData(
        id=form_text(form, "id"),
        question=form_text(form, "question"),
        answer=form_text(form, "answer"),
        alternatives=tuple(form_text(form, "alternatives").splitlines()),
        keywords=tuple(form_text(form, "keywords").splitlines()),
        category=form_text(form, "category"),
        reference_url=form_text(form, "reference_url"),
        department=form_text(form, "department"),
        published=form_text(form, "published") == "1",
        staff_note=form_text(form, "staff_note"),
    )


async def _render_new(
    request: web.Request,
    log_ids: Sequence[int],
    draft: FaqEntryData,
    *,
    errors: Sequence[str] = (),
    http_status: int = 200,
) -> web.Response:
    async with app_context(request).session_factory() as db:
        items = await open_items(db, log_ids)
        categories = await list_categories(db)
    return render(
        request,
        "inbox/new.html",
        http_status=http_status,
        items=items,
        logs=join_log_ids(log_ids),
        draft=draft,
        categories=categories,
        errors=errors,
    )


async def _open_items_of_query(request: web.Request) -> tuple[list[int], list[InboxItem]]:
    """The group named by `?logs=`; back to the inbox when nothing of it is open any more."""
    log_ids = parse_log_ids(request.query.get("logs", ""))
    async with app_context(request).session_factory() as db:
        items = await open_items(db, log_ids)
    if not items:
        raise see_other(request, INBOX, notice="この質問はもう対応済みです。")
    return log_ids, items


async def new_entry_form(request: web.Request) -> web.StreamResponse:
    log_ids, items = await _open_items_of_query(request)
    phrasings = list(dict.fromkeys(item.question.strip() for item in items))
    draft = FaqEntryData(
        id=_suggest_id(log_ids),
        question=phrasings[0],
        answer="",
        alternatives=tuple(phrasings[1:]),
    )
    return await _render_new(request, [item.log_id for item in items], draft)


async def new_entry_submit(request: web.Request) -> web.StreamResponse:
    form = await form_data(request)
    log_ids = parse_log_ids(form_text(form, "logs"))
    draft = _draft_from_form(form)
    context = app_context(request)
    try:
        async with session_scope(context.session_factory) as db:
            result = await create_entry_from_group(db, log_ids, draft, actor=actor(request))
            await record(
                db,
                actor(request),
                "inbox.create",
                "faq",
                result.entry.id,
                {"question_logs": len(log_ids), "closed": result.closed},
            )
    except FaqValidationError as exc:
        return await _render_new(request, log_ids, draft, errors=exc.messages, http_status=400)
    except FaqEntryExists as exc:
        return await _render_new(request, log_ids, draft, errors=[str(exc)], http_status=409)
    await context.refresh_faq()
    raise see_other(
        request,
        INBOX,
        notice=f"FAQ「{shorten(result.entry.question)}」（ID {result.entry.id}）を作りました。"
        "チャットの回答にすぐ使われます。",
    )


# --- 既存のFAQに言い換えとして追加 -------------------------------------------------------------


async def _candidates(
    request: web.Request, question: str, search: str
) -> list[tuple[FaqEntry, float | None]]:
    """Entries to choose from: a staff search, else the engine's best matches for the
    question (with their scores)."""
    context = app_context(request)
    async with context.session_factory() as db:
        if search:
            return [
                (entry, None) for entry in (await list_entries(db, search=search))[:SEARCH_LIMIT]
            ]
        ranked = context.faq_engine.rank(question, limit=CANDIDATES)
        found = {entry.id: entry for entry in await entries_by_id(db, [c.faq_id for c in ranked])}
    return [(found[c.faq_id], c.score) for c in ranked if c.faq_id in found]


async def _render_alternative(
    request: web.Request,
    log_ids: Sequence[int],
    *,
    phrasing: str,
    search: str,
    errors: Sequence[str] = (),
    http_status: int = 200,
) -> web.Response:
    async with app_context(request).session_factory() as db:
        items = await open_items(db, log_ids)
    question = items[0].question if items else phrasing
    return render(
        request,
        "inbox/alternative.html",
        http_status=http_status,
        items=items,
        logs=join_log_ids(log_ids),
        phrasing=phrasing,
        search=search,
        candidates=await _candidates(request, question, search),
        errors=errors,
    )


async def alternative_form(request: web.Request) -> web.StreamResponse:
    log_ids, items = await _open_items_of_query(request)
    phrasing = request.query.get("phrasing", "").strip() or items[0].question
    return await _render_alternative(
        request,
        [item.log_id for item in items],
        phrasing=phrasing,
        search=request.query.get("q", "").strip(),
    )


async def alternative_submit(request: web.Request) -> web.StreamResponse:
    form = await form_data(request)
    log_ids = parse_log_ids(form_text(form, "logs"))
    phrasing = form_text(form, "phrasing").strip()
    search = form_text(form, "q").strip()
    entry_id, _, revision_text = form_text(form, "entry").rpartition("@")
    errors: list[str] = []
    if not entry_id or not revision_text.isdigit():
        errors.append("言い換えを追加するFAQを選んでください。")
    if not phrasing:
        errors.append("追加する言い換えの文が空です。")
    if errors:
        return await _render_alternative(
            request, log_ids, phrasing=phrasing, search=search, errors=errors, http_status=400
        )
    context = app_context(request)
    try:
        async with session_scope(context.session_factory) as db:
            result = await add_as_alternative(
                db,
                log_ids,
                entry_id=entry_id,
                phrasing=phrasing,
                actor=actor(request),
                expected_revision=int(revision_text),
            )
            await record(
                db,
                actor(request),
                "inbox.alternative",
                "faq",
                entry_id,
                {
                    "question_logs": len(log_ids),
                    "closed": result.closed,
                    "added": result.changed,
                    "revision": result.entry.revision,
                },
            )
    except (FaqConflict, FaqEntryNotFound, FaqValidationError) as exc:
        return await _render_alternative(
            request, log_ids, phrasing=phrasing, search=search, errors=[str(exc)], http_status=409
        )
    await context.refresh_faq()
    entry_question = shorten(result.entry.question)
    if result.changed:
        notice = f"「{shorten(phrasing)}」をFAQ「{entry_question}」の言い換えに追加しました。"
    else:
        notice = f"「{shorten(phrasing)}」はFAQ「{entry_question}」にすでにあります。対応済みにしました。"
    raise see_other(request, INBOX, notice=notice)


# --- 対応不要 ---------------------------------------------------------------------------------


async def dismiss_submit(request: web.Request) -> web.StreamResponse:
    form = await form_data(request)
    log_ids = parse_log_ids(form_text(form, "logs"))
    async with session_scope(app_context(request).session_factory) as db:
        closed = await dismiss(db, log_ids)
        await record(
            db,
            actor(request),
            "inbox.dismiss",
            "question_log",
            log_ids[0] if log_ids else "",
            {"question_logs": len(log_ids), "closed": closed},
        )
    back = INBOX
    kind = form_text(form, "kind")
    if kind in ("unanswered", "unhelpful"):
        back = f"{INBOX}?kind={kind}"
    raise see_other(request, back, notice=f"{closed}件を「対応不要」にしました。")


def add_routes(routes: web.RouteTableDef) -> None:
    routes.get("/inbox")(inbox_page)
    routes.get("/inbox/new")(new_entry_form)
    routes.post("/inbox/new")(new_entry_submit)
    routes.get("/inbox/alternative")(alternative_form)
    routes.post("/inbox/alternative")(alternative_submit)
    routes.post("/inbox/dismiss")(dismiss_submit)
