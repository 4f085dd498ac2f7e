"""The KV cache, measured: greedy generation with the cache and without it, step by step. No gradio.

A decoder's attention at step t needs the keys and values of every token before it. Without a cache, each step runs
the whole sequence again (step t costs t tokens of work); with one, each layer keeps K and V of the tokens seen so far
and a step runs one new token through the model, reading the cache (step t costs 1 token of work plus reading t cached
tokens). The cache holds, per layer, keys and values of shape [kv heads, tokens, d_head]:

    bytes per token = 2 (K and V) x layers x kv heads x d_head x bytes per number

Grouped-query attention (Ainslie et al. 2023) gives several query heads one key/value head, so the cache shrinks by
heads / kv heads against full multi-head attention (GPT-2 has as many kv heads as heads: no saving).

    >>> bytes_per_token(layers=12, kv_heads=12, d_head=64, itemsize=4)   # GPT-2 small in float32
    73728
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from playground.core.cache import shared_lock
from playground.core.inputs import require_int, require_text
from playground.core.text.tokenize import visible
from playground.errors import InputError
from playground.lazy import no_grad, torch

MAX_PROMPT_CHARS = 4_000
MAX_NEW_TOKENS = 64  # each step also runs the whole sequence without the cache: the uncached half grows with the square
LONG_CONTEXTS = (4_096, 32_768)  # the cache's size is stated at these lengths
CACHED_REPEATS = 3  # each step is timed as the best of a few runs (one slow run, a pause of the machine, is not the step's)
UNCACHED_REPEATS = 2


def bytes_per_token(layers: int, kv_heads: int, d_head: int, itemsize: int) -> int:
    """Bytes the cache grows by per token: K and V in every layer."""
    return 2 * layers * kv_heads * d_head * itemsize


def shape_of(config: Any) -> tuple[int, int, int, int]:
    """(layers, heads, kv heads, d_head) of a decoder's config (GPT-2's names or Llama's)."""
    layers = getattr(config, "n_layer", None) or config.num_hidden_layers
    heads = getattr(config, "n_head", None) or config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    width = getattr(config, "n_embd", None) or config.hidden_size
    d_head = getattr(config, "head_dim", None) or width // heads
    return int(layers), int(heads), int(kv_heads), int(d_head)


@dataclass
class CacheStep:
    index: int  # 0-based step; step 0 reads the prompt
    token: str  # the token chosen at this step (greedy), as text
    cache_tokens: int  # tokens the cache holds after this step
    cache_bytes: int  # bytes of K and V it holds, summed over layers (measured from the tensors)
    ms_cached: float  # time of this step with the cache
    ms_uncached: float  # time of this step running the whole sequence again
    max_abs_diff: float  # max |logits cached − logits uncached| at this step


@dataclass
class CacheRun:
    """Greedy generation measured with and without the cache."""

    prompt_tokens: int
    tokens: list[str]  # the generated tokens, as text
    steps: list[CacheStep]
    layers: int
    heads: int
    kv_heads: int
    d_head: int
    itemsize: int  # bytes per number of the cache (4 in float32, 2 in bfloat16)
    dtype: str
    context: int  # the positions the model reads
    notes: list[str] = field(default_factory=list)

    @property
    def bytes_per_token(self) -> int:
        return bytes_per_token(self.layers, self.kv_heads, self.d_head, self.itemsize)

    @property
    def max_abs_logit_diff(self) -> float:
        return max((s.max_abs_diff for s in self.steps), default=0.0)

    @property
    def gqa_saving(self) -> float:
        """How many times smaller the cache is than full multi-head attention's (1.0: no grouping)."""
        return self.heads / self.kv_heads

    def at(self, tokens: int) -> int:
        """The cache's bytes at `tokens` tokens (one sequence)."""
        return self.bytes_per_token * tokens

    def to_json(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens,
            "steps": [{"cache_tokens": s.cache_tokens, "cache_bytes": s.cache_bytes, "ms_cached": s.ms_cached,
                       "ms_uncached": s.ms_uncached} for s in self.steps],
            "max_abs_logit_diff": self.max_abs_logit_diff, "layers": self.layers, "kv_heads": self.kv_heads, "heads": self.heads,
            "d_head": self.d_head, "bytes_per_token": self.bytes_per_token, "prompt_tokens": self.prompt_tokens, "dtype": self.dtype,
        }


def cache_bytes(cache: Any) -> tuple[int, int]:
    """(tokens, bytes) a transformers cache holds: keys and values summed over its layers."""
    layers = getattr(cache, "layers", None)
    pairs = [(layer.keys, layer.values) for layer in layers] if layers is not None else list(cache)
    total = sum(t.numel() * t.element_size() for pair in pairs for t in pair if t is not None)
    return int(cache.get_seq_length()), int(total)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _sync(device: Any) -> None:
    if getattr(device, "type", "cpu") == "cuda":
        torch.cuda.synchronize(device)


def _best_of(repeats: int, device: Any, run: Any) -> tuple[Any, float]:
    """(the last run's output, the shortest of `repeats` runs' times in ms)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        out = run()
        _sync(device)
        best = min(best, _ms(start))
    return out, best


def _timed_cached_step(model: Any, new_ids: Any, cache: Any, device: Any) -> tuple[Any, float]:
    """One cached step, timed as the best of CACHED_REPEATS: between runs the cache is cropped back to what it held."""
    if cache is None or not hasattr(cache, "crop"):  # the first step makes its cache; a cache that cannot be cropped: once
        repeats = CACHED_REPEATS if cache is None else 1
        return _best_of(repeats, device, lambda: model(input_ids=new_ids, past_key_values=cache, use_cache=True))
    held = cache.get_seq_length()

    def step() -> Any:
        if cache.get_seq_length() > held:
            cache.crop(held - cache.get_seq_length())  # a negative count: the tokens the last run appended
        return model(input_ids=new_ids, past_key_values=cache, use_cache=True)

    return _best_of(CACHED_REPEATS, device, step)


@no_grad
def measure(model: Any, tokenizer: Any, prompt: Any, max_new_tokens: Any = 32) -> CacheRun:
    """Generate greedily, each step once with the cache and once without it, and compare the two logits."""
    prompt = require_text(prompt, "prompt", max_chars=MAX_PROMPT_CHARS)
    new = require_int(max_new_tokens, "max_new_tokens", low=1, high=MAX_NEW_TOKENS)
    if not prompt.strip():
        raise InputError("Enter a prompt: the model continues it, with the cache and without it.")
    layers, heads, kv_heads, d_head = shape_of(model.config)
    context = int(getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", 1024))
    with shared_lock(tokenizer):
        ids = list(tokenizer(prompt, verbose=False)["input_ids"])
    if not ids:
        raise InputError("The prompt gave no tokens; enter some words.")
    notes = []
    room = context - new
    if len(ids) > room:
        notes.append(f"The prompt has {len(ids)} tokens and this model reads {context}: with {new} new tokens, only its last "
                     f"{room} are used.")
        ids = ids[-room:]
    device = next(model.parameters()).device
    sequence = torch.tensor([ids], device=device)
    cache, cached_input, steps, generated = None, sequence, [], []
    for index in range(new):
        out, ms_cached = _timed_cached_step(model, cached_input, cache, device)
        cache = out.past_key_values
        full, ms_uncached = _best_of(UNCACHED_REPEATS, device, lambda sequence=sequence: model(input_ids=sequence, use_cache=False))
        a, b = out.logits[0, -1].float(), full.logits[0, -1].float()
        token = int(b.argmax())
        held, size = cache_bytes(cache)
        with shared_lock(tokenizer):
            face = visible(tokenizer.decode([token]))
        steps.append(CacheStep(index, face, held, size, ms_cached, ms_uncached, float((a - b).abs().max())))
        generated.append(face)
        next_token = torch.tensor([[token]], device=device)
        sequence = torch.cat([sequence, next_token], dim=1)
        cached_input = next_token
    itemsize = torch.empty((), dtype=model.dtype).element_size()
    return CacheRun(len(ids), generated, steps, layers, heads, kv_heads, d_head, itemsize, str(model.dtype).replace("torch.", ""),
                    context, notes)
