"""One prompt and the same starting noise at several guidance scales: what w changes, side by side. No gradio.

Classifier-free guidance (Ho & Salimans 2022) steps with ε̂ = ε̂_∅ + w (ε̂_c − ε̂_∅): w = 0 is the unconditional model
(the prompt is ignored), w = 1 the conditional model alone, w > 1 pushes further from the empty prompt. One image
differs from another by more than its w, so the comparison draws several samples per scale, sample i from the same
x_T at every scale (one seed; the run draws x_T first).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from playground.core.diffusion.pictures import decode, to_uint8
from playground.core.diffusion.run import DiffusionRequest, final_sample
from playground.lazy import no_grad

SCALES = (0.0, 1.0, 3.0, 7.5)  # unconditional, conditional only, and two guided scales
SAMPLES = 6  # samples per scale (columns), each from the same noise at every scale


@dataclass
class GuidanceComparison:
    """The same prompt drawn at each scale."""

    request: DiffusionRequest  # prompt, negative, seed, steps, scheduler (its `guidance` is not used)
    scales: tuple[float, ...]
    images: np.ndarray  # uint8 [scales, samples, H, W, 3] at the model's native size


def _rgb(x: Any) -> np.ndarray:
    """Pictures [n, C, H, W] in [-1, 1] as uint8 [n, H, W, 3] (a grey picture's channel repeated)."""
    rgb = to_uint8(x).permute(0, 2, 3, 1).numpy()
    return np.repeat(rgb, 3, axis=-1) if rgb.shape[-1] == 1 else rgb[..., :3]


@no_grad
def compare_guidance(model: Any, request: DiffusionRequest, scales: tuple[float, ...] = SCALES,
                     samples: int = SAMPLES) -> GuidanceComparison:
    """`samples` images of `request`'s prompt at every scale in `scales`, sample i from the same x_T in every row."""
    request = replace(request, batch=samples, snapshots=False, init_image=None, strength=1.0).checked()
    vae = model.components.get("vae")
    rows = []
    for w in scales:
        x = final_sample(model, replace(request, guidance=float(w)).checked())
        rows.append(_rgb(decode(x, vae) if vae is not None else x.float().cpu()))
    return GuidanceComparison(request, tuple(float(w) for w in scales), np.stack(rows))


CLIPPINGS = ("clip", "dynamic", "none")  # static clipping to [-1, 1], Imagen's dynamic thresholding, nothing
SATURATED = 0.98  # a pixel value (of 1) at least this counts as pinned white: the flat, over-bright look of high guidance


@dataclass
class ClippingComparison:
    """The same request (typically at high guidance) drawn with each way of bounding x̂_0, from the same noise."""

    request: DiffusionRequest  # as checked (its `clip` is not used)
    clippings: tuple[str, ...]
    images: np.ndarray  # uint8 [clippings, samples, H, W, 3]
    saturated: tuple[float, ...]  # per clipping: the share of pixel values pinned white, x >= SATURATED


@no_grad
def compare_clipping(model: Any, request: DiffusionRequest, samples: int = 4, clippings: tuple[str, ...] = CLIPPINGS) -> ClippingComparison:
    """`samples` images of `request` with each of `clippings`, sample i from the same x_T in every row (a pixel model)."""
    request = replace(request, batch=samples, snapshots=False, init_image=None, strength=1.0).checked()
    rows, saturated = [], []
    for clip in clippings:
        x = final_sample(model, replace(request, clip=clip).checked()).float().cpu().clamp(-1, 1)
        saturated.append(round(float((x >= SATURATED).float().mean()), 4))
        rows.append(_rgb(x))
    return ClippingComparison(request, tuple(clippings), np.stack(rows), tuple(saturated))
