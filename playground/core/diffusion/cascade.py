"""Imagen's cascade (Saharia et al. 2022) on DeepFloyd IF's folders: a base stage draws a small picture from the text, a
super-resolution stage draws it twice as large from that picture and the text. As `IFPipeline` then
`IFSuperResolutionPipeline` run them (tested equal). No gradio.

1. the caption -> the frozen T5 encoder's token states (77 of them, padding included, as IF reads them);
2. the base loop (`run.run`): x_T ~ N(0, I) at 16x16 pixels -> ... -> x_0, each step guided against the empty caption,
   x̂_0 dynamically thresholded (the folder's scheduler says so);
3. the base's x_0 upsampled (bilinear) to 32x32 and noised to `noise_level` (noise-conditioning augmentation: the
   stage learnt to repair pictures noised this much, so it does not copy the base's flaws);
4. the super-resolution loop (`run.run`, the same loop): x_T ~ N(0, I) at 32x32 -> ... -> x_0, each step reading x_t
   beside that picture, the level and the caption.

One seed: the base draws from a generator seeded with it; the super-resolution stage from one seeded with seed + 1
(two pipelines, two generators, as IF's own example runs them).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from playground.core.diffusion.run import CLIPPING, DiffusionRequest, Run
from playground.core.diffusion.run import run as diffusion_run
from playground.core.diffusion.schedule import SCHEDULERS
from playground.core.inputs import require_caption, require_choice, require_float, require_int, require_text

MAX_PROMPT_CHARS = 200  # the caption (T5 reads 77 tokens; the rest is cut)
MAX_STEPS = 100  # each stage's steps
MAX_GUIDANCE = 20.0
MAX_SEED = 2**31 - 2  # the super-resolution stage uses seed + 1
SR_NOISE_LEVEL = 250  # IFSuperResolutionPipeline's default augmentation level
# a base folder -> its super-resolution stage's folder (IF's pipelines do not link their stages; the playground does here)
SUPER_RESOLUTION = {"assets/models/imagen-shapes": "assets/models/imagen-shapes-sr"}


def sr_stage_request(base: DiffusionRequest, low_res: Any, noise_level: int = SR_NOISE_LEVEL, snapshots: bool = False) -> DiffusionRequest:
    """The super-resolution stage's request after a base run of `base`: the same prompt, scheduler, steps, guidance and
    clipping, seed + 1 (IF's two pipelines, two generators), the base's picture noised to `noise_level`."""
    seed = base.seed + 1 if base.seed < 2**63 - 1 else 0
    return replace(base, seed=seed, low_res=low_res.clamp(-1, 1), noise_level=noise_level, init_image=None, strength=1.0,
                   snapshots=snapshots, batch=1)


@dataclass(frozen=True)
class CascadeRequest:
    """Base then super-resolution, as asked. `checked()` validates every field."""

    prompt: str  # the caption both stages read
    seed: int = 0  # the base's generator; the super-resolution stage's is seed + 1
    steps: int = 50  # DDIM steps of each stage
    guidance: float = 5.0  # classifier-free guidance w of each stage
    noise_level: int = SR_NOISE_LEVEL  # how far the base's picture is noised before the super-resolution stage reads it
    clip: str = "default"  # x̂_0: the folders' dynamic thresholding ("default"), or one of run.CLIPPING
    negative: str = ""  # the negative prompt of both stages
    scheduler: str = "DDIM"  # each stage's sampler (the folders ship IF's DDPM; DDIM here re-derives ε̂ from the thresholded
    #                          x̂_0, as the playground's loop does: keeping the UNet's ε̂, as diffusers' DDIM step does by
    #                          default, drifts the pictures to grey under thresholding: 12.5% of colours right, against 100%)

    def checked(self) -> CascadeRequest:
        return replace(self, prompt=require_caption(self.prompt, max_chars=MAX_PROMPT_CHARS),
                       seed=require_int(self.seed, "seed", low=0, high=MAX_SEED),
                       steps=require_int(self.steps, "steps", low=1, high=MAX_STEPS),
                       guidance=require_float(self.guidance, "guidance_scale", low=0.0, high=MAX_GUIDANCE),
                       noise_level=require_int(self.noise_level, "noise_level", low=0, high=999),
                       clip=require_choice(self.clip, "clipping", CLIPPING),
                       scheduler=require_choice(self.scheduler, "scheduler", SCHEDULERS),
                       negative=require_text(self.negative or "", "negative prompt", max_chars=MAX_PROMPT_CHARS))

    def stage(self, low_res: Any = None, snapshots: bool = False) -> DiffusionRequest:
        """The request of the base stage (no `low_res`) or of the super-resolution stage (the base's picture)."""
        base = DiffusionRequest(prompt=self.prompt, negative=self.negative, scheduler=self.scheduler, steps=self.steps,
                                guidance=self.guidance, seed=self.seed, clip=self.clip, snapshots=snapshots)
        return base if low_res is None else sr_stage_request(base, low_res, self.noise_level, snapshots)


@dataclass
class CascadeRun:
    """Both stages: the base's Run (its steps taken when iterated), then the super-resolution stage's, made once the
    base is done (it needs the base's picture)."""

    request: CascadeRequest  # as checked
    base: Run  # stage 2's run
    sr_model: Any  # the super-resolution stage's model
    model_name: str = ""
    sr: Run | None = None  # stage 4's run, after `super_resolution()`

    def base_picture(self) -> Any:
        """Take the base's remaining steps: its x_0 [n, 3, 16, 16] in [-1, 1]."""
        deque(self.base, maxlen=0)
        return self.base.records[-1].x.clamp(-1, 1)

    def super_resolution(self, snapshots: bool = False) -> Run:
        """Stages 3-4: the super-resolution stage's Run on the base's picture (its steps taken when iterated)."""
        if self.sr is None:
            self.sr = diffusion_run(self.sr_model, self.request.stage(self.base_picture(), snapshots), self.model_name)
        return self.sr

    def steps(self) -> Iterator[tuple[str, Any]]:
        """Every step of both stages in order, as ("base" or "sr", Record)."""
        for record in self.base:
            yield "base", record
        for record in self.super_resolution():
            yield "sr", record

    def picture(self) -> Any:
        """Take every remaining step: the 32x32 pictures [n, 3, 32, 32] in [-1, 1]."""
        sr = self.super_resolution()
        deque(sr, maxlen=0)
        return sr.records[-1].x.clamp(-1, 1)


def run(base: Any, sr: Any, request: CascadeRequest, model_name: str = "", snapshots: bool = False) -> CascadeRun:
    """Check `request` and set up stages 1-2 (the base's run); the super-resolution stage is set up when the base is done."""
    request = request.checked()
    return CascadeRun(request, diffusion_run(base, request.stage(snapshots=snapshots), model_name), sr, model_name)
