"""A /route request as a ratio to one forward pass with router logits (128 tokens).

    python benchmarks/route_request.py [--repeats 5]

"Request" is the compute behind `/route`: `core.text.routing.route` (tokenize, one forward pass with
`output_router_logits=True`, every layer's softmax and top-k, the load per expert, the JSON's lists). "Forward" is
`model(input_ids, output_router_logits=True)` on the same tokens. Both in this one process, alternating, medians.
Models: a randomly initialized Mixtral-style model (8 layers, width 512, 8 experts of 1,024, 2 a token, 8 query heads
on 4 key/value heads, GPT-2's vocabulary; weights do not change the cost) and the embedded moe-shakespeare.
Target (issue 31): 1.3x or less.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install needed

import torch  # noqa: E402

from benchmarks.attention_request import TEXT  # noqa: E402
from benchmarks.report import interleaved_medians, record  # noqa: E402
from playground.config import ASSETS_DIR  # noqa: E402
from playground.core.text import routing  # noqa: E402


def measure(model, tokenizer, repeats: int) -> tuple[float, float, int]:
    text = tokenizer.decode(tokenizer(TEXT, verbose=False)["input_ids"][:128])  # 128 tokens (within routing.MAX_TOKENS)
    x = torch.tensor([tokenizer(text, verbose=False)["input_ids"]])
    n = x.shape[1]

    def forward() -> None:
        with torch.no_grad():
            model(input_ids=x, output_router_logits=True)

    def request() -> None:
        routing.route(model, tokenizer, text).to_json()

    f, r = interleaved_medians(forward, request, repeats)
    return f, r, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer, MixtralConfig, MixtralForCausalLM

    torch.manual_seed(0)
    mixtral = MixtralForCausalLM(MixtralConfig(
        vocab_size=50257, hidden_size=512, intermediate_size=1024, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4,
        num_local_experts=8, num_experts_per_tok=2, max_position_embeddings=1024, bos_token_id=50256, eos_token_id=50256,
    )).eval()
    cases = [("Mixtral-style, 8 layers x 8 experts", mixtral, AutoTokenizer.from_pretrained(ASSETS_DIR / "tokenizers" / "gpt2"))]
    embedded = ASSETS_DIR / "models" / "moe-shakespeare"
    if (embedded / "config.json").exists():
        cases.append(("embedded moe-shakespeare", AutoModelForCausalLM.from_pretrained(embedded).eval(),
                      AutoTokenizer.from_pretrained(embedded)))
    parts = []
    for label, model, tokenizer in cases:
        f, r, n = measure(model, tokenizer, args.repeats)
        print(f"{label}, {n} tokens: forward {f * 1000:.1f} ms, /route {r * 1000:.1f} ms, ratio {r / f:.2f}x")
        parts.append(f"{label} {r * 1000:.0f} ms vs {f * 1000:.0f} ms (**{r / f:.2f}x**)")
    record("route_request", "Routing: a /route request (router softmax and top-k per layer, expert load) against one forward "
           f"pass with router logits, 128 tokens (median of {args.repeats}; target 1.3x or less)",
           "python benchmarks/route_request.py", "; ".join(parts))


if __name__ == "__main__":
    main()
