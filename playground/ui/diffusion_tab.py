"""Diffusion tab: forward noising, then reverse denoising step by step, streamed, scrubbed and branched."""

from __future__ import annotations

import functools
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from playground.config import ASSETS_DIR
from playground.core.diffusion import pictures
from playground.core.diffusion.loop import Record, x0_with
from playground.core.diffusion.run import (
    CLIPPING,
    MAX_GUIDANCE,
    MAX_SEED,
    MAX_STEPS,
    DiffusionRequest,
    Run,
    branch_from,
    run,
    steps_grid_and_frames,
)
from playground.core.diffusion.schedule import SCHEDULERS, SCHEDULES, noise_schedule
from playground.core.inputs import require_choice, require_int
from playground.core.render.lm import line_chart_svg
from playground.errors import InputError
from playground.models import ModelLoader
from playground.models.results import ResultHandle, resolve
from playground.models.zerogpu import GpuBudget, gpu_task
from playground.ui.common import (
    TabView,
    bind,
    checked_image,
    clear_first,
    figure,
    form_event,
    launch_alone,
    load_diffusion,
    on_page_load,
    png_file,
    user_errors,
)

EXPLAINER = """
### Diffusion: learn to undo noise, then run it backwards
**Forward process.** Training takes an image x_0 and adds Gaussian noise in T small steps; step t
keeps a share ᾱ_t of the signal: x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε. The schedule (β_t, the noise added
per step) decides how fast the signal-to-noise ratio falls. A UNet is trained to predict ε from
x_t and t.

**Reverse process.** Sampling starts from pure noise and, step by step, subtracts the predicted
noise: each step shows x_t, the model's guess of the final image x̂_0, and the noise ε̂ it removed.
A **scheduler** decides how big each step is (DDPM adds fresh noise every step, DDIM is
deterministic, Euler and DPM-Solver++ are ODE solvers that need fewer steps).

**Classifier-free guidance** runs the UNet with and without the condition (a class or a prompt)
and extrapolates: ε̂ = ε_u + w·(ε_c − ε_u). **Latent diffusion** denoises an autoencoder's small
latents instead of pixels, and decodes once at the end (the previews here are a cheap linear map).
**A cascade** (Imagen's design: `assets/models/imagen-shapes`, a text prompt such as "a red circle left of a blue
square") denoises 16x16 pixels, then a super-resolution stage draws 32x32 from that picture: its steps stream
after the base's. Pixel models clip x̂_0; Imagen's *dynamic thresholding* clips each sample at its own percentile.
"""
LDM_FASHION = "assets/models/ldm-fashion"  # the class-conditional latent model: an embedded folder without a Hub preset
IMAGEN = "assets/models/imagen-shapes"  # Imagen's cascade: a pixel base with a text prompt; its super-resolution stage follows
MODEL_CHOICES = ["google/ddpm-cifar10-32", "segmind/tiny-sd", LDM_FASHION, IMAGEN]
FORWARD_EXAMPLES = sorted(str(p) for p in (ASSETS_DIR / "examples").glob("*.png"))
STRIP_STEPS = (0, 100, 250, 400, 550, 700, 850, 999)
CLIP_CHOICES = list(zip(["model's setting", "clip x̂_0 to [-1, 1]", "dynamic thresholding (Imagen; pixel models)", "do not clip"],
                        CLIPPING, strict=True))
FRAME_INTERVAL_S = 0.25  # while streaming, pictures go out at most this often (the status line at every step): a browser
# cannot show 100 frames a second, and drawing x̂_0 for every step of a fast model cost more than the steps themselves
_DOWNLOADS = Path(tempfile.gettempdir()) / "playground-diffusion"

# ZeroGPU: loading and encoding, then a second a step (Stable-Diffusion-class models take ~0.1-0.3 s a guided step)
STEPS_BUDGET = GpuBudget(30, 1.0, "steps")
picture, noise_picture, channels_picture, pixels, NATIVE = (pictures.picture, pictures.noise_picture, pictures.channels_picture,
                                                             pictures.pixels, pictures.NATIVE)


@dataclass(frozen=True)
class DenoiseRequest(DiffusionRequest):
    """The page's reverse run: the model as asked, and the run's fields (checked by `run`, as every caller's are)."""

    model: str = ""  # a preset's Hub id, a Hub id or an allowed folder


@dataclass(frozen=True)
class BranchRequest:
    """A branch from the scrubbed step of the session's run: what changes."""

    step: int  # the 1-based step to take again
    prompt: str  # the class or prompt from there on
    negative: str  # the negative prompt (text-to-image)
    guidance: float  # w from there on
    seed: Any = -1  # a new noise seed, or -1 / empty to keep the original noise


def _frame(model, record: Record, final: bool = False, x_t: bool = True):
    """(x_t, x̂_0, ε̂, the latent channels) of a step, as pictures (`x_t=False`: that one left for the caller to draw)."""
    latent = "vae" in model.components
    x0 = picture(pixels(model, record.x0_hat, full=pictures.decode_is_cheap(model)))
    return (picture(pixels(model, record.x, full=final)) if x_t else None, x0, noise_picture(record.eps),
            channels_picture(record.x) if latent else None)


@dataclass(frozen=True)
class DenoiseFrame:
    """What one streamed update of the run shows, in the order of the event's outputs (`outputs()`)."""

    x_t: Any  # the sample (latent models: the cheap preview); gr.update() between the frames that are drawn
    x0: Any  # x̂_0, the model's guess of the end
    eps: Any  # ε̂, the noise the step removed
    channels: Any  # the latent channels (latent models), else None
    final: Any  # the fully decoded final image (last frame only)
    status: str  # the status line
    run: Any  # the session's run handle (last frame only)
    scrub: Any  # the scrub slider's update

    def outputs(self) -> tuple:
        return (*png_file((self.x_t, self.x0, self.eps, self.channels, self.final)), self.status, self.run, self.scrub)


@dataclass(frozen=True)
class ScrubView:
    """A finished run's step, in the order of the scrub event's outputs."""

    x_t: Any
    x0: Any
    eps: Any
    channels: Any
    guidance: list  # (picture, caption) for ε_u, ε_c, their combination and their difference; [] without guidance
    outcomes: list  # (picture, caption) for the x̂_0 that ε_u, ε_c and the guided ε̂ each give; [] without guidance
    charts: tuple[str, str, str]  # β_t, ᾱ_t, log10 SNR with the step's timestep marked

    def outputs(self) -> tuple:
        return (*png_file((self.x_t, self.x0, self.eps, self.channels, self.guidance, self.outcomes)), *self.charts)


@dataclass(frozen=True)
class BranchFrame:
    """One streamed update of a branch, in the order of the branch event's outputs. The top row (x_t, x̂_0, ε̂, the
    channels, the final image) shows the branch only: never the branch's x_t beside the original's x̂_0."""

    x_t: Any  # the branch's sample
    x0: Any  # the branch's x̂_0 at this step
    eps: Any  # the noise the branch's step removed
    channels: Any  # the branch's latent channels (latent models), else None
    final: Any  # the branch's fully decoded final image (last frame only; None before it: the original's is cleared)
    both: Any  # the original's and the branch's final images (last frame only)
    distance: Any  # ‖x_branch − x_original‖ per step (last frame only)
    status: str
    run: Any  # the session's run handle

    def outputs(self) -> tuple:
        return (*png_file((self.x_t, self.x0, self.eps, self.channels, self.final, self.both)), self.distance, self.status, self.run)


# ---- event handlers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardRequest:
    """The forward view: an image noised to step t of a schedule."""

    image: Any  # x_0: a picture (PIL or array)
    t: Any  # the timestep, 0 to 999
    schedule: Any  # one of SCHEDULES
    seed: Any  # ε's seed

    def checked(self):
        """(x_0, t, the schedule, seed), checked."""
        x0 = pictures.image_tensor(self.image)
        t = require_int(self.t, "t", low=0, high=999)
        s = noise_schedule(require_choice(self.schedule, "schedule", SCHEDULES))
        return x0, t, s, require_int(self.seed, "seed", low=0, high=MAX_SEED)


@user_errors
def on_forward(request: ForwardRequest):
    """(x_t at step t, a strip of x_t across t, the schedules' curves: β, ᾱ, log10 SNR)."""
    x0, t, s, seed = request.checked()
    return (png_file(picture(pictures.noised(x0, t, s, seed), 256)), png_file(pictures.noising_strip(x0, STRIP_STEPS, s, seed)),
            *schedule_curves(t))


@user_errors
def forward_api(image: Any, t: float, schedule: str, seed: float):
    """x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε for the image at step t of the schedule, with the seed's ε."""
    x0, t, s, seed = ForwardRequest(image, t, schedule, seed).checked()
    return picture(pictures.noised(x0, t, s, seed), NATIVE)  # native size: the API gets exact pixels


@functools.lru_cache(maxsize=1)  # depends on no input: computed once, on first use
def _schedules() -> dict[str, Any]:
    return {name: noise_schedule(name) for name in SCHEDULES}


SHORT = {"linear": "linear", "scaled_linear": "scaled", "squaredcos_cap_v2": "cosine"}  # schedule names in a chart's mark


@functools.lru_cache(maxsize=64)  # a chart per marked timestep: scrubbing back and forth redraws nothing
def schedule_curves(t: int | None = None, mark: str = "") -> tuple[str, str, str]:
    """SVG charts of β_t, ᾱ_t and log10 SNR for every schedule, each with its legend; `t` is marked (a vertical line
    labelled `mark`, by default "t = ..."): the forward view's t, or the timestep of the scrubbed step."""
    ts = list(range(0, 1000, 10))
    schedules = _schedules()
    at = None if t is None else (t, mark or f"t = {t}")

    def chart(values, y_label: str) -> str:
        # the mark names each schedule's value at t too: the numbers a lesson asks the learner to read
        marked = None if at is None else (at[0], "\n".join([at[1], *(f"{SHORT.get(name, name)} {float(values(sched)[at[0]]):.3g}"
                                                                       for name, sched in schedules.items())]))
        return line_chart_svg({name: (ts, [float(values(s)[k]) for k in ts]) for name, s in schedules.items()}, "t", y_label,
                              width=360, mark=marked)

    return (chart(lambda s: s.betas, "β_t (noise added at step t)"), chart(lambda s: s.alphas_cumprod, "ᾱ_t (signal left)"),
            chart(lambda s: s.snr.log10(), "log10 SNR = log10 ᾱ_t / (1 − ᾱ_t)"))


def _start(loader: ModelLoader, request: DenoiseRequest, progress=None) -> tuple[Any, Run, str]:
    """(the loaded model, its run, the status line's start); the request is checked before any model loads."""
    request = request.checked()
    name, model = load_diffusion(loader, request.model, progress)
    diffusion_run = run(model, request, model_name=name)
    status = (f"Running {model.source.describe()}: {diffusion_run.label}, {request.scheduler}, {request.steps} steps, guidance "
              f"{request.guidance:g}, seed {request.seed}" + (f", image-to-image at strength {request.strength:g}"
                                                            if request.init_image is not None and request.strength < 1 else "") + ".")
    return model, diffusion_run, status


def _super_resolution(loader: ModelLoader, request: DenoiseRequest, base_run: Run, progress=None) -> tuple[Any, Run] | None:
    """(the super-resolution stage, its run on the base's picture) when the model is a cascade's base, else None."""
    from playground.core.diffusion import cascade

    folder = cascade.SUPER_RESOLUTION.get(request.model.strip().rstrip("/"))
    if folder is None:
        return None
    _, sr = load_diffusion(loader, folder, progress)
    return sr, run(sr, cascade.sr_stage_request(base_run.request, base_run.records[-1].x), model_name=folder)


@user_errors
def on_denoise(loader: ModelLoader, request: DenoiseRequest, previous: ResultHandle | None = None, progress=gr.Progress()):
    """Stream the run: a DenoiseFrame's outputs per step (pictures at most every FRAME_INTERVAL_S), then the final one
    with the run's handle (the run the server keeps for this session, in its memory budget; `previous`, the session's
    last one, is released)."""
    model, diffusion_run, status = _start(loader, request, progress)
    shown = time.monotonic()  # the first pictures after one interval: a fast run goes straight to its final frame
    for record in diffusion_run:
        line = f"{status} Step {record.index + 1} of {diffusion_run.request.steps} (t = {record.timestep})."
        if time.monotonic() - shown >= FRAME_INTERVAL_S:
            yield DenoiseFrame(*_frame(model, record), None, line, None, gr.update()).outputs()
            shown = time.monotonic()
        else:  # the status line only: the pictures of a step nobody would see are never drawn
            yield DenoiseFrame(gr.update(), gr.update(), gr.update(), gr.update(), None, line, None, gr.update()).outputs()
    records = diffusion_run.records
    last = records[-1]
    decoded = pixels(model, last.x, full=True)  # decoded once: the last x_t and the final image are the same picture
    _, x0, eps, channels = _frame(model, last, x_t=False)
    handle = loader.keep_result(diffusion_run, diffusion_run.nbytes(), "diffusion run", replaces=previous)
    first, last = records[0].index + 1, records[-1].index + 1
    done = " Done: scrub through the steps below, or branch from one."
    stage_two = _super_resolution(loader, request, diffusion_run, progress)
    if stage_two is not None:  # a cascade: stream the super-resolution stage on the base's picture
        sr, sr_run = stage_two
        base_line = f"{status} Base done ({decoded.shape[-1]}x{decoded.shape[-1]})."
        for record in sr_run:
            line = f"{base_line} Super-resolution stage: step {record.index + 1} of {sr_run.request.steps}."
            yield DenoiseFrame(*_frame(sr, record), None, line, None, gr.update()).outputs()
        decoded = sr_run.records[-1].x
        done = (f" Done: the base's {records[-1].x.shape[-1]}x{records[-1].x.shape[-1]} picture, then the super-resolution stage's "
                f"{decoded.shape[-1]}x{decoded.shape[-1]} (its steps are shown last); scrubbing and branching act on the base stage.")
    # a slider's maximum must exceed its minimum: a one-step run (steps = 1, or image-to-image at a low strength) has one step
    yield DenoiseFrame(picture(decoded), x0, eps, channels, picture(decoded, 256), status + done,
                       handle, gr.update(minimum=first, maximum=max(last, first + 1), value=last, interactive=last > first)).outputs()


def _session_run(handle: ResultHandle | None) -> Run:
    diffusion_run = resolve(handle)
    if not isinstance(diffusion_run, Run) or not diffusion_run.records:
        raise InputError("Run the model first.")
    return diffusion_run


def _guidance_view(model, diffusion_run: Run, record: Record) -> tuple[list, list]:
    """What guidance did at this step, as two rows of (picture, caption): the two noise predictions, their combination
    and what the condition adds (ε_c − ε_u, at its own scale: far smaller than either); then the x̂_0 each gives."""
    if record.eps_uncond is None:
        return [], []
    w, k = diffusion_run.settings.guidance, record.index + 1
    difference = record.eps_cond - record.eps_uncond
    scale = float(difference.abs().max()) or 1.0
    noises = [(noise_picture(record.eps_uncond), f"step {k}: ε_u, without the condition"), (noise_picture(record.eps_cond), "ε_c: with it"),
              (noise_picture(record.eps), f"ε_u + {w:g}·(ε_c − ε_u): the step's ε̂"),
              (picture(difference / scale), f"ε_c − ε_u: what the condition adds (scaled to ±{scale:.2f})")]
    cheap, outcomes = pictures.decode_is_cheap(model), []
    for eps, caption in ((record.eps_uncond, f"step {k}: x̂_0 without the condition"), (record.eps_cond, "x̂_0 with it, unguided (w = 1)")):
        x0 = x0_with(record, eps)
        if x0 is not None:
            outcomes.append((picture(pixels(model, x0, full=cheap)), caption))
    outcomes.append((picture(pixels(model, record.x0_hat, full=cheap)), f"x̂_0 guided (w = {w:g}): what this step aims at"))
    return noises, outcomes


@user_errors
def on_scrub(loader: ModelLoader, handle: ResultHandle | None, step: float):
    """A finished run's step: x_t, x̂_0, ε̂, latent channels, the guidance view (ε_u, ε_c, combined, their difference, the
    x̂_0 of each), and the schedule charts with the step's timestep marked."""
    diffusion_run = _session_run(handle)
    record = diffusion_run.record(step)
    _, model = load_diffusion(loader, diffusion_run.model_name)
    curves = schedule_curves(int(record.timestep), f"step {record.index + 1}: t = {int(record.timestep)}")
    return ScrubView(*_frame(model, record), *_guidance_view(model, diffusion_run, record), curves).outputs()


@user_errors
def on_guidance(loader: ModelLoader, handle: ResultHandle | None) -> tuple[list, list]:
    """After a run: the guidance view at its middle step (the scrub slider changes it), so it is never empty."""
    diffusion_run = _session_run(handle)
    _, model = load_diffusion(loader, diffusion_run.model_name)
    return png_file(_guidance_view(model, diffusion_run, diffusion_run.records[len(diffusion_run.records) // 2]))


@user_errors
def on_branch(loader: ModelLoader, request: BranchRequest, handle: ResultHandle | None, progress=gr.Progress()):
    """Continue from a stored step with another guidance, class or prompt (or noise seed): streams the branch,
    then shows both finals and the per-step distance between the runs."""
    diffusion_run = _session_run(handle)
    _, model = load_diffusion(loader, diffusion_run.model_name, progress)
    seed = None if request.seed in (None, "", -1) else request.seed
    step = diffusion_run.record(request.step).index + 1
    for r in branch_from(model, diffusion_run, step, prompt=request.prompt, negative=request.negative, guidance=request.guidance,
                         seed=seed):
        yield BranchFrame(*_frame(model, r), None, None, None, f"Branch from step {step}: step {r.index + 1}.", handle).outputs()
    distance = pd.DataFrame(diffusion_run.branch_distances(), columns=["step", "distance"])
    original = diffusion_run.request
    both = [(picture(pixels(model, diffusion_run.records[-1].x, full=True), 256),
             f"original: {diffusion_run.label}, guidance {original.guidance:g}"),
            (picture(pixels(model, diffusion_run.branch[-1].x, full=True), 256), f"branch from step {step}: {diffusion_run.branch_label}")]
    if isinstance(handle, ResultHandle):  # the branch makes the run bigger: count it again
        loader.results.recount(handle, diffusion_run.nbytes())
    last = diffusion_run.branch[-1]
    yield BranchFrame(*_frame(model, last), picture(pixels(model, last.x, full=True), 256), both, distance,
                      f"Branch from step {step} done: the top row shows the branch; the original is beside it below.", handle).outputs()


@user_errors
def on_compare_clipping(loader: ModelLoader, request: DenoiseRequest, progress=gr.Progress()) -> tuple[list, str]:
    """(gallery items, notes): the page's request, 4 samples, with static clipping, dynamic thresholding and none, sample i
    from the same noise in every row; the share of pixels pinned white under each."""
    from PIL import Image

    from playground.core.diffusion.compare import SATURATED, compare_clipping

    asked = replace(request.checked(), clip="clip")
    _, model = load_diffusion(loader, request.model, progress)
    if "vae" in model.components:
        raise InputError("Dynamic thresholding is for pixel models (Imagen's): pick google/ddpm-cifar10-32 (offline: ddpm-fashion).")
    c = compare_clipping(model, asked)
    names = {"clip": "static: clip to [-1, 1]", "dynamic": "dynamic thresholding", "none": "no clipping"}
    items = []
    for i, clip in enumerate(c.clippings):
        for j, img in enumerate(c.images[i]):
            picture_ = Image.fromarray(img)
            items.append((picture_.resize((96, 96), Image.NEAREST), f"{names[clip]} · {j + 1}"))
    rows = ["| x̂_0 bounded by | pixels pinned white (≥ " + f"{SATURATED:g}) |", "|---|---|"]
    rows += [f"| {names[clip]} | {share:.1%} |" for clip, share in zip(c.clippings, c.saturated)]
    notes = (f"Guidance {c.request.guidance:g}, {c.request.scheduler}, {c.request.steps} steps, seed {c.request.seed}: each row one way "
             "of bounding x̂_0, sample i from the same noise in every row. High guidance pushes x̂_0 past [-1, 1]; static "
             "clipping flattens what passes to the edge (white), dynamic thresholding scales each sample back by its own "
             "95th percentile (at most 1.5) instead.\n\n" + "\n".join(rows))
    return items, notes


@user_errors
def on_export(loader: ModelLoader, handle: ResultHandle | None) -> list[str]:
    """A grid of every step (x_t over x̂_0) as PNG, and an animated GIF of x_t."""
    diffusion_run = _session_run(handle)
    _, model = load_diffusion(loader, diffusion_run.model_name)
    steps_grid, frames = steps_grid_and_frames(model, diffusion_run.records)
    _DOWNLOADS.mkdir(parents=True, exist_ok=True)
    grid = Path(tempfile.mkstemp(prefix="diffusion-steps-", suffix=".png", dir=_DOWNLOADS)[1])
    steps_grid.save(grid)
    gif = Path(tempfile.mkstemp(prefix="diffusion-steps-", suffix=".gif", dir=_DOWNLOADS)[1])
    frames[0].save(gif, save_all=True, append_images=frames[1:] + [frames[-1]] * 5, duration=120, loop=0)
    return [str(grid), str(gif)]


@user_errors
def denoise_api(loader: ModelLoader, model: str, prompt: str, scheduler: str, steps: float, guidance_scale: float, seed: float,
                negative_prompt: str = ""):
    """Stream every step's x_t (latent models: the cheap preview), then the final image (full decode), each as a
    lossless PNG at the model's native size. A cascade's base (assets/models/imagen-shapes) goes on: its super-resolution
    stage's steps and final picture follow, at that stage's size."""
    request = DenoiseRequest(model=model, prompt=prompt, negative=negative_prompt, scheduler=scheduler, steps=steps,
                             guidance=guidance_scale, seed=seed, snapshots=False)
    loaded, diffusion_run, _ = _start(loader, request)
    for record in diffusion_run:
        yield picture(pixels(loaded, record.x), NATIVE)
    yield picture(pixels(loaded, diffusion_run.records[-1].x, full=True), NATIVE)
    stage_two = _super_resolution(loader, request, diffusion_run)
    if stage_two is not None:
        sr, sr_run = stage_two
        for record in sr_run:
            yield picture(pixels(sr, record.x), NATIVE)


# ---- layout and wiring ----------------------------------------------------------------------------------


def build_diffusion_tab(loader: ModelLoader) -> TabView:
    """The denoising explorer. Named API endpoints: `/forward_noise`, `/denoise`."""
    with gr.Column():  # a column of the app's page (a nested gr.Blocks costs a whole app's setup)
        gr.Markdown(EXPLAINER)
        gr.Markdown("#### Forward process: noising")
        with gr.Row():
            fwd_image = figure(
                "Image x_0", value=FORWARD_EXAMPLES[0] if FORWARD_EXAMPLES else None, type="pil", height=200, elem_id="fwd-image"
            )
            with gr.Column():
                fwd_schedule = gr.Dropdown(list(SCHEDULES), value="linear", label="Schedule")
                fwd_t = gr.Slider(0, 999, value=250, step=1, label="Timestep t", elem_id="fwd-t")
                fwd_seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
                fwd_show = gr.Button(
                    "Show x_t", size="sm", elem_id="fwd-show"
                )  # the slider redraws on release; a keyboard user presses this
            fwd_out = figure("x_t", height=200, interactive=False, elem_id="fwd-out")
        if FORWARD_EXAMPLES:
            gr.Examples(FORWARD_EXAMPLES, inputs=[fwd_image], label="Example images (drawn by the embedded model)")
        fwd_strip = figure(f"x_t across t = {', '.join(map(str, STRIP_STEPS))}", interactive=False, height=120)
        with gr.Row():
            betas = gr.HTML(elem_id="fwd-betas")
            alphas = gr.HTML(elem_id="fwd-alphas")
            snr = gr.HTML(elem_id="fwd-snr")

        gr.Markdown("#### Reverse process: denoising, step by step")
        with gr.Row():
            model = gr.Dropdown(
                MODEL_CHOICES,
                value=MODEL_CHOICES[0],
                allow_custom_value=True,
                scale=2,
                elem_id="dif-model",
                label="Model (offline: a pixel DDPM on Fashion-MNIST; segmind/tiny-sd: text-to-image shapes; ldm-fashion: a latent "
                "model on Fashion-MNIST; imagen-shapes: Imagen's pixel cascade of shapes)",
            )
            scheduler = gr.Dropdown(list(SCHEDULERS), value="DDIM", label="Scheduler", elem_id="dif-scheduler")
            steps = gr.Slider(1, MAX_STEPS, value=20, step=1, label="Steps", elem_id="dif-steps")
        with gr.Row():
            prompt = gr.Textbox(
                value="Ankle boot", label="Class (Fashion-MNIST models) or prompt (text-to-image)", scale=2, elem_id="dif-prompt"
            )
            negative = gr.Textbox(value="", label="Negative prompt (text-to-image)", scale=2)
            guidance = gr.Slider(0, MAX_GUIDANCE, value=3.0, step=0.5, label="Guidance scale w", elem_id="dif-guidance")
            seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
        with gr.Row():
            clip = gr.Dropdown(CLIP_CHOICES, value="default", label="x̂_0 clipping")
            rederive = gr.Checkbox(value=True, label="Re-derive ε̂ from the clipped x̂_0 (DDIM; off: diffusers' default)")
            init_image = figure("Image-to-image: start image (optional)", type="pil", height=140)
            strength = gr.Slider(0.05, 1.0, value=0.6, step=0.05, label="Strength (share of the steps re-run)")
        run_btn = gr.Button("Denoise", variant="primary", elem_id="dif-run")
        status = gr.Markdown(elem_id="dif-status")
        with gr.Row():
            x_t = figure("x_t", interactive=False, height=200, elem_id="dif-xt")
            x0 = figure("x̂_0: the model's guess of the end", interactive=False, height=200, elem_id="dif-x0")
            eps = figure("ε̂: the noise removed", interactive=False, height=200, elem_id="dif-eps")
            final = figure("Final image (full decode)", interactive=False, height=200, elem_id="dif-final")
        chans = figure("Latent channels (latent models): each channel of x_t in grey, scaled to its own range", interactive=False,
                       height=110, elem_id="dif-channels")
        gr.Markdown("Latent models: x_t is shown through a linear map from latents to colours, fitted to the model's own autoencoder "
                    "(cheap, every step); where that map draws noise as one flat colour (sd-shapes' autoencoder decodes noise to "
                    "black), x_t is shown as its own latent channels in colour (±3 standard deviations), so the noise is seen "
                    "going. x̂_0 is decoded by the autoencoder where that is cheap (the embedded models), and the final image always "
                    "is.")
        state = gr.State(None, time_to_live=3600, delete_callback=loader.results.drop)
        scrub = gr.Slider(1, 2, value=1, step=1, label="Scrub: step", elem_id="dif-scrub")
        gr.Markdown("Guidance (after a run: its middle step; scrub to choose): the two noise predictions, their combination, what "
                    "the condition adds, and the x̂_0 each gives", elem_classes=["picture-caption"])
        guidance_view = gr.Gallery(label="Guidance at this step", show_label=False, columns=4, height="auto", object_fit="contain",
                                   elem_id="dif-guidance-view")
        outcome_view = gr.Gallery(label="The x̂_0 each prediction gives", show_label=False, columns=3, height="auto",
                                  object_fit="contain", elem_id="dif-guidance-x0")
        gr.Markdown("#### Branch from the scrubbed step (change the guidance, class or prompt above; a seed re-draws the noise)")
        with gr.Row():
            branch_seed = gr.Number(value=-1, precision=0, label="Branch seed (-1: keep the original noise)")
            branch_btn = gr.Button("Branch from this step", elem_id="dif-branch")
        with gr.Row():
            with gr.Column():
                gr.Markdown("Original and branch", elem_classes=["picture-caption"])
                both = gr.Gallery(
                    label="Original and branch", show_label=False, columns=2, height="auto", object_fit="contain", elem_id="dif-both"
                )
            distance = gr.LinePlot(x="step", y="distance", label="‖x_branch − x_original‖ per step", height=260)
        with gr.Accordion("Clipping compared at high guidance: static against Imagen's dynamic thresholding", open=False,
                          elem_id="dif-clipping-section"):
            gr.Markdown("Pixel models only. Set a high guidance (e.g. 15) and compare: the same request and noise with x̂_0 clipped "
                        "to [-1, 1], with dynamic thresholding, and with neither.")
            clipping_btn = gr.Button("Compare clipping", elem_id="dif-clipping-run")
            clipping_notes = gr.Markdown(elem_id="dif-clipping-notes")
            clipping_grid = gr.Gallery(label="Clipping compared", show_label=False, columns=4, height="auto", object_fit="contain",
                                       elem_id="dif-clipping-grid")
        with gr.Row():
            export = gr.Button("Prepare downloads: grid of all steps (PNG), animation (GIF)")
            files = gr.File(label="Downloads", file_count="multiple")
        # API-only inputs and output: plain values (a slider or an integer box would reject NaN before the handler could
        # say why) and a lossless PNG at the model's native size (Gradio's default is a lossy WebP)
        with gr.Group(visible=False):
            api_image = gr.Image(type="pil", format="png", label="image")
            api_in_image = checked_image(type="pil", label="image")
            api_t, api_seed = gr.Number(label="t"), gr.Number(label="seed")
            api_schedule, api_model, api_prompt = gr.Textbox(label="schedule"), gr.Textbox(label="model"), gr.Textbox(label="prompt")
            api_scheduler, api_negative = gr.Textbox(label="scheduler"), gr.Textbox(label="negative_prompt")
            api_steps, api_guidance = gr.Number(label="steps"), gr.Number(label="guidance_scale")
            api_forward = gr.Button()
            api_denoise = gr.Button()

        frames = [x_t, x0, eps, chans]
        forward = form_event(on_forward, ForwardRequest, {"image": fwd_image, "t": fwd_t, "schedule": fwd_schedule, "seed": fwd_seed})
        for trigger in (fwd_t.release, fwd_schedule.input, fwd_image.change, fwd_show.click):
            trigger(forward.event, forward.inputs, [fwd_out, fwd_strip, betas, alphas, snr], api_visibility="private")
        on_page_load(forward.event, forward.inputs, [fwd_out, fwd_strip, betas, alphas, snr], api_visibility="private")
        denoise = form_event(
            gpu_task(bind(on_denoise, loader), STEPS_BUDGET), DenoiseRequest,
            {"model": model, "prompt": prompt, "negative": negative, "scheduler": scheduler, "steps": steps, "guidance": guidance,
             "seed": seed, "clip": clip, "rederive": rederive, "init_image": init_image, "strength": strength}, state)
        clear_first(run_btn.click, [status]).then(
            denoise.event, denoise.inputs, [*frames, final, status, state, scrub], api_visibility="private"
        ).success(gpu_task(bind(on_guidance, loader), GpuBudget(30)), [state], [guidance_view, outcome_view], api_visibility="private")
        scrub.input(
            gpu_task(bind(on_scrub, loader), GpuBudget(30)),
            [state, scrub],
            frames + [guidance_view, outcome_view, betas, alphas, snr],
            api_visibility="private",
            trigger_mode="always_last",
        )
        branch = form_event(
            gpu_task(bind(on_branch, loader), GpuBudget(30 + MAX_STEPS * STEPS_BUDGET.per_unit_s)), BranchRequest,
            {"step": scrub, "prompt": prompt, "negative": negative, "guidance": guidance, "seed": branch_seed}, state)
        clear_first(branch_btn.click, [status]).then(
            branch.event, branch.inputs, [*frames, final, both, distance, status, state], api_visibility="private"
        )
        export.click(gpu_task(bind(on_export, loader), GpuBudget(60)), [state], files, api_visibility="private")
        clipping = form_event(
            gpu_task(bind(on_compare_clipping, loader), GpuBudget(30, 3 * STEPS_BUDGET.per_unit_s, "steps")), DenoiseRequest,
            {"model": model, "prompt": prompt, "negative": negative, "scheduler": scheduler, "steps": steps, "guidance": guidance,
             "seed": seed})
        clipping_btn.click(clipping.event, clipping.inputs, [clipping_grid, clipping_notes], api_visibility="private")
        api_forward.click(forward_api, [api_in_image, api_t, api_schedule, api_seed], api_image, api_name="forward_noise")
        api_denoise.click(
            gpu_task(bind(denoise_api, loader), STEPS_BUDGET),
            [api_model, api_prompt, api_scheduler, api_steps, api_guidance, api_seed, api_negative],
            api_image,
            api_name="denoise",
        )
    return TabView(inputs={"t": fwd_t, "schedule": fwd_schedule, "model": model, "prompt": prompt, "scheduler": scheduler, "steps": steps,
                           "guidance": guidance, "seed": seed}, run=("fwd-show", "dif-run"),
                   forms={"fwd-show": forward, "dif-run": denoise})


if __name__ == "__main__":  # run this tab on its own
    launch_alone(build_diffusion_tab)
