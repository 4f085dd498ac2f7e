"""The Hugging Face Hub, seen from the loader: is it reachable, and fetching a repo into a local folder.

A plain `from_pretrained("gpt2")` with no network spends ~50 s in retries before failing. The
loader instead asks `HubProbe` first: one HEAD request, bounded by a timeout, its answer cached
for a while, so an offline machine falls back to the embedded models within a few seconds.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

# A transformers repo's files that the loader reads, at the repo root only: configs, tokenizer files
# and safetensors weights. Repos also hold pickles (pytorch_model.bin), other frameworks' weights
# (tf_model.h5, flax_model.msgpack, rust_model.ot, *.tflite) and exports in subfolders (onnx/,
# coreml/): none of those is fetched. Pickles can run code when loaded, so they are never read.
TRANSFORMERS_FILES = (
    "config.json", "generation_config.json",  # transformers' CONFIG_NAME, GENERATION_CONFIG_NAME
    "model.safetensors", "model.safetensors.index.json",  # SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "chat_template.jinja",
    "vocab.json", "merges.txt", "vocab.txt", "spiece.model", "sentencepiece.bpe.model",  # the tokenizers' vocab_files_names
)
_SHARD_RE = re.compile(r"^model-\d{5}-of-\d{5}\.safetensors$")
_TOKENIZER_ONLY = {"model.safetensors", "model.safetensors.index.json", "generation_config.json"}
# Cache look-ups of a snapshot (offline) match these; the same names as the downloads.
ALLOW_PATTERNS = [*TRANSFORMERS_FILES, "model-*-of-*.safetensors", "model_index.json", "*/config.json", "*/*.safetensors",
                  "scheduler_config.json", "*/scheduler_config.json", "*/*.json", "*/*.txt", "*/*.model"]
IGNORE_PATTERNS = ["*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.msgpack", "*.onnx", "*onnx*", "*.fp16.*", "*non_ema*", "*.py",
                   "coreml/*", "*.mlmodel", "*.tflite", "*.ot"]


# Pipeline components the playground never runs: the NSFW checker and its image processor (the explorer builds
# its pipelines with safety_checker=None), an IP-adapter's image encoder. Not downloaded, not loaded.
UNUSED_COMPONENTS = ("safety_checker", "feature_extractor", "image_encoder")
# ... except in an unCLIP pipeline, where the image encoder and its processor are what makes variations
UNCLIP_PIPELINES = ("StableUnCLIPPipeline", "StableUnCLIPImg2ImgPipeline")


def unused_components(index: dict) -> tuple[str, ...]:
    """The components of a pipeline (its model_index.json) that the playground neither loads nor downloads."""
    if index.get("_class_name") in UNCLIP_PIPELINES:
        return ("safety_checker",)
    return UNUSED_COMPONENTS


class HubFilesError(RuntimeError):
    """A Hub repo lacks what the loader can read (e.g. only pickled weights at that revision)."""


def is_network_error(exc: BaseException) -> bool:
    """Did `exc` come from not reaching the Hub at all (as opposed to the Hub answering "no")?

    Only these mark the Hub unreachable for everyone; a missing file or repo is one request's problem.
    """
    import httpx
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, HfHubHTTPError):
            response = getattr(exc, "response", None)
            return response is None or getattr(response, "status_code", 0) >= 500
        if isinstance(exc, (httpx.TransportError, OfflineModeIsEnabled, ConnectionError, TimeoutError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def transformers_files(filenames: Iterable[str], tokenizer_only: bool = False) -> list[str]:
    """The files of a transformers repo the loader reads (root level only), from the repo's listing.

    >>> transformers_files(["config.json", "model.safetensors", "pytorch_model.bin", "onnx/config.json",
    ...                     "coreml/fill-mask/Manifest.json", "vocab.txt", "tf_model.h5"])
    ['config.json', 'model.safetensors', 'vocab.txt']
    """
    wanted = [f for f in filenames if "/" not in f and (f in TRANSFORMERS_FILES or _SHARD_RE.match(f))]
    if tokenizer_only:
        wanted = [f for f in wanted if f not in _TOKENIZER_ONLY and not _SHARD_RE.match(f)]
    return sorted(wanted)


def download_repo(repo_id: str, cache_dir: Path, endpoint: str | None = None, revision: str | None = None,
                  tokenizer_only: bool = False) -> Path:
    """Fetch what the loader reads of `repo_id` at `revision` into the HF cache; return its snapshot folder.

    A diffusers repo (it has model_index.json) is fetched by diffusers' own
    `DiffusionPipeline.download(use_safetensors=True)`, which reads model_index.json, handles
    components kept in subfolders or at the repo root, and skips pickles and custom code. A
    transformers repo gets the root-level files of `transformers_files`, and must have safetensors.
    """
    from huggingface_hub import HfApi, snapshot_download

    info = HfApi(endpoint=endpoint).model_info(repo_id, revision=revision)
    filenames = [s.rfilename for s in info.siblings or []]
    commit = info.sha or revision
    if "model_index.json" in filenames and not tokenizer_only:
        from playground.lazy import from_library

        pipeline = from_library("diffusers", "DiffusionPipeline")
        try:
            return Path(pipeline.download(repo_id, revision=commit, cache_dir=cache_dir, use_safetensors=True,
                                          **dict.fromkeys(UNUSED_COMPONENTS)))  # passed as None: diffusers skips their files
        except (OSError, ValueError) as exc:
            if not any(f.endswith(".safetensors") for f in filenames):
                raise HubFilesError(
                    f"{repo_id} at revision {commit} has no safetensors weights, only pickles, which are never loaded. "
                    "Pin a revision that has safetensors (e.g. the Hub's automatic conversion pull request)."
                ) from exc
            raise
    files = transformers_files(filenames, tokenizer_only)
    if not tokenizer_only and not any(f.endswith(".safetensors") for f in files):
        raise HubFilesError(
            f"{repo_id} at revision {commit} has no safetensors weights at its root (only pickles or other formats), "
            "which the playground never loads. Pin a revision that has model.safetensors."
        )
    return Path(snapshot_download(repo_id, revision=commit, cache_dir=cache_dir, endpoint=endpoint, allow_patterns=files, etag_timeout=10))


@dataclass(frozen=True)
class HubStatus:
    reachable: bool  # True when the Hub answered the probe
    reason: str  # in words, for the UI: why it is (not) reachable
    checked_at: float  # monotonic time of the probe


class HubProbe:
    """Thread-safe, cached answer to "can we reach the Hub right now?".

    The probe runs in a daemon thread joined with a timeout, so even a DNS lookup that hangs
    cannot hold a request longer than `timeout_s`.
    """

    def __init__(
        self,
        endpoint: str,
        timeout_s: float,
        offline: bool = False,
        ttl_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.offline = offline
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._status: HubStatus | None = None

    def status(self) -> HubStatus:
        with self._lock:  # one probe at a time; later callers reuse its answer
            now = self._clock()
            if self._status is None or now - self._status.checked_at > self.ttl_s:
                self._status = self._probe(now)
            return self._status

    def mark_unreachable(self, reason: str) -> None:
        """Record a failed download, so the next requests fall back at once."""
        with self._lock:
            self._status = HubStatus(False, reason, self._clock())

    def _probe(self, now: float) -> HubStatus:
        if self.offline:
            return HubStatus(False, "HF_HUB_OFFLINE=1 is set", now)
        result: list[HubStatus] = []

        def attempt() -> None:
            import httpx

            try:
                start = time.perf_counter()
                httpx.head(self.endpoint, timeout=self.timeout_s, follow_redirects=False)
                result.append(HubStatus(True, f"{self.endpoint} answered in {time.perf_counter() - start:.1f} s", now))
            except Exception as exc:  # any network failure means "not reachable"
                result.append(HubStatus(False, f"{self.endpoint} is unreachable ({type(exc).__name__})", now))

        worker = threading.Thread(target=attempt, name="hub-probe", daemon=True)
        worker.start()
        worker.join(self.timeout_s)
        if result:
            return result[0]
        return HubStatus(False, f"no answer from {self.endpoint} within {self.timeout_s:g} s", now)


def cached_snapshot(repo_id: str, cache_dir: Path, revision: str | None = None) -> Path | None:
    """The folder of `repo_id` (at `revision`) in the HF cache if it was downloaded before (no network), else None."""
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id, cache_dir=cache_dir, local_files_only=True, revision=revision,
            allow_patterns=ALLOW_PATTERNS, ignore_patterns=IGNORE_PATTERNS,
        )
    except Exception:
        return None
    return Path(folder)


def download_config(repo_id: str, cache_dir: Path, endpoint: str | None = None, revision: str | None = None) -> Path:
    """Fetch only `repo_id`'s config.json into the HF cache; return the folder that holds it."""
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo_id, "config.json", cache_dir=cache_dir, endpoint=endpoint, revision=revision, etag_timeout=10)).parent
