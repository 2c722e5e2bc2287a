"""Hardening found in review: Japanese pages for unexpected errors, ids beyond the database's
range, lockout counting under parallel attempts, uniform work for locked accounts, notices that fit in a cookie, no markup from residents or staff on any
page, and the inbox's bounded grouping work. Database behaviour runs on SQLite and
PostgreSQL (`database_url`)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from adminkit import (
    PASSWORD,
    START,
    USERNAME,
    Client,
    add_staff,
    fast_hasher,
    login,
    post_form,
    session_csrf,
)
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin import views_dashboard
from admin.accounts import LoginPolicy, authenticate, create_staff
from admin.models import StaffUser
from admin.web import create_admin_app
from classes.clock import ManualClock
from classes.notice_queue import ReminderPolicy
from classes.service import sign_up
from faq import inbox
from faq.inquiries import log_question, record_feedback
from faq.store import create_entry
from faq.types import FaqEntryData
from madoguchi.app import AppContext, open_app
from madoguchi.db import session_scope
from madoguchi.residents import get_or_create_resident
from madoguchi.settings import Settings
from madoguchi.web import create_web_app

Factory = async_sessionmaker[AsyncSession]
ENGLISH = ("Internal Server Error", "Server got itself in trouble", "Traceback", "Bad Request")


def assert_japanese_error_page(page: str) -> None:
    assert '<html lang="ja">' in page
    for word in ENGLISH:
        assert word not in page


# --- unexpected errors -----------------------------------------------------------------------


async def test_an_unexpected_error_is_a_japanese_page(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(views_dashboard, "dashboard_stats", broken)
    response = await client.get("/admin/dashboard")
    assert response.status == 500
    page = await response.text()
    assert_japanese_error_page(page)
    assert "database went away" not in page
    assert "うまくいきませんでした" in page
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


async def test_a_broken_upload_is_a_japanese_page(client: Client) -> None:
    csrf = await session_csrf(client)
    for content_type, body in [
        ("multipart/form-data", b"no boundary at all"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nnot a part"),
    ]:
        response = await client.post(
            "/admin/faq/import",
            data=body,
            headers={"Content-Type": content_type, "X-CSRF-Token": csrf},
        )
        assert response.status in (400, 500), content_type
        assert_japanese_error_page(await response.text())
    # Without the header the middleware itself reads the body for the token.
    response = await client.post(
        "/admin/faq/import",
        data=b"--xyz\r\nnot a part",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert response.status in (400, 403, 500)
    assert_japanese_error_page(await response.text())


async def test_restore_without_a_version_number_is_a_japanese_page(client: Client) -> None:
    response = await post_form(client, "/admin/faq/mn-lost/restore", {})
    assert response.status == 400
    assert_japanese_error_page(await response.text())


# --- ids beyond the database's integer range -------------------------------------------------


@pytest.fixture
async def any_backend_client(
    database_url: str, isolated_settings_env: Path
) -> AsyncIterator[tuple[Client, AppContext]]:
    """Logged in as tanaka, on SQLite or PostgreSQL."""
    async with open_app(Settings(database_url=database_url), seed=False) as context:
        await add_staff(context)
        admin = create_admin_app(
            context,
            policy=LoginPolicy(failure_delay=0.0),
            hasher=fast_hasher(),
            clock=ManualClock(START),
        )
        async with TestClient(TestServer(create_web_app(context, admin=admin))) as client:
            assert (await login(client)).status == 303
            yield client, context


async def test_ids_beyond_the_database_range_are_not_found(
    any_backend_client: tuple[Client, AppContext],
) -> None:
    client, _context = any_backend_client
    huge = "999999999999"
    for path in [
        f"/admin/classes/{huge}",
        f"/admin/classes/{huge}/roster.csv",
        f"/admin/classes/{huge}/print",
        f"/admin/classes/1/registrations/{huge}/cancel",
    ]:
        response = await client.get(path, allow_redirects=False)
        assert response.status == 404, path
        assert "見つかりません" in await response.text()
    # Inbox forms carry log ids: an impossible one is simply not an open question.
    response = await client.get(f"/admin/inbox/new?logs={huge}", allow_redirects=False)
    assert response.status == 303
    response = await post_form(client, "/admin/inbox/dismiss", {"logs": f"{huge},1"})
    assert response.status == 303


# --- login -------------------------------------------------------------------------------------


class SlowHasher(PasswordHasher):
    """A fast hasher whose verification takes a while (so attempts overlap) and is counted."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.delay = delay
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002 -- argon2's name
        time.sleep(self.delay)
        self.verified.append(hash if isinstance(hash, str) else hash.decode())
        return super().verify(hash, password)


async def _user(factory: Factory) -> StaffUser:
    async with factory() as db:
        row = await db.scalar(
            select(StaffUser)
            .where(StaffUser.username == USERNAME)
            .execution_options(populate_existing=True)
        )
        assert row is not None
        return row


@pytest.fixture
async def staff(session_factory: Factory) -> None:
    async with session_scope(session_factory) as db:
        await create_staff(db, USERNAME, PASSWORD, now=START, hasher=fast_hasher())


async def test_parallel_wrong_passwords_all_count(session_factory: Factory, staff: None) -> None:
    """A burst of simultaneous guesses must not slip under the lockout (SQLite took no lock
    on the read, so parallel failures overwrote each other's count)."""
    hasher = SlowHasher(delay=0.05)
    policy = LoginPolicy(max_failures=20, failure_delay=0.0)

    async def wrong(number: int) -> None:
        async with session_scope(session_factory) as db:
            result = await authenticate(
                db, USERNAME, f"wrong-{number}", now=START, policy=policy, hasher=hasher
            )
        assert not result.ok

    await asyncio.gather(*(wrong(number) for number in range(8)))
    assert (await _user(session_factory)).failed_logins == 8


class GatedHasher(SlowHasher):
    """Wrong passwords take `delay` to verify; the right one waits until `open` is set, so it
    is still being checked when the wrong ones lock the account."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay)
        self.started = threading.Event()
        self.open = threading.Event()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002 -- argon2's name
        self.started.set()
        if password == PASSWORD:
            self.open.wait(timeout=10)
        return super().verify(hash, password)


async def test_the_right_password_in_a_burst_is_refused_once_locked(
    session_factory: Factory, staff: None
) -> None:
    """Guesses that were checked while the lock started do not let the right one through.

    On SQLite the right password is still being checked when the wrong ones lock the account
    (it read the account unlocked); it is refused when its success is written."""
    hasher = GatedHasher(delay=0.2)
    policy = LoginPolicy(max_failures=3, failure_delay=0.0)

    async def attempt(password: str) -> bool:
        async with session_scope(session_factory) as db:
            result = await authenticate(
                db, USERNAME, password, now=START, policy=policy, hasher=hasher
            )
        return result.ok

    wrong = [asyncio.create_task(attempt(f"wrong-{number}")) for number in range(3)]
    assert await asyncio.to_thread(hasher.started.wait, 10)
    if session_factory.kw["bind"].dialect.name == "postgresql":
        # PostgreSQL serialises attempts on the account's row lock, in an order it chooses;
        # the right password asked after the guesses must find the account locked.
        hasher.open.set()
        wrong_results = await asyncio.gather(*wrong)
        right = asyncio.create_task(attempt(PASSWORD))
    else:
        # SQLite: the right password reads the account unlocked while the guesses are checked.
        right = asyncio.create_task(attempt(PASSWORD))
        wrong_results = await asyncio.gather(*wrong)
        hasher.open.set()
    assert wrong_results == [False, False, False]
    assert await right is False
    user = await _user(session_factory)
    assert user.locked_until is not None
    assert user.last_login_at is None


async def test_a_locked_account_costs_the_same_work_as_any_other_failure(
    session_factory: Factory, staff: None
) -> None:
    """While locked the real hash is not checked, but a dummy one is: the answer takes as
    long as for an unknown name, so timing does not tell which accounts exist or are locked."""
    hasher = SlowHasher()
    policy = LoginPolicy(max_failures=1, failure_delay=0.0)
    async with session_scope(session_factory) as db:
        await authenticate(db, USERNAME, "wrong-password", now=START, policy=policy, hasher=hasher)
    real_hash = (await _user(session_factory)).password_hash
    hasher.verified.clear()
    async with session_scope(session_factory) as db:
        result = await authenticate(db, USERNAME, PASSWORD, now=START, policy=policy, hasher=hasher)
    assert not result.ok
    assert result.locked_until is not None
    assert len(hasher.verified) == 1  # one argon2 verification, as for an unknown name
    assert hasher.verified[0] != real_hash


async def test_name_variants_do_not_get_around_the_lock(
    client: Client, context: AppContext
) -> None:
    await post_form(client, "/admin/logout", {})
    for number in range(5):
        await login(client, password=f"wrong-{number}")
    for name in (USERNAME, f"  {USERNAME} ", USERNAME.upper(), USERNAME.capitalize()):
        response = await login(client, username=name)
        assert response.status == 401, name


# --- notices ------------------------------------------------------------------------------------


async def test_a_long_question_still_gets_its_notice(client: Client) -> None:
    question = "マイナンバーカードの" * 50  # 500 characters, the longest allowed
    response = await post_form(
        client,
        "/admin/faq/new",
        {"id": "long-one", "question": question, "answer": "窓口へどうぞ。", "published": "1"},
    )
    assert response.status == 303
    cookie = response.headers["Set-Cookie"]
    assert len(cookie.encode()) < 4000  # browsers drop larger cookies: the notice would vanish
    page = await (await client.get(response.headers["Location"])).text()
    assert "を作成しました" in page


# --- markup typed by staff or residents is shown as text everywhere ---------------------------

XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def assert_no_markup(page: str, where: str) -> None:
    assert "<script>" not in page, where
    assert "<img src=x" not in page, where
    assert 'onerror="alert' not in page, where
    assert "&lt;script&gt;" in page, where  # the text itself is shown, escaped


async def test_markup_is_shown_as_text_on_every_page(client: Client, context: AppContext) -> None:
    async with session_scope(context.session_factory) as db:
        await create_entry(
            db,
            FaqEntryData(
                id="xss",
                question=f"粗大ごみ{XSS}",
                answer=f"答え{XSS}",
                alternatives=(XSS,),
                category=f"ごみ{XSS}",
                department=XSS,
                staff_note=XSS,
            ),
            actor="seed",
        )
        resident = await get_or_create_resident(db, 990001, now=START)
        await log_question(
            db,
            resident_id=resident.id,
            channel="telegram",
            question=f"犬の登録{XSS}",
            outcome="fallback",
            faq_id=None,
            score=0.1,
            now=START - timedelta(hours=1),
        )
        log_id = await log_question(
            db,
            resident_id=resident.id,
            channel="telegram",
            question=f"粗大ごみ{XSS}",
            outcome="answered",
            faq_id="xss",
            score=0.9,
            now=START - timedelta(minutes=30),
        )
        await record_feedback(
            db,
            resident_id=resident.id,
            faq_id="xss",
            helpful=False,
            question_log_id=log_id,
            now=START - timedelta(minutes=29),
        )
    await context.reload_faq()
    response = await post_form(
        client,
        "/admin/classes/new",
        {
            "title": f"教室{XSS}",
            "venue": f"公民館{XSS}",
            "day": "2026-12-15",
            "start": "14:00",
            "end": "15:30",
            "deadline": "2026-12-14T17:00",
            "capacity": "5",
            "max_seats": "2",
            "waitlist": "1",
            "description": XSS,
            "what_to_bring": XSS,
        },
    )
    assert response.status == 303, await response.text()
    class_path = response.headers["Location"]
    class_id = int(class_path.rsplit("/", 1)[1])
    async with session_scope(context.session_factory) as db:
        resident = await get_or_create_resident(db, 990002, now=START)
        await sign_up(
            db,
            class_id,
            resident.id,
            name=f"山田{XSS}",
            phone=None,
            seats=1,
            now=START,
            policy=ReminderPolicy.from_settings(context.settings),
        )
    inbox_page = await (await client.get("/admin/inbox")).text()
    logs = inbox_page.split("/admin/inbox/new?logs=", 1)[1].split('"', 1)[0]
    for path in [
        "/admin/faq",
        "/admin/faq?q=粗大ごみ",
        "/admin/faq/xss/edit",
        "/admin/faq/xss/history",
        "/admin/faq/xss/delete",
        "/admin/try?q=粗大ごみ" + XSS,
        "/admin/inbox",
        f"/admin/inbox/new?logs={logs}",
        f"/admin/inbox/alternative?logs={logs}",
        "/admin/dashboard",
        class_path,
        f"{class_path}/print",
        f"{class_path}/edit",
        f"{class_path}/cancel",
    ]:
        response = await client.get(path)
        assert response.status == 200, path
        assert_no_markup(await response.text(), path)


# --- the inbox groups a bounded number of questions per page ------------------------------------


async def test_the_inbox_groups_only_the_newest_questions(
    client: Client, context: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Grouping runs Sudachi and pairwise comparisons on the event loop: it is capped to the
    newest questions, and the page says how many older ones wait."""
    monkeypatch.setattr(inbox, "DEFAULT_LIMIT", 3)
    topics = ["犬の登録", "ごみの日", "図書館の時間", "水道の開栓", "児童手当"]
    async with session_scope(context.session_factory) as db:
        resident = await get_or_create_resident(db, 990003, now=START)
        for minutes, topic in enumerate(topics):
            await log_question(
                db,
                resident_id=resident.id,
                channel="telegram",
                question=f"{topic}について教えてください",
                outcome="fallback",
                faq_id=None,
                score=0.1,
                now=START - timedelta(minutes=minutes),  # the first topic is the newest
            )
    page = await (await client.get("/admin/inbox")).text()
    for topic in topics[:3]:
        assert topic in page
    for topic in topics[3:]:
        assert topic not in page
    assert "ほかに古い質問が2件" in page
