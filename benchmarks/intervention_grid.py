"""A full head sweep and a residual-stream patching grid against the same number of plain forward passes (16 tokens).

    python benchmarks/intervention_grid.py [--repeats 3]

"Sweep" is `core.text.interventions.sweep` (every head knocked out alone: layers x heads passes, plus the clean one);
"patching" is `interventions.patch(..., what="residual")` (layers x positions passes, plus the clean and corrupted
runs). Each is compared with the same number of plain `model(input_ids)` calls, one after another (what a loop of
hooked passes costs), and batched as the grids are (BATCH rows a call). The grids start each pass at the layer they
change and read the vocabulary at the last position only, so they should cost less than plain passes. Model: a
randomly initialized GPT-2-small architecture (124M; weights do not change the cost), in this one process, medians.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install needed

import torch  # noqa: E402

from benchmarks.report import median_time, record  # noqa: E402
from playground.config import ASSETS_DIR  # noqa: E402
from playground.core.text import interventions  # noqa: E402

CLEAN = "When Mary and John went to the store, John gave a drink to Mary and"
CORRUPT = "When Mary and John went to the store, Mary gave a drink to Mary and"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config()).eval()
    tokenizer = AutoTokenizer.from_pretrained(ASSETS_DIR / "tokenizers" / "gpt2")
    ids = torch.tensor([tokenizer(CLEAN)["input_ids"]])
    tokens = ids.shape[1]
    assert tokens == len(tokenizer(CORRUPT)["input_ids"]) == 16, tokens
    layers, heads = model.config.n_layer, model.config.n_head

    def plain(n: int) -> None:
        with torch.no_grad():
            for _ in range(n):
                model(ids)

    def plain_batched(n: int) -> None:
        with torch.no_grad():
            for start in range(0, n, interventions.BATCH):
                model(ids.expand(min(interventions.BATCH, n - start), -1))

    parts = []
    for label, n, run in (
        ("head sweep", layers * heads + 1, lambda: interventions.sweep(model, tokenizer, CLEAN)),
        ("residual patching", layers * tokens + 2,
         lambda: interventions.patch(model, tokenizer, CLEAN, CORRUPT, " Mary", " John", "residual")),
    ):
        run()  # warm up
        grid = median_time(run, args.repeats)
        one_by_one = median_time(lambda n=n: plain(n), args.repeats)
        batched = median_time(lambda n=n: plain_batched(n), args.repeats)
        print(f"{label}: {n} passes, grid {grid:.2f} s, plain one by one {one_by_one:.2f} s ({grid / one_by_one:.2f}x), "
              f"plain batched {batched:.2f} s ({grid / batched:.2f}x)")
        parts.append(f"{label} ({n} passes) {grid:.2f} s vs {one_by_one:.2f} s one by one (**{grid / one_by_one:.2f}x**), vs "
                     f"{batched:.2f} s batched (**{grid / batched:.2f}x**)")
    record("intervention_grid", f"Interventions: a full head sweep and a residual patching grid on GPT-2-small's architecture at "
           f"{tokens} tokens, against as many plain forward passes (median of {args.repeats}; target 1.2x or less)",
           "python benchmarks/intervention_grid.py", "; ".join(parts))


if __name__ == "__main__":
    main()
