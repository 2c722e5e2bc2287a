"""Every admin route and export needs a login; every POST needs the session's CSRF token;
cookies are HttpOnly, SameSite and (behind HTTPS) Secure. The routes are read from the
router, so pages added later are covered without touching this file."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from adminkit import PASSWORD, USERNAME, Client, csrf_of, login, session_csrf
from aiohttp import FormData, web
from sqlalchemy import select

from admin.models import StaffSession
from admin.web import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from madoguchi.app import AppContext

PUBLIC = {"/admin/login"}
SAMPLE_VALUES = {"entry_id": "mn-lost"}


def admin_routes(app: web.Application) -> Iterator[tuple[str, str]]:
    """(method, concrete path) of every route of the admin sub-application."""
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource) and resource.canonical == "/admin":
            yield from _routes_of(resource._app)


def _routes_of(app: web.Application) -> Iterator[tuple[str, str]]:
    for resource in app.router.resources():
        if isinstance(resource, web.StaticResource):
            continue
        info = resource.get_info()
        if "formatter" in info:
            pattern = info["pattern"].pattern
            values = {}
            for name in re.findall(r"\{(\w+)\}", info["formatter"]):
                values[name] = SAMPLE_VALUES.get(name, "1")
                sub = re.search(rf"\(\?P<{name}>(.*?)\)", pattern)
                assert sub is not None
            path = str(resource.url_for(**values))
        else:
            path = info["path"]
        for route in resource:
            if route.method != "HEAD":
                yield route.method, path


def test_the_router_walk_finds_the_pages(web_app: web.Application) -> None:
    routes = set(admin_routes(web_app))
    for expected in [
        ("GET", "/admin/faq"),
        ("GET", "/admin/faq/export"),
        ("POST", "/admin/faq/import"),
        ("POST", "/admin/faq/mn-lost/edit"),
        ("POST", "/admin/faq/mn-lost/restore"),
        ("GET", "/admin/audit"),
        ("GET", "/admin/try"),
        ("POST", "/admin/logout"),
    ]:
        assert expected in routes
    assert len(routes) >= 18


async def test_every_route_refuses_visitors_without_login(
    anonymous: Client, web_app: web.Application
) -> None:
    checked = 0
    for method, path in admin_routes(web_app):
        if path in PUBLIC:
            continue
        response = await anonymous.request(
            method, path, data={"csrf_token": "x"}, allow_redirects=False
        )
        body = await response.text()
        if method == "GET" and ("export" in path or path.endswith(".csv")):
            assert response.status == 401, (method, path)
        elif method == "GET":
            assert response.status == 303, (method, path)
            location = response.headers["Location"]
            assert location.startswith("/admin/login"), (method, path, location)
        else:
            assert response.status in (401, 403), (method, path)
        assert "text/csv" not in response.headers.get("Content-Type", "")
        assert "0120-95-0178" not in body  # no FAQ content leaks
        checked += 1
    assert checked >= 17
    # Unknown admin paths and the static CSS: unknown ones ask for a login too.
    assert (await anonymous.get("/admin/nowhere", allow_redirects=False)).status == 303
    css = await anonymous.get("/admin/static/admin.css")
    assert css.status == 200


async def test_login_redirect_keeps_where_you_were_going(anonymous: Client) -> None:
    response = await anonymous.get("/admin/faq?q=ごみ", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/admin/login?next=")
    page = await (await anonymous.get(response.headers["Location"])).text()
    match = re.search(r'name="next" value="([^"]*)"', page)
    assert match is not None
    after = await login(anonymous, next_url=html.unescape(match.group(1)))
    assert after.status == 303
    assert unquote(after.headers["Location"]) == "/admin/faq?q=ごみ"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/elsewhere"])
async def test_login_never_redirects_outside_the_admin(anonymous: Client, target: str) -> None:
    response = await login(anonymous, next_url=target)
    assert response.status == 303
    assert response.headers["Location"] == "/admin/"


async def test_every_logged_in_route_refuses_posts_without_csrf(
    client: Client, web_app: web.Application
) -> None:
    posts = [path for method, path in admin_routes(web_app) if method == "POST"]
    posts = [path for path in posts if path not in PUBLIC]
    assert "/admin/faq/mn-lost/delete" in posts
    for path in posts:
        for data in ({}, {"csrf_token": "forged"}, {"csrf_token": ""}):
            response = await client.post(path, data=data, allow_redirects=False)
            assert response.status == 403, (path, data)
            assert "操作を受け付けられませんでした" in await response.text()
    # A multipart upload without the token is refused too, before anything is read in.
    upload = FormData()
    upload.add_field("file", b"ID,x\r\n", filename="faq.csv", content_type="text/csv")
    response = await client.post("/admin/faq/import", data=upload, allow_redirects=False)
    assert response.status == 403
    # Nothing was deleted or changed.
    page = await (await client.get("/admin/faq")).text()
    assert "マイナンバーカードをなくしました" in page


async def test_csrf_token_in_a_header_works(client: Client) -> None:
    token = await session_csrf(client)
    response = await client.post(
        "/admin/faq/mn-lost/unpublish",
        headers={"X-CSRF-Token": token},
        data={},
        allow_redirects=False,
    )
    assert response.status == 303


async def test_another_sessions_token_is_refused(client: Client, anonymous_second: Client) -> None:
    assert (await login(anonymous_second)).status == 303
    other_token = await session_csrf(anonymous_second)
    response = await client.post(
        "/admin/faq/mn-lost/delete", data={"csrf_token": other_token}, allow_redirects=False
    )
    assert response.status == 403


@pytest.fixture
async def anonymous_second(web_app: web.Application) -> Iterator[Client]:  # type: ignore[misc]
    from aiohttp.test_utils import TestClient, TestServer

    async with TestClient(TestServer(web_app)) as second:
        yield second


async def test_login_form_needs_its_csrf_cookie(anonymous: Client) -> None:
    page = await (await anonymous.get("/admin/login")).text()
    field = csrf_of(page)
    data = {"username": USERNAME, "password": PASSWORD}
    for token in ("", "forged", field + "x"):
        response = await anonymous.post(
            "/admin/login", data={**data, "csrf_token": token}, allow_redirects=False
        )
        assert response.status == 403
        assert "画面の有効期限が切れました" in await response.text()
    anonymous.session.cookie_jar.clear()  # the cookie half is missing: refused as well
    response = await anonymous.post(
        "/admin/login", data={**data, "csrf_token": field}, allow_redirects=False
    )
    assert response.status == 403


async def test_cookie_flags(anonymous: Client, context: AppContext) -> None:
    login_page = await anonymous.get("/admin/login")
    csrf_cookie = login_page.cookies[LOGIN_CSRF_COOKIE]
    assert csrf_cookie["httponly"]
    assert csrf_cookie["samesite"] == "Strict"
    assert csrf_cookie["path"] == "/admin"

    response = await login(anonymous)
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/admin"
    assert not cookie["secure"]  # plain http in the test, setting unset
    assert cookie["max-age"] == str(8 * 3600)
    async with context.session_factory() as db:
        stored = (await db.scalars(select(StaffSession))).one()
    assert stored.token_hash != cookie.value
    assert cookie.value not in stored.token_hash


async def test_secure_cookie_behind_an_https_proxy(anonymous: Client) -> None:
    page = await (await anonymous.get("/admin/login")).text()
    response = await anonymous.post(
        "/admin/login",
        data={"csrf_token": csrf_of(page), "username": USERNAME, "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.cookies[SESSION_COOKIE]["secure"]


async def test_security_headers(client: Client) -> None:
    response = await client.get("/admin/faq")
    assert response.content_type == "text/html"
    assert response.charset == "utf-8"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert '<meta charset="utf-8">' in await response.text()


async def test_logout_needs_post_and_ends_the_session(client: Client) -> None:
    assert (await client.get("/admin/logout", allow_redirects=False)).status == 405
    token = await session_csrf(client)
    response = await client.post("/admin/logout", data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 303
    page = await client.get("/admin/login")
    assert "ログアウトしました" in await page.text()
    assert (await client.get("/admin/faq", allow_redirects=False)).status == 303


async def test_bare_admin_goes_to_the_admin(client: Client) -> None:
    response = await client.get("/admin", allow_redirects=False)
    assert response.headers["Location"] == "/admin/"
    response = await client.get("/admin/", allow_redirects=False)
    assert response.headers["Location"] in ("/admin/dashboard", "/admin/faq")
