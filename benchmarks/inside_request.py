"""An /inside request as a ratio to one forward pass with hidden states and attentions (128 tokens).

    python benchmarks/inside_request.py [--repeats 5]

"Request" is the compute behind `/inside`: `core.inside.inside` for one layer, head and query token (tokenize, the
forward pass with hidden states and attentions, the chosen layer written out in full, every layer's attention
and MLP contribution for the residual-stream view, the parameter breakdown). "Forward" is
`model(**inputs, output_hidden_states=True, output_attentions=True)` on the same tokens. Both in this one
process, alternating, medians. Model: a randomly initialized GPT-2-small architecture (124M; weights do not
change the cost), eager attention; also BERT-base, a Llama of SmolLM2-135M's shape (issue 31's target: 1.3x; its
layer is written out with RMSNorm, RoPE, grouped heads and SwiGLU), and the embedded GPT.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install needed

import torch  # noqa: E402

from benchmarks.attention_request import TEXT, save_random  # noqa: E402
from benchmarks.report import interleaved_medians, record  # noqa: E402
from playground.config import Settings  # noqa: E402
from playground.core.text.inside import inside  # noqa: E402
from playground.models import ModelLoader  # noqa: E402


def measure(loader: ModelLoader, source: str, repeats: int) -> tuple[float, float, int]:
    lm = loader.load(source, loader.transformer_family(source), attention=True)
    inputs = lm.tokenizer(TEXT, truncation=True, max_length=128, return_tensors="pt")

    def forward() -> None:
        with torch.no_grad():
            lm.model(**inputs, output_hidden_states=True, output_attentions=True)

    def request() -> None:
        inside(lm.model, lm.tokenizer, TEXT, 1, 1, 64)

    f, r = interleaved_medians(forward, request, repeats)
    return f, r, inputs["input_ids"].shape[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        loader = ModelLoader(Settings(offline=True, device="cpu", model_roots=(root,), hf_cache=root / "hf-cache"))
        for kind, label in (("gpt2", "GPT-2-small"), ("bert", "BERT-base"), ("llama", "SmolLM2-135M-shaped Llama")):
            save_random(kind, root / kind)
            f, r, n = measure(loader, str(root / kind), args.repeats)
            print(f"{label:26s} {n} tokens: forward {f * 1000:.0f} ms, /inside {r * 1000:.0f} ms, ratio {r / f:.2f}x")
            parts.append(f"{label} {r * 1000:.0f} ms vs {f * 1000:.0f} ms (**{r / f:.2f}x**)")
        f, r, n = measure(loader, "gpt2", args.repeats)  # offline: the embedded gpt-shakespeare
        print(f"embedded GPT {n} tokens: forward {f * 1000:.1f} ms, /inside {r * 1000:.1f} ms, ratio {r / f:.2f}x")
        parts.append(f"embedded gpt-shakespeare (4.3M parameters) {r * 1000:.0f} ms vs {f * 1000:.0f} ms (**{r / f:.2f}x**)")
    record("inside_request", "Inside: an /inside request (one layer, head and token written out, every layer's contributions, "
           f"the parameter breakdown) against one forward pass with hidden states and attentions, 128 tokens (median of {args.repeats})",
           "python benchmarks/inside_request.py", "; ".join(parts))


if __name__ == "__main__":
    main()
