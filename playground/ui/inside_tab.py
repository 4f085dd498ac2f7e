"""Inside tab: what happens to one token inside one block, on the model's own numbers."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import gradio as gr
import pandas as pd

from playground.config import ASSETS_DIR
from playground.core.inputs import require_text
from playground.core.render import inside as inside_views
from playground.core.render.routing import expert_tokens_html, routing_html
from playground.core.text import inside, routing
from playground.errors import InputError
from playground.models import Family, ModelLoader
from playground.models.sources import SourceKind
from playground.models.zerogpu import GpuBudget, gpu_task
from playground.ui.common import (
    SESSION_GPT,
    SessionModel,
    TabView,
    api_endpoint,
    bind,
    clear_first,
    examples,
    form_event,
    launch_alone,
    layer_head_link_check,
    load_transformer,
    session_gpt,
    user_errors,
)

EXPLAINER = """
### Inside the Transformer: one token, one block
The Attention tab shows the weights; this tab shows how they are computed, on the model's own numbers.
A token enters as a row of the **embedding** matrix (plus a **position** embedding in GPT-2 and BERT; T5 has
none and biases attention scores by relative distance instead). In each block, one **head** turns the normalized
input into a **query** q, and every token into a **key** k_j and a **value** v_j; the scores q·k_j are scaled by
1/√d_k, masked (decoders cannot look ahead), and **softmax**ed into weights; the head outputs the weighted sum of
values. All heads go through the output projection W_O and are **added** to the token's hidden state (the
**residual stream**), then an **MLP** adds its own update. Every number here is checked against the model in the tests.
Which of these numbers does the prediction need? The **Interventions** tab knocks heads out and patches the residual stream.
"""
MOE_EMBEDDED = "assets/models/moe-shakespeare"  # the embedded mixture of experts (Mixtral-style), for section 6
MODEL_CHOICES = ["gpt2", "bert-base-uncased", "t5-small", "HuggingFaceTB/SmolLM2-135M", MOE_EMBEDDED]
EXAMPLES = [
    ["gpt2", "ROMEO. But soft, what light through yonder window breaks?"],
    [MOE_EMBEDDED, "ROMEO. But soft, what light through yonder window breaks? It is the east, and Juliet is the sun."],
    ["bert-base-uncased", "The king is dead, long live the king."],
    ["t5-small", "reverse words: red cat blue dog"],
]
DEFAULT_WORDS = "king, queen, lord, lady, man, woman, love, hate, sword, crown, night, day"
INSIDE_BUDGET = GpuBudget(30)
# published points for scale: parameters and training tokens (sources in the README's Inside section)
PUBLISHED = [
    ("GPT-2 small (Radford et al. 2019): WebText, 40 GB, est.", 124e6, 9e9),  # the paper gives no token count (README)
    ("GPT-3 (Brown et al. 2020)", 175e9, 300e9),
    ("Chinchilla (Hoffmann et al. 2022)", 70e9, 1.4e12),
    ("Llama 2 7B (Touvron et al. 2023)", 7e9, 2e12),
    ("Llama 3 8B (Meta 2024)", 8e9, 15e12),
]


def _load(loader: ModelLoader, model: Any, progress=None, trained: Any = None):
    if model == SESSION_GPT:  # the session's tiny GPT from the Training tab
        return session_gpt(trained)
    return load_transformer(loader, model, (Family.CAUSAL_LM, Family.MASKED_LM, Family.ENCODER, Family.SEQ2SEQ),
                            "a GPT-2-, BERT-, T5- or Llama-family model", attention=True, progress=progress)


def _stack(stack: Any) -> str:
    return require_text(stack if stack is not None else "", "stack", max_chars=20)


@dataclass(frozen=True)
class InsideRequest:
    """One look inside, as the page (or /inside) asks it."""

    model: str  # a GPT-2-, BERT- or T5-family preset, Hub id or folder, or SESSION_GPT
    text: str  # the text the model reads
    stack: Any = ""  # "encoder" or "decoder" for T5; "" (or None) for the model's one stack
    layer: Any = 0  # from 0
    head: Any = 0  # from 0
    token: Any = -1  # the query token, from 0; -1 (or empty): the last
    words: str = DEFAULT_WORDS  # words to place in the embedding space (three or more)


def compute(loader: ModelLoader, request: InsideRequest, progress=None, trained: Any = None, fit: bool = False):
    """(the model, its Inside, notes) for the request, checked before any model loads. `fit` (the page): a layer or head
    past the model's, or a stack it lacks (left over from the last model chosen), is brought into range with a note
    instead of refused; the API refuses them."""
    stack = _stack(request.stack)
    token = -1 if request.token in (None, "") else request.token
    text, layer, head, token, stack = inside.check_request(request.text, request.layer, request.head, token, stack)
    name, lm = _load(loader, request.model, progress, trained)
    notes = []
    if fit:
        family = inside.family_of(lm.model.config)
        if stack and family != "t5":
            notes.append(f"A {name} model has one stack; the Stack choice is for T5 and was ignored.")
            stack = ""
        n_layers, n_heads = inside.layers_and_heads(lm.model, stack)
        if layer >= n_layers or head >= n_heads:
            notes.append(f"{name} has layers 0-{n_layers - 1} and heads 0-{n_heads - 1}: showing layer {min(layer, n_layers - 1)}, "
                         f"head {min(head, n_heads - 1)}.")
            layer, head = min(layer, n_layers - 1), min(head, n_heads - 1)
    return lm, inside.inside(lm.model, lm.tokenizer, text, layer, head, token, stack, name=name), notes


def model_is_yours(lm: Any) -> bool:
    return isinstance(lm, SessionModel)


def training_rows(lm, total: int) -> list[list[Any]]:
    """This model's parameters beside the tokens it was trained on (embedded models: their training records), then
    published models for scale. Parameters and training tokens are different things."""
    rows = []
    record = lm.training
    if record is not None and (model_is_yours(lm) or lm.source.kind is SourceKind.EMBEDDED):
        seen = f"{record.tokens_seen:,}" if record.tokens_seen else f"{record.examples_seen:,} examples"
        ratio = f"{record.tokens_seen / total:,.1f}" if record.tokens_seen else "n/a"
        what = "your tiny GPT" if model_is_yours(lm) else "embedded teaching model"
        rows.append([f"{lm.source.requested} → {what} ({record.what})", f"{total:,}", seen, ratio])
    rows += [[n, f"{p:,.0f}", f"{t:,.0f}", f"{t / p:,.1f}"] for n, p, t in PUBLISHED]
    return rows


# ---- event handlers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InsideView:
    """What the page shows of one look inside, in the order of the event's outputs."""

    notice: str  # which model runs, and anything cut, brought into range or out of its depth
    token: Any  # the query-token picker's update: this text's tokens
    stack: Any  # the stack radio's update: usable for T5 only
    layer: Any  # the layer slider's update: this model's range
    head: Any  # the head slider's update
    embeddings: str  # HTML
    head_view: str  # HTML: one head, step by step
    block: str  # HTML
    residual: str  # SVG chart
    parameters: Any  # table
    scale: Any  # table: parameters beside training tokens

    def outputs(self) -> tuple:
        return (self.notice, self.token, self.stack, self.layer, self.head, self.embeddings, self.head_view, self.block, self.residual,
                self.parameters, self.scale)


@user_errors
def on_run(loader: ModelLoader, request: InsideRequest, trained: Any = None, progress=gr.Progress()) -> tuple:
    """The InsideView's outputs: notice, token picker, stack, layer and head sliders, embeddings, head, block, residual chart,
    parameters table, parameters vs training tokens table."""
    lm, r, notes = compute(loader, request, progress, trained, fit=True)
    neighbours = inside.nearest_tokens(lm.model, lm.tokenizer, r.token_ids[r.token])
    listed = [w for w in require_text(request.words or "", "words", max_chars=2000).replace(",", " ").split()]
    points = inside.word_points(lm.model, lm.tokenizer, listed) if len(listed) >= 3 else None
    n_layers, n_heads = inside.layers_and_heads(lm.model, r.stack)
    notice = " ".join([f"Running {lm.source.describe()}.", *notes, lm.depth_note(len(r.tokens)) or "", *r.notes]).strip()
    params = pd.DataFrame([[c.name, f"{c.count:,}", f"{c.count / r.total_parameters:.1%}", c.formula] for c in r.components],
                          columns=["component", "parameters", "share", "formula"])
    scale = pd.DataFrame(training_rows(lm, r.total_parameters), columns=["model", "parameters", "training tokens", "tokens per parameter"])
    t5 = inside.family_of(lm.model.config) == "t5"
    if r.rope is not None:
        r = replace(r, learned_positions=_gpt2_positions(loader, r.token))
    return InsideView(notice, gr.update(choices=[(f"{i}: {t}", i) for i, t in enumerate(r.faces or r.tokens)], value=r.token),
                      gr.update(value=(r.stack or "encoder") if t5 else None, interactive=t5),
                      gr.update(maximum=max(1, n_layers - 1), value=r.layer, interactive=n_layers > 1),
                      gr.update(maximum=max(1, n_heads - 1), value=r.head, interactive=n_heads > 1),
                      inside_views.embeddings_view(r, neighbours, points), inside_views.head_view(r), inside_views.block_view(r),
                      inside_views.residual_chart(r), params, scale).outputs()


def _gpt2_positions(loader: ModelLoader, token: int) -> dict | None:
    """The GPT-2 preset's learned position curves (offline: gpt-shakespeare, which shares the embedded Llama's tokenizer,
    so its positions are this text's) for the query's position and a later one, to draw beside RoPE; None if it cannot
    load (the RoPE view then stands alone)."""
    try:
        gpt = loader.load("gpt2", Family.CAUSAL_LM)
    except Exception:  # noqa: BLE001  (a side view: its absence must not break the main one)
        return None
    curves = inside.learned_position_curves(gpt.model, [token, token + 60])
    return {**curves, "model": f"{gpt.source.requested}: {gpt.source.short_location()}"}


@user_errors
def inside_api(loader: ModelLoader, model: str, text: str, layer: int, head: int, token: int, stack: str = "") -> dict:
    """One layer, head and query token of `model` on `text`, every number of the computation (layers, heads and
    tokens count from 0; `stack` "encoder" or "decoder" for T5).

    Returns {"model", "architecture", "tokens", "embedding": {"token", "position", "sum"}, "x", "q", "k", "v", "scores",
    "scale", "position_bias", "mask", "weights", "head_output", "attention_output", "mlp_output", "hidden_in",
    "hidden_out", "parameters": {component: count}, "total_parameters"} and a few more keys (see the README).
    """
    if isinstance(token, bool) or not isinstance(token, (int, float)):
        raise InputError(f"token must be a whole number from 0, got {token!r}.")
    return compute(loader, InsideRequest(model=model, text=text, stack=stack, layer=layer, head=head, token=token))[1].to_json()


# ---- layout and wiring ------------------------------------------------------------------------------------


def build_inside_tab(loader: ModelLoader, trained: gr.State | None = None) -> TabView:
    """Inside one block. Named API endpoint: `/inside`. `trained`: the session's tiny GPT from the Training tab."""
    with gr.Column():
        gr.Markdown(EXPLAINER)
        with gr.Row():
            model = gr.Dropdown(
                MODEL_CHOICES + [SESSION_GPT],
                value=MODEL_CHOICES[0],
                allow_custom_value=True,
                scale=2,
                elem_id="ins-model",
                label="Model: gpt2, bert-base-uncased, t5-small, SmolLM2, the embedded mixture of experts, or another GPT-2/BERT/T5/"
                      "Llama/Mixtral-family id or folder",
            )
            stack = gr.Radio([("Encoder", "encoder"), ("Decoder", "decoder")], value=None, label="Stack (T5 only)", elem_id="ins-stack")
        text = gr.Textbox(label="Text", value=EXAMPLES[0][1], lines=2, max_length=inside.MAX_TEXT_CHARS, elem_id="ins-text")
        examples(EXAMPLES, [model, text], "Examples (offline: the embedded models)")
        with gr.Row():
            layer = gr.Slider(0, 3, value=0, step=1, label="Layer (from 0)", elem_id="ins-layer")
            head = gr.Slider(0, 3, value=0, step=1, label="Head (from 0)", elem_id="ins-head")
            token = gr.Dropdown([], value=None, label="Query token (default: the last)", elem_id="ins-token")
        words = gr.Textbox(label="Words to place in the embedding space (at least three)", value=DEFAULT_WORDS, elem_id="ins-words")
        run = gr.Button("Look inside", variant="primary", elem_id="ins-run")
        notice = gr.Markdown(elem_id="ins-notice")
        with gr.Accordion("1. Embeddings", open=True):
            gr.Markdown("The token's row of the embedding matrix, its position embedding, their sum; the tokens whose "
                        "embeddings point the same way; your words as points (the first two principal components).")
            emb = gr.HTML(elem_id="ins-embeddings")
        with gr.Accordion("2. One head, step by step", open=True):
            gr.Markdown("For the query token: q, every k_j and v_j as heat strips (blue negative, orange positive), the raw "
                        "score q·k_j, the scale, T5's position bias, the mask, the softmax weight and the weighted sum.")
            one_head = gr.HTML(elem_id="ins-head-view")
        with gr.Accordion("3. The block", open=True):
            gr.Markdown("All heads through W_O, the residual add, the MLP and the second add, with each part's size.")
            block = gr.HTML(elem_id="ins-block")
        with gr.Accordion("4. Residual stream", open=True):
            gr.Markdown("The token's hidden state grows layer by layer: how much attention and the MLP each add.")
            residual = gr.HTML(elem_id="ins-residual")
        with gr.Accordion("5. Parameters", open=True):
            gr.Markdown("Where the parameters are, by component, with each count's formula. Parameters are what training "
                        "adjusts; training tokens are the text it read: a model is not 'trained on N parameters'.")
            params = gr.Dataframe(label="Parameters by component (tied weights counted once)", interactive=False, wrap=True,
                                  elem_id="ins-params")
            scale = gr.Dataframe(label="Parameters and training tokens", interactive=False, wrap=True, elem_id="ins-scale")
        with gr.Accordion("6. Experts (mixture-of-experts models)", open=False, elem_id="ins-experts"):
            gr.Markdown("In a mixture-of-experts layer the MLP is several MLPs, the experts; a router sends each token to a "
                        "few of them (softmax of its scores, the top k). For a Mixtral-style model: every layer's choice for "
                        "every token of the text above, and how evenly the experts are used.")
            route_btn = gr.Button("Route the text", elem_id="ins-route")
            routed = gr.HTML(elem_id="ins-routing")

        look = form_event(gpu_task(bind(on_run, loader), INSIDE_BUDGET), InsideRequest,
                          {"model": model, "text": text, "stack": stack, "layer": layer, "head": head, "token": token, "words": words},
                          *([trained] if trained is not None else []))
        outputs = [notice, token, stack, layer, head, emb, one_head, block, residual, params, scale]
        clear_first(run.click, [notice]).then(look.event, look.inputs, outputs, api_visibility="private")
        for control in (layer, head):  # user changes only (a drag, or a value typed in the box), coalesced to the last
            control.input(look.event, look.inputs, outputs, api_visibility="private", trigger_mode="always_last")
        token.input(look.event, look.inputs, outputs, api_visibility="private", trigger_mode="always_last")
        for control in (model, text, stack):  # another text or model: its tokens are not these; start from the last one
            control.input(_no_tokens, None, token, api_visibility="private", queue=False)
        api_endpoint(inside_api, loader, api_name="inside", budget=INSIDE_BUDGET)
        route_form = form_event(gpu_task(bind(on_route, loader), INSIDE_BUDGET), RouteRequest, {"model": model, "text": text})
        route_btn.click(route_form.event, route_form.inputs, routed, api_visibility="private")
        api_endpoint(route_api, loader, api_name="route", budget=INSIDE_BUDGET)
    return TabView(inputs={"model": model, "text": text, "layer": layer, "head": head}, run=("ins-run",), forms={"ins-run": look},
                   link_check=layer_head_link_check(loader, MODEL_CHOICES[0], first=0))


@dataclass(frozen=True)
class RouteRequest:
    """A text routed through a mixture-of-experts model's layers."""

    model: str  # a Mixtral-style causal LM (preset, Hub id or folder)
    text: str


def _route(loader: ModelLoader, request: RouteRequest, progress=None):
    from playground.models import Family

    routing.check_text(request.text)  # a bad text is refused before a model loads
    if request.model == SESSION_GPT:
        raise InputError("Your tiny GPT is a dense model: every token goes through the same MLP, so there is nothing to route. "
                         "Choose a mixture-of-experts model (Mixtral-style) by its Hub id or folder.")
    _, lm = load_transformer(loader, request.model, (Family.CAUSAL_LM,), "a mixture-of-experts decoder (Mixtral-style)",
                                progress=progress)
    return lm, routing.route(lm.model, lm.tokenizer, request.text)


HELDOUT_TEXT = ASSETS_DIR / "corpus" / "julius_caesar_opening.txt"  # written by python -m playground.train.corpus


@user_errors
def on_route(loader: ModelLoader, request: RouteRequest, progress=gr.Progress()) -> str:
    """The routing view: each layer's tokens on their top expert's colour, and the experts' load; then what each expert's
    tokens have in common over a held-out text."""
    lm, r = _route(loader, request, progress)
    source = "the opening of Julius Caesar (held out from the embedded models' training; a Hub model may have read it)"
    common = routing.expert_tokens(lm.model, lm.tokenizer, HELDOUT_TEXT.read_text(encoding="utf-8"), source)
    return routing_html(r) + expert_tokens_html(common)


@user_errors
def route_api(loader: ModelLoader, model: str, text: str) -> dict:
    """Every token's router probabilities and chosen experts in every layer of a mixture-of-experts model.

    Returns {"tokens", "experts", "top_k", "router_probs" [layer][token][expert] (softmax of the router logits, equal to the
    model's own output_router_logits), "chosen" [layer][token][k], "load" [layer][expert] (share of tokens)}.
    """
    return _route(loader, RouteRequest(model, text))[1].to_json()


def _no_tokens():
    return gr.update(choices=[], value=None)


if __name__ == "__main__":  # run this tab on its own
    launch_alone(build_inside_tab)
