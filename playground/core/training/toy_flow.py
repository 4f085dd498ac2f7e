"""Flow matching on 2-D points, trained live beside the DDPM trainer (`toy_diffusion`): the same datasets, the same
network, the same optimizer and number of steps. What Stable Diffusion 3 and Flux train with.

Notation (rectified flow, Liu et al. 2023; flow matching, Lipman et al. 2023; as Stable Diffusion 3 and diffusers'
`FlowMatchEulerDiscreteScheduler` write it, σ = 1 noise, σ = 0 data):

    training:   σ ~ U(0, 1),  ε ~ N(0, I),  x_σ = (1 − σ) x_0 + σ ε           (a straight line from the point to its noise)
                loss = ‖v_θ(x_σ, σ) − (ε − x_0)‖²                             (the line's velocity, the same all along it)
    sampling:   x_1 ~ N(0, I);  for σ_i > σ_{i+1}:  x_{σ_{i+1}} = x_{σ_i} + (σ_{i+1} − σ_i) v_θ(x_{σ_i}, σ_i)   (Euler)

In rectified flow's own notation (x_0 the noise, x_1 the data, t = 1 − σ) the target is x_1 − x_0: the same line,
walked the other way. Each training pair's path is straight, but the lines of different pairs cross, and where they
do the learned field averages them: the sampler's paths bend (Liu et al.'s "reflow", training again on the model's
own noise-sample pairs, straightens them; not done here). `bend` measures it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from playground.core.inputs import require_choice, require_int
from playground.core.training.toy_diffusion import (
    DATASETS,
    MAX_SECONDS,
    MAX_STEPS,
    NoisePredictor,
    ToyConfig,
    nearest_distance,
    optimizer,
)
from playground.errors import InputError
from playground.lazy import no_grad, torch

TIME_SCALE = 1000  # σ in [0, 1] enters the network's sinusoidal embedding as σ x 1000, as DDPM's t / T x 1000 does
SAMPLE_STEPS = 50  # Euler steps of the default sampler
MAX_SAMPLE_STEPS = 1000
STEP_COUNTS = (1, 2, 4, 8, 16, 32, 64, 100)  # the quality-against-steps curve


@dataclass(frozen=True)
class FlowConfig:
    """One flow-matching run; the same config and seed give the same losses. The fields it shares with the DDPM
    trainer default to that trainer's, so the two are trained alike."""

    dataset: str = ToyConfig.dataset  # moons, spiral, rings, gaussians
    n_points: int = ToyConfig.n_points  # points in the dataset
    steps: int = ToyConfig.steps  # AdamW steps
    batch_size: int = ToyConfig.batch_size  # points per step
    lr: float = ToyConfig.lr  # peak learning rate (cosine decay to a tenth), as the DDPM trainer's
    hidden: int = ToyConfig.hidden  # width of the network's three hidden layers (the DDPM trainer's network)
    sample_steps: int = SAMPLE_STEPS  # Euler steps when sampling
    seed: int = ToyConfig.seed  # data, initial weights, batches, noise, samples
    max_seconds: float = MAX_SECONDS  # a guard: the run stops here if not done

    def checked(self) -> FlowConfig:
        require_choice(self.dataset, "dataset", list(DATASETS))
        for name, low, high in (("n_points", 16, 4000), ("steps", 1, MAX_STEPS), ("batch_size", 8, 4096), ("hidden", 8, 512),
                                ("sample_steps", 1, MAX_SAMPLE_STEPS), ("seed", 0, 2**31 - 1)):
            require_int(getattr(self, name), name, low=low, high=high)
        if not isinstance(self.lr, (int, float)) or not 1e-5 <= self.lr <= 0.1:
            raise InputError(f"lr must be a number from 0.00001 to 0.1, got {self.lr!r}.")
        return self


@dataclass
class FlowModel:
    net: Any  # v_θ(x_σ, σ): the DDPM trainer's network, predicting a velocity instead of a noise


def new_model(cfg: FlowConfig) -> FlowModel:
    with torch.random.fork_rng(devices=[]):  # initial weights from the seed (the DDPM trainer's draw), the global generator untouched
        torch.manual_seed(cfg.seed)
        net = NoisePredictor(cfg.hidden)
    return FlowModel(net)


def velocity(model: FlowModel, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """v_θ(x, σ) for a batch (σ a number or one per point)."""
    sigma = torch.as_tensor(sigma, dtype=torch.float32).expand(len(x))
    return model.net(x, sigma * TIME_SCALE, TIME_SCALE)


def flow_loss(model: FlowModel, x0: torch.Tensor, eps: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """‖v_θ(x_σ, σ) − (ε − x_0)‖², x_σ = (1 − σ) x_0 + σ ε: the straight path and its velocity."""
    s = sigma[:, None]
    x_sigma = (1 - s) * x0 + s * eps
    return ((velocity(model, x_sigma, sigma) - (eps - x0)) ** 2).mean()


@dataclass
class FlowProgress:
    step: int  # steps done
    losses: list[float]  # every step's loss so far
    samples: torch.Tensor  # [n, 2] drawn at the end
    seconds: float  # wall time
    done: bool
    stopped_early: bool = False  # the time cap ended it


def train_flow(data: torch.Tensor, cfg: FlowConfig, model: FlowModel | None = None) -> Iterator[tuple[FlowModel, FlowProgress]]:
    """Train v_θ on `data` [n, 2]; yields (model, progress) at the end (with a sample set the size of the data)."""
    cfg = cfg.checked()
    model = model or new_model(cfg)
    net = model.net
    g = torch.Generator().manual_seed(cfg.seed + 1)
    opt, sched = optimizer(net, cfg.lr, cfg.steps)  # the DDPM trainer's recipe
    losses, start, n = [], time.perf_counter(), len(data)
    for step in range(1, cfg.steps + 1):
        # 1. a batch of data points x_0, their noise ε and a point σ on each straight path
        idx = torch.randint(0, n, (cfg.batch_size,), generator=g)
        sigma = torch.rand(cfg.batch_size, generator=g)
        eps = torch.randn(cfg.batch_size, 2, generator=g)
        # 2. the loss: the predicted velocity against the path's own, ε − x_0
        loss = flow_loss(model, data[idx], eps, sigma)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        elapsed = time.perf_counter() - start
        over = elapsed > cfg.max_seconds
        if step == cfg.steps or over:
            samples = sample(model, n, cfg.seed + 2, cfg.sample_steps)
            yield model, FlowProgress(step, losses, samples, elapsed, True, over and step < cfg.steps)
            return


def sigmas(n_steps: int) -> torch.Tensor:
    """σ_0 = 1 > σ_1 > ... > σ_n = 0, evenly spaced: the Euler sampler's grid."""
    return torch.linspace(1.0, 0.0, require_int(n_steps, "sampling steps", low=1, high=MAX_SAMPLE_STEPS) + 1)


@no_grad
def sample(model: FlowModel, n: int, seed: int, n_steps: int = SAMPLE_STEPS, keep: int = 0, start: torch.Tensor | None = None):
    """`n` points by Euler steps from x_1 ~ N(0, I) (or `start`) to σ = 0; with `keep` > 0, (points, the first `keep`
    points' paths [n_steps + 1, keep, 2])."""
    grid = sigmas(n_steps)
    x = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)) if start is None else start.clone()
    path = [x[:keep].clone()] if keep else None
    model.net.eval()
    for i in range(len(grid) - 1):
        # x_{σ_{i+1}} = x_{σ_i} + (σ_{i+1} − σ_i) v_θ(x_{σ_i}, σ_i)
        x = x + (grid[i + 1] - grid[i]) * velocity(model, x, grid[i])
        if keep:
            path.append(x[:keep].clone())
    model.net.train()
    return (x, torch.stack(path)) if keep else x


def quality(samples: torch.Tensor, heldout: torch.Tensor) -> float:
    """The Chamfer distance: half the mean distance from each sample to its nearest held-out point plus half the mean
    distance from each held-out point to its nearest sample. Both halves count: samples collapsed onto a few points
    score well on the first and badly on the second. Lower is closer; as many fresh data points score the floor."""
    return 0.5 * (nearest_distance(samples, heldout) + nearest_distance(heldout, samples))


def bend(paths: torch.Tensor) -> float:
    """Median over points of a path's length divided by the straight distance from its start to its end (1: a straight
    line), for paths [steps + 1, points, 2]."""
    length = (paths[1:] - paths[:-1]).norm(dim=-1).sum(0)
    chord = (paths[-1] - paths[0]).norm(dim=-1).clamp_min(1e-9)
    return round(float((length / chord).median()), 3)


@dataclass
class StepsCurve:
    counts: list[int]  # sampling steps
    ddim: list[float]  # the DDPM-trained model's quality with that many DDIM steps
    flow: list[float]  # the flow's quality with that many Euler steps
    data: float  # the quality of as many fresh data points: what a perfect sampler scores
    flow_samples: dict[int, torch.Tensor]  # the flow's samples at each count
    ddim_samples: dict[int, torch.Tensor]
    flow_bend: float  # the flow's paths at its default steps: length / straight distance (median)
    ddim_bend: float  # the DDPM-trained model's DDIM paths at all its steps


def steps_curve(ddpm: Any, flow: FlowModel, dataset: str, n: int, seed: int, counts: tuple[int, ...] = STEP_COUNTS) -> StepsCurve:
    """Both samplers' quality against their number of steps, from the same starting noise, measured on held-out data
    (a fresh draw of the dataset): DDIM for the DDPM-trained model (the deterministic sampler that skips timesteps),
    Euler for the flow."""
    from playground.core.training import toy_diffusion

    heldout = toy_diffusion.make_dataset(dataset, n, seed + 1000)
    fresh = toy_diffusion.make_dataset(dataset, n, seed + 2000)
    start = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed + 3))
    counts = tuple(c for c in counts if c <= ddpm.timesteps)
    flow_samples = {c: sample(flow, n, seed, c, start=start) for c in counts}
    ddim_samples = {c: toy_diffusion.sample(ddpm, n, seed, "ddim", start=start, n_steps=c) for c in counts}
    k = min(n, 200)  # paths measured for the bend
    _, flow_paths = sample(flow, k, seed, SAMPLE_STEPS, keep=k, start=start[:k])
    _, ddim_paths = toy_diffusion.sample(ddpm, k, seed, "ddim", keep=k, start=start[:k])
    return StepsCurve(list(counts), [round(quality(ddim_samples[c], heldout), 4) for c in counts],
                      [round(quality(flow_samples[c], heldout), 4) for c in counts], round(quality(fresh, heldout), 4),
                      flow_samples, ddim_samples, bend(flow_paths), bend(ddim_paths))
