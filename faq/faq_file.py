"""The JSON Lines FAQ file (DESIGN.md, "faq evaluate"): one entry per line.

Required keys: "id", "question", "answer". Optional: "alternatives" (list of str),
"category", and our extras "keywords" (list of str), "url", "department", "staff_note",
"published" (bool). Other keys are ignored, so files from elsewhere load too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from faq.types import FaqEntryData

_TEXT_KEYS = {  # file key -> FaqEntryData field
    "category": "category",
    "url": "reference_url",
    "department": "department",
    "staff_note": "staff_note",
}
_LIST_KEYS = ("alternatives", "keywords")


def _entry(record: Any) -> FaqEntryData:
    """One decoded line as entry data; ValueError says what is wrong."""
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object")
    fields: dict[str, Any] = {}
    for key in ("id", "question", "answer"):
        value = record.get(key)
        if not isinstance(value, str):
            raise ValueError(f'"{key}" is required and must be a string')
        fields[key] = value
    for key, field in _TEXT_KEYS.items():
        value = record.get(key, "")
        if not isinstance(value, str):
            raise ValueError(f'"{key}" must be a string')
        fields[field] = value
    for key in _LIST_KEYS:
        values = record.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(f'"{key}" must be a list of strings')
        fields[key] = tuple(values)
    published = record.get("published", True)
    if not isinstance(published, bool):
        raise ValueError('"published" must be true or false')
    fields["published"] = published
    return FaqEntryData(**fields)


def read_faq_jsonl(path: Path) -> list[FaqEntryData]:
    """Entries of a JSON Lines FAQ file, in file order; blank lines are skipped.

    Raises ValueError naming the file and line for a malformed line or a repeated id.
    """
    entries: list[FaqEntryData] = []
    first_line: dict[str, int] = {}
    # utf-8-sig: a BOM left by a Windows editor is not part of the first line's JSON.
    with path.open(encoding="utf-8-sig") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = _entry(json.loads(line))
            except ValueError as exc:  # json.JSONDecodeError is a ValueError too
                raise ValueError(f"{path}:{number}: {exc}") from exc
            if entry.id in first_line:
                raise ValueError(
                    f"{path}:{number}: id {entry.id!r} repeats line {first_line[entry.id]}"
                )
            first_line[entry.id] = number
            entries.append(entry)
    return entries


def _record(entry: FaqEntryData) -> dict[str, Any]:
    """The line for an entry; optional keys only when they differ from the default."""
    record: dict[str, Any] = {"id": entry.id, "question": entry.question, "answer": entry.answer}
    for key in _LIST_KEYS:
        values = getattr(entry, key)
        if values:
            record[key] = list(values)
    for key, field in _TEXT_KEYS.items():
        value = getattr(entry, field)
        if value:
            record[key] = value
    if not entry.published:
        record["published"] = False
    return record


def write_faq_jsonl(path: Path, entries: Iterable[FaqEntryData]) -> None:
    """Write entries as JSON Lines (UTF-8, Japanese kept readable, "\\n" line ends)."""
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for entry in entries:
            out.write(json.dumps(_record(entry), ensure_ascii=False) + "\n")
