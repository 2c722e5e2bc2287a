"""Roster CSV (classes.roster): Excel-friendly encoding and formula-injection escaping."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from classes.roster import HEADER, roster_csv, roster_filename, roster_rows, safe_cell
from classes.types import ClassInfo, ClassStatus, RegistrationInfo, RegistrationStatus

TOKYO = ZoneInfo("Asia/Tokyo")
AT = datetime(2025, 3, 2, 23, 30, tzinfo=UTC)  # 3/3 8:30 in Tokyo


def _reg(
    reg_id: int,
    status: RegistrationStatus,
    *,
    name: str = "山田 花子",
    phone: str | None = "090-1234-5678",
    seats: int = 1,
    position: int | None = None,
) -> RegistrationInfo:
    return RegistrationInfo(
        id=reg_id,
        class_id=7,
        resident_id=99,
        name=name,
        phone=phone,
        seats=seats,
        status=status,
        waitlist_position=position,
        created_at=AT,
        confirmed_at=AT if status != RegistrationStatus.WAITLISTED else None,
        cancelled_at=None,
        cancelled_by=None,
        attended_at=AT if status == RegistrationStatus.ATTENDED else None,
    )


def _read(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_safe_cell_escapes_formula_starts() -> None:
    for dangerous in ("=1+1", "+81 90", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(dangerous) == "'" + dangerous
    for harmless in ("山田", "090-1234-5678", "", "a=b"):
        assert safe_cell(harmless) == harmless


def test_roster_csv_has_bom_header_and_rows_in_roster_order() -> None:
    registrations = [
        _reg(5, RegistrationStatus.CANCELLED, name="取消 太郎"),
        _reg(3, RegistrationStatus.WAITLISTED, name="待ち 次郎", position=1, phone=None),
        _reg(2, RegistrationStatus.ATTENDED, name="出席 三郎", seats=2),
        _reg(1, RegistrationStatus.CONFIRMED),
    ]
    data = roster_csv(registrations, TOKYO)
    assert data.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in data
    rows = _read(data)
    assert tuple(rows[0]) == HEADER
    assert rows[1:] == [
        ["1", "確定", "山田 花子", "090-1234-5678", "1", "2025/03/03 08:30", ""],
        ["2", "確定", "出席 三郎", "090-1234-5678", "2", "2025/03/03 08:30", "出席"],
        ["3", "キャンセル待ち（1番目）", "待ち 次郎", "", "1", "2025/03/03 08:30", ""],
        ["5", "キャンセル", "取消 太郎", "090-1234-5678", "1", "2025/03/03 08:30", ""],
    ]


def test_roster_csv_neutralises_formulas_in_resident_input() -> None:
    evil = _reg(1, RegistrationStatus.CONFIRMED, name='=HYPERLINK("http://x","y")', phone="+81")
    rows = _read(roster_csv([evil], TOKYO))
    assert rows[1][2] == '\'=HYPERLINK("http://x","y")'
    assert rows[1][3] == "'+81"
    # The unescaped rows (for the HTML page) keep the text as given.
    assert roster_rows([evil], TOKYO)[0][2] == '=HYPERLINK("http://x","y")'


def test_roster_filename_is_ascii_with_local_date() -> None:
    klass = ClassInfo(
        id=7,
        title="スマホ教室",
        description="",
        what_to_bring="",
        venue="公民館",
        starts_at=datetime(2025, 3, 3, 16, 0, tzinfo=UTC),  # 3/4 1:00 in Tokyo
        ends_at=datetime(2025, 3, 3, 17, 0, tzinfo=UTC),
        capacity=10,
        confirmed_seats=0,
        waitlisted_seats=0,
        waitlisted_registrations=0,
        max_seats_per_registration=2,
        waitlist_enabled=True,
        registration_deadline=datetime(2025, 3, 2, tzinfo=UTC),
        status=ClassStatus.SCHEDULED,
        schedule_version=1,
        is_sample=False,
    )
    name = roster_filename(klass, TOKYO)
    assert name == "roster-20250304-class7.csv"
    assert name.isascii()


async def test_class_roster_csv_from_the_database(session: AsyncSession) -> None:
    from classes.notice_queue import ReminderPolicy
    from classes.roster import class_roster_csv
    from classes.service import create_class, sign_up
    from classes.types import ClassDraft
    from madoguchi.models import import_all_models
    from madoguchi.residents import get_or_create_resident

    import_all_models()
    now = datetime(2025, 3, 1, tzinfo=UTC)
    klass = await create_class(
        session,
        ClassDraft(
            title="スマホ教室",
            venue="公民館",
            starts_at=now + timedelta(days=5),
            ends_at=now + timedelta(days=5, hours=1),
            capacity=1,
            registration_deadline=now + timedelta(days=4),
        ),
        actor="t",
        now=now,
    )
    policy = ReminderPolicy(tz=TOKYO)
    for user, name in ((1, "山田 花子"), (2, "@佐藤")):
        resident = await get_or_create_resident(session, 9900 + user, now=now)
        await sign_up(
            session, klass.id, resident.id, name=name, phone=None, seats=1, now=now, policy=policy
        )
    await session.commit()
    found = await class_roster_csv(session, klass.id, TOKYO)
    assert found is not None
    info, data = found
    assert info.id == klass.id
    rows = _read(data)
    assert [row[1:3] for row in rows[1:]] == [
        ["確定", "山田 花子"],
        ["キャンセル待ち（1番目）", "'@佐藤"],
    ]
    assert await class_roster_csv(session, 9999, TOKYO) is None
