"""Accounts and sessions (admin/accounts.py) on SQLite and PostgreSQL: argon2id hashes,
lockout after repeated failures, uniform messages, rehashing, session tokens."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from adminkit import START, csrf_of, fast_hasher
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin.accounts import (
    LOGIN_FAILED_MESSAGE,
    AccountError,
    LoginPolicy,
    LoginResult,
    authenticate,
    create_staff,
    end_session,
    lookup_session,
    set_password,
    start_session,
    token_hash,
)
from admin.models import AuditLogEntry, StaffSession, StaffUser
from admin.web import create_admin_app
from classes.clock import ManualClock
from madoguchi.app import open_app
from madoguchi.db import session_scope
from madoguchi.settings import Settings
from madoguchi.web import create_web_app

PASSWORD = "Kf8-yamabiko-2026!"
POLICY = LoginPolicy(failure_delay=0.0)

Factory = async_sessionmaker[AsyncSession]


async def _user(factory: Factory, username: str = "tanaka") -> StaffUser:
    async with factory() as db:
        row = await db.scalar(select(StaffUser).where(StaffUser.username == username))
        assert row is not None
        return row


async def _login(factory: Factory, password: str, minutes: float = 0) -> LoginResult:
    async with session_scope(factory) as db:
        return await authenticate(
            db,
            "tanaka",
            password,
            now=START + timedelta(minutes=minutes),
            policy=POLICY,
            hasher=fast_hasher(),
        )


@pytest.fixture
async def staff(session_factory: Factory) -> None:
    async with session_scope(session_factory) as db:
        await create_staff(db, "tanaka", PASSWORD, now=START, hasher=fast_hasher())


async def test_password_is_stored_as_argon2id(session_factory: Factory, staff: None) -> None:
    row = await _user(session_factory)
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash


async def test_create_checks_name_and_password(session_factory: Factory, staff: None) -> None:
    async with session_factory() as db:
        with pytest.raises(AccountError, match="10文字以上"):
            await create_staff(db, "sato", "short", now=START, hasher=fast_hasher())
        with pytest.raises(AccountError, match="半角英数字"):
            await create_staff(db, "佐藤", PASSWORD, now=START, hasher=fast_hasher())
        with pytest.raises(AccountError, match="すでに使われています"):
            await create_staff(db, "tanaka", PASSWORD, now=START, hasher=fast_hasher())


async def test_right_and_wrong_passwords(session_factory: Factory, staff: None) -> None:
    ok = await _login(session_factory, PASSWORD)
    assert ok.ok
    wrong = await _login(session_factory, PASSWORD + "x")
    unknown = None
    async with session_scope(session_factory) as db:
        unknown = await authenticate(
            db, "nobody", PASSWORD, now=START, policy=POLICY, hasher=fast_hasher()
        )
    # The same words whether the name exists or not.
    assert wrong.message == unknown.message == LOGIN_FAILED_MESSAGE
    assert not wrong.ok and not unknown.ok
    assert unknown.locked_until is None


async def test_ten_wrong_passwords_lock_the_account(session_factory: Factory, staff: None) -> None:
    for attempt in range(10):
        result = await _login(session_factory, f"guess-{attempt:04d}-xx")
        assert not result.ok
        assert result.message == LOGIN_FAILED_MESSAGE
    row = await _user(session_factory)
    assert row.failed_logins == 5  # attempts 6-10 hit the lock and were not even checked
    assert row.locked_until == START + timedelta(minutes=1)

    # The right password during the lock fails, with the same message.
    locked = await _login(session_factory, PASSWORD, minutes=0.5)
    assert not locked.ok
    assert locked.message == LOGIN_FAILED_MESSAGE

    # After the lock: one more failure locks again, twice as long.
    again = await _login(session_factory, "still-wrong-1234", minutes=1.5)
    assert not again.ok
    assert (await _user(session_factory)).locked_until == START + timedelta(minutes=3.5)

    # Once the lock ends, the right password works and resets the counter.
    ok = await _login(session_factory, PASSWORD, minutes=4)
    assert ok.ok
    row = await _user(session_factory)
    assert row.failed_logins == 0
    assert row.locked_until is None


def test_lock_grows_and_is_capped() -> None:
    policy = LoginPolicy()
    assert policy.lock_for(4) is None
    assert policy.lock_for(5) == timedelta(minutes=1)
    assert policy.lock_for(6) == timedelta(minutes=2)
    assert policy.lock_for(8) == timedelta(minutes=8)
    assert policy.lock_for(10) == timedelta(minutes=30)
    assert policy.lock_for(500) == timedelta(minutes=30)


async def test_rehash_when_parameters_change(session_factory: Factory, staff: None) -> None:
    old = (await _user(session_factory)).password_hash
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    async with session_scope(session_factory) as db:
        result = await authenticate(
            db, "tanaka", PASSWORD, now=START, policy=POLICY, hasher=stronger
        )
    assert result.ok
    new = (await _user(session_factory)).password_hash
    assert new != old
    assert "m=16,t=2,p=1" in new
    assert not stronger.check_needs_rehash(new)


async def test_set_password_unlocks_and_signs_out(session_factory: Factory, staff: None) -> None:
    user = (await _login(session_factory, PASSWORD)).user
    assert user is not None
    async with session_scope(session_factory) as db:
        token, _ = await start_session(db, user, now=START, lifetime=timedelta(hours=8))
    for attempt in range(5):
        await _login(session_factory, f"wrong-{attempt}-password")
    async with session_scope(session_factory) as db:
        await set_password(db, "tanaka", "a-brand-new-password", now=START, hasher=fast_hasher())
    async with session_factory() as db:
        assert await lookup_session(db, token, now=START) is None
    assert (await _login(session_factory, "a-brand-new-password")).ok


async def test_sessions_store_only_a_hash_and_expire(session_factory: Factory, staff: None) -> None:
    user = (await _login(session_factory, PASSWORD)).user
    assert user is not None
    async with session_scope(session_factory) as db:
        token, info = await start_session(db, user, now=START, lifetime=timedelta(hours=8))
    async with session_factory() as db:
        stored = (await db.scalars(select(StaffSession))).one()
        assert stored.token_hash == token_hash(token) != token
        assert len(stored.csrf_token) >= 32
        found = await lookup_session(db, token, now=START + timedelta(hours=7))
        assert found is not None
        assert found.user.username == "tanaka"
        assert found.csrf_token == info.csrf_token
        assert await lookup_session(db, token, now=START + timedelta(hours=8)) is None
        assert await lookup_session(db, token + "x", now=START) is None
        assert await lookup_session(db, "", now=START) is None
    async with session_scope(session_factory) as db:
        await end_session(db, token)
    async with session_factory() as db:
        assert await lookup_session(db, token, now=START) is None


async def test_login_lockout_and_sessions_over_http(
    database_url: str, isolated_settings_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The whole login page on this backend: ten wrong passwords, the lock, the right
    password refused during the lock and accepted after it, logout ending the session."""
    caplog.set_level(logging.DEBUG)
    clock = ManualClock(START)
    settings = Settings(database_url=database_url)
    async with open_app(settings, seed=False) as context:
        async with session_scope(context.session_factory) as db:
            await create_staff(db, "tanaka", PASSWORD, now=START, hasher=fast_hasher())
        delay = 0.05
        admin = create_admin_app(
            context, policy=LoginPolicy(failure_delay=delay), hasher=fast_hasher(), clock=clock
        )
        async with TestClient(TestServer(create_web_app(context, admin=admin))) as client:

            async def attempt(password: str) -> tuple[int, str]:
                page = await (await client.get("/admin/login")).text()
                response = await client.post(
                    "/admin/login",
                    data={"csrf_token": csrf_of(page), "username": "tanaka", "password": password},
                    allow_redirects=False,
                )
                return response.status, await response.text()

            loop = __import__("asyncio").get_running_loop()
            started = loop.time()
            for number in range(10):
                status, page = await attempt(f"wrong-password-{number}")
                assert status == 401
                assert LOGIN_FAILED_MESSAGE in page
            assert loop.time() - started >= 10 * delay  # every failure costs time

            status, page = await attempt(PASSWORD)  # locked: refused, same message
            assert status == 401
            assert LOGIN_FAILED_MESSAGE in page
            assert "/admin/logout" not in page

            clock.advance(timedelta(minutes=2))
            status, _ = await attempt(PASSWORD)
            assert status == 303
            faq = await client.get("/admin/faq", allow_redirects=False)
            assert faq.status == 200
            csrf = csrf_of(await faq.text())
            response = await client.post(
                "/admin/logout", data={"csrf_token": csrf}, allow_redirects=False
            )
            assert response.status == 303
            again = await client.get("/admin/faq", allow_redirects=False)
            assert again.status == 303
            assert again.headers["Location"].startswith("/admin/login")

        async with context.session_factory() as db:
            assert (await db.scalars(select(StaffSession))).all() == []  # logout deleted it
            actions = [row.action for row in await db.scalars(select(AuditLogEntry))]
            assert actions.count("staff.login_failed") == 11  # 5 checked, 6 during the lock
            assert actions.count("staff.locked") == 1
            assert actions[-2:] == ["staff.login", "staff.logout"]
            # The password is in no table, in clear.
            for table in ("staff_users", "staff_sessions", "audit_log"):
                rows = (await db.execute(text(f"SELECT * FROM {table}"))).all()
                assert PASSWORD not in repr(rows)
    assert caplog.records  # SQL and aiohttp logging were captured at DEBUG ...
    assert PASSWORD not in caplog.text  # ... and never contain the password
    sqlite_file = database_url.removeprefix("sqlite+aiosqlite:///")
    if database_url.startswith("sqlite"):
        for path in Path(sqlite_file).parent.glob(Path(sqlite_file).name + "*"):
            assert PASSWORD.encode() not in path.read_bytes()
