"""The login form's signing key: shared through MADOGUCHI_ADMIN_SECRET, else per process."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from admin.web import _login_key
from madoguchi.app import AppContext
from madoguchi.settings import Settings


def _context(**overrides: object) -> AppContext:
    settings = Settings(**overrides)  # type: ignore[arg-type]
    return cast(AppContext, SimpleNamespace(settings=settings))


def test_instances_with_one_secret_share_the_key(isolated_settings_env: object) -> None:
    first = _login_key(_context(admin_secret="a-long-random-string-for-the-town"))
    second = _login_key(_context(admin_secret="a-long-random-string-for-the-town"))
    other = _login_key(_context(admin_secret="another-long-random-string"))
    assert first == second
    assert first != other
    assert b"a-long-random-string" not in first  # derived, not the secret itself


def test_without_a_secret_each_process_gets_its_own_key(isolated_settings_env: object) -> None:
    assert _login_key(_context()) != _login_key(_context())
