"""Fixtures of the admin tests: an app with a small FAQ, a staff account and a test client.

The password hasher uses small argon2 parameters and the failure delay is short, so the
tests run fast; the production defaults are checked in test_accounts.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from adminkit import PASSWORD, USERNAME, Client, login
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from admin.accounts import LoginPolicy, create_staff
from admin.web import create_admin_app
from classes.clock import ManualClock
from faq.store import create_entry
from faq.types import FaqEntryData
from madoguchi.app import AppContext, open_app
from madoguchi.db import session_scope
from madoguchi.settings import Settings
from madoguchi.web import create_web_app

START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)

ENTRIES = (
    FaqEntryData(
        id="mn-lost",
        question="マイナンバーカードをなくしました",
        answer="すぐに専用ダイヤル 0120-95-0178 に電話して、カードを止めてください。",
        alternatives=("マイナカードを落とした",),
        keywords=("紛失",),
        category="マイナンバー",
    ),
    FaqEntryData(
        id="gomi-sodai",
        question="粗大ごみはどうやって出しますか",
        answer="粗大ごみは予約制です。{counter_phone} にお電話ください。",
        category="ごみ",
    ),
    FaqEntryData(
        id="juminhyo",
        question="住民票の写しはどこで取れますか",
        answer="役場の窓口かコンビニで取れます。",
        category="戸籍・住民票",
    ),
)


def fast_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def policy() -> LoginPolicy:
    return LoginPolicy(failure_delay=0.01)


async def add_staff(
    context: AppContext, username: str = USERNAME, password: str = PASSWORD
) -> None:
    async with session_scope(context.session_factory) as db:
        await create_staff(
            db, username, password, display_name="田中 花子", now=START, hasher=fast_hasher()
        )


@pytest.fixture
async def context(isolated_settings_env: Path, tmp_path: Path) -> AsyncIterator[AppContext]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'admin.sqlite3'}",
        town_name="みどり町",
        counter_phone="0555-12-3456",
    )
    async with open_app(settings, seed=False) as context:
        async with session_scope(context.session_factory) as db:
            for entry in ENTRIES:
                await create_entry(db, entry, actor="seed")
        await context.reload_faq()
        await add_staff(context)
        yield context


@pytest.fixture
def web_app(context: AppContext, clock: ManualClock, policy: LoginPolicy) -> web.Application:
    admin = create_admin_app(context, policy=policy, hasher=fast_hasher(), clock=clock)
    return create_web_app(context, admin=admin)


@pytest.fixture
async def anonymous(web_app: web.Application) -> AsyncIterator[Client]:
    async with TestClient(TestServer(web_app)) as client:
        yield client


@pytest.fixture
async def client(anonymous: Client) -> Client:
    """Logged in as tanaka."""
    response = await login(anonymous)
    assert response.status == 303, await response.text()
    return anonymous
