"""Encoder-only models at work: fill-mask, the masked-LM logit lens, and sentence embeddings. No gradio.

    fill-mask:   p(token at a [MASK]) = softmax(MLM head(h_L))        (as transformers' fill-mask pipeline)
    logit lens:  softmax(MLM head(h_l)) for every layer l              (how the guess forms layer by layer)
    embeddings:  mean of h_L over a sentence's tokens; cosine similarity; a 2-D PCA projection
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from playground.core.cache import shared_lock
from playground.core.inputs import require_int, require_text
from playground.errors import InputError
from playground.lazy import no_grad, torch

MAX_TEXT_CHARS = 2_000  # fill-mask text
MAX_MASKS = 8  # masks per text
MAX_TOP_K = 20  # predictions per mask
MAX_SENTENCES = 16  # embeddings
MAX_SENTENCE_CHARS = 500
MASK_ALIASES = ("[MASK]", "<mask>")  # either spelling works with any masked LM


@dataclass(frozen=True)
class Prediction:
    token_id: int
    token: str  # the vocabulary string ("##ing", "Ġthe", "lord")
    prob: float


@dataclass(frozen=True)
class FillMaskResult:
    tokens: list[str]  # the input's tokens, special tokens included
    mask_positions: list[int]  # token positions of the masks
    predictions: list[list[Prediction]]  # per mask, best first

    def to_json(self) -> dict[str, Any]:
        """The `/fill_mask` API's answer."""
        return {"masks": [[{"token": p.token, "prob": p.prob} for p in preds] for preds in self.predictions]}


def _with_mask_token(text: str, tokenizer: Any) -> str:
    mask = getattr(tokenizer, "mask_token", None)
    if not mask:
        raise InputError("This model's tokenizer has no mask token; fill-mask needs a masked-LM (BERT-family) model.")
    # any case: "[mask]" typed by hand is the mask too (the tokenizer matches its special token only as spelled)
    return re.sub("|".join(re.escape(alias) for alias in MASK_ALIASES), lambda _: mask, text, flags=re.IGNORECASE)


def _encode_masked(tokenizer: Any, text: Any) -> tuple[dict, list[int]]:
    text = require_text(text, "text", max_chars=MAX_TEXT_CHARS)
    with shared_lock(tokenizer):  # shared by every user: one call at a time
        enc = tokenizer(_with_mask_token(text, tokenizer), return_tensors="pt", truncation=True, verbose=False)
    positions = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
    if not positions:
        with shared_lock(tokenizer):
            whole = tokenizer(_with_mask_token(text, tokenizer), truncation=False, verbose=False)["input_ids"]
        if tokenizer.mask_token_id in whole:  # there was a mask, past the cut
            kept = len(enc["input_ids"][0])
            at = whole.index(tokenizer.mask_token_id) + 1
            with shared_lock(tokenizer):
                last = tokenizer.decode(enc["input_ids"][0][-6:-1]).strip()
            raise InputError(f"The text's first {MASK_ALIASES[0]} is token {at:,} of {len(whole):,}, but this model reads {kept} tokens: "
                             f"the text was cut after \"…{last[-40:]}\", so no mask was left to fill. Move the mask earlier or "
                             "shorten the text.")
        raise InputError(f"Put at least one {MASK_ALIASES[0]} in the text, where a word should be guessed.")
    if len(positions) > MAX_MASKS:
        raise InputError(f"The text has {len(positions)} masks; at most {MAX_MASKS} are predicted at once.")
    return enc, positions


@no_grad
def fill_mask(model: Any, tokenizer: Any, text: str, top_k: int = 5) -> FillMaskResult:
    """The `top_k` most likely tokens at each mask, each mask predicted independently.

    >>> # "The [MASK] is the king." -> masks[0] = [("king", 0.21), ("lord", 0.12), ...] (a BERT's guesses)
    """
    top_k = require_int(top_k, "top k", low=1, high=MAX_TOP_K)
    enc, positions = _encode_masked(tokenizer, text)
    device = next(model.parameters()).device
    logits = model(**{k: v.to(device) for k, v in enc.items()}).logits[0]
    preds = []
    for pos in positions:
        probs = logits[pos].float().softmax(-1)
        values, ids = probs.topk(top_k)
        with shared_lock(tokenizer):
            preds.append([Prediction(int(i), tokenizer.convert_ids_to_tokens(int(i)), float(v)) for v, i in zip(values, ids)])
    with shared_lock(tokenizer):
        tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist())
    return FillMaskResult(tokens, positions, preds)


@dataclass(frozen=True)
class MaskLens:
    layers: list[str]  # "embeddings", "layer 1", ...
    top: list[list[Prediction]]  # per layer, best first


def _mlm_head(model: Any) -> Any:
    for name in ("cls", "lm_head"):  # BERT's BertOnlyMLMHead, RoBERTa's lm_head: hidden state -> vocabulary logits
        head = getattr(model, name, None)
        if head is not None:
            return head
    raise InputError(f"The logit lens needs a masked-LM head; {type(model).__name__} has none (load it as a masked-lm model).")


@no_grad
def mask_lens(model: Any, tokenizer: Any, text: str, mask: int = 0, k: int = 5) -> MaskLens:
    """The MLM head applied to every layer's hidden state at the `mask`-th mask: the guess forming layer by layer.
    The last row equals `fill_mask`'s."""
    k = require_int(k, "k", low=1, high=MAX_TOP_K)
    enc, positions = _encode_masked(tokenizer, text)
    mask = require_int(mask, "mask", low=0, high=len(positions) - 1)
    device = next(model.parameters()).device
    hidden = model(**{kk: v.to(device) for kk, v in enc.items()}, output_hidden_states=True).hidden_states
    head = _mlm_head(model)
    top = []
    for h in hidden:
        probs = head(h[:, positions[mask]]).float().softmax(-1)[0]
        values, ids = probs.topk(k)
        with shared_lock(tokenizer):
            top.append([Prediction(int(i), tokenizer.convert_ids_to_tokens(int(i)), float(v)) for v, i in zip(values, ids)])
    return MaskLens(["embeddings"] + [f"layer {i}" for i in range(1, len(hidden))], top)


@dataclass(frozen=True)
class Embeddings:
    sentences: list[str]
    vectors: np.ndarray  # [N, hidden]: mean of the last hidden state over each sentence's tokens
    similarity: np.ndarray  # [N, N] cosine similarity
    projection: np.ndarray  # [N, 2]: the first two principal components of the vectors

    def to_json(self) -> dict[str, Any]:
        """The `/embed` API's answer."""
        return {"sentences": self.sentences, "similarity": self.similarity.round(6).tolist()}


def parse_sentences(text: Any) -> list[str]:
    """One sentence per non-empty line, checked against the caps."""
    text = require_text(text, "sentences", max_chars=MAX_SENTENCES * (MAX_SENTENCE_CHARS + 1))
    sentences = [line.strip() for line in text.splitlines() if line.strip()]
    if len(sentences) < 2:
        raise InputError("Give at least two sentences, one per line, to compare.")
    if len(sentences) > MAX_SENTENCES:
        raise InputError(f"{len(sentences)} sentences; at most {MAX_SENTENCES} are compared at once.")
    for s in sentences:
        require_text(s, "a sentence", max_chars=MAX_SENTENCE_CHARS)
    return sentences


@no_grad
def embed(model: Any, tokenizer: Any, sentences: list[str]) -> Embeddings:
    """Mean-pooled last hidden states, their cosine similarities, and a 2-D PCA projection."""
    device = next(model.parameters()).device
    with shared_lock(tokenizer):
        enc = tokenizer(sentences, padding=True, truncation=True, return_tensors="pt", verbose=False)
    enc = {k: v.to(device) for k, v in enc.items()}
    hidden = model(**enc, output_hidden_states=True).hidden_states[-1].float()  # [N, T, D]
    mask = enc["attention_mask"].unsqueeze(-1).float()
    vectors = (hidden * mask).sum(1) / mask.sum(1)  # mean over each sentence's real tokens
    unit = torch.nn.functional.normalize(vectors, dim=-1)
    centered = vectors - vectors.mean(0, keepdim=True)
    _, _, v = torch.linalg.svd(centered, full_matrices=False)
    projection = centered @ v[:2].T if v.shape[0] >= 2 else torch.zeros(len(sentences), 2)
    return Embeddings(sentences, vectors.cpu().numpy(), (unit @ unit.T).cpu().numpy(), projection.cpu().numpy())
