"""Decoder-only generation, one token at a time, with what the model saw at every step. No gradio.

The engine works on token ids and a causal LM; it knows nothing of text (the caller tokenizes
and decodes). Each step: logits for the next token -> the same logits processors
`model.generate` uses (repetition penalty, temperature, top-k, top-p, in its order) -> greedy
argmax, or a draw from the processed distribution with an explicit `torch.Generator` -> append.
A step can be forced to a chosen candidate, which is how a branch continues from any step.

    probs before processing:  softmax(z)              (what the model believes)
    probs after processing:   softmax(process(z))     (what the sampler draws from)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from playground.core.inputs import require_float, require_int
from playground.errors import InputError
from playground.lazy import from_library, no_grad, torch

MAX_NEW_TOKENS = 200  # per request
MAX_CANDIDATES = 20  # candidates shown per step


@dataclass(frozen=True)
class SamplingConfig:
    max_new_tokens: int = 40  # tokens to generate (at most MAX_NEW_TOKENS)
    do_sample: bool = False  # False: greedy, the argmax of the processed logits
    temperature: float = 1.0  # divides the logits before top-k / top-p (sampling only)
    top_k: int = 0  # keep only the k most likely tokens; 0: off (sampling only)
    top_p: float = 1.0  # keep the smallest set whose probability reaches p; 1: off (sampling only)
    repetition_penalty: float = 1.0  # > 1 makes tokens already in the text less likely; 1: off
    seed: int = 0  # seeds the torch.Generator that draws the samples
    num_candidates: int = 10  # candidates reported per step

    def checked(self) -> SamplingConfig:
        """This config if every field is in range (the API bypasses the sliders), else an InputError."""
        require_int(self.max_new_tokens, "max new tokens", low=1, high=MAX_NEW_TOKENS)
        require_float(self.temperature, "temperature", low=0.01, high=10.0)
        require_int(self.top_k, "top k", low=0, high=100_000)
        require_float(self.top_p, "top p", low=0.01, high=1.0)
        require_float(self.repetition_penalty, "repetition penalty", low=0.1, high=10.0)
        require_int(self.seed, "seed", low=0, high=2**63 - 1)
        require_int(self.num_candidates, "candidates", low=1, high=MAX_CANDIDATES)
        return self


@dataclass(frozen=True)
class Candidate:
    token_id: int
    prob: float  # after the logits processors: what the sampler draws from
    raw_prob: float  # softmax of the model's own logits


@dataclass(frozen=True)
class GenStep:
    index: int  # 0-based position among the generated tokens
    token_id: int  # the token appended at this step
    forced: bool  # chosen by the caller, not by the sampler
    candidates: list[Candidate]  # the most likely tokens after processing, best first
    raw_candidates: list[Candidate]  # the most likely tokens before processing, best first


def context_length(config: Any) -> int | None:
    """How many positions the model reads (GPT-2's n_positions, others' max_position_embeddings); None if it names none."""
    value = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    return int(value) if value else None


def fit_to_context(ids: list[int], max_new_tokens: int, context: int | None) -> tuple[list[int], str | None]:
    """(the prompt's ids, a note) such that prompt + new tokens fit the model's positions: the last generated token is
    never read back, so len(prompt) + max_new_tokens − 1 <= context. A longer prompt keeps its end (what a continuation
    needs) and the note says so; more new tokens than the context holds is an error that says the most there is.

    >>> ids, note = fit_to_context([1, 2, 3, 4, 5], 3, 6)
    >>> ids, note.split(": ")[1]
    ([2, 3, 4, 5], 'only the last 4 tokens of the prompt are used.')
    >>> fit_to_context([1, 2], 3, 6)
    ([1, 2], None)
    >>> fit_to_context([1], 8, 6)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    playground.errors.InputError: This model reads 6 positions, so it can write at most 6 new tokens ... Ask for fewer new tokens.
    """
    if context is None or len(ids) + max_new_tokens - 1 <= context:
        return ids, None
    room = context - max_new_tokens + 1  # prompt tokens that fit beside the new ones
    if room < 1:
        raise InputError(f"This model reads {context} positions, so it can write at most {context} new tokens after a one-token "
                         f"prompt; {max_new_tokens} were asked for. Ask for fewer new tokens.")
    return ids[-room:], (f"The prompt is {len(ids)} tokens and {max_new_tokens} new tokens were asked for, but this model reads "
                         f"{context} positions: only the last {room} tokens of the prompt are used.")


def processors(cfg: SamplingConfig):
    """The logits processors `generate` would build for these settings, in its order."""
    (LogitsProcessorList, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper,
     TopPLogitsWarper) = from_library("transformers", "LogitsProcessorList", "RepetitionPenaltyLogitsProcessor", "TemperatureLogitsWarper",
                                      "TopKLogitsWarper", "TopPLogitsWarper")

    out = LogitsProcessorList()
    if cfg.repetition_penalty != 1.0:
        out.append(RepetitionPenaltyLogitsProcessor(cfg.repetition_penalty))
    if cfg.do_sample:
        if cfg.temperature != 1.0:
            out.append(TemperatureLogitsWarper(cfg.temperature))
        if cfg.top_k:
            out.append(TopKLogitsWarper(cfg.top_k))
        if cfg.top_p < 1.0:
            out.append(TopPLogitsWarper(cfg.top_p))
    return out


@no_grad
def step_through(model: Any, input_ids: torch.Tensor, cfg: SamplingConfig, *, forced: dict[int, int] | None = None,
                 eos_token_id: int | None = None) -> Iterator[GenStep]:
    """Generate from `input_ids` ([1, T]) one token at a time, yielding each step (KV-cached).

    `forced` maps a step index to the token id to take there instead of the sampler's choice
    (a branch). Stops after `max_new_tokens` or at `eos_token_id`.
    """
    cfg = cfg.checked()
    if input_ids.ndim != 2 or input_ids.shape[0] != 1 or input_ids.shape[1] < 1:
        raise InputError("Give the prompt as one row of at least one token id.")
    forced = forced or {}
    process = processors(cfg)
    generator = torch.Generator().manual_seed(int(cfg.seed))  # drawn on the CPU: the same seed gives the same text on any device
    device = next(model.parameters()).device
    ids = input_ids.to(device)
    past, step_in = None, ids
    for index in range(int(cfg.max_new_tokens)):
        out = model(input_ids=step_in, past_key_values=past, use_cache=True)
        past = out.past_key_values
        logits = out.logits[:, -1, :].float()  # z: [1, vocab]
        processed = process(ids, logits.clone())
        probs, raw = processed.softmax(-1)[0].cpu(), logits.softmax(-1)[0].cpu()
        # draw even when the step is forced, so the random stream stays aligned: stepping one token at a
        # time (earlier steps forced to what they were) gives what one run with the same seed gives
        token = int(torch.multinomial(probs, 1, generator=generator)) if cfg.do_sample else int(probs.argmax())
        if index in forced:
            token = require_int(forced[index], f"forced token at step {index}", low=0, high=probs.shape[0] - 1)
        yield GenStep(
            index, token, index in forced, _top(probs, raw, cfg.num_candidates), _top(raw, probs, cfg.num_candidates, raw_first=True)
        )
        step_in = torch.tensor([[token]], device=device)
        ids = torch.cat([ids, step_in], dim=1)
        if eos_token_id is not None and token == eos_token_id:
            break


def _top(order_by: torch.Tensor, other: torch.Tensor, k: int, raw_first: bool = False) -> list[Candidate]:
    """The `k` most likely tokens of `order_by`. After the sampling rules (raw_first False) only the tokens they
    kept: top-k 40 or top-p 0.9 can leave fewer than `k`, and a removed token (probability 0) is no candidate."""
    values, idx = order_by.topk(k)
    if raw_first:
        return [Candidate(int(i), float(other[i]), float(v)) for v, i in zip(values, idx)]
    kept = [(v, i) for v, i in zip(values, idx) if v > 0] or [(values[0], idx[0])]
    return [Candidate(int(i), float(v), float(other[i])) for v, i in kept]


@dataclass(frozen=True)
class LogitLens:
    position: int  # the token position whose next-token prediction is shown
    layers: list[str]  # "embeddings", "layer 1", ..., "layer L"
    top: list[list[tuple[int, float]]]  # per layer: (token id, probability) best first


@no_grad
def logit_lens(model: Any, input_ids: torch.Tensor, position: int = -1, k: int = 5) -> LogitLens:
    """What each layer would predict next at `position`: the final norm and the LM head applied to
    every layer's hidden state (nostalgebraist 2020). The last row is the model's own prediction."""
    require_int(k, "k", low=1, high=MAX_CANDIDATES)
    out = model(input_ids=input_ids.to(next(model.parameters()).device), output_hidden_states=True)
    hidden = out.hidden_states  # embeddings, then each layer's output (the last one already normed by GPT-2)
    n = hidden[0].shape[1]
    if not -n <= position < n:
        raise InputError(f"position must be within the {n} prompt tokens, got {position}.")
    norm = _final_norm(model)
    head = model.get_output_embeddings()
    top = []
    for i, h in enumerate(hidden):
        x = h[0, position]
        logits = head(x if i == len(hidden) - 1 else norm(x)).float()  # transformers applies the final norm to the last one
        p, idx = logits.softmax(-1).topk(k)
        top.append([(int(t), float(v)) for v, t in zip(p, idx)])
    return LogitLens(position if position >= 0 else n + position, ["embeddings"] + [f"layer {i}" for i in range(1, len(hidden))], top)


def _final_norm(model: Any) -> Any:
    for path in ("transformer.ln_f", "model.norm", "gpt_neox.final_layer_norm", "model.decoder.final_layer_norm"):
        module = model
        for part in path.split("."):
            module = getattr(module, part, None)
            if module is None:
                break
        if module is not None:
            return module
    raise InputError(f"The logit lens needs the final norm of {type(model).__name__}; it knows GPT-2, Llama- and NeoX-style models.")
