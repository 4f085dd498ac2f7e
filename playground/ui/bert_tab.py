"""BERT tab: an encoder reads the whole text both ways: fill-mask, its logit lens, sentence embeddings."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from playground.core.render.lm import projection_svg, similarity_heatmap
from playground.core.text.masked import MAX_MASKS, MAX_TEXT_CHARS, MAX_TOP_K, embed, fill_mask, mask_lens, parse_sentences
from playground.models import Family, ModelLoader
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
### BERT: an encoder reads everything at once
An encoder-only model sees the whole text in both directions (no causal mask). BERT was trained
to **fill in masked words**: hide a word behind `[MASK]` and it predicts a probability for every
vocabulary token there, using the words on both sides. It does not write text left to right;
what it produces is a **contextual vector** for every token: the same word gets a different
vector in a different sentence.

- **Fill-mask**: put one or more `[MASK]` in a sentence. The **logit lens** applies the
  masked-LM head to every layer's hidden state: watch the guess form, layer by layer.
- **Embeddings**: average a sentence's token vectors into one vector; sentences about similar
  things get vectors pointing in similar directions (high **cosine similarity**).
"""
FILL_EXAMPLES = [
    ["bert-base-uncased", "Good morrow to you, [MASK] lord."],
    ["bert-base-uncased", "O Romeo, Romeo! wherefore art [MASK] Romeo?"],
    ["bert-base-uncased", "The [MASK] is dead; long live the [MASK]."],
    ["bert-base-uncased", "The capital of France is [MASK]."],
]
EMBED_EXAMPLES = [
    ["bert-base-uncased", "The king is dead.\nThe queen is dead.\nLong live the king!\nGive me some wine.\nBring me a cup of sack."],
    ["bert-base-uncased", "A cat sat on the mat.\nA dog lay on the rug.\nStock prices fell sharply today.\nThe market dropped."],
]
LENS_TOP = 5


def load_masked(loader: ModelLoader, model: Any, *, need_head: bool, progress=None):
    """(name, LoadedModel) of an encoder; fill-mask needs its masked-LM head."""
    if need_head:
        return load_transformer(loader, model, (Family.MASKED_LM,), "a masked-LM encoder (with its MLM head) such as bert-base-uncased",
                                progress=progress)
    return load_transformer(loader, model, (Family.MASKED_LM, Family.ENCODER), "an encoder such as bert-base-uncased", progress=progress)


def _masked_sentence(result) -> str:
    pieces = []
    for i, tok in enumerate(result.tokens):
        if i in result.mask_positions:
            k = result.mask_positions.index(i)
            best = result.predictions[k][0].token
            pieces.append(f'<span class="lm-chip lm-mask" title="mask {k + 1}">{html.escape(best)}<sub>{k + 1}</sub></span>')
        else:
            pieces.append(f'<span class="lm-chip">{html.escape(tok)}</span>')
    return f'<div class="lm-chips">{"".join(pieces)}</div>'


# ---- event handlers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FillRequest:
    """Fill every [MASK] of a text, as the page asks it."""

    model: str  # a masked-LM preset, Hub id or folder
    text: str  # a text with at least one [MASK]
    top_k: Any = 5  # guesses shown per mask


@user_errors
def on_fill(loader: ModelLoader, request: FillRequest, progress=gr.Progress()):
    """(notice, the sentence with each mask's best guess, predictions table, mask picker)."""
    _, lm = load_masked(loader, request.model, need_head=True, progress=progress)
    result = fill_mask(lm.model, lm.tokenizer, request.text, request.top_k)
    rows = [
        [f"mask {k + 1}", rank + 1, p.token, round(p.prob, 4)] for k, preds in enumerate(result.predictions) for rank, p in enumerate(preds)
    ]
    table = pd.DataFrame(rows, columns=["mask", "rank", "token", "probability"])
    picks = [(f"mask {k + 1}", k) for k in range(len(result.predictions))]
    notice = " ".join(filter(None, [f"Running {lm.source.describe()}.", lm.depth_note(len(result.tokens))]))
    return notice, _masked_sentence(result), table, gr.update(choices=picks, value=0)


@user_errors
def on_lens(loader: ModelLoader, model: str, text: str, mask: Any):
    """The logit lens at one mask: layers x the top guesses."""
    _, lm = load_masked(loader, model, need_head=True)
    lens = mask_lens(lm.model, lm.tokenizer, text, 0 if mask is None else mask, LENS_TOP)
    return pd.DataFrame([[layer] + [f"{p.token} ({p.prob:.2f})" for p in row] for layer, row in zip(lens.layers, lens.top)],
                        columns=["layer"] + [f"#{i + 1}" for i in range(LENS_TOP)])


@user_errors
def on_embed(loader: ModelLoader, model: str, sentences: str, progress=gr.Progress()):
    """(notice, similarity heatmap HTML, 2-D projection SVG)."""
    sentences = parse_sentences(sentences)
    _, lm = load_masked(loader, model, need_head=False, progress=progress)
    e = embed(lm.model, lm.tokenizer, sentences)
    return f"Running {lm.source.describe()}.", similarity_heatmap(sentences, e.similarity), projection_svg(sentences, e.projection)


@user_errors
def fill_mask_api(loader: ModelLoader, text: str, model: str = "bert-base-uncased", top_k: int = 5) -> dict:
    """The `top_k` most likely tokens at each [MASK] of `text`: {"masks": [[{"token", "prob"}]]}, one list per mask."""
    _, lm = load_masked(loader, model, need_head=True)
    return fill_mask(lm.model, lm.tokenizer, text, top_k).to_json()


@user_errors
def embed_api(loader: ModelLoader, sentences: str, model: str = "bert-base-uncased") -> dict:
    """Mean-pooled sentence embeddings of `sentences` (one per line): {"sentences", "similarity": cosine matrix}."""
    parsed = parse_sentences(sentences)
    _, lm = load_masked(loader, model, need_head=False)
    return embed(lm.model, lm.tokenizer, parsed).to_json()


# ---- layout and wiring --------------------------------------------------------------------------


def build_bert_tab(loader: ModelLoader) -> TabView:
    """Fill-mask and embeddings. Named API endpoints: `/fill_mask`, `/embed`."""
    with gr.Column():  # a column of the app's page (a nested gr.Blocks costs a whole app's setup)
        gr.Markdown(EXPLAINER)
        gr.Markdown("#### Fill-mask")
        with gr.Row():
            model = gr.Dropdown(["bert-base-uncased"], value="bert-base-uncased", allow_custom_value=True, scale=2,
                                label="Model: bert-base-uncased, a Hub id or an allowed folder")
            top_k = gr.Slider(1, MAX_TOP_K, value=5, step=1, label="Predictions per mask")
        text = gr.Textbox(
            label=f"Text with up to {MAX_MASKS} [MASK]", value=FILL_EXAMPLES[0][1], max_length=MAX_TEXT_CHARS, elem_id="bert-text"
        )
        examples(FILL_EXAMPLES, [model, text], "Examples (offline: a small BERT trained here on Shakespeare)")
        fill = gr.Button("Fill the masks", variant="primary", elem_id="bert-fill")
        notice = gr.Markdown()
        sentence = gr.HTML(elem_id="bert-sentence")
        with gr.Row():
            table = gr.Dataframe(label="Predictions", interactive=False, elem_id="bert-predictions")
            with gr.Column():
                mask = gr.Dropdown([], label="Logit lens for", elem_id="bert-mask")
                lens = gr.Dataframe(
                    label="Logit lens: the MLM head on every layer", interactive=False, elem_id="bert-lens", **lens_table(LENS_TOP)
                )

        gr.Markdown("#### Sentence embeddings")
        sentences = gr.Textbox(label="Sentences, one per line", lines=5, value=EMBED_EXAMPLES[0][1], elem_id="bert-sentences")
        examples(EMBED_EXAMPLES, [model, sentences], "Examples")
        embed_btn = gr.Button("Compare the sentences", elem_id="bert-embed")
        embed_notice = gr.Markdown()
        with gr.Row():
            heatmap = gr.HTML(label="Cosine similarity", elem_id="bert-similarity")
            with gr.Column():
                gr.Markdown("2-D projection of the sentence vectors (first two principal components)")
                scatter = gr.HTML(elem_id="bert-projection")

        filled = form_event(gpu_task(bind(on_fill, loader)), FillRequest, {"model": model, "text": text, "top_k": top_k})
        clear_first(fill.click, [notice]).then(filled.event, filled.inputs, [notice, sentence, table, mask], api_visibility="private").then(
            gpu_task(bind(on_lens, loader)), [model, text, mask], lens, api_visibility="private")
        mask.input(gpu_task(bind(on_lens, loader)), [model, text, mask], lens, api_visibility="private")
        clear_first(embed_btn.click, [embed_notice]).then(
            gpu_task(bind(on_embed, loader)), [model, sentences], [embed_notice, heatmap, scatter], api_visibility="private"
        )

        api_endpoint(fill_mask_api, loader, api_name="fill_mask")
        api_endpoint(embed_api, loader, api_name="embed")
    return TabView(inputs={"model": model, "text": text, "top_k": top_k}, run=("bert-fill",), forms={"bert-fill": filled})


if __name__ == "__main__":  # run this tab on its own
    launch_alone(build_bert_tab)
