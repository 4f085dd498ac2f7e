"""Noise schedules, the forward process, and the samplers (diffusers' schedulers) the reverse loop can use.

| code             | paper   | meaning                                                         |
|------------------|---------|-----------------------------------------------------------------|
| `betas`          | β_t     | the variance of the noise added at step t                       |
| `alphas_cumprod` | ᾱ_t     | Π_{s<=t} (1 − β_s): the share of the signal's variance left at t |
| `snr`            | SNR(t)  | ᾱ_t / (1 − ᾱ_t)                                                 |
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from playground.core.inputs import require_choice
from playground.errors import InputError
from playground.lazy import from_library, torch

SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")  # diffusers' beta_schedule names (DDPM, Stable Diffusion, cosine)
MAX_TRAIN_STEPS = 4000  # longest schedule drawn
SCHEDULERS = ("DDPM", "DDIM", "Euler", "Euler ancestral", "DPM-Solver++")  # the samplers a run may use


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
    ddpm_scheduler = from_library("diffusers", "DDPMScheduler")

    if name not in SCHEDULES:
        raise InputError(f"Unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}.")
    if not isinstance(num_train_timesteps, int) or not 2 <= num_train_timesteps <= MAX_TRAIN_STEPS:
        raise InputError(f"num_train_timesteps must be a whole number from 2 to {MAX_TRAIN_STEPS}.")
    kwargs = {"beta_start": 0.00085, "beta_end": 0.012} if name == "scaled_linear" else {}  # Stable Diffusion's range
    scheduler = ddpm_scheduler(num_train_timesteps=num_train_timesteps, beta_schedule=name, **kwargs)
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


DYNAMIC_RATIO = 0.95  # dynamic thresholding: the quantile of |x̂_0| that sets each sample's threshold s (DeepFloyd IF's setting)
DYNAMIC_MAX = 1.5  # ... and the largest s (IF's `sample_max_value`; Imagen leaves s unbounded)
THRESHOLDING = ("DDPM", "DDIM", "DPM-Solver++")  # the schedulers diffusers gives a `thresholding` option


def make_scheduler(name: str, config: Any, clip_sample: bool | None = None, dynamic: bool = False):
    """One of SCHEDULERS, diffusers' own class, built from the model's scheduler config (its β schedule).
    `clip_sample` overrides whether x̂_0 is clipped to [-1, 1] (schedulers that have the option). `dynamic`: Imagen's
    dynamic thresholding instead (Saharia et al. 2022): per sample, s = a high percentile of |x̂_0| (at least 1),
    then x̂_0 <- clip(x̂_0, −s, s) / s, so high guidance does not saturate the picture; with IF's settings (DeepFloyd IF is
    Imagen's design in diffusers): the 95th percentile, s at most 1.5."""
    require_choice(name, "scheduler", SCHEDULERS)
    if dynamic and name not in THRESHOLDING:
        raise InputError(f"Dynamic thresholding is an option of {', '.join(THRESHOLDING)} only; pick one of them, or another "
                         "clipping.")
    class_name, extra = {
        "DDPM": ("DDPMScheduler", {}),
        "DDIM": ("DDIMScheduler", {}),
        "Euler": ("EulerDiscreteScheduler", {}),
        "Euler ancestral": ("EulerAncestralDiscreteScheduler", {}),
        "DPM-Solver++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    }[name]
    cls = from_library("diffusers", class_name)
    if clip_sample is not None:
        extra["clip_sample"] = bool(clip_sample)
        if name in THRESHOLDING:  # a config with thresholding on (DeepFloyd IF's) would otherwise threshold all the same
            extra["thresholding"] = False
    if dynamic:
        extra.update(clip_sample=False, thresholding=True, dynamic_thresholding_ratio=DYNAMIC_RATIO, sample_max_value=DYNAMIC_MAX)
    return cls.from_config(config, **extra)


def step_kwargs(scheduler, **kwargs) -> dict:
    """The subset of `kwargs` that this scheduler's `step` accepts (DDPM takes a generator, DDIM also
    use_clipped_model_output, PNDM neither)."""
    accepted = inspect.signature(scheduler.step).parameters
    return {k: v for k, v in kwargs.items() if k in accepted}
