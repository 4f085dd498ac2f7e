"""The attention viewer's whole request, as a ratio to a bare forward pass with attentions (128 tokens).

    python benchmarks/attention_request.py [--repeats 5]

"Whole request" is what one click on "Show attention" runs on the server: `on_run` (load from the
loader's cache, tokenize, one forward pass with attentions and value vectors) and then `on_view`
(the default one-head heatmap as SVG with per-cell hover values, and the model-view mosaic).
"Bare" is `model(**inputs, output_attentions=True)` on the same tokens. Both in this one process,
alternating, medians. Models: randomly initialized BERT-base (110M) and GPT-2-small (124M)
architectures (the Hub presets' shapes; weights do not change the cost), and the embedded
bert-shakespeare, whose forward pass is so small that fixed costs dominate. Also: one request at
the 512-token cap on BERT-base.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install needed

import torch  # noqa: E402

from benchmarks.report import interleaved_medians  # noqa: E402
from playground.config import ASSETS_DIR, Settings  # noqa: E402
from playground.models import ModelLoader  # noqa: E402
from playground.ui import attention_tab as tab  # noqa: E402

TEXT = ("The animal didn't cross the street because it was too tired, and the keys to the old wooden cabinet "
        "in the hall were on the table where she had left them the night before. ") * 16


def smollm2_shaped_config():
    """HuggingFaceTB/SmolLM2-135M's architecture (30 layers, width 576, 9 query heads on 3 key/value heads, SwiGLU 1536,
    RoPE θ 100,000, tied embeddings), with GPT-2's vocabulary so that GPT-2's tokenizer fits it (50,257 rows, not 49,152)."""
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=50257, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                       num_key_value_heads=3, max_position_embeddings=8192, rope_theta=100_000.0, rms_norm_eps=1e-5,
                       tie_word_embeddings=True, bos_token_id=50256, eos_token_id=50256)


def save_random(kind: str, folder: Path) -> None:
    """A randomly initialized model of `kind` ("gpt2": GPT-2-small, "bert": BERT-base, "llama": SmolLM2-135M's shape) and
    its tokenizer, saved to `folder`."""
    from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel, LlamaForCausalLM

    torch.manual_seed(0)
    if kind == "bert":
        model, tokenizer = BertForMaskedLM(BertConfig()), "bert-base-uncased"
    elif kind == "llama":
        model, tokenizer = LlamaForCausalLM(smollm2_shaped_config()), "gpt2"
    else:
        model, tokenizer = GPT2LMHeadModel(GPT2Config()), "gpt2"
    model.save_pretrained(folder)
    for f in (ASSETS_DIR / "tokenizers" / tokenizer).iterdir():
        shutil.copy(f, folder / f.name)


def measure(loader: ModelLoader, source: str, max_tokens: int, repeats: int) -> tuple[float, float, int]:
    """(bare seconds, whole-request seconds, tokens), medians over `repeats` alternating runs."""
    lm = loader.load(source, loader.transformer_family(source), attention=True)
    inputs = lm.tokenizer(TEXT, truncation=True, max_length=max_tokens, return_tensors="pt")
    kind = "decoder" if "gpt" in type(lm.model).__name__.lower() else "encoder"

    def bare() -> None:
        with torch.no_grad():
            lm.model(**inputs, output_attentions=True)

    def whole() -> None:
        result = tab.on_run(loader, source, TEXT, "", max_tokens, progress=None)[0]
        tab.on_view(result, "head", kind, 1, 1, False, "", False, False, 3)

    bare_s, whole_s = interleaved_medians(bare, whole, repeats)  # one warm-up each, then alternating
    return bare_s, whole_s, inputs["input_ids"].shape[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        loader = ModelLoader(Settings(offline=True, device="cpu", model_roots=(root,), hf_cache=root / "hf-cache"))
        parts = []
        for kind, label in (("bert", "BERT-base"), ("gpt2", "GPT-2-small")):
            save_random(kind, root / kind)
            bare, whole, n = measure(loader, str(root / kind), 128, args.repeats)
            print(f"{label:12s} {n} tokens: bare {bare * 1000:.0f} ms, whole request {whole * 1000:.0f} ms, ratio {whole / bare:.2f}x")
            parts.append(f"{label} {whole * 1000:.0f} ms vs {bare * 1000:.0f} ms (**{whole / bare:.2f}x**)")
        bare, whole, n = measure(loader, "bert-base-uncased", 128, args.repeats)  # offline: the embedded bert-shakespeare
        print(f"embedded BERT {n} tokens: bare {bare * 1000:.1f} ms, whole request {whole * 1000:.1f} ms, ratio {whole / bare:.2f}x")
        parts.append(f"embedded bert-shakespeare (1.2M parameters, fixed costs dominate) {whole * 1000:.0f} ms vs {bare * 1000:.0f} ms "
                     f"(**{whole / bare:.1f}x**)")
        _, whole512, n512 = measure(loader, str(root / "bert"), 512, 1)
        print(f"BERT-base at the {n512}-token cap: whole request {whole512:.2f} s")
        parts.append(f"a {n512}-token request on BERT-base: {whole512:.2f} s")
    from benchmarks.report import record

    record("attention_request", "attention viewer: the whole request (forward pass, value vectors, one-head SVG, model view) "
           f"against a bare forward pass with attentions, 128 tokens (median of {args.repeats})",
           "python benchmarks/attention_request.py", "; ".join(parts))


if __name__ == "__main__":
    main()
