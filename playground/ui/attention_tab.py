"""Attention tab: per layer and head, for encoders, decoders and encoder-decoders, on live models."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from playground.core.inputs import require_choice
from playground.core.render import attention as attention_views
from playground.core.text import attention
from playground.errors import InputError
from playground.models import Family, ModelLoader
from playground.models.results import resolve
from playground.models.zerogpu import gpu_task
from playground.ui.common import (
    TabView,
    api_endpoint,
    bind,
    clear_first,
    examples,
    form_event,
    launch_alone,
    layer_head_link_check,
    load_transformer,
    png_file,
    user_errors,
)

EXPLAINER = """
### Attention: how each token gathers context
Every layer turns each token into a **query** (what am I looking for?), a **key** (what do I
offer?) and a **value** (what do I pass on?). Token *i* scores every token *j* by the dot product of
its query with *j*'s key, and a **softmax** turns the scores into weights α_ij that sum to 1 (one
row of the heatmap). Its new vector is the α-weighted sum of the values. A layer runs several
**heads** in parallel, each free to learn its own pattern (previous token, same word, a verb's
subject ...).

- An **encoder** (BERT) lets every token look both ways. A **decoder** (GPT) hides the future: the
  **causal mask** sets the scores of later tokens to −∞, so the upper triangle is zero.
- An **encoder-decoder** (T5) adds **cross-attention**: each output token (row) looks at the input
  tokens (columns) it is translating or transforming.
- **A weight is not a contribution.** What token *j* actually sends is α_ij times its projected
  value vector f(x_j); the *value-weighted* view shows ‖α_ij f(x_j)‖ (Kobayashi et al. 2020).
  Many heads park attention on the first token or [SEP] (an "attention sink") whose value vector
  is small: high weight, little effect. The model view's orange bars show each head's sink share.

Run a text, then switch view, layer and head; click a tile of the model view to open that head.
A map is a claim about what a head does; to test it, knock the head out (or the sink away) in the
**Interventions** tab and watch the prediction.
"""

MODEL_CHOICES = ["bert-base-uncased", "gpt2", "t5-small"]
EXAMPLES = [  # every one reads in the embedded models' vocabularies (no <unk>), so they work offline too
    ["bert-base-uncased", "The animal didn't cross the street because it was too tired.", ""],  # pronoun -> antecedent
    ["gpt2", "The keys to the old wooden cabinet in the hall are on the table.", ""],  # long-range agreement
    ["bert-base-uncased", "ROMEO. But soft, what light through yonder window breaks? It is the east, and Juliet is the sun.", ""],
    ["t5-small", "reverse words: red cat blue dog", "dog blue cat red"],  # the embedded T5's own task: cross-attention runs backwards
    ["t5-small", "sort numbers: 42 7 19 3", "3 7 19 42"],  # each output number looks up where it sat in the input
]
HUB_EXAMPLES = [  # Google's t5-small translates; the embedded t5-tasks reads these as mostly <unk>
    ["t5-small", "translate English to German: The house is wonderful.", "Das Haus ist wunderbar."],  # a translation pair
]
VIEW_CHOICES = [("One head", "head"), ("Lines (head view)", "lines"), ("Mean over heads", "mean"), ("Rollout", "rollout"),
                ("Value-weighted vs raw", "value"), ("Encoder / decoder / cross (T5)", "kinds")]
_DOWNLOADS = Path(tempfile.gettempdir()) / "playground-attention"
STATE_TTL_S = 3600  # seconds a session's last result is kept after its last use


def _load(loader: ModelLoader, model: Any, progress=None):
    return load_transformer(loader, model, (Family.MASKED_LM, Family.ENCODER, Family.CAUSAL_LM, Family.SEQ2SEQ),
                            f"a transformer such as {', '.join(MODEL_CHOICES)}", attention=True, progress=progress)


def compute(
    loader: ModelLoader, model: str, text: str, target_text: str = "", max_tokens: int | None = None, progress=None
) -> attention.AttentionResult:
    """Load `model` with eager attention and run one forward pass (see `core.attention.run_attention`)."""
    max_tokens = max_tokens or loader.settings.attention_max_tokens
    attention.check_request(text, target_text, max_tokens)  # before loading: a bad request should not cost a model load
    name, lm = _load(loader, model, progress)
    result = attention.run_attention(lm.model, lm.tokenizer, text, target_text, max_tokens=max_tokens, name=name)
    result.notes.insert(0, f"Running {lm.source.describe()}.")
    depth = lm.depth_note(len(result.tokens))
    if depth:
        result.notes.insert(1, depth)
    return result


# ---- event handlers: loader and plain values in, values for the outputs out -----------------------


@dataclass(frozen=True)
class AttentionRequest:
    """One forward pass with attention weights, as the page asks it."""

    model: str  # a transformer preset, Hub id or folder
    text: str  # the (encoder's) input
    target_text: str = ""  # an encoder-decoder's decoder input ("" for its own greedy output)
    max_tokens: Any = None  # the token cap (None: the server's setting)


@dataclass(frozen=True)
class AttentionRun:
    """What a run changes on the page, in the order of the event's outputs."""

    handle: Any  # the session's result in the server's store
    notice: str  # which model runs, what was cut, what a link asked for
    kind: Any  # the attention-kind picker's update (T5: encoder, decoder, cross)
    layer: Any  # the layer slider's update, fitted to the model
    head: Any  # the head slider's update
    focus: Any  # the focus-token picker's update: this text's tokens
    downloads: Any  # emptied: the old files are another text's
    view: Any  # the view picker's update: the views that apply to this model

    def outputs(self) -> tuple:
        return self.handle, self.notice, self.kind, self.layer, self.head, self.focus, self.downloads, self.view


@dataclass(frozen=True)
class ViewChoice:
    """Which view of a kept result the page shows (layers and heads from 1, as on the sliders)."""

    view: str = "head"  # one of VIEW_CHOICES' values
    kind: str = attention.ENCODER  # encoder, decoder or cross
    layer: Any = 1
    head: Any = 1
    all_heads: Any = False  # the lines view: every head of the layer
    focus: Any = ""  # a token to follow ("" for none)
    hide_special: Any = False
    pool_words: Any = False
    top_k: Any = 3  # lines per token (lines view)

    def view_request(self) -> attention_views.ViewRequest:
        return attention_views.ViewRequest(
            view=self.view,
            kind=self.kind,
            layer=_index(self.layer, "layer"),
            head=_index(self.head, "head"),
            all_heads=bool(self.all_heads),
            focus=self.focus or None,
            hide_special=bool(self.hide_special),
            pool_words=bool(self.pool_words),
            top_k=self.top_k,
        )


@user_errors
def on_run(loader: ModelLoader, request: AttentionRequest, previous: Any = None, wanted: Any = None, progress=gr.Progress()) -> tuple:
    """One forward pass: the AttentionRun's outputs. The result is kept for this session (in the server's memory budget;
    `previous`, the session's last one, is released); the kind / layer / head / focus controls are fitted to the model and
    the views to what applies (T5's three kinds only for an encoder-decoder). `wanted`: a lesson link's {"layer", "head"}
    (from 1), shown instead of the defaults when this model has them."""
    result = compute(loader, request.model, request.text, request.target_text, request.max_tokens, progress)
    handle = loader.keep_result(result, result.nbytes, "attention run", replaces=previous)
    kinds = attention_views.kinds_of(result)
    layers, heads = result.attentions[kinds[0]].shape[:2]
    layer, head = min(layers, max(1, layers // 2)), 1
    wanted = wanted if isinstance(wanted, dict) else {}
    for name, count in (("layer", layers), ("head", heads)):
        if name in wanted:
            if isinstance(wanted[name], int) and 1 <= wanted[name] <= count:
                layer, head = (wanted[name], head) if name == "layer" else (layer, wanted[name])
            else:
                result.notes.append(f"The link asked for {name} {wanted[name]!r}; this model has {count} {name}s, so it shows "
                                    f"{name} {layer if name == 'layer' else head}.")
    return AttentionRun(handle, "\n\n".join(result.notes), gr.update(choices=kinds, value=kinds[0]), gr.update(maximum=layers, value=layer),
                        gr.update(maximum=heads, value=head),
                        gr.update(choices=[("(none)", "")] + attention_views.focus_choices(result), value=""), None,
                        gr.update(choices=[(label, v) for label, v in VIEW_CHOICES if v in attention_views.views_of(result)], value="head")
                        ).outputs()


def _kept(result: Any) -> attention.AttentionResult:
    if result is None:
        raise InputError("Run a text first.")
    return resolve(result)


@user_errors
def on_view(choice: ViewChoice, result: Any) -> tuple:
    """The chosen view of the session's result as HTML, and the model-view mosaic of its kind."""
    result = _kept(result)
    req = choice.view_request()
    v = attention_views.build_view(result, req)
    m = attention_views.mosaic(result.attentions[req.kind], attention_views.sinks_of(result, req.kind), result.kv_heads)
    return attention_views.render_html(v), png_file(m.image)


@user_errors
def on_export(choice: ViewChoice, result: Any) -> list[str]:
    """Files to download: a PNG of the current view, and every weight as JSON and .npz (made on demand:
    the JSON of a 12x12-head model at 128 tokens holds 2.4 million numbers)."""
    result = _kept(result)
    png = _file(result, "view", ".png")
    attention_views.render_png(attention_views.build_view(result, choice.view_request())).save(png)
    json_path, npz_path = _data_files(result)
    return [str(png), str(json_path), str(npz_path)]


@user_errors
def on_pick_head(result: attention.AttentionResult | None, kind: str, evt: gr.SelectData):
    """A click on the model view opens that layer and head in the one-head view."""
    if result is None:
        raise InputError("Run a text first.")
    result = resolve(result)
    x, y = evt.index
    m = attention_views.mosaic(
        result.attentions[require_choice(kind, "attention kind", attention_views.kinds_of(result))], attention_views.sinks_of(result, kind),
        result.kv_heads,
    )
    hit = m.locate(x, y)
    if hit is None:
        return gr.update(), gr.update(), gr.update()
    return gr.update(value=hit[0] + 1), gr.update(value=hit[1] + 1), "head"


@user_errors
def on_compare(loader: ModelLoader, encoder: str, decoder: str, text: str, max_tokens: float, progress=gr.Progress()) -> str:
    """The same text through an encoder and a decoder: their last layers' mean attention side by side."""
    panels, notes = [], []
    for name in (encoder, decoder):
        result = compute(loader, name, text, "", max_tokens, progress)
        kind = attention_views.kinds_of(result)[0]
        view = attention_views.build_view(
            result, attention_views.ViewRequest(view="mean", kind=kind, layer=result.attentions[kind].shape[0] - 1)
        )
        view.panels[0].title = f"{name} ({result.architecture}): {view.panels[0].title}"
        panels.extend(view.panels)
        notes.extend(result.notes)
    return attention_views.render_html(
        attention_views.View(panels, "Same text, two models: the decoder's upper triangle is empty, the causal mask at work.", notes=notes)
    )


@user_errors
def attention_api(loader: ModelLoader, model: str, text: str, target_text: str = "") -> dict:
    """Attention weights of `model` on `text` (encoder-decoders: fed `target_text`, or their own greedy output).

    Returns {"model", "tokens", "target_tokens", "attentions": {"encoder"|"decoder"|"cross": [layer][head][query][key]},
    "truncated"}, with only the kinds the model has, cut to the server's token cap.
    """
    return compute(loader, model, text, target_text or "").to_json()


def _index(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
        raise InputError(f"{name} must be a whole number from 1, got {value!r}.")
    return int(value) - 1


def _file(result: attention.AttentionResult, stem: str, suffix: str) -> Path:
    _DOWNLOADS.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in result.model)[-40:] or "model"
    return Path(tempfile.mkstemp(prefix=f"attention-{safe}-{stem}-", suffix=suffix, dir=_DOWNLOADS)[1])


def _data_files(result: attention.AttentionResult) -> tuple[Path, Path]:
    json_path, npz_path = _file(result, "weights", ".json"), _file(result, "weights", ".npz")
    json_path.write_text(json.dumps(result.to_json()))
    result.to_npz(npz_path)
    return json_path, npz_path


# ---- layout and wiring --------------------------------------------------------------------------


def build_attention_tab(loader: ModelLoader) -> TabView:
    """The attention-map viewer. Named API endpoint: `/attention(model, text, target_text)` -> JSON."""
    cap = loader.settings.attention_max_tokens
    with gr.Column():  # a column of the app's page (a nested gr.Blocks costs a whole app's setup)
        gr.Markdown(EXPLAINER)
        # per-user: every weight of the last run (BERT-base at 512 tokens: ~150 MB), dropped after an idle hour
        result = gr.State(None, time_to_live=STATE_TTL_S, delete_callback=loader.results.drop)
        wanted = gr.State(None)  # a lesson link's layer and head, applied by the next run (which fits the sliders to the model)
        with gr.Row():
            model = gr.Dropdown(MODEL_CHOICES, value=MODEL_CHOICES[0], allow_custom_value=True, scale=2, elem_id="att-model",
                                label="Model: a preset, a Hub id or an allowed folder (BERT, GPT-2, T5 families and more)")
            max_tokens = gr.Slider(2, attention.MAX_TOKENS, value=cap, step=1, label="Token cap (longer texts are cut)", scale=1)
        text = gr.Textbox(
            label="Text (the encoder's input)", lines=2, value=EXAMPLES[0][1], max_length=attention.MAX_TEXT_CHARS, elem_id="att-text"
        )
        target = gr.Textbox(
            label="Target text (encoder-decoders only; empty: the model's own greedy output)", max_length=attention.MAX_TEXT_CHARS
        )
        examples(
            EXAMPLES,
            [model, text, target],
            text=1,
            label="Examples: a pronoun and its antecedent, long-range agreement, T5 tasks (offline or online)",
        )
        examples(
            HUB_EXAMPLES,
            [model, text, target],
            text=1,
            label="A translation pair: needs Google's t5-small from the Hub (offline it is mostly <unk>)",
        )
        run = gr.Button("Show attention", variant="primary", elem_id="att-run")
        notice = gr.Markdown(elem_id="att-notice")
        with gr.Row():
            view = gr.Radio(VIEW_CHOICES, value="head", label="View", elem_id="att-view-choice")
            kind = gr.Dropdown([attention.ENCODER], value=attention.ENCODER, label="Attention kind", elem_id="att-kind")
        with gr.Row():
            layer = gr.Slider(1, 12, value=1, step=1, label="Layer", elem_id="att-layer")
            head = gr.Slider(1, 12, value=1, step=1, label="Head", elem_id="att-head")
            top_k = gr.Slider(1, attention_views.MAX_TOP_K, value=3, step=1, label="Lines per token (lines view)")
        with gr.Row():
            focus = gr.Dropdown(
                [("(none)", "")], value="", label="Focus token: what it attends to and what attends to it", elem_id="att-focus"
            )
        with gr.Row(
            elem_classes=["option-row"]
        ):  # each option keeps 240 px (style.css; Gradio's form ignores min_width): a phone stacks them
            all_heads = gr.Checkbox(label="All heads of the layer (lines view)")
            hide_special = gr.Checkbox(label="Hide special tokens (rows renormalized)")
            pool_words = gr.Checkbox(label="Merge word pieces (sum over keys, mean over queries)")
        shown = gr.HTML(elem_id="att-shown")
        gr.Markdown("**Model view**: every layer x head; orange bar = share on the first token / separators. Click a tile.",
                    elem_classes=["picture-caption"])
        grid = gr.Image(label="Model view", show_label=False, type="pil", interactive=False, elem_id="att-grid", buttons=["download"])
        with gr.Row():
            export = gr.Button("Prepare downloads: PNG of this view, all weights as JSON and .npz", elem_id="att-export", scale=1)
            downloads = gr.File(label="Downloads", file_count="multiple", elem_id="att-downloads", scale=2)

        gr.Markdown("### Encoder vs decoder on the same sentence")
        with gr.Row():
            enc_model = gr.Dropdown(MODEL_CHOICES, value="bert-base-uncased", allow_custom_value=True, label="Encoder")
            dec_model = gr.Dropdown(MODEL_CHOICES, value="gpt2", allow_custom_value=True, label="Decoder")
            compare = gr.Button("Compare", elem_id="att-compare")
        compared = gr.HTML(elem_id="att-compared")

        choice = {"view": view, "kind": kind, "layer": layer, "head": head, "all_heads": all_heads, "focus": focus,
                  "hide_special": hide_special, "pool_words": pool_words, "top_k": top_k}
        show = form_event(on_view, ViewChoice, choice, result)
        exported = form_event(on_export, ViewChoice, choice, result)
        forward = form_event(gpu_task(bind(on_run, loader)), AttentionRequest,
                             {"model": model, "text": text, "target_text": target, "max_tokens": max_tokens}, result, wanted)
        view_outputs = [shown, grid]
        run_outputs = [result, notice, kind, layer, head, focus, downloads, view]

        clear_first(run.click, [notice]).then(forward.event, forward.inputs, run_outputs, api_visibility="private").then(
            show.event, show.inputs, view_outputs, api_visibility="private"
        ).then(_forget, None, wanted, api_visibility="private", queue=False)
        for control in (view, kind, layer, head, all_heads, focus, hide_special, pool_words, top_k):
            control.input(show.event, show.inputs, view_outputs, api_visibility="private")
        export.click(exported.event, exported.inputs, downloads, api_visibility="private")
        grid.select(on_pick_head, [result, kind], [layer, head, view], api_visibility="private").then(
            show.event, show.inputs, view_outputs, api_visibility="private")
        compare.click(gpu_task(bind(on_compare, loader)), [enc_model, dec_model, text, max_tokens], compared, api_visibility="private")

        api_endpoint(attention_api, loader, api_name="attention")
    return TabView(inputs={"model": model, "text": text, "target": target, "layer": layer, "head": head},
                   run=("att-run",), pending=wanted, deferred=("layer", "head"), forms={"att-run": forward},
                   link_check=layer_head_link_check(loader, MODEL_CHOICES[0], first=1))


def _forget() -> None:
    """A lesson link's layer and head apply to one run only."""
    return None


if __name__ == "__main__":  # run this tab on its own
    launch_alone(build_attention_tab)
