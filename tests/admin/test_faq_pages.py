"""FAQ pages: list, search and filter, create, edit with revisions and restore, the stale
edit conflict, publish/unpublish, delete, the try box; the bot's index follows each change."""

from __future__ import annotations

import html
import re

from adminkit import Client, csrf_of, post_form
from sqlalchemy import select

from admin.models import AuditLogEntry
from faq.service import answer_question
from faq.store import get_entry, list_revisions
from madoguchi.app import AppContext

LOST = "マイナンバーカードをなくしました"


def edit_fields(page: str) -> dict[str, str]:
    """The edit form's values as a browser would post them."""
    fields = {
        "revision": re.search(r'name="revision" value="(\d+)"', page).group(1),  # type: ignore[union-attr]
        "question": re.search(
            r'id="question" name="question" type="text" value="([^"]*)"', page
        ).group(1),  # type: ignore[union-attr]
        "answer": re.search(r'name="answer"[^>]*>([^<]*)</textarea>', page).group(1),  # type: ignore[union-attr]
        "category": re.search(
            r'id="category" name="category" type="text" value="([^"]*)"', page
        ).group(1),  # type: ignore[union-attr]
        "published": "1",
    }
    for name in ("alternatives", "keywords"):
        found = re.search(rf'id="{name}" name="{name}"[^>]*>([^<]*)</textarea>', page)
        fields[name] = html.unescape(found.group(1)) if found else ""
    return {name: html.unescape(value) for name, value in fields.items()}


async def test_list_search_and_filter(client: Client) -> None:
    page = await (await client.get("/admin/faq")).text()
    assert "3件" in page
    assert LOST in page and "粗大ごみ" in page
    assert page.count("badge-on") == 3
    page = await (await client.get("/admin/faq", params={"q": "マイナカード"})).text()
    assert "1件" in page and LOST in page  # matches the alternative phrasing
    assert "粗大ごみ" not in page.split("</form>")[-1]
    page = await (await client.get("/admin/faq", params={"category": "ごみ"})).text()
    assert "1件" in page and "粗大ごみはどうやって出しますか" in page
    assert '<option value="ごみ" selected>' in page


async def test_create_entry(client: Client, context: AppContext) -> None:
    page = await (await client.get("/admin/faq/new", params={"question": "犬の登録は？"})).text()
    assert 'value="犬の登録は？"' in page
    response = await post_form(
        client,
        "/admin/faq/new",
        {
            "id": "inu-toroku",
            "question": "犬の登録はどこでしますか",
            "answer": "役場の環境係で登録できます。",
            "alternatives": "犬を飼い始めた\r\n狂犬病の注射",
            "keywords": "犬",
            "category": "くらし",
            "published": "1",
        },
    )
    assert response.status == 303
    assert response.headers["Location"] == "/admin/faq/inu-toroku/edit"
    async with context.session_factory() as db:
        entry = await get_entry(db, "inu-toroku")
    assert entry is not None
    assert entry.alternatives == ("犬を飼い始めた", "狂犬病の注射")
    assert entry.updated_by == "tanaka"
    answer = answer_question(context.faq_engine, "犬を飼い始めた", context.settings.town)
    assert answer.faq_id == "inu-toroku"  # the bot knows it at once

    # Errors are shown in Japanese and nothing is saved.
    response = await post_form(
        client, "/admin/faq/new", {"id": "bad id!", "question": "", "answer": ""}
    )
    assert response.status == 400
    page = await response.text()
    assert "問い合わせ文が空です" in page and "IDは半角英数字" in page
    response = await post_form(
        client, "/admin/faq/new", {"id": "inu-toroku", "question": "q", "answer": "a"}
    )
    assert response.status == 409
    assert "すでに使われています" in await response.text()


async def test_edit_restore_and_history(client: Client, context: AppContext) -> None:
    page = await (await client.get("/admin/faq/mn-lost/edit")).text()
    fields = edit_fields(page)
    assert fields["revision"] == "1"
    new_answer = "新しい案内です。専用ダイヤル 0120-95-0178 へ、24時間いつでも。"
    response = await post_form(client, "/admin/faq/mn-lost/edit", {**fields, "answer": new_answer})
    assert response.status == 303
    page = await (await client.get(response.headers["Location"])).text()
    assert "保存しました" in page
    answer = answer_question(context.faq_engine, LOST, context.settings.town)
    assert answer.answer == new_answer  # no restart needed

    history = await (await client.get("/admin/faq/mn-lost/history")).text()
    assert "版2：編集" in history and "版1：作成" in history
    assert "変更：応答文" in history
    response = await post_form(client, "/admin/faq/mn-lost/restore", {"revision": "1"})
    assert response.status == 303
    async with context.session_factory() as db:
        entry = await get_entry(db, "mn-lost")
        revisions = await list_revisions(db, "mn-lost")
        actions = [
            (row.action, row.target_id, row.detail)
            for row in await db.scalars(select(AuditLogEntry).order_by(AuditLogEntry.id))
        ]
    assert entry is not None and entry.revision == 3
    assert entry.answer.startswith("すぐに専用ダイヤル")
    assert [r.action for r in revisions] == ["restore", "update", "create"]
    assert ("faq.update", "mn-lost", {"revision": 2, "fields": ["answer"]}) in actions
    assert ("faq.restore", "mn-lost", {"from_revision": 1, "revision": 3}) in actions
    answer = answer_question(context.faq_engine, LOST, context.settings.town)
    assert answer.answer is not None and answer.answer.startswith("すぐに専用ダイヤル")

    audit_page = await (await client.get("/admin/audit")).text()
    assert "FAQを以前の版に戻す" in audit_page and "FAQを編集" in audit_page


async def test_stale_edit_shows_the_conflict(client: Client, context: AppContext) -> None:
    page = await (await client.get("/admin/faq/mn-lost/edit")).text()
    mine = edit_fields(page)
    # Someone else saves first.
    theirs = {**mine, "answer": "ほかの職員が先に直した答えです。"}
    assert (await post_form(client, "/admin/faq/mn-lost/edit", theirs)).status == 303
    response = await post_form(
        client, "/admin/faq/mn-lost/edit", {**mine, "answer": "わたしの答えです。"}
    )
    assert response.status == 409
    page = await response.text()
    assert "他の方が先に更新しました" in page
    assert "ほかの職員が先に直した答えです。" in page  # the current text
    assert "わたしの答えです。" in page  # the draft is kept
    assert 'name="revision" value="2"' in page  # saving again now is a knowing overwrite
    async with context.session_factory() as db:
        entry = await get_entry(db, "mn-lost")
    assert entry is not None and entry.answer == "ほかの職員が先に直した答えです。"
    response = await post_form(client, "/admin/faq/mn-lost/edit", {**edit_fields(page)})
    assert response.status == 303


async def test_unpublish_publish_and_delete(client: Client, context: AppContext) -> None:
    town = context.settings.town
    assert answer_question(context.faq_engine, LOST, town).faq_id == "mn-lost"
    assert (await post_form(client, "/admin/faq/mn-lost/unpublish", {})).status == 303
    page = await (await client.get("/admin/faq")).text()
    assert "非公開にしました" in page
    assert page.count("badge-off") == 1
    assert answer_question(context.faq_engine, LOST, town).faq_id != "mn-lost"
    assert (await post_form(client, "/admin/faq/mn-lost/publish", {})).status == 303
    assert answer_question(context.faq_engine, LOST, town).faq_id == "mn-lost"

    confirm = await (await client.get("/admin/faq/mn-lost/delete")).text()
    assert "削除しますか" in confirm and csrf_of(confirm)
    response = await post_form(client, "/admin/faq/mn-lost/delete", {})
    assert response.status == 303
    assert answer_question(context.faq_engine, LOST, town).faq_id != "mn-lost"
    assert (await client.get("/admin/faq/mn-lost/edit")).status == 404
    history = await (await client.get("/admin/faq/mn-lost/history")).text()
    assert "削除されています" in history
    assert (await post_form(client, "/admin/faq/mn-lost/restore", {"revision": "3"})).status == 303
    assert answer_question(context.faq_engine, LOST, town).faq_id == "mn-lost"


async def test_try_box(client: Client) -> None:
    page = await (await client.get("/admin/try", params={"q": LOST})).text()
    assert "答えます" in page
    assert "0120-95-0178" in page  # the answer
    assert re.search(r'<td class="num">\d\.\d\d</td>', page)  # candidates with scores
    page = await (await client.get("/admin/faq", params={"try": "今日の天気は？"})).text()
    assert "お答えできません" in page
    assert "0555-12-3456" in page  # the counter the bot points to
    page = await (await client.get("/admin/try", params={"q": "ごみ"})).text()
    assert any(label in page for label in ("候補を示します", "答えます", "お答えできません"))
    page = await (await client.get("/admin/try", params={"q": "<script>alert(1)</script>"})).text()
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
