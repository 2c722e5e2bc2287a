"""The `madoguchi` command (see README "Command line" and DESIGN.md "Contracts")."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faq.redact import redact
from madoguchi.settings import Settings, load_settings

if TYPE_CHECKING:
    from madoguchi.app import AppContext


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


# -- commands --------------------------------------------------------------------------------


def cmd_run(settings: Settings, _args: argparse.Namespace) -> int:
    from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

    from madoguchi.app import serve

    try:
        asyncio.run(serve(settings))
    except TelegramUnauthorizedError:
        return _fail(
            "Telegram がボットのトークンを受け付けませんでした。BOT_TOKEN を確かめてください"
            "（BotFather で確認できます）。\n"
            "Telegram refused BOT_TOKEN (401 Unauthorized): check it with @BotFather."
        )
    except TelegramNetworkError as error:
        where = settings.telegram_api_base or "api.telegram.org"
        return _fail(
            f"Telegram（{where}）につながりませんでした。ネットワークを確かめてください。\n"
            f"Could not reach the Bot API at {where}: {error.message}"
        )
    return 0


def cmd_ask(settings: Settings, args: argparse.Namespace) -> int:
    from faq.service import answer_question
    from madoguchi.app import open_app

    async def ask() -> Any:
        async with open_app(settings) as context:
            return answer_question(context.faq_engine, args.question, settings.town)

    answer = asyncio.run(ask())
    if args.json:
        _print_json(answer.to_json())
        return 0
    if answer.status == "answered":
        print(f"【回答】{answer.question}（{answer.faq_id}、スコア {answer.score:.2f}）\n")
        print(answer.answer)
        if answer.url:
            print(f"\nくわしくは：{answer.url}")
    elif answer.status == "suggested":
        print("もしかして、次のご質問ですか？")
        for candidate in answer.candidates:
            print(f"  - {candidate.question}（{candidate.faq_id}、{candidate.score:.2f}）")
    else:
        town = settings.town
        print("お答えできませんでした。")
        print(f"{town.counter_name}（電話 {town.counter_phone}、{town.counter_hours}）へどうぞ。")
    return 0


def cmd_faq_import(settings: Settings, args: argparse.Namespace) -> int:
    from faq.csv_io import FaqCsvError, import_faq_csv
    from madoguchi.app import open_app
    from madoguchi.db import session_scope

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as error:
        return _fail(f"ファイルを開けませんでした：{path}（{error.strerror}）")

    async def run_import() -> Any:
        async with open_app(settings) as context, session_scope(context.session_factory) as s:
            return await import_faq_csv(s, data, actor=args.actor, encoding=args.encoding)

    try:
        report = asyncio.run(run_import())
    except FaqCsvError as error:
        print(str(error), file=sys.stderr)
        print("何も変更していません。", file=sys.stderr)
        return 1
    print(
        f"取り込みました：新規 {len(report.created)} 件、更新 {len(report.updated)} 件、"
        f"変更なし {len(report.unchanged)} 件"
    )
    return 0


def cmd_faq_export(settings: Settings, args: argparse.Namespace) -> int:
    from faq.csv_io import export_faq_csv
    from faq.store import FaqError
    from madoguchi.app import open_app

    async def run_export() -> bytes:
        async with open_app(settings) as context, context.session_factory() as session:
            return await export_faq_csv(session, encoding=args.encoding, tz=settings.tzinfo)

    try:
        data = asyncio.run(run_export())
    except FaqError as error:
        return _fail(str(error))
    Path(args.file).write_bytes(data)
    print(f"書き出しました：{args.file}（{args.encoding}）")
    return 0


def cmd_faq_evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from faq.evaluate import evaluate, format_report
    from faq.service import create_engine_from_settings

    engine = create_engine_from_settings(settings)
    try:
        report = evaluate(engine, Path(args.faq), Path(args.queries))
    except (OSError, ValueError) as error:
        return _fail(f"evaluate: {error}")
    if args.json:
        _print_json(report.to_json())
    else:
        print(format_report(report))
    return 0


def cmd_faq_vectors(settings: Settings, args: argparse.Namespace) -> int:
    """Build the word-vector table from the ja_ginza wheel (downloaded from PyPI unless given).

    An install step (`make` runs it), never done by the running app.
    """
    import subprocess
    import tempfile
    import zipfile

    from faq.wordvectors import JA_GINZA_REQUIREMENT, build_table, load_word_vectors

    folder = Path(args.out or settings.faq_word_vectors or "")
    if str(folder) == ".":  # Path("") is "." too: no folder given
        return _fail("vectors: no folder (--out or MADOGUCHI_FAQ_WORD_VECTORS)")
    if not args.force and load_word_vectors(folder) is not None:
        print(f"word vectors already in {folder} (--force builds them again)")
        return 0
    with tempfile.TemporaryDirectory() as download:
        wheel = Path(args.wheel) if args.wheel else None
        if wheel is None:
            print(f"downloading {JA_GINZA_REQUIREMENT} from PyPI (about 60 MB) ...")
            command = [sys.executable, "-m", "pip", "download", JA_GINZA_REQUIREMENT]
            command += ["--no-deps", "--only-binary", ":all:", "--quiet", "-d", download]
            command += ["--disable-pip-version-check"]
            if subprocess.run(command, check=False).returncode != 0:
                return _fail("vectors: the download failed; the engine works without vectors")
            wheel = next(Path(download).glob("*.whl"), None)
            if wheel is None:
                return _fail("vectors: pip downloaded no wheel")
        try:
            words = build_table(wheel, folder)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            return _fail(f"vectors: {wheel}: not a usable ja_ginza wheel ({error})")
    print(f"word vectors for {words} words written to {folder}")
    return 0


def cmd_faq_bench(settings: Settings, args: argparse.Namespace) -> int:
    from faq.bench import format_run, run

    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    report = run(sizes, args.queries, settings.faq_word_vectors)
    if args.json:
        _print_json(report)
    else:
        print(format_run(report))
    return 0


def cmd_bench_bot(settings: Settings, args: argparse.Namespace) -> int:
    """Updates per second through the whole bot path, measured against the fake Bot API."""
    import tempfile

    if args.questions < 1 or args.residents < 1 or args.workers < 1:
        return _fail("--questions, --residents and --workers must be at least 1")
    if args.workers > 1 and args.in_process:
        return _fail("--workers and --in-process do not go together")
    with tempfile.TemporaryDirectory(prefix="madoguchi-bench-") as scratch:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(scratch) / 'bench.sqlite3'}"
        bench_settings = settings.model_copy(
            update={"database_url": url, "bot_token": None, "webhook_url": None}
        )
        report = asyncio.run(
            _bench_bot(
                bench_settings,
                questions=args.questions,
                residents=args.residents,
                in_process=args.in_process,
                workers=args.workers,
            )
        )
    report["database"]["temporary"] = args.database_url is None
    if args.json:
        _print_json(report)
        return 0
    database = report["database"]
    where = "a temporary SQLite file" if database["temporary"] else "--database-url"
    print(
        f"bench bot: {report['updates']} FAQ questions from {report['residents']} residents "
        "(fake Bot API → polling → dispatcher → engine → database log → sendMessage)"
    )
    print(f"  database:     {database['backend']} {database['version']} ({where})")
    print(
        f"  throughput:   {report['updates_per_s']:.0f} updates/s "
        f"({report['updates']} in {report['elapsed_s']:.2f} s)"
    )
    print(
        f"  latency:      p50 {report['latency_ms_p50']:.1f} ms, p99 "
        f"{report['latency_ms_p99']:.1f} ms (update queued → reply received by the fake API)"
    )
    if report["bot_cpu_ms_per_update"] is not None:
        processes = (
            "the bot process, all its threads"
            if args.workers == 1
            else f"the bot process and its {args.workers} workers"
        )
        print(
            f"  bot CPU:      {report['bot_cpu_ms_per_update']:.2f} ms per update "
            f"(user + system time of {processes})"
        )
    outcomes = ", ".join(f"{name} {count}" for name, count in report["outcomes"].items())
    print(f"  replies:      {outcomes}")
    machine = report["machine"]
    print(
        f"  ran on:       Python {machine['python']}, aiogram {machine['aiogram']}, "
        f"{machine['cores']} cores, {machine['platform']}; the fake Bot API and the "
        f"residents in {'the same process as the bot' if args.in_process else 'a separate process'}"
    )
    return 0


BENCH_TOKEN = "100200:BENCH"
BENCH_FIRST_USER_ID = 900_000_000


async def _drive_residents(api: Any, *, questions: int, residents: int) -> dict[str, Any]:
    """K residents, each asking its next FAQ question as soon as the last one is answered."""
    import time

    from bot import messages
    from faq.faq_file import read_faq_jsonl
    from faq.seed import CURATED_FAQ_PATH

    pool = [entry.question for entry in read_faq_jsonl(CURATED_FAQ_PATH) if entry.published]
    latencies: list[float] = []
    outcomes = {"answered": 0, "suggested": 0, "fallback": 0, "other": 0}

    def outcome(reply: str) -> str:
        if reply.startswith("■ "):
            return "answered"
        if reply == messages.SUGGESTIONS:
            return "suggested"
        return "fallback" if "お答えできませんでした" in reply else "other"

    async def resident(user_id: int, share: list[str], *, measure: bool) -> None:
        for question in share:
            started = time.perf_counter()
            api.send_text(user_id, question)
            (reply,) = await api.wait_for_messages(user_id, 1, timeout=60)
            if measure:
                latencies.append(time.perf_counter() - started)
                outcomes[outcome(reply.text or "")] += 1

    def shares(count: int) -> list[list[str]]:
        asked = [pool[i % len(pool)] for i in range(count)]
        return [asked[r::residents] for r in range(residents)]

    first = BENCH_FIRST_USER_ID
    # Warm-up (not measured): every resident's first contact, caches, connections.
    await asyncio.gather(
        *(resident(first + r, s, measure=False) for r, s in enumerate(shares(residents)))
    )
    started = time.perf_counter()
    await asyncio.gather(
        *(resident(first + r, s, measure=True) for r, s in enumerate(shares(questions)))
    )
    elapsed = time.perf_counter() - started
    return {"latencies": latencies, "outcomes": outcomes, "elapsed": elapsed}


def _bench_fake_api_process(connection: Any, questions: int, residents: int) -> None:
    """Child process of `bench bot`: the fake Bot API (Telegram's side) and the residents."""
    from bot.fake_api import FakeBotAPI

    async def main() -> dict[str, Any]:
        api = FakeBotAPI(token=BENCH_TOKEN)
        connection.send(await api.start())
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, connection.recv)  # the bot is polling
        try:
            result = await _drive_residents(api, questions=questions, residents=residents)
            connection.send(result)
            await loop.run_in_executor(None, connection.recv)  # the bot has stopped polling
        finally:
            await api.stop()
        return result

    asyncio.run(main())


async def _bench_against_child_process(
    context: AppContext, *, questions: int, residents: int, workers: int
) -> tuple[dict[str, Any], float | None]:
    """The bot polls a fake Bot API run with the residents in a child process, as Telegram
    would be: the run's figures and the CPU milliseconds per update of the bot's processes
    (this one and its workers), None where a worker's could not be read."""
    import multiprocessing

    from bot.runner import BotRuntime

    loop = asyncio.get_running_loop()
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    child = spawn.Process(
        target=_bench_fake_api_process, args=(theirs, questions, residents), daemon=True
    )
    child.start()
    try:
        base = await loop.run_in_executor(None, ours.recv)
        runtime = BotRuntime(context, token=BENCH_TOKEN, api_base=base, workers=workers)
        await runtime.start_polling()
        try:
            pids: list[int | None] = [None, *runtime.worker_pids()]
            cpu_before = [_process_cpu_seconds(pid) for pid in pids]
            ours.send("go")
            run: dict[str, Any] = await loop.run_in_executor(None, ours.recv)
            # The bot's own CPU per update (warm-up included): unlike updates/s, it hardly
            # moves when other work shares the machine.
            cpu_after = [_process_cpu_seconds(pid) for pid in pids]
            cpu_ms: float | None = None
            used = [
                after - before
                for before, after in zip(cpu_before, cpu_after, strict=True)
                if before is not None and after is not None
            ]
            if len(used) == len(pids):
                cpu_ms = sum(used) * 1000 / (questions + residents)
        finally:
            await runtime.stop()
            ours.send("stopped")
    finally:
        await loop.run_in_executor(None, child.join, 30)
        if child.is_alive():
            child.kill()
    return run, cpu_ms


async def _bench_bot(
    settings: Settings, *, questions: int, residents: int, in_process: bool, workers: int
) -> dict[str, Any]:
    import os
    import platform

    import aiogram
    from sqlalchemy import text

    from bot.fake_api import FakeBotAPI
    from bot.runner import BotRuntime
    from madoguchi.app import open_app

    bot_cpu_ms: float | None = None
    async with open_app(settings) as context:
        async with context.db_engine.connect() as connection:
            backend = connection.dialect.name
            query = "SELECT sqlite_version()" if backend == "sqlite" else "SHOW server_version"
            version = str((await connection.execute(text(query))).scalar())
        if in_process:
            api = FakeBotAPI(token=BENCH_TOKEN)
            runtime = BotRuntime(context, token=api.token, api_base=await api.start())
            await runtime.start_polling()
            try:
                run = await _drive_residents(api, questions=questions, residents=residents)
            finally:
                await runtime.stop()
                await api.stop()
        else:
            run, bot_cpu_ms = await _bench_against_child_process(
                context, questions=questions, residents=residents, workers=workers
            )
    latencies = sorted(run["latencies"])
    elapsed = run["elapsed"]

    def percentile(share: float) -> float:
        index = min(len(latencies) - 1, max(0, round(share * len(latencies)) - 1))
        return round(float(latencies[index]) * 1000, 2)

    return {
        "updates": questions,
        "residents": residents,
        "elapsed_s": round(elapsed, 3),
        "updates_per_s": round(questions / elapsed, 1),
        "latency_ms_p50": percentile(0.50),
        "latency_ms_p99": percentile(0.99),
        "outcomes": {name: count for name, count in run["outcomes"].items() if count},
        "bot_cpu_ms_per_update": None if bot_cpu_ms is None else round(bot_cpu_ms, 2),
        "database": {"backend": backend, "version": version},
        "fake_api": "in-process" if in_process else "separate process",
        "bot_workers": workers,
        "machine": {
            "python": platform.python_version(),
            "aiogram": aiogram.__version__,
            "cores": os.cpu_count() or 1,
            "platform": f"{platform.system()} {platform.machine()}",
        },
    }


def _process_cpu_seconds(pid: int | None = None) -> float | None:
    """User + system CPU seconds of this process, or of process `pid` (None if unknown)."""
    import os
    import resource

    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        # /proc/PID/stat: fields 14 and 15 (after the command in parentheses) are utime, stime.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _read_new_password() -> str | None:
    """The new password: asked twice without echo on a terminal, else one line of stdin."""
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass("パスワード（10文字以上）: ")
        second = getpass.getpass("もう一度: ")
        if first != second:
            print("2回の入力が一致しませんでした。", file=sys.stderr)
            return None
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _change_staff(settings: Settings, args: argparse.Namespace, *, create: bool) -> int:
    """`staff add` and `staff passwd`: read a new password, then create or update the login."""
    from admin import audit
    from admin.accounts import (
        AccountError,
        create_staff,
        password_problems,
        set_password,
        username_problems,
    )
    from madoguchi.db import (
        create_engine,
        create_session_factory,
        session_scope,
        upgrade_database,
        utcnow,
    )

    problems = username_problems(args.username) if create else []
    if problems:
        return _fail("\n".join(problems))
    password = _read_new_password()
    if password is None:
        return 1
    problems = password_problems(password)
    if problems:
        return _fail("\n".join(problems))

    async def change() -> None:
        await upgrade_database(settings.database_url)
        engine = create_engine(settings.database_url)
        try:
            async with session_scope(create_session_factory(engine)) as session:
                if create:
                    user = await create_staff(
                        session,
                        args.username,
                        password,
                        display_name=args.display_name,
                        now=utcnow(),
                    )
                    target, action = str(user.id), "staff.create"
                else:
                    await set_password(session, args.username, password, now=utcnow())
                    target, action = args.username, "staff.password"
                await audit.record(
                    session, "cli", action, "staff", target, {"username": args.username}
                )
        finally:
            await engine.dispose()

    try:
        asyncio.run(change())
    except AccountError as error:
        return _fail(str(error))
    if create:
        print(f"職員アカウントを作成しました：{args.username}")
    else:
        print(f"パスワードを変更しました（ロックも解除しました）：{args.username}")
    return 0


def cmd_staff_add(settings: Settings, args: argparse.Namespace) -> int:
    return _change_staff(settings, args, create=True)


def cmd_staff_passwd(settings: Settings, args: argparse.Namespace) -> int:
    """For a forgotten password or a locked account: a new password, all sessions ended."""
    return _change_staff(settings, args, create=False)


def cmd_db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    from madoguchi.db import upgrade_database_sync

    upgrade_database_sync(settings.database_url)
    print("データベースを最新の形にしました / database migrated")
    return 0


# -- parser ----------------------------------------------------------------------------------


def _add_staff_commands(commands: Any) -> None:
    staff = commands.add_parser("staff", help="staff accounts of the web admin")
    staff_commands = staff.add_subparsers(
        dest="staff_command", required=True, metavar="STAFF_COMMAND"
    )
    staff_add = staff_commands.add_parser(
        "add",
        help="create a staff login; the password is asked twice without echo, or read "
        "from stdin (one line) when stdin is not a terminal",
    )
    staff_add.add_argument("username", help="half-width letters, digits, . _ -")
    staff_add.add_argument("--display-name", default="", help="name shown in the admin")
    staff_add.set_defaults(handler=cmd_staff_add)
    staff_passwd = staff_commands.add_parser(
        "passwd", help="set a new password for a staff login (also unlocks it)"
    )
    staff_passwd.add_argument("username")
    staff_passwd.set_defaults(handler=cmd_staff_passwd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="madoguchi",
        description="窓口: FAQ chatbot, smartphone classes and staff admin for a town",
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="start the web server (and bot): everything")
    run.set_defaults(handler=cmd_run)

    ask = commands.add_parser("ask", help="what the bot would answer to a question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.set_defaults(handler=cmd_ask)

    faq = commands.add_parser("faq", help="FAQ data: import, export, evaluate, bench")
    faq_commands = faq.add_subparsers(dest="faq_command", required=True, metavar="FAQ_COMMAND")

    imp = faq_commands.add_parser("import", help="create or update entries from a CSV file")
    imp.add_argument("file")
    imp.add_argument("--encoding", choices=["auto", "utf-8-sig", "cp932"], default="auto")
    imp.add_argument("--actor", default="CSV取り込み", help="name kept in the revision history")
    imp.set_defaults(handler=cmd_faq_import)

    exp = faq_commands.add_parser("export", help="write every entry to a CSV file (Excel)")
    exp.add_argument("file")
    exp.add_argument("--encoding", choices=["utf-8-sig", "cp932"], default="utf-8-sig")
    exp.set_defaults(handler=cmd_faq_export)

    ev = faq_commands.add_parser("evaluate", help="retrieval quality on a labelled set")
    ev.add_argument("--faq", required=True, help="FAQ entries, JSON Lines")
    ev.add_argument("--queries", required=True, help="labelled questions, JSON Lines")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(handler=cmd_faq_evaluate)

    vec = faq_commands.add_parser(
        "vectors", help="build the word-vector table (install step; downloads from PyPI)"
    )
    vec.add_argument("--wheel", help="a ja_ginza wheel already on disk (no download)")
    vec.add_argument("--out", help="table folder (default: MADOGUCHI_FAQ_WORD_VECTORS)")
    vec.add_argument("--force", action="store_true", help="build even if a table is there")
    vec.set_defaults(handler=cmd_faq_vectors)

    bench = faq_commands.add_parser("bench", help="engine speed and memory by FAQ size")
    bench.add_argument("--sizes", default="2000,20000")
    bench.add_argument("--queries", type=int, default=1000)
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(handler=cmd_faq_bench)

    bench_group = commands.add_parser("bench", help="end-to-end benchmarks")
    bench_commands = bench_group.add_subparsers(
        dest="bench_command", required=True, metavar="BENCH_COMMAND"
    )
    bench_bot = bench_commands.add_parser(
        "bot", help="updates per second through the whole bot path (fake Bot API)"
    )
    bench_bot.add_argument("--questions", type=int, default=3000, help="FAQ questions to send")
    bench_bot.add_argument("--residents", type=int, default=50, help="simulated residents")
    bench_bot.add_argument(
        "--database-url",
        default=None,
        help="a throwaway database to run on (default: a temporary SQLite file); it is "
        "migrated and filled with bench residents and question logs",
    )
    bench_bot.add_argument(
        "--in-process",
        action="store_true",
        help="run the fake Bot API on the bot's own event loop (default: a separate process, "
        "as Telegram is)",
    )
    bench_bot.add_argument(
        "--workers",
        type=int,
        default=1,
        help="bot worker processes, as MADOGUCHI_BOT_WORKERS (default 1: the bot is one process)",
    )
    bench_bot.add_argument("--json", action="store_true")
    bench_bot.set_defaults(handler=cmd_bench_bot)

    _add_staff_commands(commands)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    upgrade = db_commands.add_parser("upgrade", help="apply migrations (start-up does it too)")
    upgrade.set_defaults(handler=cmd_db_upgrade)
    return parser


# Loggers that print SQL statements with their parameters or request bodies — residents'
# questions — at INFO or DEBUG (SQLAlchemy's SQL echo is switched on by INFO).
PRIVATE_DATA_LOGGERS = ("sqlalchemy.engine", "sqlalchemy.pool", "aiosqlite", "aiohttp.client")


class RedactingFormatter(logging.Formatter):
    """Masks phone numbers, long digit runs and e-mail addresses in messages and tracebacks.

    A database error can quote the row it refused (PostgreSQL's "Failing row contains (…)"),
    and an exception can carry what a resident typed; the log must not keep either.
    """

    def format(self, record: logging.LogRecord) -> str:
        copy = logging.makeLogRecord(record.__dict__)
        copy.msg, copy.args = redact(record.getMessage()), None
        if copy.exc_info and not copy.exc_text:
            copy.exc_text = self.formatException(copy.exc_info)
        if copy.exc_text:
            copy.exc_text = redact(copy.exc_text)
        copy.exc_info = None  # formatted above, from the redacted text
        return super().format(copy)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Residents' data stays out of the logs whatever the level asked for.
    for name in PRIVATE_DATA_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # APScheduler logs every tick of the reminder job at INFO.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    configure_logging(args.log_level or settings.log_level)
    # Keep the CLI output readable: library chatter only when asked for.
    if not args.log_level:
        logging.getLogger("alembic").setLevel(logging.WARNING)
        logging.getLogger("faq").setLevel(logging.WARNING)
        logging.getLogger("madoguchi").setLevel(
            logging.INFO if args.command == "run" else logging.WARNING
        )
        if args.command == "bench":
            logging.getLogger("aiogram").setLevel(logging.WARNING)
    handler = args.handler
    try:
        return int(handler(settings, args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as Unix tools do.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
