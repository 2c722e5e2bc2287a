"""Staff side of classes.service: create, edit, move, cancel, list; demo samples."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from classes import service
from classes.samples import SAMPLE_PREFIX, ensure_sample_classes
from classes.service import ClassRuleError
from classes.types import ClassStatus, RegistrationStatus
from madoguchi.db import session_scope

if TYPE_CHECKING:
    from classkit import ClassKit

CONFIRMED = RegistrationStatus.CONFIRMED
WAITLISTED = RegistrationStatus.WAITLISTED


async def test_create_and_get_class(kit: ClassKit) -> None:
    klass = await kit.create_class(title="  はじめてのスマホ  ")
    assert klass.title == "はじめてのスマホ"
    assert klass.starts_at == datetime(2026, 12, 4, 5, 0, tzinfo=UTC)
    assert klass.starts_at.tzinfo is UTC
    assert (klass.status, klass.schedule_version, klass.is_sample) == (
        ClassStatus.SCHEDULED,
        1,
        False,
    )
    assert (klass.confirmed_seats, klass.seats_left, klass.waitlisted_registrations) == (0, 10, 0)
    assert await kit.get_class(klass.id) == klass
    async with session_scope(kit.factory) as session:
        assert await service.get_class(session, 999) is None


def _naive(**_: Any) -> dict[str, Any]:
    return {"starts_at": datetime(2026, 12, 4, 14, 0)}  # noqa: DTZ001 - the point of the test


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"title": "   "}, "invalid_title"),
        ({"title": "あ" * 201}, "invalid_title"),
        ({"venue": ""}, "invalid_venue"),
        ({"description": "x" * 5001}, "invalid_description"),
        ({"what_to_bring": "x" * 5001}, "invalid_what_to_bring"),
        (_naive(), "naive_datetime"),
        (
            {"ends_at": datetime(2026, 12, 4, 14, 0, tzinfo=UTC) - timedelta(hours=9)},
            "ends_before_start",
        ),
        (
            {"registration_deadline": datetime(2026, 12, 4, 6, 0, tzinfo=UTC)},
            "deadline_after_start",
        ),
        ({"capacity": 0}, "invalid_capacity"),
        ({"max_seats_per_registration": 0}, "invalid_max_seats"),
        (
            {
                "starts_at": datetime(2026, 11, 30, 5, 0, tzinfo=UTC),
                "ends_at": datetime(2026, 11, 30, 6, 0, tzinfo=UTC),
                "registration_deadline": datetime(2026, 11, 29, 5, 0, tzinfo=UTC),
            },
            "starts_in_past",
        ),
    ],
)
async def test_create_class_rules(kit: ClassKit, overrides: dict[str, Any], code: str) -> None:
    with pytest.raises(ClassRuleError) as error:
        await kit.create_class(**overrides)
    assert error.value.code == code
    async with session_scope(kit.factory) as session:
        assert await service.list_classes(session, include_past=True) == []


async def test_listing_classes(kit: ClassKit) -> None:
    later = await kit.create_class(
        title="後",
        starts_at=datetime(2026, 12, 10, 5, 0, tzinfo=UTC),
        ends_at=datetime(2026, 12, 10, 6, 0, tzinfo=UTC),
    )
    sooner = await kit.create_class(title="先")
    dropped = await kit.create_class(title="中止")
    await kit.cancel_class(dropped.id)
    async with session_scope(kit.factory) as session:
        sample = await service.create_class(
            session,
            kit.draft(title="【サンプル】", starts_at=datetime(2026, 12, 4, 6, 0, tzinfo=UTC)),
            actor="sample",
            now=kit.now,
            is_sample=True,
        )
    async with session_scope(kit.factory) as session:
        upcoming = await service.list_upcoming_classes(session, now=kit.now)
        real_only = await service.list_upcoming_classes(session, now=kit.now, include_samples=False)
        limited = await service.list_upcoming_classes(session, now=kit.now, limit=1)
        after_sooner = await service.list_upcoming_classes(session, now=sooner.starts_at)
        staff = await service.list_classes(session, now=kit.now)
        staff_later = await service.list_classes(session, now=sooner.ends_at)
        staff_all = await service.list_classes(session, include_past=True, now=later.ends_at)
    assert [c.id for c in upcoming] == [sooner.id, sample.id, later.id]
    assert [c.id for c in real_only] == [sooner.id, later.id]
    assert [c.id for c in limited] == [sooner.id]
    assert [c.id for c in after_sooner] == [sample.id, later.id]
    # Staff see cancelled classes too; past ones only when asked.
    assert {c.id for c in staff} == {sooner.id, dropped.id, sample.id, later.id}
    assert {c.id for c in staff_later} == {later.id}  # the sample ends with `sooner`
    assert len(staff_all) == 4


async def test_edit_without_moving_keeps_version_and_reminders(kit: ClassKit) -> None:
    klass = await kit.create_class()
    (resident,) = await kit.residents(1)
    registration = (await kit.sign_up(klass.id, resident)).registration
    assert registration is not None
    edited = await kit.update_class(klass.id, title="新しい題名", description="説明", capacity=12)
    assert (edited.title, edited.capacity, edited.schedule_version, edited.status) == (
        "新しい題名",
        12,
        1,
        ClassStatus.SCHEDULED,
    )
    rows = await kit.notifications(registration.id)
    assert {(n.kind, n.status) for n in rows} == {
        ("day_before", "pending"),
        ("hours_before", "pending"),
    }


async def test_moving_a_class_reschedules_and_notifies(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=1)
    a, b = await kit.residents(2)
    confirmed = (await kit.sign_up(klass.id, a)).registration
    waiting = (await kit.sign_up(klass.id, b)).registration
    assert confirmed and waiting
    new_start = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)  # Tuesday 10:00 Tokyo
    moved = await kit.update_class(
        klass.id,
        capacity=1,
        starts_at=new_start,
        ends_at=new_start + timedelta(hours=1),
        registration_deadline=new_start - timedelta(days=1),
    )
    assert (moved.status, moved.schedule_version) == (ClassStatus.CHANGED, 2)
    rows = await kit.notifications(confirmed.id)
    old = [n for n in rows if n.schedule_version == 1]
    assert {(n.kind, n.status, n.outcome) for n in old} == {
        ("day_before", "skipped", "superseded"),
        ("hours_before", "skipped", "superseded"),
    }
    new = {n.kind: n for n in rows if n.schedule_version == 2}
    assert set(new) == {"day_before", "hours_before", "class_changed"}
    assert new["day_before"].due_at == datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    assert new["hours_before"].due_at == new_start - timedelta(hours=2)
    assert new["class_changed"].due_at == kit.now
    assert all(n.expires_at == new_start and n.status == "pending" for n in new.values())
    # The waitlisted resident hears of the move too, but gets no reminders.
    assert [(n.kind, n.schedule_version) for n in await kit.notifications(waiting.id)] == [
        ("class_changed", 2)
    ]
    # Moving the venue only is a move as well; the earlier change notice is superseded.
    again = await kit.update_class(
        klass.id,
        capacity=1,
        venue="役場 3階",
        starts_at=new_start,
        ends_at=new_start + timedelta(hours=1),
        registration_deadline=new_start - timedelta(days=1),
    )
    assert again.schedule_version == 3
    changed = [n for n in await kit.notifications(waiting.id) if n.kind == "class_changed"]
    assert [(n.schedule_version, n.status, n.outcome) for n in changed] == [
        (2, "skipped", "superseded"),
        (3, "pending", None),
    ]


async def test_moving_close_to_the_start_creates_only_reminders_still_ahead(kit: ClassKit) -> None:
    klass = await kit.create_class()
    (resident,) = await kit.residents(1)
    registration = (await kit.sign_up(klass.id, resident)).registration
    assert registration is not None
    # Now is 09:00 Tokyo on Dec 1; move the class to 13:00 Dec 2: the day-before reminder
    # (Dec 1, 10:00) is still ahead, so is the 2-hours one.
    start = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
    draft: dict[str, Any] = {
        "starts_at": start,
        "ends_at": start + timedelta(hours=1),
        "registration_deadline": start - timedelta(hours=3),
    }
    await kit.update_class(klass.id, **draft)
    late = kit.now + timedelta(hours=2)  # 11:00 Tokyo Dec 1: the day-before time has passed
    start2 = start + timedelta(minutes=30)
    await kit.update_class(
        klass.id, now=late, **{**draft, "starts_at": start2, "ends_at": start2 + timedelta(hours=1)}
    )
    current = [n for n in await kit.notifications(registration.id) if n.schedule_version == 3]
    assert sorted(n.kind for n in current) == ["class_changed", "hours_before"]


async def test_capacity_rules_on_edit(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=3)
    a, b, c, d = await kit.residents(4)
    await kit.sign_up(klass.id, a, seats=2)
    await kit.sign_up(klass.id, b)
    wc = (await kit.sign_up(klass.id, c, seats=2)).registration
    wd = (await kit.sign_up(klass.id, d)).registration
    assert wc and wd
    with pytest.raises(ClassRuleError) as error:
        await kit.update_class(klass.id, capacity=2)
    assert error.value.code == "capacity_below_confirmed"
    assert (await kit.get_class(klass.id)).capacity == 3
    # One more seat: the 2-seat registration first in line does not fit, the next one does.
    grown = await kit.update_class(klass.id, capacity=4)
    assert (grown.confirmed_seats, grown.waitlisted_registrations) == (4, 1)
    roster = {r.id: r for r in await kit.registrations(klass.id)}
    assert (roster[wd.id].status, roster[wc.id].waitlist_position) == (CONFIRMED, 1)
    assert "promoted" in {n.kind for n in await kit.notifications(wd.id)}
    grown = await kit.update_class(klass.id, capacity=6)
    assert (grown.confirmed_seats, grown.waitlisted_registrations) == (6, 0)


async def test_update_rules(kit: ClassKit) -> None:
    klass = await kit.create_class()
    with pytest.raises(ClassRuleError) as unknown:
        await kit.update_class(4242)
    with pytest.raises(ClassRuleError) as invalid:
        await kit.update_class(klass.id, title="")
    past = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
    with pytest.raises(ClassRuleError) as to_the_past:
        await kit.update_class(
            klass.id,
            starts_at=past,
            ends_at=past + timedelta(hours=1),
            registration_deadline=past,
        )
    await kit.cancel_class(klass.id)
    with pytest.raises(ClassRuleError) as cancelled:
        await kit.update_class(klass.id)
    assert [e.value.code for e in (unknown, invalid, to_the_past, cancelled)] == [
        "not_found",
        "invalid_title",
        "starts_in_past",
        "class_cancelled",
    ]
    # Fixing a typo after the class has started is fine (no move).
    other = await kit.create_class()
    fixed = await kit.update_class(
        other.id, title="直した題名", now=other.starts_at + timedelta(hours=1)
    )
    assert fixed.title == "直した題名"
    async with session_scope(kit.factory) as session:
        with pytest.raises(TypeError):
            await service.update_class(session, other.id, kit.draft(), actor="x", now=kit.now)


async def test_cancel_class(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=1)
    a, b, c = await kit.residents(3)
    confirmed = (await kit.sign_up(klass.id, a)).registration
    waiting = (await kit.sign_up(klass.id, b)).registration
    left = (await kit.sign_up(klass.id, c)).registration
    assert confirmed and waiting and left
    await kit.cancel(left.id, resident_id=c)

    cancelled = await kit.cancel_class(klass.id)
    assert cancelled.status == ClassStatus.CANCELLED
    assert (cancelled.confirmed_seats, cancelled.waitlisted_registrations) == (0, 0)
    roster = {r.id: r for r in await kit.registrations(klass.id)}
    for registration in (confirmed, waiting):
        row = roster[registration.id]
        assert (row.status, row.cancelled_by, row.cancelled_at) == (
            RegistrationStatus.CANCELLED,
            "class_cancelled",
            kit.now,
        )
    assert roster[left.id].cancelled_by == "resident"
    # Reminders skipped, one cancellation notice each (never expiring), none for the resident
    # who had cancelled already.
    reminders = [n for n in await kit.notifications(confirmed.id) if n.kind != "class_cancelled"]
    assert {(n.status, n.outcome) for n in reminders} == {("skipped", "class_cancelled")}
    for registration in (confirmed, waiting):
        notices = [
            n for n in await kit.notifications(registration.id) if n.kind == "class_cancelled"
        ]
        assert [(n.status, n.due_at, n.expires_at) for n in notices] == [("pending", kit.now, None)]
    assert all(n.kind != "class_cancelled" for n in await kit.notifications(left.id))
    # Cancelling again changes nothing and queues nothing.
    before = await kit.notifications()
    assert await kit.cancel_class(klass.id) == cancelled
    assert await kit.notifications() == before
    # Nobody is promoted or signed up any more; the class leaves the residents' list.
    async with session_scope(kit.factory) as session:
        assert await service.list_upcoming_classes(session, now=kit.now) == []


async def test_cancel_class_rules(kit: ClassKit) -> None:
    klass = await kit.create_class()
    with pytest.raises(ClassRuleError) as unknown:
        await kit.cancel_class(4242)
    with pytest.raises(ClassRuleError) as finished:
        await kit.cancel_class(klass.id, now=klass.ends_at)
    assert (unknown.value.code, finished.value.code) == ("not_found", "class_finished")


# --- demo samples ---------------------------------------------------------------------------


async def test_sample_classes_are_marked_upcoming_weekdays_and_created_once(kit: ClassKit) -> None:
    # Friday 2026-12-04, 20:00 Tokyo.
    friday_evening = datetime(2026, 12, 4, 11, 0, tzinfo=UTC)
    async with session_scope(kit.factory) as session:
        created = await ensure_sample_classes(session, now=friday_evening, tz=kit.tz)
    assert created == 3
    async with session_scope(kit.factory) as session:
        classes = await service.list_upcoming_classes(session, now=friday_evening)
        again = await ensure_sample_classes(session, now=friday_evening, tz=kit.tz)
    assert again == 0
    assert len(classes) == 3
    assert all(c.is_sample and c.title.startswith(SAMPLE_PREFIX) for c in classes)
    days = [c.starts_at.astimezone(kit.tz).date() for c in classes]
    assert all(day.weekday() < 5 for day in days)
    assert days[0] > friday_evening.astimezone(kit.tz).date()
    assert all(friday_evening < c.registration_deadline < c.starts_at for c in classes)
    async with session_scope(kit.factory) as session:
        assert (
            await service.list_upcoming_classes(session, now=friday_evening, include_samples=False)
            == []
        )

    # Once they are over, the next demo start creates new ones.
    later = classes[-1].ends_at + timedelta(days=1)
    async with session_scope(kit.factory) as session:
        assert await ensure_sample_classes(session, now=later, tz=kit.tz) == 3


async def test_samples_can_be_signed_up_for(kit: ClassKit) -> None:
    async with session_scope(kit.factory) as session:
        await ensure_sample_classes(session, now=kit.now, tz=kit.tz)
    async with session_scope(kit.factory) as session:
        smallest = min(
            await service.list_upcoming_classes(session, now=kit.now), key=lambda c: c.capacity
        )
    residents = await kit.residents(smallest.capacity + 1)
    results = [await kit.sign_up(smallest.id, r) for r in residents]
    assert [r.registration.status for r in results if r.registration][-1] == WAITLISTED


def test_draft_helper_is_immutable(kit: ClassKit) -> None:
    draft = kit.draft()
    assert replace(draft, capacity=1).capacity == 1 and draft.capacity == 10
