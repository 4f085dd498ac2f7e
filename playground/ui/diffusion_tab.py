"""Diffusion tab: forward noising, then reverse denoising step by step, streamed, scrubbed and branched."""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from playground.config import ASSETS_DIR
from playground.core import explorer as E
from playground.core import diffusion_model as M
from playground.core.diffusion import SCHEDULES, noise_schedule
from playground.core.inputs import require_choice, require_float, require_int, require_text
from playground.core.render_lm import line_chart_svg
from playground.errors import InputError
from playground.models import Family, ModelLoader, find_preset
from playground.models.sources import MAX_SOURCE_LEN
from playground.models.results import ResultHandle, resolve
from playground.models.zerogpu import GpuBudget, gpu_task
from playground.ui.common import TabView, clear_first, figure, png_file, on_page_load, launch_alone, bind, progress_fn, user_errors

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
"""
LDM_FASHION = "assets/models/ldm-fashion"  # the class-conditional latent model: an embedded folder without a Hub preset
MODEL_CHOICES = ["google/ddpm-cifar10-32", "segmind/tiny-sd", LDM_FASHION]
FORWARD_EXAMPLES = sorted(str(p) for p in (ASSETS_DIR / "examples").glob("*.png"))
STRIP_STEPS = (0, 100, 250, 400, 550, 700, 850, 999)
CLIP_CHOICES = [("model's setting", "default"), ("clip x̂_0 to [-1, 1]", "clip"), ("do not clip", "none")]
_DOWNLOADS = Path(tempfile.gettempdir()) / "playground-diffusion"


@dataclass
class DiffusionRun:
    """One user's run (kept in gr.State): what was asked, every step, and a branch if one was taken."""

    model: str
    scheduler: str
    steps: int
    settings: E.RunSettings
    cond: E.Conditioning
    label: str  # the class or prompt, for captions
    records: list[E.Record]
    branch: list[E.Record] = field(default_factory=list)
    branch_label: str = ""


# ---- models and conditioning --------------------------------------------------------------------------


def load_diffusion(loader: ModelLoader, model: Any, progress=None):
    name = require_text(model, "model", max_chars=MAX_SOURCE_LEN).strip()
    if not name:
        raise InputError(f"Choose a model: {', '.join(MODEL_CHOICES)}, a Hub id or an allowed folder of a diffusers pipeline.")
    family = next((f for f in (Family.DIFFUSION, Family.LATENT_DIFFUSION) if find_preset(f, name)), Family.DIFFUSION)
    lm = loader.load(name, family, progress=progress_fn(progress) if progress is not None else None)
    return name, lm


# ---- what a step shows --------------------------------------------------------------------------


# ZeroGPU: loading and encoding, then a second a step (Stable-Diffusion-class models take ~0.1-0.3 s a guided step)
STEPS_BUDGET = GpuBudget(30, 1.0, "steps")
picture, noise_picture, channels_picture, pixels, NATIVE = M.picture, M.noise_picture, M.channels_picture, M.pixels, M.NATIVE


def _frame(lm, record: E.Record, final: bool = False):
    latent = "vae" in lm.components
    return (picture(pixels(lm, record.x, full=final)), picture(pixels(lm, record.x0_hat, full=M.decode_is_cheap(lm))), noise_picture(record.eps),
            channels_picture(record.x) if latent else None)


# ---- event handlers -----------------------------------------------------------------------------------


def _forward_request(image: Any, t: Any, schedule: Any, seed: Any):
    """(x_0, t, the schedule, seed), checked."""
    x0 = M.image_tensor(image)
    t = require_int(t, "t", low=0, high=999)
    s = noise_schedule(require_choice(schedule, "schedule", SCHEDULES))
    return x0, t, s, require_int(seed, "seed", low=0, high=2**63 - 1)


@user_errors
def on_forward(image: Any, t: float, schedule: str, seed: float):
    """(x_t at step t, a strip of x_t across t, the schedules' curves: β, ᾱ, log10 SNR)."""
    x0, t, s, seed = _forward_request(image, t, schedule, seed)
    return png_file(picture(M.noised(x0, t, s, seed), 256)), png_file(M.noising_strip(x0, STRIP_STEPS, s, seed)), *schedule_curves(t)


@user_errors
def forward_api(image: Any, t: float, schedule: str, seed: float):
    """x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε for the image at step t of the schedule, with the seed's ε."""
    x0, t, s, seed = _forward_request(image, t, schedule, seed)
    return picture(M.noised(x0, t, s, seed), NATIVE)  # native size: the API gets exact pixels


@functools.lru_cache(maxsize=1)  # depends on no input: computed once, on first use
def _schedules() -> dict[str, Any]:
    return {name: noise_schedule(name) for name in SCHEDULES}


@functools.lru_cache(maxsize=64)  # a chart per marked timestep: scrubbing back and forth redraws nothing
def schedule_curves(t: int | None = None, mark: str = "") -> tuple[str, str, str]:
    """SVG charts of β_t, ᾱ_t and log10 SNR for every schedule, each with its legend; `t` is marked (a vertical line
    labelled `mark`, by default "t = ..."): the forward view's t, or the timestep of the scrubbed step."""
    ts = list(range(0, 1000, 10))
    schedules = _schedules()
    at = None if t is None else (t, mark or f"t = {t}")

    def chart(values, y_label: str) -> str:
        return line_chart_svg({name: (ts, [float(values(s)[k]) for k in ts]) for name, s in schedules.items()}, "t", y_label,
                              width=360, mark=at)

    return (chart(lambda s: s.betas, "β_t (noise added at step t)"), chart(lambda s: s.alphas_cumprod, "ᾱ_t (signal left)"),
            chart(lambda s: M.log10(s.snr), "log10 SNR = log10 ᾱ_t / (1 − ᾱ_t)"))


@dataclass(frozen=True)
class DenoiseRequest:
    """One reverse run, as asked (from the page or the API), every field checked by `checked()`."""

    model: str  # a preset's Hub id, a Hub id or an allowed folder
    prompt: str  # a class name (class-conditional models) or a text (text-to-image)
    negative: str  # the negative prompt (text-to-image), "" for none
    scheduler: str  # one of E.SCHEDULERS
    steps: int  # 1 to E.MAX_STEPS
    guidance: float  # w, 0 to E.MAX_GUIDANCE
    seed: int  # the noise x_T and every random draw
    clip: str = "default"  # x̂_0 clipping: "default" (the model's), "clip" or "none"
    rederive: bool = True  # re-derive ε̂ from the clipped x̂_0 (DDIM)
    init_image: Any = None  # image-to-image: the start image, or None
    strength: float = 1.0  # image-to-image: the share of the steps re-run (1: from pure noise)

    def checked(self) -> DenoiseRequest:
        """The request with numbers as their types, or an InputError that says what to change."""
        require_choice(self.scheduler, "scheduler", E.SCHEDULERS)
        steps, guidance = E.check_settings(self.steps, self.guidance)
        require_choice(self.clip, "clipping", [c for _, c in CLIP_CHOICES])
        strength = 1.0 if self.init_image is None else require_float(self.strength, "strength", low=0.0, high=1.0)
        return replace(self, steps=steps, guidance=guidance, seed=require_int(self.seed, "seed", low=0, high=2**63 - 1),
                       rederive=bool(self.rederive), strength=strength)


@dataclass(frozen=True)
class DenoiseFrame:
    """What one streamed update of the run shows, in the order of the event's outputs (`outputs()`)."""

    x_t: Any  # the sample (latent models: the cheap preview)
    x0: Any  # x̂_0, the model's guess of the end
    eps: Any  # ε̂, the noise the step removed
    channels: Any  # the latent channels (latent models), else None
    final: Any  # the fully decoded final image (last frame only)
    status: str  # the status line
    run: Any  # the session's run handle (last frame only)
    scrub: Any  # the scrub slider's update

    def outputs(self) -> tuple:
        return (*png_file((self.x_t, self.x0, self.eps, self.channels, self.final)), self.status, self.run, self.scrub)


@user_errors
def on_denoise(loader: ModelLoader, model: str, prompt: str, negative: str, scheduler: str, steps: float, guidance: float, seed: float,
               clip: str, rederive: bool, init_image: Any, strength: float, previous: Any = None, progress=gr.Progress()):
    """Stream the run: yields a DenoiseFrame's outputs per step, then the final one with the run's handle (the run
    the server keeps for this session, in its memory budget; `previous`, the session's last one, is released)."""
    req = DenoiseRequest(model, prompt, negative, scheduler, steps, guidance, seed, clip, rederive, init_image, strength)
    for lm, run, record, status in _denoise_stream(loader, req, progress):
        yield DenoiseFrame(*_frame(lm, record), None, f"{status} Step {record.index + 1} of {run.steps} (t = {record.timestep}).",
                           None, gr.update()).outputs()
    final = picture(pixels(lm, run.records[-1].x, full=True), 256)
    handle = loader.keep_result(run, run_bytes(run), "diffusion run", replaces=previous)
    first, last = run.records[0].index + 1, run.records[-1].index + 1
    # a slider's maximum must exceed its minimum: a one-step run (steps = 1, or image-to-image at a low strength) has one step
    yield DenoiseFrame(*_frame(lm, run.records[-1], final=True), final, status + " Done: scrub through the steps below, or branch from one.",
                       handle, gr.update(minimum=first, maximum=max(last, first + 1), value=last, interactive=last > first)).outputs()


def _denoise_stream(loader: ModelLoader, req: DenoiseRequest, progress=None):
    """Check the request, load the model, then yield (lm, run, record, status line) for every step."""
    req = req.checked()
    settings = E.RunSettings(guidance=req.guidance, use_clipped_model_output=req.rederive)
    name, lm = load_diffusion(loader, req.model, progress)
    cond, label = M.conditioning(lm, req.prompt, req.negative, req.guidance)
    sched, g, x, first = M.start_run(lm, req.scheduler, req.steps, req.seed, req.clip, req.init_image, req.strength)
    run = DiffusionRun(name, req.scheduler, req.steps, settings, cond, label, [])
    status = (f"Running {lm.source.describe()}: {label}, {req.scheduler}, {req.steps} steps, guidance {req.guidance:g}, "
              f"seed {req.seed}.")
    for record in E.run(lm.model, sched, cond, x, g, settings, first):
        run.records.append(record)
        yield lm, run, record, status


def run_bytes(run: DiffusionRun) -> int:
    """Bytes of a run's tensors (every step, its snapshot, and the branch): what the session's result counts."""
    return M.run_bytes([*run.records, *run.branch])


def _record(run: DiffusionRun | None, step: Any) -> E.Record:
    if run is None or not run.records:
        raise InputError("Run the model first.")
    first = run.records[0].index
    k = require_int(step, "step", low=first + 1, high=run.records[-1].index + 1) - 1
    return run.records[k - first]


@user_errors
def on_scrub(loader: ModelLoader, run: DiffusionRun | None, step: float):
    """A finished run's step: x_t, x̂_0, ε̂, latent channels, the guidance view (ε_u, ε_c, combined), and the
    schedule charts with the step's timestep marked."""
    run = resolve(run)
    record = _record(run, step)
    _, lm = load_diffusion(loader, run.model)
    guidance = []
    if record.eps_uncond is not None:
        w = run.settings.guidance
        guidance = [(noise_picture(record.eps_uncond), "ε_u: without the condition"), (noise_picture(record.eps_cond), "ε_c: with it"),
                    (noise_picture(record.eps), f"ε_u + {w:g}·(ε_c − ε_u): the step's ε̂")]
    curves = schedule_curves(int(record.timestep), f"step {record.index + 1}: t = {int(record.timestep)}")
    return (*png_file((*_frame(lm, record), guidance)), *curves)


@user_errors
def on_branch(loader: ModelLoader, run: DiffusionRun | None, step: float, prompt: str, negative: str, guidance: float, seed: Any,
              progress=gr.Progress()):
    """Continue from a stored step with another guidance, class or prompt (or noise seed): streams the branch,
    then shows both finals and the per-step distance between the runs."""
    handle, run = run, resolve(run)
    record = _record(run, step)
    _, lm = load_diffusion(loader, run.model, progress)
    guidance = E.check_settings(run.steps, guidance)[1]
    cond, label = M.conditioning(lm, prompt, negative, guidance)
    new_seed = None if seed in (None, "", -1) else require_int(seed, "branch seed", low=0, high=2**63 - 1)
    settings = E.RunSettings(guidance=guidance, use_clipped_model_output=run.settings.use_clipped_model_output)
    run.branch, run.branch_label = [], f"{label}, guidance {guidance:g}" + (f", seed {new_seed}" if new_seed is not None else "")
    for r in E.branch(lm.model, record, cond, settings, M.new_generator(), seed=new_seed):
        run.branch.append(r)
        yield png_file(picture(pixels(lm, r.x))), None, None, f"Branch from step {record.index + 1}: step {r.index + 1}.", handle
    distance = pd.DataFrame(M.branch_distances(run.records, run.branch), columns=["step", "distance"])
    both = [(picture(pixels(lm, run.records[-1].x, full=True), 256), f"original: {run.label}, guidance {run.settings.guidance:g}"),
            (picture(pixels(lm, run.branch[-1].x, full=True), 256), f"branch from step {record.index + 1}: {run.branch_label}")]
    if isinstance(handle, ResultHandle):  # the branch makes the run bigger: count it again
        loader.results.recount(handle, run_bytes(run))
    yield png_file(picture(pixels(lm, run.branch[-1].x))), png_file(both), distance, f"Branch from step {record.index + 1} done.", handle


@user_errors
def on_export(loader: ModelLoader, run: DiffusionRun | None) -> list[str]:
    """A grid of every step (x_t over x̂_0) as PNG, and an animated GIF of x_t."""
    run = resolve(run)
    if run is None or not run.records:
        raise InputError("Run the model first.")
    _, lm = load_diffusion(loader, run.model)
    steps_grid, frames = M.steps_grid_and_frames(lm, run.records)
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
    lossless PNG at the model's native size."""
    lm = run = None
    req = DenoiseRequest(model, prompt, negative_prompt, scheduler, steps, guidance_scale, seed)
    for lm, run, record, _ in _denoise_stream(loader, req):
        yield picture(pixels(lm, record.x), NATIVE)
    yield picture(pixels(lm, run.records[-1].x, full=True), NATIVE)


# ---- layout and wiring ----------------------------------------------------------------------------------


def build_diffusion_tab(loader: ModelLoader) -> TabView:
    """The denoising explorer. Named API endpoints: `/forward_noise`, `/denoise`."""
    with gr.Column():  # a column of the app's page (a nested gr.Blocks costs a whole app's setup)
        gr.Markdown(EXPLAINER)
        gr.Markdown("#### Forward process: noising")
        with gr.Row():
            fwd_image = figure("Image x_0", value=FORWARD_EXAMPLES[0] if FORWARD_EXAMPLES else None, type="pil", height=200, elem_id="fwd-image")
            with gr.Column():
                fwd_schedule = gr.Dropdown(list(SCHEDULES), value="linear", label="Schedule")
                fwd_t = gr.Slider(0, 999, value=250, step=1, label="Timestep t", elem_id="fwd-t")
                fwd_seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
                fwd_show = gr.Button("Show x_t", size="sm", elem_id="fwd-show")  # the slider redraws on release; a keyboard user presses this
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
            model = gr.Dropdown(MODEL_CHOICES, value=MODEL_CHOICES[0], allow_custom_value=True, scale=2, elem_id="dif-model",
                                label="Model (offline: a pixel DDPM on Fashion-MNIST; segmind/tiny-sd: text-to-image shapes; the folder: a latent model on Fashion-MNIST)")
            scheduler = gr.Dropdown(list(E.SCHEDULERS), value="DDIM", label="Scheduler", elem_id="dif-scheduler")
            steps = gr.Slider(1, E.MAX_STEPS, value=20, step=1, label="Steps", elem_id="dif-steps")
        with gr.Row():
            prompt = gr.Textbox(value="Ankle boot", label="Class (Fashion-MNIST models) or prompt (text-to-image)", scale=2, elem_id="dif-prompt")
            negative = gr.Textbox(value="", label="Negative prompt (text-to-image)", scale=2)
            guidance = gr.Slider(0, E.MAX_GUIDANCE, value=3.0, step=0.5, label="Guidance scale w", elem_id="dif-guidance")
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
                    "(cheap, every step); x̂_0 is decoded by the autoencoder where that is cheap (the embedded model), and the final "
                    "image always is.")
        state = gr.State(None, time_to_live=3600, delete_callback=loader.results.drop)
        scrub = gr.Slider(1, 2, value=1, step=1, label="Scrub: step", elem_id="dif-scrub")
        gr.Markdown("Guidance at this step: the two noise predictions and their combination", elem_classes=["picture-caption"])
        guidance_view = gr.Gallery(label="Guidance at this step", show_label=False, columns=3, height="auto", object_fit="contain",
                                   elem_id="dif-guidance-view")
        gr.Markdown("#### Branch from the scrubbed step (change the guidance, class or prompt above; a seed re-draws the noise)")
        with gr.Row():
            branch_seed = gr.Number(value=-1, precision=0, label="Branch seed (-1: keep the original noise)")
            branch_btn = gr.Button("Branch from this step", elem_id="dif-branch")
        with gr.Row():
            with gr.Column():
                gr.Markdown("Original and branch", elem_classes=["picture-caption"])
                both = gr.Gallery(label="Original and branch", show_label=False, columns=2, height="auto", object_fit="contain", elem_id="dif-both")
            distance = gr.LinePlot(x="step", y="distance", label="‖x_branch − x_original‖ per step", height=260)
        with gr.Row():
            export = gr.Button("Prepare downloads: grid of all steps (PNG), animation (GIF)")
            files = gr.File(label="Downloads", file_count="multiple")
        # API-only inputs and output: plain values (a slider or an integer box would reject NaN before the handler could
        # say why) and a lossless PNG at the model's native size (Gradio's default is a lossy WebP)
        with gr.Group(visible=False):
            api_image = gr.Image(type="pil", format="png", label="image")
            api_in_image = gr.Image(type="pil", label="image")
            api_t, api_seed = gr.Number(label="t"), gr.Number(label="seed")
            api_schedule, api_model, api_prompt = gr.Textbox(label="schedule"), gr.Textbox(label="model"), gr.Textbox(label="prompt")
            api_scheduler, api_negative = gr.Textbox(label="scheduler"), gr.Textbox(label="negative_prompt")
            api_steps, api_guidance = gr.Number(label="steps"), gr.Number(label="guidance_scale")
            api_forward = gr.Button()
            api_denoise = gr.Button()

        frames = [x_t, x0, eps, chans]
        fwd_inputs = [fwd_image, fwd_t, fwd_schedule, fwd_seed]
        for trigger in (fwd_t.release, fwd_schedule.input, fwd_image.change, fwd_show.click):
            trigger(on_forward, fwd_inputs, [fwd_out, fwd_strip, betas, alphas, snr], api_visibility="private")
        on_page_load(on_forward, fwd_inputs, [fwd_out, fwd_strip, betas, alphas, snr], api_visibility="private")
        clear_first(run_btn.click, [status]).then(gpu_task(bind(on_denoise, loader), STEPS_BUDGET), [model, prompt, negative, scheduler, steps, guidance, seed, clip, rederive, init_image, strength, state],
                      frames + [final, status, state, scrub], api_visibility="private")
        scrub.input(gpu_task(bind(on_scrub, loader), GpuBudget(30)), [state, scrub], frames + [guidance_view, betas, alphas, snr], api_visibility="private",
                     trigger_mode="always_last")
        clear_first(branch_btn.click, [status]).then(gpu_task(bind(on_branch, loader), GpuBudget(30 + E.MAX_STEPS * STEPS_BUDGET.per_unit_s)), [state, scrub, prompt, negative, guidance, branch_seed],
                         [x_t, both, distance, status, state], api_visibility="private")
        export.click(gpu_task(bind(on_export, loader), GpuBudget(60)), [state], files, api_visibility="private")
        api_forward.click(forward_api, [api_in_image, api_t, api_schedule, api_seed], api_image, api_name="forward_noise")
        api_denoise.click(gpu_task(bind(denoise_api, loader), STEPS_BUDGET), [api_model, api_prompt, api_scheduler, api_steps, api_guidance, api_seed, api_negative],
                          api_image, api_name="denoise")
    return TabView(inputs={"t": fwd_t, "schedule": fwd_schedule, "model": model, "prompt": prompt, "scheduler": scheduler, "steps": steps,
                           "guidance": guidance, "seed": seed}, run=("fwd-show", "dif-run"))


if __name__ == "__main__":  # run this tab on its own
    launch_alone(build_diffusion_tab)
