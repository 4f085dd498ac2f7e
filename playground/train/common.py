"""Helpers shared by the training scripts: seeding, learning-rate schedule, metrics and model cards."""

from __future__ import annotations

import json
import math
import platform
import random
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from playground.config import ASSETS_DIR

MODELS_DIR = ASSETS_DIR / "models"


def setup(seed: int, threads: int) -> torch.Generator:
    """Seed every library the scripts use and pin the thread count; returns a CPU generator."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def ema_update(pairs, step: int, max_decay: float) -> None:
    """Move each EMA copy towards its model: p_ema <- p_ema + (1 - d)(p - p_ema), d = min(max_decay, (1 + step) / (10 + step))
    (a short memory early on, so the average is not dominated by the random start). `pairs`: (ema, model) modules."""
    decay = min(max_decay, (1 + step) / (10 + step))
    for ema, model in pairs:
        for pe, p in zip(ema.parameters(), model.parameters()):
            pe.lerp_(p, 1 - decay)


def optimizer_step(opt: torch.optim.Optimizer, loss: torch.Tensor, params, max_norm: float = 1.0) -> None:
    """One update: gradients of `loss`, their norm clipped to `max_norm`, the optimizer's step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, max_norm)
    opt.step()


def cosine_lr(step: int, total: int, peak: float, warmup: int, floor: float = 0.1) -> float:
    """Linear warm-up to `peak`, then cosine decay to `floor * peak`.

    >>> round(cosine_lr(0, 100, 1.0, 10), 2), cosine_lr(10, 100, 1.0, 10), round(cosine_lr(100, 100, 1.0, 10), 2)
    (0.1, 1.0, 0.1)
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


class Clock:
    """Wall time and this process's CPU time since creation, for the model card.

    CPU time counts the work done whatever else shares the machine; divided by the thread
    count it is the wall time the run takes on an otherwise idle machine.
    """

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()

    def minutes(self) -> float:
        return (time.perf_counter() - self.start) / 60

    def cpu_minutes(self) -> float:
        return (time.process_time() - self.cpu_start) / 60


def save_checkpoint(path: Path, step: int, config: Any, gen: torch.Generator, **parts: Any) -> None:
    """A resumable checkpoint: each part's state_dict (models, EMA copies, optimizers), the generator's state, the
    next step and the run's configuration (a checkpoint of another configuration is not resumed)."""
    state = {name: part.state_dict() for name, part in parts.items()}
    tmp = path.with_suffix(".tmp")
    torch.save({**state, "gen": gen.get_state(), "step": step, "config": _plain(config)}, tmp)
    tmp.replace(path)  # a stop while writing leaves the previous checkpoint whole


def load_checkpoint(path: Path, config: Any, gen: torch.Generator, **parts: Any) -> int:
    """Load `save_checkpoint`'s file into `parts` and `gen` when it exists and was made with `config`; returns the
    step to go on from (0: start afresh)."""
    if not path.exists():
        return 0
    state = torch.load(path, weights_only=False)
    if state["config"] != _plain(config):
        print(f"{path} was made with another configuration: starting afresh", flush=True)
        return 0
    for name, part in parts.items():
        part.load_state_dict(state[name])
    gen.set_state(state["gen"])
    print(f"resumed from {path} at step {state['step']}", flush=True)
    return state["step"]


def _plain(config: Any) -> Any:
    return json.loads(json.dumps(config, default=_jsonable))


def machine() -> str:
    return f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"


def round_to_half(model: torch.nn.Module) -> torch.nn.Module:
    """Round the weights to float16 precision and back, so evaluation sees what is shipped."""
    return model.to(torch.float16).to(torch.float32)


def save_half(model: Any, folder: Path, max_shard_size: str | None = None) -> None:
    """save_pretrained with float16 weights: half the bytes, so each file stays under a Space's
    10 MB limit without Git LFS. The config says float32: transformers 5 loads a model in the dtype
    its config names, so a plain `from_pretrained(folder)` upcasts the weights and runs on a CPU
    beside diffusers' float32 parts (a float16 text encoder met a float32 UNet: "mat1 and mat2 must
    have the same dtype"). `max_shard_size` (e.g. "9MB") splits a larger model into shards, each under the limit."""
    model.to(torch.float16).save_pretrained(folder, **({"max_shard_size": max_shard_size} if max_shard_size else {}))
    model.to(torch.float32)
    config = folder / "config.json"
    if config.exists():
        data = json.loads(config.read_text())
        for key in ("dtype", "torch_dtype"):
            if key in data:
                data[key] = "float32"
        config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_metrics(folder: Path, metrics: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_jsonable) + "\n")


def load_metrics(folder: Path) -> dict[str, Any]:
    path = folder / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _jsonable(value: Any) -> Any:
    if is_dataclass(value):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def text_to_image_card(*tags: str) -> dict[str, Any]:
    """The model-card metadata of a diffusers text-to-image teaching model, with its own tags."""
    return {"license": "mit", "library_name": "diffusers", "pipeline_tag": "text-to-image", "tags": ["teaching", *tags]}


def write_card(folder: Path, *, metadata: dict[str, Any], body: str) -> None:
    """README.md with Hugging Face model-card metadata (YAML front matter) and a markdown body."""
    lines = ["---"]
    for key, value in metadata.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines.extend(f"- {v}" for v in value)
        else:
            lines.append(f"{key}: {value}")
    lines.append("---")
    (folder / "README.md").write_text("\n".join(lines) + "\n\n" + body.strip() + "\n")


TEACHING_NOTE = (
    "**A teaching model.** Small and trained on a laptop-sized budget by this project's own script, "
    "so that the Foundation Model Playground runs offline. It is not {real}, and not useful beyond "
    "demonstrating how such models work."
)
