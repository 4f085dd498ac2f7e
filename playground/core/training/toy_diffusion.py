"""A diffusion model on 2-D points, trained live: the DDPM objective on a small MLP, then sampling by DDPM and DDIM.

Notation (Ho et al. 2020; Song et al. 2021), with the Diffusion tab's schedules (`core.diffusion.noise_schedule`):

    training:  t ~ U{0..T-1},  ε ~ N(0, I),  x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε,  loss = ‖ε − ε_θ(x_t, t)‖²
    DDPM step: x_{t-1} = (x_t − β_t / √(1 − ᾱ_t) · ε̂) / √α_t + σ_t z,   σ_t² = β̃_t = β_t (1 − ᾱ_{t-1}) / (1 − ᾱ_t)
    DDIM step: x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t,   x_{t-1} = √ᾱ_{t-1} x̂_0 + √(1 − ᾱ_{t-1}) ε̂     (deterministic)

Every random draw comes from an explicit `torch.Generator` seeded by the caller; the model's initial weights too
(drawn under `torch.random.fork_rng`, so the process's global generator is left as it was).

>>> data = make_dataset("moons", 200, seed=0)
>>> data.shape, bool(abs(data).max() <= 1.5)
(torch.Size([200, 2]), True)
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from playground.core.diffusion.schedule import SCHEDULES, noise_schedule
from playground.core.inputs import require_choice, require_int
from playground.errors import InputError
from playground.lazy import no_grad, torch

DATASETS = ("moons", "spiral", "rings", "gaussians")
MAX_POINTS = 4000  # points in a dataset
MAX_STEPS = 20_000  # training steps
MAX_SECONDS = 120.0  # wall-clock cap on one training run
MAX_TIMESTEPS = 1000  # diffusion steps T


@dataclass(frozen=True)
class ToyConfig:
    """One training run; the same config and seed give the same losses."""

    dataset: str = "moons"  # moons, spiral, rings, gaussians (or "drawn", with `points`)
    n_points: int = 1000  # points in the dataset
    steps: int = 2000  # AdamW steps (the default run: about 6 s on 2 idle cores; benchmarks/training_busy.py)
    batch_size: int = 512  # points per step
    lr: float = 2e-2  # peak learning rate (cosine decay to a tenth)
    schedule: str = "squaredcos_cap_v2"  # the β schedule (the Diffusion tab's names)
    timesteps: int = 100  # diffusion steps T
    hidden: int = 128  # width of the noise predictor's three hidden layers
    seed: int = 0  # data, initial weights, batches, noise, samples
    sample_every: int = 500  # steps between streamed sample sets
    max_seconds: float = MAX_SECONDS  # a guard: the run stops here if not done (the steps are the budget)

    def checked(self) -> ToyConfig:
        if self.dataset != "drawn":
            require_choice(self.dataset, "dataset", list(DATASETS))
        require_choice(self.schedule, "schedule", list(SCHEDULES))
        for name, low, high in (
            ("n_points", 16, MAX_POINTS),
            ("steps", 1, MAX_STEPS),
            ("batch_size", 8, 4096),
            ("timesteps", 2, MAX_TIMESTEPS),
            ("hidden", 8, 512),
            ("seed", 0, 2**31 - 1),
            ("sample_every", 1, MAX_STEPS),
        ):
            require_int(getattr(self, name), name, low=low, high=high)
        if not isinstance(self.lr, (int, float)) or not 1e-5 <= self.lr <= 0.1:
            raise InputError(f"lr must be a number from 0.00001 to 0.1, got {self.lr!r}.")
        if not isinstance(self.max_seconds, (int, float)) or not 0 < self.max_seconds <= MAX_SECONDS:
            raise InputError(f"max_seconds must be above 0 and at most {MAX_SECONDS:g}.")
        return self


def make_dataset(name: str, n: int, seed: int) -> torch.Tensor:
    """[n, 2] points of a named 2-D dataset, roughly within [-1, 1]², drawn from `seed`."""
    require_choice(name, "dataset", list(DATASETS))
    n = require_int(n, "points", low=2, high=MAX_POINTS)
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=g)
    noise = torch.randn(n, 2, generator=g)
    if name == "moons":
        upper = torch.arange(n) % 2 == 0
        angle = u * math.pi
        x = torch.where(upper, torch.cos(angle), 1 - torch.cos(angle))
        y = torch.where(upper, torch.sin(angle), 0.5 - torch.sin(angle))
        pts = torch.stack([x - 0.5, y - 0.25], 1) / 1.2 + 0.05 * noise
    elif name == "spiral":
        r = u.sqrt()
        angle = 3 * math.pi * r
        pts = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], 1) + 0.03 * noise
    elif name == "rings":
        radius = torch.where(torch.arange(n) % 2 == 0, 0.4, 0.9)
        angle = 2 * math.pi * u
        pts = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1) + 0.03 * noise
    else:  # a 3 x 3 grid of Gaussians
        k = torch.arange(n) % 9
        centres = torch.stack([(k % 3 - 1).float() * 0.7, (k // 3 - 1).float() * 0.7], 1)
        pts = centres + 0.08 * noise
    return pts.float()


def points_from_sketch(image: Any, n: int, seed: int) -> torch.Tensor:
    """The drawn strokes of a sketch (an [H, W] or [H, W, C] array; ink is whatever differs from the background,
    the most common colour) as `n` points in [-1, 1]², y up."""
    import numpy as np

    a = np.asarray(image)
    if a.ndim not in (2, 3) or min(a.shape[:2]) < 8:
        raise InputError("Draw on the sketch pad first (an image of at least 8 x 8 pixels).")
    if a.ndim == 3 and a.shape[2] == 4:  # with transparency: the strokes are the opaque pixels
        ink = a[..., 3] > 0
        if ink.all():
            ink = np.abs(a[..., :3].astype(int) - a[0, 0, :3].astype(int)).sum(-1) > 60
    else:
        grey = a if a.ndim == 2 else a[..., :3].mean(-1)
        background = np.median(grey)
        ink = np.abs(grey.astype(float) - background) > 40
    ys, xs = np.nonzero(ink)
    if len(xs) < 10:
        raise InputError("The sketch has almost no strokes: draw a shape with a few lines, then train.")
    h, w = ink.shape
    side = max(h, w)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randint(0, len(xs), (require_int(n, "points", low=2, high=MAX_POINTS),), generator=g).numpy()
    pts = np.stack([(xs[pick] - w / 2) / (side / 2), (h / 2 - ys[pick]) / (side / 2)], 1)
    return torch.tensor(pts, dtype=torch.float32) + 0.01 * torch.randn(len(pick), 2, generator=g)


def NoisePredictor(hidden: int = 128, t_dim: int = 32) -> Any:  # noqa: N802  (builds the module: a class made on first use)
    """ε_θ(x_t, t): the point and a sinusoidal embedding of t, through three SiLU layers, to the predicted noise."""
    return _noise_predictor_class()(hidden, t_dim)


@functools.lru_cache(maxsize=1)
def _noise_predictor_class() -> type:
    """The class, defined on first use: subclassing torch.nn.Module at import would import torch before the page is served."""

    class _NoisePredictor(torch.nn.Module):
        def __init__(self, hidden: int, t_dim: int) -> None:
            super().__init__()
            self.t_dim = t_dim
            self.net = torch.nn.Sequential(
                torch.nn.Linear(2 + t_dim, hidden),
                torch.nn.SiLU(),
                torch.nn.Linear(hidden, hidden),
                torch.nn.SiLU(),
                torch.nn.Linear(hidden, hidden),
                torch.nn.SiLU(),
                torch.nn.Linear(hidden, 2),
            )

        def forward(self, x: torch.Tensor, t: torch.Tensor, timesteps: int) -> torch.Tensor:
            half = self.t_dim // 2
            freqs = torch.exp(-math.log(1000.0) * torch.arange(half, dtype=torch.float32) / half)
            angle = (t.float() / timesteps * 1000.0)[:, None] * freqs[None]
            return self.net(torch.cat([x, torch.sin(angle), torch.cos(angle)], 1))

    return _NoisePredictor


@dataclass
class ToyModel:
    """A trained (or untrained) noise predictor with its schedule."""

    net: Any  # the noise predictor (NoisePredictor)
    betas: torch.Tensor  # [T]
    alphas_cumprod: torch.Tensor  # [T]

    @property
    def timesteps(self) -> int:
        return len(self.betas)


def new_model(cfg: ToyConfig) -> ToyModel:
    with torch.random.fork_rng(devices=[]):  # initial weights from the seed, the global generator untouched
        torch.manual_seed(cfg.seed)
        net = NoisePredictor(cfg.hidden)
    s = noise_schedule(cfg.schedule, cfg.timesteps)
    return ToyModel(net, s.betas.float(), s.alphas_cumprod.float())


def optimizer(net: Any, lr: float, steps: int) -> tuple[Any, Any]:
    """AdamW at `lr`, cosine-decayed to a tenth over `steps` (the 2-D trainers' shared recipe)."""
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))


@dataclass
class ToyProgress:
    step: int  # steps done
    losses: list[float]  # the training loss of every step so far
    samples: torch.Tensor  # [n, 2] drawn from the model at this step (every `sample_every` steps and at the end)
    seconds: float  # wall time so far
    done: bool  # the last update of the run
    stopped_early: bool = False  # the time cap ended it


def train_toy(
    data: torch.Tensor, cfg: ToyConfig, model: ToyModel | None = None, *, stream: bool = True
) -> Iterator[tuple[ToyModel, ToyProgress]]:
    """Train ε_θ on `data` [n, 2] with the DDPM objective; yields (model, progress) every `sample_every` steps (with a
    fresh sample set the size of the data) and at the end. `stream=False` yields only the end (the benchmark's
    plain loop)."""
    cfg = cfg.checked()
    model = model or new_model(cfg)
    net, a_bar = model.net, model.alphas_cumprod
    g = torch.Generator().manual_seed(cfg.seed + 1)
    opt, sched = optimizer(net, cfg.lr, cfg.steps)
    losses, start, n = [], time.perf_counter(), len(data)
    for step in range(1, cfg.steps + 1):
        idx = torch.randint(0, n, (cfg.batch_size,), generator=g)
        x0 = data[idx]
        t = torch.randint(0, model.timesteps, (cfg.batch_size,), generator=g)
        eps = torch.randn(cfg.batch_size, 2, generator=g)
        ab = a_bar[t][:, None]
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps  # jump to step t of the forward process
        loss = ((net(x_t, t, model.timesteps) - eps) ** 2).mean()  # ‖ε − ε_θ(x_t, t)‖²
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        elapsed = time.perf_counter() - start
        over = elapsed > cfg.max_seconds
        last = step == cfg.steps or over
        if last or (stream and step % cfg.sample_every == 0):
            yield (
                model,
                ToyProgress(
                    step, list(losses), sample(model, n, seed=cfg.seed + 2, method="ddpm"), elapsed, last, over and step < cfg.steps
                ),
            )
        if last:
            return


@no_grad
def sample(model: ToyModel, n: int, seed: int, method: str = "ddpm", keep: int = 0, start: torch.Tensor | None = None,
           n_steps: int | None = None):
    """`n` points drawn by the reverse process from x_T ~ N(0, I) (or `start`); with `keep` > 0, returns
    (points, the first `keep` points' trajectories [steps + 1, keep, 2]) instead. `n_steps` (DDIM only): take that many
    steps over evenly spaced timesteps from T − 1 to 0 instead of all T (DDIM's x̂_0 step jumps between any two)."""
    require_choice(method, "method", ["ddpm", "ddim"])
    if n_steps is not None and method != "ddim":
        raise InputError("Only DDIM skips timesteps; DDPM takes all T steps.")
    timesteps = list(range(model.timesteps - 1, -1, -1))
    if n_steps is not None:
        n_steps = require_int(n_steps, "sampling steps", low=1, high=model.timesteps)
        timesteps = sorted({round(float(v)) for v in torch.linspace(model.timesteps - 1, 0, n_steps)}, reverse=True)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g) if start is None else start.clone()
    betas, a_bar = model.betas, model.alphas_cumprod
    path = [x[:keep].clone()] if keep else None
    net = model.net.eval()
    for i, t in enumerate(timesteps):
        eps = net(x, torch.full((len(x),), t), model.timesteps)
        prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1  # the next timestep taken (-1: the clean end, ᾱ = 1)
        ab, ab_prev = a_bar[t], (a_bar[prev] if prev >= 0 else torch.tensor(1.0))
        if method == "ddpm":
            mean = (x - betas[t] / (1 - ab).sqrt() * eps) / (1 - betas[t]).sqrt()
            var = betas[t] * (1 - ab_prev) / (1 - ab)  # β̃_t, the posterior variance
            x = mean + (var.sqrt() * torch.randn(x.shape, generator=g) if t > 0 else 0)
        else:
            x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
            x = ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
        if keep:
            path.append(x[:keep].clone())
    net.train()
    return (x, torch.stack(path)) if keep else x


@no_grad
def noise_field(model: ToyModel, t: int, grid: int = 15, extent: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """(grid points [grid², 2], the score direction −ε_θ(x, t)/√(1 − ᾱ_t) at each): where the model pushes points at t."""
    t = require_int(t, "t", low=0, high=model.timesteps - 1)
    axis = torch.linspace(-extent, extent, grid)
    xy = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)
    eps = model.net.eval()(xy, torch.full((len(xy),), t), model.timesteps)
    model.net.train()
    return xy, -eps / (1 - model.alphas_cumprod[t]).sqrt()


def forward_points(model: ToyModel, data: torch.Tensor, t: int, seed: int) -> torch.Tensor:
    """x_t for every data point at step t (one ε per point from `seed`)."""
    t = require_int(t, "t", low=0, high=model.timesteps - 1)
    eps = torch.randn(data.shape, generator=torch.Generator().manual_seed(seed))
    ab = model.alphas_cumprod[t]
    return ab.sqrt() * data + (1 - ab).sqrt() * eps


def nearest_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean distance from each point of `a` to its nearest point of `b`."""
    return float(torch.cdist(a, b).min(1).values.mean())

