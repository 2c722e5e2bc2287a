"""Stand-ins for question words the FAQ has never seen (`RankingParameters.oov_expansion`)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from faq.engine import FaqEngine, RankingParameters
from faq.service import create_engine_from_settings
from faq.types import FaqDocument
from faq.wordvectors import (
    TABLE_FILES,
    WordVectors,
    build_table,
    load_word_vectors,
    murmurhash64a,
    read_msgpack_int_map,
    term_hash,
)
from madoguchi.settings import Settings

DOCUMENTS = (
    FaqDocument(id="theft", question="カードの盗難にあいました", answer="警察に届けてください。"),
    FaqDocument(id="photo", question="写真の条件は？", answer="6箇月以内に撮ったもの。"),
    FaqDocument(id="fee", question="カードの手数料はいくらですか", answer="無料です。"),
)


def table(words: dict[str, list[float]]) -> WordVectors:
    keys = sorted(words, key=term_hash)
    vectors = np.array([words[k] for k in keys], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    hashes = np.array([term_hash(k) for k in keys], dtype=np.uint64)
    return WordVectors(hashes, np.arange(len(keys), dtype=np.uint16), vectors.astype(np.float16))


@pytest.fixture
def vectors() -> WordVectors:
    # ひったくり is normalised by Sudachi to 引っ手繰り; 天気 is near nothing of the FAQ.
    return table(
        {
            "引っ手繰り": [1.0, 0.1, 0.0],
            "盗難": [0.9, 0.2, 0.0],
            "手数料": [0.0, 1.0, 0.0],
            "天気": [0.0, 0.0, 1.0],
        }
    )


def test_an_unknown_word_finds_its_stand_in(vectors: WordVectors) -> None:
    engine = FaqEngine(word_vectors=vectors)
    engine.rebuild(DOCUMENTS)
    terms = engine.normalizer.analyze("ひったくりにカードを取られた").terms
    stand_ins = engine._oov_stand_ins(terms, {})
    assert list(stand_ins) == ["盗難"]
    assert engine._oov_stand_ins(engine.normalizer.analyze("明日の天気").terms, {}) == {}


def test_stand_ins_order_but_do_not_score(vectors: WordVectors) -> None:
    documents = (
        FaqDocument(id="theft", question="盗難にあったら", answer="警察に届けてください。"),
        FaqDocument(id="photo", question="カードの写真は", answer="6箇月以内のもの。"),
        FaqDocument(id="fee", question="手数料はいくら", answer="無料です。"),
    )
    plain = FaqEngine()
    plain.rebuild(documents)
    expanded = FaqEngine(parameters=RankingParameters(oov_expansion=2.0), word_vectors=vectors)
    expanded.rebuild(documents)
    question = "ひったくりでカードがない"  # ひったくり: a word the FAQ has never seen
    before = plain.rank(question)
    after = expanded.rank(question)
    assert before[0].faq_id == "photo"
    assert after[0].faq_id == "theft"
    # The order moves, the scores stay with the ranks: thresholds keep their meaning.
    assert [c.score for c in after] == [c.score for c in before]


def test_upsert_sees_new_words(vectors: WordVectors) -> None:
    engine = FaqEngine(parameters=RankingParameters(oov_expansion=1.0), word_vectors=vectors)
    engine.rebuild(DOCUMENTS[1:])
    assert engine._oov_stand_ins(engine.normalizer.analyze("ひったくり").terms, {}) == {}
    engine.upsert(DOCUMENTS[0])
    assert list(engine._oov_stand_ins(engine.normalizer.analyze("ひったくり").terms, {})) == [
        "盗難"
    ]


def test_weight_zero_or_no_table_ranks_as_without_vectors(vectors: WordVectors) -> None:
    question = "ひったくりにカードを取られた"
    ranks = []
    for engine in (
        FaqEngine(),
        FaqEngine(parameters=RankingParameters(oov_expansion=0.0), word_vectors=vectors),
    ):
        engine.rebuild(DOCUMENTS)
        ranks.append(engine.rank(question))
    assert ranks[0] == ranks[1]


def test_no_table_no_vectors(tmp_path: Path) -> None:
    assert load_word_vectors(tmp_path) is None
    built = table({"盗難": [1.0, 0.0], "手数料": [0.0, 1.0]})
    np.save(tmp_path / "hashes.npy", built._hashes)
    np.save(tmp_path / "rows.npy", built._rows)
    assert load_word_vectors(tmp_path) is None  # a table without its vectors is none
    np.save(tmp_path / "vectors.npy", built._vectors)
    loaded = load_word_vectors(tmp_path)
    assert loaded is not None and len(loaded) == 2
    assert loaded.row("盗難") is not None and loaded.row("天気") is None


def test_msgpack_reader_reads_spacy_key2row(fake_ginza_wheel: Path) -> None:
    with zipfile.ZipFile(fake_ginza_wheel) as archive:
        key2row = archive.read("ja_ginza/ja_ginza-5.3.0/vocab/key2row")
    words = ["盗難", "カード", "引っ越し"]
    assert read_msgpack_int_map(key2row) == {
        murmurhash64a(w.encode()): row for row, w in enumerate(words)
    }
    with pytest.raises(ValueError, match="not a msgpack map"):
        read_msgpack_int_map(b"\x01")


def test_murmurhash_is_the_64_bit_murmur2() -> None:
    # MurmurHash64A of the empty string with seed 0 is 0; other values differ by seed.
    assert murmurhash64a(b"", seed=0) == 0
    assert murmurhash64a(b"abc") != murmurhash64a(b"abd")
    assert murmurhash64a("盗難".encode()) == murmurhash64a("盗難".encode())


def test_table_built_from_a_wheel_in_spacys_format(fake_ginza_wheel: Path, tmp_path: Path) -> None:
    assert build_table(fake_ginza_wheel, tmp_path / "table") == 3
    loaded = load_word_vectors(tmp_path / "table")
    assert loaded is not None
    # Keys in the engine's term form (katakana → hiragana), rows at unit length.
    got = loaded.get("かーど")
    assert got is not None and np.allclose(got, [0.0, 1.0], atol=1e-3)
    got = loaded.get("盗難")
    assert got is not None and np.allclose(got, [0.6, 0.8], atol=1e-3)
    assert loaded.get("カード") is None and loaded.get("no-vector") is None
    assert not list((tmp_path / "table").glob("*.partial.npy"))


def test_the_engine_the_app_builds_maps_the_configured_table(tmp_path: Path) -> None:
    built = table({"盗難": [1.0, 0.0]})
    for name, array in zip(TABLE_FILES, (built._hashes, built._rows, built._vectors), strict=True):
        np.save(tmp_path / f"{name}.npy", array)
    engine = create_engine_from_settings(Settings(faq_word_vectors=str(tmp_path)))
    assert engine.word_vectors is not None and engine.word_vectors.row("盗難") is not None
    assert create_engine_from_settings(Settings(faq_word_vectors="")).word_vectors is None
    missing = Settings(faq_word_vectors=str(tmp_path / "not-built"))
    assert create_engine_from_settings(missing).word_vectors is None
