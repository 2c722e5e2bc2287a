"""Staff accounts: argon2id password hashes, login with lockout, server-side sessions.

Plain async functions over the caller's AsyncSession (no HTTP here; they never commit).
Passwords are only ever handed to argon2-cffi: never logged, never stored, never put in an
exception message. Hashing runs in a worker thread so a login does not stall the event loop.

Lockout: every failed password raises `failed_logins`; from the `max_failures`-th failure on,
the account is locked for `base_lock` seconds, doubling with each further failure up to
`max_lock`. While locked, even the right password is refused (it is not checked at all; a
dummy hash is verified instead, so the answer takes as long). The message is the same whether
the user exists, the password is wrong or the account is locked, so the login form tells an
attacker nothing about which names exist. Failures are counted in SQL (`failed_logins + 1`)
and a right password is accepted only if the account is still unlocked when it is recorded,
so a burst of parallel guesses cannot slip under the lockout (SQLite takes no lock on read).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from admin.models import StaffSession, StaffUser

LOGIN_FAILED_MESSAGE = "ユーザー名またはパスワードが違います"
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 1024  # argon2 takes any length; this only bounds the work per attempt
USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class AccountError(Exception):
    """A Japanese message fit to show staff (never contains a password)."""


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """How hard repeated failures are punished. `failure_delay` is slept by the caller (the
    login handler) after each failure, so guessing is slow even below the lockout."""

    max_failures: int = 5
    base_lock: timedelta = timedelta(minutes=1)
    max_lock: timedelta = timedelta(minutes=30)
    failure_delay: float = 1.0

    def lock_for(self, failed_logins: int) -> timedelta | None:
        """How long to lock after this many consecutive failures (None: not yet)."""
        if failed_logins < self.max_failures:
            return None
        doublings = min(failed_logins - self.max_failures, 20)
        lock: timedelta = min(self.base_lock * (2**doublings), self.max_lock)
        return lock


@dataclass(frozen=True, slots=True)
class StaffInfo:
    id: int
    username: str
    display_name: str
    is_active: bool

    @property
    def label(self) -> str:
        return self.display_name or self.username


@dataclass(frozen=True, slots=True)
class LoginResult:
    ok: bool
    user: StaffInfo | None = None
    # Set when this attempt locked (or found locked) an existing account; never shown to the
    # visitor (the message stays uniform), used for the audit log and tests.
    locked_until: datetime | None = None
    message: str = ""
    newly_locked: bool = False  # this very failure started the lock


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A logged-in browser: who, the session's CSRF token and when it ends."""

    id: int
    user: StaffInfo
    csrf_token: str
    expires_at: datetime
    last_seen_at: datetime


def default_hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's current recommended parameters (RFC 9106 low-memory)."""
    return PasswordHasher()


# A hash to verify against when the user does not exist, so both cases take as long.
_DUMMY_HASHES: dict[tuple[int, int, int], str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    if key not in _DUMMY_HASHES:
        _DUMMY_HASHES[key] = hasher.hash(secrets.token_urlsafe(16))
    return _DUMMY_HASHES[key]


def _info(row: StaffUser) -> StaffInfo:
    return StaffInfo(
        id=row.id, username=row.username, display_name=row.display_name, is_active=row.is_active
    )


def password_problems(password: str) -> list[str]:
    problems = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"パスワードは{PASSWORD_MIN_LENGTH}文字以上にしてください")
    if len(password) > PASSWORD_MAX_LENGTH:
        problems.append(f"パスワードは{PASSWORD_MAX_LENGTH}文字以内にしてください")
    if password != password.strip():
        problems.append("パスワードの最初と最後に空白は使えません")
    return problems


def username_problems(username: str) -> list[str]:
    if not USERNAME_RE.fullmatch(username):
        return ["ユーザー名は半角英数字と . _ - で、64文字以内にしてください（先頭は英数字）"]
    return []


async def create_staff(
    session: AsyncSession,
    username: str,
    password: str,
    *,
    display_name: str = "",
    now: datetime,
    hasher: PasswordHasher | None = None,
) -> StaffInfo:
    """A new active staff account; AccountError (Japanese) for a bad name or password or a
    name already taken."""
    hasher = hasher or default_hasher()
    problems = username_problems(username) + password_problems(password)
    if len(display_name) > 100:
        problems.append("表示名は100文字以内にしてください")
    if problems:
        raise AccountError("\n".join(problems))
    existing = await session.scalar(select(StaffUser.id).where(StaffUser.username == username))
    if existing is not None:
        raise AccountError(f"ユーザー名「{username}」はすでに使われています")
    password_hash = await asyncio.to_thread(hasher.hash, password)
    row = StaffUser(
        username=username,
        display_name=display_name.strip(),
        password_hash=password_hash,
        is_active=True,
        failed_logins=0,
        locked_until=None,
        last_login_at=None,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise AccountError(f"ユーザー名「{username}」はすでに使われています") from exc
    return _info(row)


async def get_staff(session: AsyncSession, username: str) -> StaffInfo | None:
    row = await session.scalar(select(StaffUser).where(StaffUser.username == username))
    return None if row is None else _info(row)


async def authenticate(
    session: AsyncSession,
    username: str,
    password: str,
    *,
    now: datetime,
    policy: LoginPolicy | None = None,
    hasher: PasswordHasher | None = None,
) -> LoginResult:
    """Check a login. Does not commit: the caller commits whatever the outcome (the failure
    counter must persist) and sleeps `policy.failure_delay` after a failure."""
    policy = policy or LoginPolicy()
    hasher = hasher or default_hasher()
    failed = LoginResult(ok=False, message=LOGIN_FAILED_MESSAGE)
    if not username or len(username) > 64 or len(password) > PASSWORD_MAX_LENGTH:
        return failed
    # FOR UPDATE (PostgreSQL): parallel attempts on one account count one after another.
    row = await session.scalar(
        select(StaffUser)
        .where(StaffUser.username == username)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if row is None or not row.is_active:
        await asyncio.to_thread(_verify_quietly, hasher, _dummy_hash(hasher), password)
        return failed
    if row.locked_until is not None and row.locked_until > now:
        # The real hash is not checked, but a dummy one is: a locked account answers as
        # slowly as any other failure, so timing tells nothing.
        await asyncio.to_thread(_verify_quietly, hasher, _dummy_hash(hasher), password)
        return LoginResult(ok=False, locked_until=row.locked_until, message=LOGIN_FAILED_MESSAGE)
    user_id = row.id
    unlocked = (StaffUser.id == user_id) & (
        StaffUser.locked_until.is_(None) | (StaffUser.locked_until <= now)
    )
    if not await asyncio.to_thread(_verify_quietly, hasher, row.password_hash, password):
        # Counted in SQL (failed_logins + 1), not from the row read above: on SQLite that
        # read takes no lock, and parallel guesses would overwrite each other's count.
        failures = await session.scalar(
            update(StaffUser)
            .where(StaffUser.id == user_id)
            .values(failed_logins=StaffUser.failed_logins + 1, updated_at=now)
            .returning(StaffUser.failed_logins)
            .execution_options(synchronize_session=False)
        )
        lock = policy.lock_for(failures or 0)
        locked_until = now + lock if lock is not None else None
        if locked_until is not None:
            await session.execute(
                update(StaffUser)
                .where(StaffUser.id == user_id)
                .values(locked_until=locked_until)
                .execution_options(synchronize_session=False)
            )
        return LoginResult(
            ok=False,
            locked_until=locked_until,
            message=LOGIN_FAILED_MESSAGE,
            newly_locked=lock is not None,
        )
    # Right password: accepted only if parallel wrong guesses did not lock the account
    # while it was being checked.
    accepted = await session.execute(
        update(StaffUser)
        .where(unlocked)
        .values(failed_logins=0, locked_until=None, last_login_at=now)
        .execution_options(synchronize_session=False)
    )
    if accepted.rowcount != 1:  # type: ignore[attr-defined]
        return failed
    if hasher.check_needs_rehash(row.password_hash):
        password_hash = await asyncio.to_thread(hasher.hash, password)
        await session.execute(
            update(StaffUser)
            .where(StaffUser.id == user_id)
            .values(password_hash=password_hash, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return LoginResult(ok=True, user=_info(row))


def _verify_quietly(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def set_password(
    session: AsyncSession,
    username: str,
    password: str,
    *,
    now: datetime,
    hasher: PasswordHasher | None = None,
) -> None:
    """Replace a password (and unlock the account); signs out its other sessions."""
    hasher = hasher or default_hasher()
    problems = password_problems(password)
    if problems:
        raise AccountError("\n".join(problems))
    row = await session.scalar(select(StaffUser).where(StaffUser.username == username))
    if row is None:
        raise AccountError(f"ユーザー名「{username}」は見つかりません")
    row.password_hash = await asyncio.to_thread(hasher.hash, password)
    row.failed_logins = 0
    row.locked_until = None
    row.updated_at = now
    await session.execute(delete(StaffSession).where(StaffSession.staff_user_id == row.id))
    await session.flush()


# --- sessions -----------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def start_session(
    session: AsyncSession, user: StaffInfo, *, now: datetime, lifetime: timedelta
) -> tuple[str, SessionInfo]:
    """A new login session: the cookie token (returned once, stored only as SHA-256)."""
    await session.execute(delete(StaffSession).where(StaffSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    row = StaffSession(
        token_hash=token_hash(token),
        staff_user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    await session.flush()
    return token, SessionInfo(
        id=row.id,
        user=user,
        csrf_token=row.csrf_token,
        expires_at=row.expires_at,
        last_seen_at=row.last_seen_at,
    )


async def lookup_session(session: AsyncSession, token: str, *, now: datetime) -> SessionInfo | None:
    """The live session of a cookie token (None when unknown, expired or the user disabled)."""
    if not token or len(token) > 200:
        return None
    result = await session.execute(
        select(StaffSession, StaffUser)
        .join(StaffUser, StaffUser.id == StaffSession.staff_user_id)
        .where(StaffSession.token_hash == token_hash(token))
    )
    found = result.first()
    if found is None:
        return None
    row, user = found
    if row.expires_at <= now or not user.is_active:
        return None
    return SessionInfo(
        id=row.id,
        user=_info(user),
        csrf_token=row.csrf_token,
        expires_at=row.expires_at,
        last_seen_at=row.last_seen_at,
    )


async def touch_session(session: AsyncSession, session_id: int, *, now: datetime) -> None:
    await session.execute(
        update(StaffSession).where(StaffSession.id == session_id).values(last_seen_at=now)
    )


async def end_session(session: AsyncSession, token: str) -> None:
    await session.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash(token)))
