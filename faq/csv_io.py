"""FAQ CSV in and out (DESIGN.md, "FAQ CSV"), made for staff who edit it in Excel.

Columns: a superset of the civic FAQ open-data layout (ID, 問い合わせ文, 応答文, カテゴリ).
Export writes UTF-8 with BOM (or cp932 on request) and CRLF line ends. Import matches the
header by name, checks every row first and reports problems per spreadsheet row (the header
is row 1, as Excel numbers it), in Japanese.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import tzinfo
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from faq.store import FaqError, entry_problems, list_entries, normalize_entry_data, save_entry
from faq.types import FaqEntry, FaqEntryData

ExportEncoding = Literal["utf-8-sig", "cp932"]
ImportEncoding = Literal["auto", "utf-8-sig", "cp932"]

CSV_COLUMNS = (
    "ID",
    "問い合わせ文",
    "応答文",
    "カテゴリ",
    "言い換え",
    "キーワード",
    "参考URL",
    "担当課",
    "公開",
    "更新日時",
    "職員メモ",
)
REQUIRED_COLUMNS = ("ID", "問い合わせ文", "応答文")
UPDATED_AT_COLUMN = "更新日時"  # exported for staff to read; ignored on import
UPDATED_AT_FORMAT = "%Y-%m-%d %H:%M"

# CSV column -> FaqEntryData field (更新日時 is bookkeeping, not entry data).
FIELD_OF_COLUMN = {
    "ID": "id",
    "問い合わせ文": "question",
    "応答文": "answer",
    "カテゴリ": "category",
    "言い換え": "alternatives",
    "キーワード": "keywords",
    "参考URL": "reference_url",
    "担当課": "department",
    "公開": "published",
    "職員メモ": "staff_note",
}
COLUMN_OF_FIELD = {name: column for column, name in FIELD_OF_COLUMN.items()}

_PUBLISHED_WORDS = {"1", "公開", "true", "yes", "はい", "○", "〇", "◯"}
_UNPUBLISHED_WORDS = {"0", "非公開", "false", "no", "いいえ", "×", "✕"}
_LIST_SPLIT = re.compile(r"[\r\n|｜]+")
# Bytes that could not be decoded, kept as lone surrogates by "surrogateescape".
_UNDECODED = re.compile("[\udc80-\udcff]")
_RESAVE_HINT = (
    "Excelの「名前を付けて保存」で「CSV UTF-8（コンマ区切り）」を選んで保存し直してください"
)
_HEADER_HINT = "1行目には見出し（ID、問い合わせ文、応答文 など）を入れてください"
_MAX_ERRORS_IN_MESSAGE = 20
# Cells a spreadsheet would run as a formula ("=HYPERLINK(...)", "+1", "-1+2", "@SUM", or a
# leading tab/CR). Export puts a "'" in front (Excel shows such a cell as text); import takes
# one "'" off again. Cells already starting with "'" before such a character get one more, so
# the mapping is reversible and every text round-trips unchanged.
_FORMULA_START = re.compile(r"'*[=+\-@\t\r]")
# Characters that Python's cp932 writes with the bytes of another character, so they come
# back as that one (〜 WAVE DASH returns as ～ FULLWIDTH TILDE, − MINUS as －, ...).
CP932_LOOKALIKES = str.maketrans(
    {"¢": "￠", "£": "￡", "¬": "￢", "‖": "∥", "−": "－", "〜": "～"}  # noqa: RUF001
)
_LOOKALIKE_PAIRS = [(chr(code), back) for code, back in CP932_LOOKALIKES.items()]
_TEXT_FIELDS = ("question", "answer", "category", "reference_url", "department", "staff_note")


# --- errors and results -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CsvRowError:
    """One problem of an imported file.

    `row` is the spreadsheet row (header = 1) or None for the file as a whole; `message`
    is the full Japanese text to show, already starting with 「N行目：」 when there is a row.
    """

    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        return self.message


def _row_error(row: int | None, column: str | None, reason: str) -> CsvRowError:
    prefix = f"{row}行目：" if row is not None else ""
    return CsvRowError(row=row, column=column, message=prefix + reason)


class FaqCsvError(FaqError):
    """The file cannot be imported; nothing was changed. `errors` lists every problem."""

    def __init__(self, errors: list[CsvRowError]) -> None:
        self.errors = errors
        lines = [error.message for error in errors[:_MAX_ERRORS_IN_MESSAGE]]
        if len(errors) > _MAX_ERRORS_IN_MESSAGE:
            lines.append(f"ほか{len(errors) - _MAX_ERRORS_IN_MESSAGE}件の問題があります")
        super().__init__("\n".join(["CSVファイルを読み込めませんでした。", *lines]))


class FaqCsvEncodingError(FaqError):
    """Some text cannot be written in cp932; `problems` names each entry and field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "Shift_JIS（cp932）では書き出せない文字があります。"
            "UTF-8（BOM付き）で書き出すか、次の文字を置き換えてください：" + "、".join(problems)
        )


@dataclass(slots=True)
class ImportReport:
    """Which ids an import created, updated or found unchanged."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


# --- export -------------------------------------------------------------------------------


def escape_formula(cell: str) -> str:
    """The cell as written to CSV: a leading "'" where a spreadsheet would see a formula."""
    return "'" + cell if _FORMULA_START.match(cell) else cell


def unescape_formula(cell: str) -> str:
    """The inverse of escape_formula (applied to every cell read back)."""
    if cell.startswith("'") and _FORMULA_START.match(cell, 1):
        return cell[1:]
    return cell


def _export_cells(entry: FaqEntry, tz: tzinfo) -> dict[str, str]:
    return {
        "ID": entry.id,
        "問い合わせ文": entry.question,
        "応答文": entry.answer,
        "カテゴリ": entry.category,
        "言い換え": "\n".join(entry.alternatives),
        "キーワード": "\n".join(entry.keywords),
        "参考URL": entry.reference_url,
        "担当課": entry.department,
        "公開": "1" if entry.published else "0",
        "更新日時": entry.updated_at.astimezone(tz).strftime(UPDATED_AT_FORMAT),
        "職員メモ": entry.staff_note,
    }


def _cp932_problems(entry_id: str, cells: dict[str, str]) -> list[str]:
    problems = []
    for column, value in cells.items():
        bad = "".join(dict.fromkeys(ch for ch in value if not _encodes_in_cp932(ch)))
        if bad:
            problems.append(f"ID「{entry_id}」の{column}にある「{bad}」")
    return problems


def _encodes_in_cp932(char: str) -> bool:
    try:
        char.encode("cp932")
    except UnicodeEncodeError:
        return False
    return True


async def export_faq_csv(
    session: AsyncSession, *, encoding: ExportEncoding = "utf-8-sig", tz: tzinfo
) -> bytes:
    """Every entry (published or not) as CSV bytes, ordered like list_entries.

    `tz` is the town's zone for 更新日時. With cp932, text that Shift_JIS cannot hold
    raises FaqCsvEncodingError naming it, rather than being replaced silently.
    """
    rows = [(entry.id, _export_cells(entry, tz)) for entry in await list_entries(session)]
    if encoding == "cp932":
        problems = [
            problem for entry_id, cells in rows for problem in _cp932_problems(entry_id, cells)
        ]
        if problems:
            raise FaqCsvEncodingError(problems)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")  # CRLF between rows, as Excel writes
    writer.writerow(CSV_COLUMNS)
    writer.writerows(
        [escape_formula(cells[column]) for column in CSV_COLUMNS] for _entry_id, cells in rows
    )
    return buffer.getvalue().encode(encoding)


# --- decoding -----------------------------------------------------------------------------


def _not_text_error(data: bytes) -> CsvRowError | None:
    """A whole-file error for things that are not CSV text at all."""
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        return _row_error(None, None, f"Excelのブック（.xlsx / .xls）のようです。{_RESAVE_HINT}")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _row_error(
            None, None, f"UTF-16（Unicode テキスト）のファイルには対応していません。{_RESAVE_HINT}"
        )
    if b"\x00" in data:
        return _row_error(None, None, f"CSVファイルではないようです。{_RESAVE_HINT}")
    return None


def _decode(data: bytes, encoding: ImportEncoding) -> tuple[str, str]:
    """Text of the file and the encoding used. Undecodable bytes stay as lone surrogates,
    reported per cell later."""
    if encoding == "auto":
        if data.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        else:
            try:
                return data.decode("utf-8"), "utf-8"
            except UnicodeDecodeError as utf8_error:
                try:
                    return data.decode("cp932"), "cp932"
                except UnicodeDecodeError as cp932_error:
                    # Neither fits: blame the one that read further before failing.
                    best = "utf-8" if utf8_error.start >= cp932_error.start else "cp932"
                    return data.decode(best, "surrogateescape"), best
    return data.decode(encoding, "surrogateescape"), encoding


# --- parsing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Parsed:
    entries: list[FaqEntryData]
    absent_fields: frozenset[str]  # entry fields whose column the file does not have
    encoding: str


def _records(text: str) -> Iterator[tuple[int, list[str] | CsvRowError]]:
    """(spreadsheet row, cells) per CSV record; a record Excel shows as one row, even when
    quoted cells hold line breaks."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    row = 0
    while True:
        row += 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield (
                row,
                _row_error(
                    row, None, 'CSVの形式が正しくありません（「"」の対応を確かめてください）'
                ),
            )
            return
        yield row, record


def _header_name(cell: str) -> str:
    name = unicodedata.normalize("NFKC", cell).strip()
    return "ID" if name.upper() == "ID" else name


def _check_header(names: list[str]) -> list[CsvRowError]:
    unknown = [name for name in names if name and name not in CSV_COLUMNS]
    garbled = any(map(_UNDECODED.search, names))
    if garbled or (unknown and "問い合わせ文" not in names and "応答文" not in names):
        # Usually the wrong encoding (e.g. UTF-8 read as Shift_JIS): the names are garbled.
        return [
            _row_error(
                1,
                None,
                "見出しを読み取れません。文字コード（UTF-8 か Shift_JIS）と、"
                f"1行目に {'、'.join(REQUIRED_COLUMNS)} などの見出しがあるかを確かめてください",
            )
        ]
    errors = []
    if unknown:
        listed = "".join(f"「{name}」" for name in unknown)
        errors.append(
            _row_error(
                1,
                None,
                f"知らない見出しがあります：{listed}。使える見出しは {'、'.join(CSV_COLUMNS)} です",
            )
        )
    errors.extend(
        _row_error(1, name, f"見出し「{name}」が2つあります")
        for name in dict.fromkeys(name for name in names if name and names.count(name) > 1)
    )
    errors.extend(
        _row_error(1, name, f"必須の見出し「{name}」がありません")
        for name in REQUIRED_COLUMNS
        if name not in names
    )
    return errors


def _published(value: str) -> bool | None:
    word = unicodedata.normalize("NFKC", value).strip().casefold()
    if word == "" or word in _PUBLISHED_WORDS:
        return True  # an empty cell means the default, like a missing column
    if word in _UNPUBLISHED_WORDS:
        return False
    return None


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _row_entry(
    row: int, names: list[str], cells: list[str]
) -> tuple[FaqEntryData | None, list[CsvRowError]]:
    """Normalised entry data of one data row (None if unreadable) and the row's errors."""
    if len(cells) < len(names) or any(cells[len(names) :]):
        return None, [
            _row_error(
                row,
                None,
                f"列の数が見出しと合いません（見出しは{len(names)}列、この行は{len(cells)}列）。"
                'セルの中のカンマや改行は「"」で囲んでください',
            )
        ]
    errors = []
    values: dict[str, str] = {}
    for index, (name, cell) in enumerate(zip(names, cells, strict=False)):
        if _UNDECODED.search(cell):
            column = name or f"{_column_letter(index)}列"
            errors.append(
                _row_error(
                    row, name or None, f"{column}に読み取れない文字があります。{_RESAVE_HINT}"
                )
            )
        elif not name:
            if cell:
                column = _column_letter(index)
                errors.append(_row_error(row, None, f"見出しのない{column}列に値があります"))
        elif name in FIELD_OF_COLUMN:
            values[name] = cell
    published = _published(values.get("公開", ""))
    if published is None:
        errors.append(
            _row_error(
                row,
                "公開",
                f"公開の値「{values['公開']}」が読み取れません。1（公開）か0（非公開）にしてください",
            )
        )
    if errors:
        return None, errors
    data = normalize_entry_data(
        FaqEntryData(
            id=values["ID"],
            question=values["問い合わせ文"],
            answer=values["応答文"],
            alternatives=tuple(_LIST_SPLIT.split(values.get("言い換え", ""))),
            keywords=tuple(_LIST_SPLIT.split(values.get("キーワード", ""))),
            category=values.get("カテゴリ", ""),
            reference_url=values.get("参考URL", ""),
            department=values.get("担当課", ""),
            published=bool(published),
            staff_note=values.get("職員メモ", ""),
        )
    )
    return data, [
        _row_error(row, COLUMN_OF_FIELD.get(name), message)
        for name, message in entry_problems(data)
    ]


def _parse(data: bytes, encoding: ImportEncoding) -> _Parsed:
    not_text = _not_text_error(data)
    if not_text is not None:
        raise FaqCsvError([not_text])
    text, used_encoding = _decode(data, encoding)
    if not text.strip():
        raise FaqCsvError([_row_error(None, None, f"ファイルが空です。{_HEADER_HINT}")])
    records = _records(text)
    _row, header = next(records)
    if isinstance(header, CsvRowError):
        raise FaqCsvError([header])
    names = [_header_name(cell) for cell in header]
    errors = _check_header(names)
    if errors:
        raise FaqCsvError(errors)

    entries: list[FaqEntryData] = []
    first_row: dict[str, int] = {}
    for row, record in records:
        if isinstance(record, CsvRowError):
            errors.append(record)
            break
        cells = [unescape_formula(cell).strip() for cell in record]
        if not any(cells):
            continue  # blank rows, e.g. the empty rows Excel leaves at the end
        entry, row_errors = _row_entry(row, names, cells)
        if entry is not None and entry.id in first_row:
            row_errors.append(
                _row_error(
                    row,
                    "ID",
                    f"ID「{entry.id}」は{first_row[entry.id]}行目と同じです。IDは重ならないようにしてください",
                )
            )
        elif entry is not None and entry.id:
            first_row[entry.id] = row
        errors.extend(row_errors)
        if entry is not None and not row_errors:
            entries.append(entry)
    if errors:
        raise FaqCsvError(errors)
    present = {FIELD_OF_COLUMN[name] for name in names if name in FIELD_OF_COLUMN}
    return _Parsed(entries, frozenset(set(COLUMN_OF_FIELD) - present), used_encoding)


def parse_faq_csv(data: bytes, *, encoding: ImportEncoding = "auto") -> list[FaqEntryData]:
    """Entries of a CSV file, normalised and validated; FaqCsvError lists every problem.

    "auto" reads a UTF-8 BOM as UTF-8, else UTF-8 if the bytes are valid UTF-8, else cp932.
    Columns missing from the file get the FaqEntryData defaults here (import keeps the
    stored values instead).
    """
    return _parse(data, encoding).entries


async def import_faq_csv(
    session: AsyncSession, data: bytes, *, actor: str, encoding: ImportEncoding = "auto"
) -> ImportReport:
    """Create or update every entry of the file (upsert); entries not in it stay as they are.

    All rows are checked first: on any problem FaqCsvError is raised before anything is
    written. Does not commit. The caller commits only when this returns and rolls back when
    it raises (e.g. madoguchi.db.session_scope), so a failure midway changes nothing.
    Columns the file lacks (say, the bare open-data layout) keep the stored values of
    existing entries, and so does text that differs only by what a cp932 round trip does
    to it (〜 → ～): an exported file imports back as "unchanged" in either encoding.
    """
    parsed = _parse(data, encoding)
    stored = {entry.id: entry for entry in await list_entries(session)}
    report = ImportReport()
    for entry in parsed.entries:
        current = stored.get(entry.id)
        merged = entry if current is None else _merge(current, entry, parsed)
        _saved, outcome = await save_entry(session, merged, actor=actor)
        getattr(report, outcome).append(entry.id)
    return report


def _merge(current: FaqEntry, imported: FaqEntryData, parsed: _Parsed) -> FaqEntryData:
    """The imported row, keeping stored values where the file cannot have meant a change."""
    kept: dict[str, Any] = {name: getattr(current, name) for name in parsed.absent_fields}
    if parsed.encoding == "cp932":
        for name in _TEXT_FIELDS:
            kept[name] = _undo_cp932(getattr(current, name), getattr(imported, name))
        for name in ("alternatives", "keywords"):
            stored: tuple[str, ...] = getattr(current, name)
            reference = "\n".join(stored)
            items = tuple(_put_back(reference, item) for item in getattr(imported, name))
            kept[name] = stored if _fold(*items) == _fold(*stored) else items
    return replace(imported, **kept)


def _fold(*texts: str) -> tuple[str, ...]:
    return tuple(text.translate(CP932_LOOKALIKES) for text in texts)


def _undo_cp932(stored: str, imported: str) -> str:
    """Imported text as it was before cp932 turned 〜 into ～ (and so on).

    Text equal to the stored text up to those changes is the stored text; in an edited
    text, lookalikes go back to the stored form where the stored text used only that.
    """
    return stored if _fold(stored) == _fold(imported) else _put_back(stored, imported)


def _put_back(stored: str, imported: str) -> str:
    for original, lookalike in _LOOKALIKE_PAIRS:
        if original in stored and lookalike not in stored:
            imported = imported.replace(lookalike, original)
    return imported
