"""Interventions tab ("What if we change it?"): knock out heads, patch activations, take the attention sink away."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from playground.core.render import interventions as views
from playground.core.text import interventions
from playground.errors import InputError
from playground.models import ModelLoader
from playground.models.zerogpu import GpuBudget, gpu_task
from playground.ui.common import (
    SESSION_GPT,
    TabView,
    api_endpoint,
    bind,
    clear_first,
    examples,
    form_event,
    launch_alone,
    load_causal,
    progress_fn,
    user_errors,
)

EXPLAINER = f"""
### What if we change it? Test a claim about a model by changing one thing inside it
The Attention and Inside tabs show what a model computes; they do not show what **matters**. Here you change the
running model, for this request only, and watch its next-token prediction:
**knock out** a head (its output z = Σ_j α_ij v_j, before the output projection, set to 0, or to its mean over the
text's positions), **patch** activations from a clean prompt into a corrupted one (how much of the clean answer comes
back, and from which layer and position), or take away the attention every head parks on the **first token** (the
"attention sink"). Nothing is changed for anyone else: the forward pass is written out and reads the weights only.

Limits: a text of at most {interventions.MAX_TOKENS} tokens for one knock-out or the sink (a longer one keeps its end);
the sweep and the patching maps run one pass per cell, so they read at most {interventions.MAX_GRID_TOKENS} tokens
(the sweep keeps the end; patching refuses longer prompts). Models: GPT-2-family decoders (gpt2, offline the small GPT
trained here on Shakespeare, your tiny GPT from the Training tab) and Llama-family ones (a folder or Hub id; with
grouped-query attention a head is a query head). Layers and heads count from 0.
"""
MODEL_CHOICES = ["gpt2", "HuggingFaceTB/SmolLM2-135M", SESSION_GPT]
# offline, gpt2 is the embedded Shakespeare GPT: these prompts have a clear next token there (its tests check them);
# the last one is the indirect-object prompt of Wang et al. (2022), for the real gpt2 on the Hub
ABLATE_EXAMPLES = [
    ["gpt2", "I am Lord Angelo's man. Lord", "0.2, 3.2"],
    ["gpt2", "Nurse.\nNay, he's a flower, in faith, a very flower.\n\nLady", "3.1"],
    ["gpt2", "When Mary and John went to the store, John gave a drink to", "9.6, 9.9, 10.0"],
]
PATCH_EXAMPLES = [
    ["gpt2", "I am Lord Angelo's man. Lord", "I am Lord John's man. Lord", "Angelo", "John"],
    ["gpt2", "When Mary and John went to the store, John gave a drink to",
     "When Mary and John went to the store, Mary gave a drink to", "Mary", "John"],
]
SINK_EXAMPLES = [
    ["gpt2", "Friends, Romans, countrymen, lend me your"],
    ["gpt2", "Nurse.\nNay, he's a flower, in faith, a very flower.\n\nLady"],
]
MODES = [("Zero: z = 0", "zero"), ("Mean: z = its mean over the text's positions", "mean")]
WHATS = [("Residual stream: layer x position", "residual"), ("Heads: layer x head", "heads")]
BUDGET = GpuBudget(30)
GRID_BUDGET = GpuBudget(60)
_DOWNLOADS = Path(tempfile.gettempdir()) / "playground-interventions"


def _json_file(kind: str, data: dict) -> str:
    _DOWNLOADS.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkstemp(prefix=f"{kind}-", suffix=".json", dir=_DOWNLOADS)[1])
    path.write_text(json.dumps(data))
    return str(path)


@dataclass(frozen=True)
class AblateRequest:
    """Heads to knock out of one text (or `sweep`: every head alone), as the page or /ablate asks."""

    model: str  # a GPT-2-family preset, Hub id or folder, or SESSION_GPT
    text: str  # the model predicts the token after it
    heads: str  # "layer.head, ..." from 0, or "sweep"
    mode: str = "zero"  # "zero" or "mean"
    top_k: Any = interventions.TOP_K  # candidates shown before and after


@dataclass(frozen=True)
class PatchRequest:
    """A clean and a corrupted prompt of the same token length, and the two answers the logit difference compares."""

    model: str
    clean: str  # the prompt whose answer is right
    corrupt: str  # the same prompt with one thing changed
    answer: str  # one token: the clean prompt's answer
    wrong: str  # one token: the corrupted prompt's answer
    what: str = "residual"  # "residual" (layer x position) or "heads" (layer x head)


@dataclass(frozen=True)
class SinkRequest:
    """A text, and the layers whose attention to the first token is taken away."""

    model: str
    text: str
    layers: str = "all"  # "all" or layer numbers from 0, comma-separated


@dataclass(frozen=True)
class ExperimentView:
    """What the page shows of one experiment: which model ran, the picture, and its numbers to download."""

    notice: str
    view: str  # HTML
    download: str | None  # a JSON file of the API's answer

    def outputs(self) -> tuple:
        return self.notice, self.view, self.download


def _is_sweep(heads: Any) -> bool:
    return isinstance(heads, str) and heads.strip().lower() == "sweep"


def ablate(loader: ModelLoader, request: AblateRequest, progress=None, trained: Any = None):
    """(the model's description, Ablation)."""
    _, lm = load_causal(loader, request.model, progress, trained)
    report = progress_fn(progress) if progress is not None else None
    if _is_sweep(request.heads):
        result = interventions.sweep(lm.model, lm.tokenizer, request.text, request.mode, request.top_k, progress=report)
    else:
        result = interventions.knock_out(lm.model, lm.tokenizer, request.text, request.heads, request.mode, request.top_k)
    return lm.source.describe(), result


@user_errors
def on_ablate(loader: ModelLoader, request: AblateRequest, trained: Any = None, progress=gr.Progress()) -> tuple:
    """ExperimentView's outputs: notice, before/after bars (or the sweep's two maps), the JSON download."""
    described, r = ablate(loader, request, progress, trained)
    view = views.sweep_html(r) if r.sweep else views.ablation_html(r)
    return ExperimentView(f"Running {described}.", view, _json_file("sweep" if r.sweep else "ablate", r.to_json())).outputs()


@user_errors
def on_patch(loader: ModelLoader, request: PatchRequest, trained: Any = None, progress=gr.Progress()) -> tuple:
    """ExperimentView's outputs: notice, the recovery map, the JSON download."""
    _, lm = load_causal(loader, request.model, progress, trained)
    r = interventions.patch(lm.model, lm.tokenizer, request.clean, request.corrupt, request.answer, request.wrong, request.what,
                            progress=progress_fn(progress) if progress is not None else None)
    return ExperimentView(f"Running {lm.source.describe()}.", views.patching_html(r), _json_file("patch", r.to_json())).outputs()


@user_errors
def on_sink(loader: ModelLoader, request: SinkRequest, trained: Any = None, progress=gr.Progress()) -> tuple:
    """ExperimentView's outputs: notice, the sink map and the before/after bars, the JSON download."""
    _, lm = load_causal(loader, request.model, progress, trained)
    r = interventions.sink(lm.model, lm.tokenizer, request.text, request.layers)
    return ExperimentView(f"Running {lm.source.describe()}.", views.sink_html(r), _json_file("sink", r.to_json())).outputs()


# ---- the API ----------------------------------------------------------------------------------------------------


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name} must be text, got {type(value).__name__}.")
    return value


@user_errors
def ablate_api(loader: ModelLoader, model: str, text: str, heads: str, mode: str = "zero", top_k: int = 10) -> dict:
    """Knock heads out of `model` reading `text` and compare its next-token prediction: `heads` is "layer.head, ..."
    (from 0) or "sweep" (every head alone); `mode` "zero" or "mean".

    Returns {"tokens", "heads", "mode", "clean", "ablated" (top-k {token, prob}; null for a sweep), "clean_token",
    "delta_logprob", "kl" (floats, or [layer][head] for a sweep), "truncated"}.
    """
    request = AblateRequest(_text(model, "model"), _text(text, "text"), _text(heads, "heads"), mode, top_k)
    return ablate(loader, request)[1].to_json()


@user_errors
def patch_api(loader: ModelLoader, model: str, clean: str, corrupt: str, answer: str, wrong: str, what: str = "residual") -> dict:
    """Run the corrupted prompt with clean activations patched in, one cell at a time: `what` "residual" (the residual
    stream entering each layer, at one position: [layer][position]) or "heads" (one head's output: [layer][head]).

    Returns {"tokens", "corrupt_tokens", "what", "ld_clean", "ld_corrupt", "recovery", "answer_id", "wrong_id", "answer",
    "wrong"}; recovery = (LD_patched − LD_corrupt) / (LD_clean − LD_corrupt), LD = logit(answer) − logit(wrong).
    """
    _, lm = load_causal(loader, _text(model, "model"))
    return interventions.patch(lm.model, lm.tokenizer, clean, corrupt, answer, wrong, what).to_json()


@user_errors
def sink_api(loader: ModelLoader, model: str, text: str, layers: str = "all") -> dict:
    """Take the attention on the first token away (α_i0 = 0, rows renormalized) in `layers` ("all" or "0, 2").

    Returns {"tokens", "layers", "sink_share" ([layer][head]: mean attention on the first token), "clean",
    "knocked_out" (top-k {token, prob}), "bits_per_char_clean", "bits_per_char_knocked_out", "truncated"}.
    """
    _, lm = load_causal(loader, _text(model, "model"))
    return interventions.sink(lm.model, lm.tokenizer, text, layers).to_json()


# ---- layout and wiring ------------------------------------------------------------------------------------------


def build_interventions_tab(loader: ModelLoader, trained: gr.State | None = None) -> TabView:
    """Interventions. Named API endpoints: `/ablate`, `/patch`, `/sink`. `trained`: the session's tiny GPT."""
    mine = [trained] if trained is not None else []
    with gr.Column():
        gr.Markdown(EXPLAINER)
        model = gr.Dropdown(MODEL_CHOICES, value=MODEL_CHOICES[0], allow_custom_value=True, elem_id="iv-model",
                            label="Model: gpt2, your tiny GPT from the Training tab, or another GPT-2- or Llama-family id or folder")
        notice = gr.Markdown(elem_id="iv-notice")

        with gr.Accordion("1. Knock out heads", open=True, elem_id="iv-ablate-section"):
            gr.Markdown("Name heads as layer.head (from 0), several at once, and compare the next-token prediction with "
                        "and without them. **Sweep** knocks out every head alone and maps the effect: which heads matter "
                        "for this text. Predict first: which head do you think the answer depends on?")
            text = gr.Textbox(label="Text (the model predicts the token after it)", lines=3, value=ABLATE_EXAMPLES[0][1],
                              max_length=interventions.MAX_TEXT_CHARS, elem_id="iv-text")
            with gr.Row():
                heads = gr.Textbox(label="Heads to knock out: layer.head, comma-separated (or sweep)", value=ABLATE_EXAMPLES[0][2], scale=2,
                                   elem_id="iv-heads")
                mode = gr.Radio(MODES, value="zero", label="Knock out by", scale=3, elem_id="iv-mode")
            examples(ABLATE_EXAMPLES, [model, text, heads], "Examples (offline, gpt2 is the small Shakespeare GPT; the last is for "
                     "the real gpt2)", text=1)
            with gr.Row():
                knock = gr.Button("Knock out these heads", variant="primary", elem_id="iv-ablate")
                sweep = gr.Button("Sweep: every head alone", elem_id="iv-sweep")
            ablated = gr.HTML(elem_id="iv-ablate-view")
            ablate_file = gr.File(label="Download the numbers (JSON)", elem_id="iv-ablate-file")

        with gr.Accordion("2. Patch activations", open=True, elem_id="iv-patch-section"):
            gr.Markdown("Two prompts that differ in one place, and the answer each should get. Each cell of the map runs "
                        "the corrupted prompt with one activation taken from the clean run: where that brings the clean "
                        "answer back, the information is there. The prompts must have the same number of tokens; "
                        "answers are one token each (a word after a space is read with its space).")
            with gr.Row():
                clean = gr.Textbox(label="Clean prompt", lines=3, value=PATCH_EXAMPLES[0][1], elem_id="iv-clean",
                                   max_length=interventions.MAX_TEXT_CHARS)
                corrupt = gr.Textbox(label="Corrupted prompt", lines=3, value=PATCH_EXAMPLES[0][2], elem_id="iv-corrupt",
                                     max_length=interventions.MAX_TEXT_CHARS)
            with gr.Row():
                answer = gr.Textbox(label="Answer (clean)", value=PATCH_EXAMPLES[0][3], elem_id="iv-answer", max_length=100)
                wrong = gr.Textbox(label="Wrong answer (corrupted)", value=PATCH_EXAMPLES[0][4], elem_id="iv-wrong", max_length=100)
                what = gr.Radio(WHATS, value="residual", label="Patch", elem_id="iv-what", scale=2)
            examples(PATCH_EXAMPLES, [model, clean, corrupt, answer, wrong], "Examples", text=1)
            patch = gr.Button("Patch every cell", variant="primary", elem_id="iv-patch")
            patched = gr.HTML(elem_id="iv-patch-view")
            patch_file = gr.File(label="Download the numbers (JSON)", elem_id="iv-patch-file")

        with gr.Accordion("3. Attention sinks", open=True, elem_id="iv-sink-section"):
            gr.Markdown("Many heads put much of their attention on the first token, whatever it is (Xiao et al. 2023 call it "
                        "an attention sink). Is that attention doing anything? Take it away (α_i0 = 0, the rest of each row "
                        "renormalized) and read the prediction and how well the model predicts the whole text (bits per "
                        "character: lower is better). GPT-2 reads no start token, so the sink is the text's first word; the "
                        "small offline GPT leans on it a little, trained models of gpt2's size far more (Xiao et al. 2023).")
            sink_text = gr.Textbox(label="Text", lines=3, value=SINK_EXAMPLES[0][1], elem_id="iv-sink-text",
                                   max_length=interventions.MAX_TEXT_CHARS)
            layers = gr.Textbox(label="Layers to knock out: all, or numbers from 0 (e.g. 0, 2)", value="all", elem_id="iv-sink-layers")
            examples(SINK_EXAMPLES, [model, sink_text], "Examples", text=1)
            sink = gr.Button("Knock out the first token", variant="primary", elem_id="iv-sink")
            sunk = gr.HTML(elem_id="iv-sink-view")
            sink_file = gr.File(label="Download the numbers (JSON)", elem_id="iv-sink-file")

        run_ablate = gpu_task(bind(on_ablate, loader), BUDGET)
        knock_form = form_event(run_ablate, AblateRequest, {"model": model, "text": text, "heads": heads, "mode": mode}, *mine)
        sweep_form = form_event(run_ablate, sweep_request, {"model": model, "text": text, "mode": mode}, *mine)
        patch_form = form_event(gpu_task(bind(on_patch, loader), GRID_BUDGET), PatchRequest,
                                {"model": model, "clean": clean, "corrupt": corrupt, "answer": answer, "wrong": wrong, "what": what}, *mine)
        sink_form = form_event(gpu_task(bind(on_sink, loader), BUDGET), SinkRequest,
                               {"model": model, "text": sink_text, "layers": layers}, *mine)
        wiring = ((knock, knock_form, [notice, ablated, ablate_file]), (sweep, sweep_form, [notice, ablated, ablate_file]),
                  (patch, patch_form, [notice, patched, patch_file]), (sink, sink_form, [notice, sunk, sink_file]))
        for button, form, outputs in wiring:
            clear_first(button.click, [notice]).then(form.event, form.inputs, outputs, api_visibility="private")

        api_endpoint(ablate_api, loader, api_name="ablate", budget=GRID_BUDGET)
        api_endpoint(patch_api, loader, api_name="patch", budget=GRID_BUDGET)
        api_endpoint(sink_api, loader, api_name="sink", budget=BUDGET)
    # a link fills the model, a text and heads (`sweep` for every head alone) and runs the knock-out
    return TabView(inputs={"model": model, "text": text, "heads": heads}, run=("iv-ablate",),
                   forms={"iv-ablate": knock_form, "iv-sweep": sweep_form, "iv-patch": patch_form, "iv-sink": sink_form})


def sweep_request(model: str, text: str, mode: str) -> AblateRequest:
    """The sweep button's request: every head alone."""
    return AblateRequest(model=model, text=text, heads="sweep", mode=mode)


if __name__ == "__main__":  # run this tab on its own
    launch_alone(build_interventions_tab)
