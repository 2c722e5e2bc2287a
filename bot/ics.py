"""A calendar file (.ics, RFC 5545) for one registration, built with the icalendar package.

Times are written in UTC (`DTSTART:20241203T050000Z`), which every calendar app reads without
a VTIMEZONE block and shows in the phone's own zone. The UID is fixed per registration and
SEQUENCE follows the class's schedule version, so a file sent again after staff moved the
class updates the event instead of adding a second one.
"""

from __future__ import annotations

from datetime import UTC, tzinfo

from icalendar import Calendar, Event

from bot import messages_classes as texts
from classes.types import ClassInfo, RegistrationInfo
from madoguchi.settings import TownInfo

PRODID = "-//madoguchi//smartphone classes//JA"
UID_DOMAIN = "madoguchi.invalid"


def registration_uid(registration: RegistrationInfo) -> str:
    """Stable for the registration: the same every time its file is sent."""
    return f"class-{registration.class_id}-registration-{registration.id}@{UID_DOMAIN}"


def file_name(klass: ClassInfo, zone: tzinfo = UTC) -> str:
    """ASCII only: some clients mangle non-ASCII names of attachments. The date is the class's
    day in the town's zone (a 08:30 class in Tokyo is on the previous day in UTC)."""
    return f"smartphone-class-{klass.starts_at.astimezone(zone):%Y%m%d}-{klass.id}.ics"


def _description(klass: ClassInfo, registration: RegistrationInfo, town: TownInfo) -> str:
    lines = []
    if klass.description.strip():
        lines.append(klass.description.strip())
    if klass.what_to_bring.strip():
        lines.append(f"持ち物：{klass.what_to_bring.strip()}")
    lines.append(f"人数：{registration.seats}人")
    lines.append(f"お問い合わせ：{town.class_contact}（電話：{town.counter_phone}）")
    return "\n".join(lines)


def registration_calendar(
    klass: ClassInfo, registration: RegistrationInfo, town: TownInfo
) -> bytes:
    """The .ics file of one registration (one VEVENT)."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", registration_uid(registration))
    # DTSTAMP: when the registration was made, so the same registration gives the same file.
    event.add("dtstamp", registration.created_at.astimezone(UTC))
    event.add("dtstart", klass.starts_at.astimezone(UTC))
    event.add("dtend", klass.ends_at.astimezone(UTC))
    event.add("sequence", max(0, klass.schedule_version - 1))
    event.add("summary", texts.title(klass))
    event.add("location", klass.venue)
    event.add("description", _description(klass, registration, town))
    event.add("status", "CONFIRMED")
    calendar.add_component(event)
    return bytes(calendar.to_ical())
