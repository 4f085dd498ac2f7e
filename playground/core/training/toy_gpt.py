"""A character-level GPT trained live on a text the learner gives: next-character prediction, streamed.

The model is transformers' `GPT2LMHeadModel` (the embedded GPT's class) built from a config; the tokenizer is a
`PreTrainedTokenizerFast` over the text's own characters, so the trained pair works wherever a Hub GPT-2 does
(the GPT and Inside tabs). Loss is cross-entropy in nats; bits per character = nats / ln 2 (one token is one
character). The baseline is a unigram model: each character's training frequency (add-one smoothed), scored on
the held-out tail of the text.

>>> round(unigram_bpc("abab", "ab"), 3)    # p(a) = p(b) = 1/2 (add-one over 2 symbols): 1 bit a character
1.0
>>> str(unigram_bpc("a", "a"))              # one symbol: certain, 0 bits (it used to come back as -0.0)
'0.0'
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from playground.core.inputs import require_int, require_text
from playground.errors import InputError
from playground.lazy import from_library, no_grad, torch

MIN_CHARS = 2_000  # shorter texts give the model nothing to learn beyond a few words
MAX_CHARS = 1_000_000
MAX_STEPS = 5_000
MAX_SECONDS = 120.0
HELDOUT_SHARE = 0.1  # the text's last tenth is held out


@dataclass(frozen=True)
class GPTTrainConfig:
    """One run; the same text, config and seed give the same losses."""

    steps: int = 250  # AdamW steps
    batch_size: int = 16  # windows per step (the default run: about 13 s on 2 idle cores; benchmarks/training_busy.py)
    block_size: int = 64  # characters per window (the model's context)
    n_layer: int = 3  # transformer blocks
    n_head: int = 4  # attention heads per block
    n_embd: int = 96  # width
    lr: float = 5e-3  # peak learning rate (linear warm-up over 50 steps, cosine decay to a tenth)
    seed: int = 0  # initial weights, batches, samples
    eval_every: int = 100  # steps between held-out evaluations and samples
    sample_chars: int = 160  # characters per streamed sample
    max_seconds: float = MAX_SECONDS  # a guard: the run stops here if not done (the steps are the budget)

    def checked(self) -> GPTTrainConfig:
        for name, low, high in (
            ("steps", 1, MAX_STEPS),
            ("batch_size", 1, 256),
            ("block_size", 8, 256),
            ("n_layer", 1, 8),
            ("n_head", 1, 8),
            ("n_embd", 8, 512),
            ("seed", 0, 2**31 - 1),
            ("eval_every", 1, MAX_STEPS),
            ("sample_chars", 1, 1000),
        ):
            require_int(getattr(self, name), name, low=low, high=high)
        if self.n_embd % self.n_head:
            raise InputError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head}).")
        if not isinstance(self.lr, (int, float)) or not 1e-5 <= self.lr <= 0.1:
            raise InputError(f"lr must be a number from 0.00001 to 0.1, got {self.lr!r}.")
        if not isinstance(self.max_seconds, (int, float)) or not 0 < self.max_seconds <= MAX_SECONDS:
            raise InputError(f"max_seconds must be above 0 and at most {MAX_SECONDS:g}.")
        return self


def char_tokenizer(text: str) -> Any:
    """A fast tokenizer whose vocabulary is the text's characters (one token each), plus <|endoftext|>."""
    Tokenizer, WordLevel, Split = (from_library("tokenizers", "Tokenizer"), from_library("tokenizers.models", "WordLevel"),
                                   from_library("tokenizers.pre_tokenizers", "Split"))
    PreTrainedTokenizerFast = from_library("transformers", "PreTrainedTokenizerFast")
    Regex = from_library("tokenizers", "Regex")
    Fuse = from_library("tokenizers.decoders", "Fuse")
    chars = sorted(set(text))
    vocab = {c: i for i, c in enumerate(chars)}
    vocab["<|endoftext|>"] = len(vocab)
    core = Tokenizer(WordLevel(vocab, unk_token="<|endoftext|>"))
    core.pre_tokenizer = Split(Regex("[\\s\\S]"), behavior="isolated")  # every character its own piece, whitespace included
    core.decoder = Fuse()  # pieces join back without spaces
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|endoftext|>", unk_token="<|endoftext|>", bos_token="<|endoftext|>")


def unigram_bpc(train: str, heldout: str) -> float:
    """Bits per character of `heldout` under the training text's character frequencies (add-one smoothed)."""
    counts = Counter(train)
    symbols = set(train) | set(heldout)
    total = len(train) + len(symbols)
    bits = -sum(math.log2((counts[c] + 1) / total) for c in heldout) / max(1, len(heldout))
    return max(0.0, bits)  # a text of one symbol costs 0 bits, not "-0.0" (the negation of a zero sum)


@dataclass
class GPTProgress:
    step: int  # steps done
    losses: list[float]  # training loss (bits per character) of every step so far
    heldout_steps: list[int]  # the steps the held-out loss was measured at
    heldout_bpc: list[float]  # held-out bits per character at those steps
    samples: list[str]  # a generated sample at each evaluation
    seconds: float
    done: bool
    stopped_early: bool = False


@dataclass
class TrainedGPT:
    model: Any  # GPT2LMHeadModel
    tokenizer: Any  # the character tokenizer
    parameters: int
    tokens_seen: int  # characters read in training (steps x batch x window)
    unigram_bpc: float  # the baseline on the same held-out text
    batch_size: int = 16  # windows per step (the default run: about 13 s on 2 idle cores; benchmarks/training_busy.py)


def check_text(text: Any) -> str:
    text = require_text(text, "text", max_chars=MAX_CHARS)
    if len(text) < MIN_CHARS:
        raise InputError(f"Paste at least {MIN_CHARS:,} characters (this text has {len(text):,}): a tiny GPT needs text to learn from.")
    return text


def train_gpt(text: str, cfg: GPTTrainConfig, *, stream: bool = True) -> Iterator[tuple[TrainedGPT, GPTProgress]]:
    """Train a character-level GPT on `text` (its last tenth held out); yields (trained so far, progress) every
    `eval_every` steps with the held-out bits per character and a sample, and at the end."""
    cfg = cfg.checked()
    text = check_text(text)
    GPT2Config, GPT2LMHeadModel = from_library("transformers", "GPT2Config", "GPT2LMHeadModel")
    cut = int(len(text) * (1 - HELDOUT_SHARE))
    train_text, heldout_text = text[:cut], text[cut:]
    tok = char_tokenizer(text)
    ids = torch.tensor(tok(text, verbose=False)["input_ids"], dtype=torch.long)
    train_ids, heldout_ids = ids[:cut], ids[cut:]
    if len(heldout_ids) <= cfg.block_size + 1:
        raise InputError(f"The held-out tenth of the text is shorter than a window ({cfg.block_size} characters): paste more text.")
    config = GPT2Config(vocab_size=len(tok), n_positions=cfg.block_size, n_embd=cfg.n_embd, n_layer=cfg.n_layer, n_head=cfg.n_head,
                        activation_function="gelu", bos_token_id=tok.eos_token_id,
                        eos_token_id=tok.eos_token_id, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    config._attn_implementation = "eager"  # the Inside and Attention views read its attention weights
    with torch.random.fork_rng(devices=[]):  # initial weights from the seed; the global generator is left as it was
        torch.manual_seed(cfg.seed)
        model = GPT2LMHeadModel(config)
    model.train()
    g = torch.Generator().manual_seed(cfg.seed + 1)
    heldout_g = torch.Generator().manual_seed(cfg.seed + 2)
    heldout_starts = torch.randint(0, len(heldout_ids) - cfg.block_size - 1, (16,), generator=heldout_g)  # fixed held-out windows
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.1, betas=(0.9, 0.99))
    warm = min(50, cfg.steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, cfg.steps - warm))))
    trained = TrainedGPT(model, tok, sum(p.numel() for p in model.parameters()), 0, unigram_bpc(train_text, heldout_text), cfg.batch_size)
    losses, hsteps, hbpc, samples = [], [], [], []
    start = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        starts = torch.randint(0, len(train_ids) - cfg.block_size - 1, (cfg.batch_size,), generator=g)
        x = torch.stack([train_ids[s:s + cfg.block_size] for s in starts])
        y = torch.stack([train_ids[s + 1:s + cfg.block_size + 1] for s in starts])
        logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))  # next-character prediction
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()) / math.log(2))
        trained.tokens_seen += cfg.batch_size * cfg.block_size
        elapsed = time.perf_counter() - start
        over = elapsed > cfg.max_seconds
        last = step == cfg.steps or over
        if last or (stream and step % cfg.eval_every == 0):
            hsteps.append(step)
            hbpc.append(heldout_bpc(model, heldout_ids, heldout_starts, cfg.block_size))
            samples.append(generate(model, tok, train_text[:1], cfg.sample_chars, seed=cfg.seed + 3))
            yield (
                trained,
                GPTProgress(step, list(losses), list(hsteps), list(hbpc), list(samples), elapsed, last, over and step < cfg.steps),
            )
        if last:
            model.eval()
            return


@no_grad
def heldout_bpc(model: Any, ids: torch.Tensor, starts: torch.Tensor, block: int) -> float:
    model.eval()
    x = torch.stack([ids[s:s + block] for s in starts])
    y = torch.stack([ids[s + 1:s + block + 1] for s in starts])
    logits = model(input_ids=x).logits
    model.train()
    return float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))) / math.log(2)


@no_grad
def generate(model: Any, tokenizer: Any, prompt: str, n: int, seed: int, temperature: float = 0.8) -> str:
    """`n` characters sampled after `prompt` (temperature `temperature`, from `seed`).

    Each new character costs one position through the model: the keys and values of the ones before are kept
    (`past_key_values`). When the context fills the model's window, it restarts from the window's last half,
    so every character sees at least half a window of context and never more than a window.
    """
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    ids = tokenizer(prompt, verbose=False)["input_ids"] or [tokenizer.eos_token_id]
    block = model.config.n_positions
    out, past, fed = list(ids), None, 0  # fed: how many of `out`'s last tokens the cache holds
    for _ in range(n):
        if past is None or fed >= block:  # (re)start the cache from the last half-window (or the whole prompt, if shorter)
            context = out[-(block // 2 if past is not None else block):]
            result = model(input_ids=torch.tensor([context]), use_cache=True)
            fed = len(context)
        else:
            result = model(input_ids=torch.tensor([out[-1:]]), past_key_values=past, use_cache=True)
            fed += 1
        past = result.past_key_values
        logits = result.logits[0, -1] / temperature
        out.append(int(torch.multinomial(logits.softmax(-1), 1, generator=g)))
    if was_training:
        model.train()
    return tokenizer.decode(out[len(ids):])
