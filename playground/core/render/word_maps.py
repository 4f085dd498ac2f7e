"""Word maps as pictures and data: a heat overlay per prompt token beside the image, and the API's JSON. No gradio."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from playground.core.diffusion.cross_attention import WordMaps
from playground.core.diffusion.pictures import picture
from playground.lazy import torch

OVERLAY_PX = 160  # each word's picture, per side
# a perceptually ordered, colour-vision-deficiency-safe ramp (the ends of matplotlib's "inferno"), sampled at 5 stops
_RAMP = np.array([(0, 0, 4), (87, 16, 110), (188, 55, 84), (249, 142, 9), (252, 255, 164)], dtype=float)


def heat(values: np.ndarray) -> np.ndarray:
    """[H, W] in [0, 1] -> uint8 [H, W, 3] on the ramp (dark: little attention, bright yellow: most).

    >>> heat(np.array([[0.0, 1.0]])).tolist()
    [[[0, 0, 4], [252, 255, 164]]]
    """
    x = np.clip(values, 0, 1) * (len(_RAMP) - 1)
    lo = np.floor(x).astype(int).clip(0, len(_RAMP) - 2)
    frac = (x - lo)[..., None]
    return (_RAMP[lo] * (1 - frac) + _RAMP[lo + 1] * frac).round().astype(np.uint8)


def overlay(image: torch.Tensor, word_map: torch.Tensor, size: int = OVERLAY_PX, alpha: float = 0.65):
    """The image (enlarged, nearest neighbour) under the word's map (scaled to its own maximum), blended."""
    from PIL import Image

    base = np.asarray(picture(image, size).convert("RGB"), dtype=float)
    m = word_map.float()[None, None]
    m = torch.nn.functional.interpolate(m, size=base.shape[:2], mode="bilinear", align_corners=False)[0, 0].numpy()
    m = m / (m.max() or 1.0)
    return Image.fromarray(((1 - alpha) * base + alpha * heat(m)).round().astype(np.uint8))


def word_gallery(wm: WordMaps, size: int = OVERLAY_PX) -> list[tuple[Any, str]]:
    """(overlay, the token) per prompt token, in the prompt's order."""
    return [(overlay(wm.image, m, size), tok) for tok, m in zip(wm.tokens, wm.maps)]


def png_base64(image: Any) -> str:
    """The image at its native size as a base64 PNG (lossless): a tensor [1, 3, H, W] in [-1, 1], or uint8 [H, W, 3]."""
    from PIL import Image

    buffer = io.BytesIO()
    shown = Image.fromarray(np.asarray(image, dtype=np.uint8)) if isinstance(image, np.ndarray) else picture(image, 0)
    shown.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def to_json(wm: WordMaps) -> dict[str, Any]:
    """{"tokens": [str], "maps": [token][H][W] at the image's size (each sums to 1), "image": base64 PNG at native size,
    "steps": int, "step": the one step averaged (from 1) or None for all}."""
    return {"tokens": list(wm.tokens), "maps": wm.maps.double().tolist(), "image": png_base64(wm.image),
            "steps": wm.steps, "step": None if wm.step is None else wm.step + 1}
