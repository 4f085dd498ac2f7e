"""Word grounding for the shapes models: a training loss that puts each object word's cross-attention on its object.

The loss is TokenCompose's token loss (Wang et al. 2024, "TokenCompose: Text-to-Image Diffusion with Token-level
Supervision"): for a grounded token i with object mask M_i, and A_i(p) the head-averaged attention that pixel p pays
to token i in one cross-attention layer,

    L_i = (1 − Σ_p A_i(p) M_i(p) / Σ_p A_i(p))²

averaged over the caption's grounded tokens (each object's colour and shape word) and over every cross-attention
layer. The masks come from the training pictures themselves (shapes on black; two objects sit apart along the
axis their relation names). Only captions in the grammar are grounded: alt text's "a red thing" names no object
reliably, so its words get no loss.

This runs in the training process only, on the training UNet's own processors (never on a model the app shares).

>>> caption_slots("a large red circle on the left")
[(2, 0, 'red'), (3, 0, 'circle')]
>>> caption_slots("a red circle right of a blue square")  # the blue square is the left object (mask 0)
[(1, 1, 'red'), (2, 1, 'circle'), (6, 0, 'blue'), (7, 0, 'square')]
"""

from __future__ import annotations

import math

import numpy as np
import torch

from playground.train import shapes_data

SLOTS = 4  # grounded tokens per caption at most: two objects' colour and shape words
MASK_SIDE = 16  # masks are kept at the latent's side; coarser layers average them down


def caption_slots(caption: str) -> list[tuple[int, int, str]]:
    """(word index in the caption, object mask index, word) of each grounded word; mask 0 is the picture's only or
    left/top object, 1 its right/bottom one; [] for a caption outside the grammar."""
    try:
        scene = shapes_data.parse(caption)
    except ValueError:
        return []
    words = " ".join(caption.lower().split()).split()
    if len(scene.objects) == 1:
        obj = scene.objects[0]
        return [(words.index(w), 0, w) for w in (obj.colour, obj.shape) if w]
    first_is_leading = scene.relation in shapes_data.LEADING
    a, b = (0, 1) if first_is_leading else (1, 0)
    return [(1, a, words[1]), (2, a, words[2]), (len(words) - 2, b, words[-2]), (len(words) - 1, b, words[-1])]


def object_masks(image: np.ndarray, caption: str) -> np.ndarray:
    """float [2, SIZE, SIZE]: the picture's only (or left/top) object's pixels, then its right/bottom object's."""
    fg = image.max(axis=-1) > 0
    out = np.zeros((2, *fg.shape), dtype=np.float32)
    try:
        scene = shapes_data.parse(caption)
    except ValueError:
        return out
    if len(scene.objects) == 1:
        out[0] = fg
        return out
    axis = 1 if scene.relation in ("left of", "right of") else 0  # x splits left/right, y splits top/bottom
    ys, xs = np.nonzero(fg)
    if not len(xs):
        return out
    cut = (xs if axis == 1 else ys).mean()  # the two objects are about the same size and sit apart: the middle is between them
    coord = np.mgrid[0:fg.shape[0], 0:fg.shape[1]][0 if axis == 0 else 1] + 0.5
    out[0], out[1] = fg & (coord < cut), fg & (coord >= cut)
    return out


def targets(images: np.ndarray, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(token positions int64 [n, SLOTS], -1 where none; masks float16 [n, SLOTS, MASK_SIDE, MASK_SIDE], each
    cell the share of it the object covers). Token positions count the tokenizer's start token (every grammar word
    is one token, `shapes.build_tokenizer`)."""
    n = len(captions)
    positions = torch.full((n, SLOTS), -1, dtype=torch.int64)
    masks = torch.zeros((n, SLOTS, MASK_SIDE, MASK_SIDE), dtype=torch.float16)
    pool = shapes_data.SIZE // MASK_SIDE
    for k, (image, caption) in enumerate(zip(images, captions)):
        slots = caption_slots(caption)
        if not slots:
            continue
        objects = object_masks(image, caption)
        pooled = objects.reshape(2, MASK_SIDE, pool, MASK_SIDE, pool).mean(axis=(2, 4))
        for j, (word, obj, _) in enumerate(slots):
            positions[k, j] = word + 1
            masks[k, j] = torch.from_numpy(pooled[obj])
    return positions, masks


class GroundingProcessor:
    """A cross-attention processor for training: diffusers' plain attention (the same output as `AttnProcessor`),
    keeping each call's attention probabilities [batch·heads, HW, L] in `store` for the loss."""

    def __init__(self, store: list):
        self.store = store

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        residual = hidden_states
        batch = hidden_states.shape[0]
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        probs = attn.get_attention_scores(query, key, None)
        self.store.append((probs, batch, attn.heads))
        out = attn.batch_to_head_dim(torch.bmm(probs, value))
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def install(unet) -> list:
    """Put a GroundingProcessor on each of `unet`'s cross-attention modules; returns the list they fill."""
    store: list = []
    for module in unet.modules():
        if getattr(module, "is_cross_attention", False) and hasattr(module, "set_processor"):
            module.set_processor(GroundingProcessor(store))
    return store


def loss(store: list, positions: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """TokenCompose's token loss over the recorded layers (then clears `store`); positions [B, SLOTS] (-1: none),
    masks [B, SLOTS, MASK_SIDE, MASK_SIDE]."""
    valid = positions >= 0
    if not valid.any():
        store.clear()
        return masks.new_zeros((), dtype=torch.float32)
    total, layers = 0.0, len(store)
    for probs, batch, heads in store:
        hw, n_tokens = probs.shape[1], probs.shape[2]
        side = math.isqrt(hw)
        p = probs.view(batch, heads, hw, n_tokens).mean(1)  # [B, HW, L]
        a = torch.gather(p, 2, positions.clamp_min(0)[:, None, :].expand(batch, hw, SLOTS)).transpose(1, 2)  # [B, SLOTS, HW]
        m = masks.float()
        if side != MASK_SIDE:
            m = torch.nn.functional.adaptive_avg_pool2d(m, side)
        inside = (a * m.flatten(2)).sum(-1) / a.sum(-1).clamp_min(1e-8)
        total = total + ((1 - inside) ** 2 * valid).sum() / valid.sum()
    store.clear()
    return total / layers
