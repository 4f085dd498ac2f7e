"""The GPT tab's "KV cache, measured" section: generation with the cache and without it, step by step (`/kv_cache`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from playground.core.render.lm import line_chart_svg
from playground.core.text import kv_cache
from playground.models import ModelLoader
from playground.models.zerogpu import GpuBudget, gpu_task
from playground.ui.common import api_endpoint, bind, clear_first, form_event, load_causal, user_errors

EXPLAINER = f"""
#### The KV cache, measured
To write token t, attention needs the keys and values of every token before it. **Without a cache** each step runs the
whole text again; **with one**, every layer keeps K and V of the tokens seen so far, and a step runs only the new token.
Here every step runs both ways: the time of each, the bytes the cache holds, and the largest difference between the two
logits (the same numbers, up to rounding). The cache grows by 2 (K and V) x layers x kv heads x d_head x bytes per number
per token. At most {kv_cache.MAX_NEW_TOKENS} new tokens (each also runs the whole text without the cache).
"""
BUDGET = GpuBudget(20, 0.5, "max_new_tokens")


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n / 2**10:,.1f} KiB"


def summary(name: str, run: kv_cache.CacheRun) -> str:
    """What the cache holds for this model, the formula with its numbers, its size at long contexts, GQA's saving."""
    per = run.bytes_per_token
    formula = f"2 x {run.layers} layers x {run.kv_heads} kv heads x {run.d_head} (d_head) x {run.itemsize} bytes ({run.dtype})"
    grouped = (f"Grouped-query attention: {run.heads} query heads share {run.kv_heads} key/value heads, a cache "
               f"{run.gqa_saving:g}x smaller than full multi-head attention's ({_mib(per * run.gqa_saving)} a token)."
               if run.kv_heads < run.heads else
               f"Every one of the {run.heads} heads has its own keys and values (multi-head attention): no grouping, no saving.")
    long = ", ".join(f"{_mib(run.at(n))} at {n:,} tokens" for n in kv_cache.LONG_CONTEXTS)
    if run.context < max(kv_cache.LONG_CONTEXTS):
        long += f" (the formula's figures: this model reads at most {run.context:,} tokens)"
    last = run.steps[-1]
    later = sorted(s.ms_uncached / max(1e-9, s.ms_cached) for s in run.steps[1:]) or [1.0]
    speed = later[len(later) // 2]
    return "\n\n".join([
        f"Running {name}. **{per:,} bytes a token** = {formula}. The cache held {last.cache_tokens} tokens, "
        f"{_mib(last.cache_bytes)} (measured from its tensors), at the last step; from this config, {long} (one sequence).",
        grouped,
        f"Cached and uncached logits agree to **{run.max_abs_logit_diff:.2e}** at most. After the first step (the prompt, the "
        f"same work both ways) a step without the cache took {speed:.1f}x the time of one with it (the median; each step timed "
        "as the best of a few runs). On a small model and a short text the two are close, a step being mostly fixed costs; "
        "without the cache the cost grows with the text (GPT-2-small's architecture at 1,000 tokens: 48 ms a step with the "
        "cache, 1,858 ms without, `benchmarks/kv_cache.py`).",
        *run.notes,
    ])


def chart(run: kv_cache.CacheRun) -> str:
    xs = [s.index + 1 for s in run.steps]
    return line_chart_svg({"with the cache": (xs, [s.ms_cached for s in run.steps]),
                           "without: the whole text again": (xs, [s.ms_uncached for s in run.steps])},
                          "step", "ms per step", width=520, height=260)


def table(run: kv_cache.CacheRun) -> pd.DataFrame:
    return pd.DataFrame([[s.index + 1, s.token, s.cache_tokens, f"{s.cache_bytes:,}", f"{s.ms_cached:.1f}", f"{s.ms_uncached:.1f}",
                          f"{s.max_abs_diff:.1e}"] for s in run.steps],
                        columns=["step", "token", "cache tokens", "cache bytes", "ms cached", "ms uncached", "max |Δ logit|"])


@dataclass(frozen=True)
class KVCacheRequest:
    """One measured generation, as the page (or /kv_cache) asks it."""

    model: str  # a causal LM: preset, Hub id, folder, or SESSION_GPT
    prompt: str  # what it continues
    max_new_tokens: Any = 32  # steps, each run with and without the cache


@dataclass(frozen=True)
class KVCacheView:
    summary: str  # markdown
    chart: str  # SVG: ms per step, cached and uncached
    steps: Any  # table

    def outputs(self) -> tuple:
        return self.summary, self.chart, self.steps


@user_errors
def on_measure(loader: ModelLoader, request: KVCacheRequest, trained: Any = None, progress=gr.Progress()) -> tuple:
    """KVCacheView's outputs: the summary, the time chart, the per-step table."""
    name, lm = load_causal(loader, request.model, progress, trained)
    run = kv_cache.measure(lm.model, lm.tokenizer, request.prompt, request.max_new_tokens)
    return KVCacheView(summary(lm.source.describe() if hasattr(lm.source, "describe") else name, run), chart(run), table(run)).outputs()


@user_errors
def kv_cache_api(loader: ModelLoader, model: str, prompt: str, max_new_tokens: int = 32) -> dict:
    """Greedy generation, each step with the KV cache and without it.

    Returns {"tokens", "steps": [{"cache_tokens", "cache_bytes", "ms_cached", "ms_uncached"}], "max_abs_logit_diff",
    "layers", "kv_heads", "heads", "d_head", "bytes_per_token", "prompt_tokens", "dtype"}.
    """
    _, lm = load_causal(loader, model)
    return kv_cache.measure(lm.model, lm.tokenizer, prompt, max_new_tokens).to_json()


def build_kv_cache_section(loader: ModelLoader, model: gr.Dropdown, trained: gr.State | None = None) -> Any:
    """The section, reading the GPT tab's model choice. Named API endpoint: `/kv_cache`. Returns its Form."""
    with gr.Accordion("The KV cache, measured", open=False, elem_id="kv-section"):
        gr.Markdown(EXPLAINER)
        with gr.Row():
            prompt = gr.Textbox(label="Prompt", value="ROMEO.\nBut soft, what light through yonder window breaks?\n", lines=2, scale=3,
                                max_length=kv_cache.MAX_PROMPT_CHARS, elem_id="kv-prompt")
            steps = gr.Slider(1, kv_cache.MAX_NEW_TOKENS, value=32, step=1, label="New tokens", elem_id="kv-steps")
        run = gr.Button("Generate with the cache and without it", elem_id="kv-run")
        summary_md = gr.Markdown(elem_id="kv-summary")
        timing = gr.HTML(elem_id="kv-chart")
        rows = gr.Dataframe(label="Every step", interactive=False, elem_id="kv-table", max_height=400)
        form = form_event(gpu_task(bind(on_measure, loader), BUDGET), KVCacheRequest,
                          {"model": model, "prompt": prompt, "max_new_tokens": steps}, *([trained] if trained is not None else []))
        clear_first(run.click, [summary_md]).then(form.event, form.inputs, [summary_md, timing, rows], api_visibility="private")
        api_endpoint(kv_cache_api, loader, api_name="kv_cache", budget=BUDGET)
    return form
