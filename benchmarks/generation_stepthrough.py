"""GPT generation with step-through capture, as a ratio to plain `model.generate` (greedy, 64 new tokens).

    python benchmarks/generation_stepthrough.py [--repeats 5]

"Step-through" is `core.generation.step_through`: the same KV-cached loop, plus the logits
processors, two softmaxes and the top candidates before and after processing at every step.
"Handler" is the GPT tab's whole streamed request (`on_generate`: also the page's HTML after every
token). Both against `model.generate(max_new_tokens=64, do_sample=False)` on the same prompt, in
this one process, alternating, medians. Models: a randomly initialized GPT-2-small architecture
(124M, the Hub preset's shape) and the embedded gpt-shakespeare.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install needed

import torch  # noqa: E402

from playground.config import ASSETS_DIR, Settings  # noqa: E402
from playground.core.text.generation import SamplingConfig, step_through  # noqa: E402
from playground.models import ModelLoader  # noqa: E402
from playground.ui import gpt_tab  # noqa: E402

PROMPT = "ROMEO.\nBut soft, what light through yonder window breaks? It is the east, and Juliet is the sun.\n"
NEW = 64


def measure(loader: ModelLoader, source: str, repeats: int) -> tuple[float, float, float]:
    lm = loader.load(source, "causal-lm")
    ids = lm.tokenizer(PROMPT, return_tensors="pt").input_ids
    cfg = SamplingConfig(max_new_tokens=NEW)

    def plain() -> None:
        with torch.no_grad():
            out = lm.model.generate(ids, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, pad_token_id=0)
        assert out.shape[1] == ids.shape[1] + NEW

    def stepped() -> None:
        assert len(list(step_through(lm.model, ids, cfg))) == NEW  # no end-of-text stop: same token count as plain

    def handler() -> None:
        for _ in gpt_tab.on_generate(loader, gpt_tab.GenerateRequest(source, PROMPT, "greedy", NEW, 1.0, 0, 1.0, 1.0, 0, 4), progress=None):
            pass

    runs = {plain: [], stepped: [], handler: []}
    for fn in runs:
        fn()  # warm up
    for _ in range(repeats):
        for fn, times in runs.items():
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return tuple(statistics.median(t) for t in runs.values())  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        from transformers import GPT2Config, GPT2LMHeadModel

        torch.manual_seed(0)
        GPT2LMHeadModel(GPT2Config()).save_pretrained(root / "gpt2-small")
        for f in (ASSETS_DIR / "tokenizers" / "gpt2").iterdir():
            shutil.copy(f, root / "gpt2-small" / f.name)
        loader = ModelLoader(Settings(offline=True, device="cpu", model_roots=(root,), hf_cache=root / "hf-cache"))
        for label, source in (("GPT-2-small", str(root / "gpt2-small")), ("embedded gpt-shakespeare", "gpt2")):
            plain, stepped, handler = measure(loader, source, args.repeats)
            print(f"{label}: generate {plain:.2f} s, step-through {stepped:.2f} s ({stepped / plain:.2f}x), "
                  f"tab handler {handler:.2f} s ({handler / plain:.2f}x)")
            parts.append(f"{label}: step-through {stepped:.2f} s vs generate {plain:.2f} s (**{stepped / plain:.2f}x**), "
                         f"whole streamed handler {handler / plain:.2f}x")
    from benchmarks.report import record

    record("generation_stepthrough", f"GPT generation with step-through capture against plain `model.generate`, greedy, {NEW} new tokens "
           f"(median of {args.repeats})", "python benchmarks/generation_stepthrough.py", "; ".join(parts))


if __name__ == "__main__":
    main()
