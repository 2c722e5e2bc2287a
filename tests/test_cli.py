"""The `madoguchi` console script, run for real in a subprocess (DESIGN.md, "Command line")."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from faq.faq_file import read_faq_jsonl
from faq.seed import CURATED_FAQ_PATH

PIN_QUESTION = "マイナンバーカードの暗証番号を忘れました"
PIN_ID = "mn-pin-forgotten"
CONTRACT_KEYS = {"status", "faq_id", "question", "answer", "score", "candidates"}
EVALUATE_KEYS = {
    "faq_entries",
    "queries",
    "hit_at_1",
    "hit_at_5",
    "mrr_at_10",
    "index_build_s",
    "query_ms_p50",
    "query_ms_p99",
}


def madoguchi_command() -> list[str]:
    """The installed console script next to this interpreter (python -m as a fallback)."""
    script = Path(sys.executable).parent / "madoguchi"
    return [str(script)] if script.exists() else [sys.executable, "-m", "madoguchi.cli"]


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*madoguchi_command(), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def ask_json(question: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    data = json.loads(ok(run_cli("ask", question, "--json", env=env, cwd=cwd)))
    assert isinstance(data, dict)
    assert set(data) >= CONTRACT_KEYS
    return data


def test_console_script_is_installed() -> None:
    assert (Path(sys.executable).parent / "madoguchi").exists()


def test_pin_entry_is_in_the_curated_faq() -> None:
    entries = {e.id: e for e in read_faq_jsonl(CURATED_FAQ_PATH)}
    assert PIN_ID in entries
    assert entries[PIN_ID].published
    assert "暗証番号" in entries[PIN_ID].question


def test_ask_json_answers_from_the_seeded_curated_faq(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    data = ask_json(PIN_QUESTION, cli_env, tmp_path)
    assert data["status"] == "answered"
    assert data["faq_id"] == PIN_ID
    assert "暗証番号" in data["question"]
    assert data["answer"]
    assert "{counter_" not in data["answer"]  # placeholders are filled from the settings
    assert 0.0 <= data["score"] <= 1.0
    assert data["candidates"][0] == {
        "faq_id": PIN_ID,
        "question": data["question"],
        "score": data["score"],
    }
    assert (tmp_path / "madoguchi.sqlite3").is_file()


def test_ask_json_fallback(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = ask_json("今日の天気は？", cli_env, tmp_path)
    assert data["status"] == "fallback"
    assert data["faq_id"] is None
    assert data["answer"] is None
    assert isinstance(data["candidates"], list)


def test_ask_prints_japanese_text(cli_env: dict[str, str], tmp_path: Path) -> None:
    out = ok(run_cli("ask", PIN_QUESTION, env=cli_env, cwd=tmp_path))
    assert out.startswith("【回答】")
    assert PIN_ID in out
    assert "暗証番号" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_ask_fallback_text_names_the_counter(cli_env: dict[str, str], tmp_path: Path) -> None:
    env = {**cli_env, "MADOGUCHI_COUNTER_PHONE": "0999-11-2222"}
    out = ok(run_cli("ask", "今日の天気は？", env=env, cwd=tmp_path))
    assert "お答えできませんでした" in out
    assert "0999-11-2222" in out


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp932"])
def test_export_then_import_changes_nothing(
    cli_env: dict[str, str], tmp_path: Path, encoding: str
) -> None:
    exported = tmp_path / f"faq-{encoding}.csv"
    ok(run_cli("faq", "export", str(exported), "--encoding", encoding, env=cli_env, cwd=tmp_path))
    data = exported.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
    rows = list(csv.reader(io.StringIO(data.decode(encoding))))
    entries = len(rows) - 1
    assert entries == len(read_faq_jsonl(CURATED_FAQ_PATH))
    assert rows[0][:3] == ["ID", "問い合わせ文", "応答文"]

    out = ok(run_cli("faq", "import", str(exported), env=cli_env, cwd=tmp_path))
    assert f"新規 0 件、更新 0 件、変更なし {entries} 件" in out


def test_import_with_a_bad_row_changes_nothing(cli_env: dict[str, str], tmp_path: Path) -> None:
    before = tmp_path / "before.csv"
    ok(run_cli("faq", "export", str(before), env=cli_env, cwd=tmp_path))
    rows = list(csv.reader(io.StringIO(before.read_bytes().decode("utf-8-sig"))))
    header = rows[0]
    # A valid edit of the first entry, then a new row without its question.
    rows[1][header.index("応答文")] = "書き換えた回答です。"
    bad = dict.fromkeys(header, "")
    bad.update({"ID": "new-entry", "応答文": "質問の欄が空です。", "公開": "1"})
    rows.append([bad[name] for name in header])
    bad_row_number = len(rows)  # the header is row 1, as Excel numbers rows
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    edited = tmp_path / "edited.csv"
    edited.write_bytes(buffer.getvalue().encode("utf-8-sig"))

    result = run_cli("faq", "import", str(edited), env=cli_env, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{bad_row_number}行目" in result.stderr
    assert "何も変更していません" in result.stderr
    assert "Traceback" not in result.stderr

    after = tmp_path / "after.csv"
    ok(run_cli("faq", "export", str(after), env=cli_env, cwd=tmp_path))
    assert after.read_bytes() == before.read_bytes()


def test_import_of_a_missing_file_fails_in_japanese(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_cli("faq", "import", str(tmp_path / "nai.csv"), env=cli_env, cwd=tmp_path)
    assert result.returncode == 1
    assert "ファイルを開けませんでした" in result.stderr


def test_evaluate_json(cli_env: dict[str, str], tmp_path: Path) -> None:
    faq = tmp_path / "faq.jsonl"
    faq.write_text(
        "\n".join(
            json.dumps(record, ensure_ascii=False)
            for record in [
                {"id": "pin", "question": "暗証番号を忘れました", "answer": "窓口へ。"},
                {"id": "qr", "question": "QRコードの読み方", "answer": "カメラで。"},
                {"id": "lost", "question": "マイナンバーカードをなくした", "answer": "電話を。"},
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        '{"query": "暗証番号を忘れました", "relevant_ids": ["pin"], "style": "x"}\n'
        '{"query": "今日の天気は？", "relevant_ids": [], "expect": "fallback"}\n',
        encoding="utf-8",
    )
    out = ok(
        run_cli(
            "faq",
            "evaluate",
            "--faq",
            str(faq),
            "--queries",
            str(queries),
            "--json",
            env=cli_env,
            cwd=tmp_path,
        )
    )
    data = json.loads(out)  # exactly one JSON object and nothing else
    assert EVALUATE_KEYS | {"fallback_recall", "wrong_answer_rate"} <= set(data)
    assert data["faq_entries"] == 3
    assert data["queries"] == 2
    assert data["hit_at_1"] == 1.0
    # evaluate builds its engine in memory: the configured database is not even created.
    assert not (tmp_path / "madoguchi.sqlite3").exists()


def test_evaluate_malformed_queries_fails(cli_env: dict[str, str], tmp_path: Path) -> None:
    faq = tmp_path / "faq.jsonl"
    faq.write_text('{"id": "a", "question": "質問", "answer": "回答"}\n', encoding="utf-8")
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"query": "質問", "relevant_ids": ["a"]}\n{oops\n', encoding="utf-8")
    result = run_cli(
        "faq", "evaluate", "--faq", str(faq), "--queries", str(queries), env=cli_env, cwd=tmp_path
    )
    assert result.returncode == 1
    assert ":2:" in result.stderr


def test_bench_json(cli_env: dict[str, str], tmp_path: Path) -> None:
    out = ok(
        run_cli(
            "faq",
            "bench",
            "--sizes",
            "50,100",
            "--queries",
            "20",
            "--json",
            env=cli_env,
            cwd=tmp_path,
        )
    )
    data = json.loads(out)
    results = data["results"]
    assert [r["entries"] for r in results] == [50, 100]
    for result in results:
        assert result["queries"] == 20
        for key in ("index_build_s", "query_ms_p50", "query_ms_p99", "peak_rss_mb"):
            assert isinstance(result[key], float | int), key
            assert result[key] >= 0, key
        assert result["query_ms_p50"] <= result["query_ms_p99"]
        assert result["peak_rss_mb"] > 0
    assert data["machine"]["cores"] >= 1


def test_bench_bot_json(cli_env: dict[str, str], tmp_path: Path) -> None:
    out = ok(
        run_cli(
            "bench",
            "bot",
            "--questions",
            "40",
            "--residents",
            "4",
            "--json",
            env=cli_env,
            cwd=tmp_path,
        )
    )
    data = json.loads(out)
    assert data["updates"] == 40
    assert data["residents"] == 4
    assert data["updates_per_s"] > 0
    assert 0 < data["latency_ms_p50"] <= data["latency_ms_p99"]
    assert sum(data["outcomes"].values()) == 40  # every question got its reply
    assert data["outcomes"].get("answered", 0) > 20  # FAQ questions are mostly answered
    assert data["database"]["backend"] == "sqlite"
    assert data["database"]["temporary"] is True
    assert data["fake_api"] == "separate process"
    # The configured database is left alone: the bench runs on a temporary one.
    assert not (tmp_path / "madoguchi.sqlite3").exists()


def test_db_upgrade(cli_env: dict[str, str], tmp_path: Path) -> None:
    out = ok(run_cli("db", "upgrade", env=cli_env, cwd=tmp_path))
    assert "database migrated" in out
    assert (tmp_path / "madoguchi.sqlite3").is_file()
    ok(run_cli("db", "upgrade", env=cli_env, cwd=tmp_path))  # idempotent


def test_unknown_command_exits_with_usage(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("nonsense", env=cli_env, cwd=tmp_path)
    assert result.returncode == 2
    assert "usage" in result.stderr


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_ask_json_on_postgres(
    database_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    assert database_url.startswith("postgresql+asyncpg://")
    env = {**cli_env, "MADOGUCHI_DATABASE_URL": database_url}
    data = await asyncio.to_thread(ask_json, PIN_QUESTION, env, tmp_path)
    assert data["status"] == "answered"
    assert data["faq_id"] == PIN_ID
    # The second start does not seed again and answers the same.
    again = await asyncio.to_thread(ask_json, PIN_QUESTION, env, tmp_path)
    assert again == data


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING"])
def test_logging_never_shows_sql_or_request_bodies(level: str) -> None:
    """SQLAlchemy echoes SQL with its parameters (residents' questions) from INFO on."""
    import logging

    from madoguchi.cli import PRIVATE_DATA_LOGGERS, configure_logging

    configure_logging(level)
    for name in PRIVATE_DATA_LOGGERS:
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING
    assert not logging.getLogger("sqlalchemy.engine.Engine").isEnabledFor(logging.INFO)


def test_logged_messages_and_tracebacks_mask_phone_numbers() -> None:
    """PostgreSQL quotes a refused row in its error; a traceback must not keep a phone."""
    import logging

    from madoguchi.cli import RedactingFormatter

    formatter = RedactingFormatter("%(levelname)s %(name)s: %(message)s")
    try:
        raise ValueError("DETAIL: Failing row contains (7, 山田, 090-8765-4321, a@example.jp).")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "bot",
            logging.ERROR,
            __file__,
            1,
            "update %s failed for %s",
            (12, "09087654321"),
            sys.exc_info(),
        )
    text = formatter.format(record)
    assert "8765" not in text
    assert "example.jp" not in text
    assert "update 12 failed" in text  # short numbers stay readable
    assert "ValueError" in text and "Failing row contains" in text
    assert record.exc_info is not None  # the original record is left as it was


def test_faq_vectors_builds_the_table_once(
    cli_env: dict[str, str], tmp_path: Path, fake_ginza_wheel: Path
) -> None:
    wheel = fake_ginza_wheel
    built = ok(run_cli("faq", "vectors", "--wheel", str(wheel), env=cli_env, cwd=tmp_path))
    assert "3 words" in built
    assert (tmp_path / "var" / "word_vectors" / "vectors.npy").is_file()  # the default folder
    again = ok(run_cli("faq", "vectors", "--wheel", str(wheel), env=cli_env, cwd=tmp_path))
    assert "already" in again
    broken = tmp_path / "broken.whl"
    broken.write_bytes(b"not a zip")
    result = run_cli(
        "faq", "vectors", "--wheel", str(broken), "--out", "other", env=cli_env, cwd=tmp_path
    )
    assert result.returncode == 1
    assert "vectors:" in result.stderr
    assert not (tmp_path / "other" / "vectors.npy").exists()
