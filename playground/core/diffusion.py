"""Reverse diffusion, unrolled: a generator that yields every denoising step.

Notation (Ho et al. 2020; Song et al. 2021 for DDIM; Ho & Salimans 2022 for guidance):

| code            | paper            | meaning                                            |
|-----------------|------------------|----------------------------------------------------|
| `x`             | x_t              | the noisy sample at timestep t                     |
| `eps`           | ε_θ(x_t, t, c)   | the UNet's noise prediction                        |
| `eps_uncond`    | ε_θ(x_t, t, ∅)   | the same with the "no class" label (label dropout) |
| `guidance`      | w                | classifier-free guidance scale                     |
| `x0_hat`        | x̂_0              | the clean sample predicted from x_t (a preview)    |

No gradio here. The loop itself is `core.explorer.run`, the one the tab, the API and the evaluation all run;
`denoise` is its plain form for a class-conditional or unconditional UNet.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


from playground.errors import InputError
from playground.lazy import from_library, no_grad, torch


@dataclass
class DenoiseStep:
    index: int  # 0-based step number
    timestep: int  # the scheduler's t for this step
    sample: torch.Tensor  # x_{t-1}: the sample after this step
    pred_original: torch.Tensor | None  # x̂_0: the clean sample predicted at this step


def denoise(
    unet: torch.nn.Module,
    scheduler,
    class_labels: torch.Tensor | None = None,
    *,
    null_class: int | None = None,
    guidance: float = 1.0,
    num_steps: int = 50,
    generator: torch.Generator,
    batch_size: int | None = None,
    shape: tuple[int, ...] | None = None,
    use_clipped_model_output: bool = True,
) -> Iterator[DenoiseStep]:
    """Sample one image per label in `class_labels` (or `batch_size` images from an unconditional
    UNet), yielding each step.

    `scheduler` is a diffusers scheduler (DDIM, DDPM, ...); `generator` makes the run repeatable
    (the initial noise is drawn on the CPU, so a seed gives the same image on any device).
    `guidance` w: 0 ignores the class, 1 is plain conditional, >1 pushes towards the class; any
    w other than 1 needs a class-conditional UNet trained with label dropout and its `null_class`.
    `use_clipped_model_output` (DDIM with `clip_sample`): re-derive ε from the clipped x̂_0, as GLIDE
    does, so that x̂_0 and ε still describe x_t. diffusers' DDIMPipeline defaults to False, which
    under guidance drives pixel samples to saturated blobs (see the project README).
    """
    if num_steps < 1:
        raise InputError("num_steps must be at least 1.")
    conditional = getattr(unet, "class_embedding", None) is not None
    if conditional and class_labels is None:
        raise InputError("This UNet is class-conditional: give class_labels, one per image.")
    if not conditional:
        if class_labels is not None:
            raise InputError("This UNet is unconditional: it takes no class. Give batch_size instead of class_labels.")
        if guidance != 1.0:
            raise InputError(f"Guidance {guidance:g} needs a class-conditional UNet; this one is unconditional: use guidance 1.")
        if batch_size is None or batch_size < 1:
            raise InputError("Give batch_size, the number of images to sample (at least 1).")
    if guidance != 1.0 and null_class is None:
        raise InputError("Guidance other than 1 needs null_class, the 'no class' label the UNet was trained with.")
    from playground.core import explorer as E  # the one denoising loop (explorer imports this module: imported here)

    device = next(unet.parameters()).device
    n = len(class_labels) if conditional else batch_size
    channels, size = unet.config.in_channels, unet.config.sample_size
    shape = shape or (n, channels, size, size)
    if conditional:
        labels = class_labels.to(device)
        cond = E.Conditioning("class", labels, None if null_class is None else torch.full_like(labels, null_class))
    else:
        cond = E.Conditioning("none")
    # x_T ~ N(0, I) scaled as the scheduler expects, then every step of the explorer's loop (ε̂, guidance, the step)
    x, first = E.start(scheduler, num_steps, shape, generator, device)
    settings = E.RunSettings(guidance=guidance, use_clipped_model_output=use_clipped_model_output)
    for record in E.run(unet, scheduler, cond, x, generator, settings, first, snapshots=False):
        yield DenoiseStep(record.index, record.timestep, record.x, record.x0_hat)


SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")  # diffusers' beta_schedule names (DDPM, Stable Diffusion, cosine)
MAX_TRAIN_STEPS = 4000  # longest schedule drawn


@dataclass(frozen=True)
class Schedule:
    name: str  # one of SCHEDULES
    betas: torch.Tensor  # β_t, t = 0..T-1: the variance of the noise added at step t
    alphas_cumprod: torch.Tensor  # ᾱ_t = Π_{s<=t} (1 − β_s): the share of signal variance left at t

    @property
    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio ᾱ_t / (1 − ᾱ_t)."""
        return self.alphas_cumprod / (1 - self.alphas_cumprod)


def noise_schedule(name: str, num_train_timesteps: int = 1000) -> Schedule:
    """β_t and ᾱ_t of a named schedule, from diffusers' own DDPMScheduler (so they are the ones models use).

    >>> s = noise_schedule("linear")
    >>> round(float(s.betas[0]), 6), round(float(s.betas[-1]), 4), float(s.alphas_cumprod[-1]) < 1e-4
    (0.0001, 0.02, True)
    """
    DDPMScheduler = from_library("diffusers", "DDPMScheduler")

    if name not in SCHEDULES:
        raise InputError(f"Unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}.")
    if not isinstance(num_train_timesteps, int) or not 2 <= num_train_timesteps <= MAX_TRAIN_STEPS:
        raise InputError(f"num_train_timesteps must be a whole number from 2 to {MAX_TRAIN_STEPS}.")
    kwargs = {"beta_start": 0.00085, "beta_end": 0.012} if name == "scaled_linear" else {}  # Stable Diffusion's range
    scheduler = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=name, **kwargs)
    return Schedule(name, scheduler.betas.clone(), scheduler.alphas_cumprod.clone())


def forward_noise(x0: torch.Tensor, t: int, schedule: Schedule, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t, ε): jump straight to step t of the forward process, x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε, ε ~ N(0, I).

    No loop is needed: a sum of Gaussian steps is one Gaussian (Ho et al. 2020, eq. 4).
    """
    n = len(schedule.alphas_cumprod)
    if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < n:
        raise InputError(f"t must be a whole number from 0 to {n - 1}, got {t!r}.")
    eps = torch.randn(x0.shape, generator=generator, dtype=torch.float32)  # drawn on the CPU: same noise on any device
    a_bar = schedule.alphas_cumprod[t]
    return a_bar.sqrt() * x0.float().cpu() + (1 - a_bar).sqrt() * eps, eps


def class_index(prompt: str, id2label: dict[int, str]) -> int:
    """The class a prompt names, matched without regard to case; an unknown prompt lists the classes.

    >>> class_index("ankle BOOT", {0: "T-shirt/top", 9: "Ankle boot"})
    9
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError(f"Give a class name as the prompt: one of {', '.join(id2label.values())}.")
    wanted = " ".join(prompt.split()).casefold()
    for index, label in id2label.items():
        if label.casefold() == wanted:
            return int(index)
    raise InputError(
        f"{prompt!r} is not a class this model knows. It draws only these: {', '.join(id2label.values())}."
    )


def _step_kwargs(scheduler, **kwargs) -> dict:
    """The subset of `kwargs` that this scheduler's `step` accepts (DDPM takes a generator, DDIM also
    use_clipped_model_output, PNDM neither)."""
    import inspect

    accepted = inspect.signature(scheduler.step).parameters
    return {k: v for k, v in kwargs.items() if k in accepted}


@no_grad
def sample(unet, scheduler, class_labels: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
    """The final samples of `denoise` (no intermediate steps kept)."""
    last = None
    for last in denoise(unet, scheduler, class_labels, **kwargs):
        pass
    return last.sample


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
