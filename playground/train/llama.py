"""Train the embedded Llama-family decoder: a small LlamaForCausalLM on the same Shakespeare split as gpt-shakespeare.

    python -m playground.train.llama                # ~30 min on 2 CPU cores -> assets/models/llama-shakespeare
    python -m playground.train.llama --threads 1    # beside other work; resumable: run it again after a stop

What changed between GPT-2 (2019) and today's decoders, in one model of gpt-shakespeare's size: rotary position
embeddings (RoPE) instead of learned ones, RMSNorm instead of LayerNorm, a gated SwiGLU MLP, no biases, and grouped-query
attention (4 query heads share 2 key/value heads). Everything else is gpt-shakespeare's, so the two compare fairly: its
tokenizer (the same 4,096-token byte-level BPE), its training plays and held-out plays, its steps, batch, window and
learning-rate schedule, its seed. Held-out figure: bits per character on the three held-out plays
(`gpt.bits_per_char`, the same function).

Resumable: every `--save-every` steps the model, the optimizer and the random generator go to
`data/llama-shakespeare.ckpt.pt`; a run finds it and continues from its step (a stop ends the process, not the run).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from playground.train import common
from playground.train.data import HELDOUT_PLAYS, data_dir, shakespeare_split
from playground.train.gpt import bits_per_char, encode, sample_text


@dataclass
class LlamaTrainConfig:
    hidden_size: int = 256  # model width (gpt-shakespeare's n_embd)
    num_hidden_layers: int = 4  # decoder blocks
    num_attention_heads: int = 4  # query heads per block
    num_key_value_heads: int = 2  # key/value heads: two query heads share each (grouped-query attention)
    intermediate_size: int = 768  # SwiGLU width: three matrices of 256 x 768 match GPT-2's two of 256 x 1024 in parameters
    rope_theta: float = 10_000.0  # RoPE base: θ_i = base^(−2i/d_head)
    block_size: int = 128  # context length in tokens (gpt-shakespeare's)
    batch_size: int = 32  # sequences per step
    steps: int = 1400  # optimizer steps
    lr: float = 2e-3  # peak learning rate (AdamW), cosine-decayed
    warmup: int = 100  # linear warm-up steps
    weight_decay: float = 0.1  # AdamW weight decay on matrices
    seed: int = 1337  # every random choice derives from it
    threads: int = 2  # torch CPU threads


def checkpoint_path() -> Path:
    return data_dir() / "llama-shakespeare.ckpt.pt"


def decoder_config(cfg: LlamaTrainConfig, tokenizer) -> dict:
    """The config arguments llama-shakespeare and moe-shakespeare share: sizes, RoPE, RMSNorm, tied embeddings, tokens."""
    return dict(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads, max_position_embeddings=cfg.block_size * 2, rope_theta=cfg.rope_theta,
        rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id,
    )


def build(cfg: LlamaTrainConfig, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**decoder_config(cfg, tokenizer), attention_bias=False, mlp_bias=False)
    return LlamaForCausalLM(config)


def parse_args(doc: str, cfg_class, out_name: str, argv: list[str] | None):
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--steps", type=int, default=cfg_class.steps)
    parser.add_argument("--threads", type=int, default=cfg_class.threads)
    parser.add_argument("--save-every", type=int, default=100, help="steps between resumable checkpoints")
    parser.add_argument("--fresh", action="store_true", help="ignore a checkpoint and start again")
    parser.add_argument("--out", type=Path, default=common.MODELS_DIR / out_name)
    return parser.parse_args(argv)


def train_decoder(cfg, model, tokenizer, ckpt: Path, args, forward_kwargs: dict | None = None):
    """gpt-shakespeare's loop for any causal LM on its split: AdamW, cosine schedule, clipped gradients, resumable
    checkpoints at `ckpt`. Returns (model rounded to float16 precision, training minutes, training tokens, held-out
    texts). The caller builds the model right after `common.setup(cfg.seed, ...)`, so its initial weights follow the seed.
    `forward_kwargs` go to every training forward (the MoE model's `output_router_logits=True` adds its
    load-balancing loss)."""
    gen = common.setup(cfg.seed, cfg.threads)
    clock = common.Clock()
    train_texts, heldout_texts = shakespeare_split()
    data = torch.from_numpy(encode(tokenizer, train_texts))
    print(f"{len(data):,} training tokens, {sum(map(len, train_texts)) / len(data):.2f} chars/token", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95)
    )
    start, minutes_before = 0, 0.0
    if ckpt.exists() and not args.fresh:
        state = torch.load(ckpt, weights_only=False)
        if state["config"] == asdict(cfg) | {"threads": state["config"]["threads"]}:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            start, minutes_before = state["step"], state["minutes"]
            print(f"resumed at step {start} ({minutes_before:.1f} min before)", flush=True)
        else:
            print("a checkpoint of another configuration: starting again", flush=True)
    model.train()
    for step in range(start, cfg.steps):
        for group in opt.param_groups:
            group["lr"] = common.cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup)
        starts = torch.randint(0, len(data) - cfg.block_size - 1, (cfg.batch_size,), generator=gen)
        x = torch.stack([data[s: s + cfg.block_size] for s in starts])  # [B, T]
        loss = model(x, labels=x, **(forward_kwargs or {})).loss  # labels are shifted inside the model
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == cfg.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.3f}  {minutes_before + clock.minutes():.1f} min", flush=True)
        if (step + 1) % args.save_every == 0 and step + 1 < cfg.steps:
            torch.save({"step": step + 1, "model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                        "minutes": minutes_before + clock.minutes(), "config": asdict(cfg)}, ckpt.with_suffix(".tmp"))
            ckpt.with_suffix(".tmp").replace(ckpt)
    model.eval()
    common.round_to_half(model)  # shipped in float16: measure exactly those weights
    return model, minutes_before + clock.minutes(), len(data), heldout_texts


def save_decoder(model, tokenizer, out: Path, max_shard_size: str | None = None) -> None:
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id
    )
    out.mkdir(parents=True, exist_ok=True)
    common.save_half(model, out, max_shard_size)
    tokenizer.save_pretrained(out)


def shakespeare_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(common.MODELS_DIR / "gpt-shakespeare")  # gpt-shakespeare's own BPE: a fair comparison


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, LlamaTrainConfig, "llama-shakespeare", argv)
    cfg = LlamaTrainConfig(steps=args.steps, threads=args.threads)
    tokenizer = shakespeare_tokenizer()
    common.setup(cfg.seed, cfg.threads)
    model = build(cfg, tokenizer)
    model, train_minutes, n_tokens, heldout_texts = train_decoder(cfg, model, tokenizer, checkpoint_path(), args)
    bpc = bits_per_char(model, tokenizer, heldout_texts, cfg.block_size)
    print(f"held-out bits/char: {bpc:.3f}", flush=True)
    save_decoder(model, tokenizer, args.out)
    metrics = {
        "heldout_bits_per_char": round(bpc, 4), "heldout_plays": list(HELDOUT_PLAYS),
        "train_minutes": round(train_minutes, 1), "machine": common.machine(), "parameters": sum(p.numel() for p in model.parameters()),
        "training_tokens": n_tokens, "config": asdict(cfg), "sample": sample_text(model, tokenizer, "ROMEO.\n", seed=cfg.seed),
        "gpt_shakespeare_bits_per_char": common.load_metrics(common.MODELS_DIR / "gpt-shakespeare").get("heldout_bits_per_char"),
    }
    common.save_metrics(args.out, metrics)
    write_card(args.out, metrics)
    checkpoint_path().unlink(missing_ok=True)


def card_tail(script: str, metrics: dict, block_size: int) -> str:
    """The end of a Shakespeare decoder's card: how to train and measure it, its sample, where it is out of its depth."""
    return f"""
Train: `python -m playground.train.{script}`. Measure: `python -m playground.train.evaluate --only {script}`.

Sample (prompt `ROMEO.`, top-k 40, temperature 0.8):

```
{metrics["sample"]}
```

Out of its depth: trained on windows of {block_size} tokens; rotary positions extend past it, but what it learned does not.
"""


def write_card(out: Path, metrics: dict) -> None:
    """The model card, from metrics.json."""
    cfg = LlamaTrainConfig(**metrics["config"])
    gpt = metrics.get("gpt_shakespeare_bits_per_char")
    gpt_text = f"{gpt:.3f}" if gpt is not None else "n/a"
    architecture = (f"`LlamaForCausalLM`, {cfg.num_hidden_layers} layers, {cfg.num_attention_heads} query heads sharing "
                    f"{cfg.num_key_value_heads} key/value heads (grouped-query attention), width {cfg.hidden_size}, SwiGLU MLP "
                    f"{cfg.intermediate_size}, RMSNorm, rotary positions (θ = {cfg.rope_theta:g}), no biases, tied embeddings; "
                    f"context {cfg.block_size} tokens")
    training = (f"{cfg.steps:,} AdamW steps of {cfg.batch_size}x{cfg.block_size} tokens, seed {cfg.seed} (gpt-shakespeare's "
                f"schedule); {metrics['train_minutes']:.1f} min on {cfg.threads} CPU thread(s)")
    common.write_card(
        out,
        metadata={"license": "mit", "language": "en", "library_name": "transformers", "pipeline_tag": "text-generation",
                  "tags": ["teaching", "llama", "shakespeare"]},
        body=f"""
# llama-shakespeare: a small Llama-family decoder trained on Shakespeare

{common.TEACHING_NOTE.format(real="Meta's Llama or SmolLM")}

| | |
|---|---|
| architecture | {architecture} |
| parameters | {metrics["parameters"]:,} (stored in float16) |
| tokenizer | gpt-shakespeare's byte-level BPE (4,096 tokens), so the two compare on the same tokens |
| data | the same split as gpt-shakespeare: {metrics["training_tokens"]:,} training tokens; held out by play: {", ".join(HELDOUT_PLAYS)} |
| training | {training} |
| **held-out loss** | **{metrics["heldout_bits_per_char"]:.3f} bits per character** (gpt-shakespeare: {gpt_text}) |
{card_tail("llama", metrics, cfg.block_size)}""",
    )


if __name__ == "__main__":
    main()
