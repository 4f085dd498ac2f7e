"""Tokenizer tab: how GPT-2 BPE, BERT WordPiece and T5 SentencePiece split the same text."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from playground.config import ASSETS_DIR
from playground.core.render_tokens import render_panels, render_word_split
from playground.core.tokenize import check_text, tokenize, visible, words_of
from playground.core.word_split import explain_word
from playground.models import Family, ModelLoader, presets_of
from playground.ui.common import require_text, user_errors

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
MAX_TOKENIZERS = 6
MAX_WORD_CHOICES = 300


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
        raise ValueError("tokenizers must be a list of names.")
    chosen = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    other = require_text(other or "", "other tokenizer", max_chars=512).strip()
    if other and other not in chosen:
        chosen.append(other)
    if not chosen:
        raise ValueError("Pick at least one tokenizer.")
    if len(chosen) > MAX_TOKENIZERS:
        raise ValueError(f"Pick at most {MAX_TOKENIZERS} tokenizers at once (got {len(chosen)}).")
    return chosen


def word_choices(tokenizer: Any, text: str) -> list[tuple[str, str]]:
    """(label, word) choices, words split into the most tokens first, each word once."""
    seen: dict[str, int] = {}
    for w in words_of(tokenizer, text):
        if w.text not in seen:
            seen[w.text] = len(w.tokens)
    ranked = sorted(seen.items(), key=lambda kv: -kv[1])[:MAX_WORD_CHOICES]
    return [(f"{visible(word)}  ({n} token{'s' if n != 1 else ''})", word) for word, n in ranked]


def build_tokenizer_tab(loader: ModelLoader) -> gr.Blocks:
    """The tokenizer visualizer. Named API endpoint: `/tokenize(text, tokenizer)` -> JSON."""

    def load_tokenizer(name: str) -> Any:
        return loader.load(name, Family.TOKENIZER).tokenizer

    with gr.Blocks() as tab:
        gr.Markdown(EXPLAINER)
        text = gr.Textbox(label="Text", lines=5, value=EXAMPLES[0], max_length=200_000, elem_id="tok-text")
        gr.Examples([[e] for e in EXAMPLES], inputs=[text], label="Examples")
        with gr.Row():
            names = gr.CheckboxGroup(tokenizer_choices(), value=[p.hub_id for p in presets_of(Family.TOKENIZER)], label="Tokenizers", scale=3, elem_id="tok-names")
            other = gr.Textbox(label="Another tokenizer: Hub id or allowed folder", placeholder="e.g. assets/models/gpt-shakespeare", scale=2)
        with gr.Row():
            show_ids = gr.Checkbox(label="Show ids and raw strings on the chips", value=False)
            go = gr.Button("Tokenize", variant="primary", elem_id="tok-go")
        panels = gr.HTML(label="Tokens", elem_id="tok-panels")
        with gr.Row():
            table = gr.Dataframe(label="Comparison", interactive=False, elem_id="tok-table")
            chart = gr.BarPlot(x="tokenizer", y="tokens", title="Token count", label="Token count", sort=None, y_lim=[0, None])
        ids = gr.Code(label="Token ids (copy)", language="json", buttons=["copy", "download"], lines=4)
        gr.Markdown("### How was this word split?")
        with gr.Row():
            split_tok = gr.Dropdown(label="Tokenizer", choices=[], scale=1, elem_id="split-tokenizer")
            word = gr.Dropdown(label="Word (as it appears in the text)", choices=[], allow_custom_value=True, scale=2, elem_id="split-word")
            explain_btn = gr.Button("Explain", elem_id="split-explain")
        steps = gr.HTML(elem_id="split-steps")

        @user_errors
        def on_tokenize(text_value, names_value, other_value, show):
            text_value = check_text(text_value)
            chosen = _selected(names_value, other_value)
            loaded = [loader.load(n, Family.TOKENIZER) for n in chosen]
            results = [tokenize(lm.tokenizer, text_value, name=n) for n, lm in zip(chosen, loaded)]
            # for each panel, which files actually ran and why
            sources = [f"{lm.source.kind.value} {lm.source.short_location()} ({lm.source.note})" for lm in loaded]
            rows = [
                [t.tokenizer, t.algorithm, t.counts.tokens, t.counts.characters, t.counts.words, t.counts.chars_per_token, "yes" if t.lossless else "no"]
                for t in results
            ]
            df = pd.DataFrame(rows, columns=["tokenizer", "algorithm", "tokens", "characters", "words", "chars/token", "lossless"])
            id_json = "{\n" + ",\n".join(f'  "{t.tokenizer}": {t.ids}' for t in results) + "\n}"
            first_words = word_choices(loaded[0].tokenizer, text_value)
            return (
                render_panels(results, bool(show), sources),
                df,
                df[["tokenizer", "tokens"]],
                id_json,
                gr.update(choices=chosen, value=chosen[0]),
                gr.update(choices=first_words, value=first_words[0][1] if first_words else None),
                "",
            )

        @user_errors
        def on_split_tokenizer(text_value, name):
            if not name:
                return gr.update(choices=[], value=None)
            choices = word_choices(load_tokenizer(require_text(name, "tokenizer", max_chars=512)), check_text(text_value))
            return gr.update(choices=choices, value=choices[0][1] if choices else None)

        @user_errors
        def on_explain(tokenizer: str, word: str) -> str:
            """HTML of the steps by which `tokenizer` splits `word` (as written in the text)."""
            tokenizer = require_text(tokenizer or "", "tokenizer", max_chars=512)
            if not tokenizer:
                raise ValueError("Tokenize first, then pick a tokenizer and a word.")
            word = require_text(word or "", "word", max_chars=200)
            return render_word_split(explain_word(load_tokenizer(tokenizer), word), tokenizer)

        outputs = [panels, table, chart, ids, split_tok, word, steps]
        go.click(on_tokenize, [text, names, other, show_ids], outputs, api_visibility="undocumented")
        show_ids.change(on_tokenize, [text, names, other, show_ids], outputs, api_visibility="private")
        split_tok.input(on_split_tokenizer, [text, split_tok], [word], api_visibility="private")
        explain_btn.click(on_explain, [split_tok, word], [steps], api_name="explain_word")
        tab.load(on_tokenize, [text, names, other, show_ids], outputs, api_visibility="private")

        @user_errors
        def tokenize_api(text: str, tokenizer: str) -> dict:
            """Tokenize `text` with `tokenizer` (a preset's Hub id or an allowed folder).

            Returns {"tokenizer", "algorithm", "tokens": [{"id", "text", "start", "end", "special"}],
            "counts": {"tokens", "characters", "words", "chars_per_token"}, "lossless"}; start/end
            are character offsets into `text` (null for tokens the tokenizer added).
            """
            name = require_text(tokenizer, "tokenizer", max_chars=512).strip()
            return tokenize(load_tokenizer(name), check_text(text), name=name).to_json()

        gr.api(tokenize_api, api_name="tokenize")
    return tab


if __name__ == "__main__":  # run this tab on its own
    from playground.config import Settings

    build_tokenizer_tab(ModelLoader(Settings.from_env())).launch()
