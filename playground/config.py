"""Typed settings of the playground, read once from the environment by the app's entry point.

Nothing here runs at import time: `Settings.from_env()` is called by `app.py` (or a test) and the
result is handed to whatever needs it.

Environment variables (all optional):

| variable                  | field             | meaning                                               |
|---------------------------|-------------------|-------------------------------------------------------|
| PLAYGROUND_DEVICE         | device            | force "cpu", "cuda", "cuda:N" or "mps"                |
| PLAYGROUND_DTYPE          | dtype             | force "float32", "float16" or "bfloat16"              |
| PLAYGROUND_MEMORY_GB      | memory_gb         | budget for cached model weights, in GiB               |
| PLAYGROUND_MODEL_ROOTS    | model_roots       | extra folders (os.pathsep-separated) models may load from |
| PLAYGROUND_HUB_TIMEOUT_S  | hub_timeout_s     | how long the Hub reachability probe may take          |
| PLAYGROUND_ATTENTION_MAX_TOKENS | attention_max_tokens | token cap of the attention viewer (at most 512) |
| PLAYGROUND_MODEL_ADMIN    | model_admin       | "1": the Models tab's load form (for the operator)    |
| PLAYGROUND_MAX_SESSIONS   | max_sessions      | browser sessions whose page state is kept (200)        |
| PLAYGROUND_JOBS_PER_VISITOR | queue_limits    | heavy jobs one browser session may have queued (4)     |
| PLAYGROUND_JOBS_PER_ADDRESS | queue_limits    | heavy jobs one client address may have queued (12)     |
| HF_HUB_OFFLINE            | offline           | "1": never touch the network, use cache or embedded   |
| HF_ENDPOINT               | hub_endpoint      | the Hub's address (the huggingface_hub setting)       |
| HF_HUB_CACHE / HF_HOME    | hf_cache          | the Hugging Face cache folder                         |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from playground.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = PROJECT_ROOT / "assets"

_TRUE = {"1", "true", "yes", "on"}
# The attention viewer's hard cap on tokens per side, above any setting (core.attention enforces it).
ATTENTION_MAX_TOKENS = 512
_VALID_DTYPES = ("float32", "float16", "bfloat16")


class ConfigError(UserError, ValueError):
    """A setting in the environment is malformed; the message names the variable and the fix."""


@dataclass(frozen=True)
class QueueLimits:
    """How many jobs a visitor may have in the shared queue (`ui.visitor_limits` enforces them)."""

    per_session: int = 4  # heavy jobs one browser session may have waiting or running
    per_address: int = 12  # heavy jobs one client address may have waiting or running (a classroom behind one NAT shares it)
    heavy_waiting: int = 48  # heavy jobs waiting (not yet running) from all visitors together
    training_waiting: int = 3  # training runs waiting for the machine's one trainer, from all visitors together
    light_waiting: int = 256  # light jobs waiting from all visitors together (a backstop; they take milliseconds)
    heavy_running: int = 4  # heavy jobs running at once on the machine (more only share the same cores and memory)

    def __post_init__(self) -> None:
        for name in ("per_session", "per_address", "heavy_waiting", "training_waiting", "light_waiting", "heavy_running"):
            if getattr(self, name) < 1:
                raise ConfigError(f"QueueLimits.{name} must be at least 1, got {getattr(self, name)}")


def _default_hf_cache(env: Mapping[str, str]) -> Path:
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    hf_home = env.get("HF_HOME") or os.path.join(
        env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return Path(hf_home).expanduser() / "hub"


@dataclass(frozen=True)
class Settings:
    device: str | None = None  # None: pick CUDA, then MPS, then CPU
    dtype: str | None = None  # None: float32 on CPU/MPS, half precision on CUDA
    memory_gb: float = 8.0  # cached weights above this are evicted, least recently used first
    model_roots: tuple[Path, ...] = ()  # extra folders local models may be loaded from
    offline: bool = False  # True: never contact the Hub (HF_HUB_OFFLINE=1)
    hub_endpoint: str = "https://huggingface.co"  # probed to decide whether the Hub is reachable
    hub_timeout_s: float = 3.0  # the probe gives up after this long and presets fall back
    hf_cache: Path = field(default_factory=lambda: _default_hf_cache(os.environ))  # HF hub cache
    assets_dir: Path = ASSETS_DIR  # embedded models and tokenizers
    max_concurrency: int = 2  # simultaneous heavy jobs per event (the queue's default limit)
    attention_max_tokens: int = 128  # the attention viewer's default token cap (the API's cap; the UI slider starts here)
    model_admin: bool = False  # True: the Models tab has a form to load any model by hand (never a public API endpoint)
    queue_limits: QueueLimits = field(default_factory=QueueLimits)  # jobs per visitor, per address, and in each line
    max_sessions: int = 200  # browser sessions whose page state the server keeps (Gradio's copy of every widget, 1-3 MB
    # each); past it the least recently active session's is forgotten (its page starts over), so memory stays bounded

    def __post_init__(self) -> None:
        if self.dtype is not None and self.dtype not in _VALID_DTYPES:
            raise ConfigError(
                f"PLAYGROUND_DTYPE={self.dtype!r} is not supported; use one of {', '.join(_VALID_DTYPES)}."
            )
        if not self.memory_gb > 0:
            raise ConfigError(f"PLAYGROUND_MEMORY_GB must be a positive number of GiB, got {self.memory_gb!r}.")
        if not 2 <= self.attention_max_tokens <= ATTENTION_MAX_TOKENS:
            raise ConfigError(
                f"PLAYGROUND_ATTENTION_MAX_TOKENS must be between 2 and {ATTENTION_MAX_TOKENS}, got {self.attention_max_tokens!r}."
            )
        if self.max_sessions < 1:
            raise ConfigError(f"PLAYGROUND_MAX_SESSIONS must be at least 1, got {self.max_sessions!r}.")
        if not self.hub_timeout_s > 0:
            raise ConfigError(f"PLAYGROUND_HUB_TIMEOUT_S must be positive, got {self.hub_timeout_s!r}.")

    @property
    def memory_budget_bytes(self) -> int:
        return int(self.memory_gb * 1024**3)

    @property
    def allowed_roots(self) -> tuple[Path, ...]:
        """Folders under which local model folders are accepted: assets/, the HF cache, and model_roots."""
        return (self.assets_dir.resolve(), self.hf_cache.expanduser().resolve(), *(p.resolve() for p in self.model_roots))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `env` (default: os.environ); malformed values raise ConfigError.

        >>> Settings.from_env({"PLAYGROUND_MEMORY_GB": "2", "HF_HUB_OFFLINE": "1"}).memory_gb
        2.0
        """
        env = os.environ if env is None else env

        def number(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                return float(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a number; set it like {name}={default}.") from None

        from huggingface_hub import constants as hub_constants

        roots = tuple(Path(p).expanduser() for p in env.get("PLAYGROUND_MODEL_ROOTS", "").split(os.pathsep) if p.strip())
        return cls(
            device=env.get("PLAYGROUND_DEVICE", "").strip() or None,
            dtype=env.get("PLAYGROUND_DTYPE", "").strip() or None,
            memory_gb=number("PLAYGROUND_MEMORY_GB", cls.memory_gb),
            model_roots=roots,
            offline=env.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE,
            hub_endpoint=(env.get("HF_ENDPOINT") or hub_constants.ENDPOINT).rstrip("/"),
            hub_timeout_s=number("PLAYGROUND_HUB_TIMEOUT_S", cls.hub_timeout_s),
            attention_max_tokens=int(number("PLAYGROUND_ATTENTION_MAX_TOKENS", cls.attention_max_tokens)),
            hf_cache=_default_hf_cache(env),
            model_admin=env.get("PLAYGROUND_MODEL_ADMIN", "").strip().lower() in _TRUE,
            max_sessions=int(number("PLAYGROUND_MAX_SESSIONS", cls.max_sessions)),
            queue_limits=QueueLimits(
                per_session=int(number("PLAYGROUND_JOBS_PER_VISITOR", QueueLimits.per_session)),
                per_address=int(number("PLAYGROUND_JOBS_PER_ADDRESS", QueueLimits.per_address)),
            ),
        )
