"""What a loaded diffusion model needs around the denoising loop (`core.explorer.run`): its conditioning, the shape
of its samples, how a sample looks (pixels, a latent's cheap preview or its decode), image-to-image's start, the
forward process's pictures, and tensors to pictures. The Diffusion and Text-to-image tabs call these; no gradio.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from playground.core import explorer as E
from playground.core.cache import per_object
from playground.core.diffusion import Schedule, class_index, forward_noise, image_grid
from playground.core.inputs import require_text
from playground.errors import InputError
from playground.lazy import no_grad, torch

DISPLAY_PX = 192  # small images are shown enlarged (nearest neighbour)
NATIVE = 0  # picture(x, NATIVE): no enlargement, the model's own pixels (the API's images)
CHEAP_DECODER_PARAMS = 2_000_000  # a VAE decoder this small decodes in milliseconds (the embedded ones: 107k and 260k)


# ---- the model's conditioning and samples ------------------------------------------------------------------


def conditioning(lm, prompt: str, negative: str, guidance: float) -> tuple[E.Conditioning, str]:
    """The model's conditioning for `prompt`: a class of a class-conditional UNet, a text, or none; and its label."""
    unet = lm.model
    if getattr(unet, "class_embedding", None) is not None:
        labels = lm.pipeline.id2label
        if not labels:
            raise InputError("This class-conditional model lists no class names (id2label in model_index.json).")
        c = class_index(prompt, labels)
        null = None if lm.pipeline.null_class is None else torch.tensor([lm.pipeline.null_class])
        return E.Conditioning("class", torch.tensor([c]), null), labels[c]
    if getattr(unet.config, "cross_attention_dim", None) is not None:
        if "text_encoder" not in lm.components or lm.tokenizer is None:
            raise InputError("This text-conditioned UNet comes without its text encoder and tokenizer.")
        prompt = require_text(prompt, "prompt", max_chars=500)
        return E.text_conditioning(lm.components, prompt, require_text(negative or "", "negative prompt", max_chars=500), guidance > 1), prompt
    if guidance != 1.0:
        raise InputError("This model is unconditional (no class, no prompt): use guidance 1.")
    return E.Conditioning("none"), "unconditional"


def latent_shape(lm) -> tuple[int, ...]:
    """[1, C, h, w] of the UNet's samples; an error if the decoded image would pass the playground's cap."""
    c = lm.model.config
    vae = lm.components.get("vae")
    side = c.sample_size if isinstance(c.sample_size, int) else c.sample_size[0]
    if side * _factor(vae) > E.MAX_RESOLUTION:
        raise InputError(f"This model renders {side * _factor(vae)} px images; the playground's cap is {E.MAX_RESOLUTION} px.")
    return (1, c.in_channels, side, side)


def _factor(vae) -> int:
    return 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1


def start_run(lm, scheduler: str, steps: int, seed: int, clip: str = "default", init_image: Any = None, strength: float = 1.0):
    """(the scheduler, the seeded generator, x at the first step, the first step's index) for one run of `lm`."""
    shape = latent_shape(lm)
    sched = E.make_scheduler(scheduler, lm.components["scheduler"].config, None if clip == "default" else clip == "clip")
    g = torch.Generator().manual_seed(seed)
    init = init_latent(lm, init_image, shape) if init_image is not None and strength < 1.0 else None
    x, first = E.start(sched, steps, shape, g, next(lm.model.parameters()).device, init=init, strength=strength)
    return sched, g, x, first


def new_generator() -> torch.Generator:
    """A CPU generator for a branch (its state is restored from the step's snapshot, or seeded)."""
    return torch.Generator()


@no_grad
def init_latent(lm, image: Any, shape: tuple[int, ...]) -> torch.Tensor:
    """Image-to-image's start: the image at the model's size (and channels), encoded to scaled latents for a latent model."""
    x = image_tensor(image)
    vae = lm.components.get("vae")
    side = shape[-1] * _factor(vae)
    channels = vae.config.in_channels if vae is not None else shape[1]
    x = x.mean(1, keepdim=True) if channels == 1 else (x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x)
    x = torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    if vae is None:
        return x
    return vae.encode(x).latent_dist.mean * vae.config.scaling_factor


def decode_is_cheap(lm) -> bool:
    """Whether every step's x̂_0 can be shown decoded rather than through the linear preview (true for the
    embedded latent models; Stable Diffusion's decoder takes longer than a UNet step, so it is previewed)."""
    vae = lm.components.get("vae")
    return vae is not None and _decoder_params(vae) <= CHEAP_DECODER_PARAMS


@per_object  # asked at every streamed step: counted once per loaded VAE
def _decoder_params(vae) -> int:
    return sum(p.numel() for p in vae.decoder.parameters())


def pixels(lm, x: torch.Tensor | None, full: bool = False) -> torch.Tensor | None:
    """What a sample looks like: pixels as they are; latents through the cheap preview, or decoded when `full`."""
    if x is None:
        return None
    vae = lm.components.get("vae")
    if vae is None:
        return x
    return E.decode(x, vae) if full else E.latent_preview(x, vae)


def run_bytes(records: list[E.Record]) -> int:
    """Bytes of a run's tensors: every step's x, x̂_0, ε̂ (and ε_u, ε_c) and its rewind snapshot."""
    total = 0
    for r in records:
        for t in (r.x, r.x0_hat, r.eps, r.eps_uncond, r.eps_cond, r.before.x if r.before else None, r.before.generator_state if r.before else None):
            total += 0 if t is None else t.numel() * t.element_size()
    return total


def branch_distances(records: list[E.Record], branch: list[E.Record]) -> list[tuple[int, float]]:
    """(step, ‖x_branch − x_original‖) for every step of a branch."""
    first = records[0].index
    return [(r.index + 1, float((r.x - records[r.index - first].x).norm())) for r in branch]


def steps_grid_and_frames(lm, records: list[E.Record]):
    """The export: a grid of every step (x_t over x̂_0, then the decoded final) and the frames of an animation of x_t."""
    cheap = decode_is_cheap(lm)
    final = pixels(lm, records[-1].x, full=True).clamp(-1, 1)  # every export ends with the decoded image

    def look(x: torch.Tensor) -> torch.Tensor:  # the preview, at the decoded image's size
        shown = pixels(lm, x, full=cheap).clamp(-1, 1)
        return torch.nn.functional.interpolate(shown, size=final.shape[-2:], mode="nearest") if shown.shape[-2:] != final.shape[-2:] else shown

    xs = torch.cat([look(r.x) for r in records] + [final])
    x0 = torch.cat([look(r.x0_hat if r.x0_hat is not None else r.x) for r in records] + [final])
    return image_grid(torch.cat([xs, x0]), rows=2), [picture(x[None], 256) for x in xs]


# ---- the forward process -------------------------------------------------------------------------------------


def noised(x0: torch.Tensor, t: int, schedule: Schedule, seed: int) -> torch.Tensor:
    """x_t of the image at step t, with the seed's ε."""
    return forward_noise(x0, t, schedule, torch.Generator().manual_seed(seed))[0]


def noising_strip(x0: torch.Tensor, steps: tuple[int, ...], schedule: Schedule, seed: int):
    """One row of x_t across `steps` (the same ε throughout), as a picture."""
    return image_grid(torch.cat([noised(x0, k, schedule, seed) for k in steps]), rows=1)


def log10(values: torch.Tensor) -> torch.Tensor:
    return torch.log10(values)


# ---- tensors and pictures ------------------------------------------------------------------------------------


def picture(x: torch.Tensor | None, size: int = DISPLAY_PX):
    """[1, C, H, W] in [-1, 1] -> a PIL image enlarged to `size` (nearest neighbour; NATIVE keeps the model's size)."""
    from PIL import Image

    if x is None:
        return None
    a = ((x[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    img = Image.fromarray(a[..., 0] if a.shape[2] == 1 else a[..., :3])
    scale = max(1, size // max(img.size))
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def noise_picture(eps: torch.Tensor | None):
    return None if eps is None else picture(eps / 3.0)  # ±3 standard deviations fill the range


def channels_picture(z: torch.Tensor):
    """Each latent channel side by side, scaled to its own range."""
    chans = [c / (c.abs().max() or 1.0) for c in z[0].float()]
    return picture(torch.cat(chans, dim=-1)[None, None], size=DISPLAY_PX * 2)


def image_tensor(image: Any) -> torch.Tensor:
    """A picture (PIL or array) -> [1, C, H, W] in [-1, 1]; grey pictures (even sent as RGB) as one channel; at most 256 px."""
    from PIL import Image

    if image is None:
        raise InputError("Give an image (an example, or upload one).")
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    img = img.convert("RGB") if img.mode not in ("L", "RGB") else img
    if max(img.size) > 256:
        img.thumbnail((256, 256))
    a = torch.tensor(np.asarray(img), dtype=torch.float32)
    a = a[..., None] if a.ndim == 2 else a
    if a.shape[-1] == 3 and torch.equal(a[..., 0], a[..., 1]) and torch.equal(a[..., 1], a[..., 2]):
        a = a[..., :1]  # a grey picture (handed over as RGB) is noised as grey, one ε per pixel
    return (a.permute(2, 0, 1)[None] / 127.5) - 1
