"""Helpers of the admin tests: a logged-in test client that fills in CSRF tokens."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

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
