"""THE reverse-diffusion loop, unrolled: every caller's steps run here (through `run.run`).

Notation (Ho et al. 2020; Song et al. 2021 for DDIM; Ho & Salimans 2022 for guidance; Salimans & Ho 2022 for v):

| code          | paper            | meaning                                                               |
|---------------|------------------|-----------------------------------------------------------------------|
| `x`           | x_t              | the noisy sample at timestep t (pixels, or a latent model's latents)  |
| `t`           | t                | the scheduler's timestep for this step                                |
| `pred`        | ε̂ or v̂           | the UNet's output at (x_t, t, c)                                      |
| `eps`         | ε̂ = ε_θ(x_t,t,c) | the noise the step removes (a v-prediction model's v̂, converted)       |
| `eps_uncond`  | ε_u = ε_θ(x_t,t,∅)| the same without the condition (the null class, or the empty prompt)  |
| `eps_cond`    | ε_c              | the same with it                                                      |
| `guidance`    | w                | classifier-free guidance: ε̂ = ε_u + w·(ε_c − ε_u)                     |
| `x0_hat`      | x̂_0              | the clean sample the step predicts: a preview of the end              |

A run is a list of `Record`s. Each holds the step's outputs and (unless the run keeps none) a `Snapshot` of what the
loop needs to take that step again: x_t, a copy of the scheduler (multistep solvers remember earlier predictions) and
the random generator's state. A branch restores a snapshot and goes on with other settings; with the same settings it
reproduces the original run exactly. No gradio.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from playground.core.diffusion.conditioning import Conditioning
from playground.core.diffusion.schedule import step_kwargs
from playground.core.inputs import require_float
from playground.errors import InputError
from playground.lazy import no_grad, torch


@dataclass
class Snapshot:
    x: torch.Tensor  # x_t before the step
    scheduler: Any  # a copy of the scheduler before the step
    generator_state: torch.Tensor  # the generator's state before the step


@dataclass
class Record:
    index: int  # 0-based step
    timestep: int  # the scheduler's t
    x: torch.Tensor  # x_{t-1}: the sample after this step
    x0_hat: torch.Tensor | None  # x̂_0 predicted at this step (None if the scheduler does not report it)
    eps: torch.Tensor  # the ε̂ the step used (guided; a v-prediction model's v̂ is turned into the ε̂ it stands for)
    eps_uncond: torch.Tensor | None  # ε_u, when guidance ran
    eps_cond: torch.Tensor | None  # ε_c, when guidance ran
    before: Snapshot | None  # what taking this step again needs (None: a run kept without snapshots)


@dataclass(frozen=True)
class RunSettings:
    guidance: float = 1.0  # w: 1 = conditional only, 0 = unconditional, > 1 pushes towards the condition
    use_clipped_model_output: bool = True  # DDIM with clip_sample: re-derive ε from the clipped x̂_0 (False: keep the UNet's ε)


def start(scheduler, num_steps: int, shape: tuple[int, ...], generator: torch.Generator, device: torch.device,
          init: torch.Tensor | None = None, strength: float = 1.0) -> tuple[torch.Tensor, int]:
    """(x at the first step, the index of the first step). From noise: x_T ~ N(0, I) · init_noise_sigma.
    Image-to-image (`init` given, strength < 1): `init` noised to the step `strength` of the way in."""
    scheduler.set_timesteps(num_steps, device=device)
    noise = torch.randn(shape, generator=generator, dtype=torch.float32).to(device)  # on the CPU: the same on any device
    if init is None or strength >= 1.0:
        return noise * scheduler.init_noise_sigma, 0
    strength = require_float(strength, "strength", low=0.0, high=1.0)
    skip = num_steps - int(num_steps * strength)
    if skip >= num_steps:
        raise InputError("Strength 0 leaves nothing to denoise; use a strength above 0.")
    t0 = scheduler.timesteps[skip * scheduler.order: skip * scheduler.order + 1]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(skip * scheduler.order)
    return scheduler.add_noise(init.to(device).float(), noise, t0), skip * scheduler.order


def as_epsilon(output: torch.Tensor, model_in: torch.Tensor, scheduler, t) -> torch.Tensor:
    """The noise ε̂ a UNet's output stands for, whatever the model was trained to predict (its scheduler's
    `prediction_type`), from the step's input x_t in variance-preserving form (`scale_model_input`'s output):

    - "epsilon": the output is ε̂.
    - "v_prediction" (Salimans & Ho 2022; Stable Diffusion 2): v̂ = √ᾱ_t ε̂ − √(1 − ᾱ_t) x̂_0, so ε̂ = √ᾱ_t v̂ + √(1 − ᾱ_t) x_t.
    - "sample": the output is x̂_0, so ε̂ = (x_t − √ᾱ_t x̂_0) / √(1 − ᾱ_t).
    """
    kind = scheduler.config.get("prediction_type", "epsilon")
    if kind == "epsilon":
        return output
    a_bar = scheduler.alphas_cumprod[round(float(t))].to(output.device, output.dtype)
    if kind == "v_prediction":
        return a_bar.sqrt() * output + (1 - a_bar).sqrt() * model_in
    if kind == "sample":
        return (model_in - a_bar.sqrt() * output) / (1 - a_bar).sqrt()
    raise InputError(f"This model's scheduler predicts {kind!r}; the explorer knows 'epsilon', 'v_prediction' and 'sample'.")


def _copy_scheduler(scheduler):
    """A copy of the scheduler to take a step again from: its state (step index, a multistep solver's list of earlier
    predictions) copied, its tensors shared. No scheduler changes a tensor in place (each step makes new ones; the
    branch tests would see it), and sharing them makes a rewind point cost a tenth of a deep copy."""
    state = vars(scheduler).values()
    shared = [v for v in state if isinstance(v, torch.Tensor)]
    shared += [t for v in state if isinstance(v, (list, tuple)) for t in v if isinstance(t, torch.Tensor)]
    return copy.deepcopy(scheduler, {id(t): t for t in shared})


@no_grad  # also on generators: grad mode is restored around every resume
def denoise_loop(unet: torch.nn.Module, scheduler, cond: Conditioning, x: torch.Tensor, generator: torch.Generator,
                 settings: RunSettings, first: int = 0, *, snapshots: bool = True) -> Iterator[Record]:
    """Denoise from `x` at step `first` (the scheduler already set up by `start`), yielding a Record per step.
    `snapshots=False` keeps no rewind point (`Record.before` is None): a run that will never be branched.
    """
    dtype = next(unet.parameters()).dtype
    guided = settings.guidance != 1.0
    if guided and cond.uncond is None:
        raise InputError("Guidance other than 1 needs an unconditional branch; this model has none (use guidance 1).")
    kwargs = step_kwargs(scheduler, generator=generator, use_clipped_model_output=settings.use_clipped_model_output)
    for i in range(first, len(scheduler.timesteps)):
        t = scheduler.timesteps[i]
        before = Snapshot(x.clone(), _copy_scheduler(scheduler), generator.get_state()) if snapshots else None
        x_in = x
        model_in = scheduler.scale_model_input(x, t)
        # 1. the UNet's prediction (ε̂, or v̂ for a v-prediction model) at (x_t, t, c); with guidance, also without c, in one batch
        #    (a UNet that also predicts a variance, as DeepFloyd IF's 6 channels: only x's channels are read; the samplers
        #    here use their fixed variances)
        n = x.shape[1]
        if not guided:
            pred = unet(cond.unet_input(model_in.to(dtype), "cond"), t, **cond.unet_kwargs("cond")).sample[:, :n].float()
            pred_u = pred_c = None
        elif settings.guidance == 0.0:
            pred = unet(cond.unet_input(model_in.to(dtype), "uncond"), t, **cond.unet_kwargs("uncond")).sample[:, :n].float()
            pred_u = pred_c = None
        else:
            both = torch.cat([model_in, model_in]).to(dtype)
            pred_u, pred_c = unet(cond.unet_input(both, "both"), t, **cond.unet_kwargs("both")).sample[:, :n].float().chunk(2)
            # 2. classifier-free guidance: ε̂ = ε_u + w (ε_c − ε_u) (the same on v̂: both are linear in the prediction)
            pred = pred_u + settings.guidance * (pred_c - pred_u)
        # 3. one reverse step x_t -> x_{t-1}; the scheduler also reports x̂_0 (a preview of the end)
        out = scheduler.step(pred, t, x, **kwargs)
        eps, eps_u, eps_c = (None if p is None else as_epsilon(p, model_in.float(), scheduler, t) for p in (pred, pred_u, pred_c))
        x0_hat = getattr(out, "pred_original_sample", None)
        if x0_hat is None and scheduler.init_noise_sigma == 1.0:
            # 4. a solver that does not report x̂_0 (DPM-Solver++): x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t
            a_bar = scheduler.alphas_cumprod[int(t)].to(x.device)
            x0_hat = (x_in - (1 - a_bar).sqrt() * eps) / a_bar.sqrt()
        # 5. x_{t-1} becomes the next step's x_t
        x = out.prev_sample
        yield Record(i, int(t), x, x0_hat, eps, eps_u, eps_c, before)


def x0_with(record: Record, eps: torch.Tensor) -> torch.Tensor | None:
    """The x̂_0 this step would have predicted with another noise prediction `eps` (ε_u, ε_c): in variance-preserving
    form x_t = √ᾱ_t x̂_0 + √(1 − ᾱ_t) ε̂, so x̂_0(ε) = x̂_0 + √((1 − ᾱ_t) / ᾱ_t) (ε̂ − ε). None without the step's
    snapshot (its scheduler holds ᾱ) or its x̂_0."""
    if record.before is None or record.x0_hat is None:
        return None
    a_bar = record.before.scheduler.alphas_cumprod[record.timestep].to(eps.device, eps.dtype)
    return record.x0_hat + ((1 - a_bar) / a_bar).sqrt() * (record.eps - eps)


def resume_from(unet, record: Record, cond: Conditioning, settings: RunSettings, generator: torch.Generator,
                seed: int | None = None) -> Iterator[Record]:
    """Take step `record.index` again from its snapshot, with `cond` and `settings` (changed or not), and go on.
    `seed`: draw this step's and later steps' noise from a new seed (stochastic schedulers)."""
    if record.before is None:
        raise InputError("This run kept no rewind points; run it again to branch from a step.")
    scheduler = copy.deepcopy(record.before.scheduler)
    if seed is None:
        generator.set_state(record.before.generator_state)
    else:
        generator.manual_seed(seed)
    return denoise_loop(unet, scheduler, cond, record.before.x.clone(), generator, settings, first=record.index)
