"""The `madoguchi` command (see README "Command line" and DESIGN.md "Contracts")."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from madoguchi.settings import Settings, load_settings


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


# -- commands --------------------------------------------------------------------------------


def cmd_run(settings: Settings, _args: argparse.Namespace) -> int:
    from madoguchi.app import serve

    asyncio.run(serve(settings))
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


def cmd_faq_bench(_settings: Settings, args: argparse.Namespace) -> int:
    from faq.bench import format_run, run

    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    report = run(sizes, args.queries)
    if args.json:
        _print_json(report)
    else:
        print(format_run(report))
    return 0


def cmd_db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    from madoguchi.db import upgrade_database_sync

    upgrade_database_sync(settings.database_url)
    print("データベースを最新の形にしました / database migrated")
    return 0


# -- parser ----------------------------------------------------------------------------------


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

    bench = faq_commands.add_parser("bench", help="engine speed and memory by FAQ size")
    bench.add_argument("--sizes", default="2000,20000")
    bench.add_argument("--queries", type=int, default=1000)
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(handler=cmd_faq_bench)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    upgrade = db_commands.add_parser("upgrade", help="apply migrations (start-up does it too)")
    upgrade.set_defaults(handler=cmd_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    logging.basicConfig(
        level=(args.log_level or settings.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Keep the CLI output readable: library chatter only when asked for.
    if not args.log_level:
        logging.getLogger("alembic").setLevel(logging.WARNING)
        logging.getLogger("faq").setLevel(logging.WARNING)
        logging.getLogger("madoguchi").setLevel(
            logging.INFO if args.command == "run" else logging.WARNING
        )
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
