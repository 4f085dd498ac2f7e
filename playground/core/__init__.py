"""Compute modules: take data, return data (dataclasses). They never import gradio."""
