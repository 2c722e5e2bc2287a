"""Helpers of the admin tests: a logged-in test client that fills in CSRF tokens."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher

from admin.accounts import create_staff
from faq.types import FaqEntryData
from madoguchi.app import AppContext
from madoguchi.db import session_scope

Client = TestClient[web.Request, web.Application]

PASSWORD = "correct horse battery staple"
USERNAME = "tanaka"

_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(page: str) -> str:
    match = _CSRF_RE.search(page)
    assert match, "no csrf_token field on the page"
    return match.group(1)


async def login(
    client: Client, username: str = USERNAME, password: str = PASSWORD, *, next_url: str = ""
) -> Any:
    """Open the login page (for its CSRF cookie and field) and post the form."""
    page = await (await client.get("/admin/login")).text()
    return await client.post(
        "/admin/login",
        data={
            "csrf_token": csrf_of(page),
            "username": username,
            "password": password,
            "next": next_url,
        },
        allow_redirects=False,
    )


async def session_csrf(client: Client) -> str:
    """The logged-in session's CSRF token (from any admin page's forms)."""
    page = await (await client.get("/admin/faq")).text()
    return csrf_of(page)


async def post_form(client: Client, path: str, data: dict[str, Any], **kwargs: Any) -> Any:
    form = {"csrf_token": await session_csrf(client), **data}
    return await client.post(path, data=form, allow_redirects=False, **kwargs)


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


async def add_staff(
    context: AppContext, username: str = USERNAME, password: str = PASSWORD
) -> None:
    async with session_scope(context.session_factory) as db:
        await create_staff(
            db, username, password, display_name="田中 花子", now=START, hasher=fast_hasher()
        )
