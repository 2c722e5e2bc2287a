"""The web server: the demo page and health check in-process, and `madoguchi run` for real."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from queue import Empty, Queue

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from madoguchi.app import AppContext, open_app
from madoguchi.settings import Settings
from madoguchi.web import MAX_QUESTION_CHARS, create_web_app

Client = TestClient[web.Request, web.Application]

COUNTER_PHONE = "0999-11-2222"
LOSS_HOTLINE = "0120-95-0178"  # in the answer of the curated entry mn-lost-stolen


@pytest.fixture
async def context(isolated_settings_env: Path) -> AsyncIterator[AppContext]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{isolated_settings_env / 'web.sqlite3'}",
        http_port=0,
        counter_phone=COUNTER_PHONE,
    )
    async with open_app(settings) as context:
        yield context


@pytest.fixture
async def client(context: AppContext) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_web_app(context))) as client:
        yield client


async def get_page(client: Client, query: str | None = None) -> str:
    if query is None:
        response = await client.get("/")
    else:  # as the page's form sends it
        response = await client.post("/", data={"q": query})
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.charset == "utf-8"
    return await response.text()


async def test_index_page(client: Client) -> None:
    page = await get_page(client)
    assert '<meta charset="utf-8">' in page
    assert "質問" in page
    assert "お答えできませんでした" not in page
    assert COUNTER_PHONE in page


async def test_question_about_a_lost_card_is_answered(
    client: Client,
) -> None:
    page = await get_page(client, "マイナンバーカードをなくしました")
    assert LOSS_HOTLINE in page
    assert "{counter_name}" not in page  # placeholders are filled in
    assert "お答えできませんでした" not in page


async def test_out_of_scope_question_gets_the_counter(
    client: Client,
) -> None:
    page = await get_page(client, "今日の天気は？")
    assert "お答えできませんでした" in page
    assert COUNTER_PHONE in page


async def test_question_is_escaped(client: Client) -> None:
    page = await get_page(client, '<script>alert("x")</script>')
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


async def test_long_question_is_cut_to_the_limit(client: Client) -> None:
    page = await get_page(client, "a" * 5_000)  # about 5 KB of URL: within aiohttp's limit
    assert "a" * MAX_QUESTION_CHARS in page
    assert "a" * (MAX_QUESTION_CHARS + 1) not in page


async def test_long_japanese_question_within_the_url_limit(client: Client) -> None:
    # 800 characters are 7,200 bytes percent-encoded: still under aiohttp's 8,190-byte line.
    page = await get_page(client, ("マイナンバーカードの暗証番号😀" * 100)[:800])
    assert "質問" in page


@pytest.mark.parametrize("length", [MAX_QUESTION_CHARS, 10_000])
async def test_very_long_japanese_question_does_not_error(client: Client, length: int) -> None:
    page = await get_page(client, ("マイナンバーカードの暗証番号😀" * 1000)[:length])
    assert "質問" in page


async def test_healthz(client: Client, context: AppContext) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    data = await response.json()
    assert data["status"] == "ok"
    assert data["faq_entries"] > 0
    assert data["faq_entries"] == len(context.faq_engine)


async def test_unknown_path_is_404(client: Client) -> None:
    response = await client.get("/no-such-page")
    assert response.status == 404


# -- black box: `madoguchi run` ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def server_process(cli_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    script = Path(sys.executable).parent / "madoguchi"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "madoguchi.cli"]
    env = {**cli_env, "MADOGUCHI_HTTP_PORT": str(free_port()), "MADOGUCHI_HTTP_HOST": "127.0.0.1"}
    with (tmp_path / "server.log").open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [*command, "run"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            encoding="utf-8",
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
            assert process.stdout is not None
            process.stdout.close()


def line_reader(process: subprocess.Popen[str]) -> Queue[str | None]:
    """Stdout lines in a queue (None at end of output), read by a daemon thread."""
    lines: Queue[str | None] = Queue()
    stream = process.stdout
    assert stream is not None

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def wait_for_line(lines: Queue[str | None], marker: str, timeout: float) -> tuple[str, list[str]]:
    """The first line containing marker, and every line read so far."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except Empty:
            pytest.fail(f"no {marker!r} within {timeout} s; output: {''.join(seen)}")
        if line is None:
            pytest.fail(f"output ended before {marker!r}; output: {''.join(seen)}")
        seen.append(line)
        if marker in line:
            return line, seen


def test_run_serves_and_stops_on_sigint(
    server_process: subprocess.Popen[str], tmp_path: Path
) -> None:
    lines = line_reader(server_process)
    running, _ = wait_for_line(lines, "madoguchi is running", timeout=30)
    url = running.split("madoguchi is running:", 1)[1].strip()
    assert url.startswith("http://127.0.0.1:")

    with urllib.request.urlopen(f"{url.rstrip('/')}/healthz", timeout=10) as response:
        assert response.status == 200
        health = json.loads(response.read().decode("utf-8"))
    assert health["status"] == "ok"
    assert health["faq_entries"] > 0

    with urllib.request.urlopen(url, timeout=10) as response:
        assert "charset=utf-8" in response.headers["Content-Type"]
        assert "質問" in response.read().decode("utf-8")

    os.kill(server_process.pid, signal.SIGINT)
    assert server_process.wait(timeout=10) == 0, (tmp_path / "server.log").read_text("utf-8")
    wait_for_line(lines, "stopped", timeout=5)
