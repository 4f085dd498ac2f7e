"""Training tab: a diffusion model on 2-D points and a tiny GPT on your text, trained live in the page."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import gradio as gr
import pandas as pd

from playground.config import ASSETS_DIR
from playground.core.diffusion.schedule import SCHEDULES
from playground.core.inputs import require_choice, require_int
from playground.core.render.lm import line_chart_svg
from playground.core.render.training import arrows_svg, scatter_svg, trajectories_svg
from playground.core.training import toy_diffusion, toy_flow, toy_gpt
from playground.errors import InputError
from playground.lazy import torch
from playground.models import ModelLoader
from playground.models.results import resolve
from playground.models.zerogpu import GpuBudget, gpu_task
from playground.ui.common import SESSION_GPT, TabView, api_endpoint, bind, clear_first, form_event, launch_alone, user_errors
from playground.ui.visitor_limits import TRAINING

EXPLAINER = """
### Training, made visible
Every other tab runs a finished model. Here you train two small ones and watch the **loss** fall while the
**parameters are adjusted**, step by step, by gradient descent (AdamW).

**Diffusion on 2-D points.** Each step takes a batch of data points x_0, a random step t and noise ε, makes
x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, and nudges a small network ε_θ(x_t, t) to predict ε (the DDPM objective). Sampling
runs the process backwards from pure noise: DDPM adds fresh noise each step, DDIM is deterministic.

**A tiny GPT on your text.** A character-level GPT-2 (a few hundred thousand parameters) learns to predict the
next character; its held-out loss in **bits per character** falls below a model that only knows how often each
character occurs (the unigram line), and its samples turn from babble into words.

One training runs at a time on this machine (others wait in the queue); each has a time cap, and **Stop** ends it.
What you train stays in your session: nobody else sees it.
"""
CORPUS = ASSETS_DIR / "corpus" / "romeo_and_juliet.txt"
TOY_BUDGET = GpuBudget(30, 0.01, "steps")
GPT_BUDGET = GpuBudget(30, 0.2, "steps")
TRAJECTORIES = 12  # reverse paths drawn per sampler (more become a tangle)


@dataclass
class ToyRun:
    """A session's trained 2-D model, its data and how it was trained."""
    model: toy_diffusion.ToyModel
    data: Any  # [n, 2]
    cfg: toy_diffusion.ToyConfig
    step: int = 0  # the steps trained so far (a run stopped early keeps the model as it was then)

    @property
    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.net.parameters()) + self.data.numel() * 4


def _toy_config(dataset: Any, steps: Any, lr: Any, schedule: Any, timesteps: Any, seed: Any) -> toy_diffusion.ToyConfig:
    steps = require_int(steps, "steps", low=1, high=toy_diffusion.MAX_STEPS)
    return toy_diffusion.ToyConfig(dataset=dataset, steps=steps, lr=lr, schedule=schedule,
                        timesteps=require_int(timesteps, "diffusion steps", low=2, high=toy_diffusion.MAX_TIMESTEPS),
                        seed=require_int(seed, "seed", low=0, high=2**31 - 1), sample_every=max(1, steps // 6)).checked()


def _data(cfg: toy_diffusion.ToyConfig, sketch: Any) -> Any:
    if cfg.dataset == "drawn":
        image = sketch.get("composite") if isinstance(sketch, dict) else sketch
        if image is None:
            raise InputError("Draw on the sketch pad first, then train.")
        return toy_diffusion.points_from_sketch(image, cfg.n_points, cfg.seed)
    return toy_diffusion.make_dataset(cfg.dataset, cfg.n_points, cfg.seed)


def _curve(losses: list[float], back: int) -> tuple[list[int], list[float]]:
    """(steps, each step's loss averaged with the `back` steps before it), thinned to about 300 points for the chart."""
    every = max(1, len(losses) // 300)
    smooth = [sum(losses[max(0, i - back):i + 1]) / len(losses[max(0, i - back):i + 1]) for i in range(0, len(losses), every)]
    return list(range(1, len(losses) + 1))[::every], smooth


def _loss_chart(losses: list[float], label: str = "training loss ‖ε − ε_θ‖²") -> str:
    return line_chart_svg({label + " (mean of 20 steps)": _curve(losses, 20)}, "step", "loss", width=420, height=240)


# ---- 2-D diffusion handlers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToyRequest:
    """A 2-D diffusion training run, as the page asks it."""

    dataset: str  # one of toy_diffusion.DATASETS, or "drawn"
    sketch: Any = None  # the sketch pad's drawing (dataset "drawn")
    steps: Any = toy_diffusion.ToyConfig.steps  # training steps
    lr: Any = toy_diffusion.ToyConfig.lr  # Adam's learning rate
    schedule: Any = toy_diffusion.ToyConfig.schedule  # the noise schedule
    timesteps: Any = toy_diffusion.ToyConfig.timesteps  # T, the diffusion steps the model is trained for
    seed: Any = toy_diffusion.ToyConfig.seed  # data, initialization, batches and samples


@dataclass(frozen=True)
class ToyFrame:
    """One update of a 2-D training run, in the order of the event's outputs."""

    status: str
    loss: str  # SVG chart
    samples: str  # SVG: samples beside the data
    handle: Any  # the session's trained model (last update only)
    explore_t: Any  # the explorer's t slider: 0 to T − 1 of the model just trained (last update only)

    def outputs(self) -> tuple:
        return self.status, self.loss, self.samples, self.handle, self.explore_t


@user_errors
def on_train_toy(loader: ModelLoader, request: ToyRequest, previous: Any = None):
    """Stream the training: ToyFrame outputs (status, loss chart, samples vs data, the session's run handle, the t slider)."""
    require_choice(request.dataset, "dataset", [*toy_diffusion.DATASETS, "drawn"])
    cfg = _toy_config(request.dataset, request.steps, request.lr, request.schedule, request.timesteps, request.seed)
    data = _data(cfg, request.sketch)
    cfg = replace(cfg, n_points=len(data))
    run = handle = None
    for model, p in toy_diffusion.train_toy(data, cfg):
        status = f"Step {p.step:,} of {cfg.steps:,} ({p.seconds:.1f} s); loss {sum(p.losses[-50:]) / len(p.losses[-50:]):.4f}."
        explore_t = gr.update()
        if run is None:  # kept from the first update on, so a run ended by Stop keeps the model trained so far
            run = ToyRun(model, data, cfg)
            handle = loader.keep_result(run, run.nbytes, "2-D diffusion model", replaces=previous)
        run.step = p.step
        if p.done:
            status += f" Stopped at the time cap, at step {p.step:,}." if p.stopped_early else " Done: explore the trained model below."
            explore_t = gr.update(maximum=cfg.timesteps - 1, value=min(20, cfg.timesteps - 1),
                                  label=f"t (this model was trained with T = {cfg.timesteps}: 0 to {cfg.timesteps - 1})")
        samples = scatter_svg({"data": data.tolist(), f"samples at step {p.step:,}": p.samples.tolist()}, "Samples (DDPM) beside the data")
        yield ToyFrame(status, _loss_chart(p.losses), samples, handle, explore_t).outputs()


def on_toy_stopped(handle: Any) -> str:
    """Stop: the run's status says where it stopped; its charts, samples and model stay (explore them below)."""
    run = resolve(handle) if handle is not None else None
    if not isinstance(run, ToyRun):
        return "Stopped before the first update: nothing was trained yet."
    return (f"Stopped at step {run.step:,} of {run.cfg.steps:,}: the charts and samples above are that step's, and the model as it "
            "was then is kept: explore it below.")


def on_gpt_stopped(handle: Any) -> str:
    """Stop: the run's status says where it stopped; the tiny GPT trained so far stays this session's."""
    trained = resolve(handle) if handle is not None else None
    if trained is None:
        return "Stopped before the first update: nothing was trained yet."
    return (f"Stopped after {trained.tokens_seen:,} characters of training: the tiny GPT as it was then is yours in the GPT and "
            "Inside tabs (pick it as the model).")


@user_errors
def on_explore_toy(run: Any, t: float, seed: float):
    """For a trained model: the forward process at t, the score field at t, DDPM vs DDIM trajectories from the same noise."""
    run = resolve(run) if run is not None else None
    if run is None:
        raise InputError("Train a model first.")
    t = require_int(t, "t", low=0, high=run.model.timesteps - 1)
    seed = require_int(seed, "seed", low=0, high=2**31 - 1)
    noised = toy_diffusion.forward_points(run.model, run.data, t, seed)
    grid, field = toy_diffusion.noise_field(run.model, t)
    noise = torch.randn(TRAJECTORIES, 2, generator=torch.Generator().manual_seed(seed + 7))  # both samplers start from this x_T
    _, ddpm = toy_diffusion.sample(run.model, TRAJECTORIES, seed=seed + 8, method="ddpm", keep=TRAJECTORIES, start=noise)
    _, ddim = toy_diffusion.sample(run.model, TRAJECTORIES, seed=seed + 8, method="ddim", keep=TRAJECTORIES, start=noise)
    return (
        scatter_svg(
            {"data": run.data.tolist(), f"x_t at t = {t}": noised.tolist()}, f"Forward process at t = {t} of {run.model.timesteps}"
        ),
        arrows_svg(grid.tolist(), field.tolist(), run.data.tolist(), f"Learned score field at t = {t}"),
        trajectories_svg(
            {"DDPM (stochastic)": ddpm.tolist(), "DDIM (deterministic)": ddim.tolist()},
            run.data.tolist(),
            f"{TRAJECTORIES} reverse trajectories from the same noise",
        ),
    )


@user_errors
def train_toy_api(dataset: str, steps: int, seed: int) -> dict:
    """Train the 2-D diffusion model on `dataset` (`moons`, `spiral`, `rings` or `gaussians`) for `steps` steps from `seed`.

    Returns {"data": [[x, y]], "samples": [[x, y]] (as many as the data, drawn by DDPM from the trained model),
    "loss": [float] (every step's training loss)}.
    """
    require_choice(dataset, "dataset", list(toy_diffusion.DATASETS))
    cfg = replace(
        _toy_config(dataset, steps, toy_diffusion.ToyConfig.lr, toy_diffusion.ToyConfig.schedule, toy_diffusion.ToyConfig.timesteps, seed),
        sample_every=toy_diffusion.MAX_STEPS,
    )
    data = toy_diffusion.make_dataset(cfg.dataset, cfg.n_points, cfg.seed)
    *_, (model, progress) = toy_diffusion.train_toy(data, cfg, stream=False)
    return {"data": data.tolist(), "samples": progress.samples.tolist(), "loss": progress.losses}


# ---- tiny GPT handlers -----------------------------------------------------------------------------------------


# ---- flow matching beside DDPM ------------------------------------------------------------------------------

FLOW_BUDGET = GpuBudget(30, 0.02, "steps")  # two trainings of `steps` steps each
FLOW_EXPLAINER = """
#### Flow matching beside DDPM
Stable Diffusion 3 and Flux train with **flow matching** (rectified flow): pick a point σ in [0, 1] on the straight
line x_σ = (1 − σ) x_0 + σ ε from a data point x_0 to its noise ε, and teach the network the line's velocity ε − x_0
(loss ‖v_θ(x_σ, σ) − (ε − x_0)‖²). Sampling walks from noise (σ = 1) to data (σ = 0) in Euler steps
x ← x + (σ_next − σ) v_θ(x, σ). Below, the same network, optimizer, data, seed and number of steps train both ways;
then both draw from the same starting noise: the paths (and how much they bend: each training pair's path is straight,
but the lines of different pairs cross and the learned field averages them), and how close the samples come to
held-out data for 1 to 100 sampling steps (DDIM for the DDPM-trained model: the deterministic sampler that skips steps;
Euler for the flow). Each training stops at 60 s.
"""


@dataclass(frozen=True)
class FlowRequest:
    """Both trainings, as the page asks them."""

    dataset: str  # one of toy_diffusion.DATASETS
    steps: Any = toy_diffusion.ToyConfig.steps  # training steps of each model
    seed: Any = toy_diffusion.ToyConfig.seed  # data, initialization, batches, noise and samples (both models)


@dataclass
class FlowComparison:
    """Both trained models, compared (compute only; the page and /train_flow draw it)."""

    data: Any  # [n, 2] the training data
    ddpm: Any  # the DDPM-trained ToyModel
    flow: Any  # the FlowModel
    ddpm_losses: list[float]
    flow_losses: list[float]
    flow_samples: Any  # [n, 2] at the default Euler steps
    curve: Any  # toy_flow.StepsCurve
    seconds: tuple[float, float]  # each training's wall time
    stopped_early: bool  # a training hit its time cap


def compare_flow(dataset: Any, steps: Any, seed: Any) -> FlowComparison:
    """Train DDPM and flow matching alike on one dataset and measure both samplers against their steps."""
    require_choice(dataset, "dataset", list(toy_diffusion.DATASETS))
    steps = require_int(steps, "steps", low=1, high=toy_diffusion.MAX_STEPS)
    seed = require_int(seed, "seed", low=0, high=2**31 - 1)
    half = toy_diffusion.MAX_SECONDS / 2  # the pair within one training's cap
    toy_cfg = toy_diffusion.ToyConfig(dataset=dataset, steps=steps, seed=seed, max_seconds=half)
    data = toy_diffusion.make_dataset(dataset, toy_cfg.n_points, seed)
    *_, (ddpm, d) = toy_diffusion.train_toy(data, toy_cfg, stream=False)
    *_, (flow, f) = toy_flow.train_flow(data, toy_flow.FlowConfig(dataset=dataset, steps=steps, seed=seed, max_seconds=half))
    curve = toy_flow.steps_curve(ddpm, flow, dataset, len(data), seed)
    return FlowComparison(data, ddpm, flow, d.losses, f.losses, f.samples, curve, (d.seconds, f.seconds),
                          d.stopped_early or f.stopped_early)


def _steps_chart(curve: Any) -> str:
    """Sample quality against sampling steps, both samplers, on a log scale (DDIM's one-step samples land far off)."""
    import math

    log = lambda ys: [math.log10(max(y, 1e-6)) for y in ys]  # noqa: E731
    return line_chart_svg({"flow matching, Euler": (curve.counts, log(curve.flow)), "DDPM-trained, DDIM": (curve.counts, log(curve.ddim)),
                           "fresh data (the floor)": (curve.counts, log([curve.data] * len(curve.counts)))},
                          "sampling steps", "log10 distance to held-out data", width=460, height=260)


@user_errors
def on_train_flow(loader: ModelLoader, request: FlowRequest):
    """(status, loss chart, samples, paths, steps chart, table) after training both models."""
    c = compare_flow(request.dataset, request.steps, request.seed)
    start = torch.randn(TRAJECTORIES, 2, generator=torch.Generator().manual_seed(int(request.seed) + 7))  # both from this noise
    _, ddim_paths = toy_diffusion.sample(c.ddpm, TRAJECTORIES, seed=0, method="ddim", keep=TRAJECTORIES, start=start)
    _, flow_paths = toy_flow.sample(c.flow, TRAJECTORIES, seed=0, keep=TRAJECTORIES, start=start)
    losses = line_chart_svg({"DDPM: ‖ε − ε_θ‖² (mean of 20 steps)": _curve(c.ddpm_losses, 20),
                             "flow: ‖v − v_θ‖² (mean of 20 steps)": _curve(c.flow_losses, 20)}, "step", "loss", width=420, height=240)
    samples = scatter_svg({"data": c.data.tolist(), f"flow, {toy_flow.SAMPLE_STEPS} Euler steps": c.flow_samples.tolist()},
                          "Flow matching's samples beside the data")
    paths = trajectories_svg({f"DDIM, {c.ddpm.timesteps} steps": ddim_paths.tolist(), f"flow, {toy_flow.SAMPLE_STEPS} Euler steps":
                              flow_paths.tolist()}, c.data.tolist(), f"{TRAJECTORIES} paths from the same noise")
    cv = c.curve
    rows = ["| sampling steps | " + " | ".join(str(n) for n in cv.counts) + " |", "|---|" + "---|" * len(cv.counts),
            "| flow matching (Euler) | " + " | ".join(f"{v:.3f}" for v in cv.flow) + " |",
            "| DDPM-trained (DDIM) | " + " | ".join(f"{v:.3g}" for v in cv.ddim) + " |"]
    table = (f"Distance to held-out data (Chamfer: sample → nearest held-out point and back, averaged); {len(c.data):,} fresh data "
             f"points score **{cv.data:.3f}**, the floor.\n\n" + "\n".join(rows) +
             f"\n\nHow much the paths bend (a path's length over the straight distance from its start to its end, median of 200; 1 is "
             f"straight): flow **{cv.flow_bend:.2f}** ({toy_flow.SAMPLE_STEPS} Euler steps), DDIM **{cv.ddim_bend:.2f}** "
             f"({c.ddpm.timesteps} steps). Most of DDIM's few-step error is its first step out of pure noise: "
             "x̂_0 = (x_T − √(1 − ᾱ_T) ε̂) / √ᾱ_T divides by √ᾱ_T, nearly 0 at the end of the cosine schedule.")
    status = (f"Trained both on {request.dataset} for {len(c.flow_losses):,} steps ({c.seconds[0]:.1f} s DDPM, {c.seconds[1]:.1f} s "
              f"flow)." + (" A training stopped at its time cap." if c.stopped_early else ""))
    return status, losses, samples, paths, _steps_chart(cv), table


@user_errors
def train_flow_api(dataset: str, steps: int, seed: int) -> dict:
    """Train the 2-D model by flow matching (and, alike, by DDPM) on `dataset` (`moons`, `spiral`, `rings` or `gaussians`)
    for `steps` steps from `seed`.

    Returns {"data": [[x, y]], "samples": [[x, y]] (as many as the data, drawn by 50 Euler steps of the flow), "loss": [float]
    (every step's flow-matching loss), "samples_by_steps": {n_steps: [[x, y]]} (the flow's samples from one starting noise
    with n Euler steps, n = 1, 2, 4, 8, 16, 32, 64, 100), "quality_by_steps": {"flow": {n_steps: d}, "ddim": {n_steps: d}}
    (d: Chamfer distance to held-out data; "ddim": the DDPM-trained model with n DDIM steps), "data_quality" (as many fresh
    data points' d: the floor), "bend": {"flow", "ddim"} (median path length over the straight start-to-end distance)}.
    """
    c = compare_flow(dataset, steps, seed)
    cv = c.curve
    return {"data": c.data.tolist(), "samples": c.flow_samples.tolist(), "loss": c.flow_losses,
            "samples_by_steps": {str(n): cv.flow_samples[n].tolist() for n in cv.counts},
            "quality_by_steps": {"flow": {str(n): v for n, v in zip(cv.counts, cv.flow)},
                                 "ddim": {str(n): v for n, v in zip(cv.counts, cv.ddim)}},
            "data_quality": cv.data, "bend": {"flow": cv.flow_bend, "ddim": cv.ddim_bend}}


def _gpt_config(steps: Any, seed: Any, seconds: Any = toy_gpt.GPTTrainConfig.max_seconds) -> toy_gpt.GPTTrainConfig:
    steps = require_int(steps, "steps", low=1, high=toy_gpt.MAX_STEPS)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 1 <= seconds <= toy_gpt.MAX_SECONDS:
        raise InputError(f"The time cap must be from 1 to {toy_gpt.MAX_SECONDS:g} seconds, got {seconds!r}.")
    return toy_gpt.GPTTrainConfig(steps=steps, seed=require_int(seed, "seed", low=0, high=2**31 - 1), eval_every=max(1, steps // 6),
                             max_seconds=float(seconds)).checked()


def _gpt_chart(p: toy_gpt.GPTProgress, unigram: float) -> str:
    series = {"training (mean of 10 steps)": _curve(p.losses, 10), "held-out": (p.heldout_steps, p.heldout_bpc),
              "unigram baseline (held-out)": ([1, max(2, p.step)], [unigram, unigram])}
    return line_chart_svg(series, "step", "bits per character", width=460, height=260)


@dataclass(frozen=True)
class GPTTrainRequest:
    """A tiny GPT's training run, as the page asks it."""

    text: str  # the training text (its last tenth held out)
    steps: Any = toy_gpt.GPTTrainConfig.steps  # training steps
    seed: Any = 0  # initialization, batches and samples
    seconds: Any = toy_gpt.GPTTrainConfig.max_seconds  # the time cap: whichever of steps and seconds ends first


@user_errors
def on_train_gpt(loader: ModelLoader, request: GPTTrainRequest, previous: Any = None):
    """Stream the training, for `steps` steps or `seconds`, whichever ends first: (status, bits-per-character chart,
    samples table, the session's model handle)."""
    cfg = _gpt_config(request.steps, request.seed, request.seconds)
    toy_gpt.check_text(request.text)
    handle = None
    for trained, p in toy_gpt.train_gpt(request.text, cfg):
        status = (f"Step {p.step:,} of {cfg.steps:,} ({p.seconds:.1f} s): {trained.parameters:,} parameters, {trained.tokens_seen:,} "
                  f"characters seen; held-out {p.heldout_bpc[-1]:.3f} bits per character (unigram: {trained.unigram_bpc:.3f}).")
        if handle is None:  # kept from the first update on, so a run ended by Stop keeps the model trained so far
            nbytes = sum(t.numel() * t.element_size() for t in trained.model.parameters())
            handle = loader.keep_result(trained, nbytes, "tiny GPT", replaces=previous)
        if p.done:
            status += f" Stopped at the time cap, at step {p.step:,}." if p.stopped_early else " Done."
        samples = pd.DataFrame({"step": p.heldout_steps, "sample": p.samples})
        yield status, _gpt_chart(p, trained.unigram_bpc), samples, handle


@user_errors
def train_gpt_api(text: str, steps: int, seed: int) -> dict:
    """Train a character-level GPT on `text` (at least 2,000 characters; its last tenth held out) for `steps` steps.

    Returns {"loss": [float] (training bits per character, every step), "heldout_bpc": [float] (at each evaluation),
    "samples": [str] (generated at each evaluation), "parameters": int, "unigram_bpc": float, "steps_evaluated": [int]}.
    """
    cfg = _gpt_config(steps, seed)
    *_, (trained, p) = toy_gpt.train_gpt(text, cfg)
    return {"loss": p.losses, "heldout_bpc": p.heldout_bpc, "samples": p.samples, "parameters": trained.parameters,
            "unigram_bpc": trained.unigram_bpc, "steps_evaluated": p.heldout_steps}


# ---- layout and wiring ------------------------------------------------------------------------------------------


def build_training_tab(loader: ModelLoader, trained: gr.State | None = None) -> TabView:
    """Train small models live. Named API endpoints: `/train_toy`, `/train_flow`, `/train_gpt`. `trained`: where the session's tiny GPT
    is kept (a state the GPT and Inside tabs read too)."""
    with gr.Column():
        gr.Markdown(EXPLAINER)
        gr.Markdown("#### Diffusion on 2-D points")
        toy_state = gr.State(None, time_to_live=3600, delete_callback=loader.results.drop)
        with gr.Row():
            dataset = gr.Radio([("Two moons", "moons"), ("Spiral", "spiral"), ("Rings", "rings"), ("Grid of Gaussians", "gaussians"),
                                ("My drawing", "drawn")], value="moons", label="Data", elem_id="trn-dataset")
            sketch = gr.Sketchpad(label="Draw your own data (pick 'My drawing')", height=240, width=240, elem_id="trn-sketch")
        with gr.Row():
            toy_steps = gr.Slider(
                100, 10_000, value=toy_diffusion.ToyConfig.steps, step=100, label="Training steps", elem_id="trn-toy-steps"
            )
            toy_lr = gr.Slider(0.0005, 0.03, value=toy_diffusion.ToyConfig.lr, step=0.0005, label="Learning rate")
            toy_schedule = gr.Dropdown(list(SCHEDULES), value=toy_diffusion.ToyConfig.schedule, label="Noise schedule")
            toy_T = gr.Slider(10, 1000, value=toy_diffusion.ToyConfig.timesteps, step=10, label="Diffusion steps T")
            toy_seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
        with gr.Row():
            toy_train = gr.Button("Train the diffusion model", variant="primary", elem_id="trn-toy-train")
            toy_stop = gr.Button("Stop", elem_id="trn-toy-stop")
        toy_status = gr.Markdown(elem_id="trn-toy-status")
        with gr.Row(elem_classes=["trn-row"]):  # plots keep 320 px each (style.css): a phone stacks them
            toy_loss = gr.HTML(elem_id="trn-toy-loss")
            toy_samples = gr.HTML(elem_id="trn-toy-samples")
        gr.Markdown("Then look at the trained model at any step t: the forward process on the data, the learned score field, "
                    "and reverse trajectories of 12 points, DDPM against DDIM from the same starting noise (each ends at a marker).")
        with gr.Row():
            explore_t = gr.Slider(0, toy_diffusion.ToyConfig.timesteps - 1, value=20, step=1, elem_id="trn-t",
                                  label=f"t (the default model is trained with T = {toy_diffusion.ToyConfig.timesteps}: 0 to "
                                        f"{toy_diffusion.ToyConfig.timesteps - 1})")
            explore_seed = gr.Number(value=0, precision=0, minimum=0, label="Noise seed")
            explore = gr.Button("Show", elem_id="trn-explore")
        with gr.Row(elem_classes=["trn-row"]):
            forward_plot, field_plot, paths_plot = (gr.HTML(elem_id=f"trn-{name}") for name in ("forward", "field", "paths"))

        gr.Markdown(FLOW_EXPLAINER)
        with gr.Row():
            flow_dataset = gr.Radio([("Two moons", "moons"), ("Spiral", "spiral"), ("Rings", "rings"), ("Grid of Gaussians", "gaussians")],
                                    value="moons", label="Data", elem_id="trn-flow-dataset")
            flow_steps = gr.Slider(100, 10_000, value=toy_diffusion.ToyConfig.steps, step=100, label="Training steps (each model)",
                                   elem_id="trn-flow-steps")
            flow_seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="trn-flow-seed")
        flow_train = gr.Button("Train both: DDPM and flow matching", variant="primary", elem_id="trn-flow-train")
        flow_status = gr.Markdown(elem_id="trn-flow-status")
        with gr.Row(elem_classes=["trn-row"]):
            flow_loss, flow_samples, flow_paths = (gr.HTML(elem_id=f"trn-flow-{name}") for name in ("loss", "samples", "paths"))
        flow_curve = gr.HTML(elem_id="trn-flow-curve")
        flow_table = gr.Markdown(elem_id="trn-flow-table")

        gr.Markdown("#### A tiny GPT on your text")
        gpt_state = trained if trained is not None else gr.State(None, time_to_live=3600, delete_callback=loader.results.drop)
        text = gr.Textbox(
            label=f"Text to learn (at least {toy_gpt.MIN_CHARS:,} characters; the last tenth is held out)",
            lines=6,
            value=CORPUS.read_text(encoding="utf-8") if CORPUS.exists() else "",
            max_length=toy_gpt.MAX_CHARS,
            elem_id="trn-text",
        )
        with gr.Row():
            gpt_steps = gr.Slider(50, 3000, value=toy_gpt.GPTTrainConfig.steps, step=50, label="Training steps", elem_id="trn-gpt-steps")
            gpt_seconds = gr.Slider(
                5,
                toy_gpt.MAX_SECONDS,
                value=toy_gpt.GPTTrainConfig.max_seconds,
                step=5,
                label="Or stop after (seconds)",
                elem_id="trn-gpt-seconds",
            )
            gpt_seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
            gpt_train = gr.Button("Train the tiny GPT", variant="primary", elem_id="trn-gpt-train")
            gpt_stop = gr.Button("Stop", elem_id="trn-gpt-stop")
        gpt_status = gr.Markdown(elem_id="trn-gpt-status")
        gr.Markdown(f"When it is done, pick **{SESSION_GPT}** as the model in the GPT and Inside tabs: it is kept in your session only.")
        gpt_chart = gr.HTML(elem_id="trn-gpt-chart")
        gpt_samples = gr.Dataframe(
            headers=["step", "sample"],
            label="Samples as it learns (160 characters after the text's first letter)",
            interactive=False,
            wrap=True,
            elem_id="trn-gpt-samples",
        )

        toy = form_event(gpu_task(bind(on_train_toy, loader), TOY_BUDGET), ToyRequest,
                         {"dataset": dataset, "sketch": sketch, "steps": toy_steps, "lr": toy_lr, "schedule": toy_schedule,
                          "timesteps": toy_T, "seed": toy_seed}, toy_state)
        toy_event = clear_first(toy_train.click, [toy_status]).then(
            toy.event, toy.inputs, [toy_status, toy_loss, toy_samples, toy_state, explore_t], api_visibility="private", **TRAINING
        )
        toy_stop.click(on_toy_stopped, [toy_state], [toy_status], cancels=[toy_event], api_visibility="private", queue=False)
        explore.click(
            on_explore_toy, [toy_state, explore_t, explore_seed], [forward_plot, field_plot, paths_plot], api_visibility="private"
        )
        tiny_gpt = form_event(gpu_task(bind(on_train_gpt, loader), GPT_BUDGET), GPTTrainRequest,
                              {"text": text, "steps": gpt_steps, "seed": gpt_seed, "seconds": gpt_seconds}, gpt_state)
        gpt_event = clear_first(gpt_train.click, [gpt_status]).then(
            tiny_gpt.event, tiny_gpt.inputs, [gpt_status, gpt_chart, gpt_samples, gpt_state], api_visibility="private", **TRAINING
        )
        gpt_stop.click(on_gpt_stopped, [gpt_state], [gpt_status], cancels=[gpt_event], api_visibility="private", queue=False)
        flow = form_event(gpu_task(bind(on_train_flow, loader), FLOW_BUDGET), FlowRequest,
                          {"dataset": flow_dataset, "steps": flow_steps, "seed": flow_seed})
        clear_first(flow_train.click, [flow_status]).then(
            flow.event, flow.inputs, [flow_status, flow_loss, flow_samples, flow_paths, flow_curve, flow_table], api_visibility="private",
            **TRAINING
        )
        api_endpoint(train_toy_api, api_name="train_toy", budget=TOY_BUDGET, **TRAINING)
        api_endpoint(train_flow_api, api_name="train_flow", budget=FLOW_BUDGET, **TRAINING)
        api_endpoint(train_gpt_api, api_name="train_gpt", budget=GPT_BUDGET, **TRAINING)
    return TabView(inputs={"dataset": dataset, "steps": toy_steps, "flow_dataset": flow_dataset}, run=("trn-toy-train",),
                   forms={"trn-toy-train": toy})


if __name__ == "__main__":  # run this tab on its own
    launch_alone(build_training_tab)
