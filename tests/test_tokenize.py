"""Tokenizer visualizer compute: ids equal the tokenizers' own, spans, round trip, word-split steps."""

from __future__ import annotations

import functools
import unicodedata

import pytest
from transformers import AutoTokenizer

from playground.config import ASSETS_DIR
from playground.core.render.tokens import MAX_CHIPS, render_chips, render_panels, render_word_split
from playground.core.text.tokenize import MAX_CHARS, tokenize, words_of
from playground.core.text.word_split import explain_word

REAL = ("gpt2", "bert-base-uncased", "t5-small")
TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)",
    "On 2024-03-15 the invoice #4521 came to $1,234.56 (incl. 19% VAT).",
    "I ❤️ tokenizers 🤗🎉 — 東京は日本の首都です。",
    "Ths sentance has sevral misspeled wrds.",
    "Donaudampfschiffahrtsgesellschaftskapitän",
    "spaces   and\ttabs\n\n\nand newlines   ",
    "naïve café résumé Ångström façade",
    "<|endoftext|> [CLS] </s> <extra_id_0>",
    "",
    "👩‍👩‍👧 family emoji, combining é, zero\u200bwidth",
]


@functools.cache
def real(name: str):
    return AutoTokenizer.from_pretrained(ASSETS_DIR / "tokenizers" / name)


def _surface_matches(name: str, surface: str, span: str) -> bool:
    """Does a token's own decoded text equal the input's characters at its span (as the tokenizer normalizes)?"""
    if name == "bert-base-uncased":  # lower-cases and strips accents before WordPiece; "##" joins pieces
        plain = "".join(c for c in unicodedata.normalize("NFD", span) if unicodedata.category(c) != "Mn").lower()
        return surface.removeprefix("##").lower() == plain
    if name == "t5-small":  # "▁" becomes a space; the span leaves that space out; NFKC normalization
        return surface.strip() == unicodedata.normalize("NFKC", span).strip()
    return surface == span  # GPT-2's byte-level BPE is exact


@pytest.mark.parametrize("name", REAL)
@pytest.mark.parametrize("text", TEXTS)
def test_ids_equal_the_tokenizers_own_and_spans_map_back(name, text):
    tok = real(name)
    t = tokenize(tok, text, name=name)
    assert t.ids == tok(text)["input_ids"]
    for token in t.tokens:
        if token.start is None:
            assert token.special and token.end is None
            continue
        assert 0 <= token.start <= token.end <= len(text)
        if token.unknown or token.partial or token.text == "▁":
            continue  # no surface of their own: [UNK], a byte of a character, T5's lone word-start marker
        surface = tok.convert_tokens_to_string([token.text])  # the token decoded by itself: independent of the span
        assert _surface_matches(name, surface, text[token.start:token.end]), (token, surface)
    # spans cover the input in order: each token starts at or after the previous one's start
    starts = [x.start for x in t.tokens if x.start is not None]
    assert starts == sorted(starts)


@pytest.mark.parametrize("name, text, ids", [
    ("gpt2", "Hello world", [15496, 995]),
    ("t5-small", "translate English to German: The house is wonderful.", [13959, 1566, 12, 2968, 10, 37, 629, 19, 1627, 5, 1]),
    ("bert-base-uncased", "Hello world", [101, 7592, 2088, 102]),
])
def test_known_answers(name, text, ids):
    assert tokenize(real(name), text).ids == ids


def test_gpt2_spans_and_byte_pieces_of_an_emoji():
    t = tokenize(real("gpt2"), "Hi 🤗")
    assert [(x.text, x.start, x.end, x.partial) for x in t.tokens] == [
        ("Hi", 0, 2, False), ("ĠðŁ", 2, 4, True), ("¤", 3, 4, True), ("Ĺ", 3, 4, True),
    ]
    assert t.tokens[1].face.startswith("␣") and t.lossless


def test_bert_marks_unknown_and_explains_the_lossy_round_trip():
    t = tokenize(real("bert-base-uncased"), "Hello 🤗 café")
    assert [x.text for x in t.tokens] == ["[CLS]", "hello", "[UNK]", "cafe", "[SEP]"]
    assert t.tokens[2].unknown and t.tokens[0].special and t.tokens[0].start is None
    assert not t.lossless
    reasons = {d.why for d in t.diff if d.kind != "equal"}
    assert {"lower-cased", "unknown → [UNK]", "accents stripped"} <= reasons


def test_t5_whitespace_is_not_kept():
    t = tokenize(real("t5-small"), "a  b\nc")
    assert not t.lossless and any(d.why == "whitespace normalized" for d in t.diff)
    assert t.tokens[-1].text == "</s>" and t.tokens[-1].special


def test_counts():
    t = tokenize(real("gpt2"), "one two three")
    assert (t.counts.tokens, t.counts.characters, t.counts.words) == (3, 13, 3)
    assert t.counts.chars_per_token == pytest.approx(13 / 3, abs=0.01)


def test_api_json_shape():
    out = tokenize(real("bert-base-uncased"), "Hi", name="bert-base-uncased").to_json()
    assert set(out) >= {"tokenizer", "tokens", "counts", "lossless"}
    assert out["tokens"][0] == {"id": 101, "text": "[CLS]", "start": None, "end": None, "special": True}
    assert out["tokens"][1] == {"id": 7632, "text": "hi", "start": 0, "end": 2, "special": False}


@pytest.mark.parametrize("name", REAL)
def test_word_split_steps_end_in_the_tokenizers_tokens(name):
    tok = real(name)
    checked = 0
    for text in TEXTS:
        for word in words_of(tok, text):
            explanation = explain_word(tok, word.text)
            assert explanation.tokens == word.tokens, (word.text, explanation.tokens, word.tokens)
            checked += 1
    assert checked > 40


def test_bpe_steps_apply_merges_in_rank_order():
    e = explain_word(real("gpt2"), " lower")
    piece = e.pieces[0]
    assert piece.initial == ("Ġ", "l", "o", "w", "e", "r")
    ranks = [s.rank for s in piece.bpe_steps]
    assert ranks == sorted(ranks)  # each merge chosen was the best available, so ranks only rise
    assert piece.bpe_steps[-1].pieces == ("Ġlower",)


def test_wordpiece_greedy_longest_match_first():
    e = explain_word(real("bert-base-uncased"), "Tokenizers")
    piece = e.pieces[0]
    assert e.normalized == "tokenizers"
    assert [s.match for s in piece.wordpiece_steps] == ["token", "##izer", "##s"]
    assert piece.wordpiece_steps[0].tried[0] == "tokenizers"  # the whole word was tried first


def test_unigram_best_beats_runner_up():
    e = explain_word(real("t5-small"), "Donaudampfschiff")
    piece = e.pieces[0]
    assert piece.best.total > piece.runner_up.total
    assert piece.best.total == pytest.approx(sum(piece.best.scores), abs=1e-3)
    assert "".join(piece.best.pieces) == "▁Donaudampfschiff"


def test_long_input_tokenizes_exactly_and_caps_chips():
    text = ("To be, or not to be, that is the question: 🤗 東京 " * 3000)[:100_000]
    tok = real("gpt2")
    t = tokenize(tok, text)
    assert t.counts.characters == 100_000 and t.ids == tok(text)["input_ids"]
    html = render_chips(t)
    assert html.count('class="tok ') == MAX_CHIPS and "Showing the first" in html


def test_too_long_input_is_refused_clearly():
    with pytest.raises(ValueError, match="limit"):
        tokenize(real("gpt2"), "x" * (MAX_CHARS + 1))


def test_html_is_escaped():
    t = tokenize(real("gpt2"), "<script>alert(1)</script>")
    html = render_panels([t], show_ids=True)
    assert "<script>" not in html and "&lt;" in html
    split = render_word_split(explain_word(real("gpt2"), "<b>"), "gpt2")
    assert "<b>" not in split.replace("<b>Result:</b>", "")


EMBEDDED = [
    name for name in ("gpt-shakespeare", "bert-shakespeare", "t5-tasks") if (ASSETS_DIR / "models" / name / "tokenizer.json").exists()
]


@pytest.mark.parametrize("name", EMBEDDED)
def test_embedded_models_tokenizers_are_explained_too(name):
    tok = AutoTokenizer.from_pretrained(ASSETS_DIR / "models" / name)
    for text in ["Wherefore art thou Romeo? 42 + 17", "reverse words: red cat", "naïve   café\n"]:
        t = tokenize(tok, text, name=name)
        assert t.ids == tok(text)["input_ids"]
        for word in words_of(tok, text):
            assert explain_word(tok, word.text).tokens == word.tokens


@pytest.mark.parametrize("name, text, lossless", [
    ("bert-base-uncased", "hello world " * 2000 + "Hello", False),  # the only difference is past the diff window
    ("bert-base-uncased", "Hello world " * 2000, False),  # differs at once: the rest is not decoded
    ("gpt2", "🤗 emoji " * 3000, True),  # byte-level pieces cut at the window's edge must not look lossy
    ("t5-small", " ".join(["plain words"] * 2000), True),
], ids=["bert-late-difference", "bert-early-difference", "gpt2-emoji", "t5-plain"])
def test_long_texts_are_judged_lossless_exactly(name, text, lossless):
    t = tokenize(real(name), text)
    assert t.lossless is lossless
    assert t.diff_truncated is (not lossless)
    assert (real(name).decode(t.tokens.plain_ids(), skip_special_tokens=False, clean_up_tokenization_spaces=False) == text) is lossless


def test_chars_per_token_agrees_with_the_counts_shown():
    """BERT's 12 tokens for 44 characters used to show 4.4 chars/token (its [CLS] and [SEP] silently left out)."""
    from playground.core.render.tokens import render_panel

    t = tokenize(real("bert-base-uncased"), "The quick brown fox jumps over the lazy dog.")
    assert t.counts.tokens == t.counts.text_tokens + 2
    assert t.counts.chars_per_token == round(t.counts.characters / t.counts.text_tokens, 2)
    html = render_panel(t)
    assert f"{t.counts.text_tokens} from the text, 2 added" in html and "chars/token (of the text)" in html
