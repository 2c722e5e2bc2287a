"""スマホ教室 pages: create, edit, move, cancel, registrations, attendance, roster CSV, print."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta

from adminkit import START, Client, login, post_form
from sqlalchemy import select

from admin.audit import list_records
from classes.clock import ManualClock
from classes.models import ClassNotification
from classes.notice_queue import ReminderPolicy
from classes.service import get_class, list_registrations, sign_up
from classes.types import ClassStatus, RegistrationStatus
from madoguchi.app import AppContext
from madoguchi.db import session_scope
from madoguchi.residents import get_or_create_resident

FORM = {
    "title": "はじめてのスマホ教室",
    "venue": "中央公民館 2階",
    "day": "2026-12-15",
    "start": "14:00",
    "end": "15:30",
    "deadline": "2026-12-14T17:00",
    "capacity": "2",
    "max_seats": "2",
    "waitlist": "1",
    "description": "電話のかけ方から",
    "what_to_bring": "スマートフォン",
}


async def _create(client: Client, **changes: str) -> int:
    response = await post_form(client, "/admin/classes/new", {**FORM, **changes})
    assert response.status == 303, await response.text()
    match = re.fullmatch(r"/admin/classes/(\d+)", response.headers["Location"])
    assert match
    return int(match.group(1))


async def _sign_up(
    context: AppContext, class_id: int, name: str, *, user: int, seats: int = 1
) -> int:
    async with session_scope(context.session_factory) as db:
        resident = await get_or_create_resident(db, 770000 + user, now=START)
        result = await sign_up(
            db,
            class_id,
            resident.id,
            name=name,
            phone="090-1111-2222" if user == 1 else None,
            seats=seats,
            now=START,
            policy=ReminderPolicy.from_settings(context.settings),
        )
    assert result.registration is not None, result.refused
    return result.registration.id


async def _notices(context: AppContext, kind: str) -> int:
    async with context.session_factory() as db:
        rows = await db.scalars(select(ClassNotification).where(ClassNotification.kind == kind))
        return len(rows.all())


async def test_create_class_and_see_it_listed(client: Client, context: AppContext) -> None:
    new_page = await (await client.get("/admin/classes/new")).text()
    assert 'value="2026-12-15"' in new_page  # two weeks ahead of the admin clock
    class_id = await _create(client)
    async with context.session_factory() as db:
        klass = await get_class(db, class_id)
        (record,) = await list_records(db, target_type="class")
    assert klass is not None
    assert klass.starts_at == datetime.fromisoformat("2026-12-15T05:00:00+00:00")  # 14:00 JST
    assert klass.registration_deadline == datetime.fromisoformat("2026-12-14T08:00:00+00:00")
    assert klass.capacity == 2
    assert klass.waitlist_enabled
    assert record.action == "class.create"
    assert record.actor == "tanaka"

    listing = await (await client.get("/admin/classes")).text()
    assert "はじめてのスマホ教室" in listing
    assert "2026年12月15日（火）14:00〜15:30" in listing
    assert "受付中（残り2席）" in listing
    past = await (await client.get("/admin/classes?show=past")).text()
    assert "はじめてのスマホ教室" not in past


async def test_broken_class_forms_explain_in_japanese(client: Client) -> None:
    response = await post_form(client, "/admin/classes/new", {**FORM, "end": "13:00"})
    assert response.status == 400
    page = await response.text()
    assert "終了時刻は開始時刻より後にしてください" in page
    assert 'value="中央公民館 2階"' in page  # what was typed is kept
    missing = await post_form(client, "/admin/classes/new", {**FORM, "day": "", "capacity": "x"})
    assert missing.status == 400
    text = await missing.text()
    assert "日付を入力してください" in text
    assert "定員を数字で入力してください" in text
    past = await post_form(
        client, "/admin/classes/new", {**FORM, "day": "2026-11-01", "deadline": "2026-10-31T17:00"}
    )
    assert "開始日時が過ぎています" in await past.text()


async def test_detail_registrations_waitlist_and_attendance(
    client: Client, context: AppContext
) -> None:
    class_id = await _create(client)
    first = await _sign_up(context, class_id, "山田 花子", user=1)
    await _sign_up(context, class_id, "佐藤 一郎", user=2)
    waiting = await _sign_up(context, class_id, "鈴木 次郎", user=3)

    page = await (await client.get(f"/admin/classes/{class_id}")).text()
    assert "山田 花子" in page
    assert "09011112222" in page  # staff see the phone
    assert "キャンセル待ち（1件）" in page
    assert "鈴木 次郎" in page
    assert "2／2席" in page

    response = await post_form(
        client,
        f"/admin/classes/{class_id}/registrations/{first}/attendance",
        {"attended": "1"},
    )
    assert response.status == 303
    assert response.headers["Location"] == f"/admin/classes/{class_id}#reg-{first}"
    async with context.session_factory() as db:
        regs = {r.id: r for r in await list_registrations(db, class_id)}
        actions = [r.action for r in await list_records(db, target_type="class_registration")]
    assert regs[first].status == RegistrationStatus.ATTENDED
    assert actions == ["registration.attended"]
    page = await (await client.get(f"/admin/classes/{class_id}")).text()
    assert "出席 1件" in page

    # A waitlisted registration cannot be marked attended: a clear message, no change.
    refused = await post_form(
        client,
        f"/admin/classes/{class_id}/registrations/{waiting}/attendance",
        {"attended": "1"},
    )
    assert refused.status == 303
    async with context.session_factory() as db:
        regs = {r.id: r for r in await list_registrations(db, class_id)}
    assert regs[waiting].status == RegistrationStatus.WAITLISTED

    # Take attendance back.
    await post_form(
        client,
        f"/admin/classes/{class_id}/registrations/{first}/attendance",
        {"attended": "0"},
    )
    async with context.session_factory() as db:
        regs = {r.id: r for r in await list_registrations(db, class_id)}
    assert regs[first].status == RegistrationStatus.CONFIRMED


async def test_staff_cancel_a_registration_promotes_the_waitlist(
    client: Client, context: AppContext
) -> None:
    class_id = await _create(client)
    first = await _sign_up(context, class_id, "山田 花子", user=1)
    await _sign_up(context, class_id, "佐藤 一郎", user=2)
    waiting = await _sign_up(context, class_id, "鈴木 次郎", user=3)
    confirm = await client.get(f"/admin/classes/{class_id}/registrations/{first}/cancel")
    assert "キャンセルしますか" in await confirm.text()
    response = await post_form(
        client, f"/admin/classes/{class_id}/registrations/{first}/cancel", {}
    )
    assert response.status == 303
    async with context.session_factory() as db:
        regs = {r.id: r for r in await list_registrations(db, class_id)}
    assert regs[first].status == RegistrationStatus.CANCELLED
    assert regs[first].cancelled_by == "staff"
    assert regs[waiting].status == RegistrationStatus.CONFIRMED
    assert await _notices(context, "promoted") == 1


async def test_roster_csv_opens_in_excel(client: Client, context: AppContext) -> None:
    class_id = await _create(client)
    await _sign_up(context, class_id, "=HYPERLINK(1)", user=1)
    await _sign_up(context, class_id, "佐藤 一郎", user=2, seats=1)
    response = await client.get(f"/admin/classes/{class_id}/roster.csv")
    assert response.status == 200
    assert response.content_type == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "roster-20261215-class" in response.headers["Content-Disposition"]
    body = await response.read()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["受付番号", "状態", "お名前", "電話番号", "人数", "申込日時", "出席"]
    assert rows[1][1:4] == ["確定", "'=HYPERLINK(1)", "09011112222"]
    assert rows[1][5] == "2026/12/01 10:00"  # Tokyo time
    assert rows[2][2] == "佐藤 一郎"
    async with context.session_factory() as db:
        records = await list_records(db, target_type="class")
    assert "class.roster_export" in [r.action for r in records]


async def test_roster_csv_needs_login(anonymous: Client) -> None:
    response = await anonymous.get("/admin/classes/1/roster.csv", allow_redirects=False)
    assert response.status == 401


async def test_print_view(client: Client, context: AppContext) -> None:
    class_id = await _create(client)
    await _sign_up(context, class_id, "山田 花子", user=1)
    page = await (await client.get(f"/admin/classes/{class_id}/print")).text()
    assert "はじめてのスマホ教室 名簿" in page
    assert "山田 花子" in page
    assert "☐" in page
    assert "no-print" in page


async def test_edit_without_moving_saves_at_once(client: Client, context: AppContext) -> None:
    class_id = await _create(client)
    await _sign_up(context, class_id, "山田 花子", user=1)
    edit_page = await (await client.get(f"/admin/classes/{class_id}/edit")).text()
    assert 'value="14:00"' in edit_page
    response = await post_form(
        client, f"/admin/classes/{class_id}/edit", {**FORM, "capacity": "5", "title": "スマホ入門"}
    )
    assert response.status == 303
    async with context.session_factory() as db:
        klass = await get_class(db, class_id)
    assert klass is not None
    assert klass.title == "スマホ入門"
    assert klass.capacity == 5
    assert klass.status == ClassStatus.SCHEDULED
    assert await _notices(context, "class_changed") == 0


async def test_move_asks_for_confirmation_then_notifies(
    client: Client, context: AppContext
) -> None:
    class_id = await _create(client)
    await _sign_up(context, class_id, "山田 花子", user=1)
    await _sign_up(context, class_id, "佐藤 一郎", user=2)
    moved = {**FORM, "day": "2026-12-16", "deadline": "2026-12-15T17:00"}
    confirm = await post_form(client, f"/admin/classes/{class_id}/edit", moved)
    assert confirm.status == 200
    page = await confirm.text()
    assert "申込が <strong>2件</strong>" in page
    assert "12月16日（水）14:00" in page
    async with context.session_factory() as db:
        klass = await get_class(db, class_id)
    assert klass is not None
    assert klass.schedule_version == 1  # nothing saved yet

    response = await post_form(
        client, f"/admin/classes/{class_id}/edit", {**moved, "confirm_move": "1"}
    )
    assert response.status == 303
    async with context.session_factory() as db:
        klass = await get_class(db, class_id)
        (record,) = [
            r for r in await list_records(db, target_type="class") if r.action != "class.create"
        ]
    assert klass is not None
    assert klass.status == ClassStatus.CHANGED
    assert klass.schedule_version == 2
    assert klass.starts_at == datetime.fromisoformat("2026-12-16T05:00:00+00:00")
    assert record.action == "class.move"
    assert await _notices(context, "class_changed") == 2

    # Capacity below the confirmed seats is refused with a Japanese reason.
    too_small = await post_form(
        client, f"/admin/classes/{class_id}/edit", {**moved, "capacity": "1"}
    )
    assert too_small.status == 400
    assert "定員を、申込が確定している席数より少なくはできません" in await too_small.text()


async def test_cancel_class_with_confirmation(client: Client, context: AppContext) -> None:
    class_id = await _create(client)
    await _sign_up(context, class_id, "山田 花子", user=1)
    await _sign_up(context, class_id, "佐藤 一郎", user=2)
    await _sign_up(context, class_id, "鈴木 次郎", user=3)
    confirm = await (await client.get(f"/admin/classes/{class_id}/cancel")).text()
    assert "申込 <strong>3件</strong>" in confirm
    async with context.session_factory() as db:
        klass = await get_class(db, class_id)
    assert klass is not None
    assert klass.status == ClassStatus.SCHEDULED  # a GET changes nothing

    response = await post_form(client, f"/admin/classes/{class_id}/cancel", {})
    assert response.status == 303
    async with context.session_factory() as db:
        klass = await get_class(db, class_id)
        regs = await list_registrations(db, class_id)
        actions = [r.action for r in await list_records(db, target_type="class")]
    assert klass is not None
    assert klass.status == ClassStatus.CANCELLED
    assert {r.status for r in regs} == {RegistrationStatus.CANCELLED}
    assert await _notices(context, "class_cancelled") == 3
    assert actions.count("class.cancel") == 1
    page = await (await client.get(f"/admin/classes/{class_id}")).text()
    assert "中止" in page
    assert "教室の中止" in page  # who cancelled the registrations

    # Editing a cancelled class sends back with the reason.
    edit = await client.get(f"/admin/classes/{class_id}/edit", allow_redirects=False)
    assert edit.status == 303


async def test_unknown_class_is_a_japanese_404(client: Client) -> None:
    for path in ("/admin/classes/999", "/admin/classes/999/print", "/admin/classes/999/edit"):
        response = await client.get(path)
        assert response.status == 404
        assert "ページが見つかりません" in await response.text()


async def test_past_classes_are_listed_separately(
    client: Client, context: AppContext, clock: ManualClock
) -> None:
    class_id = await _create(client)
    await _sign_up(context, class_id, "山田 花子", user=1)
    clock.advance(timedelta(days=20))  # the class is over (and the login has expired)
    assert (await login(client)).status == 303
    upcoming = await (await client.get("/admin/classes")).text()
    assert "はじめてのスマホ教室" not in upcoming
    past = await (await client.get("/admin/classes?show=past")).text()
    assert "はじめてのスマホ教室" in past
    page = await (await client.get(f"/admin/classes/{class_id}")).text()
    assert "教室を中止する" not in page  # a finished class can no longer be cancelled
    assert "出席にする" in page  # but attendance can still be recorded
