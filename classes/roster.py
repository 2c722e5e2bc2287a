"""The roster of one class as a CSV file that staff open in Excel.

UTF-8 with a BOM (Excel then reads the Japanese correctly), CRLF line ends, every cell quoted
where needed. Cells that Excel would take as a formula (starting with = + - @, or a tab or
carriage return) get a leading apostrophe, so a resident who gives「=HYPERLINK(...)」as their
name cannot plant a formula in a staff member's spreadsheet.

Core code: no HTTP; the admin's export view serves `roster_csv(...)` as a download.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import tzinfo

from sqlalchemy.ext.asyncio import AsyncSession

from classes.types import ClassInfo, RegistrationInfo, RegistrationStatus

HEADER = ("受付番号", "状態", "お名前", "電話番号", "人数", "申込日時", "出席")

STATUS_LABELS = {
    RegistrationStatus.CONFIRMED: "確定",
    RegistrationStatus.WAITLISTED: "キャンセル待ち",
    RegistrationStatus.CANCELLED: "キャンセル",
    RegistrationStatus.ATTENDED: "確定",
}

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_ORDER = {
    RegistrationStatus.CONFIRMED: 0,
    RegistrationStatus.ATTENDED: 0,
    RegistrationStatus.WAITLISTED: 1,
    RegistrationStatus.CANCELLED: 2,
}


def safe_cell(value: str) -> str:
    """The value with a leading ' if a spreadsheet would read it as a formula."""
    if value.startswith(_FORMULA_START):
        return "'" + value
    return value


def status_label(registration: RegistrationInfo) -> str:
    label = STATUS_LABELS.get(registration.status, str(registration.status))
    if (
        registration.status == RegistrationStatus.WAITLISTED
        and registration.waitlist_position is not None
    ):
        return f"{label}（{registration.waitlist_position}番目）"
    return label


def roster_order(registrations: Iterable[RegistrationInfo]) -> list[RegistrationInfo]:
    """Confirmed (and attended) in arrival order, then the waitlist in order, then cancelled."""
    return sorted(registrations, key=lambda reg: (_ORDER.get(reg.status, 3), reg.id))


def roster_rows(registrations: Iterable[RegistrationInfo], tz: tzinfo) -> list[list[str]]:
    """The data rows (without header), unescaped; see `roster_csv` for the file."""
    return [
        [
            str(reg.id),
            status_label(reg),
            reg.name,
            reg.phone or "",
            str(reg.seats),
            reg.created_at.astimezone(tz).strftime("%Y/%m/%d %H:%M"),
            "出席" if reg.status == RegistrationStatus.ATTENDED else "",
        ]
        for reg in roster_order(registrations)
    ]


def roster_csv(registrations: Sequence[RegistrationInfo], tz: tzinfo) -> bytes:
    """The roster file: UTF-8 with BOM, CRLF, formula-safe cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    for row in roster_rows(registrations, tz):
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue().encode("utf-8-sig")


def roster_filename(klass: ClassInfo, tz: tzinfo) -> str:
    """An ASCII file name (safe in every browser's Content-Disposition)."""
    day = klass.starts_at.astimezone(tz).strftime("%Y%m%d")
    return f"roster-{day}-class{klass.id}.csv"


async def class_roster_csv(
    session: AsyncSession, class_id: int, tz: tzinfo
) -> tuple[ClassInfo, bytes] | None:
    """The class and its roster file, or None if there is no such class."""
    from classes.service import get_class, list_registrations

    klass = await get_class(session, class_id)
    if klass is None:
        return None
    return klass, roster_csv(await list_registrations(session, class_id), tz)
