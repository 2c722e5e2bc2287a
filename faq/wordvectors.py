"""Pretrained word vectors for words the FAQ has never seen (see
`RankingParameters.oov_expansion`).

The vectors are chiVe (Works Applications, Apache-2.0) as the `ja_ginza` wheel on PyPI ships
them: 20,000 rows of 300 numbers shared by 480,443 words (Sudachi normalised forms), in
spaCy's format. `build_table` reads them from the wheel without spaCy (which would pull in
some 200 MB of packages and pins an older SudachiPy) and writes the table the engine maps:
a folder of three .npy files, the words in the engine's term form (NFKC-folded, katakana →
hiragana) as sorted 64-bit BLAKE2b hashes, a uint16 row per word, and the rows at unit length
as float16; about 17 MB, mapped rather than read, so worker processes share the pages.
`madoguchi faq vectors` (run by `make`) downloads the wheel from PyPI and builds the table at
install time; nothing is downloaded while the app runs, and without a table the engine simply
works without vectors.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

from faq.textfold import fold, to_hiragana

FloatArray = npt.NDArray[np.float32]

TABLE_FILES = ("hashes", "rows", "vectors")
# The one release of the wheel the table is made from (PyPI has no newer one).
JA_GINZA_REQUIREMENT = "ja-ginza==5.3.0"


def term_hash(term: str) -> int:
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=8).digest(), "little")


class WordVectors:
    """Unit-length vectors by term (the engine's term form)."""

    def __init__(
        self,
        hashes: npt.NDArray[np.uint64],
        rows: npt.NDArray[np.uint16],
        vectors: npt.NDArray[np.float16],
    ) -> None:
        self._hashes = hashes
        self._rows = rows
        self._vectors = vectors

    def __len__(self) -> int:
        return len(self._hashes)

    def row(self, term: str) -> int | None:
        key = np.uint64(term_hash(term))
        index = int(np.searchsorted(self._hashes, key))
        if index < len(self._hashes) and self._hashes[index] == key:
            return int(self._rows[index])
        return None

    def get(self, term: str) -> FloatArray | None:
        row = self.row(term)
        return None if row is None else self._vectors[row].astype(np.float32)

    def matrix(self, rows: list[int]) -> FloatArray:
        return np.asarray(self._vectors[rows], dtype=np.float32).reshape(len(rows), -1)


def load_word_vectors(folder: Path) -> WordVectors | None:
    """The table in `folder`, mapped; None when there is none (the engine then has no vectors)."""
    if not all((folder / f"{name}.npy").is_file() for name in TABLE_FILES):
        return None
    hashes, rows, vectors = (np.load(folder / f"{name}.npy", mmap_mode="r") for name in TABLE_FILES)
    return WordVectors(hashes, rows, vectors)


# -- building the table from the ja_ginza wheel --------------------------------------------

_M = 0xC6A4A7935BD1E995
_MASK = (1 << 64) - 1


def murmurhash64a(data: bytes, seed: int = 1) -> int:
    """spaCy's key of a string: MurmurHash64A of its UTF-8 with seed 1 (murmurhash's hash64)."""
    n = len(data)
    h = (seed ^ ((n * _M) & _MASK)) & _MASK
    blocks = n // 8
    for i in range(blocks):
        k = int.from_bytes(data[8 * i : 8 * i + 8], "little")
        k = (k * _M) & _MASK
        k ^= k >> 47
        k = (k * _M) & _MASK
        h ^= k
        h = (h * _M) & _MASK
    if n & 7:
        h ^= int.from_bytes(data[8 * blocks :], "little")
        h = (h * _M) & _MASK
    h ^= h >> 47
    h = (h * _M) & _MASK
    h ^= h >> 47
    return h


_MSGPACK_INTS = {
    0xCC: ">B",
    0xCD: ">H",
    0xCE: ">I",
    0xCF: ">Q",
    0xD0: ">b",
    0xD1: ">h",
    0xD2: ">i",
    0xD3: ">q",
}


def read_msgpack_int_map(buf: bytes) -> dict[int, int]:
    """A msgpack map of integers to integers (spaCy's key2row), without a msgpack package."""
    position = 0

    def read_int() -> int:
        nonlocal position
        tag = buf[position]
        if tag <= 0x7F:
            position += 1
            return tag
        if tag >= 0xE0:
            position += 1
            return tag - 256
        fmt = _MSGPACK_INTS.get(tag)
        if fmt is None:
            raise ValueError(f"not an integer in the msgpack map: {tag:#x}")
        size = struct.calcsize(fmt)
        (value,) = struct.unpack_from(fmt, buf, position + 1)
        position += 1 + size
        return int(value)

    tag = buf[0]
    if tag == 0xDF:
        (count,) = struct.unpack_from(">I", buf, 1)
        position = 5
    elif tag == 0xDE:
        (count,) = struct.unpack_from(">H", buf, 1)
        position = 3
    elif 0x80 <= tag <= 0x8F:
        count, position = tag & 0x0F, 1
    else:
        raise ValueError(f"not a msgpack map: {tag:#x}")
    out: dict[int, int] = {}
    for _ in range(count):
        key = read_int()
        out[key] = read_int()
    return out


def build_table(wheel: Path, folder: Path) -> int:
    """Write the table made from the ja_ginza wheel into `folder`; return the words it has."""
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.endswith("/vocab/vectors")]
        if not names:
            raise ValueError(f"{wheel}: no vocab/vectors in this wheel")
        base = names[0].rsplit("/", 1)[0]
        strings = json.loads(archive.read(f"{base}/strings.json"))
        key2row = read_msgpack_int_map(archive.read(f"{base}/key2row"))
        vectors = np.load(io.BytesIO(archive.read(f"{base}/vectors")))
    rows: dict[str, int] = {}
    for word in strings:
        row = key2row.get(murmurhash64a(word.encode("utf-8")))
        if row is None:
            continue
        key = to_hiragana(fold(word))
        if key == word or key not in rows:  # the word as written wins over a folded one
            rows[key] = row
    hashes = np.array([term_hash(k) for k in rows], dtype=np.uint64)
    if len(np.unique(hashes)) != len(hashes):
        raise ValueError("two words share a hash; the table cannot be built")
    order = np.argsort(hashes)
    row_ids = np.array(list(rows.values()), dtype=np.uint16)
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    folder.mkdir(parents=True, exist_ok=True)
    # Written under temporary names and renamed, so a running app never maps half a table.
    for name, array in (
        ("hashes", hashes[order]),
        ("rows", row_ids[order]),
        ("vectors", (vectors / norms).astype(np.float16)),
    ):
        partial = folder / f"{name}.partial.npy"
        np.save(partial, array)
        partial.replace(folder / f"{name}.npy")
    return len(rows)
