"""One diffusion run: a validated `DiffusionRequest` in, the loop's `Record`s out. The only setup there is.

    request = DiffusionRequest(prompt="Ankle boot", scheduler="DDIM", steps=20, guidance=3.0, seed=0)
    diffusion_run = run(loaded_model, request)   # checks the request, conditions, builds the sampler, seeds, draws x_T
    for record in diffusion_run:                 # the loop (`loop.denoise_loop`), one Record per step
        ...                                      # record.x, record.x0_hat, record.eps; diffusion_run.records keeps them

Every caller goes through here: the Diffusion tab and `/denoise`, the Text-to-image tab and `/cross_attention` (the
word-map recorder wraps the same run), the evaluation and the workshop check. `model` is the loader's `LoadedModel`,
or `Parts.of(components)` for a pipeline's parts held in hand (tests, training scripts). No gradio.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from playground.core.diffusion.conditioning import (
    MAX_PROMPT_CHARS,
    Conditioning,
    conditioning,
    is_super_resolution,
    is_unclip_decoder,
    with_image_embedding,
    with_low_resolution,
)
from playground.core.diffusion.loop import Record, RunSettings, denoise_loop, resume_from, start
from playground.core.diffusion.pictures import decode_is_cheap, image_grid, init_latent, picture, pixels, vae_factor
from playground.core.diffusion.schedule import SCHEDULERS, make_scheduler
from playground.core.inputs import require_choice, require_float, require_int, require_text
from playground.errors import InputError
from playground.lazy import torch

MAX_STEPS = 100  # denoising steps per run
MAX_RESOLUTION = 512  # pixels per side (latent models: the decoded image)
MAX_GUIDANCE = 20.0  # the largest guidance scale w
MAX_IMAGES = 256  # images in one run (the evaluation samples batches; the page and the API draw one)
MAX_SEED = 2**63 - 1
CLIPPING = ("default", "clip", "dynamic", "none")  # x̂_0: the model's setting, clip to [-1, 1], Imagen's dynamic thresholding, or not


@dataclass(frozen=True)
class DiffusionRequest:
    """One reverse run, as asked. `checked()` validates every field (the API bypasses the page's widgets)."""

    prompt: str | tuple[str, ...] = (
        ""  # a class name (class-conditional), a text (text-to-image), "" (unconditional); a tuple: one image each
    )
    negative: str | tuple[str, ...] = ""  # the negative prompt(s) of a text-to-image model ("" for the empty prompt)
    scheduler: str = "DDIM"  # one of SCHEDULERS
    steps: int = 50  # denoising steps, 1 to MAX_STEPS
    guidance: float = 1.0  # w, 0 to MAX_GUIDANCE: 1 = conditional only, 0 = unconditional only
    seed: int = 0  # x_T and every random draw (stochastic samplers) come from this seed
    clip: str = "default"  # x̂_0 clipping, one of CLIPPING
    rederive: bool = True  # DDIM with clipping: re-derive ε̂ from the clipped x̂_0 (False: diffusers' default)
    init_image: Any = None  # image-to-image: the start picture (PIL or array), or None to start from noise
    strength: float = 1.0  # image-to-image: the share of the steps re-run (1: from pure noise)
    batch: int = 1  # images per prompt
    snapshots: bool = True  # keep a rewind point per step (branching); False for runs that are never branched
    image_embedding: Any = None  # an unCLIP decoder's CLIP image embedding(s) [1 or n, d] (the prior's, or a picture's)
    noise_level: int = 0  # an unCLIP decoder: how far that embedding is noised first (Stable unCLIP's noise augmentation);
    #                       a super-resolution stage: how far its low-resolution picture is (IF-II's; its default is 250)
    low_res: Any = None  # a super-resolution stage's low-resolution picture(s) [1 or n, C, h, w] in [-1, 1] (the base's)

    def prompts(self) -> list[str]:
        """One prompt per image."""
        prompts = [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)
        return [p for p in prompts for _ in range(self.batch)]

    def negatives(self) -> list[str]:
        """One negative prompt per image."""
        n = len(self.prompts())
        negatives = [self.negative] * (n // self.batch) if isinstance(self.negative, str) else list(self.negative)
        if len(negatives) * self.batch != n:
            raise InputError(f"Give one negative prompt per prompt ({n // self.batch}), or one for all; got {len(negatives)}.")
        return [m for m in negatives for _ in range(self.batch)]

    def checked(self) -> DiffusionRequest:
        """The request with numbers as their types, or an InputError that says what to change."""
        require_choice(self.scheduler, "scheduler", SCHEDULERS)
        steps = require_int(self.steps, "steps", low=1, high=MAX_STEPS)
        guidance = require_float(self.guidance, "guidance scale", low=0.0, high=MAX_GUIDANCE)
        require_choice(self.clip, "clipping", CLIPPING)
        batch = require_int(self.batch, "batch", low=1, high=MAX_IMAGES)
        for name, texts in (("prompt", self.prompt), ("negative prompt", self.negative)):
            if not isinstance(texts, (str, tuple, list)):
                raise InputError(f"{name} must be text, got {type(texts).__name__}.")
            for text in [texts] if isinstance(texts, str) else texts:
                require_text(text, name, max_chars=MAX_PROMPT_CHARS)
        strength = 1.0 if self.init_image is None else require_float(self.strength, "strength", low=0.0, high=1.0)
        checked = replace(self, steps=steps, guidance=guidance, seed=require_int(self.seed, "seed", low=0, high=MAX_SEED),
                          rederive=bool(self.rederive), strength=strength, batch=batch)
        n = len(checked.prompts())
        if not 1 <= n <= MAX_IMAGES:
            raise InputError(f"A run draws 1 to {MAX_IMAGES} images; this one asks for {n}.")
        checked.negatives()
        return checked

    @property
    def settings(self) -> RunSettings:
        return RunSettings(guidance=self.guidance, use_clipped_model_output=self.rederive)


@dataclass(frozen=True)
class Parts:
    """A diffusion pipeline's parts held in hand, shaped like the loader's `LoadedModel` for `run`."""

    components: dict[str, Any]  # unet, scheduler (and vae, text_encoder, tokenizer for text-to-image)
    pipeline: Any = None  # a class-conditional model's id2label and null_class (the loader's PipelineInfo), or None

    @property
    def model(self) -> Any:
        return self.components["unet"]

    @classmethod
    def of(cls, components: dict[str, Any], id2label: dict[int, str] | None = None, null_class: int | None = None) -> Parts:
        from types import SimpleNamespace

        info = SimpleNamespace(id2label=id2label or {}, null_class=null_class) if id2label else None
        return cls(dict(components), info)


def latent_shape(model: Any, n: int = 1) -> tuple[int, ...]:
    """[n, C, h, w] of the UNet's samples; an error if the decoded image would pass the playground's cap."""
    config = model.model.config
    side = config.sample_size if isinstance(config.sample_size, int) else config.sample_size[0]
    pixels_side = side * vae_factor(model.components.get("vae"))
    if pixels_side > MAX_RESOLUTION:
        raise InputError(f"This model renders {pixels_side} px images; the playground's cap is {MAX_RESOLUTION} px.")
    channels = config.in_channels // 2 if is_super_resolution(model) else config.in_channels  # IF-II: x_t and the picture
    return (n, channels, side, side)


@dataclass
class Run:
    """One run: what was asked, its conditioning, every step taken so far, and a branch if one was taken.
    Iterating it takes the steps (once), appending each Record to `records`."""

    request: DiffusionRequest  # as checked
    label: str  # the class(es) or prompt(s), for captions
    cond: Conditioning  # what the UNet was told
    records: list[Record] = field(default_factory=list)  # the steps taken, in order
    branch: list[Record] = field(default_factory=list)  # a branch's steps (see `branch_from`)
    branch_label: str = ""  # what the branch changed, for captions
    model_name: str = ""  # the model as asked (a preset, Hub id or folder), for the page to load it again
    _steps: Iterator[Record] | None = field(default=None, repr=False)

    def __iter__(self) -> Iterator[Record]:
        steps, self._steps = self._steps, None
        for record in steps or ():
            self.records.append(record)
            yield record

    @property
    def settings(self) -> RunSettings:
        return self.request.settings

    def record(self, step: Any) -> Record:
        """The record of 1-based `step`, checked against the steps this run took."""
        if not self.records:
            raise InputError("Run the model first.")
        first = self.records[0].index
        k = require_int(step, "step", low=first + 1, high=self.records[-1].index + 1) - 1
        return self.records[k - first]

    def nbytes(self) -> int:
        """Bytes of the run's tensors: every step's x, x̂_0, ε̂ (and ε_u, ε_c), its rewind snapshot, and the branch's."""
        total = 0
        for r in (*self.records, *self.branch):
            for t in (r.x, r.x0_hat, r.eps, r.eps_uncond, r.eps_cond, r.before.x if r.before else None,
                      r.before.generator_state if r.before else None):
                total += 0 if t is None else t.numel() * t.element_size()
        return total

    def branch_distances(self) -> list[tuple[int, float]]:
        """(step, ‖x_branch − x_original‖) for every step of the branch."""
        first = self.records[0].index
        return [(r.index + 1, float((r.x - self.records[r.index - first].x).norm())) for r in self.branch]


def run(model: Any, request: DiffusionRequest, model_name: str = "", generator: torch.Generator | None = None) -> Run:
    """Check `request`, condition the model, build the sampler from the model's scheduler config, seed a CPU generator
    and draw x_T (or noise the start image): the returned Run takes the steps when iterated. `generator`: one already
    drawn from (DALL-E 2's prior, which the unCLIP pipeline runs on the same generator first); default: a new one
    seeded with `request.seed`."""
    request = request.checked()
    prompts = request.prompts()
    cond, label = conditioning(model, prompts, request.negatives(), request.guidance)
    shape = latent_shape(model, len(prompts))
    if request.clip == "dynamic" and "vae" in model.components:
        raise InputError("Dynamic thresholding is for pixel models (Imagen's): a latent model's x̂_0 is a latent, not confined "
                         "to [-1, 1]. Pick another clipping, or a pixel model.")
    clip = None if request.clip in ("default", "dynamic") else request.clip == "clip"
    scheduler = make_scheduler(request.scheduler, model.components["scheduler"].config, clip, dynamic=request.clip == "dynamic")
    generator = generator if generator is not None else torch.Generator().manual_seed(request.seed)
    if is_unclip_decoder(model):
        cond = with_image_embedding(model, cond, request.image_embedding, request.noise_level, len(prompts), generator)
    elif request.image_embedding is not None:
        raise InputError("Only an unCLIP decoder reads an image embedding; this model does not.")
    if request.low_res is not None and not is_super_resolution(model):
        raise InputError("Only a cascade's super-resolution stage reads a low-resolution picture; this model does not.")
    init = None
    if request.init_image is not None and request.strength < 1.0:
        init = init_latent(model, request.init_image, shape)
    device = next(model.model.parameters()).device
    cond = cond.to(device)
    x, first = start(scheduler, request.steps, shape, generator, device, init=init, strength=request.strength)
    if is_super_resolution(model):  # after x_T, as IFSuperResolutionPipeline draws them
        cond = with_low_resolution(model, cond, request.low_res, request.noise_level, shape, generator).to(device)
    steps = denoise_loop(model.model, scheduler, cond, x, generator, request.settings, first, snapshots=request.snapshots)
    return Run(request, label, cond, model_name=model_name, _steps=steps)


def final_sample(model: Any, request: DiffusionRequest, generator: torch.Generator | None = None) -> torch.Tensor:
    """The last step's x_0 of a run (no snapshots kept): for sampling and the evaluation. `generator`: as `run`'s."""
    last, = deque(run(model, replace(request, snapshots=False), generator=generator), maxlen=1)  # only the last step is kept
    return last.x


def branch_from(model: Any, diffusion_run: Run, step: Any, *, prompt: str, negative: str, guidance: Any,
                seed: int | None = None) -> Iterator[Record]:
    """Take 1-based `step` of `diffusion_run` again from its snapshot with another prompt, negative prompt or guidance
    (and, with `seed`, new noise), and go on; the branch's records go to `diffusion_run.branch` as they come."""
    record = diffusion_run.record(step)
    asked = replace(diffusion_run.request, prompt=prompt, negative=negative, guidance=guidance).checked()
    cond, label = conditioning(model, asked.prompts(), asked.negatives(), asked.guidance)
    if diffusion_run.cond.labels is not None:  # an unCLIP decoder's branch keeps the run's image embedding (a super-resolution
        #                                        stage's, its low-resolution picture)
        cond = replace(cond, labels=diffusion_run.cond.labels, labels_uncond=diffusion_run.cond.labels_uncond,
                       image=diffusion_run.cond.image)
    cond = cond.to(next(model.model.parameters()).device)
    if seed is not None:
        seed = require_int(seed, "branch seed", low=0, high=MAX_SEED)
    diffusion_run.branch = []
    diffusion_run.branch_label = f"{label}, guidance {asked.guidance:g}" + (f", seed {seed}" if seed is not None else "")
    for r in resume_from(model.model, record, cond, asked.settings, torch.Generator(), seed=seed):
        diffusion_run.branch.append(r)
        yield r


def steps_grid_and_frames(model: Any, records: list[Record]):
    """The export: a grid of every step (x_t over x̂_0, then the decoded final) and the frames of an animation of x_t."""
    cheap = decode_is_cheap(model)
    final = pixels(model, records[-1].x, full=True).clamp(-1, 1)  # every export ends with the decoded image

    def look(x: torch.Tensor) -> torch.Tensor:  # the preview, at the decoded image's size
        shown = pixels(model, x, full=cheap).clamp(-1, 1)
        return (
            torch.nn.functional.interpolate(shown, size=final.shape[-2:], mode="nearest") if shown.shape[-2:] != final.shape[-2:] else shown
        )

    xs = torch.cat([look(r.x) for r in records] + [final])
    x0 = torch.cat([look(r.x0_hat if r.x0_hat is not None else r.x) for r in records] + [final])
    return image_grid(torch.cat([xs, x0]), rows=2), [picture(x[None], 256) for x in xs]
