"""Mixture-of-experts routing, on the model's own numbers: which experts each token is sent to, layer by layer. No gradio.

In a mixture-of-experts layer (Shazeer et al. 2017; Mixtral, Jiang et al. 2024) the MLP is E separate MLPs, the experts.
A router, one linear map, scores every expert for every token: p = softmax(W_r · RMSNorm(x)); the token goes to the k
experts with the highest p, and their outputs are mixed by those p renormalized. Only k of E experts run per token, so
the model has E MLPs' parameters at the cost of k.

    >>> expert_load([[[0], [0], [1]]], experts=2)   # three tokens, top-1: two to expert 0, one to expert 1
    [[0.6667, 0.3333]]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playground.core.cache import shared_lock
from playground.core.inputs import require_text
from playground.core.text.tokenize import visible
from playground.errors import InputError
from playground.lazy import no_grad, torch

MAX_TEXT_CHARS = 4_000
MAX_TOKENS = 256  # a longer text keeps its start, with a note


def experts_of(config: Any) -> tuple[int, int] | None:
    """(experts, experts per token) of a mixture-of-experts config; None for a dense model."""
    experts = getattr(config, "num_local_experts", None) or getattr(config, "num_experts", None)
    k = getattr(config, "num_experts_per_tok", None)
    return (int(experts), int(k)) if experts and k else None


def expert_load(chosen: list[list[list[int]]], experts: int) -> list[list[float]]:
    """[layer][expert]: the share of the text's tokens sent to each expert (each token counts once per expert it reaches;
    with k experts a token, a layer's shares sum to k)."""
    out = []
    for layer in chosen:
        counts = [0] * experts
        for picks in layer:
            for e in picks:
                counts[e] += 1
        out.append([round(c / max(1, len(layer)), 4) for c in counts])
    return out


@dataclass
class Routing:
    tokens: list[str]  # as the tokenizer names them
    faces: list[str]  # as text, whitespace visible
    experts: int  # experts per layer
    top_k: int  # experts each token is sent to
    router_probs: list[list[list[float]]]  # [layer][token][expert]: softmax of the router's logits
    chosen: list[list[list[int]]]  # [layer][token][k]: the experts the token went to, most probable first
    load: list[list[float]]  # [layer][expert]: share of tokens
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "experts": self.experts, "top_k": self.top_k, "router_probs": self.router_probs,
                "chosen": self.chosen, "load": self.load}


def check_text(text: Any) -> str:
    """The text, checked before any model loads."""
    text = require_text(text, "text", max_chars=MAX_TEXT_CHARS)
    if not text.strip():
        raise InputError("Enter a text: each of its tokens is routed to experts.")
    return text


@no_grad
def route(model: Any, tokenizer: Any, text: Any) -> Routing:
    """Every token's router probabilities and chosen experts in every layer (`output_router_logits`)."""
    text = check_text(text)
    shape = experts_of(model.config)
    if shape is None:
        raise InputError(f"This model ({getattr(model.config, 'model_type', 'unknown')}) has no experts: every token goes through the "
                         "same MLP. Routing needs a mixture-of-experts model (Mixtral-style: num_local_experts).")
    experts, k = shape
    limit = min(MAX_TOKENS, int(getattr(model.config, "max_position_embeddings", MAX_TOKENS)))
    with shared_lock(tokenizer):
        ids = list(tokenizer(text, verbose=False)["input_ids"])
    if not ids:
        raise InputError("The text gave no tokens; enter some words.")
    notes = [f"The text has {len(ids)} tokens; the first {limit} are routed."] if len(ids) > limit else []
    ids = ids[:limit]
    device = next(model.parameters()).device
    out = model(input_ids=torch.tensor([ids], device=device), output_router_logits=True)
    logits = [layer.float().reshape(len(ids), -1) for layer in out.router_logits]
    probs = [layer.softmax(-1) for layer in logits]
    chosen = [p.topk(k, dim=-1).indices.tolist() for p in probs]
    with shared_lock(tokenizer):
        tokens = tokenizer.convert_ids_to_tokens(ids)
        faces = [visible(tokenizer.decode([i])) or t for i, t in zip(ids, tokens)]
    return Routing(tokens, faces, experts, k, [p.tolist() for p in probs], chosen, expert_load(chosen, experts), notes)


MIN_COUNT = 3  # a token must occur this often in the text to be listed as an expert's
TOP_TOKENS = 8  # tokens listed per expert
MAX_READ_TOKENS = 8_192  # tokens of the held-out text read


@dataclass
class ExpertTokens:
    """What one expert's tokens have in common: over a text, the tokens each expert receives as its first choice."""

    source: str  # what text was read
    tokens: int  # how many tokens were routed
    experts: int
    # [layer][expert]: up to TOP_TOKENS (face, times sent here first, times in the text), the tokens this expert most often
    # gets as their first choice, by that share (then by count); only tokens seen at least MIN_COUNT times
    top: list[list[list[tuple[str, int, int]]]]
    load: list[list[float]]  # [layer][expert]: share of first choices


@no_grad
def expert_tokens(model: Any, tokenizer: Any, text: str, source: str, window: int = 128) -> ExpertTokens:
    """Read `text` in windows of `window` tokens (at most MAX_READ_TOKENS) and count, per layer, which expert each token's
    router ranks first; list each expert's most faithful tokens (the share of a token's occurrences it gets first).

    A frequent token (" the") reaches every expert now and then; a token an expert gets nearly every time says what
    the expert is for (punctuation, names, line starts...)."""
    shape = experts_of(model.config)
    if shape is None:
        raise InputError("This model has no experts; choose a mixture-of-experts model.")
    experts, _ = shape
    window = min(window, int(getattr(model.config, "max_position_embeddings", window)))
    with shared_lock(tokenizer):
        ids = list(tokenizer(text, verbose=False)["input_ids"])[:MAX_READ_TOKENS]
    device = next(model.parameters()).device
    firsts: list[list[int]] = []  # [layer][token]
    for s in range(0, len(ids), window):
        out = model(input_ids=torch.tensor([ids[s: s + window]], device=device), output_router_logits=True)
        picks = [layer.float().reshape(-1, experts).argmax(-1).tolist() for layer in out.router_logits]
        firsts = picks if not firsts else [a + b for a, b in zip(firsts, picks)]
    totals: dict[int, int] = {}
    for i in ids:
        totals[i] = totals.get(i, 0) + 1
    with shared_lock(tokenizer):
        faces = {i: visible(tokenizer.decode([i])) or str(i) for i in totals}
    top, load = [], []
    for layer in firsts:
        per_expert: list[dict[int, int]] = [{} for _ in range(experts)]
        for i, e in zip(ids, layer):
            per_expert[e][i] = per_expert[e].get(i, 0) + 1
        ranked = []
        for counts in per_expert:
            kept = [(i, c) for i, c in counts.items() if totals[i] >= MIN_COUNT]
            kept.sort(key=lambda ic: (-ic[1] / totals[ic[0]], -ic[1], ic[0]))
            ranked.append([(faces[i], c, totals[i]) for i, c in kept[:TOP_TOKENS]])
        top.append(ranked)
        load.append([round(sum(c.values()) / max(1, len(ids)), 4) for c in per_expert])
    return ExpertTokens(source, len(ids), experts, top, load)
