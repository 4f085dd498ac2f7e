"""Attention weights as data: one forward pass, then aggregates that take arrays, never models.

    >>> import numpy as np
    >>> att = np.array([[[[1.0, 0.0], [0.5, 0.5]]]])   # [layers, heads, queries, keys]: a causal 2-token head
    >>> rollout(att)[-1].round(3).tolist()              # half residual, half attention (Abnar & Zuidema 2020)
    [[1.0, 0.0], [0.25, 0.75]]

Notation: for head h of a layer, α_ij is the weight query token i puts on key token j (each row
sums to 1); x_j is the layer's input at token j; f(x_j) = (x_j W_V + b_V) W_O is what token j
sends through that head (its value vector, projected out). Kobayashi et al. (2020) show that
||α_ij f(x_j)|| = α_ij ||f(x_j)||, how much j actually contributes to i, can rank tokens very
differently from α_ij alone.

Kinds of attention, keyed as in the `/attention` API: "encoder" (bidirectional self-attention),
"decoder" (causal self-attention) and "cross" (decoder queries over encoder keys).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from playground.config import ATTENTION_MAX_TOKENS
from playground.core.cache import per_object, shared_lock
from playground.core.inputs import require_int, require_text
from playground.errors import InputError
from playground.lazy import no_grad, torch
from playground.models.architecture import architecture_of

MAX_TOKENS = (
    ATTENTION_MAX_TOKENS  # the hard cap on tokens per side (the configurable default, Settings.attention_max_tokens, sits below it)
)
MAX_TEXT_CHARS = 20_000  # longer texts are refused before tokenizing (the token cap truncates the rest)
MAX_GENERATED = 64  # tokens generated as the default output text of an encoder-decoder

ENCODER, DECODER, CROSS = "encoder", "decoder", "cross"


@dataclass
class AttentionResult:
    model: str  # the name it was asked for by
    architecture: str  # "encoder", "decoder" or "encoder-decoder"
    tokens: list[str]  # the input's tokens (keys and queries of "encoder"/"decoder"; keys of "cross")
    target_tokens: list[str]  # the decoder's input tokens of an encoder-decoder (queries of "decoder" and "cross"); [] otherwise
    attentions: dict[str, np.ndarray]  # kind -> [layers, heads, queries, keys] float32, rows sum to 1
    value_norms: dict[str, np.ndarray] | None  # kind -> [layers, heads, keys]: ||f(x_j)|| per head; None if unsupported
    special: list[bool]  # per input token: a special token ([CLS], [SEP], </s>)
    target_special: list[bool]  # per decoder token
    words: list[int | None]  # per input token: the index of the word it belongs to (None for special tokens)
    target_words: list[int | None]  # the same for the decoder tokens
    truncated: bool  # the text (or target text) had more tokens than the cap and was cut
    n_tokens_before_cap: int  # tokens of the input before truncation
    notes: list[str] = field(default_factory=list)  # what the page should say (truncation, generated output)
    kv_heads: int | None = None  # key/value heads per layer when fewer than query heads (grouped-query attention); else None

    @property
    def nbytes(self) -> int:
        """Bytes of its arrays (what keeping it costs the server)."""
        arrays = [*self.attentions.values(), *(self.value_norms or {}).values()]
        return sum(a.nbytes for a in arrays)

    def queries_of(self, kind: str) -> list[str]:
        return self.tokens if kind == ENCODER or (kind == DECODER and not self.target_tokens) else self.target_tokens

    def keys_of(self, kind: str) -> list[str]:
        return self.target_tokens if kind == DECODER and self.target_tokens else self.tokens

    def to_json(self) -> dict[str, Any]:
        """The `/attention` API's answer: the weights as nested lists [layer][head][query][key]."""
        return {
            "model": self.model,
            "tokens": self.tokens,
            "target_tokens": self.target_tokens,
            "attentions": {kind: a.tolist() for kind, a in self.attentions.items()},
            "truncated": self.truncated,
            "kv_heads": self.kv_heads,  # key/value heads when fewer than the query heads (grouped-query attention), else null
        }

    def to_npz(self, path) -> None:
        """Every kind's weights (and value norms) in one .npz, with the tokens."""
        arrays = {f"attention_{k}": a for k, a in self.attentions.items()}
        arrays.update({f"value_norm_{k}": v for k, v in (self.value_norms or {}).items()})
        np.savez_compressed(path, tokens=np.array(self.tokens), target_tokens=np.array(self.target_tokens), **arrays)


# ---- the forward pass ------------------------------------------------------------------------------


def check_request(text: object, target_text: object, max_tokens: object) -> tuple[str, str, int]:
    """Validated (text, target_text, max_tokens)."""
    text = require_text(text, "text", max_chars=MAX_TEXT_CHARS)
    if not text.strip():
        raise InputError("Enter a text to see its attention.")
    target = require_text(target_text if target_text is not None else "", "target text", max_chars=MAX_TEXT_CHARS)
    return text, target, require_int(max_tokens, "max tokens", low=2, high=MAX_TOKENS)


@no_grad
def run_attention(
    model: Any, tokenizer: Any, text: str, target_text: str = "", *, max_tokens: int = 128, name: str = ""
) -> AttentionResult:
    """One forward pass with `output_attentions=True` (an encoder-decoder reads `text` and is fed
    `target_text`, or its own greedy output when that is empty), truncated to `max_tokens` per side.

    The model must be loaded with eager attention (SDPA returns no weights).
    """
    text, target_text, max_tokens = check_request(text, target_text, max_tokens)
    config = model.config
    if getattr(config, "_attn_implementation", "eager") not in ("eager", None):
        raise InputError("This model was loaded without eager attention, so it returns no weights. Load it with attention=True.")
    arch = architecture_of(config)
    limit = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None) or MAX_TOKENS
    cap = min(max_tokens, int(limit))
    with shared_lock(tokenizer):  # a fast tokenizer shared by every user: one call at a time
        n_before = len(tokenizer(text, verbose=False)["input_ids"])
        enc = tokenizer(text, truncation=True, max_length=cap, return_tensors="pt", return_special_tokens_mask=True, verbose=False)
    special_mask = enc.pop("special_tokens_mask")[0].tolist()
    words = _word_ids(enc, special_mask)
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
    notes, truncated = [], n_before > cap
    if truncated:
        notes.append(f"The text has {n_before:,} tokens; only the first {cap:,} are shown (the cap is {max_tokens:,}"
                     f"{'' if cap == max_tokens else f', and this model reads at most {limit:,}'}).")
    if arch == "encoder-decoder":
        decoder_ids, target_truncated = _decoder_inputs(model, tokenizer, inputs, target_text, cap, notes)
        truncated = truncated or target_truncated
        out = model(**inputs, decoder_input_ids=decoder_ids, output_attentions=True, output_hidden_states=True)
        attentions = {ENCODER: _stack(out.encoder_attentions), DECODER: _stack(out.decoder_attentions), CROSS: _stack(out.cross_attentions)}
        target_ids = decoder_ids[0].tolist()
    else:
        out = model(**inputs, output_attentions=True, output_hidden_states=True)
        attentions = {arch: _stack(out.attentions)}
        target_ids = []
    grouping = grouped_heads_note(config)
    if grouping:
        notes.append(grouping)
    if any(a is None for a in attentions.values()):
        raise InputError("This model returned no attention weights; load it with eager attention.")
    with shared_lock(tokenizer):
        target_tokens = tokenizer.convert_ids_to_tokens(target_ids) if target_ids else []
        tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist())
    special_ids = set(getattr(tokenizer, "all_special_ids", []))
    return AttentionResult(
        model=name, architecture=arch, tokens=tokens,
        target_tokens=target_tokens, attentions=attentions, value_norms=_value_norms(model, arch, out, attentions),
        special=[bool(s) for s in special_mask], target_special=[i in special_ids for i in target_ids],
        words=words, target_words=_piece_words(target_tokens, [i in special_ids for i in target_ids]),
        truncated=truncated, n_tokens_before_cap=n_before, notes=notes, kv_heads=kv_heads_of(config),
    )


def kv_heads_of(config: Any) -> int | None:
    """Key/value heads of a grouped-query model (fewer than its query heads); None when every head has its own.

    >>> from transformers import LlamaConfig
    >>> kv_heads_of(LlamaConfig(num_attention_heads=4, num_key_value_heads=2)), kv_heads_of(LlamaConfig(num_attention_heads=4))
    (2, None)
    """
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", None)
    kv = getattr(config, "num_key_value_heads", None) or heads
    return int(kv) if heads and kv < heads else None


def grouped_heads_note(config: Any) -> str | None:
    """What a grouped-query model's heads share, and what the KV cache saves by it; None for one key/value head a head.

    >>> from transformers import LlamaConfig
    >>> grouped_heads_note(LlamaConfig(num_attention_heads=4, num_key_value_heads=2))[:60]
    'Grouped-query attention: 4 query heads share 2 key/value hea'
    """
    kv = kv_heads_of(config)
    if kv is None:
        return None
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", None)
    group = heads // kv
    groups = "; ".join(f"heads {g * group + 1}-{g * group + group} read key/value head {g + 1}" for g in range(min(kv, 4)))
    more = f"; ... ({kv} groups)" if kv > 4 else ""
    return (f"Grouped-query attention: {heads} query heads share {kv} key/value heads, {group} a group ({groups}{more}; "
            f"counted from 1). Heads of one group score against the same keys with their own queries, so their maps differ; "
            f"the KV cache is {group}x smaller than with a key and value per head. The model view draws each group under one bracket.")


def _stack(per_layer) -> np.ndarray | None:
    if not per_layer or per_layer[0] is None:
        return None
    return torch.stack([a[0] for a in per_layer]).float().cpu().numpy()  # [L, H, Q, K]


def _decoder_inputs(model, tokenizer, inputs, target_text: str, cap: int, notes: list[str]) -> tuple[torch.Tensor, bool]:
    """The decoder's input ids: `target_text` shifted right (teacher forcing), else the model's greedy output."""
    if target_text.strip():
        with shared_lock(tokenizer):
            labels = tokenizer(text_target=target_text, return_tensors="pt", verbose=False).input_ids
        truncated = labels.shape[1] > cap
        if truncated:
            notes.append(f"The target text has {labels.shape[1]:,} tokens; only the first {cap:,} are fed to the decoder.")
        decoder_ids = model.prepare_decoder_input_ids_from_labels(labels=labels[:, :cap].to(inputs["input_ids"].device))
        return decoder_ids, truncated
    generated = model.generate(**inputs, max_new_tokens=min(cap, MAX_GENERATED), do_sample=False, num_beams=1)
    with shared_lock(tokenizer):
        text = tokenizer.decode(generated[0], skip_special_tokens=True)
    notes.append(f"No target text given: the decoder is fed the model's own greedy output, {text!r}.")
    return generated[:, :-1] if generated.shape[1] > 1 else generated, False  # the last token is never an input


def _word_ids(enc, special: list[int]) -> list[int | None]:
    try:
        ids = enc.word_ids(0)
    except (ValueError, AttributeError):  # a slow tokenizer: each token its own word
        ids = list(range(len(special)))
    return [None if s else w for w, s in zip(ids, special)]


def _piece_words(tokens: list[str], special: list[bool]) -> list[int | None]:
    """Word indices for decoder tokens from their spelling: a piece starting with ▁ or Ġ starts a word."""
    out, word = [], -1
    for tok, sp in zip(tokens, special):
        if sp:
            out.append(None)
            continue
        if word < 0 or tok.startswith(("▁", "Ġ")):
            word += 1
        out.append(word)
    return out


def _value_norms(model: Any, arch: str, out: Any, attentions: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """||f(x_j)|| per kind, layer, head and key token, recomputed from the forward pass's hidden states.

    Each layer's value vectors are v_j = W_V n(x_j) + b_V, with x_j the layer's input (hidden state
    l of the output) and n the norm the family applies before attention (GPT-2 and T5; BERT has
    none there). Cross-attention reads the encoder's final output. Nothing is registered on the
    model, so concurrent requests on one shared model cannot see each other's numbers.
    """
    layers = _value_layers(model, arch)
    if not layers:
        return None
    sources = _layer_inputs(model, arch, out)
    if sources is None:
        return None
    grams = _output_grams(model)
    norms = {}
    for kind, entries in layers.items():
        if kind not in attentions:
            return None
        per_layer = []
        for (value_of, _), gram, x in zip(entries, grams[kind], sources[kind]):
            v = value_of(x)[0].float()  # [T, H*d]
            heads, d, _ = gram.shape
            v = v.reshape(v.shape[0], heads, d)  # [T, H, d]
            # ||f(x_j)||² = v_j W_O W_Oᵀ v_jᵀ per head: the Gram matrix is d x d, cached per model
            sq = torch.einsum("thd,hde,the->ht", v, gram, v)
            per_layer.append(sq.clamp(min=0).sqrt())  # [H, T]
        norms[kind] = torch.stack(per_layer).cpu().numpy()
    return norms


def _layer_inputs(model: Any, arch: str, out: Any) -> dict[str, list[torch.Tensor]] | None:
    """Per kind, the hidden state each layer's value projection reads (before its own norm)."""
    if arch == "encoder-decoder":
        enc, dec = out.encoder_hidden_states, out.decoder_hidden_states
        if enc is None or dec is None:
            return None
        n_dec = len(dec) - 1
        return {ENCODER: list(enc[:-1]), DECODER: list(dec[:-1]), CROSS: [out.encoder_last_hidden_state] * n_dec}
    hidden = out.hidden_states
    if hidden is None:
        return None
    return {arch: list(hidden[:-1])}  # hidden_states[l] is layer l's input; the last is the output


@per_object
def _output_grams(model: Any) -> dict[str, list[torch.Tensor]]:
    """Per kind and layer, W_O,h W_O,hᵀ for every head h ([H, d, d]): computed once per loaded model,
    released with it."""
    layers = _value_layers(model, architecture_of(model.config))
    return {kind: [torch.einsum("hdo,heo->hde", w.float(), w.float()).detach() for _, w in entries] for kind, entries in layers.items()}


def _value_layers(model: Any, arch: str) -> dict[str, list[tuple[Any, torch.Tensor]]]:
    """Per kind and layer: (layer input -> value vectors [1, T, H*d], W_O as [H, d, out])."""
    config = model.config
    base = getattr(model, "base_model", model)
    if config.model_type == "gpt2":
        heads = config.n_head

        def gpt2_values(blk):  # c_attn computes q, k and v in one matrix from ln_1(x): v is the last third
            return lambda x: blk.attn.c_attn(blk.ln_1(x))[..., 2 * config.n_embd:]

        return {DECODER: [(gpt2_values(blk), blk.attn.c_proj.weight.reshape(heads, -1, blk.attn.c_proj.weight.shape[1]))
                          for blk in base.h]}
    if config.model_type == "t5":
        heads, d = config.num_heads, config.d_kv

        def w(linear):  # Linear weight [out, H*d] -> [H, d, out]
            return linear.weight.T.reshape(heads, d, -1)

        def self_values(sub):  # T5 normalizes before attention (RMS norm, no bias)
            return lambda x: sub.SelfAttention.v(sub.layer_norm(x))

        def cross_values(sub):  # the encoder's output is already normalized by its final norm
            return lambda x: sub.EncDecAttention.v(x)

        return {
            ENCODER: [(self_values(b.layer[0]), w(b.layer[0].SelfAttention.o)) for b in model.encoder.block],
            DECODER: [(self_values(b.layer[0]), w(b.layer[0].SelfAttention.o)) for b in model.decoder.block],
            CROSS: [(cross_values(b.layer[1]), w(b.layer[1].EncDecAttention.o)) for b in model.decoder.block],
        }
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if arch == "encoder" and layers is not None and all(hasattr(layer, "attention") for layer in layers):
        heads = config.num_attention_heads
        return {ENCODER: [(layer.attention.self.value, layer.attention.output.dense.weight.T.reshape(heads, -1, config.hidden_size))
                          for layer in layers]}
    return {}


# ---- aggregates: arrays in, arrays out --------------------------------------------------------------


def mean_heads(att: np.ndarray) -> np.ndarray:
    """[L, H, Q, K] -> [L, Q, K], the average head of each layer."""
    return att.mean(axis=1)


def rollout(att: np.ndarray, residual: float = 0.5) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020) of self-attention [L, H, T, T] -> [L, T, T].

    Each layer's mean head is mixed with the identity for the residual connection,
    Â_l = (1 - r) A_l + r I, rows renormalized; rollout_l = Â_l Â_{l-1} ... Â_1: how much each
    token of layer l's output draws, through every path, on each input token.
    """
    mean = mean_heads(att)
    eye = np.eye(mean.shape[-1], dtype=mean.dtype)
    out, acc = [], None
    for a in mean:
        a_hat = (1 - residual) * a + residual * eye
        a_hat = a_hat / a_hat.sum(axis=-1, keepdims=True)
        acc = a_hat if acc is None else a_hat @ acc
        out.append(acc)
    return np.stack(out)


def value_weighted(att: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """||α_ij f(x_j)|| = α_ij ||f(x_j)||: [L, H, Q, K] weights times [L, H, K] value norms."""
    return att * norms[:, :, None, :]


def sink_share(att: np.ndarray, sinks: list[int]) -> np.ndarray:
    """[L, H]: each head's average share of attention on the `sinks` key positions (first token, separators)."""
    if not sinks:
        return np.zeros(att.shape[:2], dtype=att.dtype)
    return att[..., sinks].sum(axis=-1).mean(axis=-1)


def select(matrix: np.ndarray, rows: list[int], cols: list[int], renormalize: bool) -> np.ndarray:
    """The [rows, cols] sub-matrix of [..., Q, K]; rows renormalized to sum to 1 when asked."""
    sub = matrix[..., rows, :][..., cols]
    if renormalize:
        total = sub.sum(axis=-1, keepdims=True)
        sub = np.divide(sub, total, out=np.zeros_like(sub), where=total > 0)
    return sub


def pool(matrix: np.ndarray, row_groups: list[list[int]], col_groups: list[list[int]]) -> np.ndarray:
    """Word-level [..., Q, K] -> [..., words_q, words_k]: sum over a word's key pieces, mean over its query pieces.

    Rows still sum to 1 (when they did): a word receives all its pieces' attention; a word's
    query row is the average of its pieces' rows.
    >>> pool(np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8], [0.0, 1.0, 0.0]]), [[0, 1], [2]], [[0, 1], [2]]).round(2).tolist()
    [[0.35, 0.65], [1.0, 0.0]]
    """
    cols = np.stack([matrix[..., g].sum(axis=-1) for g in col_groups], axis=-1)
    return np.stack([cols[..., g, :].mean(axis=-2) for g in row_groups], axis=-2)


def groups(words: list[int | None], keep: list[int]) -> list[list[int]]:
    """Positions (indices into `keep`) grouped by word; special tokens (word None) stay alone.

    >>> groups([None, 0, 0, 1, None], keep=[0, 1, 2, 3, 4])
    [[0], [1, 2], [3], [4]]
    """
    out: list[list[int]] = []
    last = object()
    for i, pos in enumerate(keep):
        w = words[pos]
        if w is not None and w == last:
            out[-1].append(i)
        else:
            out.append([i])
        last = w if w is not None else object()
    return out


def label_groups(tokens: list[str], grouping: list[list[int]]) -> list[str]:
    """A label per group: its pieces joined, word markers (Ġ, ▁, ##) dropped inside the word."""
    labels = []
    for g in grouping:
        pieces = [tokens[i] for i in g]
        labels.append(pieces[0] + "".join(p.removeprefix("##").lstrip("▁Ġ") for p in pieces[1:]))
    return labels


def top_edges(matrix: np.ndarray, k: int) -> list[tuple[int, int, float]]:
    """The `k` strongest (query, key, weight) edges of each query row of a [Q, K] matrix."""
    k = min(k, matrix.shape[-1])
    idx = np.argpartition(-matrix, k - 1, axis=-1)[:, :k]
    return [(q, int(j), float(matrix[q, j])) for q in range(matrix.shape[0]) for j in idx[q] if matrix[q, j] > 0]
