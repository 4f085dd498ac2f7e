"""Tensors to pictures: what a sample looks like (pixels; a latent's cheap preview or its decode), grids and
animations of a run, the forward process's pictures, and a user's picture as a tensor. No gradio."""

from __future__ import annotations

from typing import Any

import numpy as np

from playground.core.cache import per_object
from playground.core.diffusion.schedule import Schedule, forward_noise
from playground.errors import InputError
from playground.lazy import no_grad, torch

DISPLAY_PX = 192  # small images are shown enlarged (nearest neighbour)
NATIVE = 0  # picture(x, NATIVE): no enlargement, the model's own pixels (the API's images)
CHEAP_DECODER_PARAMS = 2_000_000  # a VAE decoder this small decodes in milliseconds (the embedded ones: 107k and 260k)
MAX_IMAGE_SIDE = 256  # a user's picture is shrunk to this many pixels a side before anything else


def vae_factor(vae: Any) -> int:
    """How many pixels a side one latent position decodes to (1 for a pixel model)."""
    return 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1


# ---- latents -----------------------------------------------------------------------------------------------------


@per_object
def latent_preview_map(vae: torch.nn.Module) -> torch.Tensor:
    """A linear map [C_latent + 1, C_image] from a latent pixel (and a bias) to the colour of the image
    patch it decodes to, fitted by least squares on the model's own autoencoder (64 random latents,
    decoded once per model). Far cheaper than a decode; good enough to watch a run."""
    g = torch.Generator().manual_seed(0)
    c = vae.config.latent_channels
    factor = vae_factor(vae)
    side = 8
    z = torch.randn(64, c, side, side, generator=g)
    param = next(vae.parameters())
    with torch.no_grad():
        img = vae.decode((z / vae.config.scaling_factor).to(param.device, param.dtype)).sample.float().cpu()
    target = torch.nn.functional.avg_pool2d(img, factor)  # [N, C_img, side, side]
    inputs = torch.cat([z.permute(0, 2, 3, 1).reshape(-1, c), torch.ones(64 * side * side, 1)], dim=1)
    targets = target.permute(0, 2, 3, 1).reshape(-1, img.shape[1])
    return torch.linalg.lstsq(inputs, targets).solution  # [C + 1, C_img]


FLAT_PREVIEW_GAIN = 0.05  # a fitted map whose colours move less than this per unit of latent shows noise as a flat colour


def preview_is_flat(vae: torch.nn.Module) -> bool:
    """Whether the fitted map draws noise as one flat colour: an autoencoder trained on flat shapes on black decodes
    random latents to black (sd-shapes: gain 0.007, where ldm-fashion's is 0.19), so its x_t looked black at every step."""
    return float(latent_preview_map(vae)[:-1].norm(dim=0).max()) < FLAT_PREVIEW_GAIN


def latent_colours(z: torch.Tensor, image_channels: int, factor: int) -> torch.Tensor:
    """Scaled latents [B, C, h, w] as a picture of themselves: the first three channels as red, green and blue (one
    image channel: their mean), ±3 standard deviations filling the range (scaled latents have unit variance), each
    latent position `factor` pixels wide. Noise looks like noise, and structure shows as it forms."""
    z = z.float().cpu()
    if image_channels == 1:
        img = z.mean(1, keepdim=True)
    else:
        img = torch.cat([z] + [z[:, -1:]] * max(0, 3 - z.shape[1]), dim=1)[:, :3]
    return torch.nn.functional.interpolate(img / 3.0, scale_factor=factor, mode="nearest")


def latent_preview(z: torch.Tensor, vae: torch.nn.Module) -> torch.Tensor:
    """Scaled latents [B, C, h, w] -> an image [B, C_img, h·f, w·f] in about [-1, 1], by the fitted linear map; for an
    autoencoder whose map draws noise flat (`preview_is_flat`), the latent's own channels in colour instead."""
    if preview_is_flat(vae):
        return latent_colours(z, vae.config.out_channels, vae_factor(vae))
    w = latent_preview_map(vae)
    img = torch.einsum("bchw,cd->bdhw", z.float().cpu(), w[:-1]) + w[-1].view(1, -1, 1, 1)
    return torch.nn.functional.interpolate(img, scale_factor=vae_factor(vae), mode="nearest")


@no_grad
def decode(z: torch.Tensor, vae: torch.nn.Module) -> torch.Tensor:
    """The full decode: vae.decode(z / scaling_factor)."""
    param = next(vae.parameters())
    return vae.decode((z / vae.config.scaling_factor).to(param.device, param.dtype)).sample.float().cpu()


def decode_is_cheap(model: Any) -> bool:
    """Whether x̂_0 can be shown decoded rather than through the linear preview (true for the embedded latent
    models; Stable Diffusion's decoder takes longer than a UNet step, so it is previewed)."""
    vae = model.components.get("vae")
    return vae is not None and _decoder_params(vae) <= CHEAP_DECODER_PARAMS


@per_object  # asked at every streamed step: counted once per loaded VAE
def _decoder_params(vae) -> int:
    return sum(p.numel() for p in vae.decoder.parameters())


def pixels(model: Any, x: torch.Tensor | None, full: bool = False) -> torch.Tensor | None:
    """What a sample looks like: pixels as they are; latents through the cheap preview, or decoded when `full`."""
    if x is None:
        return None
    vae = model.components.get("vae")
    if vae is None:
        return x
    return decode(x, vae) if full else latent_preview(x, vae)


@no_grad
def init_latent(model: Any, image: Any, shape: tuple[int, ...]) -> torch.Tensor:
    """Image-to-image's start: the image at the model's size (and channels), encoded to scaled latents for a latent model."""
    x = image_tensor(image)
    vae = model.components.get("vae")
    side = shape[-1] * vae_factor(vae)
    channels = vae.config.in_channels if vae is not None else shape[1]
    x = x.mean(1, keepdim=True) if channels == 1 else (x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x)
    x = torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    if vae is None:
        return x
    return vae.encode(x).latent_dist.mean * vae.config.scaling_factor


# ---- the forward process -----------------------------------------------------------------------------------------


def noised(x0: torch.Tensor, t: int, schedule: Schedule, seed: int) -> torch.Tensor:
    """x_t of the image at step t, with the seed's ε."""
    return forward_noise(x0, t, schedule, torch.Generator().manual_seed(seed))[0]


def noising_strip(x0: torch.Tensor, steps: tuple[int, ...], schedule: Schedule, seed: int):
    """One row of x_t across `steps` (the same ε throughout), as a picture."""
    return image_grid(torch.cat([noised(x0, k, schedule, seed) for k in steps]), rows=1)


# ---- tensors and pictures ----------------------------------------------------------------------------------------


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> [0, 255] uint8."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def image_grid(images: torch.Tensor, rows: int, pad: int = 2):
    """[N, C, H, W] images in [-1, 1] -> one PIL image, `rows` rows of N // rows, `pad` black pixels apart.

    >>> image_grid(torch.zeros(6, 1, 32, 32), rows=2).size  # (width, height)
    (104, 70)
    """
    from PIL import Image

    n, channels, h, w = images.shape
    if rows < 1 or n % rows:
        raise InputError(f"{n} images do not fill {rows} rows evenly.")
    cols = n // rows
    grid = torch.zeros(channels, rows * (h + pad) + pad, cols * (w + pad) + pad, dtype=torch.uint8)
    for k, image in enumerate(to_uint8(images)):
        r, c = divmod(k, cols)
        grid[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = image
    array = grid.permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if channels == 1 else array)


def picture(x: torch.Tensor | None, size: int = DISPLAY_PX):
    """[1, C, H, W] in [-1, 1] -> a PIL image enlarged to `size` (nearest neighbour; NATIVE keeps the model's size)."""
    from PIL import Image

    if x is None:
        return None
    a = to_uint8(x[0]).permute(1, 2, 0).cpu().numpy()
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
    """A picture (PIL or array) -> [1, C, H, W] in [-1, 1]; grey pictures (even sent as RGB) as one channel; at most
    MAX_IMAGE_SIDE px."""
    from PIL import Image

    if image is None:
        raise InputError("Give an image (an example, or upload one).")
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    img = img.convert("RGB") if img.mode not in ("L", "RGB") else img
    if max(img.size) > MAX_IMAGE_SIDE:
        img.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
    a = torch.tensor(np.asarray(img), dtype=torch.float32)
    a = a[..., None] if a.ndim == 2 else a
    if a.shape[-1] == 3 and torch.equal(a[..., 0], a[..., 1]) and torch.equal(a[..., 1], a[..., 2]):
        a = a[..., :1]  # a grey picture (handed over as RGB) is noised as grey, one ε per pixel
    return (a.permute(2, 0, 1)[None] / 127.5) - 1
