"""FAQ CSV export and import, as staff use it with Excel."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from typing import Literal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import faq.csv_io
from faq.csv_io import (
    CP932_LOOKALIKES,
    CSV_COLUMNS,
    CsvRowError,
    FaqCsvEncodingError,
    FaqCsvError,
    export_faq_csv,
    import_faq_csv,
    parse_faq_csv,
)
from faq.models import FaqRevisionRow
from faq.store import create_entry, get_entry, list_entries, save_entry
from faq.types import FaqEntryData
from madoguchi.db import session_scope

TOKYO = ZoneInfo("Asia/Tokyo")
HEADER = ",".join(CSV_COLUMNS)

ENTRIES = [
    FaqEntryData(
        id="gomi-001",
        question="粗大ごみはどうやって出しますか？",
        answer='電話で申し込み、「粗大ごみ処理券」を貼って出してください。\n料金は1点300円、"大型"は600円です。',
        alternatives=("粗大ごみの出し方", "大きいごみ, 家具"),
        keywords=("粗大ごみ", "家具"),
        category="ごみ・リサイクル",
        reference_url="https://example.jp/gomi?page=1&x=2",
        department="環境課",
        staff_note="料金は来年度に改定予定",
    ),
    FaqEntryData(
        id="juminhyo-001",
        question="住民票の写しはどこで取れますか？",
        answer="役場の窓口かコンビニで取れます。",
        category="戸籍・住民票",
        published=False,
    ),
    FaqEntryData(
        id="000123",
        question="ＡＴＭは ありますか？",
        # 〜 (WAVE DASH) and − (MINUS SIGN) come back from cp932 as ～ and －.
        answer="①1階にあります。平日8:30〜17:15、気温−5℃以下の日は休み。",  # noqa: RUF001
        alternatives=("ATM 〜時まで",),
    ),
]


def csv_bytes(*rows: str, encoding: str = "utf-8-sig") -> bytes:
    """A CSV file as Excel writes it: CRLF line ends."""
    return "\r\n".join(rows).encode(encoding) + b"\r\n"


def only_error(caught: pytest.ExceptionInfo[FaqCsvError]) -> CsvRowError:
    [error] = caught.value.errors
    return error


async def revision_count(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(FaqRevisionRow)) or 0


# --- export -------------------------------------------------------------------------------


async def test_export_layout(session: AsyncSession) -> None:
    for data in ENTRIES:
        await create_entry(session, data, actor="tanaka")
    await session.commit()
    exported = await export_faq_csv(session, tz=TOKYO)

    assert exported.startswith(b"\xef\xbb\xbf" + HEADER.encode() + b"\r\n")
    rows = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"), newline="")))
    assert rows[0] == list(CSV_COLUMNS)
    assert [row[0] for row in rows[1:]] == ["000123", "gomi-001", "juminhyo-001"]  # category, id
    gomi = dict(zip(CSV_COLUMNS, rows[2], strict=True))
    stored = await get_entry(session, "gomi-001")
    assert stored is not None
    assert gomi == {
        "ID": "gomi-001",
        "問い合わせ文": ENTRIES[0].question,
        "応答文": ENTRIES[0].answer,
        "カテゴリ": "ごみ・リサイクル",
        "言い換え": "粗大ごみの出し方\n大きいごみ, 家具",
        "キーワード": "粗大ごみ\n家具",
        "参考URL": "https://example.jp/gomi?page=1&x=2",
        "担当課": "環境課",
        "公開": "1",
        "更新日時": stored.updated_at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M"),
        "職員メモ": "料金は来年度に改定予定",
    }
    assert rows[3][CSV_COLUMNS.index("公開")] == "0"
    # Rows end in CRLF; line breaks inside a quoted cell stay as they were.
    assert exported.count(b"\r\n") == 4
    assert "\n料金は1点300円".encode() in exported


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp932"])
async def test_round_trip_changes_nothing(
    session: AsyncSession, encoding: Literal["utf-8-sig", "cp932"]
) -> None:
    for data in ENTRIES:
        await create_entry(session, data, actor="tanaka")
    await session.commit()
    before = await list_entries(session)
    revisions = await revision_count(session)

    exported = await export_faq_csv(session, encoding=encoding, tz=TOKYO)
    assert exported.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
    parsed = parse_faq_csv(exported)  # "auto" finds the encoding
    assert [e.id for e in parsed] == [e.id for e in before]
    if encoding == "utf-8-sig":
        assert parsed == [e.data() for e in before]
    report = await import_faq_csv(session, exported, actor="suzuki")
    await session.commit()

    assert (report.created, report.updated) == ([], [])
    assert sorted(report.unchanged) == sorted(e.id for e in before)
    assert await list_entries(session) == before
    assert await revision_count(session) == revisions


def test_cp932_lookalike_table_is_complete() -> None:
    changed = {}
    for code in range(0x10000):
        char = chr(code)
        try:
            back = char.encode("cp932").decode("cp932")
        except UnicodeError:  # not in cp932, or a lone surrogate
            continue
        if back != char:
            changed[code] = back
    assert changed == CP932_LOOKALIKES


async def test_cp932_import_of_a_lookalike_edit_keeps_the_stored_text(
    session: AsyncSession,
) -> None:
    await create_entry(session, ENTRIES[2], actor="tanaka")
    exported = await export_faq_csv(session, encoding="cp932", tz=TOKYO)
    assert "～".encode("cp932") in exported  # noqa: RUF001
    edited = exported.replace("平日".encode("cp932"), "土日".encode("cp932"))
    report = await import_faq_csv(session, edited, actor="suzuki")
    assert report.updated == ["000123"]
    entry = await get_entry(session, "000123")
    assert entry is not None
    # The real edit is saved; the untouched 〜 and − stay as they were.
    assert entry.answer == ENTRIES[2].answer.replace("平日", "土日")
    assert entry.alternatives == ENTRIES[2].alternatives


async def test_cp932_export_names_text_it_cannot_hold(session: AsyncSession) -> None:
    await create_entry(session, replace(ENTRIES[0], answer="𠮷野家の隣です🙂"), actor="tanaka")
    await create_entry(session, ENTRIES[1], actor="tanaka")
    with pytest.raises(FaqCsvEncodingError) as caught:
        await export_faq_csv(session, encoding="cp932", tz=TOKYO)
    assert caught.value.problems == ["ID「gomi-001」の応答文にある「𠮷🙂」"]
    assert "UTF-8（BOM付き）で書き出す" in str(caught.value)
    # UTF-8 holds everything.
    assert "𠮷野家".encode() in await export_faq_csv(session, tz=TOKYO)


# --- import -------------------------------------------------------------------------------


async def test_import_creates_updates_and_leaves_others_alone(session: AsyncSession) -> None:
    await create_entry(session, ENTRIES[0], actor="tanaka")
    await create_entry(session, ENTRIES[1], actor="tanaka")
    await session.commit()
    data = csv_bytes(
        HEADER,
        "new-1,新しい質問,新しい答え,その他,,,,,1,,",
        "juminhyo-001,住民票の写しはどこで取れますか？,役場の窓口で取れます。,戸籍・住民票,,,,,1,2020-01-01 00:00,",
    )
    report = await import_faq_csv(session, data, actor="suzuki")
    await session.commit()
    assert (report.created, report.updated, report.unchanged) == (["new-1"], ["juminhyo-001"], [])
    updated = await get_entry(session, "juminhyo-001")
    assert updated is not None
    assert (updated.answer, updated.published, updated.revision, updated.updated_by) == (
        "役場の窓口で取れます。",
        True,
        2,
        "suzuki",
    )
    assert await get_entry(session, "gomi-001") is not None  # not in the file: kept


async def test_one_bad_row_changes_nothing(session: AsyncSession) -> None:
    await create_entry(session, ENTRIES[1], actor="tanaka")
    await session.commit()
    before = await list_entries(session)
    data = csv_bytes(
        HEADER,
        "juminhyo-001,住民票の写しはどこで取れますか？,変更した答え,,,,,,1,,",
        "new-1,新しい質問,,,,,,,1,,",
        "new-2,もう一つの質問,答え,,,,,,1,,",
    )
    with pytest.raises(FaqCsvError) as caught:
        await import_faq_csv(session, data, actor="suzuki")
    error = only_error(caught)
    assert (error.row, error.column, error.message) == (3, "応答文", "3行目：応答文が空です")
    assert "3行目：応答文が空です" in str(caught.value)
    await session.rollback()
    assert await list_entries(session) == before


async def test_failure_midway_is_rolled_back_by_the_caller(
    session_factory: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with session_scope(session_factory) as session:
        await create_entry(session, ENTRIES[1], actor="tanaka")
    calls = 0

    async def flaky_save(session: AsyncSession, data: FaqEntryData, *, actor: str) -> object:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("connection lost")
        return await save_entry(session, data, actor=actor)

    monkeypatch.setattr(faq.csv_io, "save_entry", flaky_save)
    data = csv_bytes(
        HEADER,
        "juminhyo-001,住民票の写しはどこで取れますか？,変更した答え,,,,,,1,,",
        "new-1,新しい質問,答え,,,,,,1,,",
    )
    with pytest.raises(RuntimeError):
        async with session_scope(session_factory) as session:
            await import_faq_csv(session, data, actor="suzuki")
    async with session_factory() as session:
        [entry] = await list_entries(session)
        assert (entry.answer, entry.revision) == (ENTRIES[1].answer, 1)
        assert await revision_count(session) == 1


async def test_shift_jis_file_from_excel(session: AsyncSession) -> None:
    data = csv_bytes(
        "ID,問い合わせ文,応答文,カテゴリ,言い換え,公開",
        'hoiku-001,保育園の申し込みは？,"子育て支援課で受け付けます。\r\n①申請書 ②就労証明書",子育て,"保育所 申し込み\r\n入園",○',
        encoding="cp932",
    )
    report = await import_faq_csv(session, data, actor="suzuki")
    assert report.created == ["hoiku-001"]
    entry = await get_entry(session, "hoiku-001")
    assert entry is not None
    assert entry.answer == "子育て支援課で受け付けます。\n①申請書 ②就労証明書"
    assert entry.alternatives == ("保育所 申し込み", "入園")
    assert (entry.category, entry.published) == ("子育て", True)


async def test_open_data_layout_keeps_our_extra_fields(session: AsyncSession) -> None:
    await create_entry(session, ENTRIES[0], actor="tanaka")
    data = csv_bytes(
        "ID,問い合わせ文,応答文,カテゴリ",
        f"gomi-001,{ENTRIES[0].question},新しい答え,ごみ・リサイクル",
        "opendata-1,図書館は何時まで？,19時までです。,施設",
    )
    report = await import_faq_csv(session, data, actor="suzuki")
    assert (report.created, report.updated) == (["opendata-1"], ["gomi-001"])
    updated = await get_entry(session, "gomi-001")
    assert updated is not None
    assert updated.data() == replace(ENTRIES[0], answer="新しい答え")
    created = await get_entry(session, "opendata-1")
    assert created is not None
    assert (created.alternatives, created.published, created.staff_note) == ((), True, "")


# --- parsing (no database) ----------------------------------------------------------------


def test_pipe_separated_values_and_excel_quirks() -> None:
    data = csv_bytes(
        "キーワード, ID ,応答文,問い合わせ文,言い換え,,",
        ' 窓口|電話 , a-1 ," 答え\r\n二行目 ", 質問 ,"言い換え1|言い換え2| |言い換え1",,',
        ",,,,,,",
        "",
        ",,,,,,",
    )
    assert parse_faq_csv(data) == [
        FaqEntryData(
            id="a-1",
            question="質問",
            answer="答え\n二行目",
            alternatives=("言い換え1", "言い換え2"),
            keywords=("窓口", "電話"),
        )
    ]


@pytest.mark.parametrize(
    ("cell", "published"),
    [
        ("1", True),
        ("0", False),
        ("公開", True),
        ("非公開", False),
        ("TRUE", True),
        ("false", False),
        ("Yes", True),
        ("no", False),
        ("○", True),
        ("×", False),
        ("１", True),
        ("", True),
    ],
)
def test_published_variants(cell: str, published: bool) -> None:
    [entry] = parse_faq_csv(csv_bytes("ID,問い合わせ文,応答文,公開", f"a-1,質問,答え,{cell}"))
    assert entry.published is published


def test_unreadable_published_value() -> None:
    with pytest.raises(FaqCsvError) as caught:
        parse_faq_csv(csv_bytes("ID,問い合わせ文,応答文,公開", "a-1,質問,答え,たぶん"))
    assert only_error(caught).message == (
        "2行目：公開の値「たぶん」が読み取れません。1（公開）か0（非公開）にしてください"
    )


def test_every_row_is_checked() -> None:
    data = csv_bytes(
        HEADER,
        "a-1,質問,答え,,,,,,1,,",
        "a 2,質問,答え,,,,,,1,,",
        "a-1,別の質問,,,,,,,1,,",
        "a-3,,答え,,,,ftp://example.jp,,1,,",
        "a-4,質問,答え",
    )
    with pytest.raises(FaqCsvError) as caught:
        parse_faq_csv(data)
    assert [(e.row, e.column, e.message) for e in caught.value.errors] == [
        (3, "ID", "3行目：IDは半角英数字とハイフン（-）で、64文字以内にしてください"),
        (4, "応答文", "4行目：応答文が空です"),
        (4, "ID", "4行目：ID「a-1」は2行目と同じです。IDは重ならないようにしてください"),
        (5, "問い合わせ文", "5行目：問い合わせ文が空です"),
        (
            5,
            "参考URL",
            "5行目：参考URLは http:// か https:// で始まるURLにしてください（空欄でもかまいません）",
        ),
        (
            6,
            None,
            "6行目：列の数が見出しと合いません（見出しは11列、この行は3列）。"
            'セルの中のカンマや改行は「"」で囲んでください',
        ),
    ]


def test_header_problems() -> None:
    with pytest.raises(FaqCsvError) as caught:
        parse_faq_csv(csv_bytes("ID,質問,応答文,メモ", "a-1,質問,答え,x"))
    assert [e.message for e in caught.value.errors] == [
        f"1行目：知らない見出しがあります：「質問」「メモ」。使える見出しは {'、'.join(CSV_COLUMNS)} です",
        "1行目：必須の見出し「問い合わせ文」がありません",
    ]
    with pytest.raises(FaqCsvError) as caught:
        parse_faq_csv(csv_bytes("ID,問い合わせ文,応答文,ID", "a-1,質問,答え,a-1"))
    assert only_error(caught).message == "1行目：見出し「ID」が2つあります"


def test_value_in_a_column_without_header() -> None:
    with pytest.raises(FaqCsvError) as caught:
        parse_faq_csv(csv_bytes("ID,問い合わせ文,応答文,", "a-1,質問,答え,迷子の値"))
    assert only_error(caught).message == "2行目：見出しのないD列に値があります"


@pytest.mark.parametrize(
    ("data", "start"),
    [
        (b"", "ファイルが空です"),
        (b"\xef\xbb\xbf\r\n\r\n", "ファイルが空です"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "CSVファイルではないようです"),
        (b"PK\x03\x04\x14\x00\x06\x00", "Excelのブック（.xlsx / .xls）のようです"),
        ("ID,問い合わせ文,応答文".encode("utf-16"), "UTF-16（Unicode テキスト）"),
    ],
)
def test_files_that_are_not_csv_text(data: bytes, start: str) -> None:
    with pytest.raises(FaqCsvError) as caught:
        parse_faq_csv(data)
    error = only_error(caught)
    assert (error.row, error.column) == (None, None)
    assert error.message.startswith(start)


def test_undecodable_bytes_name_their_row_and_column() -> None:
    good = "ID,問い合わせ文,応答文\r\na-1,質問,答え\r\n".encode()
    data = good + "a-2,質問,".encode() + b"\xff\xfe\x80" + b"\r\n"
    with pytest.raises(FaqCsvError) as caught:
        parse_faq_csv(data)
    error = only_error(caught)
    assert (error.row, error.column) == (3, "応答文")
    assert error.message.startswith("3行目：応答文に読み取れない文字があります。")
    # Asking for cp932 explicitly reads cp932 (and fails on UTF-8 bytes in the same way).
    with pytest.raises(FaqCsvError) as caught:
        parse_faq_csv(good, encoding="cp932")
    assert only_error(caught).message.startswith("1行目：見出しを読み取れません。文字コード")


def test_broken_quotes() -> None:
    with pytest.raises(FaqCsvError) as caught:
        parse_faq_csv(csv_bytes("ID,問い合わせ文,応答文", 'a-1,質問,"答え"x"'))
    assert (
        only_error(caught).message
        == '2行目：CSVの形式が正しくありません（「"」の対応を確かめてください）'
    )
