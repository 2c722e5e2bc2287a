"""Engine speed and memory at several FAQ sizes (`madoguchi faq bench`).

Each size runs in a fresh child process, so "peak memory" is the peak resident set size of a
whole process that imported the engine, built the index and answered the queries — what a
deployment pays — and one size cannot inflate the next. Entries are synthetic but made of
Japanese civic vocabulary in the shapes real FAQ entries have (question, alternatives,
keywords, a multi-sentence answer), from a fixed seed, so runs are comparable.
"""

from __future__ import annotations

import json
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from faq.types import FaqDocument

NOUNS = [
    "マイナンバーカード",
    "暗証番号",
    "電子証明書",
    "住民票",
    "印鑑登録",
    "戸籍",
    "転入届",
    "転出届",
    "転居届",
    "保険証",
    "国民健康保険",
    "後期高齢者医療",
    "介護保険",
    "年金",
    "児童手当",
    "保育園",
    "幼稚園",
    "学童保育",
    "妊娠届",
    "母子手帳",
    "予防接種",
    "健康診断",
    "がん検診",
    "ごみ",
    "粗大ごみ",
    "資源ごみ",
    "水道",
    "下水道",
    "道路",
    "街灯",
    "公園",
    "図書館",
    "体育館",
    "公民館",
    "集会所",
    "町営住宅",
    "固定資産税",
    "住民税",
    "軽自動車税",
    "確定申告",
    "納税証明書",
    "所得証明書",
    "口座振替",
    "コンビニ交付",
    "電子申請",
    "マイナポータル",
    "スマホ",
    "防災",
    "避難所",
    "ハザードマップ",
    "消防",
    "救急",
    "防犯",
    "空き家",
    "移住",
    "補助金",
    "助成金",
    "給付金",
    "奨学金",
    "就学援助",
    "障害者手帳",
    "補装具",
    "福祉タクシー",
    "成年後見",
    "選挙",
    "期日前投票",
    "不在者投票",
    "自治会",
    "ボランティア",
    "文化祭",
    "成人式",
    "婚姻届",
    "出生届",
    "死亡届",
    "火葬",
    "墓地",
    "犬の登録",
    "狂犬病",
    "農地",
    "森林",
    "商工",
    "観光",
    "バス",
    "乗合タクシー",
    "駐車場",
    "駐輪場",
    "放置自転車",
    "上下水道",
    "水道料金",
    "開栓",
    "閉栓",
    "井戸",
    "浄化槽",
    "騒音",
    "野焼き",
    "害虫",
    "カラス",
    "イノシシ",
    "熊",
    "猿",
    "花粉",
    "窓口",
    "電話",
    "受付時間",
    "休日",
    "予約",
    "手数料",
    "郵送",
    "代理人",
    "委任状",
    "本人確認",
    "写真",
    "申請書",
    "通知書",
]
VERBS = [
    "申請する",
    "届け出る",
    "受け取る",
    "変更する",
    "更新する",
    "取り消す",
    "確認する",
    "支払う",
    "登録する",
    "相談する",
    "再発行する",
    "解約する",
    "予約する",
    "利用する",
    "問い合わせる",
    "提出する",
    "返却する",
    "調べる",
]
QUESTION_SHAPES = (
    "{a}の{b}はどうすればいいですか？",
    "{a}を{v}にはどうすればいいですか？",
    "{a}について{b}を{v}ことはできますか？",
    "{a}の{b}はいつまでに{v}必要がありますか？",
    "{a}と{b}を一緒に{v}ことはできますか？",
    "{a}の手続きに必要なものは何ですか？",
)
ANSWER_SENTENCES = (
    "{a}の{b}は、{place}で受け付けています。",
    "手続きには本人確認書類と{b}が必要です。",
    "{a}は郵送でも{v}ことができます。詳しくは担当課にお問い合わせください。",
    "代理の方が{v}場合は、委任状と代理人の本人確認書類をお持ちください。",
    "受付時間は平日の午前8時30分から午後5時15分までです。",
    "{b}の内容が変わったときは、14日以内に届け出てください。",
    "手数料は1件につき300円です。{a}の場合は無料です。",
    "オンラインで{v}には、マイナポータルから{a}の申請を選んでください。",
)
PLACES = ("住民課の窓口", "1階の総合窓口", "各支所", "保健センター", "税務課", "福祉課")


def synthetic_entries(count: int, seed: int = 20261126) -> list[FaqDocument]:
    rng = random.Random(seed)
    documents: list[FaqDocument] = []
    for index in range(count):
        a, b = rng.sample(NOUNS, 2)
        v = rng.choice(VERBS)
        fill = {"a": a, "b": b, "v": v, "place": rng.choice(PLACES)}
        question = rng.choice(QUESTION_SHAPES).format(**fill)
        alternatives = tuple(
            rng.choice(QUESTION_SHAPES).format(**fill) for _ in range(rng.randint(2, 5))
        )
        answer = "".join(
            rng.choice(ANSWER_SENTENCES).format(**fill) for _ in range(rng.randint(3, 7))
        )
        documents.append(
            FaqDocument(
                id=f"bench-{index:06d}",
                question=question,
                answer=answer,
                alternatives=alternatives,
                keywords=(a, b),
                category=rng.choice(PLACES),
            )
        )
    return documents


def synthetic_queries(documents: Sequence[FaqDocument], count: int, seed: int = 7) -> list[str]:
    """Mostly reworded questions of random entries; a fifth unrelated chatter."""
    rng = random.Random(seed)
    queries: list[str] = []
    for _ in range(count):
        if rng.random() < 0.2:
            queries.append(rng.choice(("今日の天気は？", "こんにちは", "ありがとう", "？？")))
            continue
        doc = rng.choice(documents)
        text = rng.choice((doc.question, *doc.alternatives))
        if rng.random() < 0.5:
            text = text.replace("はどうすればいいですか？", "どうしたらええの")
        queries.append(text)
    return queries


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def measure_one(size: int, queries: int, word_vectors: str = "") -> dict[str, Any]:
    """Build and query one engine in this process (the child of `run`), with the word-vector
    table in the folder `word_vectors` if there is one, as the app would."""
    from faq.engine import FaqEngine
    from faq.wordvectors import load_word_vectors

    documents = synthetic_entries(size)
    texts = synthetic_queries(documents, queries)
    vectors = load_word_vectors(Path(word_vectors)) if word_vectors else None
    engine = FaqEngine(word_vectors=vectors)
    engine.match("ウォームアップ")  # loads the Sudachi dictionary outside the timings
    rss_before = _peak_rss_mb()
    started = time.perf_counter()
    engine.rebuild(documents)
    build_s = time.perf_counter() - started
    latencies: list[float] = []
    for text in texts:
        t0 = time.perf_counter()
        engine.match(text)
        latencies.append((time.perf_counter() - t0) * 1000)
    latencies.sort()
    return {
        "entries": size,
        "queries": len(texts),
        "index_build_s": round(build_s, 3),
        "query_ms_p50": round(statistics.median(latencies), 3),
        "query_ms_p99": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rss_before_index_mb": round(rss_before, 1),
        "word_vectors": vectors is not None,
    }


def run(sizes: Sequence[int], queries: int, word_vectors: str = "") -> dict[str, Any]:
    results = []
    for size in sizes:
        completed = subprocess.run(
            [sys.executable, "-m", "faq.bench", str(size), str(queries), word_vectors],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    return {
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cores": _cpu_count(),
        },
        "results": results,
    }


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def format_run(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        f"Python {machine['python']}, {machine['cores']} cores ({machine['cpu']})",
        "entries  build(s)  p50(ms)  p99(ms)  peak RSS(MB)  [RSS before index]",
    ]
    lines.extend(
        f"{r['entries']:>7}  {r['index_build_s']:>8.2f}  {r['query_ms_p50']:>7.2f}  "
        f"{r['query_ms_p99']:>7.2f}  {r['peak_rss_mb']:>12.1f}  [{r['rss_before_index_mb']:.1f}]"
        for r in report["results"]
    )
    with_vectors = any(r.get("word_vectors") for r in report["results"])
    lines.append(f"word vectors: {'yes' if with_vectors else 'no (no table)'}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(measure_one(int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:4])))
