"""Tokenizer tab: how GPT-2 BPE, BERT WordPiece and T5 SentencePiece split the same text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from playground.config import ASSETS_DIR
from playground.core.inputs import require_text
from playground.core.render.tokens import render_panels, render_word_split
from playground.core.text.tokenize import MAX_CHARS, check_text, tokenize, visible, words_of
from playground.core.text.word_split import MAX_WORD_CHARS, explain_word
from playground.errors import InputError
from playground.models import Family, ModelLoader, presets_of
from playground.models.sources import MAX_SOURCE_LEN
from playground.ui.common import TabView, api_endpoint, bind, examples, form_event, launch_alone, on_page_load, user_errors
from playground.ui.visitor_limits import LIGHT

EXPLAINER = """
### Text becomes tokens before a model sees it
Think of a jigsaw puzzle: the model owns a fixed box of pieces (its **vocabulary**) and must cut
every text into pieces from that box. Frequent words get one piece; rare words are assembled from
several. Each family learned its box differently:

- **GPT-2, byte-level BPE**: starts from the 256 bytes and applies learned **merges** in the order
  they were learned. Nothing is ever unknown. `Ġ` marks a leading space.
- **BERT, WordPiece**: lower-cases, splits on spaces and punctuation, then takes the **longest
  piece that fits**, left to right; `##` continues a word; a word it cannot spell becomes `[UNK]`.
- **T5, SentencePiece unigram**: every piece has a probability; it picks the **most probable
  segmentation** of each word. `▁` marks the start of a word.

Hover a chip for its id, raw vocabulary string and character span. Pick a word below to replay
the algorithm's own steps for it.
"""

EXAMPLES = [
    "The quick brown fox jumps over the lazy dog.",
    "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)",
    "On 2024-03-15 the invoice #4521 came to $1,234.56 (incl. 19% VAT).",
    "I ❤️ tokenizers 🤗🎉 — 東京は日本の首都です。",
    "Ths sentance has sevral misspeled wrds.",
    "Donaudampfschiffahrtsgesellschaftskapitän",
    "spaces   and\ttabs\n\n\nand newlines   ",
]
MAX_TOKENIZERS = 6  # panels side by side, checked by on_tokenize
MAX_WORD_CHOICES = 300  # words offered in the word-split dropdown
COMPARE_COLUMNS = ["tokenizer", "algorithm", "tokens", "from the text", "characters", "words", "chars/token", "lossless"]


def tokenizer_choices(assets_dir=ASSETS_DIR) -> list[str]:
    """The real tokenizer presets, then the embedded models' own tokenizers (folders in assets/)."""
    choices = [p.hub_id for p in presets_of(Family.TOKENIZER)]
    models = assets_dir / "models"
    if models.is_dir():
        for folder in sorted(models.iterdir()):
            if (folder / "tokenizer.json").exists() or (folder / "tokenizer_config.json").exists():
                choices.append(str(folder.relative_to(assets_dir.parent)))
    return choices


def _selected(names: Any, other: Any) -> list[str]:
    if names is None:
        names = []
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InputError("tokenizers must be a list of names.")
    chosen = list(dict.fromkeys(require_text(n, "tokenizer", max_chars=MAX_SOURCE_LEN).strip() for n in names if n.strip()))
    other = require_text(other or "", "other tokenizer", max_chars=MAX_SOURCE_LEN).strip()
    if other and other not in chosen:
        chosen.append(other)
    if not chosen:
        raise InputError("Pick at least one tokenizer.")
    if len(chosen) > MAX_TOKENIZERS:
        raise InputError(f"Pick at most {MAX_TOKENIZERS} tokenizers at once (got {len(chosen)}).")
    return chosen


def _tokenizer(loader: ModelLoader, name: Any) -> Any:
    name = require_text(name, "tokenizer", max_chars=MAX_SOURCE_LEN).strip()
    return loader.load(name, Family.TOKENIZER).tokenizer


def word_choices(tokenizer: Any, text: str) -> list[tuple[str, str]]:
    """(label, word) choices, words split into the most tokens first, each word once."""
    seen: dict[str, int] = {}
    for w in words_of(tokenizer, text):
        if w.text not in seen:
            seen[w.text] = len(w.tokens)
    ranked = sorted(seen.items(), key=lambda kv: -kv[1])[:MAX_WORD_CHOICES]
    return [(f"{visible(word)}  ({n} token{'s' if n != 1 else ''})", word) for word, n in ranked]


# ---- event handlers: loader and plain values in, values for the outputs out -----------------------


@dataclass(frozen=True)
class TokenizeRequest:
    """One text through the chosen tokenizers, as the page asks it."""

    text: str  # the text to split
    names: list[str]  # the preset tokenizers chosen
    other: str = ""  # one more tokenizer: a Hub id or an allowed folder ("" for none)
    show_ids: bool = False  # show each token's id under it


@user_errors
def on_tokenize(loader: ModelLoader, request: TokenizeRequest):
    """Tokenize `text` with each chosen tokenizer.

    Returns, in the outputs' order: panels HTML, comparison table, token-count chart data, id lists
    (JSON text), the word-split tokenizer choices, the word choices, and an emptied steps view.
    """
    text = check_text(request.text)
    chosen = _selected(request.names, request.other)
    loaded = [loader.load(n, Family.TOKENIZER) for n in chosen]
    results = [tokenize(lm.tokenizer, text, name=n) for n, lm in zip(chosen, loaded)]
    # for each panel, which files actually ran and why
    sources = [f"{lm.source.kind.value} {lm.source.short_location()} ({lm.source.note})" for lm in loaded]
    rows = [
        [t.tokenizer, t.algorithm, t.counts.tokens, t.counts.text_tokens, t.counts.characters, t.counts.words, t.counts.chars_per_token,
         "yes" if t.lossless else "no"]
        for t in results
    ]
    df = pd.DataFrame(rows, columns=COMPARE_COLUMNS)
    id_json = "{\n" + ",\n".join(f'  "{t.tokenizer}": {t.ids}' for t in results) + "\n}"
    first_words = word_choices(loaded[0].tokenizer, text)
    return (
        render_panels(results, bool(request.show_ids), sources),
        df,
        df[["tokenizer", "tokens"]],
        id_json,
        gr.update(choices=chosen, value=chosen[0]),
        gr.update(choices=first_words, value=first_words[0][1] if first_words else None),
        "",
    )


@user_errors
def on_split_tokenizer(loader: ModelLoader, text: str, name: str):
    """The word choices for the tokenizer picked in the word-split view."""
    if not name:
        return gr.update(choices=[], value=None)
    choices = word_choices(_tokenizer(loader, name), check_text(text))
    return gr.update(choices=choices, value=choices[0][1] if choices else None)


@user_errors
def on_explain(loader: ModelLoader, tokenizer: str, word: str) -> str:
    """HTML of the steps by which `tokenizer` splits `word` (as written in the text)."""
    if not tokenizer:
        raise InputError("Tokenize first, then pick a tokenizer and a word.")
    word = require_text(word or "", "word", max_chars=MAX_WORD_CHARS)
    return render_word_split(explain_word(_tokenizer(loader, tokenizer), word), tokenizer)


@user_errors
def tokenize_api(loader: ModelLoader, text: str, tokenizer: str) -> dict:
    """Tokenize `text` with `tokenizer` (a preset's Hub id or an allowed folder).

    Returns {"tokenizer", "algorithm", "tokens": [{"id", "text", "start", "end", "special"}],
    "counts": {"tokens", "characters", "words", "chars_per_token", "text_tokens"}, "lossless"}; start/end
    are character offsets into `text` (null for tokens the tokenizer added).
    """
    name = require_text(tokenizer, "tokenizer", max_chars=MAX_SOURCE_LEN).strip()
    return tokenize(_tokenizer(loader, name), check_text(text), name=name).to_json()


# ---- layout and wiring --------------------------------------------------------------------------


def build_tokenizer_tab(loader: ModelLoader) -> TabView:
    """The tokenizer visualizer. Named API endpoints: `/tokenize(text, tokenizer)` -> JSON, `/explain_word`."""
    with gr.Column():  # a column of the app's page (a nested gr.Blocks costs a whole app's setup)
        gr.Markdown(EXPLAINER)
        text = gr.Textbox(label="Text", lines=5, value=EXAMPLES[0], max_length=MAX_CHARS, elem_id="tok-text")
        examples([[e] for e in EXAMPLES], [text], "Examples")
        with gr.Row():
            names = gr.CheckboxGroup(
                tokenizer_choices(),
                value=[p.hub_id for p in presets_of(Family.TOKENIZER)],
                label="Tokenizers",
                scale=3,
                elem_id="tok-names",
            )
            other = gr.Textbox(
                label="Another tokenizer: Hub id or allowed folder",
                placeholder="e.g. assets/models/gpt-shakespeare",
                scale=2,
                max_length=MAX_SOURCE_LEN,
            )
        with gr.Row():
            show_ids = gr.Checkbox(label="Show ids and raw strings on the chips", value=False)
            go = gr.Button("Tokenize", variant="primary", elem_id="tok-go")
        panels = gr.HTML(label="Tokens", elem_id="tok-panels")
        # no wrapping: fixed shares of a phone's width broke headers and names letter by letter ("characte rs"); the table
        # keeps each word whole, has the page's width (the chart below it), and scrolls sideways only on a narrower screen
        table = gr.Dataframe(label="Comparison", interactive=False, elem_id="tok-table", wrap=False)
        chart = gr.BarPlot(x="tokenizer", y="tokens", title="Token count", label="Token count", sort=None, y_lim=[0, None], height=240)
        ids = gr.Code(label="Token ids (copy)", language="json", buttons=["copy", "download"], lines=4)
        gr.Markdown("### How was this word split?")
        with gr.Row():
            split_tok = gr.Dropdown(label="Tokenizer", choices=[], scale=1, elem_id="split-tokenizer")
            word = gr.Dropdown(label="Word (as it appears in the text)", choices=[], allow_custom_value=True, scale=2, elem_id="split-word")
            explain_btn = gr.Button("Explain", elem_id="split-explain")
        steps = gr.HTML(elem_id="split-steps")

        tokenized = form_event(
            bind(on_tokenize, loader), TokenizeRequest, {"text": text, "names": names, "other": other, "show_ids": show_ids}
        )
        outputs = [panels, table, chart, ids, split_tok, word, steps]
        go.click(tokenized.event, tokenized.inputs, outputs, api_visibility="private", **LIGHT)
        show_ids.change(tokenized.event, tokenized.inputs, outputs, api_visibility="private", **LIGHT)
        split_tok.input(bind(on_split_tokenizer, loader), [text, split_tok], [word], api_visibility="private", **LIGHT)
        explain_btn.click(bind(on_explain, loader), [split_tok, word], [steps], api_visibility="private", **LIGHT)
        on_page_load(tokenized.event, tokenized.inputs, outputs, api_visibility="private", **LIGHT)

        api_endpoint(tokenize_api, loader, api_name="tokenize", gpu=False, **LIGHT)
        api_endpoint(on_explain, loader, api_name="explain_word", gpu=False, **LIGHT)
    return TabView(inputs={"text": text, "tokenizers": names}, run=("tok-go",), forms={"tok-go": tokenized})


if __name__ == "__main__":  # run this tab on its own
    launch_alone(build_tokenizer_tab)
