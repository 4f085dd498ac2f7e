"""The one shared model loader: lazy, cached, single-flight, under a memory budget.

    loader = ModelLoader(Settings.from_env())
    lm = loader.load("gpt2", "causal-lm", attention=True)   # loads once, then cached
    lm.model, lm.tokenizer, lm.source.describe()

- Lazy: nothing loads until `load` is called; creating a loader touches no network or disk.
- Cached: the same (source, family, attention, device, dtype) returns the same objects.
- Single-flight: concurrent calls for a model not yet loaded wait for one load (thread-safe).
- Budget: past `Settings.memory_gb`, least recently used models are evicted and GPU memory released.
- Safe: `trust_remote_code` is never set and only safetensors weights are read.
- Offline: presets fall back to their embedded counterparts (see `sources.py`) within seconds.

The loader is shared by every user of the app. It caches weights read-only; it never holds
per-user state, and no user's request swaps the model another user gets.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playground.config import Settings
from playground.errors import UserError
from playground.lazy import LIBRARY_LOCK, from_library, torch
from playground.models.architecture import architecture_of, has_masked_lm_head
from playground.models.device import pick_device, pick_dtype, release_device_memory
from playground.models.hub import (
    HubFilesError,
    HubProbe,
    HubStatus,
    download_config,
    download_repo,
    is_network_error,
    unused_components,
)
from playground.models.presets import PRESETS, Family, Preset, find_preset
from playground.models.results import ResultHandle, ResultStore
from playground.models.sources import ResolvedSource, SourceError, SourceKind, embedded_folder, resolve_source

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]

# Diffusion folders list their components in model_index.json; only these libraries may be named.
_COMPONENT_LIBRARIES = ("diffusers", "transformers")
# components that model_index.json names by their diffusers pipeline module (as diffusers' own loader reads them)
_PIPELINE_MODULES = {"stable_diffusion": "diffusers.pipelines.stable_diffusion"}

# A loaded fast tokenizer takes about 20x the bytes of its serialized tokenizer.json in process
# memory (RSS measured for five copies each: gpt2 18x / 27 MB, bert-base-uncased 20x / 9 MB,
# t5-small 22x / 30 MB), so that is what it counts against the memory budget.
TOKENIZER_MEMORY_FACTOR = 20

_TRANSFORMER_FAMILIES = (Family.CAUSAL_LM, Family.MASKED_LM, Family.SEQ2SEQ, Family.ENCODER, Family.CLIP)


class LoadError(UserError, RuntimeError):
    """A model could not be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class PipelineInfo:
    """What a diffusion folder's model_index.json says about the pipeline, read once at load time."""

    class_name: str  # the pipeline class it was saved from ("DDPMPipeline", "StableDiffusionPipeline", ...)
    id2label: dict[int, str]  # class labels of a class-conditional model; {} when it takes no class
    null_class: int | None  # the "no class" label for classifier-free guidance; None when there is none


@dataclass(frozen=True)
class TrainingRecord:
    """How much an embedded model read in training, from the record its training script wrote."""

    tokens_seen: int | None  # tokens read over all steps (steps x batch x window); None when not recorded
    examples_seen: int  # sequences or examples read over all steps
    what: str  # in words, e.g. "1,400 steps x 32 x 128 tokens of Shakespeare"


@dataclass
class LoadedModel:
    source: ResolvedSource  # what was asked for and what actually runs
    folder: Path  # the local folder its files were read from (for a Hub model, the downloaded snapshot)
    family: Family  # how it was loaded
    model: Any  # the main torch module (LM, or the UNet of a diffusion model); None for tokenizers
    tokenizer: Any  # the tokenizer, if the folder has one
    components: dict[str, Any]  # every loaded part by name (diffusion: unet, scheduler, vae, ...)
    device: torch.device  # where the weights live
    dtype: torch.dtype | None  # their floating-point type (None for a tokenizer)
    attention: bool  # loaded with eager attention, so attention weights can be returned
    load_seconds: float  # wall time of the load
    n_params: int  # parameters over all torch modules
    memory_bytes: int  # bytes of parameters and buffers over all torch modules (a tokenizer: an estimate)
    pipeline: PipelineInfo | None = None  # a diffusion folder's metadata; None for the other families
    trained_length: int | None = None  # tokens per training window of an embedded teaching model (past it, it is out of its depth)
    training: TrainingRecord | None = None  # what an embedded teaching model was trained on (its metrics.json)

    def depth_note(self, n_tokens: int) -> str | None:
        """A sentence for the page when `n_tokens` is past what this teaching model was trained on, else None."""
        if self.trained_length is None or n_tokens <= self.trained_length:
            return None
        return (f"This teaching model was trained on windows of {self.trained_length} tokens; this text has {n_tokens}, so past token "
                f"{self.trained_length} it is out of its depth (attention washes out, predictions get worse). The Hub model "
                "behind the preset reads far longer texts.")
    last_used: float = field(default_factory=time.monotonic)  # for LRU eviction


@dataclass(frozen=True)
class ModelInfo:
    """What the Models tab shows of one loaded model."""

    requested: str
    family: str
    kind: str
    location: str
    note: str
    load_seconds: float
    n_params: int
    device: str
    dtype: str
    memory_mb: float
    attention: bool


@dataclass(frozen=True)
class PresetRow:
    """What the Models tab shows of one preset: the name, and the source it resolves to now."""

    family: str
    hub_id: str
    kind: str  # hub, hub-cache, embedded; "-" when unavailable
    resolves_to: str  # the Hub id or folder (relative to the project when inside it)
    why: str  # the reason for that choice, or what is missing
    about: str  # the preset's description
    revision: str = ""  # the Hub commit it is pinned to ("" when none)


def _weights_errors() -> tuple[type[BaseException], ...]:
    """What safetensors raises for a corrupt or truncated file (header, size)."""
    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - safetensors is a requirement
        return ()
    return (SafetensorError,)


def library_class(library: str, name: str) -> Any:
    """`getattr(transformers or diffusers, name)`, thread-safe (playground.lazy.from_library); None when the
    library has no such class."""
    try:
        return from_library(library, name)
    except AttributeError:
        return None


def module_bytes(modules: Iterable[Any]) -> tuple[int, int]:
    """(parameter count, bytes of parameters and buffers) over the torch modules among `modules`."""
    n_params = n_bytes = 0
    for module in modules:
        if isinstance(module, torch.nn.Module):
            for p in module.parameters():
                n_params += p.numel()
                n_bytes += p.numel() * p.element_size()
            for b in module.buffers():
                n_bytes += b.numel() * b.element_size()
    return n_params, n_bytes


def tokenizer_bytes(tokenizer: Any) -> int:
    """Estimated process memory of a tokenizer: TOKENIZER_MEMORY_FACTOR x its serialized size."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow tokenizer: its vocabulary file is the best cheap guess
        files = getattr(tokenizer, "vocab_files_names", {}) or {}
        return TOKENIZER_MEMORY_FACTOR * sum(len(str(name)) for name in files.values())
    return TOKENIZER_MEMORY_FACTOR * len(backend.to_str().encode())


def estimate_folder_bytes(folder: Path) -> int:
    """Bytes of safetensors weights in `folder` (a cheap upper-bound guess before loading)."""
    return sum(f.stat().st_size for f in folder.rglob("*.safetensors"))


class ModelLoader:
    def __init__(self, settings: Settings, probe: HubProbe | None = None) -> None:
        self.settings = settings
        self.probe = probe or HubProbe(settings.hub_endpoint, settings.hub_timeout_s, offline=settings.offline)
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple, LoadedModel] = OrderedDict()  # LRU order: oldest first
        self._inflight: dict[tuple, Future] = {}
        self._device: torch.device | None = None  # picked on first load, not at start-up
        self._families: dict[str, Family] = {}  # transformer_family's answers by resolved location (config.json read once)
        self.load_count = 0  # completed loads (cache misses), for tests and the Models tab
        self.results = ResultStore()  # per-session results (attention runs, diffusion runs), counted in the budget

    # ---- public API -------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        if self._device is None:
            self._device = pick_device(self.settings.device)
        return self._device

    def hub_status(self) -> HubStatus:
        return self.probe.status()

    def resolve(self, source: str, family: Family | str) -> ResolvedSource:
        """Which folder or Hub repo `source` would load now (no weights are read)."""
        return resolve_source(source, family, self.settings, self.probe.status())

    def transformer_family(self, source: str) -> Family:
        """How a transformer `source` loads: its preset's family, else what its config.json says.

        An encoder-decoder is seq2seq, a decoder causal-lm, an encoder with a masked-LM head
        masked-lm, and any other encoder (e.g. a folder with only the base model) encoder.
        Reads only config.json (downloaded alone for a Hub model not yet in the cache), once per
        resolved location: the tabs ask on every click.
        """
        for family in (Family.CAUSAL_LM, Family.MASKED_LM, Family.SEQ2SEQ):
            if find_preset(family, source.strip()):
                return family
        resolved = self.resolve(source, Family.ENCODER)
        with self._lock:
            known = self._families.get(resolved.location)
        if known is None:
            known = self._family_from_config(source, resolved)
            with self._lock:
                self._families[resolved.location] = known
        return known

    def _family_from_config(self, source: str, resolved: ResolvedSource) -> Family:
        folder = resolved.folder
        if folder is None:
            try:
                folder = download_config(resolved.location, self.settings.hf_cache, self.settings.hub_endpoint, resolved.revision)
            except Exception as exc:
                raise LoadError(f"Could not read the config of {resolved.location!r} from the Hub ({exc}).") from exc
        try:
            config = library_class("transformers", "AutoConfig").from_pretrained(folder, trust_remote_code=False)
        except (OSError, ValueError, KeyError) as exc:
            raise LoadError(f"{source!r} is not a transformers model folder (no readable config.json): {exc}") from exc
        arch = architecture_of(config)
        if arch == "encoder":
            return Family.MASKED_LM if has_masked_lm_head(config) else Family.ENCODER
        return Family.SEQ2SEQ if arch == "encoder-decoder" else Family.CAUSAL_LM

    def load(
        self,
        source: str,
        family: Family | str,
        *,
        attention: bool = False,
        progress: ProgressFn | None = None,
    ) -> LoadedModel:
        """Load (or fetch from the cache) the model `source` names, as a `family` model.

        `attention=True` loads with eager attention, so `output_attentions=True` returns weights.
        Raises SourceError for a bad source and LoadError when loading fails.
        """
        family = Family.parse(family)
        report = progress or (lambda fraction, desc: None)
        report(0.0, f"Resolving {source!r}")
        resolved = self.resolve(source, family)
        device = self.device
        dtype = None if family is Family.TOKENIZER else pick_dtype(device, self.settings.dtype)
        attention = attention and family in _TRANSFORMER_FAMILIES
        key = (family, resolved.preset.hub_id if resolved.preset else resolved.location, attention, str(device), str(dtype))

        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                cached.last_used = time.monotonic()
                report(1.0, "Ready (cached)")
                return cached
            future = self._inflight.get(key)
            owner = future is None
            if owner:
                future = Future()
                self._inflight[key] = future
        if not owner:
            report(0.1, f"Waiting for another request loading {source!r}")
            return future.result()

        try:
            loaded = self._load_uncached(resolved, family, device, dtype, attention, report)
            with self._lock:
                self._cache[key] = loaded
                self.load_count += 1
                evicted = self._evict_over_budget(keep=key)
            self._release(evicted)
            future.set_result(loaded)
            report(1.0, "Ready")
            return loaded
        except BaseException as exc:
            future.set_exception(exc)
            raise
        finally:
            with self._lock:
                self._inflight.pop(key, None)

    def loaded(self) -> list[ModelInfo]:
        """The models in memory, most recently used first."""
        with self._lock:
            entries = list(reversed(self._cache.values()))
        return [
            ModelInfo(
                requested=m.source.requested, family=m.family.value, kind=m.source.kind.value,
                location=m.source.short_location(), note=m.source.note, load_seconds=round(m.load_seconds, 2),
                n_params=m.n_params, device=str(m.device),
                dtype=str(m.dtype).replace("torch.", "") if m.dtype else "-",
                memory_mb=round(m.memory_bytes / 2**20, 1), attention=m.attention,
            )
            for m in entries
        ]

    def memory_used(self) -> int:
        """Bytes of cached models and of the sessions' kept results: what the budget bounds."""
        with self._lock:
            return self._bytes_used()

    def keep_result(self, value: Any, nbytes: int, kind: str, replaces: Any = None) -> ResultHandle:
        """Keep one session's result on the server, counted in the memory budget; returns the handle its
        gr.State holds. Past the budget the oldest results go (their sessions are told to run again); models,
        which serve everyone, are never evicted for one session's result. `replaces` (the session's previous
        handle) is dropped first."""
        self.results.drop(replaces)
        handle = self.results.put(value, nbytes, kind)
        with self._lock:
            while len(self.results) > 1 and self._over_budget() and self.results.evict_oldest():
                log.info("evicted a session's result to stay under %.1f GiB", self.settings.memory_gb)
        return handle

    def preset_rows(self, presets: Iterable[Preset] = PRESETS) -> list[PresetRow]:
        """Every preset with the source it resolves to right now."""
        rows = []
        for preset in presets:
            try:
                r = self.resolve(preset.hub_id, preset.family)
                rows.append(PresetRow(preset.family.value, preset.hub_id, r.kind.value, r.short_location(), r.note, preset.description,
                                      preset.revision or ""))
            except SourceError as exc:
                rows.append(PresetRow(preset.family.value, preset.hub_id, "-", "unavailable", str(exc), preset.description,
                                      preset.revision or ""))
        return rows

    def clear(self) -> None:
        """Drop every cached model (tests and shutdown)."""
        with self._lock:
            dropped = list(self._cache.values())
            self._cache.clear()
        self._release(dropped)

    # ---- internals ----------------------------------------------------------------------------

    def _bytes_used(self) -> int:
        """Models and kept results, in bytes (the caller holds self._lock)."""
        return sum(m.memory_bytes for m in self._cache.values()) + self.results.bytes_used()

    def _over_budget(self, extra: int = 0) -> bool:
        """Would `extra` more bytes go past the budget? (the caller holds self._lock)"""
        return self._bytes_used() + extra > self.settings.memory_budget_bytes

    def _evict_over_budget(self, keep: tuple) -> list[LoadedModel]:
        """Drop least recently used models (never `keep`) until models and kept results fit the budget;
        kept results go first, oldest first (a session can run again; a model serves everyone)."""
        while self._over_budget() and self.results.evict_oldest():
            pass
        evicted = []
        while self._over_budget():
            victim = next((k for k in self._cache if k != keep), None)
            if victim is None:
                break
            evicted.append(self._cache.pop(victim))
            log.info("evicted %s to stay under %.1f GiB", victim, self.settings.memory_gb)
        return evicted

    def _make_room(self, needed: int) -> None:
        """Before a load: evict LRU models so `needed` more bytes fit, to keep the peak in budget."""
        budget = self.settings.memory_budget_bytes
        if needed > budget:
            raise LoadError(
                f"This model needs about {needed / 2**30:.2f} GiB but the memory budget is "
                f"{self.settings.memory_gb:g} GiB. Raise PLAYGROUND_MEMORY_GB or pick a smaller model."
            )
        with self._lock:
            while self._over_budget(needed) and self.results.evict_oldest():
                pass
            evicted = []
            while self._cache and self._over_budget(needed):
                evicted.append(self._cache.popitem(last=False)[1])
        self._release(evicted)

    def _release(self, evicted: list[LoadedModel]) -> None:
        if not evicted:
            return
        devices = {m.device for m in evicted}
        evicted.clear()
        gc.collect()
        for device in devices:
            release_device_memory(device)

    def _materialize(self, resolved: ResolvedSource, report: ProgressFn) -> tuple[ResolvedSource, Path]:
        """The local folder to load: download Hub models, falling back to embedded for presets."""
        if resolved.kind is not SourceKind.HUB:
            return resolved, Path(resolved.location)
        report(0.1, f"Downloading {resolved.location} from the Hub")
        try:
            folder = download_repo(resolved.location, self.settings.hf_cache, self.settings.hub_endpoint, resolved.revision,
                                   tokenizer_only=resolved.family is Family.TOKENIZER)
            return resolved, folder
        except Exception as exc:
            unreachable = is_network_error(exc)
            reason = f"download of {resolved.location} failed: {type(exc).__name__}"
            if resolved.preset is None:
                if isinstance(exc, HubFilesError):
                    raise LoadError(str(exc)) from exc
                raise LoadError(f"Could not download {resolved.location!r} from the Hub ({exc}).") from exc
            if unreachable:  # the Hub itself is out of reach: every request falls back at once for a while
                self.probe.mark_unreachable(reason)
            else:  # the Hub answered, but not with this model: this request falls back, the Hub stays in use
                log.warning("preset %s: %s; using its embedded counterpart for this request", resolved.location, exc)
            folder = embedded_folder(resolved.preset, self.settings)
            fallback = ResolvedSource(
                resolved.requested, resolved.family, SourceKind.EMBEDDED, str(folder),
                f"{reason}; embedded counterpart", resolved.preset,
            )
            return fallback, folder

    def _load_uncached(
        self,
        resolved: ResolvedSource,
        family: Family,
        device: torch.device,
        dtype: torch.dtype | None,
        attention: bool,
        report: ProgressFn,
    ) -> LoadedModel:
        start = time.perf_counter()
        resolved, folder = self._materialize(resolved, report)
        if family is not Family.TOKENIZER:
            self._make_room(estimate_folder_bytes(folder))
        report(0.4, f"Loading {family.value} weights from {folder.name}")
        try:
            with LIBRARY_LOCK:  # reading weights runs one at a time, with every class lookup (see playground.lazy)
                parts = _load_folder(folder, family, device, dtype, attention)
        except (torch.OutOfMemoryError, MemoryError) as exc:
            release_device_memory(device)
            raise LoadError(
                f"The server ran out of memory loading {resolved.requested!r} ({exc}). Pick a smaller model, or lower "
                "PLAYGROUND_MEMORY_GB so fewer models stay loaded beside it."
            ) from exc
        except (OSError, ValueError, KeyError, TypeError, AttributeError, *_weights_errors()) as exc:
            why = ": its weights are corrupt or incomplete" if isinstance(exc, _weights_errors()) else ""
            raise LoadError(f"Could not load {resolved.requested!r} as a {family.value} model from {folder}{why}: {exc}") from exc
        record = _training_config(folder) if resolved.kind is SourceKind.EMBEDDED else {}  # an embedded model's training record
        n_params, n_bytes = module_bytes(parts.components.values())
        if family is Family.TOKENIZER:
            n_bytes = tokenizer_bytes(parts.tokenizer)
        return LoadedModel(
            source=resolved, folder=folder, family=family, model=parts.model, tokenizer=parts.tokenizer,
            components=parts.components, device=device, dtype=dtype, attention=attention,
            load_seconds=time.perf_counter() - start, n_params=n_params, memory_bytes=n_bytes, pipeline=parts.pipeline,
            trained_length=_trained_length(record), training=_training_record(record),
        )


def _training_config(folder: Path) -> dict[str, Any]:
    """The training config an embedded model's training script recorded in its metrics.json ({} when there is none)."""
    import json

    try:
        config = json.loads((folder / "metrics.json").read_text()).get("config", {})
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _training_record(config: dict[str, Any]) -> TrainingRecord | None:
    """Steps x batch (x window) from a training config; None when it does not say."""
    steps, batch = config.get("steps"), config.get("batch_size")
    if not isinstance(steps, int) or not isinstance(batch, int):
        return None
    window = config.get("block_size") or config.get("seq_len")
    if isinstance(window, int):
        return TrainingRecord(steps * batch * window, steps * batch, f"{steps:,} steps x {batch} x {window} tokens")
    return TrainingRecord(None, steps * batch, f"{steps:,} steps x {batch} examples (tokens not recorded)")


def _trained_length(config: dict[str, Any]) -> int | None:
    """The training window in a training config: past it, the model is out of its depth."""
    value = config.get("block_size") or config.get("seq_len")  # GPT: block_size; BERT: seq_len
    return int(value) if isinstance(value, (int, float)) and value > 0 else None


@dataclass
class _Parts:
    model: Any  # the main module (None for a tokenizer)
    tokenizer: Any  # the tokenizer, if any
    components: dict[str, Any]  # every loaded part by name
    pipeline: PipelineInfo | None = None  # diffusion folders only


def _load_folder(folder: Path, family: Family, device: torch.device, dtype: torch.dtype | None, attention: bool) -> _Parts:
    """Load a Hugging Face folder the way `family` needs."""
    auto_tokenizer = library_class("transformers", "AutoTokenizer")
    if family is Family.TOKENIZER:
        tokenizer = auto_tokenizer.from_pretrained(folder, trust_remote_code=False)
        return _Parts(None, tokenizer, {"tokenizer": tokenizer})

    if family in _TRANSFORMER_FAMILIES:
        auto = library_class("transformers", {
            Family.ENCODER: "AutoModel",
            Family.CAUSAL_LM: "AutoModelForCausalLM",
            Family.MASKED_LM: "AutoModelForMaskedLM",
            Family.SEQ2SEQ: "AutoModelForSeq2SeqLM",
            Family.CLIP: "CLIPModel",
        }[family])
        kwargs: dict[str, Any] = {"dtype": dtype, "use_safetensors": True, "trust_remote_code": False}
        if attention:
            kwargs["attn_implementation"] = "eager"  # SDPA returns no attention weights
        model = auto.from_pretrained(folder, **kwargs).to(device).eval()
        tokenizer = auto_tokenizer.from_pretrained(folder, trust_remote_code=False)
        parts = {"model": model, "tokenizer": tokenizer}
        if family is Family.CLIP:  # pictures as the model was trained to read them: the processor saved beside it
            parts["image_processor"] = library_class("transformers", "AutoImageProcessor").from_pretrained(folder)
        return _Parts(model, tokenizer, parts)

    return _load_diffusion_components(folder, device, dtype)


def _pipeline_info(index: dict[str, Any]) -> PipelineInfo:
    """The pipeline class, class labels and null class that model_index.json records."""
    labels = index.get("id2label") or {}
    null = index.get("null_class")
    return PipelineInfo(
        class_name=str(index.get("_class_name", "")),
        id2label={int(k): str(v) for k, v in labels.items()},
        null_class=None if null is None else int(null),
    )


def _load_diffusion_components(folder: Path, device: torch.device, dtype: torch.dtype | None) -> _Parts:
    """Load each component listed in model_index.json with its own class's from_pretrained."""
    import json

    index_file = folder / "model_index.json"
    if not index_file.exists():
        raise ValueError("a diffusion model folder needs a model_index.json listing its components")
    index = json.loads(index_file.read_text())
    components: dict[str, Any] = {}
    unused = unused_components(index)
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or spec[0] is None or name in unused:
            continue
        library, class_name = spec
        if library not in _COMPONENT_LIBRARIES and library not in _PIPELINE_MODULES:
            raise ValueError(f"component {name!r} comes from {library!r}; only {_COMPONENT_LIBRARIES} (and diffusers' pipeline "
                             f"modules {tuple(_PIPELINE_MODULES)}) are allowed")
        cls = library_class(_PIPELINE_MODULES.get(library, library), class_name)
        if cls is None:
            raise ValueError(f"component {name!r} names unknown class {library}.{class_name}")
        # a component's files sit in its own subfolder, or at the repo root when the pipeline has one
        # component of that kind (google/ddpm-cifar10-32), as diffusers' own load_sub_model reads them
        sub = folder / name if (folder / name).is_dir() else folder
        if issubclass(cls, torch.nn.Module):
            # the VAE decodes in float32: in half precision it can overflow to NaN
            part_dtype = torch.float32 if name == "vae" else dtype
            kwargs: dict[str, Any] = {"use_safetensors": True}
            if library == "transformers":
                kwargs["trust_remote_code"] = False
            part = cls.from_pretrained(sub, dtype=part_dtype, **kwargs).to(device).eval()
        else:  # schedulers, tokenizers, feature extractors
            part = cls.from_pretrained(sub)
        components[name] = part
    main = components.get("unet") or components.get("prior")  # a UNet; or DALL-E 2's prior, which denoises an embedding
    if main is None:
        raise ValueError("model_index.json lists no 'unet' (nor a 'prior')")
    return _Parts(main, components.get("tokenizer"), components, _pipeline_info(index))
