"""Sign-up, waitlist, cancellation and attendance rules of classes.service (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.orm.attributes import set_committed_value

from classes import service
from classes.service import ClassRuleError, normalize_phone, validate_name
from classes.types import RegistrationStatus, SignUpRefusal
from madoguchi.db import session_scope

if TYPE_CHECKING:
    from classkit import ClassKit

CONFIRMED = RegistrationStatus.CONFIRMED
WAITLISTED = RegistrationStatus.WAITLISTED
CANCELLED = RegistrationStatus.CANCELLED
ATTENDED = RegistrationStatus.ATTENDED


# --- input validation (no database) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [("  山田 花子 ", "山田 花子"), ("a", "a"), ("あ" * 100, "あ" * 100)],
)
def test_valid_names_are_trimmed(given: str, stored: str) -> None:
    assert validate_name(given) == stored


@pytest.mark.parametrize("given", ["", "   ", "あ" * 101, "山田\n花子", "a\x00b"])
def test_invalid_names(given: str) -> None:
    assert validate_name(given) is None


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("090-1234-5678", "09012345678"),
        ("０９０－１２３４－５６７８", "09012345678"),
        ("090 1234 5678", "09012345678"),
        ("03-1234-5678", "0312345678"),
        ("+81 90-1234-5678", "09012345678"),
        ("+81 3-1234-5678", "0312345678"),
        ("+1 415 555 0100", "+14155550100"),
        ("819012345678", "819012345678"),
        ("(0120) 123-456", "0120123456"),
    ],
)
def test_valid_phones_are_normalised(given: str | None, stored: str | None) -> None:
    assert normalize_phone(given) == (True, stored)


@pytest.mark.parametrize(
    "given",
    ["123-456", "1234567890123456", "090-1234-567a", "電話なし", "09+012345678", "090.1234.5678"],
)
def test_invalid_phones(given: str) -> None:
    assert normalize_phone(given) == (False, None)


# --- sign-up --------------------------------------------------------------------------------


async def test_sign_up_confirms_and_stores_what_the_resident_gave(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=3)
    (resident,) = await kit.residents(1)

    result = await kit.sign_up(
        klass.id, resident, seats=2, name=" 山田 花子 ", phone="090-1234-5678"
    )

    assert result.refused is None and not result.already_registered
    registration = result.registration
    assert registration is not None
    assert (registration.status, registration.seats, registration.waitlist_position) == (
        CONFIRMED,
        2,
        None,
    )
    assert (registration.name, registration.phone) == ("山田 花子", "09012345678")
    assert registration.confirmed_at == kit.now and registration.created_at == kit.now
    assert result.klass is not None
    assert (result.klass.confirmed_seats, result.klass.seats_left) == (2, 1)
    async with session_scope(kit.factory) as session:
        assert await service.get_registration(session, registration.id) == registration
        assert await service.get_registration(session, 999) is None


@pytest.mark.parametrize(
    ("name", "phone", "refusal"),
    [
        ("", None, SignUpRefusal.INVALID_NAME),
        ("あ" * 101, None, SignUpRefusal.INVALID_NAME),
        ("山田", "12345", SignUpRefusal.INVALID_PHONE),
    ],
)
async def test_invalid_input_is_refused_and_stores_nothing(
    kit: ClassKit, name: str, phone: str | None, refusal: SignUpRefusal
) -> None:
    klass = await kit.create_class()
    (resident,) = await kit.residents(1)
    result = await kit.sign_up(klass.id, resident, name=name, phone=phone)
    assert (result.refused, result.registration) == (refusal, None)
    assert await kit.registrations(klass.id) == []


async def test_refusals_for_unknown_cancelled_started_and_closed_classes(kit: ClassKit) -> None:
    (resident,) = await kit.residents(1)
    result = await kit.sign_up(12345, resident)
    assert (result.refused, result.klass) == (SignUpRefusal.NOT_FOUND, None)

    cancelled = await kit.create_class()
    await kit.cancel_class(cancelled.id)
    assert (await kit.sign_up(cancelled.id, resident)).refused == SignUpRefusal.CANCELLED

    klass = await kit.create_class()
    deadline = klass.registration_deadline
    # The deadline itself still counts; one second later it has passed.
    assert (await kit.sign_up(klass.id, resident, now=deadline)).refused is None
    (other,) = await kit.residents(1)
    late = await kit.sign_up(klass.id, other, now=deadline + timedelta(seconds=1))
    assert late.refused == SignUpRefusal.DEADLINE_PASSED
    assert late.klass is not None and late.klass.id == klass.id
    # From the start on the class is past (PAST wins over the deadline).
    assert (await kit.sign_up(klass.id, other, now=klass.starts_at)).refused == SignUpRefusal.PAST
    after = klass.ends_at + timedelta(days=1)
    assert (await kit.sign_up(klass.id, other, now=after)).refused == SignUpRefusal.PAST
    assert len(await kit.registrations(klass.id)) == 1


async def test_too_many_seats_is_refused(kit: ClassKit) -> None:
    klass = await kit.create_class(max_seats_per_registration=2)
    (resident,) = await kit.residents(1)
    assert (await kit.sign_up(klass.id, resident, seats=3)).refused == SignUpRefusal.TOO_MANY_SEATS
    with pytest.raises(ValueError, match="seats"):
        await kit.sign_up(klass.id, resident, seats=0)


async def test_full_class_without_waitlist_refuses(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=2, waitlist_enabled=False)
    a, b, c = await kit.residents(3)
    assert (await kit.sign_up(klass.id, a)).registration is not None
    # Two seats when one is left: refused, not half-booked.
    assert (await kit.sign_up(klass.id, b, seats=2)).refused == SignUpRefusal.FULL
    assert (await kit.sign_up(klass.id, b, seats=1)).registration is not None
    full = await kit.sign_up(klass.id, c)
    assert full.refused == SignUpRefusal.FULL
    assert full.klass is not None and full.klass.seats_left == 0


async def test_full_class_with_waitlist_queues_in_arrival_order(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=2)
    a, b, c, d = await kit.residents(4)
    await kit.sign_up(klass.id, a, seats=2)
    second = await kit.sign_up(klass.id, b)
    third = await kit.sign_up(klass.id, c, seats=2)
    fourth = await kit.sign_up(klass.id, d)
    assert [
        r.registration.waitlist_position for r in (second, third, fourth) if r.registration
    ] == [
        1,
        2,
        3,
    ]
    assert fourth.klass is not None
    assert (fourth.klass.waitlisted_registrations, fourth.klass.waitlisted_seats) == (3, 4)
    roster = await kit.registrations(klass.id)
    assert [(r.status, r.waitlist_position) for r in roster] == [
        (CONFIRMED, None),
        (WAITLISTED, 1),
        (WAITLISTED, 2),
        (WAITLISTED, 3),
    ]


async def test_double_tap_returns_the_existing_registration(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=1)
    a, b = await kit.residents(2)
    first = await kit.sign_up(klass.id, a)
    again = await kit.sign_up(klass.id, a, seats=2, name="別の名前")
    assert again.already_registered and again.refused is None
    assert again.registration == first.registration
    # Waitlisted too, and even after the deadline the existing one is returned.
    waiting = await kit.sign_up(klass.id, b)
    late = klass.registration_deadline + timedelta(hours=1)
    again_b = await kit.sign_up(klass.id, b, now=late)
    assert again_b.already_registered and again_b.registration == waiting.registration
    assert len(await kit.registrations(klass.id)) == 2


async def test_signing_up_again_after_cancelling_creates_a_new_registration(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=3)
    (resident,) = await kit.residents(1)
    first = await kit.sign_up(klass.id, resident)
    assert first.registration is not None
    await kit.cancel(first.registration.id, resident_id=resident)
    second = await kit.sign_up(klass.id, resident)
    assert second.registration is not None and not second.already_registered
    assert second.registration.id != first.registration.id
    assert (await kit.get_class(klass.id)).confirmed_seats == 1


async def test_unique_index_backstop_reports_the_existing_registration(
    kit: ClassKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the lookup misses a racing double tap, the partial unique index stops the insert
    inside a SAVEPOINT and the existing registration is returned; the transaction goes on."""
    klass = await kit.create_class(capacity=3)
    (resident,) = await kit.residents(1)
    first = await kit.sign_up(klass.id, resident)
    real_lookup = service._active_registration
    calls = 0

    async def blind_once(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return None if calls == 1 else await real_lookup(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "_active_registration", blind_once)
    again = await kit.sign_up(klass.id, resident)
    assert again.already_registered and again.registration == first.registration
    assert len(await kit.registrations(klass.id)) == 1
    assert (await kit.get_class(klass.id)).confirmed_seats == 1


async def test_seat_check_backstop_refuses_instead_of_overbooking(
    kit: ClassKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decision made on a stale count (here: a class row that claims a free seat) is stopped
    by the confirmed_seats <= capacity check and reported as FULL, not raised."""
    klass = await kit.create_class(capacity=1)
    a, b = await kit.residents(2)
    await kit.sign_up(klass.id, a)
    real_refusal = service.sign_up_refusal

    def stale(row: object, seats: int, *, now: datetime) -> object:
        # As if read before another transaction took the seat (not a change to flush).
        set_committed_value(row, "confirmed_seats", 0)
        return real_refusal(row, seats, now=now)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "sign_up_refusal", stale)
    result = await kit.sign_up(klass.id, b)
    assert result.refused == SignUpRefusal.FULL
    roster = await kit.registrations(klass.id)
    assert [r.resident_id for r in roster] == [a]


# --- cancellation and promotion -------------------------------------------------------------


async def test_cancel_promotes_first_waitlisted_that_fits_skipping_a_two_seat_one(
    kit: ClassKit,
) -> None:
    klass = await kit.create_class(capacity=3)
    a, b, c, d, e = await kit.residents(5)
    ra = (await kit.sign_up(klass.id, a, seats=2)).registration
    rb = (await kit.sign_up(klass.id, b, seats=1)).registration
    rc = (await kit.sign_up(klass.id, c, seats=2)).registration  # waitlist 1
    rd = (await kit.sign_up(klass.id, d, seats=1)).registration  # waitlist 2
    re_ = (await kit.sign_up(klass.id, e, seats=1)).registration  # waitlist 3
    assert ra and rb and rc and rd and re_

    # One seat frees: the 2-seat registration does not fit and keeps its place.
    result = await kit.cancel(rb.id, resident_id=b)
    assert result.cancelled is not None and result.cancelled.status == CANCELLED
    assert [p.id for p in result.promoted] == [rd.id]
    roster = {r.id: r for r in await kit.registrations(klass.id)}
    assert (roster[rc.id].status, roster[rc.id].waitlist_position) == (WAITLISTED, 1)
    assert (roster[re_.id].status, roster[re_.id].waitlist_position) == (WAITLISTED, 2)
    assert roster[rd.id].confirmed_at == kit.now

    # Two seats free: the 2-seat registration is first and now fits; nothing else does.
    result = await kit.cancel(ra.id, resident_id=a)
    assert [p.id for p in result.promoted] == [rc.id]
    roster = {r.id: r for r in await kit.registrations(klass.id)}
    assert (roster[re_.id].status, roster[re_.id].waitlist_position) == (WAITLISTED, 1)
    info = await kit.get_class(klass.id)
    assert (info.confirmed_seats, info.waitlisted_registrations) == (3, 1)

    # Each promotion queued a PROMOTED notice (due now, expiring at the start) and reminders.
    for promoted in (rd, rc):
        kinds = {n.kind: n for n in await kit.notifications(promoted.id)}
        assert set(kinds) == {"promoted", "day_before", "hours_before"}
        assert kinds["promoted"].due_at == kit.now
        assert kinds["promoted"].expires_at == klass.starts_at
    # The waitlisted one has nothing queued yet.
    assert await kit.notifications(re_.id) == []


async def test_freed_seats_fill_several_waitlisted(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=2)
    a, b, c, d = await kit.residents(4)
    ra = (await kit.sign_up(klass.id, a, seats=2)).registration
    rb = (await kit.sign_up(klass.id, b)).registration
    rc = (await kit.sign_up(klass.id, c)).registration
    await kit.sign_up(klass.id, d)
    assert ra and rb and rc
    result = await kit.cancel(ra.id, resident_id=None, by="staff")
    assert [p.id for p in result.promoted] == [rb.id, rc.id]
    assert result.cancelled is not None and result.cancelled.cancelled_by == "staff"
    roster = await kit.registrations(klass.id)
    assert [r.waitlist_position for r in roster if r.status == WAITLISTED] == [1]


async def test_cancelling_a_waitlisted_registration_promotes_nobody(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=1)
    a, b, c = await kit.residents(3)
    await kit.sign_up(klass.id, a)
    rb = (await kit.sign_up(klass.id, b)).registration
    rc = (await kit.sign_up(klass.id, c)).registration
    assert rb and rc
    result = await kit.cancel(rb.id, resident_id=b)
    assert result.cancelled is not None and result.promoted == ()
    roster = {r.id: r for r in await kit.registrations(klass.id)}
    assert roster[rc.id].waitlist_position == 1
    assert (await kit.get_class(klass.id)).confirmed_seats == 1


async def test_forged_stale_and_unknown_ids_cancel_nothing(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=1)
    owner, intruder, waiting = await kit.residents(3)
    registration = (await kit.sign_up(klass.id, owner)).registration
    await kit.sign_up(klass.id, waiting)
    assert registration is not None

    assert (await kit.cancel(registration.id, resident_id=intruder)).cancelled is None
    assert (await kit.cancel(999_999, resident_id=owner)).cancelled is None
    assert (await kit.cancel(999_999, resident_id=None)).cancelled is None
    roster = await kit.registrations(klass.id)
    assert [r.status for r in roster] == [CONFIRMED, WAITLISTED]

    first = await kit.cancel(registration.id, resident_id=owner)
    assert first.cancelled is not None and len(first.promoted) == 1
    # A second tap on the old キャンセルする button: nothing more happens.
    stale = await kit.cancel(registration.id, resident_id=owner)
    assert stale.cancelled is None and stale.promoted == ()
    assert (await kit.get_class(klass.id)).confirmed_seats == 1


async def test_cancel_skips_pending_reminders(kit: ClassKit) -> None:
    klass = await kit.create_class()
    (resident,) = await kit.residents(1)
    registration = (await kit.sign_up(klass.id, resident)).registration
    assert registration is not None
    assert {n.status for n in await kit.notifications(registration.id)} == {"pending"}
    await kit.cancel(registration.id, resident_id=resident)
    rows = await kit.notifications(registration.id)
    assert len(rows) == 2
    assert {(n.status, n.outcome) for n in rows} == {("skipped", "registration_cancelled")}


async def test_no_promotion_once_the_class_has_started(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=1)
    a, b = await kit.residents(2)
    ra = (await kit.sign_up(klass.id, a)).registration
    await kit.sign_up(klass.id, b)
    assert ra is not None
    result = await kit.cancel(ra.id, resident_id=a, now=klass.starts_at + timedelta(minutes=5))
    assert result.cancelled is not None and result.promoted == ()
    assert (await kit.get_class(klass.id)).confirmed_seats == 0


async def test_a_resident_cannot_cancel_once_the_class_is_over(kit: ClassKit) -> None:
    """An old キャンセルする button tapped after the class: the roster of that day (who held
    a seat, whom staff mark as attended) stays as it was. Staff may still correct it."""
    klass = await kit.create_class(capacity=1)
    (resident,) = await kit.residents(1)
    registration = (await kit.sign_up(klass.id, resident)).registration
    assert registration is not None
    after = klass.ends_at + timedelta(minutes=1)

    late = await kit.cancel(registration.id, resident_id=resident, now=after)
    assert late.cancelled is None and late.class_finished
    [row] = await kit.registrations(klass.id)
    assert row.status == CONFIRMED
    assert (await kit.get_class(klass.id)).confirmed_seats == 1
    staff = await kit.cancel(registration.id, resident_id=None, now=after, by="staff")
    assert staff.cancelled is not None and not staff.class_finished


# --- attendance -----------------------------------------------------------------------------


async def test_mark_attended_and_back(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=1)
    a, b = await kit.residents(2)
    ra = (await kit.sign_up(klass.id, a)).registration
    rb = (await kit.sign_up(klass.id, b)).registration
    assert ra and rb
    during = klass.starts_at + timedelta(minutes=10)
    async with session_scope(kit.factory) as session:
        attended = await service.mark_attended(session, ra.id, attended=True, now=during)
    assert (attended.status, attended.attended_at) == (ATTENDED, during)
    # Attended seats still count; a resident cannot cancel an attended registration.
    assert (await kit.get_class(klass.id)).confirmed_seats == 1
    assert (await kit.cancel(ra.id, resident_id=a)).cancelled is None
    async with session_scope(kit.factory) as session:
        undone = await service.mark_attended(session, ra.id, attended=False, now=during)
    assert (undone.status, undone.attended_at) == (CONFIRMED, None)
    async with session_scope(kit.factory) as session:
        with pytest.raises(ClassRuleError) as waitlisted:
            await service.mark_attended(session, rb.id, attended=True, now=during)
        with pytest.raises(ClassRuleError) as unknown:
            await service.mark_attended(session, 424242, attended=True, now=during)
    assert (waitlisted.value.code, unknown.value.code) == ("not_confirmed", "not_found")


# --- the resident's view and /mydata --------------------------------------------------------


async def test_resident_registrations(kit: ClassKit) -> None:
    later = await kit.create_class(
        starts_at=datetime(2026, 12, 10, 5, 0, tzinfo=UTC),
        ends_at=datetime(2026, 12, 10, 6, 0, tzinfo=UTC),
        registration_deadline=datetime(2026, 12, 9, 5, 0, tzinfo=UTC),
        capacity=1,
    )
    sooner = await kit.create_class()
    dropped = await kit.create_class(title="キャンセルする教室")
    resident, other = await kit.residents(2)
    await kit.sign_up(later.id, other)
    waiting = (await kit.sign_up(later.id, resident)).registration
    confirmed = (await kit.sign_up(sooner.id, resident, seats=2)).registration
    gone = (await kit.sign_up(dropped.id, resident)).registration
    assert waiting and confirmed and gone
    await kit.cancel(gone.id, resident_id=resident)

    async with session_scope(kit.factory) as session:
        mine = await service.resident_registrations(session, resident, now=kit.now)
        everything = await service.resident_registrations(
            session, resident, now=kit.now, include_past=True
        )
        after_sooner = await service.resident_registrations(session, resident, now=sooner.ends_at)
    assert [(m.registration.id, m.klass.id) for m in mine] == [
        (confirmed.id, sooner.id),
        (waiting.id, later.id),
    ]
    assert mine[1].registration.waitlist_position == 1
    assert mine[1].klass.waitlisted_registrations == 1
    assert {m.registration.id for m in everything} == {confirmed.id, waiting.id, gone.id}
    assert [m.registration.id for m in after_sooner] == [waiting.id]


async def test_delete_resident_registrations_frees_seats_and_promotes(kit: ClassKit) -> None:
    first = await kit.create_class(capacity=1)
    second = await kit.create_class(capacity=2)
    leaving, staying, waiting = await kit.residents(3)
    gone = (await kit.sign_up(first.id, leaving)).registration
    assert gone is not None
    waiting_reg = (await kit.sign_up(first.id, waiting)).registration
    await kit.sign_up(second.id, leaving, seats=2)
    await kit.sign_up(second.id, staying)  # waitlisted behind them
    # An old cancelled registration goes too.
    third = await kit.create_class(capacity=5)
    old = (await kit.sign_up(third.id, leaving)).registration
    assert old is not None and waiting_reg is not None
    await kit.cancel(old.id, resident_id=leaving)

    async with session_scope(kit.factory) as session:
        deleted = await service.delete_resident_registrations(
            session, leaving, now=kit.now, policy=kit.policy
        )
    assert deleted == 3
    assert [r.resident_id for r in await kit.registrations(first.id)] == [waiting]
    assert (await kit.registrations(first.id))[0].status == CONFIRMED
    assert [(r.resident_id, r.status) for r in await kit.registrations(second.id)] == [
        (staying, CONFIRMED)
    ]
    assert await kit.registrations(third.id) == []
    assert (await kit.get_class(first.id)).confirmed_seats == 1
    assert (await kit.get_class(second.id)).confirmed_seats == 1
    # Their notification rows are gone; the promoted resident's are queued.
    assert all(n.registration_id != gone.id for n in await kit.notifications())
    assert "promoted" in {n.kind for n in await kit.notifications(waiting_reg.id)}
    async with session_scope(kit.factory) as session:
        again = await service.delete_resident_registrations(
            session, leaving, now=kit.now, policy=kit.policy
        )
    assert again == 0


async def test_delete_releases_attended_seats(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=2)
    (resident,) = await kit.residents(1)
    registration = (await kit.sign_up(klass.id, resident, seats=2)).registration
    assert registration is not None
    during = klass.starts_at + timedelta(minutes=1)
    async with session_scope(kit.factory) as session:
        await service.mark_attended(session, registration.id, attended=True, now=during)
    async with session_scope(kit.factory) as session:
        deleted = await service.delete_resident_registrations(
            session, resident, now=during, policy=kit.policy
        )
    assert deleted == 1
    assert (await kit.get_class(klass.id)).confirmed_seats == 0


async def test_a_small_sign_up_may_take_a_seat_a_waiting_larger_one_cannot_use(
    kit: ClassKit,
) -> None:
    klass = await kit.create_class(capacity=3)
    a, b, c = await kit.residents(3)
    await kit.sign_up(klass.id, a, seats=2)
    big = (await kit.sign_up(klass.id, b, seats=2)).registration
    small = (await kit.sign_up(klass.id, c, seats=1)).registration
    assert big is not None and small is not None
    assert (big.status, big.waitlist_position) == (WAITLISTED, 1)
    assert small.status == CONFIRMED
