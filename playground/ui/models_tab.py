"""Models tab: the presets and what each resolves to, the models in memory, and a loader form."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from playground.core.inputs import require_text
from playground.models import Family, ModelLoader
from playground.models.sources import MAX_SOURCE_LEN
from playground.models.zerogpu import gpu_task
from playground.ui.common import TabView, bind, launch_alone, on_page_load, progress_fn, user_errors
from playground.ui.visitor_limits import LIGHT

EXPLAINER = """
### One loader behind every tab
Every tab asks one shared loader for its models. A model loads **on first use** (nothing loads at
start-up), is **cached**, and two requests for the same model load it **once**. Past the memory
budget (`PLAYGROUND_MEMORY_GB`) the least recently used model is evicted.

A **preset** is addressed by its Hub id (`gpt2`, `bert-base-uncased`, `t5-small`, ...). With the
Hugging Face Hub in reach it loads the real model; offline it runs on a small **embedded teaching
model** trained by this project (not OpenAI's GPT-2 nor Google's BERT or T5), or on a copy that
`python -m playground.prefetch` put in the cache beforehand.
"""

PRESET_COLUMNS = ["family", "preset (Hub id)", "kind", "resolves to", "why", "about", "pinned to commit"]
LOADED_COLUMNS = ["requested", "family", "kind", "location", "load s", "parameters", "device", "dtype", "MB", "eager attention"]


def _hub_line(loader: ModelLoader) -> str:
    status = loader.hub_status()
    state = "reachable" if status.reachable else "not reachable"
    used = loader.memory_used() / 2**30
    kept = len(loader.results)
    return (
        f"**Hub:** {state} ({status.reason}). **Device:** `{loader.device}`. "
        f"**Memory:** {used:.2f} of {loader.settings.memory_gb:g} GiB budget used (models, and {kept} sessions' kept results)."
    )


def models_snapshot(loader: ModelLoader) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """(status line, presets table, loaded-models table) as the tab shows them."""
    presets = pd.DataFrame(
        [[r.family, r.hub_id, r.kind, r.resolves_to, r.why, r.about, r.revision[:12]] for r in loader.preset_rows()], columns=PRESET_COLUMNS
    )
    loaded = pd.DataFrame(
        [
            [m.requested, m.family, m.kind, m.location, m.load_seconds, f"{m.n_params:,}", m.device, m.dtype, m.memory_mb, m.attention]
            for m in loader.loaded()
        ],
        columns=LOADED_COLUMNS,
    )
    return _hub_line(loader), presets, loaded


@user_errors
def on_load_model(loader: ModelLoader, family: str, source: str, attention: bool, progress=gr.Progress()):
    """Load `source` as a `family` model through the shared loader; (message, status, presets, loaded)."""
    family_value = Family.parse(require_text(family, "family", max_chars=64))
    source = require_text(source, "source", max_chars=MAX_SOURCE_LEN)
    before = loader.load_count
    lm = loader.load(source, family_value, attention=bool(attention), progress=progress_fn(progress))
    if loader.load_count == before:  # a cache hit: its load time is the first load's, long ago
        message = f"**{lm.source.describe()}** is already in memory (it loaded in {lm.load_seconds:.2f} s the first time)."
    else:
        message = f"Loaded **{lm.source.describe()}** in {lm.load_seconds:.2f} s."
    return (message, *models_snapshot(loader))


def on_refresh(loader: ModelLoader) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """(status line, presets table, loaded-models table)."""
    return models_snapshot(loader)


def build_models_tab(loader: ModelLoader) -> TabView:
    """The Models tab; `loader` is the app's shared loader. Refreshes on page load."""
    with gr.Column():  # a column of the app's page (a nested gr.Blocks costs a whole app's setup)
        gr.Markdown(EXPLAINER)
        status = gr.Markdown()
        presets = gr.Dataframe(headers=PRESET_COLUMNS, label="Presets and the source each resolves to now", interactive=False, wrap=True,
                               max_height=2000, elem_id="models-presets",  # every preset in view: no inner scroll hiding the last rows
                               column_widths=["10%", "13%", "8%", "17%", "24%", "19%", "9%"])
        loaded = gr.Dataframe(headers=LOADED_COLUMNS, label="Models in memory", interactive=False, wrap=True, max_height=2000,
                              column_widths=["12%", "9%", "8%", "21%", "7%", "10%", "7%", "8%", "7%", "11%"])
        if not loader.settings.model_admin:
            gr.Markdown("Models load when a tab needs them. (The operator can enable a form to load any model by hand with "
                        "`PLAYGROUND_MODEL_ADMIN=1`; it is off so that no visitor can load or evict models for everyone.)")
        with gr.Row(visible=loader.settings.model_admin):
            family_in = gr.Dropdown([f.value for f in Family], value=Family.TOKENIZER.value, label="Family")
            source_in = gr.Textbox(label="Source: a preset's Hub id, a Hub id, or an allowed folder", value="gpt2", scale=3,
                                   max_length=MAX_SOURCE_LEN)
            attention_in = gr.Checkbox(label="eager attention (for attention maps)", value=False)
        with gr.Row():
            load_btn = gr.Button("Load", variant="primary", visible=loader.settings.model_admin)
            refresh_btn = gr.Button("Refresh")
        result = gr.Markdown()
        if loader.settings.model_admin:
            gr.Examples([["tokenizer", "gpt2"], ["tokenizer", "t5-small"], ["causal-lm", "gpt2"]], inputs=[family_in, source_in])

        snapshot = [status, presets, loaded]
        if loader.settings.model_admin:  # the operator's form; never an API endpoint
            load_btn.click(gpu_task(bind(on_load_model, loader)), [family_in, source_in, attention_in], [result, *snapshot],
                           api_visibility="private")
        refresh_btn.click(bind(on_refresh, loader), None, snapshot, api_name="models", **LIGHT)
        on_page_load(bind(on_refresh, loader), None, snapshot, api_visibility="private", **LIGHT)
    return TabView(inputs={}, run=())


if __name__ == "__main__":  # run this tab on its own
    launch_alone(build_models_tab)
