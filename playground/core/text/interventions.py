"""Interventions: change one thing inside a decoder and measure what its prediction does. No gradio.

A picture of attention is a claim ("this head looks at the previous name"); an intervention tests it. Three
experiments, each on a GPT-2-family causal LM (the embedded GPT, gpt2 and its family, a session's tiny GPT) or a
Llama-family one (rotary positions, grouped-query attention: a knock-out or a patch is per query head):

- **knock out heads** (head ablation, Michel et al. 2019): head h of layer l writes z^{l,h}_i = Σ_j α_ij v_j, its
  output before the output projection W_O; *zero* sets z^{l,h} to 0, *mean* to its mean over the positions of the
  same text. The **sweep** knocks out every head alone.
- **patch activations** (Meng et al. 2022; Wang et al. 2022): run a corrupted prompt with one activation taken from a
  clean run, and measure how much of the clean answer comes back: with LD = logit(answer) − logit(wrong) at the last
  position, recovery = (LD_patched − LD_corrupt) / (LD_clean − LD_corrupt): 0 = nothing, 1 = all of it.
- **knock out the attention sink**: many heads park attention on the first token; set α_i0 = 0 for every query i > 0
  and renormalize the row, in one layer or all, and read the prediction and the text's bits per character.

No hooks, no processors, no flags: the forward pass is written out (`Decoder`) over the model's own modules, which it
only reads, so any number of users can intervene on the one shared model at once. Every edit is a function of one
pass's tensors. Grids (a sweep, a patching map) are many passes: they run as batches, each starting at the layer where
it first differs from a run already made (the residual stream x^l recorded there), and end at the last position.

    >>> parse_heads("0.1, 2.3", layers=4, heads=4)
    [(0, 1), (2, 3)]
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from playground.core.cache import shared_lock
from playground.core.inputs import require_choice, require_int, require_text
from playground.core.text.tokenize import visible
from playground.errors import InputError
from playground.lazy import no_grad, torch

MAX_TEXT_CHARS = 2_000  # a text past this is refused before it is tokenized
MAX_TOKENS = 128  # knock out named heads, knock out the sink: one pass; a longer text keeps its last 128 tokens
MAX_GRID_TOKENS = 32  # sweep: a pass per head; patching: a pass per (layer, position) or (layer, head). A longer text:
# the sweep keeps its last 32 tokens, patching refuses (its positions are the map's columns)
MAX_HEADS_LISTED = 64  # heads named in one knock-out
BATCH = 64  # passes run together in a grid (memory: BATCH x tokens x width per layer)
TOP_K = 10  # candidates shown before and after
MAX_TOP_K = 50
MODES = ("zero", "mean")
WHATS = ("residual", "heads")
FAMILIES = ("gpt2", "llama")  # written out here (`Decoder`, `LlamaDecoder`); other decoders are refused with a message

Progress = Callable[[float, str], None]


# ---- the forward pass, written out -------------------------------------------------------------------------------


EditZ = Callable[[int, Any], Any]  # (layer, z [B, T, H, d]) -> z: a head's output before W_O
EditAttention = Callable[[int, Any], Any]  # (layer, α [B, H, T, T]) -> α: the attention weights after softmax


@dataclass
class Trace:
    """What one written-out pass recorded (tensors, batch first)."""

    resid: list[Any] = field(default_factory=list)  # per layer l: x^l [B, T, D], the residual stream entering block l
    z: list[Any] = field(default_factory=list)  # per layer: z [B, T, H, d], every head's output before W_O
    attention: list[Any] = field(default_factory=list)  # per layer: α [B, H, T, T] (when asked)


class Decoder:
    """A GPT-2-family causal LM's forward pass, block by block, reading the model's weights and changing nothing.

    x^0 = W_E[t] + W_P[i]; per block l: a = LN_1(x^l); q, k, v = a W_QKV; α = softmax(q k^T / √d + causal mask);
    z = α v (per head); x' = x^l + z W_O; x^{l+1} = x' + MLP(LN_2(x')); logits = LN_f(x^L) W_E^T. Equal to the model's
    own forward pass (tested against it). `Decoder.of(model)` picks the family's pass (`LlamaDecoder` for Llama)."""

    family = "gpt2"
    kinds = ("gpt2",)  # the config model_types this pass reads

    @staticmethod
    def of(model: Any) -> Decoder:
        kind = getattr(model.config, "model_type", "")
        if kind in LlamaDecoder.kinds and hasattr(model, "model"):
            return LlamaDecoder(model)
        return Decoder(model)

    def __init__(self, model: Any) -> None:
        config = model.config
        kind = getattr(config, "model_type", "")
        if kind not in self.kinds or not hasattr(model, "transformer" if self.family == "gpt2" else "model"):
            raise InputError(f"Interventions are written out for GPT-2-family and Llama-family decoders (gpt2, distilgpt2, the "
                             f"embedded GPT, your tiny GPT, Llama-architecture models, Mixtral); this model is "
                             f"{kind or 'of an unknown kind'!r}. Choose one of those.")
        self.model = model
        self.config = config
        self._setup()
        self.device = next(model.parameters()).device

    def _setup(self) -> None:
        config = self.config
        self.blocks = self.model.transformer.h
        self.layers = len(self.blocks)
        self.heads = config.n_head
        self.width = config.n_embd
        self.head_dim = self.width // self.heads
        self.context = int(config.n_positions)

    def scale(self, layer: int) -> float:
        scale = 1 / math.sqrt(self.head_dim) if getattr(self.config, "scale_attn_weights", True) else 1.0
        return scale / (layer + 1) if getattr(self.config, "scale_attn_by_inverse_layer_idx", False) else scale

    def embed(self, ids: Any) -> Any:
        """x^0 [B, T, D] for token ids [B, T]."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        return self.model.transformer.wte(ids) + self.model.transformer.wpe(positions)[None]

    def qkv(self, layer: int, x: Any) -> tuple[Any, Any, Any]:
        """q, k, v [B, H, T, d] of block `layer` from its input x^l (k and v one per query head)."""
        blk = self.blocks[layer]
        B, T, D = x.shape
        q, k, v = blk.attn.c_attn(blk.ln_1(x)).split(D, dim=-1)
        return tuple(t.view(B, T, self.heads, self.head_dim).transpose(1, 2) for t in (q, k, v))

    def finish(self, layer: int, x: Any, z: Any) -> Any:
        """x^{l+1} from x^l and the heads' outputs z [B, T, H, d]: W_O, the residual add, the MLP."""
        blk = self.blocks[layer]
        B, T, _ = x.shape
        x = x + blk.attn.c_proj(z.reshape(B, T, -1))
        return x + blk.mlp(blk.ln_2(x))

    def block(self, layer: int, x: Any, edit_z: EditZ | None = None, edit_attention: EditAttention | None = None,
              trace: Trace | None = None, keep_attention: bool = False) -> Any:
        """x^{l+1} from x^l [B, T, D], with the head outputs z and the weights α open to an edit."""
        T = x.shape[1]
        q, k, v = self.qkv(layer, x)
        scores = (q @ k.transpose(-1, -2)) * self.scale(layer)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
        alpha = scores.float().softmax(-1).to(v.dtype)
        if edit_attention is not None:
            alpha = edit_attention(layer, alpha)
        z = (alpha @ v).transpose(1, 2)  # [B, T, H, d]
        if trace is not None:
            trace.resid.append(x)
            trace.z.append(z)
            if keep_attention:
                trace.attention.append(alpha)
        if edit_z is not None:
            z = edit_z(layer, z)
        return self.finish(layer, x, z)

    def unembed(self, x: Any) -> Any:
        return self.model.lm_head(self.model.transformer.ln_f(x)).float()

    def run(self, x: Any, start: int = 0, *, edit_z: EditZ | None = None, edit_attention: EditAttention | None = None,
            trace: Trace | None = None, keep_attention: bool = False, last_only: bool = True) -> Any:
        """Logits from the residual stream `x` entering block `start`: [B, V] at the last position (`last_only`: the
        vocabulary projection of the other positions is skipped), else [B, T, V]."""
        for layer in range(start, self.layers):
            x = self.block(layer, x, edit_z, edit_attention, trace, keep_attention)
        return self.unembed(x[:, -1] if last_only else x)


class LlamaDecoder(Decoder):
    """The Llama family's pass: no position embedding; per block a = RMSNorm(x^l); q and k rotated by their position (RoPE,
    the model's own rotary embedding); grouped-query attention (each key/value head serves heads / kv heads query heads);
    z W_O; then x' + SwiGLU(RMSNorm(x')); logits = RMSNorm(x^L) W_E^T. Heads count query heads; an edit of z or α is per
    query head, as for GPT-2."""

    family = "llama"
    kinds = ("llama", "mixtral")  # Mixtral: the same block, its MLP a mixture of experts (the module's own forward runs it)

    def _setup(self) -> None:
        config = self.config
        self.blocks = self.model.model.layers
        self.layers = len(self.blocks)
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.width = config.hidden_size
        self.head_dim = getattr(config, "head_dim", None) or self.width // self.heads
        self.context = int(config.max_position_embeddings)

    def scale(self, layer: int) -> float:
        return self.blocks[layer].self_attn.scaling

    def embed(self, ids: Any) -> Any:
        return self.model.model.embed_tokens(ids)

    def qkv(self, layer: int, x: Any) -> tuple[Any, Any, Any]:
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        attn = self.blocks[layer].self_attn
        a = self.blocks[layer].input_layernorm(x)
        B, T, _ = x.shape
        q = attn.q_proj(a).view(B, T, self.heads, self.head_dim).transpose(1, 2)
        k = attn.k_proj(a).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
        v = attn.v_proj(a).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
        positions = torch.arange(T, device=x.device)[None].expand(B, -1)
        cos, sin = self.model.model.rotary_emb(v, positions)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        group = self.heads // self.kv_heads  # query head h reads key/value head h // group
        return q, k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)

    def finish(self, layer: int, x: Any, z: Any) -> Any:
        blk = self.blocks[layer]
        B, T, _ = x.shape
        x = x + blk.self_attn.o_proj(z.reshape(B, T, -1))
        return x + blk.mlp(blk.post_attention_layernorm(x))

    def unembed(self, x: Any) -> Any:
        return self.model.lm_head(self.model.model.norm(x)).float()


# ---- inputs ------------------------------------------------------------------------------------------------------


@dataclass
class Tokens:
    ids: list[int]
    tokens: list[str]  # as the tokenizer names them (GPT-2: "Ġgave")
    faces: list[str]  # as text, whitespace visible ("␣gave")
    chars: int  # characters the tokens after the first cover (bits per character divide by this)
    cut: int  # tokens dropped from the start to fit


def tokenize(tokenizer: Any, text: Any, name: str, cap: int, *, keep_end: bool = True) -> Tokens:
    """The text's tokens; past `cap`, its last `cap` (`keep_end`) or a refusal that says the cap."""
    text = require_text(text, name, max_chars=MAX_TEXT_CHARS)
    if not text.strip():
        raise InputError(f"Enter a {name}: the experiment reads it and predicts the token after it.")
    with shared_lock(tokenizer):
        enc = tokenizer(text, return_offsets_mapping=True, verbose=False)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    if not ids:
        raise InputError(f"The {name} gave no tokens; enter some words.")
    cut = max(0, len(ids) - cap)
    if cut and not keep_end:
        raise InputError(f"The {name} has {len(ids)} tokens; this experiment runs one pass per cell and reads at most {cap}. "
                         "Shorten it.")
    ids, offsets = ids[cut:], offsets[cut:]
    with shared_lock(tokenizer):
        tokens = tokenizer.convert_ids_to_tokens(ids)
        faces = [visible(tokenizer.decode([i])) or t for i, t in zip(ids, tokens)]
    chars = max(1, offsets[-1][1] - offsets[0][1]) if offsets and offsets[-1] else max(1, len(text))
    return Tokens(ids, tokens, faces, chars, cut)


def parse_heads(value: Any, layers: int, heads: int) -> list[tuple[int, int]]:
    """"layer.head" pairs (from 0), comma-separated, checked against the model's shape; repeats dropped."""
    text = require_text(value if value is not None else "", "heads", max_chars=1_000).strip()
    if not text:
        raise InputError("Name the heads to knock out as layer.head, from 0 (e.g. 0.1, 2.3), or 'sweep' for every head alone.")
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) > MAX_HEADS_LISTED:
        raise InputError(f"{len(parts)} heads named; knock out at most {MAX_HEADS_LISTED} at once (the sweep tries every head alone).")
    out: list[tuple[int, int]] = []
    for part in parts:
        match = re.fullmatch(r"(\d+)\s*\.\s*(\d+)", part)
        if not match:
            raise InputError(f"{part!r} is not a head: write layer.head, both from 0 (e.g. 1.3 is layer 1, head 3).")
        layer, head = int(match.group(1)), int(match.group(2))
        if layer >= layers or head >= heads:
            raise InputError(f"Head {part} is not in this model: it has layers 0-{layers - 1} and heads 0-{heads - 1}.")
        if (layer, head) not in out:
            out.append((layer, head))
    return out


def parse_layers(value: Any, layers: int) -> list[int]:
    """"all", or layer numbers from 0, comma-separated."""
    text = require_text(value if value is not None else "", "layers", max_chars=1_000).strip().lower()
    if text in ("", "all"):
        return list(range(layers))
    out: list[int] = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        if not part.isdigit() or int(part) >= layers:
            raise InputError(f"{part!r} is not a layer of this model: write 'all' or layer numbers 0-{layers - 1}, comma-separated.")
        if int(part) not in out:
            out.append(int(part))
    return out


# ---- results -----------------------------------------------------------------------------------------------------


@dataclass
class Candidate:
    token: str  # the token as text
    prob: float

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "prob": self.prob}


def _top(tokenizer: Any, logits: Any, k: int) -> list[Candidate]:
    probs = logits.float().softmax(-1)
    top = probs.topk(min(k, probs.shape[-1]))
    with shared_lock(tokenizer):
        return [Candidate(tokenizer.decode([i]), float(p)) for i, p in zip(top.indices.tolist(), top.values.tolist())]


def _kl(clean_logits: Any, other_logits: Any) -> Any:
    """KL(clean || other) in nats, over the last dimension."""
    p = clean_logits.float().log_softmax(-1)
    q = other_logits.float().log_softmax(-1)
    return (p.exp() * (p - q)).sum(-1).clamp_min(0)


@dataclass
class Ablation:
    """Heads knocked out of one text (`/ablate`): the next-token distribution before and after."""

    tokens: list[str]
    faces: list[str]
    heads: list[tuple[int, int]]  # the heads knocked out; [] for a sweep
    mode: str  # "zero" or "mean"
    clean: list[Candidate]  # the top-k at the last position, as the model stands
    ablated: list[Candidate] | None  # after the knock-out (None for a sweep)
    clean_token: str  # the clean top token
    delta_logprob: Any  # its log-probability after minus before: a float, or [layer][head] for a sweep
    kl: Any  # KL(clean || ablated) in nats: a float, or [layer][head]
    layers: int
    n_heads: int
    cut: int  # tokens dropped from the start to fit
    notes: list[str] = field(default_factory=list)

    @property
    def sweep(self) -> bool:
        return self.ablated is None

    def to_json(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "heads": [f"{layer}.{head}" for layer, head in self.heads], "mode": self.mode,
                "clean": [c.to_json() for c in self.clean],
                "ablated": None if self.ablated is None else [c.to_json() for c in self.ablated],
                "clean_token": self.clean_token, "delta_logprob": self.delta_logprob, "kl": self.kl, "truncated": self.cut > 0}


@dataclass
class Patching:
    """A corrupted prompt run with clean activations patched in (`/patch`)."""

    tokens: list[str]  # the clean prompt's tokens
    corrupt_tokens: list[str]
    faces: list[str]
    corrupt_faces: list[str]
    what: str  # "residual" ([layer][position]) or "heads" ([layer][head])
    ld_clean: float  # logit(answer) − logit(wrong) at the last position, clean run
    ld_corrupt: float
    recovery: list[list[float]]  # (LD_patched − LD_corrupt) / (LD_clean − LD_corrupt)
    answer: str  # the answer token as text
    wrong: str
    answer_id: int
    wrong_id: int
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "corrupt_tokens": self.corrupt_tokens, "what": self.what, "ld_clean": self.ld_clean,
                "ld_corrupt": self.ld_corrupt, "recovery": self.recovery, "answer_id": self.answer_id, "wrong_id": self.wrong_id,
                "answer": self.answer, "wrong": self.wrong}


@dataclass
class SinkKnockout:
    """Attention to the first token taken away (`/sink`)."""

    tokens: list[str]
    faces: list[str]
    layers: list[int]  # the layers knocked out
    sink_share: list[list[float]]  # [layer][head]: mean attention on the first token over the queries after it
    clean: list[Candidate]
    knocked_out: list[Candidate]
    bits_per_char_clean: float  # −Σ log2 p(token | before) over the tokens after the first / their characters
    bits_per_char_knocked_out: float
    cut: int
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "layers": self.layers, "sink_share": self.sink_share,
                "clean": [c.to_json() for c in self.clean], "knocked_out": [c.to_json() for c in self.knocked_out],
                "bits_per_char_clean": self.bits_per_char_clean, "bits_per_char_knocked_out": self.bits_per_char_knocked_out,
                "truncated": self.cut > 0}


# ---- the experiments ---------------------------------------------------------------------------------------------


def _ids(dec: Decoder, t: Tokens) -> Any:
    return torch.tensor([t.ids], device=dec.device)


def _cut_note(t: Tokens, cap: int, what: str) -> list[str]:
    return [f"The text has {t.cut + len(t.ids)} tokens; {what} reads at most {cap}, so it ran on the last {len(t.ids)}."] if t.cut else []


def _cap(dec: Decoder, cap: int) -> int:
    return min(cap, dec.context)


def _chunks(n: int) -> list[Any]:
    return [torch.arange(s, min(n, s + BATCH)) for s in range(0, n, BATCH)]


def _report(progress: Progress | None, done: int, total: int, what: str) -> None:
    if progress is not None:
        progress(done / max(1, total), f"{what}: {done} of {total} passes")


def _replace_heads(layer: int, pairs: list[tuple[int, int]], value: Callable[[int], Any]) -> EditZ:
    """An edit that sets z of the listed heads of `layer` (every position) to value(head) ([T, d] or a scalar)."""
    heads = [h for l_, h in pairs if l_ == layer]

    def edit(at: int, z: Any) -> Any:
        if at != layer or not heads:
            return z
        z = z.clone()
        for h in heads:
            z[:, :, h] = value(h)
        return z

    return edit


def _chain(edits: list[EditZ]) -> EditZ:
    def edit(layer: int, z: Any) -> Any:
        for e in edits:
            z = e(layer, z)
        return z

    return edit


def _mean_z(trace: Trace) -> list[Any]:
    """Per layer: [H, d], each head's output averaged over the positions of the text (mean ablation's value)."""
    return [z[0].mean(0) for z in trace.z]


@no_grad
def knock_out(model: Any, tokenizer: Any, text: Any, heads: Any, mode: Any = "zero", top_k: Any = TOP_K) -> Ablation:
    """The next-token distribution of `text` before and after the named heads' outputs are zeroed or mean-replaced."""
    dec = Decoder.of(model)
    mode = require_choice(mode, "mode", MODES)
    top_k = require_int(top_k, "top_k", low=1, high=MAX_TOP_K)
    pairs = parse_heads(heads, dec.layers, dec.heads)
    cap = _cap(dec, MAX_TOKENS)
    t = tokenize(tokenizer, text, "text", cap)
    trace = Trace()
    clean = dec.run(dec.embed(_ids(dec, t)), trace=trace)[0]
    means = _mean_z(trace)
    edits = [_replace_heads(layer, pairs, (lambda h, m=means[layer]: m[h]) if mode == "mean" else (lambda h: 0.0))
             for layer in sorted({l_ for l_, _ in pairs})]
    first = min(l_ for l_, _ in pairs)
    ablated = dec.run(trace.resid[first], first, edit_z=_chain(edits))[0]  # layers before the first knocked out are unchanged
    top = int(clean.argmax())
    logp_clean, logp_ablated = clean.float().log_softmax(-1), ablated.float().log_softmax(-1)
    with shared_lock(tokenizer):
        clean_token = tokenizer.decode([top])
    return Ablation(t.tokens, t.faces, pairs, mode, _top(tokenizer, clean, top_k), _top(tokenizer, ablated, top_k), clean_token,
                    float(logp_ablated[top] - logp_clean[top]), float(_kl(clean, ablated)), dec.layers, dec.heads, t.cut,
                    _cut_note(t, cap, "knocking out heads"))


@no_grad
def sweep(model: Any, tokenizer: Any, text: Any, mode: Any = "zero", top_k: Any = TOP_K, progress: Progress | None = None) -> Ablation:
    """Every head knocked out alone: [layer][head] change in the clean top token's log-probability, and KL."""
    dec = Decoder.of(model)
    mode = require_choice(mode, "mode", MODES)
    top_k = require_int(top_k, "top_k", low=1, high=MAX_TOP_K)
    cap = _cap(dec, MAX_GRID_TOKENS)
    t = tokenize(tokenizer, text, "text", cap)
    trace = Trace()
    clean = dec.run(dec.embed(_ids(dec, t)), trace=trace)[0]
    means = _mean_z(trace)
    top = int(clean.argmax())
    logp_clean = clean.float().log_softmax(-1)
    delta = [[0.0] * dec.heads for _ in range(dec.layers)]
    kl = [[0.0] * dec.heads for _ in range(dec.layers)]
    total, done = dec.layers * dec.heads, 0
    for layer in range(dec.layers):  # x^l is the clean run's: only layer l onwards is run again
        for which in _chunks(dec.heads):
            def edit(at: int, z: Any, layer=layer, which=which) -> Any:  # batch row b knocks out head which[b]
                if at != layer:
                    return z
                z = z.clone()
                rows = torch.arange(len(which))
                z[rows, :, which] = means[layer][which][:, None, :].to(z.dtype) if mode == "mean" else 0.0
                return z

            x = trace.resid[layer].expand(len(which), -1, -1)
            logits = dec.run(x, layer, edit_z=edit)
            logp = logits.log_softmax(-1)
            for b, h in enumerate(which.tolist()):
                delta[layer][h] = float(logp[b, top] - logp_clean[top])
                kl[layer][h] = float(_kl(clean, logits[b]))
            done += len(which)
            _report(progress, done, total, "knocking out each head")
    with shared_lock(tokenizer):
        clean_token = tokenizer.decode([top])
    notes = _cut_note(t, cap, "the sweep (a pass per head)")
    return Ablation(t.tokens, t.faces, [], mode, _top(tokenizer, clean, top_k), None, clean_token, delta, kl, dec.layers, dec.heads,
                    t.cut, notes)


def answer_token(tokenizer: Any, prompt: str, word: Any, name: str) -> tuple[int, str, str | None]:
    """(id, text, note) of the one token `word` names. A word typed without its leading space after a prompt that does
    not end in one is read with the space (" John"), as a byte-level tokenizer writes the next word, when that is one
    token; the note says so. Anything that is not one token is refused."""
    word = require_text(word if word is not None else "", name, max_chars=100)
    if not word:
        raise InputError(f"Enter the {name} token: one token the model could say next (e.g. ' John').")
    with shared_lock(tokenizer):
        ids = tokenizer(word, add_special_tokens=False, verbose=False)["input_ids"]
        spaced = (tokenizer(" " + word, add_special_tokens=False, verbose=False)["input_ids"]
                  if not word[0].isspace() and not prompt[-1:].isspace() else None)
    if spaced is not None and len(spaced) == 1:
        with shared_lock(tokenizer):
            text = tokenizer.decode(spaced)
        return spaced[0], text, f"The {name} {word!r} was read as {text!r}, with the space that comes before a next word."
    if len(ids) != 1:
        with shared_lock(tokenizer):
            pieces = [visible(tokenizer.decode([i])) for i in ids]
        raise InputError(f"The {name} {word!r} is {len(ids)} tokens here ({' | '.join(pieces)}); it must be one token. "
                         "Choose a shorter or more common word.")
    with shared_lock(tokenizer):
        return ids[0], tokenizer.decode(ids), None


def _logit_difference(logits: Any, answer: int, wrong: int) -> Any:
    return logits[..., answer] - logits[..., wrong]


MIN_LD_GAP = 1e-3  # |LD_clean − LD_corrupt| below this: nothing to recover, the recovery would divide by ~0


@no_grad
def patch(model: Any, tokenizer: Any, clean: Any, corrupt: Any, answer: Any, wrong: Any, what: Any = "residual",
          progress: Progress | None = None) -> Patching:
    """The corrupted prompt run again with one clean activation at a time: the residual stream x^l at one position
    (`residual`: [layer][position]) or one head's output z^{l,h} at every position (`heads`: [layer][head])."""
    dec = Decoder.of(model)
    what = require_choice(what, "what", WHATS)
    cap = _cap(dec, MAX_GRID_TOKENS)
    c = tokenize(tokenizer, clean, "clean prompt", cap, keep_end=False)
    k = tokenize(tokenizer, corrupt, "corrupted prompt", cap, keep_end=False)
    if len(c.ids) != len(k.ids):
        raise InputError(f"The clean prompt has {len(c.ids)} tokens and the corrupted one {len(k.ids)}; patching pairs positions, "
                         "so they must have the same number. Change one word for another of the same token length (names "
                         "swapped, a city for a city).")
    notes = []
    answer_id, answer, note = answer_token(tokenizer, str(clean), answer, "answer")
    notes += [note] if note else []
    wrong_id, wrong, note = answer_token(tokenizer, str(clean), wrong, "wrong")
    notes += [note] if note else []
    if answer_id == wrong_id:
        raise InputError("The answer and the wrong token are the same token; the logit difference needs two different ones.")
    if c.ids == k.ids:
        notes.append("The two prompts are the same: patching cannot change anything.")
    clean_trace, corrupt_trace = Trace(), Trace()
    ld_clean = float(_logit_difference(dec.run(dec.embed(_ids(dec, c)), trace=clean_trace)[0], answer_id, wrong_id))
    ld_corrupt = float(_logit_difference(dec.run(dec.embed(_ids(dec, k)), trace=corrupt_trace)[0], answer_id, wrong_id))
    gap = ld_clean - ld_corrupt
    if abs(gap) < MIN_LD_GAP:
        raise InputError(f"The logit difference is {ld_clean:.3f} on both prompts, so there is nothing to recover. Choose "
                         "prompts whose answers differ (the corruption must change what the model predicts).")
    lds = patched_logit_differences(dec, clean_trace, corrupt_trace, what, answer_id, wrong_id, progress)
    recovery = [[(v - ld_corrupt) / gap for v in row] for row in lds]
    return Patching(c.tokens, k.tokens, c.faces, k.faces, what, ld_clean, ld_corrupt, recovery, answer, wrong, answer_id,
                    wrong_id, notes)


def patched_logit_differences(dec: Decoder, source: Trace, target: Trace, what: str, answer: int, wrong: int,
                              progress: Progress | None = None) -> list[list[float]]:
    """LD of the `target` run with one activation of the `source` run patched in, per cell: [layer][position] for
    `residual` (x^l at one position), [layer][head] for `heads` (z^{l,h} at every position). Each batch starts at the
    patched layer from the target's own x^l (the layers before are the target's, unchanged)."""
    T = target.resid[0].shape[1]
    columns = T if what == "residual" else dec.heads
    out = [[0.0] * columns for _ in range(dec.layers)]
    total, done = dec.layers * columns, 0
    for layer in range(dec.layers):
        for which in _chunks(columns):
            rows = torch.arange(len(which))
            x = target.resid[layer].expand(len(which), -1, -1)
            edit = None
            if what == "residual":  # row b: position which[b] of x^l from the source
                x = x.clone()
                x[rows, which] = source.resid[layer][0, which]
            else:  # row b: head which[b]'s output at every position from the source
                def edit(at: int, z: Any, layer=layer, which=which, rows=rows) -> Any:
                    if at != layer:
                        return z
                    z = z.clone()
                    z[rows, :, which] = source.z[layer][0][:, which].transpose(0, 1)
                    return z
            lds = _logit_difference(dec.run(x, layer, edit_z=edit), answer, wrong)
            for b, column in enumerate(which.tolist()):
                out[layer][column] = float(lds[b])
            done += len(which)
            _report(progress, done, total, "patching")
    return out


def knock_out_first(layers: list[int]) -> EditAttention:
    """α_i0 = 0 for every query i > 0 in `layers`, each row renormalized (the same as masking the first key before the
    softmax); query 0 sees only itself and is left alone."""
    chosen = set(layers)

    def edit(layer: int, alpha: Any) -> Any:
        if layer not in chosen or alpha.shape[-1] < 2:
            return alpha
        alpha = alpha.clone()
        alpha[..., 1:, 0] = 0
        rows = alpha[..., 1:, :]
        alpha[..., 1:, :] = rows / rows.sum(-1, keepdim=True).clamp_min(torch.finfo(rows.dtype).tiny)
        return alpha

    return edit


def _bits_per_char(logits: Any, ids: list[int], chars: int) -> float:
    """−Σ log2 p(token | the ones before) over the tokens after the first, per character they cover."""
    logp = logits[0, :-1].float().log_softmax(-1)
    target = torch.tensor(ids[1:], device=logits.device)
    return float(-logp.gather(1, target[:, None]).sum() / math.log(2)) / chars


@no_grad
def sink(model: Any, tokenizer: Any, text: Any, layers: Any = "all", top_k: Any = TOP_K) -> SinkKnockout:
    """How much attention each head parks on the first token, and what the model does when it cannot."""
    dec = Decoder.of(model)
    top_k = require_int(top_k, "top_k", low=1, high=MAX_TOP_K)
    chosen = parse_layers(layers, dec.layers)
    cap = _cap(dec, MAX_TOKENS)
    t = tokenize(tokenizer, text, "text", cap)
    if len(t.ids) < 2:
        raise InputError("Enter at least two tokens: the first is the sink, the others attend to it.")
    x0 = dec.embed(_ids(dec, t))
    trace = Trace()
    clean = dec.run(x0, trace=trace, keep_attention=True, last_only=False)
    share = [a[0, :, 1:, 0].float().mean(-1).tolist() for a in trace.attention]  # [layer][head], queries after the first
    knocked = dec.run(x0, edit_attention=knock_out_first(chosen), last_only=False)
    return SinkKnockout(t.tokens, t.faces, chosen, share, _top(tokenizer, clean[0, -1], top_k), _top(tokenizer, knocked[0, -1], top_k),
                        _bits_per_char(clean, t.ids, t.chars), _bits_per_char(knocked, t.ids, t.chars), t.cut,
                        _cut_note(t, cap, "the sink experiment"))
