"""The issue's concurrency bars, on SQLite and PostgreSQL: many transactions at once, each in
its own session (as concurrent bot updates are), serialised by the class-row UPDATE."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from classes import service
from classes.models import ClassRegistration, SmartphoneClass
from classes.types import RegistrationInfo, RegistrationStatus, SignUpResult
from madoguchi.db import session_scope
from madoguchi.residents import delete_resident_data, get_or_create_resident

if TYPE_CHECKING:
    from classkit import ClassKit

CONFIRMED = RegistrationStatus.CONFIRMED
WAITLISTED = RegistrationStatus.WAITLISTED


async def _seat_counts(kit: ClassKit, class_id: int) -> tuple[int, int]:
    """(confirmed_seats stored on the class, seats of its confirmed/attended rows)."""
    async with session_scope(kit.factory) as session:
        stored = await session.scalar(
            select(SmartphoneClass.confirmed_seats).where(SmartphoneClass.id == class_id)
        )
        counted = await session.scalar(
            select(func.coalesce(func.sum(ClassRegistration.seats), 0)).where(
                ClassRegistration.class_id == class_id,
                ClassRegistration.status.in_(["confirmed", "attended"]),
            )
        )
    return int(stored or 0), int(counted or 0)


def _assert_fifo(registrations: Sequence[RegistrationInfo]) -> list[RegistrationInfo]:
    """Waitlist places are 1..n, contiguous, in id (= commit) order. Returns the waitlist."""
    waitlisted = [r for r in registrations if r.status == WAITLISTED]
    assert [r.id for r in waitlisted] == sorted(r.id for r in waitlisted)
    assert [r.waitlist_position for r in waitlisted] == list(range(1, len(waitlisted) + 1))
    return waitlisted


async def test_200_residents_sign_up_at_once_for_20_seats(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=20, max_seats_per_registration=1)
    residents = await kit.residents(200)

    started = time.perf_counter()
    results = await asyncio.gather(*(kit.sign_up(klass.id, rid) for rid in residents))
    elapsed = time.perf_counter() - started

    assert all(result.refused is None and result.registration for result in results)
    assert not any(result.already_registered for result in results)
    registrations = await kit.registrations(klass.id)
    assert len(registrations) == 200
    confirmed = [r for r in registrations if r.status == CONFIRMED]
    assert len(confirmed) == 20
    # Arrival order = commit order = id order: the first 20 to commit got the seats...
    ids = sorted(r.id for r in registrations)
    assert sorted(r.id for r in confirmed) == ids[:20]
    # ...and the other 180 queue behind them in the same order.
    waitlisted = _assert_fifo(registrations)
    assert len(waitlisted) == 180
    assert [r.id for r in waitlisted] == ids[20:]
    # What each caller was told matches what was stored.
    told = {
        result.registration.id: result.registration for result in results if result.registration
    }
    for registration in registrations:
        assert told[registration.id].status == registration.status
        assert told[registration.id].waitlist_position == registration.waitlist_position
    info = await kit.get_class(klass.id)
    assert (info.confirmed_seats, info.waitlisted_registrations) == (20, 180)
    assert await _seat_counts(kit, klass.id) == (20, 20)
    assert elapsed < 60, f"200 concurrent sign-ups took {elapsed:.1f}s"


async def test_50_concurrent_double_taps_register_once(kit: ClassKit) -> None:
    klass = await kit.create_class(capacity=5)
    (resident,) = await kit.residents(1)

    results = await asyncio.gather(*(kit.sign_up(klass.id, resident) for _ in range(50)))

    registrations = await kit.registrations(klass.id)
    assert len(registrations) == 1
    assert registrations[0].status == CONFIRMED
    assert {result.registration.id for result in results if result.registration} == {
        registrations[0].id
    }
    assert sum(not result.already_registered for result in results) == 1
    assert await _seat_counts(kit, klass.id) == (1, 1)


async def test_double_tap_with_resident_lookup_in_the_same_transaction(kit: ClassKit) -> None:
    """As the bot does it: get_or_create_resident (a read, maybe a write) and then sign_up in
    one transaction, 30 times at once for one new Telegram user. On SQLite the read before
    the class lock must not make the later write fail with a stale snapshot."""
    klass = await kit.create_class(capacity=5)

    async def tap() -> SignUpResult:
        async with session_scope(kit.factory) as session:
            resident = await get_or_create_resident(session, 777, now=kit.now)
            return await service.sign_up(
                session,
                klass.id,
                resident.id,
                name="佐藤",
                phone=None,
                seats=1,
                now=kit.now,
                policy=kit.policy,
            )

    results = await asyncio.gather(*(tap() for _ in range(30)))
    registrations = await kit.registrations(klass.id)
    assert len(registrations) == 1
    assert all(result.registration == registrations[0] for result in results)


async def test_cancellations_during_a_burst_promote_exactly_what_they_free(
    kit: ClassKit,
) -> None:
    klass = await kit.create_class(capacity=10, max_seats_per_registration=1)
    early = await kit.residents(10)
    for resident in early:
        assert (await kit.sign_up(klass.id, resident)).registration
    before = await kit.registrations(klass.id)
    assert all(r.status == CONFIRMED for r in before)
    leaving = before[:5]
    burst = await kit.residents(40)

    cancels = [kit.cancel(r.id, resident_id=r.resident_id) for r in leaving]
    sign_ups = [kit.sign_up(klass.id, resident) for resident in burst]
    jobs: list[object] = []
    # Interleave, so cancellations land in the middle of the burst.
    for index, job in enumerate(sign_ups):
        jobs.append(job)
        if index % 8 == 3 and cancels:
            jobs.append(cancels.pop())
    jobs.extend(cancels)
    results = await asyncio.gather(*jobs)  # type: ignore[arg-type]

    registrations = await kit.registrations(klass.id)
    confirmed = [r for r in registrations if r.status == CONFIRMED]
    cancelled = [r for r in registrations if r.status == RegistrationStatus.CANCELLED]
    assert len(cancelled) == 5
    assert {r.id for r in cancelled} == {r.id for r in leaving}
    assert len(confirmed) == 10
    assert await _seat_counts(kit, klass.id) == (10, 10)
    assert (await kit.get_class(klass.id)).confirmed_seats == 10
    waitlisted = _assert_fifo(registrations)
    assert len(waitlisted) == 35
    # Everyone who got one of the freed seats arrived before everyone still waiting.
    newcomers = [r for r in confirmed if r.resident_id in set(burst)]
    assert len(newcomers) == 5
    assert max(r.id for r in newcomers) < min(r.id for r in waitlisted)
    # Every promotion was reported by exactly one cancellation (or was a direct seat).
    promoted = [
        p.id
        for result in results
        if isinstance(result, service.CancelResult)
        for p in result.promoted
    ]
    assert len(promoted) == len(set(promoted))
    assert set(promoted) <= {r.id for r in newcomers}


async def test_data_deletion_racing_a_sign_up_of_the_same_resident_leaks_no_seat(
    kit: ClassKit,
) -> None:
    """/mydata deletion (its registrations first, then the resident row, one transaction) while
    the same resident's 申し込む of another update runs: the sign-up must either be seen and
    cancelled by the deletion or fail, never be removed by the resident row's ON DELETE
    CASCADE behind the seat count's back."""
    klass = await kit.create_class(capacity=5)
    [resident] = await kit.residents(1)
    async with kit.factory() as deleting:
        await service.delete_resident_registrations(
            deleting, resident, now=kit.now, policy=kit.policy
        )
        signing = asyncio.create_task(kit.sign_up(klass.id, resident))
        await asyncio.wait([signing], timeout=1.0)
        await delete_resident_data(deleting, resident)
        await deleting.commit()
    result = await signing
    assert await _seat_counts(kit, klass.id) == (0, 0)
    assert result.registration is None  # it waited for the deletion, then found no resident
    assert (await kit.get_class(klass.id)).seats_left == 5
