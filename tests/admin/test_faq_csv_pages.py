"""CSV export and import from the pages: Excel-ready bytes, Shift_JIS, a broken row changing
nothing with row numbers and reasons in Japanese, the size limit, formula escaping."""

from __future__ import annotations

import csv
import io

from adminkit import Client, post_form, session_csrf
from aiohttp import FormData

from faq.csv_io import CSV_COLUMNS, escape_formula, unescape_formula
from faq.service import answer_question
from faq.store import get_entry, list_entries
from madoguchi.app import AppContext


async def upload(
    client: Client, data: bytes, *, encoding: str = "auto", name: str = "faq.csv"
) -> tuple[int, str]:
    form = FormData()
    form.add_field("csrf_token", await session_csrf(client))
    form.add_field("encoding", encoding)
    form.add_field("file", io.BytesIO(data), filename=name, content_type="text/csv")
    response = await client.post("/admin/faq/import", data=form)
    return response.status, await response.text()


async def snapshot(context: AppContext) -> list[tuple[str, str, int]]:
    async with context.session_factory() as db:
        return [(e.id, e.answer, e.revision) for e in await list_entries(db)]


async def test_export_utf8_with_bom_and_shift_jis(client: Client) -> None:
    response = await client.get("/admin/faq/export")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    body = await response.read()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert rows[0] == list(CSV_COLUMNS)
    assert {row[0] for row in rows[1:]} == {"mn-lost", "gomi-sodai", "juminhyo"}

    response = await client.get("/admin/faq/export", params={"encoding": "cp932"})
    sjis = await response.read()
    assert "shift_jis" in response.headers["Content-Disposition"]
    assert "マイナンバーカードをなくしました".encode("cp932") in sjis


async def test_export_names_what_shift_jis_cannot_hold(client: Client) -> None:
    response = await post_form(
        client,
        "/admin/faq/new",
        {"id": "emoji", "question": "𠮷野家はどこ？", "answer": "となりです🙂", "published": "1"},
    )
    assert response.status == 303
    response = await client.get("/admin/faq/export", params={"encoding": "cp932"})
    assert response.status == 400
    page = await response.text()
    assert "Shift_JIS（cp932）では書き出せない文字があります" in page
    assert "ID「emoji」" in page


async def test_broken_row_changes_nothing(client: Client, context: AppContext) -> None:
    before = await snapshot(context)
    text = (
        "ID,問い合わせ文,応答文,カテゴリ,公開\r\n"
        "mn-lost,マイナンバーカードをなくしました,書き換えた答え,マイナンバー,1\r\n"
        "new-1,,答えだけ,くらし,1\r\n"
        "new-2,質問,答え,くらし,たぶん\r\n"
        "new-3,新しい質問,新しい答え,くらし,1\r\n"
    )
    status, page = await upload(client, text.encode("utf-8-sig"))
    assert status == 400
    assert "取り込めませんでした。何も変更していません。" in page
    assert "3行目：問い合わせ文が空です" in page
    assert "4行目：公開の値「たぶん」が読み取れません" in page
    assert await snapshot(context) == before  # not even the valid rows


async def test_shift_jis_file_from_excel(client: Client, context: AppContext) -> None:
    text = (
        "ID,問い合わせ文,応答文,カテゴリ,言い換え\r\n"
        "mn-lost,マイナンバーカードをなくしました,コールセンター（0120-95-0178）へ。～24時間～,マイナンバー,マイナカード紛失\r\n"
        "kosodate-1,児童手当の申請はどうしますか,子育て支援係で受け付けます。,子育て,児童手当|手当の申し込み\r\n"
    )
    status, page = await upload(client, text.encode("cp932"))
    assert status == 200, page
    assert "取り込みました：新規 1 件、更新 1 件、変更なし 0 件" in page
    async with context.session_factory() as db:
        created = await get_entry(db, "kosodate-1")
        updated = await get_entry(db, "mn-lost")
    assert created is not None and created.alternatives == ("児童手当", "手当の申し込み")
    assert updated is not None and updated.answer.startswith("コールセンター")
    assert updated.alternatives == ("マイナカード紛失",)
    town = context.settings.town
    assert answer_question(context.faq_engine, "児童手当の申請", town).faq_id == "kosodate-1"

    # The explicit choice works too, and a round trip of our own export changes nothing.
    export = await (await client.get("/admin/faq/export", params={"encoding": "cp932"})).read()
    status, page = await upload(client, export, encoding="cp932")
    assert "新規 0 件、更新 0 件、変更なし 4 件" in page


async def test_import_refuses_non_csv_and_huge_files(client: Client, context: AppContext) -> None:
    before = await snapshot(context)
    status, page = await upload(client, b"PK\x03\x04" + b"\x00" * 100, name="faq.xlsx")
    assert status == 400
    assert "Excelのブック" in page
    status, page = await upload(client, b"ID,x\r\n" + b"a" * (5 * 1024 * 1024 + 10))
    assert status == 413
    assert "5MB" in page
    status, page = await upload(client, b"")
    assert status == 400
    assert await snapshot(context) == before


async def test_formulas_are_escaped_and_round_trip(client: Client, context: AppContext) -> None:
    response = await post_form(
        client,
        "/admin/faq/new",
        {
            "id": "formula",
            "question": '=HYPERLINK("http://evil.example","click")',
            "answer": "-5℃以下の日は休みです",
            "category": "@くらし",
            "published": "1",
        },
    )
    assert response.status == 303
    body = await (await client.get("/admin/faq/export")).read()
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    row = dict(zip(CSV_COLUMNS, next(r for r in rows if r[0] == "formula"), strict=True))
    assert row["問い合わせ文"].startswith("'=HYPERLINK")
    assert row["応答文"] == "'-5℃以下の日は休みです"
    assert row["カテゴリ"] == "'@くらし"
    status, page = await upload(client, body)
    assert "変更なし 4 件" in page
    async with context.session_factory() as db:
        entry = await get_entry(db, "formula")
    assert entry is not None and entry.answer == "-5℃以下の日は休みです"
    for value in ("=1+1", "'=1", "''+2", "'plain", "", "@", "plain"):
        assert unescape_formula(escape_formula(value)) == value
