"""`madoguchi staff add` and `staff passwd`: the password from stdin (not a terminal), checked, hashed; nothing
secret printed; the account logs in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from admin.accounts import authenticate
from admin.models import AuditLogEntry, StaffUser
from madoguchi.db import create_engine, create_session_factory, utcnow

PASSWORD = "kawasemi-2026-blue"


def run(
    cli_env: dict[str, str], tmp_path: Path, *args: str, stdin: str, command: str = "add"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "madoguchi.cli", "staff", command, *args],
        input=stdin,
        env=cli_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


async def test_staff_add_from_stdin(cli_env: dict[str, str], tmp_path: Path) -> None:
    done = run(cli_env, tmp_path, "suzuki", "--display-name", "鈴木 一郎", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert "職員アカウントを作成しました：suzuki" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr

    again = run(cli_env, tmp_path, "suzuki", stdin=PASSWORD + "\n")
    assert again.returncode == 1
    assert "すでに使われています" in again.stderr
    short = run(cli_env, tmp_path, "sato", stdin="short\n")
    assert short.returncode == 1
    assert "10文字以上" in short.stderr
    bad = run(cli_env, tmp_path, "佐藤", stdin=PASSWORD + "\n")
    assert bad.returncode == 1

    database = tmp_path / "madoguchi.sqlite3"
    engine = create_engine(cli_env["MADOGUCHI_DATABASE_URL"])
    try:
        async with create_session_factory(engine)() as db:
            users = (await db.scalars(select(StaffUser))).all()
            assert [(u.username, u.display_name) for u in users] == [("suzuki", "鈴木 一郎")]
            audit = (await db.scalars(select(AuditLogEntry))).one()
            assert (audit.actor, audit.action) == ("cli", "staff.create")
            result = await authenticate(db, "suzuki", PASSWORD, now=utcnow())
            assert result.ok
    finally:
        await engine.dispose()
    for path in tmp_path.glob("madoguchi.sqlite3*"):
        assert PASSWORD.encode() not in path.read_bytes()
    assert database.exists()


async def test_staff_passwd_sets_a_new_password_and_unlocks(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    assert run(cli_env, tmp_path, "suzuki", stdin=PASSWORD + "\n").returncode == 0
    engine = create_engine(cli_env["MADOGUCHI_DATABASE_URL"])
    try:
        async with create_session_factory(engine)() as db:  # ten wrong passwords: locked
            for _ in range(10):
                await authenticate(db, "suzuki", "wrong-password-1", now=utcnow())
            await db.commit()
            user = (await db.scalars(select(StaffUser))).one()
            assert user.locked_until is not None
        new_password = "yamasemi-2026-green"
        done = run(cli_env, tmp_path, "suzuki", stdin=new_password + "\n", command="passwd")
        assert done.returncode == 0, done.stderr
        assert "パスワードを変更しました" in done.stdout
        assert new_password not in done.stdout + done.stderr
        unknown = run(cli_env, tmp_path, "nobody", stdin=new_password + "\n", command="passwd")
        assert unknown.returncode == 1
        assert "見つかりません" in unknown.stderr
        async with create_session_factory(engine)() as db:
            assert not (await authenticate(db, "suzuki", PASSWORD, now=utcnow())).ok
            assert (await authenticate(db, "suzuki", new_password, now=utcnow())).ok
            actions = [a.action for a in (await db.scalars(select(AuditLogEntry))).all()]
            assert "staff.password" in actions
    finally:
        await engine.dispose()
