"""CLIP's space (Radford et al. 2021), on the model's own numbers: cosine similarities of pictures and captions, zero-shot
classification, and a 2-D map of both clouds. No gradio.

An image tower f and a text tower g each end in a projection to the same d dimensions; the embeddings are normalized, so
their dot product is a cosine. Training pushed each picture's cosine with its own caption up and the others down; the
logits are exp(t) · cos, t the learned temperature (`logit_scale`):

    >>> import torch
    >>> [round(p, 3) for p in probabilities(torch.tensor([0.9, 0.1]), 2.0).tolist()]   # softmax(2 · cos) over two captions
    [0.832, 0.168]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from playground.core.cache import shared_lock
from playground.core.inputs import require_text
from playground.errors import InputError
from playground.lazy import no_grad, torch

MIN_TEXTS, MAX_TEXTS = 2, 32  # captions per request
MAX_LINE_CHARS = 200  # characters per caption
MAX_TEXT_CHARS = MAX_TEXTS * (MAX_LINE_CHARS + 1)  # the whole box


def check_texts(texts: Any) -> list[str]:
    """One caption per line, blank lines dropped: 2 to 32 of them, each at most 200 characters."""
    text = require_text(texts, "texts", max_chars=MAX_TEXT_CHARS)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < MIN_TEXTS:
        raise InputError(f"Give at least {MIN_TEXTS} captions, one per line (got {len(lines)}): similarities compare them.")
    if len(lines) > MAX_TEXTS:
        raise InputError(f"Give at most {MAX_TEXTS} captions, one per line (got {len(lines)}).")
    long = next((line for line in lines if len(line) > MAX_LINE_CHARS), None)
    if long is not None:
        raise InputError(f"A caption has {len(long)} characters; the limit is {MAX_LINE_CHARS} a line.")
    return lines


def probabilities(cos: Any, scale: float) -> Any:
    """softmax over the last axis of scale · cos: zero-shot classification's probabilities."""
    return (torch.as_tensor(cos, dtype=torch.float32) * scale).softmax(-1)


def projected(out: Any) -> Any:
    """The projected embedding get_text_features / get_image_features return (transformers 5: an output whose pooler_output
    holds it; earlier versions the tensor itself)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


@no_grad
def text_embeddings(model: Any, tokenizer: Any, texts: list[str]) -> Any:
    """Normalized text embeddings [N, d]; captions past the model's context are cut to it."""
    limit = int(model.config.text_config.max_position_embeddings)
    with shared_lock(tokenizer):
        enc = tokenizer(texts, padding="max_length", max_length=limit, truncation=True, return_tensors="pt", verbose=False)
    device = next(model.parameters()).device
    out = model.get_text_features(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device))
    return torch.nn.functional.normalize(projected(out).float(), dim=-1).cpu()


@no_grad
def image_embeddings(model: Any, processor: Any, images: list[Any]) -> Any:
    """Normalized image embeddings [N, d] of pictures (PIL images or uint8 arrays), read by the model's own processor."""
    from PIL import Image

    pictures = [im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im, dtype=np.uint8)) for im in images]
    return pixel_embeddings(model, processor(images=[p.convert("RGB") for p in pictures], return_tensors="pt")["pixel_values"])


@no_grad
def pixel_embeddings(model: Any, pixel_values: Any) -> Any:
    """Normalized image embeddings [N, d] of pixel values already prepared as the model reads them [N, C, H, W]."""
    param = next(model.parameters())
    out = model.get_image_features(pixel_values=pixel_values.to(param.device, param.dtype))
    return torch.nn.functional.normalize(projected(out).float(), dim=-1).cpu()


def logit_scale(model: Any) -> float:
    return float(model.logit_scale.detach().exp())


@dataclass
class Similarities:
    texts: list[str]
    similarity: list[list[float]] | None  # [image][text]: cosine of each picture with each caption
    text_similarity: list[list[float]] | None  # [text][text]: cosine between captions (when no picture was given)
    logit_scale: float  # exp(t): logits = logit_scale · cosine
    probs: list[list[float]] | None = None  # [image][text]: softmax over the captions (zero-shot)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"texts": self.texts, "logit_scale": self.logit_scale}
        if self.similarity is not None:
            out["similarity"] = self.similarity
        else:
            out["text_similarity"] = self.text_similarity
        return out


def compare(model: Any, tokenizer: Any, processor: Any, texts: Any, images: list[Any] | None = None) -> Similarities:
    """Every picture's cosine with every caption (and softmax(scale · cos) over the captions), or, without pictures, the
    captions' cosines with each other."""
    lines = check_texts(texts)
    return similarities(lines, text_embeddings(model, tokenizer, lines),
                        image_embeddings(model, processor, images) if images else None, logit_scale(model))


def similarities(lines: list[str], text_emb: Any, image_emb: Any | None, scale: float) -> Similarities:
    """`compare`'s answer from embeddings already made (normalized): [image][text] cosines and their softmax, or without
    pictures the captions' cosines with each other."""
    if image_emb is not None:
        cos = image_emb @ text_emb.T
        return Similarities(lines, _round(cos), None, round(scale, 4), _round(probabilities(cos, scale)))
    return Similarities(lines, None, _round(text_emb @ text_emb.T), round(scale, 4))


def _round(m: Any, digits: int = 4) -> list[list[float]]:
    return [[round(float(v), digits) for v in row] for row in m]


# ---- zero-shot classification ----------------------------------------------------------------------------------------


@dataclass
class ZeroShot:
    attribute: str  # e.g. "colour"
    classes: list[str]  # e.g. ["red", "green", ...]
    probs: list[float]  # softmax over the classes of scale · cos(picture, class embedding)
    cosines: list[float]


def zero_shot(model: Any, tokenizer: Any, processor: Any, image: Any, prompts: dict[str, dict[str, list[str]]]) -> list[ZeroShot]:
    """For each attribute (colour, shape, place...), the picture's probabilities over its classes; each class embedding
    is the mean of its captions' embeddings, renormalized (CLIP's prompt ensembling)."""
    picture = image_embeddings(model, processor, [image])[0]
    scale = logit_scale(model)
    out = []
    for attribute, (names, centres) in class_centres(model, tokenizer, prompts).items():
        cos = centres @ picture
        out.append(ZeroShot(attribute, names, [round(float(p), 4) for p in probabilities(cos, scale)], [round(float(c), 4) for c in cos]))
    return out


def class_centres(model: Any, tokenizer: Any, prompts: dict[str, dict[str, list[str]]]) -> dict[str, tuple[list[str], Any]]:
    """attribute -> (its classes, their embeddings [classes, d]): each the mean of its captions' embeddings, renormalized."""
    out = {}
    for attribute, classes in prompts.items():
        names = list(classes)
        out[attribute] = (names, torch.nn.functional.normalize(
            torch.stack([text_embeddings(model, tokenizer, classes[c]).mean(0) for c in names]), dim=-1))
    return out


# ---- the two clouds --------------------------------------------------------------------------------------------------


@dataclass
class Projection:
    image_points: list[tuple[float, float]]  # each picture on the first two principal components of both clouds together
    text_points: list[tuple[float, float]]  # each caption, on the same axes
    gap: float  # ‖mean image embedding − mean text embedding‖: the "modality gap" (Liang et al. 2022)
    paired_cosine: float  # mean cos(picture i, caption i)
    cross_cosine: float  # mean cos(picture i, caption j), i ≠ j
    explained: tuple[float, float]  # share of the variance the two axes hold


def project(image_emb: Any, text_emb: Any) -> Projection:
    """Both clouds on the same two axes (PCA of the pictures' and captions' embeddings together); pictures and captions
    pair by index."""
    both = torch.cat([image_emb, text_emb]).double()
    centred = both - both.mean(0)
    _, s, v = torch.linalg.svd(centred, full_matrices=False)
    xy = centred @ v[:2].T
    n = image_emb.shape[0]
    cos = image_emb @ text_emb.T
    off = cos[~torch.eye(n, dtype=torch.bool)] if n > 1 else cos.flatten()
    var = (s**2) / (s**2).sum()
    return Projection([tuple(round(float(c), 4) for c in p) for p in xy[:n]], [tuple(round(float(c), 4) for c in p) for p in xy[n:]],
                      round(float((image_emb.mean(0) - text_emb.mean(0)).norm()), 4), round(float(cos.diagonal().mean()), 4),
                      round(float(off.mean()), 4), (round(float(var[0]), 4), round(float(var[1]), 4)))
