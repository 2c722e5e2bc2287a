"""Several bot processes: one receives the updates, `MADOGUCHI_BOT_WORKERS` handle them.

One Python process handles some hundred updates a second and uses one core. With workers, the
main process only receives updates (long polling, or the webhook) and hands each one, as the
JSON Telegram sent, to a worker process over its stdin; each worker runs the same dispatcher,
handlers, FAQ engine and database as a single process would, and answers Telegram itself.

- All updates of one resident go to the same worker, in order, so a resident's steps (and the
  in-memory FSM state) stay together.
- Workers pick up staff edits of the FAQ from the database like any other instance
  (`keep_faq_in_step`); class seats are locked in the database, so they are never overbooked
  across processes either. Reminders are sent by the main process only.
- A worker that dies is started again, and the update that found it dead is handed to the new
  one. Stopping closes the workers' stdin: each finishes the updates it has, then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.utils.backoff import Backoff, BackoffConfig
from aiohttp import web
from pydantic import SecretStr

from madoguchi.settings import Settings

log = logging.getLogger(__name__)

# Longest line a worker reads: an update with a 4,096-character message, every character
# escaped in JSON, fits many times over.
MAX_UPDATE_BYTES = 1 << 20
# How long a worker may take to start (imports, Sudachi dictionary, FAQ index).
START_TIMEOUT_SECONDS = 300.0
# Long-polling timeout of getUpdates, as aiogram's own polling uses.
POLLING_TIMEOUT_SECONDS = 10
READY_LINE = b"madoguchi-worker-ready\n"
# Pauses after a failed getUpdates: 1 s, doubling, at most 30 s.
POLLING_BACKOFF = BackoffConfig(min_delay=1.0, max_delay=30.0, factor=2.0, jitter=0.0)
# The worker's configuration (settings, token): in its environment, as stdin carries updates.
CONFIG_VARIABLE = "MADOGUCHI_WORKER_CONFIG"


def settings_payload(settings: Settings) -> dict[str, Any]:
    """The settings as plain JSON values, secrets included (for the workers' stdin only)."""
    payload: dict[str, Any] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        payload[name] = value
    return json.loads(json.dumps(payload, default=str))  # type: ignore[no-any-return]


def resident_key(update: Mapping[str, Any]) -> int:
    """Who an update is from (the Telegram user, else the chat), for choosing its worker."""
    for value in update.values():
        if not isinstance(value, Mapping):
            continue
        for holder in ("from", "user", "chat"):
            who = value.get(holder)
            if isinstance(who, Mapping) and isinstance(who.get("id"), int):
                return int(who["id"])
    update_id = update.get("update_id")
    return update_id if isinstance(update_id, int) else 0


class WorkerProcess:
    """One worker: `python -m bot.workers`, fed one JSON update per line on its stdin."""

    def __init__(self, number: int, config: str) -> None:
        self.number = number
        self._config = config
        self._process: asyncio.subprocess.Process | None = None
        self._output: asyncio.Task[None] | None = None
        self._restart_lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.workers",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, CONFIG_VARIABLE: self._config},
        )
        self._process = process
        assert process.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT_SECONDS):
                while (line := await process.stdout.readline()) != READY_LINE:
                    if not line:
                        raise RuntimeError(
                            f"bot worker {self.number} exited while starting "
                            f"(exit code {await process.wait()}); see its log above"
                        )
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        # Keep reading what the worker prints, so a full pipe never stops it.
        self._output = asyncio.create_task(_drain(process.stdout))
        log.info("bot worker %d started (pid %d)", self.number, process.pid)

    async def send(self, line: bytes) -> None:
        process = self._process
        if process is None or process.stdin is None:
            raise ConnectionResetError(f"bot worker {self.number} is not running")
        process.stdin.write(line)
        await process.stdin.drain()

    async def restart(self) -> None:
        """Start the worker again unless it runs (several updates may find it dead at once)."""
        async with self._restart_lock:
            if not self.running:
                await self.stop(timeout=1.0)
                await self.start()

    async def stop(self, timeout: float) -> None:
        """Close stdin (the worker finishes its updates and exits); kill it after `timeout`."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
            with contextlib.suppress(ConnectionError):
                await process.stdin.wait_closed()
        try:
            async with asyncio.timeout(timeout):
                code = await process.wait()
        except TimeoutError:
            log.warning("bot worker %d did not stop in %.0f s: killed", self.number, timeout)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            code = await process.wait()
        if self._output is not None:
            await self._output
            self._output = None
        if code not in (0, None):
            log.warning("bot worker %d exited with code %s", self.number, code)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


class WorkerPool:
    """The worker processes, and which update goes to which."""

    def __init__(self, settings: Settings, *, token: str, api_base: str | None, count: int) -> None:
        if count < 1:
            raise ValueError("a worker pool needs at least one worker")
        config = {
            "settings": settings_payload(settings),
            "token": token,
            "api_base": api_base,
            # Workers log like this process does (its level may differ from the settings').
            "log_level": logging.getLevelName(logging.getLogger().getEffectiveLevel()),
        }
        self.workers = [WorkerProcess(number, json.dumps(config)) for number in range(count)]

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers if w.pid is not None]

    async def start(self) -> None:
        try:
            await asyncio.gather(*(worker.start() for worker in self.workers))
        except BaseException:
            await self.stop(timeout=5.0)
            raise

    async def dispatch(self, update: Mapping[str, Any]) -> None:
        """Hand one update (Telegram's JSON) to the worker of its resident."""
        number = resident_key(update) % len(self.workers)
        worker = self.workers[number]
        line = json.dumps(update, ensure_ascii=False).encode() + b"\n"
        try:
            await worker.send(line)
            return
        except ConnectionError:
            log.error("bot worker %d has stopped; starting it again", number)
        await worker.restart()
        await worker.send(line)

    async def stop(self, timeout: float) -> None:
        await asyncio.gather(*(worker.stop(timeout) for worker in self.workers))


async def poll_into(
    pool: WorkerPool,
    *,
    token: str,
    api_base: str | None,
    allowed_updates: list[str],
) -> None:
    """Long-poll getUpdates for ever and hand every update to the pool (cancel to stop).

    Errors (network, 5xx, 409 while another instance polls) are logged and retried with a
    growing pause (aiogram's Backoff, as its own polling); a 429 waits as long as Telegram
    asks.
    """
    server = TelegramAPIServer.from_base(api_base) if api_base else PRODUCTION
    url = server.api_url(token=token, method="getUpdates")
    offset: int | None = None
    backoff = Backoff(POLLING_BACKOFF)
    timeout = aiohttp.ClientTimeout(total=POLLING_TIMEOUT_SECONDS + 30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while True:
            query: dict[str, Any] = {
                "timeout": POLLING_TIMEOUT_SECONDS,
                "allowed_updates": allowed_updates,
            }
            if offset is not None:
                query["offset"] = offset
            try:
                async with http.post(url, json=query) as response:
                    body = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                wait = next(backoff)
                log.warning("getUpdates failed (%s); again in %.0f s", type(error).__name__, wait)
                await asyncio.sleep(wait)
                continue
            if not isinstance(body, dict) or not body.get("ok"):
                delay = next(backoff)  # the pause grows after a 429 too
                wait = _retry_after(body) or delay
                code = body.get("error_code") if isinstance(body, dict) else None
                log.warning("getUpdates answered error %s; again in %.0f s", code, wait)
                await asyncio.sleep(wait)
                continue
            backoff.reset()
            for update in body.get("result") or []:
                if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
                    continue
                try:
                    await pool.dispatch(update)
                except Exception:
                    # No worker could take it (one fails to start): not confirmed, so the
                    # next getUpdates returns it again.
                    log.exception("could not hand update %d to a worker", update["update_id"])
                    await backoff.asleep()
                    break
                offset = update["update_id"] + 1


def _retry_after(body: Any) -> float | None:
    if isinstance(body, dict) and isinstance(body.get("parameters"), dict):
        value = body["parameters"].get("retry_after")
        if isinstance(value, int | float) and value >= 0:
            return float(value)
    return None


def webhook_handler(
    pool: WorkerPool, secret: str
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The webhook for a pool: checks Telegram's secret token, hands the update on, 200."""

    async def handle(request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.Response(status=401, text="Unauthorized")
        try:
            update = await request.json()
        except ValueError:
            return web.Response(status=400, text="not JSON")
        if not isinstance(update, dict):
            return web.Response(status=400, text="not an update")
        await pool.dispatch(update)
        return web.json_response({})

    return handle


# -- the worker process ----------------------------------------------------------------------


async def _serve_updates(config: Mapping[str, Any]) -> None:
    from aiogram.methods import TelegramMethod

    from bot.factory import create_bot, create_dispatcher
    from bot.runner import STOP_GRACE_SECONDS
    from madoguchi.app import keep_faq_in_step, open_app

    settings = Settings(**config["settings"])
    async with open_app(settings, seed=False) as context:
        bot = create_bot(config["token"], api_base=config["api_base"])
        dispatcher = create_dispatcher(context)
        stop = asyncio.Event()
        refresher = asyncio.create_task(
            keep_faq_in_step(context, stop, settings.faq_refresh_seconds)
        )
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_UPDATE_BYTES)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0)
        )
        handling: set[asyncio.Task[None]] = set()

        async def handle(update: dict[str, Any]) -> None:
            try:
                response = await dispatcher.feed_raw_update(bot, update)
                if isinstance(response, TelegramMethod):
                    await dispatcher.silent_call_request(bot=bot, result=response)
            except Exception:  # the error router answered what it could; the worker goes on
                log.exception("update %s failed", update.get("update_id"))

        await dispatcher.emit_startup(bot=bot, **dispatcher.workflow_data)
        sys.stdout.buffer.write(READY_LINE)
        sys.stdout.flush()
        try:
            while line := await reader.readline():
                try:
                    update = json.loads(line)
                except ValueError:
                    log.error("worker got a line that is not JSON; skipped")
                    continue
                task = asyncio.create_task(handle(update))
                handling.add(task)
                task.add_done_callback(handling.discard)
        finally:
            stop.set()
            # Each update's whole task, middlewares included: what is in flight.
            if handling:
                await asyncio.wait(handling, timeout=STOP_GRACE_SECONDS)
            await dispatcher.emit_shutdown(bot=bot, **dispatcher.workflow_data)
            await refresher
            await bot.session.close()
            await dispatcher.storage.close()


def main() -> None:
    """`python -m bot.workers`, started by a WorkerPool: updates on stdin, one per line."""
    from madoguchi.cli import configure_logging

    # Ctrl+C and systemd's SIGTERM reach the whole process group: the main process stops the
    # workers itself (closing their stdin), after the updates in flight are answered.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    config = json.loads(os.environ.pop(CONFIG_VARIABLE))
    configure_logging(str(config["log_level"]))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_updates(config))


if __name__ == "__main__":
    main()
