"""Fixtures of the admin tests: an app with a small FAQ, a staff account and a test client.

The password hasher uses small argon2 parameters and the failure delay is short, so the
tests run fast; the production defaults are checked in test_accounts.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from adminkit import ENTRIES, START, Client, add_staff, fast_hasher, login
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from admin.accounts import LoginPolicy
from admin.web import create_admin_app
from classes.clock import ManualClock
from faq.store import create_entry
from madoguchi.app import AppContext, open_app
from madoguchi.db import session_scope
from madoguchi.settings import Settings
from madoguchi.web import create_web_app


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def policy() -> LoginPolicy:
    return LoginPolicy(failure_delay=0.01)


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
