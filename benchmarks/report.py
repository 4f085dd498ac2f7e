"""Benchmark figures: each script records its result here, and the README's block is rewritten from them.

    from benchmarks.report import record
    record("cold_start", "cold start to the first served page", "python benchmarks/cold_start.py", "… **1.96x**")

`benchmarks/results.json` keeps the latest figure of every benchmark (with its date and machine);
the README shows them between `<!-- benchmarks: start -->` and `<!-- benchmarks: end -->`, and a
test fails when that block and the results disagree.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from anywhere, no install needed

from playground.readme_blocks import write_block  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results.json"
BLOCK = "benchmarks"


def interleaved_medians(first, second, repeats: int = 21) -> tuple[float, float]:
    """Median wall times of `first` and `second`, called alternately (after one warm-up each), in seconds."""
    import statistics
    import time

    first(), second()
    a, b = [], []
    for _ in range(repeats):
        for fn, out in ((first, a), (second, b)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def median_time(fn, repeats: int = 5) -> float:
    """Median wall time of `repeats` calls of `fn`, in seconds."""
    import statistics
    import time

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_results(path: Path = RESULTS) -> dict[str, dict]:
    return json.loads(path.read_text()) if path.exists() else {}


def machine() -> str:
    import torch

    return f"{os.cpu_count()} CPU cores, torch {torch.__version__.split('+')[0]} ({'CUDA' if torch.cuda.is_available() else 'CPU'})"


def readme_block(results: dict[str, dict]) -> str:
    """The README's benchmark table, one row per recorded benchmark, in the order recorded."""
    rows = ["| benchmark | command | figure | measured |", "|---|---|---|---|"]
    for r in results.values():
        rows.append(f"| {r['title']} | `{r['command']}` | {r['figure']} | {r['date']}, {r['machine']} |")
    return "\n".join(rows)


def record(name: str, title: str, command: str, figure: str, path: Path = RESULTS) -> None:
    """Store benchmark `name`'s figure (Markdown) and rewrite the README block from all results."""
    results = load_results(path)
    results[name] = {"title": title, "command": command, "figure": figure,
                     "date": datetime.date.today().isoformat(), "machine": machine(), "platform": platform.platform()}
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    write_block(BLOCK, readme_block(results))
    print(f"recorded in {path.relative_to(ROOT)} and the README: {figure}")
