"""A tab whose interactive part is still being built: it explains the concept meanwhile.

Each entry here goes when its tab goes live.
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from playground.models import ModelLoader


def build_upcoming_tab(loader: ModelLoader, concept: str) -> gr.Blocks:
    """The concept's explanation and a note; `loader` is unused until the tab is built."""
    with gr.Blocks() as tab:
        gr.Markdown(concept)
        gr.Markdown("*The interactive part of this tab is being built; its models already load in the Models tab.*")
    return tab


def builder(concept: str) -> Callable[[ModelLoader], gr.Blocks]:
    """A `build_*_tab(loader)` function for an upcoming tab that explains `concept`."""

    def build(loader: ModelLoader) -> gr.Blocks:
        return build_upcoming_tab(loader, concept)

    return build


DIFFUSION = """
### Diffusion: denoising step by step
Training adds Gaussian noise to images step by step (the forward process) and teaches a UNet to
predict that noise. Sampling runs it in reverse: from pure noise, remove a little predicted noise
per step. Guidance steers towards a prompt; latent diffusion denoises in an autoencoder's latents.
"""
