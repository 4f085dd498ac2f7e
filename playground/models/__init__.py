"""The shared model loader and what it is built from (no gradio here)."""

from playground.models.loader import LoadedModel, LoadError, ModelInfo, ModelLoader, PipelineInfo, PresetRow
from playground.models.presets import PRESETS, Family, Preset, find_preset, presets_of
from playground.models.sources import ResolvedSource, SourceError, SourceKind, resolve_source

__all__ = [
    "PRESETS", "Family", "LoadError", "LoadedModel", "ModelInfo", "ModelLoader", "PipelineInfo", "Preset", "PresetRow",
    "ResolvedSource", "SourceError", "SourceKind", "find_preset", "presets_of", "resolve_source",
]
