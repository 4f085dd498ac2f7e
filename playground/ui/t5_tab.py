"""T5 tab: an encoder-decoder maps text to text; greedy or beam search, every beam step shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from playground.core.cache import shared_lock
from playground.core.inputs import require_int
from playground.core.render.lm import beam_steps, chips
from playground.core.text.seq2seq import MAX_BEAMS, MAX_NEW_TOKENS, MAX_TEXT_CHARS, TextResult, check_request, decoder_lens, text_to_text
from playground.errors import InputError
from playground.models import Family, ModelLoader
from playground.models.sources import SourceKind
from playground.models.zerogpu import gpu_task
from playground.ui.common import (
    TabView,
    api_endpoint,
    bind,
    clear_first,
    examples,
    form_event,
    launch_alone,
    lens_table,
    load_transformer,
    user_errors,
)

EXPLAINER = """
### T5: encoder-decoder, text in, text out
Every task is text in, text out, named by a **prefix**. The **encoder** reads the whole input both
ways; the **decoder** writes the output token by token, looking back at what it wrote (causal) and,
through **cross-attention**, at the encoder's reading of the input.

**Greedy** decoding takes the best token each step. **Beam search** keeps the k best partial
outputs (beams) alive: each step, every beam is extended by every token, the extensions are
scored by their summed log-probabilities, and only the best k survive; an extension ending in
`</s>` is set aside as finished. The result is the finished output with the best score per token.
"""
HUB_EXAMPLES = [
    ["t5-small", "translate English to German: The house is wonderful."],
    ["t5-small", "translate English to French: I would like a cup of coffee."],
    ["t5-small", "translate English to Romanian: The weather is nice today."],
    ["t5-small", "summarize: The tower is 324 metres tall, about the same height as an 81-storey building, and the tallest "
                 "structure in Paris. Its base is square, measuring 125 metres on each side."],
]
EMBEDDED_EXAMPLES = [
    ["t5-small", "reverse words: red cat blue dog"],
    ["t5-small", "sort numbers: 42 7 19 3"],
    ["t5-small", "number to words: 342"],
    ["t5-small", "add: 47 + 38"],
    ["t5-small", "max: 12 85 33"],
]
EMBEDDED_RANGES = """
**Offline, `t5-small` runs on `t5-tasks`**, a small T5 trained here on five tasks and nothing else:
`reverse words:` 2 to 6 common English words · `sort numbers:` and `max:` 3 to 6 numbers from 0 to 99
· `number to words:` 0 to 999 · `add:` two numbers from 10 to 99. Outside these ranges it fails:
that is the lesson (a model knows what it was trained on), not a bug. Online, `t5-small` is Google's,
which translates to German, French and Romanian and summarizes.
"""
LENS_TOP = 5


def _check(loader: ModelLoader, model: Any, text: Any, num_beams: Any, max_new_tokens: Any) -> None:
    """Refuse a bad request before any model loads; an empty input is told a prefix the model that would run knows."""
    prefix = ""
    if isinstance(text, str) and not text.strip() and isinstance(model, str) and model.strip():
        try:
            embedded = loader.resolve(model.strip(), Family.SEQ2SEQ).kind is SourceKind.EMBEDDED
        except InputError:
            embedded = False  # the model name's own error comes from the load
        prefix = EMBEDDED_EXAMPLES[0][1].split(":")[0] + ":" if embedded else HUB_EXAMPLES[0][1].split(":")[0] + ":"
    check_request(text, num_beams, max_new_tokens, prefix=prefix)


def load_seq2seq(loader: ModelLoader, model: Any, progress=None):
    return load_transformer(loader, model, (Family.SEQ2SEQ,), "an encoder-decoder (seq2seq) model such as t5-small", progress=progress)


def _render(tokenizer, text: str, result: TextResult) -> str:
    with shared_lock(tokenizer):  # shared by every user: one call at a time
        enc = tokenizer.convert_ids_to_tokens(tokenizer(text, verbose=False)["input_ids"])
        dec = tokenizer.convert_ids_to_tokens(list(result.sequences[0]))
    return chips(enc, title="encoder input tokens") + chips(dec, ["lm-new"] * len(dec), "decoder output tokens (best)")


# ---- event handlers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextToTextRequest:
    """One text through an encoder-decoder, as the page asks it."""

    model: str  # a seq2seq preset, Hub id or folder
    text: str  # the encoder's input, with its task prefix
    num_beams: Any = 1  # 1: greedy; more: beam search, every step shown
    max_new_tokens: Any = 32  # the longest output


@user_errors
def on_run(loader: ModelLoader, request: TextToTextRequest, progress=gr.Progress()):
    """(notice, output text, tokens HTML, beams table, beam steps HTML, output position slider, result)."""
    _check(loader, request.model, request.text, request.num_beams, request.max_new_tokens)
    _, lm = load_seq2seq(loader, request.model, progress)
    result = text_to_text(lm.model, lm.tokenizer, request.text, request.num_beams, request.max_new_tokens)
    tok = lm.tokenizer
    with shared_lock(tok):
        return _run_outputs(lm, tok, request.text, result)


def _run_outputs(lm, tok, text: str, result: TextResult):
    beams = pd.DataFrame(
        [[i + 1, tok.decode(s, skip_special_tokens=True), round(sc, 4)] for i, (s, sc) in enumerate(zip(result.sequences, result.scores))],
        columns=["rank", "output", "score"],
    )
    notice = f"Running {lm.source.describe()}."
    if lm.source.kind is SourceKind.EMBEDDED:
        notice += " This teaching model knows five tasks only; see the ranges above."
    steps = (
        beam_steps(result.steps, lambda ids: " ".join(tok.convert_ids_to_tokens(list(ids))))
        if result.steps
        else "<i>Greedy: one output, no beams. Pick 2 or more beams to watch beam search.</i>"
    )
    n = len(result.sequences[0])
    return (notice, tok.decode(result.sequences[0], skip_special_tokens=True), _render(tok, text, result), beams, steps,
            gr.update(maximum=max(2, n), value=1), result)


@user_errors
def on_lens(loader: ModelLoader, model: str, text: str, result: TextResult | None, position: float):
    """The decoder's logit lens at one output position (teacher-forced on the best output)."""
    if result is None:
        raise InputError("Run the model first.")
    _, lm = load_seq2seq(loader, model)
    seq = result.sequences[0]
    pos = require_int(position, "output position", low=1, high=max(1, len(seq))) - 1
    lens = decoder_lens(lm.model, lm.tokenizer, text, seq, pos, LENS_TOP)
    tok = lm.tokenizer
    with shared_lock(tok):
        table = pd.DataFrame(
            [[layer] + [f"{tok.convert_ids_to_tokens(t)} ({p:.2f})" for t, p in row] for layer, row in zip(lens.layers, lens.top)],
            columns=["layer"] + [f"#{i + 1}" for i in range(LENS_TOP)],
        )
        written = tok.convert_ids_to_tokens(int(seq[pos]))
    # the table says which token it explains: the model's guesses for the token it wrote at this position
    return gr.update(
        value=table, label=f"Decoder logit lens at output position {pos + 1}, where the model wrote {written!r}: each layer's guess"
    )


@user_errors
def text2text_api(loader: ModelLoader, text: str, model: str = "t5-small", num_beams: int = 1, max_new_tokens: int = 32) -> dict:
    """Map `text` (with its task prefix) to text: {"text": the best output, "beams": [{"text", "score"}]},
    each scored per token (summed log-probability / length), as `generate(num_beams=..., output_scores=True)` scores beams
    (greedy's one output too)."""
    _check(loader, model, text, num_beams, max_new_tokens)
    _, lm = load_seq2seq(loader, model)
    result = text_to_text(lm.model, lm.tokenizer, text, num_beams, max_new_tokens)
    with shared_lock(lm.tokenizer):
        outputs = [lm.tokenizer.decode(s, skip_special_tokens=True) for s in result.sequences]
    return {"text": outputs[0], "beams": [{"text": t, "score": s} for t, s in zip(outputs, result.scores)]}


# ---- layout and wiring --------------------------------------------------------------------------


def build_t5_tab(loader: ModelLoader) -> TabView:
    """Encoder-decoder text to text. Named API endpoint: `/text2text`."""
    with gr.Column():  # a column of the app's page (a nested gr.Blocks costs a whole app's setup)
        gr.Markdown(EXPLAINER)
        gr.Markdown(EMBEDDED_RANGES)
        result = gr.State(None, time_to_live=3600)
        with gr.Row():
            model = gr.Dropdown(
                ["t5-small"], value="t5-small", allow_custom_value=True, label="Model: t5-small, a Hub id or an allowed folder", scale=2
            )
            num_beams = gr.Slider(1, MAX_BEAMS, value=3, step=1, label="Beams (1: greedy)", elem_id="t5-beams")
            max_new = gr.Slider(1, MAX_NEW_TOKENS, value=32, step=1, label="Max new tokens")
        text = gr.Textbox(label="Input, with its task prefix", value=EMBEDDED_EXAMPLES[0][1], max_length=MAX_TEXT_CHARS, elem_id="t5-text")
        examples(EMBEDDED_EXAMPLES, [model, text], "Examples for the embedded T5 (offline)")
        examples(
            HUB_EXAMPLES,
            [model, text],
            "Examples that need Google's t5-small from the Hub (online; offline the embedded model gives word salad)",
        )
        run = gr.Button("Run", variant="primary", elem_id="t5-run")
        notice = gr.Markdown()
        output = gr.Textbox(label="Output", interactive=False, elem_id="t5-output")
        tokens = gr.HTML()
        beams = gr.Dataframe(label="Returned outputs (score: log-probability per token, the summed log-probability / length, for 1 "
                             "beam and many alike: beam search ranks finished beams by it)", interactive=False, elem_id="t5-beam-table")
        gr.Markdown("#### Beam search, step by step")
        steps = gr.HTML(elem_id="t5-steps")
        position = gr.Slider(1, 2, value=1, step=1, label="Output position for the decoder's logit lens")
        lens = gr.Dataframe(
            label="Decoder logit lens: each layer's guess at this output position", interactive=False, **lens_table(LENS_TOP)
        )

        converted = form_event(gpu_task(bind(on_run, loader)), TextToTextRequest,
                               {"model": model, "text": text, "num_beams": num_beams, "max_new_tokens": max_new})
        clear_first(run.click, [notice]).then(
            converted.event, converted.inputs, [notice, output, tokens, beams, steps, position, result], api_visibility="private"
        ).then(gpu_task(bind(on_lens, loader)), [model, text, result, position], lens, api_visibility="private")
        position.input(
            gpu_task(bind(on_lens, loader)), [model, text, result, position], lens, api_visibility="private", trigger_mode="always_last"
        )

        api_endpoint(text2text_api, loader, api_name="text2text")
    return TabView(
        inputs={"model": model, "text": text, "beams": num_beams, "max_new": max_new}, run=("t5-run",), forms={"t5-run": converted}
    )


if __name__ == "__main__":  # run this tab on its own
    launch_alone(build_t5_tab)
