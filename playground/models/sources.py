"""Where a model comes from: a preset, a Hub id, or a local folder under an allowed root.

`resolve_source("gpt2", "causal-lm", ...)` turns what a user typed into a `ResolvedSource` that
says which folder (or Hub repo) will actually be loaded, and why. Every load then goes through
the same `from_pretrained(folder)` path.

Accepted sources, checked in this order:
1. a preset's Hub id ("gpt2", "t5-small", ...): the Hub model online, its embedded counterpart
   under assets/ offline (or the HF cache, if it was prefetched);
2. a local folder in Hugging Face format, accepted only under an allowed root (assets/, the HF
   cache, PLAYGROUND_MODEL_ROOTS); relative paths are taken from the project root;
3. any other well-formed Hub id ("owner/name"), loaded from the Hub or the HF cache.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from playground.config import PROJECT_ROOT, Settings
from playground.errors import UserError
from playground.models.hub import HubStatus, cached_snapshot
from playground.models.presets import Family, Preset, find_preset, presets_of

# owner/name or name: letters, digits, "-", "_", "."; no "--" or ".." (the Hub's own rules).
_HUB_ID_RE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_MODEL_FILES = ("config.json", "model_index.json", "tokenizer.json", "tokenizer_config.json")
MAX_SOURCE_LEN = 512


class SourceError(UserError, ValueError):
    """A source that cannot be used; the message says why and what to use instead."""


class SourceKind(str, Enum):
    HUB = "hub"  # downloaded from the Hub at load time
    HUB_CACHE = "hub-cache"  # a Hub model already in the local HF cache
    LOCAL = "local"  # a folder under an allowed root
    EMBEDDED = "embedded"  # a model or tokenizer shipped in assets/


@dataclass(frozen=True)
class ResolvedSource:
    requested: str  # what the user asked for, stripped
    family: Family  # how it will be loaded
    kind: SourceKind  # where it comes from
    location: str  # Hub id (HUB) or absolute folder path (the others)
    note: str  # why this source was chosen, in words for the UI
    preset: Preset | None = None  # the preset the request named, if any

    @property
    def revision(self) -> str | None:
        """The Hub commit to fetch: the preset's pin; None (the head of main) for other Hub ids."""
        return self.preset.revision if self.preset else None

    @property
    def folder(self) -> Path | None:
        """The local folder to load from; None for a Hub model not yet downloaded."""
        return None if self.kind is SourceKind.HUB else Path(self.location)

    def short_location(self) -> str:
        """The Hub id, or the folder relative to the project when it lies inside it."""
        try:
            return str(Path(self.location).relative_to(PROJECT_ROOT))
        except ValueError:
            return self.location

    def describe(self) -> str:
        """One line for the UI, e.g. "gpt2 → embedded assets/models/gpt-shakespeare (offline: ...)"."""
        return f"{self.requested} → {self.kind.value} {self.short_location()} ({self.note})"


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")  # a lone surrogate cannot be a file name or a Hub id
    except UnicodeEncodeError:
        return False
    return True


def is_hub_id(text: str) -> bool:
    """Is `text` a well-formed Hub repo id?

    >>> is_hub_id("google/ddpm-cifar10-32"), is_hub_id("../etc"), is_hub_id("a/b/c")
    (True, False, False)
    """
    return bool(_HUB_ID_RE.match(text)) and ".." not in text and "--" not in text and not text.endswith(".git")


def _looks_like_path(text: str) -> bool:
    if text.startswith(("/", "./", "../", "~", "\\")) or text in (".", ".."):
        return True
    if os.sep in text or "/" in text:
        return (PROJECT_ROOT / text).exists() or Path(text).exists()
    return False


def validate_local_folder(text: str, settings: Settings) -> Path:
    """The absolute folder `text` names, if it is a model folder under an allowed root.

    Symlinks are resolved first, so a link cannot lead outside the allowed roots.
    """
    raw = Path(text).expanduser()
    path = (raw if raw.is_absolute() else PROJECT_ROOT / raw).resolve()
    roots = settings.allowed_roots
    if not any(path == root or path.is_relative_to(root) for root in roots):
        # the roots by what they are, never by the host's paths (an error message is shown to any visitor)
        raise SourceError(
            f"{text[:200]!r} is outside the folders models may be loaded from (the app's assets/ folder, the Hugging Face "
            f"cache, and any folder in PLAYGROUND_MODEL_ROOTS). Whoever runs the server can add a folder to "
            f"PLAYGROUND_MODEL_ROOTS (separated by {os.pathsep!r}) to allow it."
        )
    if not path.is_dir():
        raise SourceError(f"{text!r} is not a folder. Give a folder in Hugging Face format (with config.json).")
    if not any((path / name).exists() for name in _MODEL_FILES):
        raise SourceError(
            f"{text!r} holds no model: expected one of {', '.join(_MODEL_FILES)} "
            "(a folder written by save_pretrained)."
        )
    return path


def embedded_folder(preset: Preset, settings: Settings) -> Path:
    """The embedded counterpart's folder; a clear error if it has not been built yet."""
    folder = settings.assets_dir / preset.embedded
    if not folder.is_dir():
        how = f" Build it with `{preset.train_command}`." if preset.train_command else ""
        raise SourceError(f"The embedded model for {preset.hub_id!r} ({preset.family.value}) is missing at {folder}.{how}")
    return folder.resolve()


def resolve_source(text: str, family: Family | str, settings: Settings, hub: HubStatus) -> ResolvedSource:
    """Decide which folder or Hub repo `text` loads, given whether the Hub is reachable.

    >>> s = Settings(offline=True)
    >>> r = resolve_source("gpt2", "tokenizer", s, HubStatus(False, "HF_HUB_OFFLINE=1 is set", 0.0))
    >>> r.kind.value, r.location.endswith("assets/tokenizers/gpt2")
    ('embedded', True)
    """
    family = Family.parse(family)
    if not isinstance(text, str) or not text.strip():
        names = ", ".join(p.hub_id for p in presets_of(family))
        raise SourceError(f"No model given. Choose a {family.value} preset ({names}) or a model folder.")
    text = text.strip()
    if len(text) > MAX_SOURCE_LEN or "\x00" in text or any(ord(c) < 32 for c in text) or not _is_unicode(text):
        raise SourceError(f"That model name is not valid (longer than {MAX_SOURCE_LEN} characters, or a control character or "
                          "invalid Unicode in it). Give a preset's Hub id, owner/name, or a folder.")

    preset = find_preset(family, text)
    if preset is not None:
        if hub.reachable:
            return ResolvedSource(text, family, SourceKind.HUB, preset.hub_id, "Hub reachable", preset)
        cached = cached_snapshot(preset.hub_id, settings.hf_cache, preset.revision)
        if cached is not None:
            return ResolvedSource(text, family, SourceKind.HUB_CACHE, str(cached), f"offline ({hub.reason}); prefetched copy", preset)
        folder = embedded_folder(preset, settings)
        return ResolvedSource(
            text, family, SourceKind.EMBEDDED, str(folder),
            f"offline ({hub.reason}); embedded counterpart, a small teaching model trained here"
            if preset.train_command else f"offline ({hub.reason}); vendored copy of the real files",
            preset,
        )

    if _looks_like_path(text):
        folder = validate_local_folder(text, settings)
        kind = SourceKind.EMBEDDED if folder.is_relative_to(settings.assets_dir.resolve()) else SourceKind.LOCAL
        return ResolvedSource(text, family, kind, str(folder), "local folder")

    if is_hub_id(text):
        if hub.reachable:
            return ResolvedSource(text, family, SourceKind.HUB, text, "Hub reachable")
        cached = cached_snapshot(text, settings.hf_cache)
        if cached is not None:
            return ResolvedSource(text, family, SourceKind.HUB_CACHE, str(cached), f"offline ({hub.reason}); prefetched copy")
        raise SourceError(
            f"{text!r} is not in the local cache and the Hub cannot be reached ({hub.reason}). "
            f"Run `python -m playground.prefetch --family {family.value} {text}` while online, "
            "or choose a preset, which runs offline."
        )

    names = ", ".join(p.hub_id for p in presets_of(family))
    raise SourceError(
        f"{text!r} is neither a Hub id (owner/name), nor a preset ({names}), nor an existing folder."
    )
