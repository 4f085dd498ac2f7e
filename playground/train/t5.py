"""Train the embedded T5: a small T5ForConditionalGeneration on text-to-text tasks named by prefixes.

    python -m playground.train.t5       # ~29 min on 1 CPU thread -> assets/models/t5-tasks

Tasks (each is exact: one right answer), made by `make_example` from a seeded generator:

| prefix            | input example          | target                  |
|-------------------|------------------------|-------------------------|
| reverse words:    | red cat runs           | runs cat red            |
| sort numbers:     | 42 7 19                | 7 19 42                 |
| number to words:  | 342                    | three hundred forty-two |
| add:              | 27 + 58                | 85                      |
| max:              | 42 7 19                | 42                      |

Held-out examples come from their own seed and never appear in training (inputs are disjoint).
"""

from __future__ import annotations

import argparse
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from playground.train import common

TASKS = ("reverse words", "sort numbers", "number to words", "add", "max")
WORDS = tuple(
    """time year people way day man thing woman life child world school state family student group country
    problem hand part place case week company system program question work government number night point
    home water room mother area money story fact month lot right study book eye job word business issue side
    kind head house service friend father power hour game line end member law car city community name
    president team minute idea kid body information back parent face others level office door health person
    art war history party result change morning reason research girl guy moment air teacher force education
    red blue green black white small large good new old great high little long young big hot cold fast slow
    run walk read write sing jump swim fly eat drink sleep talk think see hear play open close give take make
    cat dog bird fish tree river sea sun moon star rain snow wind fire stone road ship king queen song""".split()
)
# The ranges every example is drawn from (inclusive); the card and the T5 tab state them.
WORDS_PER_INPUT = (2, 6)  # reverse words: how many words
NUMBERS_PER_LIST = (3, 6)  # sort numbers, max: how many numbers
LIST_VALUES = (0, 99)  # sort numbers, max: each number
SPOKEN_NUMBERS = (0, 999)  # number to words
ADDENDS = (10, 99)  # add: each of the two numbers
TRAINED_RANGES = (
    f"`reverse words:` {WORDS_PER_INPUT[0]} to {WORDS_PER_INPUT[1]} common English words · `sort numbers:` and `max:` "
    f"{NUMBERS_PER_LIST[0]} to {NUMBERS_PER_LIST[1]} numbers from {LIST_VALUES[0]} to {LIST_VALUES[1]} · `number to words:` "
    f"{SPOKEN_NUMBERS[0]} to {SPOKEN_NUMBERS[1]} · `add:` two numbers from {ADDENDS[0]} to {ADDENDS[1]}"
)
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
         "eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_to_words(n: int) -> str:
    """English words for 0 <= n <= 999.

    >>> number_to_words(342), number_to_words(80), number_to_words(115)
    ('three hundred forty-two', 'eighty', 'one hundred fifteen')
    """
    if not 0 <= n <= 999:
        raise ValueError("0..999 only")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))


def make_example(task: str, rng: random.Random) -> tuple[str, str]:
    """One (input, target) pair of `task`, drawn from `rng`.

    >>> make_example("add", random.Random(0))
    ('add: 59 + 63', '122')
    """
    if task == "reverse words":
        words = [rng.choice(WORDS) for _ in range(rng.randint(*WORDS_PER_INPUT))]
        return f"reverse words: {' '.join(words)}", " ".join(reversed(words))
    if task in ("sort numbers", "max"):
        nums = [rng.randint(*LIST_VALUES) for _ in range(rng.randint(*NUMBERS_PER_LIST))]
        text = " ".join(map(str, nums))
        if task == "max":
            return f"max: {text}", str(max(nums))
        return f"sort numbers: {text}", " ".join(map(str, sorted(nums)))
    if task == "number to words":
        n = rng.randint(*SPOKEN_NUMBERS)
        return f"number to words: {n}", number_to_words(n)
    if task == "add":
        a, b = rng.randint(*ADDENDS), rng.randint(*ADDENDS)
        return f"add: {a} + {b}", str(a + b)
    raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")


HELDOUT_SEED = 2024
HELDOUT_PER_TASK = 200


def heldout_examples() -> dict[str, list[tuple[str, str]]]:
    """The held-out examples, HELDOUT_PER_TASK per task (distinct inputs, from their own seed).

    Training skips exactly these inputs; take a prefix of each list for a smaller check.
    """
    rng = random.Random(HELDOUT_SEED)
    out: dict[str, list[tuple[str, str]]] = {}
    for task in TASKS:
        seen: dict[str, str] = {}
        while len(seen) < HELDOUT_PER_TASK:
            x, y = make_example(task, rng)
            seen.setdefault(x, y)
        out[task] = list(seen.items())
    return out


@dataclass
class T5TrainConfig:
    vocab_size: int = 256  # SentencePiece unigram vocabulary (at most; digits split one per token, every task word one piece)
    d_model: int = 128  # model width
    d_ff: int = 512  # feed-forward width
    num_layers: int = 3  # encoder blocks (and as many decoder blocks)
    num_heads: int = 4  # attention heads
    batch_size: int = 64  # examples per step
    steps: int = 5500  # optimizer steps
    lr: float = 2e-3  # peak learning rate (AdamW), cosine-decayed
    warmup: int = 200  # linear warm-up steps
    task_weights: tuple[float, ...] = (3, 3, 0.8, 2, 0.7)  # how often each of TASKS is drawn (the hard ones more)
    seed: int = 1234  # training examples and initialization
    threads: int = 1  # torch CPU threads (one: the other core trained another model)


def train_tokenizer(folder: Path, cfg: T5TrainConfig):
    """A SentencePiece unigram model trained on generated examples, wrapped as a T5 tokenizer."""
    import sentencepiece as spm

    rng = random.Random(cfg.seed + 1)
    lines = [part for _ in range(4000) for task in TASKS for part in make_example(task, rng)]
    lines += list(WORDS) + [number_to_words(n) for n in range(1000)]
    folder.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=str(folder / "spiece"),
        vocab_size=cfg.vocab_size,
        model_type="unigram",
        split_digits=True,
        normalization_rule_name="identity",
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        minloglevel=2,
        num_threads=1,
        hard_vocab_limit=False,
    )
    return spm_to_t5_tokenizer(folder / "spiece.model")


def spm_to_t5_tokenizer(model_file: Path):
    """Wrap a SentencePiece unigram model as a transformers fast tokenizer, the way T5's is built.

    (`T5Tokenizer(vocab_file=...)` silently builds a broken tokenizer in transformers 5.) The
    pieces and their log-probabilities are copied; pre-tokenization mirrors SentencePiece's
    defaults (collapse whitespace, "▁" before every word); "</s>" ends every sequence.
    """
    import sentencepiece as spm
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    tok = Tokenizer(models.Unigram(vocab, unk_id=sp.unk_id(), byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)]
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", sp.eos_id())]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="</s>", unk_token="<unk>", pad_token="<pad>", model_max_length=512
    )


def batches(tokenizer, cfg: T5TrainConfig, heldout_inputs: set[str]):
    rng = random.Random(cfg.seed)
    while True:
        xs, ys = [], []
        while len(xs) < cfg.batch_size:
            x, y = make_example(rng.choices(TASKS, weights=cfg.task_weights)[0], rng)
            if x not in heldout_inputs:
                xs.append(x)
                ys.append(y)
        enc = tokenizer(xs, padding=True, return_tensors="pt")
        labels = tokenizer(ys, padding=True, return_tensors="pt").input_ids
        labels[labels == tokenizer.pad_token_id] = -100  # ignored by the loss
        yield enc.input_ids, enc.attention_mask, labels


@torch.no_grad()
def exact_match(model, tokenizer, examples: dict[str, list[tuple[str, str]]], batch_size: int = 100) -> dict[str, float]:
    """Per-task exact-match accuracy of greedy decoding."""
    model.eval()
    scores = {}
    for task, pairs in examples.items():
        right = 0
        for i in range(0, len(pairs), batch_size):
            chunk = pairs[i: i + batch_size]
            enc = tokenizer([x for x, _ in chunk], padding=True, return_tensors="pt")
            out = model.generate(**enc, max_new_tokens=32, do_sample=False, num_beams=1)
            preds = tokenizer.batch_decode(out, skip_special_tokens=True)
            right += sum(p.strip() == y for p, (_, y) in zip(preds, chunk))
        scores[task] = right / len(pairs)
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=T5TrainConfig.steps)
    parser.add_argument("--threads", type=int, default=T5TrainConfig.threads)
    parser.add_argument("--out", type=Path, default=common.MODELS_DIR / "t5-tasks")
    args = parser.parse_args(argv)
    cfg = T5TrainConfig(steps=args.steps, threads=args.threads)
    common.setup(cfg.seed, cfg.threads)
    clock = common.Clock()

    from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration

    tokenizer = train_tokenizer(args.out, cfg)
    config = T5Config(
        vocab_size=len(tokenizer), d_model=cfg.d_model, d_kv=cfg.d_model // cfg.num_heads, d_ff=cfg.d_ff,
        num_layers=cfg.num_layers, num_decoder_layers=cfg.num_layers, num_heads=cfg.num_heads, dropout_rate=0.0,
        feed_forward_proj="relu", pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=True,
    )
    model = T5ForConditionalGeneration(config)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    heldout = heldout_examples()
    heldout_inputs = {x for pairs in heldout.values() for x, _ in pairs}
    model.train()
    for step, (ids, mask, labels) in zip(range(cfg.steps), batches(tokenizer, cfg, heldout_inputs)):
        for group in opt.param_groups:
            group["lr"] = common.cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup, floor=0.02)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 200 == 0 or step == cfg.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}  {clock.minutes():.1f} min", flush=True)

    minutes = clock.minutes()
    scores = exact_match(model, tokenizer, heldout)
    print({k: round(v, 3) for k, v in scores.items()})
    model.generation_config = GenerationConfig(decoder_start_token_id=0, eos_token_id=1, pad_token_id=0, max_new_tokens=32)
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    n_params = sum(p.numel() for p in model.parameters())
    metrics = {
        "heldout_exact_match": scores,
        "heldout_per_task": HELDOUT_PER_TASK,
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
    cfg = T5TrainConfig(**metrics["config"])
    scores, minutes, n_params = metrics["heldout_exact_match"], metrics["train_minutes"], metrics["parameters"]
    rows = "\n".join(
        f"| `{task}:` | {make_example(task, random.Random(7))[0]} → {make_example(task, random.Random(7))[1]} | {scores[task]:.1%} |"
        for task in TASKS
    )
    common.write_card(
        out,
        metadata={
            "license": "mit",
            "language": "en",
            "library_name": "transformers",
            "pipeline_tag": "text2text-generation",
            "tags": ["teaching", "t5", "synthetic-tasks"],
        },
        body=f"""
# t5-tasks: a small T5 trained on exact text-to-text tasks

{common.TEACHING_NOTE.format(real="Google's T5")}

| | |
|---|---|
| architecture | `T5ForConditionalGeneration`, {cfg.num_layers}+{cfg.num_layers} layers, {cfg.num_heads} heads, width {cfg.d_model}, feed-forward {cfg.d_ff} |
| parameters | {n_params:,} |
| tokenizer | its own SentencePiece unigram model, at most {cfg.vocab_size} pieces (every task word is one piece), digits split one per piece |
| data | examples generated by the training script (seed {cfg.seed}); held-out inputs ({HELDOUT_PER_TASK} per task, seed {HELDOUT_SEED}) never appear in training |
| training | {cfg.steps:,} AdamW steps of {cfg.batch_size} examples, tasks drawn with weights {dict(zip(TASKS, cfg.task_weights))}, peak learning rate {cfg.lr:g}, seed {cfg.seed}; {minutes:.1f} min on {cfg.threads} CPU thread(s) |

Held-out exact match (greedy decoding):

| task | example | exact match |
|---|---|---|
{rows}

Train: `python -m playground.train.t5`. Measure: `python -m playground.train.evaluate --only t5`.

Intended use: showing encoder-decoder generation, cross-attention and beam search in the playground.
Limits: it knows these five tasks and nothing else; numbers outside the trained ranges fail.

Out of its depth: the trained ranges are {TRAINED_RANGES}. Anything else (another prefix, a longer list,
a bigger number, ordinary English) is outside what it saw.
""",
    )


if __name__ == "__main__":
    main()
