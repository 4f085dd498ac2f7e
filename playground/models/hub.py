"""The Hugging Face Hub, seen from the loader: is it reachable, and fetching a repo into a local folder.

A plain `from_pretrained("gpt2")` with no network spends ~50 s in retries before failing. The
loader instead asks `HubProbe` first: one HEAD request, bounded by a timeout, its answer cached
for a while, so an offline machine falls back to the embedded models within a few seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Only these files are ever fetched: configs, tokenizers and safetensors weights. Pickled weights
# (.bin, .pt, .ckpt) can run code when loaded, so they are never downloaded.
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.md"]
IGNORE_PATTERNS = ["*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.msgpack", "*.onnx", "*onnx*", "*.fp16.*", "*non_ema*"]


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


def cached_snapshot(repo_id: str, cache_dir: Path) -> Path | None:
    """The folder of `repo_id` in the HF cache if it was downloaded before (no network), else None."""
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id, cache_dir=cache_dir, local_files_only=True,
            allow_patterns=ALLOW_PATTERNS, ignore_patterns=IGNORE_PATTERNS,
        )
    except Exception:
        return None
    return Path(folder)


def download_snapshot(repo_id: str, cache_dir: Path, endpoint: str | None = None) -> Path:
    """Fetch `repo_id` (configs, tokenizers, safetensors only) into the HF cache; return its folder."""
    from huggingface_hub import snapshot_download

    return Path(
        snapshot_download(
            repo_id, cache_dir=cache_dir, endpoint=endpoint,
            allow_patterns=ALLOW_PATTERNS, ignore_patterns=IGNORE_PATTERNS, etag_timeout=10,
        )
    )


def download_config(repo_id: str, cache_dir: Path, endpoint: str | None = None) -> Path:
    """Fetch only `repo_id`'s config.json into the HF cache; return the folder that holds it."""
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo_id, "config.json", cache_dir=cache_dir, endpoint=endpoint, etag_timeout=10)).parent
