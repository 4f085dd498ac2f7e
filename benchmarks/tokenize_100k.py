"""Tokenizing and rendering 100,000 characters, as a ratio to the tokenizer's own call.

    python benchmarks/tokenize_100k.py

For each real tokenizer: the plain `tokenizer(text)` call, then the playground's
`tokenize()` (ids, spans, faces, counts, round trip and diff) plus `render_panels()` (chips,
capped), each the median of 21 runs alternating with the other, in this one process.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install needed

from transformers import AutoTokenizer

from benchmarks.report import interleaved_medians  # noqa: E402
from playground.config import ASSETS_DIR  # noqa: E402
from playground.core.render.tokens import render_panels  # noqa: E402
from playground.core.text.tokenize import tokenize  # noqa: E402

REPEATS = 21  # the two calls alternate, so both see the same machine noise

TEXT = ("To be, or not to be, that is the question: Whether 'tis nobler in the mind to suffer "
        "the slings and arrows of outrageous fortune — 東京 🤗 2024-03-15 $1,234.56\n") * 1000


def main() -> None:
    from benchmarks.report import record

    text = TEXT[:100_000]
    print(f"{len(text):,} characters")
    parts = []
    for name in ("gpt2", "bert-base-uncased", "t5-small"):
        tok = AutoTokenizer.from_pretrained(ASSETS_DIR / "tokenizers" / name)
        plain, ours = interleaved_medians(lambda: tok(text, verbose=False), lambda: render_panels([tokenize(tok, text, name)]), REPEATS)  # noqa: B023 (called within this iteration)
        print(f"{name:18s} tokenizer call {plain * 1000:7.1f} ms | tokenize+render {ours * 1000:7.1f} ms | ratio {ours / plain:5.1f}x")
        parts.append(f"{name} {ours * 1000:.0f} ms vs {plain * 1000:.0f} ms (**{ours / plain:.1f}x**)")
    record(
        "tokenize_100k",
        "tokenize + render 100,000 characters, against the tokenizer's own call (median of 21, the two calls alternating)",
        "python benchmarks/tokenize_100k.py",
        "; ".join(parts),
    )


if __name__ == "__main__":
    main()
