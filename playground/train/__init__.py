"""Reproducible training of the embedded models in assets/models/ (one module per model)."""
