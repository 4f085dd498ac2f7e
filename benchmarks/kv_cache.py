"""Time per generated token with the KV cache and without it, as the text grows (GPT-2-small's architecture).

    python benchmarks/kv_cache.py [--repeats 3]

At each length L, "cached" is one step that runs the newest token through the model against a cache of L tokens;
"uncached" is one step that runs all L + 1 tokens again (what `/kv_cache` times at every step). The uncached time grows
with L; the cached one stays nearly flat. Model: a randomly initialized GPT-2-small architecture (124M parameters;
weights do not change the cost), in this one process, medians.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install needed

import torch  # noqa: E402

from benchmarks.report import median_time, record  # noqa: E402

LENGTHS = (32, 128, 512, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config()).eval()
    parts, rows = [], []
    with torch.no_grad():
        for length in LENGTHS:
            ids = torch.randint(0, 50257, (1, length + 1))
            cache = model(ids[:, :length], use_cache=True).past_key_values

            def cached(ids=ids, cache=cache, length=length) -> None:
                model(ids[:, length:], past_key_values=cache, use_cache=True)
                cache.crop(-1)  # the step's token out again: the same L-token cache every time

            def uncached(ids=ids) -> None:
                model(ids, use_cache=False)

            c, u = median_time(cached, args.repeats) * 1000, median_time(uncached, args.repeats) * 1000
            rows.append((length, c, u))
            print(f"{length:5d} tokens: cached {c:6.1f} ms, uncached {u:7.1f} ms ({u / c:.1f}x)")
            parts.append(f"{length}: {c:.0f} vs {u:.0f} ms")
    first, last = rows[0], rows[-1]
    figure = (f"ms per token, cached vs uncached, at {', '.join(parts)}; from {first[0]} to {last[0]} tokens the cached step grows "
              f"**{last[1] / first[1]:.1f}x**, the uncached one **{last[2] / first[2]:.1f}x**; at {last[0]} tokens the cache saves "
              f"**{last[2] / last[1]:.1f}x**")
    record("kv_cache", f"KV cache: one generation step with the cache against the whole text again, GPT-2-small's architecture "
           f"(median of {args.repeats})", "python benchmarks/kv_cache.py", figure)


if __name__ == "__main__":
    main()
