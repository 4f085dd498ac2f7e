"""Train the embedded mixture-of-experts decoder: a small MixtralForCausalLM on the same Shakespeare split as gpt-shakespeare.

    python -m playground.train.moe                # ~45 min on 2 CPU cores -> assets/models/moe-shakespeare
    python -m playground.train.moe --threads 1    # beside other work; resumable: run it again after a stop

llama-shakespeare with its MLP split into experts: every block has 4 SwiGLU experts of width 384 and a router that sends
each token to 2 of them (Mixtral's top-2 routing). Two experts of 384 hold exactly the parameters of llama-shakespeare's
one MLP of 768, so the two models do the same arithmetic per token: llama-shakespeare is the dense model with the same
active parameters, and the comparison asks what twice the MLP parameters, used half at a time, buy. Everything else is
llama-shakespeare's (and so gpt-shakespeare's): tokenizer, training and held-out plays, steps, batch, window, schedule,
seed. Training adds Mixtral's load-balancing loss (Switch Transformer's, coefficient `router_aux_loss_coef`) so that the
router spreads tokens over the experts; the card states how evenly it does on the held-out plays.

Resumable: every `--save-every` steps the model, the optimizer and the random generator go to
`data/moe-shakespeare.ckpt.pt`; a run finds it and continues from its step.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from playground.train import common
from playground.train.data import HELDOUT_PLAYS, data_dir
from playground.train.gpt import bits_per_char, encode, sample_text
from playground.train.llama import (
    LlamaTrainConfig,
    card_tail,
    decoder_config,
    parse_args,
    save_decoder,
    shakespeare_tokenizer,
    train_decoder,
)


@dataclass
class MoeTrainConfig(LlamaTrainConfig):
    intermediate_size: int = 384  # each expert's SwiGLU width: 2 active experts of 384 = llama-shakespeare's one MLP of 768
    num_local_experts: int = 4  # experts per block
    num_experts_per_tok: int = 2  # experts each token is sent to (top-k)
    router_aux_loss_coef: float = 0.02  # weight of the load-balancing loss added to the language-model loss


def checkpoint_path() -> Path:
    return data_dir() / "moe-shakespeare.ckpt.pt"


def build(cfg: MoeTrainConfig, tokenizer):
    from transformers import MixtralConfig, MixtralForCausalLM

    config = MixtralConfig(**decoder_config(cfg, tokenizer), num_local_experts=cfg.num_local_experts,
                           num_experts_per_tok=cfg.num_experts_per_tok, router_aux_loss_coef=cfg.router_aux_loss_coef,
                           sliding_window=None)
    return MixtralForCausalLM(config)


def active_parameters(model) -> int:
    """Parameters one token uses: everything but the experts it is not sent to."""
    cfg = model.config
    experts = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
    return sum(p.numel() for p in model.parameters()) - experts + experts * cfg.num_experts_per_tok // cfg.num_local_experts


@torch.no_grad()
def expert_balance(model, tokenizer, texts: list[str], block_size: int) -> dict:
    """How evenly the router uses the experts over `texts` (windows of `block_size` tokens, as bits_per_char reads
    them): per layer, each expert's share of the token slots (k per token; shares sum to 1), and the normalized entropy
    of those shares (1.0 = perfectly even, 0 = one expert takes all)."""
    cfg = model.config
    counts = torch.zeros(cfg.num_hidden_layers, cfg.num_local_experts)
    for text in texts:
        ids = torch.from_numpy(encode(tokenizer, [text]))
        for s in range(0, len(ids), block_size):
            window = ids[s: s + block_size][None]
            logits = model(window, output_router_logits=True).router_logits  # per layer [tokens, experts]
            for layer, lg in enumerate(logits):
                top = lg.topk(cfg.num_experts_per_tok, dim=-1).indices.flatten()
                counts[layer] += torch.bincount(top, minlength=cfg.num_local_experts).float()
    shares = counts / counts.sum(dim=1, keepdim=True)
    entropy = -(shares * shares.clamp_min(1e-12).log()).sum(dim=1) / math.log(cfg.num_local_experts)
    return {"shares": [[round(v, 4) for v in row] for row in shares.tolist()],
            "evenness": [round(v, 4) for v in entropy.tolist()], "tokens": int(counts[0].sum().item()) // cfg.num_experts_per_tok}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, MoeTrainConfig, "moe-shakespeare", argv)
    cfg = MoeTrainConfig(steps=args.steps, threads=args.threads)
    tokenizer = shakespeare_tokenizer()
    common.setup(cfg.seed, cfg.threads)
    model = build(cfg, tokenizer)
    model, train_minutes, n_tokens, heldout_texts = train_decoder(
        cfg, model, tokenizer, checkpoint_path(), args, forward_kwargs={"output_router_logits": True}
    )
    bpc = bits_per_char(model, tokenizer, heldout_texts, cfg.block_size)
    balance = expert_balance(model, tokenizer, heldout_texts, cfg.block_size)
    print(f"held-out bits/char: {bpc:.3f}; evenness per layer {balance['evenness']}", flush=True)
    save_decoder(model, tokenizer, args.out, max_shard_size="9MB")  # 13 MB in float16: two files, each under a Space's 10 MB
    llama = common.load_metrics(common.MODELS_DIR / "llama-shakespeare")
    metrics = {
        "heldout_bits_per_char": round(bpc, 4), "heldout_plays": list(HELDOUT_PLAYS), "expert_balance": balance,
        "train_minutes": round(train_minutes, 1), "machine": common.machine(),
        "parameters": sum(p.numel() for p in model.parameters()), "active_parameters": active_parameters(model),
        "training_tokens": n_tokens, "config": asdict(cfg), "sample": sample_text(model, tokenizer, "ROMEO.\n", seed=cfg.seed),
        "dense_bits_per_char": llama.get("heldout_bits_per_char"), "dense_parameters": llama.get("parameters"),
        "gpt_shakespeare_bits_per_char": common.load_metrics(common.MODELS_DIR / "gpt-shakespeare").get("heldout_bits_per_char"),
    }
    common.save_metrics(args.out, metrics)
    write_card(args.out, metrics)
    checkpoint_path().unlink(missing_ok=True)


def write_card(out: Path, metrics: dict) -> None:
    """The model card, from metrics.json."""
    cfg = MoeTrainConfig(**metrics["config"])
    dense = metrics.get("dense_bits_per_char")
    dense_text = (f"the dense model with the same active parameters, llama-shakespeare ({metrics.get('dense_parameters') or 0:,} "
                  f"parameters): {dense:.3f}" if dense is not None else "llama-shakespeare (dense): not measured")
    balance = metrics["expert_balance"]
    shares = "; ".join(f"layer {i}: " + ", ".join(f"{100 * s:.0f}%" for s in row) for i, row in enumerate(balance["shares"]))
    verdict = ""
    if dense is not None:
        diff = metrics["heldout_bits_per_char"] - dense
        verdict = (f"\n\nWhat the extra parameters bought: {abs(diff):.3f} bits per character "
                   + ("**less** than the dense model. " if diff < 0 else "**more** than the dense model: nothing, at this scale. ")
                   + "The two do the same arithmetic per token; the mixture stores twice the MLP parameters, but each expert "
                     "reads only the tokens routed to it (half of them, with 2 of 4 experts), so in the same 1,400 steps each "
                     "expert trains on half the data the dense MLP does. Mixtures pay off when tokens are plentiful (Mixtral read "
                     "trillions); here the finding is how the router divides the work: the expert-use row above, and the Inside tab.")
    evenness = ", ".join(f"{e:.2f}" for e in balance["evenness"])
    use = (f"over the {balance['tokens']:,} held-out tokens, each expert's share of the token slots: {shares}. "
           f"Evenness per layer (entropy / log {cfg.num_local_experts}; 1 = even): {evenness}")
    architecture = (f"`MixtralForCausalLM`, {cfg.num_hidden_layers} layers, each with {cfg.num_local_experts} SwiGLU experts of "
                    f"width {cfg.intermediate_size} and a router sending every token to {cfg.num_experts_per_tok}; "
                    f"{cfg.num_attention_heads} query heads sharing {cfg.num_key_value_heads} key/value heads, width "
                    f"{cfg.hidden_size}, RMSNorm, rotary positions (θ = {cfg.rope_theta:g}), no biases, tied embeddings; "
                    f"context {cfg.block_size} tokens")
    training = (f"{cfg.steps:,} AdamW steps of {cfg.batch_size}x{cfg.block_size} tokens, seed {cfg.seed} (gpt-shakespeare's "
                f"schedule), plus the load-balancing loss at {cfg.router_aux_loss_coef:g}; {metrics['train_minutes']:.1f} min "
                f"on {cfg.threads} CPU thread(s)")
    common.write_card(
        out,
        metadata={"license": "mit", "language": "en", "library_name": "transformers", "pipeline_tag": "text-generation",
                  "tags": ["teaching", "mixtral", "mixture-of-experts", "shakespeare"]},
        body=f"""
# moe-shakespeare: a small mixture-of-experts decoder trained on Shakespeare

{common.TEACHING_NOTE.format(real="Mistral's Mixtral")}

| | |
|---|---|
| architecture | {architecture} |
| parameters | {metrics["parameters"]:,} in all, {metrics["active_parameters"]:,} used per token (stored in float16) |
| tokenizer | gpt-shakespeare's byte-level BPE (4,096 tokens) |
| data | the same split as gpt-shakespeare: {metrics["training_tokens"]:,} training tokens; held out by play: {", ".join(HELDOUT_PLAYS)} |
| training | {training} |
| **held-out loss** | **{metrics["heldout_bits_per_char"]:.3f} bits per character**; {dense_text} |
| **expert use** | {use} |
{verdict}
{card_tail("moe", metrics, cfg.block_size)}""",
    )


if __name__ == "__main__":
    main()
