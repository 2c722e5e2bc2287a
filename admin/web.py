"""The staff admin as an aiohttp sub-application mounted at /admin/ on the one web server.

Read admin/README_DEV.md before adding pages. In short: a views module exposes
`add_routes(routes: web.RouteTableDef) -> None` registering paths relative to /admin
(e.g. "/inbox"); handlers call `render(request, "inbox/list.html", ...)`, open a database
session with `session_scope(app_context(request).session_factory)`, call the core, record
each change with `admin.audit.record(...)` in the same transaction, and answer a POST with
`see_other(request, "/admin/...", notice="...")`.

The middleware here does, for every request under /admin/:
- sessions: the `madoguchi_admin` cookie holds a random token; the database only its SHA-256;
- login: every route but the login page and static files needs a live session (HTML GET:
  redirect to the login page; anything else: 401/403);
- CSRF: every POST must carry the session's token (form field `csrf_token` or header
  `X-CSRF-Token`), compared in constant time; the login form uses a signed double-submit
  cookie instead, since there is no session yet;
- headers: no framing, no caching, no scripts (the admin needs none), nosniff.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import quote, unquote, urlencode

import jinja2
from aiohttp import web
from argon2 import PasswordHasher
from multidict import MultiDictProxy

from admin.accounts import (
    LoginPolicy,
    SessionInfo,
    StaffInfo,
    default_hasher,
    lookup_session,
    touch_session,
)
from classes.clock import Clock, SystemClock
from madoguchi.app import AppContext
from madoguchi.db import session_scope

log = logging.getLogger(__name__)

ADMIN_PREFIX: Final = "/admin"
SESSION_COOKIE: Final = "madoguchi_admin"
LOGIN_CSRF_COOKIE: Final = "madoguchi_login_csrf"
NOTICE_COOKIE: Final = "madoguchi_notice"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
# The whole request body may be this large (CSV import: a 5 MB file plus the form).
MAX_REQUEST_BYTES: Final = 6 * 1024 * 1024
TOUCH_EVERY: Final = timedelta(minutes=5)
# A one-time notice travels in a cookie; browsers drop cookies over 4 KB (the notice would
# then vanish), and a Japanese character takes up to 12 bytes once percent-encoded.
NOTICE_MAX_CHARS: Final = 300

TEMPLATES_DIR = Path(__file__).with_name("templates")
STATIC_DIR = Path(__file__).with_name("static")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    href: str


NAV: tuple[NavItem, ...] = (
    NavItem("ダッシュボード", f"{ADMIN_PREFIX}/dashboard"),
    NavItem("FAQ", f"{ADMIN_PREFIX}/faq"),
    NavItem("未回答・👎", f"{ADMIN_PREFIX}/inbox"),
    NavItem("スマホ教室", f"{ADMIN_PREFIX}/classes"),
    NavItem("操作履歴", f"{ADMIN_PREFIX}/audit"),
)


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """Per-app objects of the admin (tests pass a fast hasher, a short delay, a clock)."""

    policy: LoginPolicy
    hasher: PasswordHasher
    clock: Clock
    login_key: bytes  # signs the login form's CSRF cookie


ADMIN_CONTEXT: Final = web.AppKey("madoguchi_admin_context", AppContext)
ADMIN_CONFIG: Final = web.AppKey("madoguchi_admin_config", AdminConfig)
TEMPLATES: Final = web.AppKey("madoguchi_admin_templates", jinja2.Environment)

_SESSION_KEY: Final = web.RequestKey("madoguchi_admin_session", SessionInfo)
_TOKEN_KEY: Final = web.RequestKey("madoguchi_admin_token", str)
_PUBLIC_ATTR: Final = "__madoguchi_admin_public__"


# --- what handlers use ------------------------------------------------------------------


def public(handler: H) -> H:
    """Mark a handler as reachable without login (only the login page uses this)."""
    setattr(handler, _PUBLIC_ATTR, True)
    return handler


def app_context(request: web.Request) -> AppContext:
    """Settings, session factory and FAQ index of the running app."""
    return request.app[ADMIN_CONTEXT]


def admin_config(request: web.Request) -> AdminConfig:
    return request.app[ADMIN_CONFIG]


def now(request: web.Request) -> datetime:
    """The current time (aware, UTC) from the admin's clock (tests can move it)."""
    return request.app[ADMIN_CONFIG].clock.now()


def current_session(request: web.Request) -> SessionInfo | None:
    return request.get(_SESSION_KEY)


def current_staff(request: web.Request) -> StaffInfo:
    """The logged-in staff member. Every non-public handler has one (the middleware saw to it)."""
    session = current_session(request)
    if session is None:
        raise web.HTTPForbidden(text="ログインしてください", content_type="text/plain")
    return session.user


def actor(request: web.Request) -> str:
    """The name kept in the audit log and FAQ history for changes made by this request."""
    return current_staff(request).username


async def form_data(
    request: web.Request,
) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """The posted form (already read and CSRF-checked by the middleware)."""
    return await request.post()


def form_text(form: Mapping[str, Any], name: str, default: str = "") -> str:
    """A text field of a posted form ("" for a missing field or a file)."""
    value = form.get(name, default)
    return value if isinstance(value, str) else default


def see_other(
    request: web.Request, location: str, *, notice: str | None = None
) -> web.HTTPSeeOther:
    """A 303 to `location` (raise it) that shows `notice` once on the next page."""
    response = web.HTTPSeeOther(location)
    if notice:
        response.set_cookie(
            NOTICE_COOKIE,
            quote(shorten(notice, NOTICE_MAX_CHARS)),
            path=ADMIN_PREFIX,
            httponly=True,
            samesite="Lax",
            secure=cookie_secure(request),
        )
    return response


def shorten(text: str, limit: int = 60) -> str:
    """`text`, cut to `limit` characters with "…" (for quoting an entry in a notice)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(
    request: web.Request,
    template_name: str,
    /,
    *,
    http_status: int = 200,
    **values: Any,
) -> web.Response:
    """Render a template of admin/templates with the layout's values added: `staff` (or
    None), `csrf_token`, `nav` and `active_nav`, `notice` (shown once), `settings`, `town`,
    `request`. Templates extend "base.html"; autoescape is on."""
    env = request.app[TEMPLATES]
    session = current_session(request)
    notice = request.cookies.get(NOTICE_COOKIE)
    context = app_context(request)
    page = env.get_template(template_name).render(
        staff=session.user if session else None,
        csrf_token=session.csrf_token if session else "",
        nav=NAV,
        active_nav=_active_nav(request.path),
        notice=unquote(notice) if notice else None,
        settings=context.settings,
        town=context.settings.town,
        request=request,
        **values,
    )
    response = web.Response(
        text=page, status=http_status, content_type="text/html", charset="utf-8"
    )
    if notice:
        response.del_cookie(NOTICE_COOKIE, path=ADMIN_PREFIX)
    return response


def csv_download(data: bytes, filename: str) -> web.Response:
    """A CSV file download (bytes already encoded, e.g. UTF-8 with BOM for Excel)."""
    return web.Response(
        body=data,
        content_type="text/csv",
        charset=None,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
        },
    )


def safe_next(value: str | None) -> str:
    """A redirect target after login: only paths inside the admin (no open redirect)."""
    if (
        value
        and value.startswith(f"{ADMIN_PREFIX}/")
        and not value.startswith("//")
        and "\\" not in value
        and "\n" not in value
        and "\r" not in value
        and not value.startswith(f"{ADMIN_PREFIX}/login")
    ):
        return value
    return f"{ADMIN_PREFIX}/"


def cookie_secure(request: web.Request) -> bool:
    """Secure cookies: as configured, or (unset) when the browser talks HTTPS to us or to
    the reverse proxy in front (X-Forwarded-Proto)."""
    configured = app_context(request).settings.admin_cookie_secure
    if configured is not None:
        return configured
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    hours = app_context(request).settings.admin_session_hours
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path=ADMIN_PREFIX,
        httponly=True,
        samesite="Lax",
        secure=cookie_secure(request),
        max_age=int(hours * 3600),
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path=ADMIN_PREFIX)


def session_token(request: web.Request) -> str | None:
    return request.get(_TOKEN_KEY)


# --- login form CSRF (signed double submit) ---------------------------------------------


def _sign(key: bytes, nonce: str) -> str:
    return hmac.new(key, nonce.encode("ascii", "replace"), hashlib.sha256).hexdigest()


def login_csrf(request: web.Request) -> tuple[str, str]:
    """A pre-session CSRF pair for the login form: (cookie nonce, hidden field value).

    The cookie holds a random nonce; the field holds nonce + HMAC(nonce) under a key only
    this server knows, so a value planted by another site cannot be forged to match."""
    nonce = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not (16 <= len(nonce) <= 64 and nonce.isascii() and nonce.isprintable()):
        nonce = secrets.token_urlsafe(24)
    return nonce, f"{nonce}.{_sign(admin_config(request).login_key, nonce)}"


def set_login_csrf_cookie(request: web.Request, response: web.StreamResponse, nonce: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        nonce,
        path=ADMIN_PREFIX,
        httponly=True,
        samesite="Strict",
        secure=cookie_secure(request),
    )


def login_csrf_ok(request: web.Request, field: str) -> bool:
    nonce = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not nonce or not field:
        return False
    expected = f"{nonce}.{_sign(admin_config(request).login_key, nonce)}"
    return hmac.compare_digest(field.encode("utf-8"), expected.encode("utf-8"))


# --- middleware ------------------------------------------------------------------------


_SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


def _with_headers(response: web.StreamResponse, *, static: bool) -> None:
    for name, value in _SECURITY_HEADERS.items():
        if static and name == "Cache-Control":
            continue
        response.headers.setdefault(name, value)


def _is_public(request: web.Request) -> bool:
    route = request.match_info.route
    if isinstance(route.resource, web.StaticResource):
        return True
    return bool(getattr(request.match_info.handler, _PUBLIC_ATTR, False))


def _is_download(request: web.Request) -> bool:
    path = request.path
    return "export" in path or path.endswith(".csv")


def _login_redirect(request: web.Request) -> web.HTTPSeeOther:
    target = request.path_qs if request.path.startswith(f"{ADMIN_PREFIX}/") else ""
    query = f"?{urlencode({'next': target})}" if target and target != f"{ADMIN_PREFIX}/" else ""
    return web.HTTPSeeOther(f"{ADMIN_PREFIX}/login{query}")


def _error_page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    return render(request, "error.html", http_status=status, title=title, message=message)


async def _load_session(request: web.Request) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return
    moment = now(request)
    async with session_scope(app_context(request).session_factory) as db:
        found = await lookup_session(db, token, now=moment)
        if found is not None and moment - found.last_seen_at > TOUCH_EVERY:
            await touch_session(db, found.id, now=moment)
    if found is not None:
        request[_SESSION_KEY] = found
        request[_TOKEN_KEY] = token


async def _csrf_ok(request: web.Request, session: SessionInfo) -> bool:
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        sent = form_text(await request.post(), CSRF_FIELD)
    if not sent:
        return False
    return hmac.compare_digest(sent.encode("utf-8"), session.csrf_token.encode("utf-8"))


@web.middleware
async def admin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    static = isinstance(request.match_info.route.resource, web.StaticResource)
    try:
        response = await _guarded(request, handler)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects
            _with_headers(exc, static=static)
            raise
        response = _http_error_page(request, exc.status)
    except Exception:
        # Staff never see English or a traceback: the details go to the log only.
        log.exception("admin: unexpected error on %s %s", request.method, request.path)
        response = _http_error_page(request, 500)
    _with_headers(response, static=static)
    return response


_HTTP_ERRORS: Final = {
    400: (
        "送られた内容を読み取れませんでした",
        "画面を開き直して、もう一度操作してください。",
    ),
    403: ("この操作はできません", "ログインし直してから、もう一度操作してください。"),
    404: ("ページが見つかりません", "アドレスを確かめるか、メニューから選んでください。"),
    405: ("この操作はできません", "メニューから選び直してください。"),
}
_SERVER_ERROR: Final = (
    "うまくいきませんでした",
    "処理の途中で問題が起きました。変更は保存されていないことがあります。"
    "画面を開き直して確かめ、もう一度お試しください。続くときは担当者にお知らせください。",
)


def _http_error_page(request: web.Request, status: int) -> web.Response:
    if status == 413:
        return _too_large(request)
    title, message = _HTTP_ERRORS.get(status, _SERVER_ERROR)
    try:
        return _error_page(request, status, title, message)
    except Exception:  # the page itself failed (templates, settings): plain Japanese text
        log.exception("admin: the error page failed on %s", request.path)
        return web.Response(
            text=f"{title}。{message}", status=status, content_type="text/plain", charset="utf-8"
        )


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _is_public(request) and request.match_info.http_exception is None:
        if request.path.startswith(f"{ADMIN_PREFIX}/login"):
            await _load_session(request)  # the login page sends a logged-in visitor on
        return await handler(request)  # errors: admin_middleware
    await _load_session(request)
    session = current_session(request)
    unsafe = request.method not in ("GET", "HEAD", "OPTIONS")
    if session is None:
        if unsafe:
            return _error_page(
                request,
                403,
                "ログインが必要です",
                "ログインし直してから、もう一度操作してください。",
            )
        if _is_download(request):
            return _error_page(
                request, 401, "ログインが必要です", "ログインしてから、もう一度お試しください。"
            )
        raise _login_redirect(request)
    # A body over the limit raises 413 in _csrf_ok; the middleware turns it into its page.
    if unsafe and not await _csrf_ok(request, session):
        log.warning("admin: refused a POST without a valid CSRF token (%s)", request.path)
        return _error_page(
            request,
            403,
            "操作を受け付けられませんでした",
            "画面を開いてから時間がたったか、別の画面からの送信です。"
            "画面を開き直して、もう一度操作してください。",
        )
    return await handler(request)  # errors: admin_middleware


def _too_large(request: web.Request) -> web.Response:
    limit = MAX_REQUEST_BYTES // (1024 * 1024)
    return _error_page(
        request,
        413,
        "ファイルが大きすぎます",
        f"送信できるのは合計{limit}MBまでです。ファイルを分けてお試しください。",
    )


def _active_nav(path: str) -> str | None:
    for item in NAV:
        if path == item.href or path.startswith(item.href + "/"):
            return item.href
    return None


# --- templates -----------------------------------------------------------------------------


_WEEKDAYS = "月火水木金土日"


def create_templates(context: AppContext) -> jinja2.Environment:
    """The Jinja2 environment (autoescape on) with the admin's filters:
    `datetime_jp` (12月3日（水）14:00, in the town's zone), `date_jp`, `score` (0.83)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.ChainableUndefined,
    )
    tz = context.settings.tzinfo

    def datetime_jp(value: datetime | None, with_year: bool = False) -> str:
        if value is None:
            return ""
        local = value.astimezone(tz)
        year = f"{local.year}年" if with_year else ""
        return f"{year}{local.month}月{local.day}日（{_WEEKDAYS[local.weekday()]}）{local:%H:%M}"

    def date_jp(value: datetime | None) -> str:
        if value is None:
            return ""
        local = value.astimezone(tz)
        return f"{local.year}年{local.month}月{local.day}日（{_WEEKDAYS[local.weekday()]}）"

    env.filters["datetime_jp"] = datetime_jp
    env.filters["date_jp"] = date_jp
    env.filters["score"] = lambda value: f"{float(value):.2f}"
    return env


# --- the application -------------------------------------------------------------------------


async def admin_root(request: web.Request) -> web.StreamResponse:
    """/admin/: the dashboard when there is one, else the FAQ list."""
    dashboard = f"{ADMIN_PREFIX}/dashboard"
    for resource in request.app.router.resources():
        if resource.canonical == dashboard:
            raise web.HTTPSeeOther(dashboard)
    raise web.HTTPSeeOther(f"{ADMIN_PREFIX}/faq")


def _login_key(context: AppContext) -> bytes:
    """From MADOGUCHI_ADMIN_SECRET when set, so that several instances accept each other's
    login forms; else random per process (a form opened before a restart asks again)."""
    secret = context.settings.admin_secret
    if secret is not None and secret.get_secret_value():
        return hashlib.sha256(
            b"madoguchi-admin-login:" + secret.get_secret_value().encode()
        ).digest()
    return secrets.token_bytes(32)


def create_admin_app(
    context: AppContext,
    *,
    policy: LoginPolicy | None = None,
    hasher: PasswordHasher | None = None,
    clock: Clock | None = None,
    login_key: bytes | None = None,
) -> web.Application:
    """The admin sub-application; mount it with `mount_admin` (paths are relative to
    /admin). Every views module's `add_routes` is called here."""
    from admin import (
        views_audit,
        views_auth,
        views_classes,
        views_dashboard,
        views_faq,
        views_inbox,
    )

    app = web.Application(middlewares=[admin_middleware])
    app[ADMIN_CONTEXT] = context
    app[ADMIN_CONFIG] = AdminConfig(
        policy=policy or LoginPolicy(),
        hasher=hasher or default_hasher(),
        clock=clock or SystemClock(),
        login_key=login_key or _login_key(context),
    )
    app[TEMPLATES] = create_templates(context)
    routes = web.RouteTableDef()
    routes.get("/")(admin_root)
    views_auth.add_routes(routes)
    views_faq.add_routes(routes)
    views_audit.add_routes(routes)
    views_dashboard.add_routes(routes)
    views_inbox.add_routes(routes)
    views_classes.add_routes(routes)
    # ADMIN-B: add your modules' add_routes(routes) calls here (see admin/README_DEV.md).
    app.add_routes(routes)
    app.router.add_static("/static", STATIC_DIR, name="static")
    return app


def mount_admin(app: web.Application, admin: web.Application) -> None:
    """Serve `admin` under /admin/ of the main app (and send a bare /admin there)."""

    async def to_admin(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently(f"{ADMIN_PREFIX}/")

    app.router.add_get(ADMIN_PREFIX, to_admin)
    app.add_subapp(ADMIN_PREFIX, admin)
