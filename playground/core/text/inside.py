"""Inside one transformer block, on the model's own numbers: embeddings, one head step by step, the block,
the residual stream, where the parameters are; and per-token surprisal under a causal LM.

Notation, for layer l, head h and query token i (tokens j = 0..T-1, d_head = d_k):

    x_j   = n(h_j)                 the layer's input h_j after the norm the family puts before attention
                                   (GPT-2: LayerNorm ln_1; T5: RMSNorm; BERT: none, it normalizes after)
    q_i   = W_Q x_i,  k_j = W_K x_j,  v_j = W_V x_j          (head h's slices, [d_head] each)
    s_ij  = q_i · k_j                                          raw score
    a_ij  = s_ij / √d_k  (+ b_ij, T5's learned relative-position bias; T5 has no 1/√d_k: its init folds it in)
    a_ij  = -∞ where j may not be attended (decoders: j > i, the causal mask)
    α_ij  = softmax_j(a_ij)                                    = output_attentions[l][h, i, j]
    o_i^h = Σ_j α_ij v_j                                       the head's output [d_head]
    attn_i = W_O [o_i^1; ...; o_i^H] + b_O                     every head through the output projection
    pre-norm (GPT-2, T5):   m_i = h_i + attn_i,         h'_i = m_i + MLP(n2(m_i))
    post-norm (BERT):       m_i = LN1(h_i + attn_i),    h'_i = LN2(m_i + MLP(m_i))

>>> import torch
>>> scores, scale = torch.tensor([2.0, 0.0]), 0.5
>>> [round(w, 3) for w in torch.softmax(scores * scale, -1).tolist()]   # e / (e + 1) and 1 / (e + 1)
[0.731, 0.269]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from playground.core.cache import shared_lock
from playground.core.inputs import require_choice, require_int, require_text
from playground.core.text.tokenize import visible
from playground.errors import InputError
from playground.lazy import no_grad, torch
from playground.models.architecture import architecture_of

MAX_TOKENS = 128  # tokens per text (the query can be any of them)
MAX_TEXT_CHARS = 20_000  # refused before tokenizing
MAX_WORDS = 40  # words in the embedding-space projection
NEIGHBOURS = 8  # nearest tokens in the input embedding matrix
TOP_NEURONS = 10  # the MLP's most active neurons shown
MAX_SCORE_TOKENS = 1024  # /score: tokens scored (and at most the model's context)
FAMILIES = ("gpt2", "bert", "t5", "llama")
STACKS = ("encoder", "decoder")


@dataclass
class Embedding:
    token: list[float]  # the token's row of the input embedding matrix
    position: list[float] | None  # the learned absolute position embedding (GPT-2, BERT); None for T5
    token_type: list[float] | None  # BERT's segment embedding (segment 0); None otherwise
    sum: list[float]  # what the first layer reads (BERT: before its embedding LayerNorm)


@dataclass
class Neuron:
    index: int  # the neuron's index in the MLP's hidden layer
    activation: float  # its value after the activation function (gated models: act(W0 x) * W1 x)


@dataclass
class LayerStep:
    """One layer's contributions to the query token: what the residual stream plot draws."""
    layer: int
    hidden_in_norm: float  # ‖h_i‖ before the layer
    attention_norm: float  # ‖attn_i‖ (plus cross-attention for a T5 decoder)
    mlp_norm: float  # ‖MLP output‖
    hidden_out_norm: float  # ‖h'_i‖ after the layer


@dataclass
class Component:
    name: str  # e.g. "attention Q/K/V"
    count: int  # parameters, tied weights counted once
    formula: str  # the count in the config's terms, e.g. "L·3·(d·d + d) = 4·3·(256·256 + 256)"


@dataclass
class Inside:
    model: str
    architecture: str  # "encoder", "decoder" or "encoder-decoder"
    family: str  # "gpt2", "bert" or "t5"
    stack: str  # "encoder" or "decoder" (what the layer belongs to)
    tokens: list[str]  # the stack's tokens (T5 decoder: its input, the model's own greedy output shifted right)
    token_ids: list[int]  # their ids
    layer: int
    head: int
    token: int
    norm_placement: str  # "pre" (GPT-2, T5) or "post" (BERT)
    activation: str  # the MLP's activation, e.g. "gelu_new", "relu", "gated-gelu"
    embedding: Embedding
    x: list[float]  # the normalized input the head reads, for the query token [d_model]
    q: list[float]  # [d_head]
    k: list[list[float]]  # [tokens][d_head]
    v: list[list[float]]  # [tokens][d_head]
    scores: list[float]  # q·k_j [tokens]
    scale: float  # 1/√d_k (GPT-2, BERT); 1.0 for T5
    position_bias: list[float] | None  # T5's relative-position bias for this head and query [tokens]
    mask: list[bool]  # may attend [tokens]
    weights: list[float]  # softmax [tokens]
    head_output: list[float]  # Σ_j α_ij v_j [d_head]
    head_projected: list[float]  # the head's slice of W_O applied to head_output [d_model] (no bias)
    attention_output: list[float]  # all heads through W_O, before the residual add [d_model]
    cross_attention_output: list[float] | None  # T5 decoder: the cross-attention sublayer's output; else None
    mlp_output: list[float]  # [d_model]
    hidden_in: list[float]  # the token's hidden state before this layer [d_model]
    hidden_out: list[float]  # after it (before any final norm of the stack) [d_model]
    neurons: list[Neuron]  # the MLP's most active neurons for the token
    residual: list[LayerStep]  # every layer of the stack, for the query token
    components: list[Component]  # where the parameters are
    total_parameters: int  # sum(p.numel()) over unique parameters
    relative_bias: dict[str, Any] | None = None  # T5: {"distances": [...], "values": [head][distance]}
    notes: list[str] = field(default_factory=list)
    faces: list[str] = field(default_factory=list)  # the tokens as the page shows them (decoded, spaces as ␣: "␣king", not "Ġking")
    rope: dict[str, Any] | None = None  # Llama: {"base", "angles" [d/2] (θ_i·position of the query), "q_unrotated", "q_rotated",
    # "k_unrotated" [tokens][d], "k_rotated"}; None for a family with other positions
    kv_head: int | None = None  # grouped-query attention: the key/value head this query head reads (None: one per head)
    n_kv_heads: int | None = None
    learned_positions: dict[str, Any] | None = None  # the page's GPT-2 counterpart beside RoPE: see learned_position_curves
    experts: dict[str, Any] | None = None  # Mixtral: {"count", "top_k", "router_probs" [E], "chosen" [k]} for the token's MLP

    def to_json(self) -> dict[str, Any]:
        """The `/inside` API's answer."""
        e = self.embedding
        return {
            "model": self.model, "architecture": self.architecture, "family": self.family, "stack": self.stack,
            "tokens": self.tokens, "token_ids": self.token_ids, "layer": self.layer, "head": self.head, "token": self.token,
            "embedding": {"token": e.token, "position": e.position, "token_type": e.token_type, "sum": e.sum},
            "x": self.x, "q": self.q, "k": self.k, "v": self.v, "scores": self.scores, "scale": self.scale,
            "position_bias": self.position_bias, "mask": self.mask, "weights": self.weights,
            "head_output": self.head_output, "head_projected": self.head_projected,
            "attention_output": self.attention_output, "cross_attention_output": self.cross_attention_output,
            "mlp_output": self.mlp_output, "hidden_in": self.hidden_in, "hidden_out": self.hidden_out,
            "norm_placement": self.norm_placement, "activation": self.activation,
            "parameters": {c.name: c.count for c in self.components}, "total_parameters": self.total_parameters,
            "rope": self.rope, "kv_head": self.kv_head, "n_kv_heads": self.n_kv_heads, "experts": self.experts,
        }


def family_of(config: Any) -> str:
    """"gpt2", "bert", "t5" or "llama" (Mixtral counts as Llama: the same block, its MLP split into experts)."""
    kind = getattr(config, "model_type", "")
    if kind == "mixtral":
        return "llama"
    if kind not in FAMILIES:
        raise InputError(f"The Inside view knows GPT-2-, BERT-, T5- and Llama-family (and Mixtral) models; this one is "
                         f"{kind or 'unknown'!r}.")
    return kind


def _list(t: torch.Tensor) -> list:
    return t.detach().float().cpu().tolist()


# ---- one layer, written out per family ------------------------------------------------------------------


@dataclass
class _Look:
    """One layer's numbers for query token i (tensors; the public result holds lists)."""
    x: torch.Tensor
    q: torch.Tensor  # [H, d]
    k: torch.Tensor  # [T, H, d]
    v: torch.Tensor  # [T, H, d]
    scores: torch.Tensor  # [H, T]
    scale: float
    bias: torch.Tensor | None  # [H, T]
    mask: torch.Tensor  # [T] bool
    weights: torch.Tensor  # [H, T]
    heads_out: torch.Tensor  # [H, d]
    w_o: torch.Tensor  # [H*d, D]: rows of head h are its slice
    attention_output: torch.Tensor  # [D]
    cross: torch.Tensor | None
    mlp_output: torch.Tensor
    hidden_in: torch.Tensor
    hidden_out: torch.Tensor
    neurons: torch.Tensor  # [d_ff] activations
    rope: dict[str, torch.Tensor] | None = None  # Llama: q [H, d] and k [T, KV, d] before and after rotation; the angles


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, bias: torch.Tensor | None, mask: torch.Tensor):
    """q [H, d], k/v [T, H, d] -> raw scores [H, T], weights [H, T], head outputs [H, d]."""
    scores = torch.einsum("hd,thd->ht", q, k)
    logits = scores * scale + (bias if bias is not None else 0)
    logits = logits.masked_fill(~mask[None, :], torch.finfo(logits.dtype).min)
    weights = logits.softmax(-1)
    return scores, weights, torch.einsum("ht,thd->hd", weights, v)


def _gpt2_layer(blk: Any, layer: int, h: torch.Tensor, i: int, config: Any, alpha: torch.Tensor | None = None) -> _Look:
    """`alpha` [H, T]: the forward pass's own weights for query i; given, only the values are computed (the
    residual-stream view needs each layer's output, not its scores: a twelfth of the layer's work, not a quarter)."""
    T, D = h.shape
    H = config.n_head
    d = D // H
    x = blk.ln_1(h)
    scale = 1 / math.sqrt(d) if getattr(config, "scale_attn_weights", True) else 1.0
    if getattr(config, "scale_attn_by_inverse_layer_idx", False):
        scale /= layer + 1
    mask = torch.arange(T, device=h.device) <= i  # causal
    if alpha is None:
        q, k, v = blk.attn.c_attn(x).split(D, dim=-1)  # one matrix computes q, k and v: [T, 3D]
        q, k, v = q[i].view(H, d), k.view(T, H, d), v.view(T, H, d)
        scores, weights, heads_out = _attend(q, k, v, scale, None, mask)
    else:  # Conv1D: y = x W + b with W [in, out]; v is the last third
        v = (x @ blk.attn.c_attn.weight[:, 2 * D:] + blk.attn.c_attn.bias[2 * D:]).view(T, H, d)
        q = k = scores = None
        weights, heads_out = alpha, torch.einsum("ht,thd->hd", alpha, v)
    attention_output = blk.attn.c_proj(heads_out.reshape(D))
    mid = h[i] + attention_output
    act = blk.mlp.act(blk.mlp.c_fc(blk.ln_2(mid)))
    mlp_output = blk.mlp.c_proj(act)
    return _Look(x[i], q, k, v, scores, scale, None, mask, weights, heads_out,
                 blk.attn.c_proj.weight, attention_output, None, mlp_output, h[i], mid + mlp_output, act)


def _bert_layer(blk: Any, h: torch.Tensor, i: int, config: Any, alpha: torch.Tensor | None = None) -> _Look:
    T, D = h.shape
    H = config.num_attention_heads
    d = D // H
    sa = blk.attention.self
    v = sa.value(h).view(T, H, d)
    mask = torch.ones(T, dtype=torch.bool, device=h.device)  # one text, no padding: every token sees every token
    if alpha is None:
        q, k = sa.query(h[i]).view(H, d), sa.key(h).view(T, H, d)
        scores, weights, heads_out = _attend(q, k, v, 1 / math.sqrt(d), None, mask)
    else:
        q = k = scores = None
        weights, heads_out = alpha, torch.einsum("ht,thd->hd", alpha, v)
    attention_output = blk.attention.output.dense(heads_out.reshape(D))
    mid = blk.attention.output.LayerNorm(attention_output + h[i])
    act = blk.intermediate(mid)  # dense, then the activation
    mlp_output = blk.output.dense(act)
    hidden_out = blk.output.LayerNorm(mlp_output + mid)
    return _Look(h[i], q, k, v, scores, 1 / math.sqrt(d), None, mask, weights, heads_out, blk.attention.output.dense.weight.T,
                 attention_output, None, mlp_output, h[i], hidden_out, act)


def _t5_mlp(ff: Any, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dense = ff.DenseReluDense
    if hasattr(dense, "wi_0"):  # gated (T5 v1.1, flan-t5): act(W0 y) * (W1 y)
        act = dense.act(dense.wi_0(y)) * dense.wi_1(y)
    else:
        act = dense.act(dense.wi(y))
    return dense.wo(act), act


def _t5_layer(stack: Any, layer: int, h: torch.Tensor, i: int, config: Any, encoder_out: torch.Tensor | None,
              alpha: torch.Tensor | None = None, cross_alpha: torch.Tensor | None = None) -> _Look:
    T, D = h.shape
    H, d = config.num_heads, config.d_kv
    blk = stack.block[layer]
    sa = blk.layer[0].SelfAttention
    x = blk.layer[0].layer_norm(h)
    v = sa.v(x).view(T, H, d)
    decoder = bool(stack.is_decoder)
    mask = torch.arange(T, device=h.device) <= i if decoder else torch.ones(T, dtype=torch.bool, device=h.device)
    bias = None
    if alpha is None:
        q, k = sa.q(x[i]).view(H, d), sa.k(x).view(T, H, d)
        bias = stack.block[0].layer[0].SelfAttention.compute_bias(T, T, device=h.device)[0, :, i, :]  # layer 0's table, shared
        scores, weights, heads_out = _attend(q, k, v, 1.0, bias, mask)
    else:
        q = k = scores = None
        weights, heads_out = alpha, torch.einsum("ht,thd->hd", alpha, v)
    attention_output = sa.o(heads_out.reshape(H * d))
    mid = h[i] + attention_output
    cross = None
    if decoder:  # cross-attention: the decoder token's query over the encoder's final output (no position bias)
        ca, y = blk.layer[1].EncDecAttention, blk.layer[1].layer_norm(mid)
        S = encoder_out.shape[0]
        cv = ca.v(encoder_out).view(S, H, d)
        if cross_alpha is None:
            _, _, cross_heads = _attend(
                ca.q(y).view(H, d), ca.k(encoder_out).view(S, H, d), cv, 1.0, None, torch.ones(S, dtype=torch.bool, device=h.device)
            )
        else:
            cross_heads = torch.einsum("hs,shd->hd", cross_alpha, cv)
        cross = ca.o(cross_heads.reshape(H * d))
        mid = mid + cross
    mlp_output, act = _t5_mlp(blk.layer[-1], blk.layer[-1].layer_norm(mid))
    return _Look(x[i], q, k, v, scores, 1.0, bias, mask, weights, heads_out, sa.o.weight.T, attention_output, cross, mlp_output,
                 h[i], mid + mlp_output, act)


def _llama_layer(model: Any, layer: int, h: torch.Tensor, i: int, alpha: torch.Tensor | None = None) -> _Look:
    """x = RMSNorm(h) (no mean subtraction, no bias); q, k, v; q and k rotated by their positions (RoPE, the model's own
    cos and sin from θ_i = base^(−2i/d)); each key/value head serves heads / kv heads query heads; SwiGLU:
    W_down (silu(W_gate y) ⊙ W_up y), y = RMSNorm(h + attn)."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    config = model.config
    blk = model.model.layers[layer]
    sa = blk.self_attn
    T, D = h.shape
    H = config.num_attention_heads
    KV = getattr(config, "num_key_value_heads", None) or H
    d = getattr(config, "head_dim", None) or D // H
    group = H // KV
    x = blk.input_layernorm(h)
    mask = torch.arange(T, device=h.device) <= i
    if alpha is not None:  # the residual-stream view: the forward pass's own weights, so only the values are needed
        v = sa.v_proj(x).view(T, KV, d).repeat_interleave(group, dim=1)  # [T, H, d]: query head h reads kv head h // group
        q = k = scores = rope = None
        weights, heads_out = alpha, torch.einsum("ht,thd->hd", alpha, v)
    else:
        q0, k0, v0 = sa.q_proj(x).view(T, H, d), sa.k_proj(x).view(T, KV, d), sa.v_proj(x).view(T, KV, d)
        positions = torch.arange(T, device=h.device)[None]
        cos, sin = model.model.rotary_emb(v0[None], positions)
        q_rot, k_rot = apply_rotary_pos_emb(q0.transpose(0, 1)[None], k0.transpose(0, 1)[None], cos, sin)  # [1, H|KV, T, d]
        q_rot, k_rot = q_rot[0].transpose(0, 1), k_rot[0].transpose(0, 1)  # [T, H, d], [T, KV, d]
        v = v0.repeat_interleave(group, dim=1)  # [T, H, d]: query head h reads key/value head h // group
        q, k = q_rot[i], k_rot.repeat_interleave(group, dim=1)
        scores, weights, heads_out = _attend(q, k, v, sa.scaling, None, mask)
        inv_freq = model.model.rotary_emb.inv_freq.float()
        rope = {"q_unrotated": q0[i], "q_rotated": q_rot[i], "k_unrotated": k0, "k_rotated": k_rot, "angles": inv_freq * i}
    attention_output = sa.o_proj(heads_out.reshape(H * d))
    mid = h[i] + attention_output
    y = blk.post_attention_layernorm(mid)
    if hasattr(blk.mlp, "experts"):  # Mixtral: the router picks top-k experts, each a SwiGLU; their outputs mixed by p
        mlp_output, act = _moe_mlp(blk.mlp, y, config)
    else:
        act = blk.mlp.act_fn(blk.mlp.gate_proj(y)) * blk.mlp.up_proj(y)
        mlp_output = blk.mlp.down_proj(act)
    return _Look(x[i], q, k, v, scores, float(sa.scaling), None, mask, weights, heads_out, sa.o_proj.weight.T, attention_output, None,
                 mlp_output, h[i], mid + mlp_output, act, rope)


def _moe_mlp(moe: Any, y: torch.Tensor, config: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """A Mixtral block's MLP for one token, written out: p = softmax(W_r y); the top-k experts e, their weights p_e
    renormalized to sum to 1; Σ_e w_e · W_down,e (silu(W_gate,e y) ⊙ W_up,e y). Returns (the output, the router's p)."""
    k = config.num_experts_per_tok
    probs = (y @ moe.gate.weight.T).float().softmax(-1)
    top_p, top = probs.topk(k)
    weights = top_p / top_p.sum() if getattr(config, "norm_topk_prob", True) else top_p
    out = torch.zeros_like(y)
    experts = moe.experts
    for w, e in zip(weights.tolist(), top.tolist()):
        gate, up = (experts.gate_up_proj[e] @ y).chunk(2)
        out = out + w * (experts.down_proj[e] @ (experts.act_fn(gate) * up))
    return out, probs


def _parts(model: Any, family: str, stack: str):
    """(the layers' container, number of layers, heads, the input embedding module)."""
    config = model.config
    if family == "gpt2":
        base = model.transformer if hasattr(model, "transformer") else model
        return base, config.n_layer, config.n_head, base.wte
    if family == "bert":
        base = model.bert if hasattr(model, "bert") else model
        return base, config.num_hidden_layers, config.num_attention_heads, base.embeddings.word_embeddings
    if family == "llama":
        return model.model, config.num_hidden_layers, config.num_attention_heads, model.model.embed_tokens
    st = model.encoder if stack == "encoder" else model.decoder
    return st, len(st.block), config.num_heads, model.get_input_embeddings()


def layers_and_heads(model: Any, stack: str = "") -> tuple[int, int]:
    """(layers, heads) of the stack the Inside view would read (`stack` "" is the model's main one)."""
    family = family_of(model.config)
    _, n_layers, n_heads, _ = _parts(model, family, stack if family == "t5" and stack == "decoder" else "encoder")
    return n_layers, n_heads


def _look(model: Any, family: str, stack: str, layer: int, h: torch.Tensor, i: int, encoder_out: torch.Tensor | None,
          alpha: torch.Tensor | None = None, cross_alpha: torch.Tensor | None = None) -> _Look:
    base, *_ = _parts(model, family, stack)
    if family == "gpt2":
        return _gpt2_layer(base.h[layer], layer, h, i, model.config, alpha)
    if family == "bert":
        return _bert_layer(base.encoder.layer[layer], h, i, model.config, alpha)
    if family == "llama":
        return _llama_layer(model, layer, h, i, alpha)
    return _t5_layer(base, layer, h, i, model.config, encoder_out, alpha, cross_alpha)


def activation_name(model: Any, family: str) -> str:
    config = model.config
    if family == "gpt2":
        return config.activation_function
    if family == "bert":
        return config.hidden_act
    if family == "llama":
        experts = getattr(config, "num_local_experts", 0)
        moe = f"; {experts} experts, {config.num_experts_per_tok} a token" if experts else ""
        return f"swiglu ({config.hidden_act} gate{moe})"
    return ("gated-" if getattr(config, "is_gated_act", False) else "") + config.dense_act_fn


# ---- the request ------------------------------------------------------------------------------------------


def check_request(text: Any, layer: Any, head: Any, token: Any, stack: Any) -> tuple[str, int, int, int, str]:
    """Validated (text, layer, head, token, stack); the ranges are checked against the model once it is known."""
    text = require_text(text, "text", max_chars=MAX_TEXT_CHARS)
    if not text.strip():
        raise InputError("Enter a text to look inside the model with.")
    stack = require_text(stack if stack is not None else "", "stack", max_chars=20).strip().lower()
    if stack:
        require_choice(stack, "stack", list(STACKS))
    return (text, require_int(layer, "layer", low=0, high=10_000), require_int(head, "head", low=0, high=10_000),
            require_int(token, "token", low=-1, high=10_000), stack)


@no_grad
def inside(model: Any, tokenizer: Any, text: str, layer: int, head: int, token: int = -1, stack: str = "", *, name: str = "") -> Inside:
    """Everything the Inside tab shows for one layer, head and query token (`token` -1: the last one).

    Layers, heads and tokens count from 0. `stack` picks a T5's "encoder" (default) or "decoder"; the decoder is
    fed the model's own greedy output, as in the Attention tab.
    """
    text, layer, head, token, stack = check_request(text, layer, head, token, stack)
    family = family_of(model.config)
    arch = architecture_of(model.config)
    if family != "t5" and stack == "decoder":
        raise InputError(f"A {family} model has one stack; 'decoder' is for encoder-decoders such as T5.")
    stack = stack or ("decoder" if arch == "decoder" else "encoder")
    stack = "encoder" if family == "bert" else stack
    config = model.config
    device = next(model.parameters()).device
    limit = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None) or MAX_TOKENS
    cap = min(MAX_TOKENS, int(limit))
    with shared_lock(tokenizer):  # shared by every user: one call at a time
        n_before = len(tokenizer(text, verbose=False)["input_ids"])
        enc = tokenizer(text, truncation=True, max_length=cap, return_tensors="pt", verbose=False)
    ids = enc["input_ids"].to(device)
    notes = [f"The text has {n_before} tokens; the first {cap} are used."] if n_before > cap else []
    encoder_out, cross = None, None
    if family == "t5":
        out_enc = model.encoder(input_ids=ids, output_hidden_states=True, output_attentions=True)
        encoder_out = out_enc.last_hidden_state[0]
        if stack == "decoder":
            generated = model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=min(cap, 64), do_sample=False, num_beams=1
            )
            dec_ids = generated[:, :-1] if generated.shape[1] > 1 else generated  # the last token is never an input
            out = model.decoder(input_ids=dec_ids, encoder_hidden_states=out_enc.last_hidden_state, output_hidden_states=True,
                                output_attentions=True)
            hidden, attentions, cross, ids_shown = out.hidden_states, out.attentions, out.cross_attentions, dec_ids
            with shared_lock(tokenizer):
                notes.append(
                    f"The decoder is fed the model's own greedy output, {tokenizer.decode(generated[0], skip_special_tokens=True)!r}."
                )
        else:
            hidden, attentions, ids_shown = out_enc.hidden_states, out_enc.attentions, ids
    else:
        out = model(input_ids=ids, output_hidden_states=True, output_attentions=True)
        hidden, attentions, ids_shown = out.hidden_states, out.attentions, ids
    if attentions is None or attentions[0] is None:
        raise InputError("This model was loaded without eager attention, so it returns no weights; load it with attention=True.")
    _, n_layers, n_heads, embed = _parts(model, family, stack)
    T = ids_shown.shape[1]
    layer = require_int(layer, "layer", low=0, high=n_layers - 1)
    head = require_int(head, "head", low=0, high=n_heads - 1)
    token = T - 1 if token == -1 else require_int(token, "token", low=0, high=T - 1)
    seq = ids_shown[0]
    hs = [hs_[0] for hs_ in hidden]  # in the model's own dtype and device: the layers' weights read them as they are
    steps, look = [], None
    for l_ in range(n_layers):
        # each layer reads the stack's hidden state before it (hidden_states[l]); the chosen layer is computed in full
        # (scores, mask, softmax), the others from the forward pass's own weights for the query token
        alpha = None if l_ == layer else attentions[l_][0, :, token]
        cross_alpha = None if l_ == layer or cross is None else cross[l_][0, :, token]
        cur = _look(model, family, stack, l_, hs[l_], token, encoder_out, alpha, cross_alpha)
        attn_norm = cur.attention_output + (cur.cross if cur.cross is not None else 0)
        steps.append(
            LayerStep(l_, float(cur.hidden_in.norm()), float(attn_norm.norm()), float(cur.mlp_output.norm()), float(cur.hidden_out.norm()))
        )
        if l_ == layer:
            look = cur
    with shared_lock(tokenizer):
        tokens = tokenizer.convert_ids_to_tokens(seq.tolist())
        # byte-level BPE spells a space as "Ġ" and a newline as "Ċ": decoded, with ␣ and ↵, as the other tabs show them;
        # WordPiece's "##" and SentencePiece's "▁" already say where a word starts, and stay
        faces = [visible(tokenizer.decode([i])) or t if any(c in t for c in "ĠĊĉ") else t for i, t in zip(seq.tolist(), tokens)]
    relative = _relative_bias(model, stack) if family == "t5" else None
    components = parameter_components(model)
    moe = int(getattr(config, "num_local_experts", 0) or 0) if family == "llama" else 0  # Mixtral: the MLP's "neurons" are experts
    return Inside(
        model=name,
        architecture=arch,
        family=family,
        stack=stack,
        tokens=tokens,
        faces=faces,
        token_ids=seq.tolist(),
        layer=layer,
        head=head,
        token=token,
        norm_placement="post" if family == "bert" else "pre",
        rope=_rope_json(model, look, head) if look.rope is not None else None,
        kv_head=head // (n_heads // _kv_heads(model)) if family == "llama" else None,
        n_kv_heads=_kv_heads(model) if family == "llama" else None,
        activation=activation_name(model, family),
        embedding=_embedding(model, family, stack, seq, token, embed),
        x=_list(look.x),
        q=_list(look.q[head]),
        k=_list(look.k[:, head]),
        v=_list(look.v[:, head]),
        scores=_list(look.scores[head]),
        scale=look.scale,
        position_bias=_list(look.bias[head]) if look.bias is not None else None,
        mask=look.mask.tolist(),
        weights=_list(look.weights[head]),
        head_output=_list(look.heads_out[head]),
        head_projected=_list(look.heads_out[head] @ look.w_o[head * look.q.shape[1] : (head + 1) * look.q.shape[1]]),
        attention_output=_list(look.attention_output),
        cross_attention_output=_list(look.cross) if look.cross is not None else None,
        mlp_output=_list(look.mlp_output),
        hidden_in=_list(look.hidden_in),
        hidden_out=_list(look.hidden_out),
        neurons=[] if moe else
        [Neuron(int(n), float(look.neurons[n])) for n in look.neurons.abs().topk(min(TOP_NEURONS, look.neurons.numel())).indices],
        experts={"count": moe, "top_k": config.num_experts_per_tok, "router_probs": _list(look.neurons),
                 "chosen": look.neurons.topk(config.num_experts_per_tok).indices.tolist()} if moe else None,
        residual=steps,
        components=components,
        total_parameters=sum(c.count for c in components),
        relative_bias=relative,
        notes=notes,
    )


def _kv_heads(model: Any) -> int:
    return int(getattr(model.config, "num_key_value_heads", None) or model.config.num_attention_heads)


def _rope_json(model: Any, look: _Look, head: int) -> dict[str, Any]:
    """The rotation of this head's query and of its key/value head's keys, and the angle of every dimension pair."""
    kv = head // (model.config.num_attention_heads // _kv_heads(model))
    r = look.rope
    return {"base": float(getattr(model.config, "rope_theta", None) or model.config.rope_parameters["rope_theta"]),
            "angles": _list(r["angles"]), "q_unrotated": _list(r["q_unrotated"][head]), "q_rotated": _list(r["q_rotated"][head]),
            "k_unrotated": _list(r["k_unrotated"][:, kv]), "k_rotated": _list(r["k_rotated"][:, kv])}


def _embedding(model: Any, family: str, stack: str, seq: torch.Tensor, i: int, embed: Any) -> Embedding:
    tok = embed.weight[seq[i]]
    if family == "gpt2":
        base = model.transformer if hasattr(model, "transformer") else model
        pos = base.wpe.weight[i]
        return Embedding(_list(tok), _list(pos), None, _list(tok + pos))
    if family == "bert":
        emb = (model.bert if hasattr(model, "bert") else model).embeddings
        pos, typ = emb.position_embeddings.weight[i], emb.token_type_embeddings.weight[0]
        return Embedding(_list(tok), _list(pos), _list(typ), _list(tok + pos + typ))
    return Embedding(_list(tok), None, None, _list(tok))


@no_grad
def learned_position_curves(model: Any, positions: list[int], distances: int = 64) -> dict[str, Any]:
    """GPT-2's answer to RoPE, for the Llama view to draw beside it: cos(p_t, p_{t−Δ}) of the model's learned position
    embeddings (wpe) for a query at each position t of `positions` and a key Δ = 0..min(distances−1, t) tokens before.
    Learned positions know nearness only as far as training taught it, and a curve depends on t, not on Δ alone:
    {"positions": [...], "curves": {t: [cos for Δ = 0, 1, ...]}, "context": n_positions}.
    """
    wpe = model.transformer.wpe.weight.float()
    n = wpe.shape[0]
    curves = {}
    for t in sorted({min(max(0, int(p)), n - 1) for p in positions}):
        reach = min(distances - 1, t)
        keys = wpe[t - reach: t + 1].flip(0)  # Δ = 0, 1, ..., reach
        curves[t] = torch.nn.functional.cosine_similarity(keys, wpe[t][None], dim=-1).tolist()
    return {"positions": list(curves), "curves": curves, "context": int(n)}


def _relative_bias(model: Any, stack: str, reach: int = 32) -> dict[str, Any]:
    """T5's learned bias b(j - i) for distances -reach..reach, per head: [head][distance]."""
    st = model.encoder if stack == "encoder" else model.decoder
    sa = st.block[0].layer[0].SelfAttention
    distances = torch.arange(-reach, reach + 1)
    buckets = sa._relative_position_bucket(distances, bidirectional=not st.is_decoder, num_buckets=sa.relative_attention_num_buckets,
                                           max_distance=sa.relative_attention_max_distance)
    values = sa.relative_attention_bias(buckets.to(sa.relative_attention_bias.weight.device))  # [distances, heads]
    return {"distances": distances.tolist(), "values": _list(values.T)}


# ---- embeddings as a space -----------------------------------------------------------------------------------


@dataclass
class Neighbour:
    token: str
    cosine: float


@no_grad
def nearest_tokens(model: Any, tokenizer: Any, token_id: int, k: int = NEIGHBOURS) -> list[Neighbour]:
    """The `k` rows of the input embedding matrix closest (cosine) to token `token_id`'s, itself excluded."""
    matrix = model.get_input_embeddings().weight.float()
    e = matrix[token_id]
    cos = (matrix @ e) / (matrix.norm(dim=1) * e.norm()).clamp(min=1e-8)
    cos[token_id] = -2
    top = cos.topk(min(k, cos.numel() - 1))
    with shared_lock(tokenizer):
        names = tokenizer.convert_ids_to_tokens(top.indices.tolist())
    return [Neighbour(n, float(c)) for n, c in zip(names, top.values)]


@no_grad
def word_points(model: Any, tokenizer: Any, words: list[str]) -> list[tuple[str, float, float]]:
    """Each word's input embedding (the mean of its pieces') projected on the first two principal components."""
    words = [w.strip() for w in words if w.strip()][:MAX_WORDS]
    if len(words) < 3:
        raise InputError("List at least three words (comma or space separated) to see them as points.")
    matrix = model.get_input_embeddings().weight.float()
    vectors = []
    with shared_lock(tokenizer):
        for w in words:
            ids = tokenizer(w, add_special_tokens=False, verbose=False)["input_ids"]
            if not ids:
                raise InputError(f"{w!r} has no tokens.")
            vectors.append(matrix[ids].mean(0))
    x = torch.stack(vectors)
    x = x - x.mean(0)
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    p = x @ v[:2].T
    return [(w, float(a), float(b)) for w, (a, b) in zip(words, p.tolist())]


# ---- parameters ------------------------------------------------------------------------------------------------

_PATTERNS = [  # (component, regex on the parameter's name), first match wins
    ("token embeddings", r"(^|\.)(wte|word_embeddings|shared|embed_tokens)\."),
    ("position embeddings", r"(^|\.)(wpe|position_embeddings)\."),
    ("token-type embeddings", r"token_type_embeddings\."),
    ("relative position bias", r"relative_attention_bias\."),
    ("norms", r"(ln_\d|ln_f|LayerNorm|layer_norm|final_layer_norm|input_layernorm|post_attention_layernorm|model\.norm)\."),
    ("attention Q/K/V", r"(attn\.c_attn|attention\.self\.(query|key|value)|Attention\.(q|k|v)|self_attn\.(q|k|v)_proj)\."),
    ("attention output W_O", r"(attn\.c_proj|attention\.output\.dense|Attention\.o|self_attn\.o_proj)\."),
    ("MLP", r"(mlp\.|intermediate\.dense|(?<!attention\.)output\.dense|DenseReluDense)"),
    ("pooler", r"pooler\."),
    ("LM head", r"(lm_head|cls\.predictions)"),
]


def parameter_components(model: Any) -> list[Component]:
    """The model's parameters by component (tied weights once: named_parameters() lists a shared tensor once),
    each with its formula in the config's terms."""
    counts: dict[str, int] = {}
    for pname, p in model.named_parameters():
        name = next((c for c, rx in _PATTERNS if re.search(rx, pname)), "other")
        counts[name] = counts.get(name, 0) + p.numel()
    formulas = _formulas(model)
    order = [c for c, _ in _PATTERNS] + ["other"]
    return [Component(c, counts[c], formulas.get(c, "")) for c in order if c in counts]


def _formulas(model: Any) -> dict[str, str]:
    """Component -> "symbols = numbers = value" for the families' standard layouts (checked against the counts in tests)."""
    c = model.config
    family = c.model_type
    tied = getattr(c, "tie_word_embeddings", True)
    if family == "gpt2":
        V, d, n, L, f = c.vocab_size, c.n_embd, c.n_positions, c.n_layer, c.n_inner or 4 * c.n_embd
        out = {"token embeddings": (f"V·d = {V}·{d}", V * d), "position embeddings": (f"n_ctx·d = {n}·{d}", n * d),
               "attention Q/K/V": (f"L·3·(d·d + d) = {L}·3·({d}·{d} + {d})", L * 3 * (d * d + d)),
               "attention output W_O": (f"L·(d·d + d) = {L}·({d}·{d} + {d})", L * (d * d + d)),
               "MLP": (f"L·(2·d·d_ff + d_ff + d) = {L}·(2·{d}·{f} + {f} + {d})", L * (2 * d * f + f + d)),
               "norms": (f"(2L + 1)·2d = {2 * L + 1}·2·{d}", (2 * L + 1) * 2 * d)}
        if not tied and hasattr(model, "lm_head"):
            out["LM head"] = (f"V·d = {V}·{d} (untied)", V * d)
    elif family == "bert":
        V, d, n, L, f, t = (
            c.vocab_size,
            c.hidden_size,
            c.max_position_embeddings,
            c.num_hidden_layers,
            c.intermediate_size,
            c.type_vocab_size,
        )
        out = {"token embeddings": (f"V·d = {V}·{d}", V * d), "position embeddings": (f"n_pos·d = {n}·{d}", n * d),
               "token-type embeddings": (f"types·d = {t}·{d}", t * d),
               "attention Q/K/V": (f"L·3·(d·d + d) = {L}·3·({d}·{d} + {d})", L * 3 * (d * d + d)),
               "attention output W_O": (f"L·(d·d + d) = {L}·({d}·{d} + {d})", L * (d * d + d)),
               "MLP": (f"L·(2·d·d_ff + d_ff + d) = {L}·(2·{d}·{f} + {f} + {d})", L * (2 * d * f + f + d))}
        head = hasattr(model, "cls")
        n_norms = 2 * L + 1 + (1 if head else 0)  # embeddings, two per layer, the MLM head's transform
        out["norms"] = (f"{n_norms}·2d = {n_norms}·2·{d}", n_norms * 2 * d)
        if head:  # transform dense + the decoder's bias (its weight is tied to the token embeddings)
            out["LM head"] = (f"d·d + d + V = {d}·{d} + {d} + {V} (decoder weight tied)", d * d + d + V)
        if getattr(model, "pooler", None) is not None or getattr(getattr(model, "bert", None), "pooler", None) is not None:
            out["pooler"] = (f"d·d + d = {d}·{d} + {d}", d * d + d)
    elif family == "t5":
        V, d, h, dk, L, Ld, f, b = (c.vocab_size, c.d_model, c.num_heads, c.d_kv, c.num_layers, c.num_decoder_layers, c.d_ff,
                                    c.relative_attention_num_buckets)
        inner = h * dk
        gated = getattr(c, "is_gated_act", False)
        mlp_one = (3 if gated else 2) * d * f
        out = {"token embeddings": (f"V·d = {V}·{d}", V * d),
               "relative position bias": (f"2·buckets·heads = 2·{b}·{h}", 2 * b * h),
               "attention Q/K/V": (f"(L + 2L_dec)·3·d·(h·d_kv) = ({L} + 2·{Ld})·3·{d}·{inner}", (L + 2 * Ld) * 3 * d * inner),
               "attention output W_O": (f"(L + 2L_dec)·(h·d_kv)·d = ({L} + 2·{Ld})·{inner}·{d}", (L + 2 * Ld) * inner * d),
               "MLP": (f"(L + L_dec)·{'3' if gated else '2'}·d·d_ff = ({L} + {Ld})·{'3' if gated else '2'}·{d}·{f}", (L + Ld) * mlp_one),
               "norms": (f"(2L + 1 + 3L_dec + 1)·d = ({2 * L + 1} + {3 * Ld + 1})·{d}", (2 * L + 1 + 3 * Ld + 1) * d)}
        if not tied and hasattr(model, "lm_head"):
            out["LM head"] = (f"V·d = {V}·{d} (untied)", V * d)
    elif family in ("llama", "mixtral"):
        V, d, L, f, H = c.vocab_size, c.hidden_size, c.num_hidden_layers, c.intermediate_size, c.num_attention_heads
        kv = getattr(c, "num_key_value_heads", None) or H
        dh = getattr(c, "head_dim", None) or d // H
        out = {"token embeddings": (f"V·d = {V}·{d}", V * d),
               "attention Q/K/V": (f"L·(d·H·d_h + 2·d·KV·d_h) = {L}·({d}·{H}·{dh} + 2·{d}·{kv}·{dh})", L * (d * H * dh + 2 * d * kv * dh)),
               "attention output W_O": (f"L·H·d_h·d = {L}·{H}·{dh}·{d}", L * H * dh * d),
               "MLP": (f"L·3·d·d_ff (gate, up, down) = {L}·3·{d}·{f}", L * 3 * d * f) if family == "llama" else
               (f"L·E·(3·d·d_ff + d) (E experts of gate, up, down; the router's row each) = {L}·{c.num_local_experts}·(3·{d}·{f} + {d})",
                L * c.num_local_experts * (3 * d * f + d)),
               "norms": (f"(2L + 1)·d (RMSNorm: a scale, no bias) = {2 * L + 1}·{d}", (2 * L + 1) * d)}
        if not tied and hasattr(model, "lm_head"):
            out["LM head"] = (f"V·d = {V}·{d} (untied)", V * d)
    else:
        out = {}
    return {k: f"{text} = {value:,}" for k, (text, value) in out.items()}


# ---- per-token surprisal (/score) --------------------------------------------------------------------------


@dataclass
class TopToken:
    token: str
    prob: float


@dataclass
class Score:
    tokens: list[str]  # the text's tokens
    logprobs: list[float | None]  # ln p(token | the ones before); None for the first (nothing before it)
    ranks: list[int | None]  # 1 = the model's top guess; None for the first
    top: list[list[TopToken]]  # per position: the model's top 5 for that token (empty for the first)
    bits_per_char: float  # −Σ log2 p over the scored tokens / the characters they cover
    truncated: bool  # the text was longer than the model reads and was cut

    def to_json(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "logprobs": self.logprobs, "ranks": self.ranks,
                "top": [[{"token": t.token, "prob": t.prob} for t in row] for row in self.top],
                "bits_per_char": self.bits_per_char, "truncated": self.truncated}


@no_grad
def score_text(model: Any, tokenizer: Any, text: Any, k: int = 5) -> Score:
    """Each token's log-probability under a causal LM given the tokens before it; bits per character over the
    characters of the scored tokens (all but the first): e.g. p = 0.5 for every token of 2 characters is 0.5."""
    text = require_text(text, "text", max_chars=MAX_TEXT_CHARS)
    if not text.strip():
        raise InputError("Enter a text to score.")
    if architecture_of(model.config) != "decoder":
        raise InputError("Scoring needs a decoder-only (causal) model such as gpt2.")
    limit = min(
        MAX_SCORE_TOKENS,
        int(getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", MAX_SCORE_TOKENS)),
    )
    with shared_lock(tokenizer):
        enc = tokenizer(text, return_offsets_mapping=True, verbose=False)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    truncated = len(ids) > limit
    ids, offsets = ids[:limit], offsets[:limit]
    if len(ids) < 2:
        raise InputError("Enter at least two tokens: the first has nothing before it to be predicted from.")
    device = next(model.parameters()).device
    logits = model(input_ids=torch.tensor([ids], device=device)).logits[0, :-1].float()  # position p predicts token p + 1
    logp = logits.log_softmax(-1)
    target = torch.tensor(ids[1:], device=device)
    chosen = logp.gather(1, target[:, None])[:, 0]
    ranks = (logp > chosen[:, None]).sum(1) + 1
    top = logp.topk(k, dim=-1)
    with shared_lock(tokenizer):
        tokens = tokenizer.convert_ids_to_tokens(ids)
        names = [tokenizer.convert_ids_to_tokens(row) for row in top.indices.tolist()]
    chars = max(1, offsets[-1][1] - offsets[0][1])  # the characters of the scored tokens (after the first)
    bits = float(-chosen.sum() / math.log(2))
    return Score(
        tokens=tokens,
        logprobs=[None] + _list(chosen),
        ranks=[None] + ranks.tolist(),
        top=[[]] + [[TopToken(n, float(math.exp(v))) for n, v in zip(row_n, row_v)] for row_n, row_v in zip(names, top.values.tolist())],
        bits_per_char=bits / chars,
        truncated=truncated,
    )
