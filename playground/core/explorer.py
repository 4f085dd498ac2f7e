"""The diffusion explorer's engine: any scheduler, any conditioning, every step kept so a run can be
scrubbed, rewound and branched. No gradio.

Notation as in `core/diffusion.py`: x_t the sample, ε̂ the UNet's noise prediction, x̂_0 the clean
sample it implies, w the guidance scale; ε_u / ε_c the unconditional / conditional predictions.

A run is a list of `Record`s. Each holds the step's outputs and a `Snapshot` of everything the
loop needs to take that step again: x_t, a copy of the scheduler (multistep solvers remember
earlier predictions) and the random generator's state. A branch restores a snapshot and goes on
with other settings; with the same settings it reproduces the original run exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


from playground.core.cache import per_object
from playground.core.diffusion import _step_kwargs
from playground.core.inputs import require_choice, require_float, require_int
from playground.errors import InputError
from playground.core.cache import shared_lock
from playground.lazy import from_library, no_grad, torch

MAX_STEPS = 100  # denoising steps per run
MAX_RESOLUTION = 512  # pixels per side (latent models: the decoded image)
MAX_GUIDANCE = 20.0
SCHEDULERS = ("DDPM", "DDIM", "Euler", "Euler ancestral", "DPM-Solver++")


def make_scheduler(name: str, config: Any, clip_sample: bool | None = None):
    """One of SCHEDULERS, diffusers' own class, built from the model's scheduler config (its β schedule).
    `clip_sample` overrides whether x̂_0 is clipped to [-1, 1] (schedulers that have the option)."""
    require_choice(name, "scheduler", SCHEDULERS)
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
    return cls.from_config(config, **extra)


def text_conditioning(components: dict[str, Any], prompt: str | list[str], negative_prompt: str | list[str], guided: bool) -> Conditioning:
    """A text-to-image model's prompt embeddings, encoded by the Stable Diffusion pipeline's own `encode_prompt`
    (a list of prompts, with a list of negative prompts as long, encodes a batch)."""
    StableDiffusionPipeline = from_library("diffusers", "StableDiffusionPipeline")

    parts = {k: components.get(k) for k in ("vae", "text_encoder", "tokenizer", "unet", "scheduler")}
    pipe = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    device = next(components["unet"].parameters()).device
    with shared_lock(parts["tokenizer"]):  # encode_prompt sets the shared tokenizer's padding and truncation
        cond, uncond = pipe.encode_prompt(prompt, device, 1, guided, negative_prompt or None)
    return Conditioning("text", cond, uncond)


@dataclass(frozen=True)
class Conditioning:
    """What the UNet is told: nothing, a class, or a text (embeddings); and the 'nothing' used for guidance."""

    kind: str  # "none", "class" or "text"
    cond: torch.Tensor | None = None  # class labels [B] or text embeddings [B, L, D]
    uncond: torch.Tensor | None = None  # the null class / the negative-prompt embeddings (for guidance)

    def unet_kwargs(self, which: torch.Tensor | None) -> dict[str, Any]:
        if self.kind == "class":
            return {"class_labels": which}
        if self.kind == "text":
            return {"encoder_hidden_states": which}
        return {}


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


def check_settings(num_steps: Any, guidance: Any) -> tuple[int, float]:
    return require_int(num_steps, "steps", low=1, high=MAX_STEPS), require_float(guidance, "guidance scale", low=0.0, high=MAX_GUIDANCE)


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
    a_bar = scheduler.alphas_cumprod[int(round(float(t)))].to(output.device, output.dtype)
    if kind == "v_prediction":
        return a_bar.sqrt() * output + (1 - a_bar).sqrt() * model_in
    if kind == "sample":
        return (model_in - a_bar.sqrt() * output) / (1 - a_bar).sqrt()
    raise InputError(f"This model's scheduler predicts {kind!r}; the explorer knows 'epsilon', 'v_prediction' and 'sample'.")


@no_grad  # also on generators: grad mode is restored around every resume
def run(unet: torch.nn.Module, scheduler, cond: Conditioning, x: torch.Tensor, generator: torch.Generator, settings: RunSettings,
        first: int = 0, *, snapshots: bool = True) -> Iterator[Record]:
    """Denoise from `x` at step `first` (scheduler already set up), yielding a Record per step. `snapshots=False`
    keeps no rewind point (`Record.before` is None): a run that will never be branched (sampling, the evaluation).

    The loop, unrolled (as diffusers' pipelines run it):
    """
    dtype = next(unet.parameters()).dtype
    guided = settings.guidance != 1.0
    if guided and cond.uncond is None:
        raise InputError("Guidance other than 1 needs an unconditional branch; this model has none (use guidance 1).")
    step_kwargs = _step_kwargs(scheduler, generator=generator, use_clipped_model_output=settings.use_clipped_model_output)
    for i in range(first, len(scheduler.timesteps)):
        t = scheduler.timesteps[i]
        before = Snapshot(x.clone(), copy.deepcopy(scheduler), generator.get_state()) if snapshots else None
        x_in = x
        model_in = scheduler.scale_model_input(x, t)
        # 1. the UNet's prediction (ε̂, or v̂ for a v-prediction model) at (x_t, t, c); with guidance, also without c, in one batch
        if not guided:
            pred = unet(model_in.to(dtype), t, **cond.unet_kwargs(cond.cond)).sample.float()
            pred_u = pred_c = None
        elif settings.guidance == 0.0:
            pred = unet(model_in.to(dtype), t, **cond.unet_kwargs(cond.uncond)).sample.float()
            pred_u = pred_c = None
        else:
            both = torch.cat([model_in, model_in]).to(dtype)
            pred_u, pred_c = unet(both, t, **cond.unet_kwargs(torch.cat([cond.uncond, cond.cond]))).sample.float().chunk(2)
            # 2. classifier-free guidance: ε̂ = ε_u + w (ε_c − ε_u) (the same on v̂: both are linear in the prediction)
            pred = pred_u + settings.guidance * (pred_c - pred_u)
        # 3. one reverse step x_t -> x_{t-1}; the scheduler also reports x̂_0 (a preview of the end)
        out = scheduler.step(pred, t, x, **step_kwargs)
        eps, eps_u, eps_c = (None if p is None else as_epsilon(p, model_in.float(), scheduler, t) for p in (pred, pred_u, pred_c))
        x0_hat = getattr(out, "pred_original_sample", None)
        if x0_hat is None and scheduler.init_noise_sigma == 1.0:
            # 4. a solver that does not report x̂_0 (DPM-Solver++): x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t
            a_bar = scheduler.alphas_cumprod[int(t)].to(x.device)
            x0_hat = (x_in - (1 - a_bar).sqrt() * eps) / a_bar.sqrt()
        x = out.prev_sample
        yield Record(i, int(t), x, x0_hat, eps, eps_u, eps_c, before)


def branch(unet, record: Record, cond: Conditioning, settings: RunSettings, generator: torch.Generator,
           seed: int | None = None) -> Iterator[Record]:
    """Take step `record.index` again from its snapshot, with `cond` and `settings` (changed or not), and go on.
    `seed`: draw this step's and later steps' noise from a new seed (stochastic schedulers)."""
    scheduler = copy.deepcopy(record.before.scheduler)
    if seed is None:
        generator.set_state(record.before.generator_state)
    else:
        generator.manual_seed(require_int(seed, "seed", low=0, high=2**63 - 1))
    return run(unet, scheduler, cond, record.before.x.clone(), generator, settings, first=record.index)


# ---- latent previews ---------------------------------------------------------------------------------


@per_object
def latent_preview_map(vae: torch.nn.Module) -> torch.Tensor:
    """A linear map [C_latent + 1, C_image] from a latent pixel (and a bias) to the colour of the image
    patch it decodes to, fitted by least squares on the model's own autoencoder (64 random latents,
    decoded once per model). Far cheaper than a decode; good enough to watch a run."""
    g = torch.Generator().manual_seed(0)
    c = vae.config.latent_channels
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    side = 8
    z = torch.randn(64, c, side, side, generator=g)
    param = next(vae.parameters())
    with torch.no_grad():
        img = vae.decode((z / vae.config.scaling_factor).to(param.device, param.dtype)).sample.float().cpu()
    target = torch.nn.functional.avg_pool2d(img, factor)  # [N, C_img, side, side]
    X = torch.cat([z.permute(0, 2, 3, 1).reshape(-1, c), torch.ones(64 * side * side, 1)], dim=1)
    Y = target.permute(0, 2, 3, 1).reshape(-1, img.shape[1])
    return torch.linalg.lstsq(X, Y).solution  # [C + 1, C_img]


def latent_preview(z: torch.Tensor, vae: torch.nn.Module) -> torch.Tensor:
    """Scaled latents [B, C, h, w] -> an image [B, C_img, h·f, w·f] in about [-1, 1], by the fitted linear map."""
    w = latent_preview_map(vae)
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    img = torch.einsum("bchw,cd->bdhw", z.float().cpu(), w[:-1]) + w[-1].view(1, -1, 1, 1)
    return torch.nn.functional.interpolate(img, scale_factor=factor, mode="nearest")


@no_grad
def decode(z: torch.Tensor, vae: torch.nn.Module) -> torch.Tensor:
    """The full decode: vae.decode(z / scaling_factor)."""
    param = next(vae.parameters())
    return vae.decode((z / vae.config.scaling_factor).to(param.device, param.dtype)).sample.float().cpu()

