"""The app shell: assembles the tabs around one shared model loader. No model loads here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from playground.config import ASSETS_DIR, Settings
from playground.models import ModelLoader
from playground.ui import upcoming
from playground.ui.models_tab import build_models_tab
from playground.ui.tokenizer_tab import build_tokenizer_tab

TITLE = "Foundation Model Playground"
HEADER = f"""
# {TITLE}
See how Transformer and Diffusion models work, on live models. Offline, every tab runs on small
**teaching models trained by this project** (see the Models tab for what actually runs).
"""


def build_app(settings: Settings, loader: ModelLoader | None = None) -> gr.Blocks:
    """The whole app as a `gr.Blocks`, queued, not launched. Nothing is loaded until first use."""
    loader = loader or ModelLoader(settings)
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(HEADER)
        with gr.Tabs():
            with gr.Tab("Tokenizer", id="tokenizer"):
                build_tokenizer_tab(loader)
            with gr.Tab("Attention", id="attention"):
                upcoming.build_upcoming_tab(upcoming.ATTENTION)
            with gr.Tab("GPT", id="gpt"):
                upcoming.build_upcoming_tab(upcoming.GPT)
            with gr.Tab("BERT", id="bert"):
                upcoming.build_upcoming_tab(upcoming.BERT)
            with gr.Tab("T5", id="t5"):
                upcoming.build_upcoming_tab(upcoming.T5)
            with gr.Tab("Diffusion", id="diffusion"):
                upcoming.build_upcoming_tab(upcoming.DIFFUSION)
            with gr.Tab("Models", id="models"):
                build_models_tab(loader)
    # heavy jobs share a small pool; the waiting line is bounded so a flood cannot pile up
    demo.queue(default_concurrency_limit=settings.max_concurrency, max_size=64)
    return demo


def launch_options() -> dict[str, Any]:
    """What `launch()` needs so the page works offline: a theme with system fonts (no Google
    Fonts CDN) and the local stylesheet."""
    system = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
    return {
        "theme": gr.themes.Soft(font=system, font_mono=mono),
        "css_paths": [Path(ASSETS_DIR / "style.css")],
    }
