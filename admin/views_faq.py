"""FAQ pages: list and search, create, edit (with the revision check), publish/unpublish,
delete, history and restore, the 「この質問で試す」 box, CSV export and import.

Handlers stay thin: the rules live in faq.store / faq.csv_io / faq.service. After every
committed change the bot's index is refreshed at once (`context.refresh_faq()`).
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any, Literal

from aiohttp import web

from admin import audit
from admin.web import (
    ADMIN_PREFIX,
    actor,
    app_context,
    csv_download,
    form_data,
    form_text,
    now,
    render,
    safe_next,
    see_other,
    shorten,
)
from faq.csv_io import FaqCsvEncodingError, FaqCsvError, export_faq_csv, import_faq_csv
from faq.service import answer_question
from faq.store import (
    FaqConflict,
    FaqEntryExists,
    FaqEntryNotFound,
    FaqError,
    FaqValidationError,
    create_entry,
    delete_entry,
    get_entry,
    list_categories,
    list_entries,
    list_revisions,
    restore_revision,
    update_entry,
)
from faq.types import FaqEntry, FaqEntryData
from madoguchi.db import session_scope

FAQ = f"{ADMIN_PREFIX}/faq"
IMPORT_MAX_BYTES = 5 * 1024 * 1024
ENTRY_ID = r"{entry_id:[A-Za-z0-9-]{1,64}}"
CONFLICT_MESSAGE = "他の方が先に更新しました。いまの内容を下に表示しています。見比べてから、もう一度保存してください。"

OUTCOME_LABELS = {
    "answered": "答えます",
    "suggested": "候補を示します",
    "fallback": "お答えできません",
}
ACTION_LABELS = {"create": "作成", "update": "編集", "restore": "復元", "delete": "削除"}
FIELD_LABELS = {
    "question": "問い合わせ文",
    "answer": "応答文",
    "alternatives": "言い換え",
    "keywords": "キーワード",
    "category": "カテゴリ",
    "reference_url": "参考URL",
    "department": "担当課",
    "published": "公開",
    "staff_note": "職員メモ",
}


# --- helpers -----------------------------------------------------------------------------


def _lines(value: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in value.splitlines() if line.strip())


def _form_entry(form: Any, entry_id: str) -> FaqEntryData:
    return FaqEntryData(
        id=entry_id,
        question=form_text(form, "question"),
        answer=form_text(form, "answer"),
        alternatives=_lines(form_text(form, "alternatives")),
        keywords=_lines(form_text(form, "keywords")),
        category=form_text(form, "category"),
        reference_url=form_text(form, "reference_url"),
        department=form_text(form, "department"),
        published=form_text(form, "published") == "1",
        staff_note=form_text(form, "staff_note"),
    )


def _changed_fields(before: FaqEntryData, after: FaqEntryData) -> list[str]:
    return [name for name in FIELD_LABELS if getattr(before, name) != getattr(after, name)]


def _new_id() -> str:
    return f"faq-{secrets.token_hex(4)}"


def _entry_id(request: web.Request) -> str:
    return request.match_info["entry_id"]


def _revision(form: Any) -> int | None:
    try:
        return int(form_text(form, "revision"))
    except ValueError:
        return None


async def _refresh(request: web.Request) -> None:
    """Let the bot answer with the new text at once."""
    await app_context(request).refresh_faq()


async def _categories(request: web.Request) -> list[str]:
    async with app_context(request).session_factory() as db:
        return await list_categories(db)


def _try(request: web.Request, text: str) -> dict[str, Any] | None:
    text = text.strip()[:1000]
    if not text:
        return None
    context = app_context(request)
    answer = answer_question(context.faq_engine, text, context.settings.town)
    return {
        "text": text,
        "answer": answer,
        "outcome_label": OUTCOME_LABELS[answer.status],
    }


# --- list, try -------------------------------------------------------------------------------


async def faq_list(request: web.Request) -> web.StreamResponse:
    search = request.query.get("q", "").strip()
    category = request.query.get("category", "")
    state = request.query.get("state", "")
    async with app_context(request).session_factory() as db:
        entries = await list_entries(db, category=category or None, search=search or None)
        categories = await list_categories(db)
    if state == "published":
        entries = [entry for entry in entries if entry.published]
    elif state == "unpublished":
        entries = [entry for entry in entries if not entry.published]
    return render(
        request,
        "faq/list.html",
        entries=entries,
        categories=categories,
        search=search,
        category=category,
        state=state,
        tried=_try(request, request.query.get("try", "")),
        try_text=request.query.get("try", ""),
    )


async def try_page(request: web.Request) -> web.StreamResponse:
    text = request.query.get("q", "")
    return render(request, "faq/try.html", tried=_try(request, text), try_text=text)


# --- create and edit -----------------------------------------------------------------------


def _form_page(
    request: web.Request,
    *,
    mode: Literal["create", "edit"],
    data: FaqEntryData,
    revision: int | None = None,
    errors: list[str] | None = None,
    conflict: FaqEntry | None = None,
    next_url: str = "",
    http_status: int = 200,
    categories: list[str] | None = None,
) -> web.Response:
    return render(
        request,
        "faq/form.html",
        http_status=http_status,
        mode=mode,
        data=data,
        revision=revision,
        errors=errors or [],
        conflict=conflict,
        conflict_message=CONFLICT_MESSAGE if conflict else "",
        next_url=next_url,
        categories=categories or [],
    )


async def new_form(request: web.Request) -> web.StreamResponse:
    query = request.query
    data = FaqEntryData(
        id="",
        question=query.get("question", ""),
        answer=query.get("answer", ""),
        alternatives=_lines(query.get("alternatives", "")),
        category=query.get("category", ""),
        published=True,
    )
    return _form_page(
        request,
        mode="create",
        data=data,
        next_url=query.get("next", ""),
        categories=await _categories(request),
    )


async def create_submit(request: web.Request) -> web.StreamResponse:
    form = await form_data(request)
    entry_id = form_text(form, "id").strip() or _new_id()
    data = _form_entry(form, entry_id)
    next_url = form_text(form, "next")
    try:
        async with session_scope(app_context(request).session_factory) as db:
            entry = await create_entry(db, data, actor=actor(request))
            await audit.record(
                db, actor(request), "faq.create", "faq", entry.id, {"revision": entry.revision}
            )
    except FaqValidationError as error:
        return _form_page(
            request,
            mode="create",
            data=replace(data, id=form_text(form, "id").strip()),
            errors=error.messages,
            next_url=next_url,
            http_status=400,
            categories=await _categories(request),
        )
    except FaqEntryExists as error:
        return _form_page(
            request,
            mode="create",
            data=data,
            errors=[str(error)],
            next_url=next_url,
            http_status=409,
            categories=await _categories(request),
        )
    await _refresh(request)
    target = safe_next(next_url) if next_url else f"{FAQ}/{entry.id}/edit"
    raise see_other(
        request, target, notice=f"「{shorten(entry.question)}」を作成しました（ID {entry.id}）。"
    )


async def edit_form(request: web.Request) -> web.StreamResponse:
    async with app_context(request).session_factory() as db:
        entry = await get_entry(db, _entry_id(request))
        categories = await list_categories(db)
    if entry is None:
        raise web.HTTPNotFound()
    return _form_page(
        request, mode="edit", data=entry.data(), revision=entry.revision, categories=categories
    )


async def edit_submit(request: web.Request) -> web.StreamResponse:
    entry_id = _entry_id(request)
    form = await form_data(request)
    data = _form_entry(form, entry_id)
    expected = _revision(form)
    context = app_context(request)
    try:
        async with session_scope(context.session_factory) as db:
            before = await get_entry(db, entry_id)
            if before is None:
                raise FaqEntryNotFound(entry_id)
            entry = await update_entry(db, data, actor=actor(request), expected_revision=expected)
            changed = _changed_fields(before.data(), entry.data())
            if entry.revision != before.revision:
                await audit.record(
                    db,
                    actor(request),
                    "faq.update",
                    "faq",
                    entry_id,
                    {"revision": entry.revision, "fields": changed},
                )
    except FaqValidationError as error:
        return _form_page(
            request,
            mode="edit",
            data=data,
            revision=expected,
            errors=error.messages,
            http_status=400,
            categories=await _categories(request),
        )
    except FaqConflict:
        async with context.session_factory() as db:
            current = await get_entry(db, entry_id)
        if current is None:
            return _gone(request, entry_id)
        return _form_page(
            request,
            mode="edit",
            data=data,
            revision=current.revision,  # saving again now overwrites, knowingly
            conflict=current,
            http_status=409,
            categories=await _categories(request),
        )
    except FaqEntryNotFound:
        return _gone(request, entry_id)
    await _refresh(request)
    notice = (
        "保存しました。ボットはすぐにこの内容で答えます。"
        if changed
        else "変更はありませんでした。"
    )
    raise see_other(request, f"{FAQ}/{entry_id}/edit", notice=notice)


def _gone(request: web.Request, entry_id: str) -> web.Response:
    return render(
        request,
        "error.html",
        http_status=404,
        title="この問い合わせはありません",
        message=f"ID「{entry_id}」は、ほかの方が削除したようです。変更履歴から元に戻せます。",
        history_url=f"{FAQ}/{entry_id}/history",
    )


# --- publish, unpublish, delete --------------------------------------------------------------


async def _set_published(request: web.Request, published: bool) -> web.StreamResponse:
    entry_id = _entry_id(request)
    form = await form_data(request)
    expected = _revision(form)
    try:
        async with session_scope(app_context(request).session_factory) as db:
            entry = await get_entry(db, entry_id)
            if entry is None:
                raise FaqEntryNotFound(entry_id)
            if entry.published != published:
                entry = await update_entry(
                    db,
                    replace(entry.data(), published=published),
                    actor=actor(request),
                    expected_revision=expected,
                )
                await audit.record(
                    db,
                    actor(request),
                    "faq.publish" if published else "faq.unpublish",
                    "faq",
                    entry_id,
                    {"revision": entry.revision},
                )
    except FaqEntryNotFound:
        return _gone(request, entry_id)
    except FaqConflict:
        raise see_other(
            request,
            f"{FAQ}/{entry_id}/edit",
            notice="他の方が先に更新しました。いまの内容を確かめてから、もう一度操作してください。",
        ) from None
    await _refresh(request)
    word = "公開しました" if published else "非公開にしました（ボットは答えません）"
    back = safe_next(form_text(form, "next")) if form_text(form, "next") else FAQ
    raise see_other(request, back, notice=f"「{shorten(entry.question)}」を{word}。")


async def publish(request: web.Request) -> web.StreamResponse:
    return await _set_published(request, True)


async def unpublish(request: web.Request) -> web.StreamResponse:
    return await _set_published(request, False)


async def delete_confirm(request: web.Request) -> web.StreamResponse:
    async with app_context(request).session_factory() as db:
        entry = await get_entry(db, _entry_id(request))
    if entry is None:
        raise web.HTTPNotFound()
    return render(request, "faq/delete.html", entry=entry)


async def delete_submit(request: web.Request) -> web.StreamResponse:
    entry_id = _entry_id(request)
    try:
        async with session_scope(app_context(request).session_factory) as db:
            entry = await get_entry(db, entry_id)
            if entry is None:
                raise FaqEntryNotFound(entry_id)
            await delete_entry(db, entry_id, actor=actor(request))
            await audit.record(
                db, actor(request), "faq.delete", "faq", entry_id, {"revision": entry.revision}
            )
    except FaqEntryNotFound:
        return _gone(request, entry_id)
    except FaqConflict:
        raise see_other(
            request, f"{FAQ}/{entry_id}/edit", notice="他の方が先に更新しました。"
        ) from None
    await _refresh(request)
    raise see_other(
        request,
        FAQ,
        notice=f"「{shorten(entry.question)}」を削除しました。変更履歴（ID {entry_id}）から元に戻せます。",
    )


# --- history and restore -------------------------------------------------------------------


async def history(request: web.Request) -> web.StreamResponse:
    entry_id = _entry_id(request)
    async with app_context(request).session_factory() as db:
        entry = await get_entry(db, entry_id)
        revisions = await list_revisions(db, entry_id)
    if entry is None and not revisions:
        raise web.HTTPNotFound()
    rows = []
    for index, revision in enumerate(revisions):
        older = revisions[index + 1] if index + 1 < len(revisions) else None
        changed = (
            [FIELD_LABELS[name] for name in _changed_fields(older.data, revision.data)]
            if older is not None
            else []
        )
        rows.append(
            {
                "revision": revision,
                "action_label": ACTION_LABELS.get(revision.action, revision.action),
                "changed": changed,
                "current": entry is not None and revision.revision == entry.revision,
            }
        )
    return render(request, "faq/history.html", entry=entry, entry_id=entry_id, rows=rows)


async def restore(request: web.Request) -> web.StreamResponse:
    entry_id = _entry_id(request)
    form = await form_data(request)
    number = _revision(form)
    if number is None:
        raise web.HTTPBadRequest(text="版の番号がありません")
    try:
        async with session_scope(app_context(request).session_factory) as db:
            entry = await restore_revision(db, entry_id, number, actor=actor(request))
            await audit.record(
                db,
                actor(request),
                "faq.restore",
                "faq",
                entry_id,
                {"from_revision": number, "revision": entry.revision},
            )
    except FaqEntryNotFound:
        raise web.HTTPNotFound() from None
    except FaqError as error:
        raise see_other(request, f"{FAQ}/{entry_id}/history", notice=str(error)) from None
    await _refresh(request)
    raise see_other(
        request,
        f"{FAQ}/{entry_id}/history",
        notice=f"版{number}の内容に戻しました（新しい版{entry.revision}として保存）。",
    )


# --- CSV ------------------------------------------------------------------------------------


async def export_csv(request: web.Request) -> web.StreamResponse:
    encoding: Literal["utf-8-sig", "cp932"] = (
        "cp932" if request.query.get("encoding") == "cp932" else "utf-8-sig"
    )
    context = app_context(request)
    try:
        async with session_scope(context.session_factory) as db:
            data = await export_faq_csv(db, encoding=encoding, tz=context.settings.tzinfo)
            await audit.record(db, actor(request), "faq.export", "faq", "", {"encoding": encoding})
    except FaqCsvEncodingError as error:
        return render(
            request,
            "faq/import.html",
            http_status=400,
            errors=[str(error)],
            report=None,
            export_error=True,
        )
    stamp = now(request).astimezone(context.settings.tzinfo).strftime("%Y%m%d-%H%M")
    suffix = "-shift_jis" if encoding == "cp932" else ""
    return csv_download(data, f"faq-{stamp}{suffix}.csv")


async def import_form(request: web.Request) -> web.StreamResponse:
    return render(request, "faq/import.html", errors=[], report=None, export_error=False)


async def import_submit(request: web.Request) -> web.StreamResponse:
    form = await form_data(request)
    upload = form.get("file")
    encoding = form_text(form, "encoding", "auto")
    if encoding not in ("auto", "utf-8-sig", "cp932"):
        encoding = "auto"

    def failed(messages: list[str], status: int = 400) -> web.Response:
        return render(
            request,
            "faq/import.html",
            http_status=status,
            errors=messages,
            report=None,
            export_error=False,
            unchanged=True,
        )

    if not isinstance(upload, web.FileField):
        return failed(["CSVファイルを選んでください。"])
    data = upload.file.read(IMPORT_MAX_BYTES + 1)
    if len(data) > IMPORT_MAX_BYTES:
        return failed(
            ["ファイルが大きすぎます（5MBまで）。ファイルを分けて取り込んでください。"], 413
        )
    if not data:
        return failed(["ファイルが空です。"])
    try:
        async with session_scope(app_context(request).session_factory) as db:
            report = await import_faq_csv(
                db,
                data,
                actor=actor(request),
                encoding=encoding,  # type: ignore[arg-type]
            )
            await audit.record(
                db,
                actor(request),
                "faq.import",
                "faq",
                "",
                {
                    "file": (upload.filename or "")[:100],
                    "created": len(report.created),
                    "updated": len(report.updated),
                    "unchanged": len(report.unchanged),
                },
            )
    except FaqCsvError as error:
        return failed([e.message for e in error.errors])
    except FaqError as error:
        return failed([str(error)])
    await _refresh(request)
    raise see_other(
        request,
        FAQ,
        notice=(
            f"取り込みました：新規 {len(report.created)} 件、更新 {len(report.updated)} 件、"
            f"変更なし {len(report.unchanged)} 件。"
        ),
    )


def add_routes(routes: web.RouteTableDef) -> None:
    routes.get("/faq")(faq_list)
    routes.get("/try")(try_page)
    routes.get("/faq/new")(new_form)
    routes.post("/faq/new")(create_submit)
    routes.get("/faq/export")(export_csv)
    routes.get("/faq/import")(import_form)
    routes.post("/faq/import")(import_submit)
    routes.get(f"/faq/{ENTRY_ID}/edit")(edit_form)
    routes.post(f"/faq/{ENTRY_ID}/edit")(edit_submit)
    routes.post(f"/faq/{ENTRY_ID}/publish")(publish)
    routes.post(f"/faq/{ENTRY_ID}/unpublish")(unpublish)
    routes.get(f"/faq/{ENTRY_ID}/delete")(delete_confirm)
    routes.post(f"/faq/{ENTRY_ID}/delete")(delete_submit)
    routes.get(f"/faq/{ENTRY_ID}/history")(history)
    routes.post(f"/faq/{ENTRY_ID}/restore")(restore)
