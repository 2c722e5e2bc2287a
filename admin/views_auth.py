"""Login and logout pages."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from aiohttp import web

from admin import audit
from admin.accounts import authenticate, end_session, get_staff, start_session
from admin.web import (
    ADMIN_PREFIX,
    LOGIN_CSRF_COOKIE,
    admin_config,
    app_context,
    clear_session_cookie,
    current_session,
    form_data,
    form_text,
    login_csrf,
    login_csrf_ok,
    now,
    public,
    render,
    safe_next,
    see_other,
    session_token,
    set_login_csrf_cookie,
    set_session_cookie,
)
from madoguchi.db import session_scope

EXPIRED_FORM = "画面の有効期限が切れました。もう一度ログインしてください。"


def _login_page(
    request: web.Request,
    *,
    username: str = "",
    error: str | None = None,
    next_url: str = "",
    http_status: int = 200,
) -> web.Response:
    nonce, field = login_csrf(request)
    response = render(
        request,
        "login.html",
        http_status=http_status,
        username=username,
        error=error,
        next_url=next_url,
        login_csrf=field,
    )
    set_login_csrf_cookie(request, response, nonce)
    return response


@public
async def login_form(request: web.Request) -> web.StreamResponse:
    next_url = safe_next(request.query.get("next"))
    if current_session(request) is not None:
        raise web.HTTPSeeOther(next_url)
    return _login_page(request, next_url=next_url)


@public
async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await form_data(request)
    username = form_text(form, "username").strip()
    password = form_text(form, "password")
    next_url = safe_next(form_text(form, "next"))
    if not login_csrf_ok(request, form_text(form, "csrf_token")):
        return _login_page(
            request, username=username, error=EXPIRED_FORM, next_url=next_url, http_status=403
        )
    config = admin_config(request)
    context = app_context(request)
    moment = now(request)
    async with session_scope(context.session_factory) as db:
        result = await authenticate(
            db, username, password, now=moment, policy=config.policy, hasher=config.hasher
        )
        if result.ok and result.user is not None:
            lifetime = timedelta(hours=context.settings.admin_session_hours)
            token, _session = await start_session(db, result.user, now=moment, lifetime=lifetime)
            await audit.record(db, result.user.username, "staff.login", "staff", result.user.id)
        else:
            # Only names that exist are recorded: a password typed into the name field by
            # mistake must not end up in the audit log.
            user = await get_staff(db, username) if username else None
            if user is not None:
                locked = result.locked_until is not None and not result.newly_locked
                await audit.record(
                    db,
                    user.username,
                    "staff.login_failed",
                    "staff",
                    user.id,
                    {"while_locked": locked},
                )
                if result.newly_locked and result.locked_until is not None:
                    await audit.record(
                        db,
                        user.username,
                        "staff.locked",
                        "staff",
                        user.id,
                        {"locked_until": result.locked_until.isoformat()},
                    )
    if not result.ok:
        # Every failure costs time, so guessing is slow even before the lockout starts.
        await asyncio.sleep(config.policy.failure_delay)
        return _login_page(
            request,
            username=username,
            error=result.message,
            next_url=next_url,
            http_status=401,
        )
    response = web.HTTPSeeOther(next_url)
    set_session_cookie(request, response, token)
    response.del_cookie(LOGIN_CSRF_COOKIE, path=ADMIN_PREFIX)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    token = session_token(request)
    session = current_session(request)
    if token is not None and session is not None:
        async with session_scope(app_context(request).session_factory) as db:
            await end_session(db, token)
            await audit.record(db, session.user.username, "staff.logout", "staff", session.user.id)
    response = see_other(request, f"{ADMIN_PREFIX}/login", notice="ログアウトしました。")
    clear_session_cookie(response)
    raise response


def add_routes(routes: web.RouteTableDef) -> None:
    routes.get("/login")(login_form)
    routes.post("/login")(login_submit)
    routes.post("/logout")(logout)
