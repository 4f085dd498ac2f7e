"""The app shell: assembles the tabs around one shared model loader. No model loads here.

A tab is one line in `TABS`: its title, its id, and its `build_*_tab(loader)` function, which returns a `TabView`
(the inputs a lesson link fills). Every tab gets a "link to this view" row; the page's own address can hold a
lesson link (`?tab=attention&model=gpt2&text=...`), opened on load (`ui/links.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from playground.config import Settings
from playground.models import ModelLoader
from playground.models.memory import return_large_blocks_to_the_system
from playground.ui import cache_files, visitor_limits
from playground.ui.attention_tab import build_attention_tab
from playground.ui.bert_tab import build_bert_tab
from playground.ui.diffusion_tab import build_diffusion_tab
from playground.ui.gpt_tab import build_gpt_tab
from playground.ui.inside_tab import build_inside_tab
from playground.ui.interventions_tab import build_interventions_tab
from playground.ui.links import LinkWiring, link_row, specs_of
from playground.ui.models_tab import build_models_tab
from playground.ui.start_tab import build_start_tab
from playground.ui.t5_tab import build_t5_tab
from playground.ui.text_to_image_tab import build_text_to_image_tab
from playground.ui.tokenizer_tab import build_tokenizer_tab
from playground.ui.training_tab import build_training_tab

TITLE = "Foundation Model Playground"
HEADER = f"""
# {TITLE}
See how Transformer and Diffusion models work, on live models. Offline, every tab runs on small
**teaching models trained by this project** (see the Models tab for what actually runs).
"""


@dataclass(frozen=True)
class TabSpec:
    title: str  # the tab's label
    id: str  # its id (gr.Tabs(selected=...) and the browser tests use it)
    build: Callable[..., Any]  # lays the tab out inside the current Blocks: build(loader) or build(loader, trained)
    trained: bool = False  # the tab reads (or, Training, writes) the session's tiny GPT: it gets that state too


TABS: tuple[TabSpec, ...] = (
    TabSpec("Start", "start", build_start_tab),
    TabSpec("Tokenizer", "tokenizer", build_tokenizer_tab),
    TabSpec("Attention", "attention", build_attention_tab),
    TabSpec("Inside", "inside", build_inside_tab, trained=True),
    TabSpec("Interventions", "interventions", build_interventions_tab, trained=True),
    TabSpec("GPT", "gpt", build_gpt_tab, trained=True),
    TabSpec("BERT", "bert", build_bert_tab),
    TabSpec("T5", "t5", build_t5_tab),
    TabSpec("Diffusion", "diffusion", build_diffusion_tab),
    TabSpec("Text-to-image", "text-to-image", build_text_to_image_tab),
    TabSpec("Training", "training", build_training_tab, trained=True),
    TabSpec("Models", "models", build_models_tab),
)


def build_app(settings: Settings, loader: ModelLoader | None = None, tabs: tuple[TabSpec, ...] = TABS) -> gr.Blocks:
    """The whole app as a `gr.Blocks`, queued, not launched. Nothing is loaded until first use."""
    loader = loader or ModelLoader(settings)
    return_large_blocks_to_the_system()  # big arrays freed by a request go back to the system: memory levels off
    cache_files.install()  # pictures sent to the page are never rewritten in place while a browser reads them
    # temporary files (uploads, pictures sent to the page) older than an hour are deleted every half hour
    with gr.Blocks(title=TITLE, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(HEADER)
        # the tiny GPT a session trains (a handle to the loader's result store): per user, read by the GPT and Inside tabs
        trained = gr.State(None, time_to_live=3600, delete_callback=loader.results.drop)
        notice = gr.Markdown(elem_id="link-notice")  # what a lesson link opened, or why it was refused
        target = gr.Textbox(visible=False)  # the run buttons a lesson link clicks once its inputs are filled
        views = {}
        with gr.Tabs(elem_id="tabs") as tab_set:
            for spec in tabs:
                with gr.Tab(spec.title, id=spec.id, elem_id=f"tab-{spec.id}"):
                    views[spec.id] = spec.build(loader, trained) if spec.trained else spec.build(loader)
                    link_row(spec.id, views[spec.id], specs_of({spec.id: views[spec.id]}))
        wiring = LinkWiring(tab_set, notice, target, views)
        wiring.wire(demo)
        demo.link_specs = wiring.specs  # each tab's link inputs and their limits (the workshop check and tests read them)
        demo.link_wiring = wiring  # opens a page address's lesson link (tests call it as the page load does)
        demo.tab_views = views  # each tab's TabView: its inputs and the Forms its run buttons submit (the workshop check runs them)
    # heavy jobs share a small pool; each visitor, each address and each line (light, heavy, training) is bounded
    # (ui/visitor_limits.py), so a flood cannot pile up and no visitor's quick request waits behind another's work
    limits = settings.queue_limits
    demo.queue(default_concurrency_limit=settings.max_concurrency,
               max_size=limits.heavy_waiting + limits.training_waiting + limits.light_waiting)
    visitor_limits.install(demo, limits)
    return demo
