"""The Foundation Model Playground: see how Transformer and Diffusion models work, on live models.

Packages:
- `playground.models`: the one shared model loader (sources, presets, device, cache, budget).
- `playground.core`: compute, no gradio: tokenization, rendering of visualizations.
- `playground.ui`: one module per tab, each a `build_*_tab(...)`; `build_app` assembles them.
- `playground.train`: reproducible training of the embedded models shipped in `assets/`.
"""

__version__ = "0.1.0"
