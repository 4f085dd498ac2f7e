"""BERT and T5 compute against transformers' own answers; the GPT, BERT and T5 tabs' handlers; their API endpoints."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
import torch
from gradio_client import Client

from playground.config import Settings
from playground.core.text import masked, seq2seq
from playground.errors import InputError
from playground.models import ModelLoader
from playground.ui import bert_tab, gpt_tab, t5_tab


@pytest.fixture(scope="module")
def embedded() -> ModelLoader:
    return ModelLoader(Settings(offline=True, device="cpu"))


@pytest.fixture
def tiny(shared_loader, tiny_root):
    loader = shared_loader
    return {name: loader.load(str(tiny_root / name), family) for name, family in
            (("tiny-bert", "masked-lm"), ("tiny-t5", "seq2seq"), ("tiny-bert-base", "encoder"))}


def bert(embedded):
    return embedded.load("bert-base-uncased", "masked-lm")


def t5(embedded):
    return embedded.load("t5-small", "seq2seq")


# ---- BERT: fill-mask, lens, embeddings --------------------------------------------------------------


@pytest.mark.parametrize("which", ["tiny", "embedded"])
def test_fill_mask_equals_the_transformers_pipeline(tiny, embedded, which):
    from transformers import pipeline

    lm = tiny["tiny-bert"] if which == "tiny" else bert(embedded)
    text = "Good morrow to you, [MASK] lord. Give me your [MASK]."
    ours = masked.fill_mask(lm.model, lm.tokenizer, text, top_k=5)
    theirs = pipeline("fill-mask", model=lm.model, tokenizer=lm.tokenizer, device=-1)(text, top_k=5)
    assert len(ours.predictions) == len(theirs) == 2
    for mine, pipe in zip(ours.predictions, theirs):
        assert [p.token_id for p in mine] == [t["token"] for t in pipe]
        assert [p.prob for p in mine] == pytest.approx([t["score"] for t in pipe], abs=1e-6)


def test_mask_lens_last_layer_is_fill_masks_answer(embedded):
    lm = bert(embedded)
    text = "The [MASK] is dead; long live the [MASK]."
    lens = masked.mask_lens(lm.model, lm.tokenizer, text, mask=1, k=5)
    final = masked.fill_mask(lm.model, lm.tokenizer, text, 5).predictions[1]
    assert lens.layers == ["embeddings", "layer 1", "layer 2", "layer 3"]
    assert [p.token_id for p in lens.top[-1]] == [p.token_id for p in final]
    assert [p.prob for p in lens.top[-1]] == pytest.approx([p.prob for p in final], abs=1e-6)


def test_embeddings_are_mean_pooled_and_compared_by_cosine(tiny):
    lm = tiny["tiny-bert-base"]  # an encoder with no head works for embeddings
    sentences = ["a cat sat", "a dog sat down today", "stocks fell"]
    e = masked.embed(lm.model, lm.tokenizer, sentences)
    with torch.no_grad():
        for i, s in enumerate(sentences):  # each sentence alone: no padding to worry about
            h = lm.model(**lm.tokenizer(s, return_tensors="pt")).last_hidden_state[0].mean(0)
            np.testing.assert_allclose(e.vectors[i], h.numpy(), atol=1e-5)
    v = torch.tensor(e.vectors)
    np.testing.assert_allclose(e.similarity, torch.nn.functional.cosine_similarity(v[:, None], v[None], dim=-1).numpy(), atol=1e-5)
    assert e.projection.shape == (3, 2)


@pytest.mark.parametrize("text, fragment", [
    ("no mask here", "at least one"), ("[MASK] " * 9, "at most 8"), ("x" * 2001, "limit is"),
    # a mask past the model's positions was reported as no mask at all (hold, round 2, item 5)
    ("the king is dead " * 60 + "long live the [MASK].", r"first \[MASK\] is token 2\d\d of 2\d\d, but this model reads \d+ tokens"),
])
def test_fill_mask_refuses_bad_text(embedded, text, fragment):
    lm = bert(embedded)
    with pytest.raises(InputError, match=fragment):
        masked.fill_mask(lm.model, lm.tokenizer, text)


@pytest.mark.parametrize("text, fragment", [("one line", "at least two"), ("\n".join(["s"] * 17), "at most 16")])
def test_embed_refuses_bad_sentences(text, fragment):
    with pytest.raises(InputError, match=fragment):
        masked.parse_sentences(text)


# ---- T5: greedy, beams, lens ------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["tiny", "embedded"])
@pytest.mark.parametrize("beams", [2, 4])
def test_beams_and_scores_equal_generates(tiny, embedded, which, beams):
    lm = tiny["tiny-t5"] if which == "tiny" else t5(embedded)
    text = "reverse words: red cat blue dog"
    ours = seq2seq.text_to_text(lm.model, lm.tokenizer, text, num_beams=beams, max_new_tokens=10)
    enc = lm.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        theirs = lm.model.generate(**enc, num_beams=beams, num_return_sequences=beams, max_new_tokens=10, do_sample=False,
                                   output_scores=True, return_dict_in_generate=True)
    expected = [
        seq2seq._strip_pad(tuple(s[1:].tolist()), lm.model.config.pad_token_id, lm.model.config.eos_token_id) for s in theirs.sequences
    ]
    assert ours.sequences == expected
    assert ours.scores == pytest.approx(theirs.sequences_scores.tolist(), abs=1e-6)
    # the recorded steps rebuild the search: a finished beam's summed log-probs / its length is generate's score
    finished = {c.ids: c.score for step in ours.steps for c in step.candidates if c.status == "finished"}
    for seq, score in zip(ours.sequences, ours.scores):
        if seq in finished:
            assert finished[seq] / len(seq) == pytest.approx(score, abs=1e-4)
    # and every live beam of a step was a live extension of the step before
    for before, after in zip(ours.steps, ours.steps[1:]):
        alive = {c.ids for c in before.candidates if c.status == "live"}
        assert {b.ids for b in after.live} <= alive


def test_greedy_equals_generate_and_is_scored_like_a_beam(embedded):
    lm = t5(embedded)
    text = "add: 47 + 38"
    ours = seq2seq.text_to_text(lm.model, lm.tokenizer, text, num_beams=1, max_new_tokens=8)
    enc = lm.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        theirs = lm.model.generate(**enc, max_new_tokens=8, do_sample=False)[0, 1:].tolist()
        assert list(ours.sequences[0]) == theirs
        logits = lm.model(**enc, decoder_input_ids=torch.tensor([[0, *theirs[:-1]]])).logits[0]
    by_hand = logits.log_softmax(-1)[torch.arange(len(theirs)), torch.tensor(theirs)].sum().item()
    assert ours.scores[0] == pytest.approx(by_hand / len(theirs), abs=1e-4)  # per token, as beam search scores its beams
    assert lm.tokenizer.decode(ours.sequences[0], skip_special_tokens=True) == "85"
    # one definition: the same output scores the same with 1 beam and with 8 (it was -0.7267 summed vs -0.0454 per token)
    eight = seq2seq.text_to_text(lm.model, lm.tokenizer, text, num_beams=8, max_new_tokens=8)
    assert eight.sequences[0] == ours.sequences[0] and eight.scores[0] == pytest.approx(ours.scores[0], abs=1e-4)


@pytest.mark.parametrize("which", ["tiny", "embedded"])
def test_decoder_lens_last_layer_is_the_models_own(tiny, embedded, which):
    lm = tiny["tiny-t5"] if which == "tiny" else t5(embedded)
    text = "sort numbers: 42 7 19"
    seq = seq2seq.text_to_text(lm.model, lm.tokenizer, text, 1, 6).sequences[0]
    lens = seq2seq.decoder_lens(lm.model, lm.tokenizer, text, seq, position=1, k=5)
    with torch.no_grad():
        own = (
            lm.model(**lm.tokenizer(text, return_tensors="pt"), decoder_input_ids=torch.tensor([[0, *seq]]))
            .logits[0, 1]
            .softmax(-1)
            .topk(5)
        )
    assert [t for t, _ in lens.top[-1]] == own.indices.tolist()
    assert [p for _, p in lens.top[-1]] == pytest.approx(own.values.tolist(), abs=1e-5)


@pytest.mark.parametrize("args, fragment", [(("", 2, 8), "Enter an input"), (("x", 9, 8), "beams must be between 1 and 8"),
                                            (("x", 2, 65), "max new tokens must be between 1 and 64")])
def test_text_to_text_refuses_bad_requests(args, fragment):
    with pytest.raises(InputError, match=fragment):
        seq2seq.check_request(*args)


# ---- the tabs' handlers -----------------------------------------------------------------------------


def test_gpt_streams_steps_and_a_branch_keeps_the_original(embedded):
    outs = list(
        gpt_tab.on_generate(embedded, gpt_tab.GenerateRequest("gpt2", "ROMEO.\n", "sample", 12, 0.8, 20, 0.9, 1.0, 7, 4), progress=None)
    )
    assert len(outs) == 12  # one update per token: the text streams
    session = outs[-1][1]
    assert [o[0].count('lm-chip lm-new') for o in outs] == list(range(1, 13))  # each update shows one more token
    text, bars, alternative, lens = gpt_tab.on_inspect(embedded, session, 5)
    chips = text.split('<span class="lm-chip ')[1:]  # the inspected step is outlined in the text, and only it
    assert [i for i, c in enumerate(chips) if c.startswith("lm-new lm-inspected")] == [4] and "step 5, inspected below" in text
    assert (
        "softmax of the logits" in bars
        and lens["value"].shape == (5, 6)
        and "Logit lens at step 5, where the text got" in lens["label"]
        and alternative["value"] != session.steps[4].token_id
    )
    html, branched = gpt_tab.on_branch(embedded, session, 5, alternative["value"])
    assert branched.branch[4].token_id == alternative["value"] and [s.token_id for s in branched.steps] == [
        s.token_id for s in session.steps
    ]
    assert [s.token_id for s in branched.branch[:4]] == [s.token_id for s in session.steps[:4]]
    assert "lm-forced" in html and "branch: step 5" in html


def test_gpt_stepping_equals_one_run_with_the_same_seed(embedded):
    full = list(
        gpt_tab.on_generate(embedded, gpt_tab.GenerateRequest("gpt2", "To be", "sample", 8, 1.2, 0, 1.0, 1.0, 11, 4), progress=None)
    )[-1][1]
    session = None
    for _ in range(8):
        session = gpt_tab.on_step(
            embedded, gpt_tab.GenerateRequest("gpt2", "To be", "sample", 8, 1.2, 0, 1.0, 1.0, 11), session, progress=None
        )[1]
    assert [s.token_id for s in session.steps] == [s.token_id for s in full.steps]


@pytest.mark.parametrize(
    "tab_call, fragment",
    [
        (
            lambda L: list(
                gpt_tab.on_generate(L, gpt_tab.GenerateRequest("bert-base-uncased", "hi", "greedy", 5, 1, 0, 1, 1, 0, 4), progress=None)
            ),
            "needs a decoder-only",
        ),
        (
            lambda L: list(gpt_tab.on_generate(L, gpt_tab.GenerateRequest("gpt2", "hi", "greedy", 500, 1, 0, 1, 1, 0, 4), progress=None)),
            "max new tokens",
        ),
        (lambda L: bert_tab.on_fill(L, bert_tab.FillRequest("gpt2", "a [MASK]", 5), progress=None), "needs a masked-LM"),
        (lambda L: t5_tab.on_run(L, t5_tab.TextToTextRequest("bert-base-uncased", "x", 2, 8), progress=None), "needs an encoder-decoder"),
    ],
)
def test_tabs_say_what_to_change(embedded, tab_call, fragment):
    with pytest.raises(gr.Error, match=fragment):
        tab_call(embedded)


def test_bert_and_t5_handlers_fill_their_outputs(embedded):
    notice, sentence, table, picks = bert_tab.on_fill(
        embedded, bert_tab.FillRequest("bert-base-uncased", "The [MASK] is dead; long live the [MASK].", 3), progress=None
    )
    assert (
        "embedded" in notice and sentence.count("lm-mask") == 2 and len(table) == 6 and picks["choices"] == [("mask 1", 0), ("mask 2", 1)]
    )
    assert list(bert_tab.on_lens(embedded, "bert-base-uncased", "The [MASK] is dead.", 0)["layer"]) == [
        "embeddings",
        "layer 1",
        "layer 2",
        "layer 3",
    ]
    _, heatmap, projection = bert_tab.on_embed(
        embedded, "bert-base-uncased", "The king is dead.\nThe queen is dead.\nGive me wine.", progress=None
    )
    assert heatmap.count("<td") == 9 and projection.count("<circle") == 3 and "3. Give me wine." in projection
    notice, text, tokens, beams, steps, position, result = t5_tab.on_run(
        embedded, t5_tab.TextToTextRequest("t5-small", "reverse words: red cat blue dog", 3, 12), progress=None
    )
    assert text == "dog blue cat red" and len(beams) == 3 and "finished" in steps and "five tasks" in notice
    lens = t5_tab.on_lens(embedded, "t5-small", "reverse words: red cat blue dog", result, 2)
    assert lens["value"].shape == (4, 6)
    # labelled with the token it explains (the model's second output word), which is the last layer's top guess
    assert "position 2, where the model wrote '▁blue'" in lens["label"] and lens["value"].iloc[-1]["#1"].startswith("▁blue")


# ---- the endpoints over HTTP ------------------------------------------------------------------------


def test_lm_endpoints_over_http(live_app, embedded):
    client = Client(live_app, verbose=False)
    out = client.predict("ROMEO.\n", "gpt2", 12, 1.0, 0, 1.0, 0, False, api_name="/generate")
    lm = embedded.load("gpt2", "causal-lm")
    ids = lm.tokenizer("ROMEO.\n", return_tensors="pt").input_ids
    expected = lm.model.generate(ids, max_new_tokens=12, do_sample=False)[0, ids.shape[1]:]
    assert out["text"] == lm.tokenizer.decode(expected) and len(out["steps"]) == 12
    assert out["steps"][0]["candidates"][0]["token"] == out["tokens"][0]  # greedy takes the best candidate
    sampled = [client.predict("ROMEO.\n", "gpt2", 12, 1.0, 0, 1.0, 5, True, api_name="/generate")["text"] for _ in range(2)]
    assert sampled[0] == sampled[1]  # same seed, same text
    masks = client.predict("Good morrow to you, [MASK] lord.", "bert-base-uncased", 3, api_name="/fill_mask")["masks"]
    assert len(masks) == 1 and masks[0][0]["token"] == "my"
    sim = client.predict("The king is dead.\nThe queen is dead.", "bert-base-uncased", api_name="/embed")
    assert sim["sentences"] == ["The king is dead.", "The queen is dead."] and sim["similarity"][0][0] == pytest.approx(1.0, abs=1e-5)
    t = client.predict("add: 47 + 38", "t5-small", 2, 8, api_name="/text2text")
    assert t["text"] == "85" and len(t["beams"]) == 2 and t["beams"][0]["score"] >= t["beams"][1]["score"]
    with pytest.raises(Exception, match="beams must be between 1 and 8"):
        client.predict("add: 1 + 2", "t5-small", 50, 8, api_name="/text2text")


def test_gpt_logit_lens_last_layer_is_the_embedded_models_own(embedded):
    from playground.core.text.generation import logit_lens

    lm = embedded.load("gpt2", "causal-lm")
    ids = lm.tokenizer("ROMEO.\nBut soft, what light", return_tensors="pt").input_ids
    lens = logit_lens(lm.model, ids, k=5)
    with torch.no_grad():
        own = lm.model(ids).logits[0, -1].softmax(-1).topk(5)
    assert [t for t, _ in lens.top[-1]] == own.indices.tolist()
    assert [p for _, p in lens.top[-1]] == pytest.approx(own.values.tolist(), abs=1e-5)


def test_mask_lens_last_layer_is_the_tiny_models_own(tiny):
    lm = tiny["tiny-bert"]
    enc = lm.tokenizer("hello [MASK] world", return_tensors="pt")
    where = (enc.input_ids[0] == lm.tokenizer.mask_token_id).nonzero()[0, 0]
    lens = masked.mask_lens(lm.model, lm.tokenizer, "hello [MASK] world", 0, 5)
    with torch.no_grad():
        own = lm.model(**enc).logits[0, where].softmax(-1).topk(5)
    assert [p.token_id for p in lens.top[-1]] == own.indices.tolist()
    assert [p.prob for p in lens.top[-1]] == pytest.approx(own.values.tolist(), abs=1e-6)


def test_gpt_beam_search_keeps_the_step_slider_valid(embedded):
    """Beam search used to set the step slider's maximum to its minimum (1): every output turned into an error."""
    *_, last = gpt_tab.on_generate(embedded, gpt_tab.GenerateRequest("gpt2", "ROMEO.\n", "beam", 6, 1.0, 0, 1.0, 1.0, 0, 3), progress=None)
    text, session, slider, notice = last
    assert slider["maximum"] > 1 and slider["interactive"] is False and session is None and "beams" in text
    *_, greedy = gpt_tab.on_generate(
        embedded, gpt_tab.GenerateRequest("gpt2", "ROMEO.\n", "greedy", 3, 1.0, 0, 1.0, 1.0, 0, 3), progress=None
    )
    assert greedy[2]["interactive"] is True  # back to greedy: stepping through works again


def test_gpt_beam_search_says_it_has_no_single_steps_instead_of_an_error(embedded):
    """Beam search showed its text, then a toast 'Generate (or Step) first' and Error badges on 'Inside one step', which kept
    the previous run's bars (the learner's second walk). The panels now say why they are empty, and no error is raised."""
    *_, last = gpt_tab.on_generate(embedded, gpt_tab.GenerateRequest("gpt2", "ROMEO.\n", "beam", 6, num_beams=3), progress=None)
    text, bars, alternative, lens = gpt_tab.on_inspect(embedded, last[1], 1)  # what the page chains after Generate
    assert "beam search keeps several texts" in bars and alternative["choices"] == [] and lens["value"] is None


@pytest.mark.parametrize("prompt_chars, max_new", [(900, 40), (124, 200), (4000, 1)])
def test_gpt_cuts_a_prompt_longer_than_the_context_and_says_so(embedded, prompt_chars, max_new):
    """A 900-character prompt (the box allows 4,000) crashed the embedded GPT (256 positions) with an IndexError, and so did
    a 124-character prompt with 200 new tokens through /generate (learner walk 1; hold round 2, item 3)."""
    from playground.core.text.generation import context_length

    verse = ("But soft, what light through yonder window breaks? It is the east, and Juliet is the sun. " * 60)[:prompt_chars]
    lm = embedded.load("gpt2", "causal-lm")
    context = context_length(lm.model.config)
    *_, (text, session, _, notice) = gpt_tab.on_generate(embedded, gpt_tab.GenerateRequest("gpt2", verse, "greedy", max_new),
                                                          progress=None)
    assert len(session.prompt_ids) + len(session.steps) - 1 <= context and len(session.steps) >= 1
    if len(lm.tokenizer(verse)["input_ids"]) + max_new - 1 > context:
        assert f"this model reads {context} positions: only the last" in notice
    out = gpt_tab.generate_api(embedded, verse, "gpt2", max_new_tokens=max_new)  # the API cuts the same way
    assert len(out["tokens"]) >= 1


def test_sampling_candidates_are_only_the_tokens_the_rules_kept(embedded):
    from playground.core.text.generation import SamplingConfig, step_through

    lm = embedded.load("gpt2", "causal-lm")
    ids = torch.tensor([lm.tokenizer("ROMEO.\n")["input_ids"]])
    cfg = SamplingConfig(max_new_tokens=4, do_sample=True, temperature=0.8, top_k=3, top_p=0.9, seed=1)
    for step in step_through(lm.model, ids, cfg):
        assert 1 <= len(step.candidates) <= 3 and all(c.prob > 0 for c in step.candidates)
        assert abs(sum(c.prob for c in step.candidates) - 1) < 1e-4  # the kept tokens carry all the probability
        assert len(step.raw_candidates) == cfg.num_candidates  # the model's own top list is unchanged


@pytest.mark.parametrize("mode, caption", [("greedy", "most likely one (greedy"), ("sample", "drawn at random")])
def test_the_step_caption_says_how_the_token_was_chosen(embedded, mode, caption):
    *_, (html, session, _, _) = gpt_tab.on_generate(
        embedded, gpt_tab.GenerateRequest("gpt2", "ROMEO.\n", mode, 3, 1.0, 0, 1.0, 1.0, 0, 2), progress=None
    )
    _, bars, _, _ = gpt_tab.on_inspect(embedded, session, 1)
    assert caption in bars and "chosen by the sampler" not in bars


def test_lowercase_mask_is_the_mask_too(embedded):
    lm = embedded.load("bert-base-uncased", "masked-lm")
    upper = masked.fill_mask(lm.model, lm.tokenizer, "O Romeo, Romeo! wherefore art [MASK] Romeo?", 3)
    lower = masked.fill_mask(lm.model, lm.tokenizer, "O Romeo, Romeo! wherefore art [mask] Romeo?", 3)
    assert [p.token_id for p in lower.predictions[0]] == [p.token_id for p in upper.predictions[0]]


def test_projection_labels_say_when_they_are_cut():
    from playground.core.render.lm import projection_svg

    svg = projection_svg(["Bring me a cup of sack, and be quick about it.", "Short."], np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert "Bring me a cup of sack,…" in svg and "<title>Bring me a cup of sack, and be quick about it.</title>" in svg
    assert "2. Short.<title>" in svg


def test_projection_labels_both_axes():
    """Issue 16, item 17: the projection's vertical axis had no label."""
    import re

    from playground.core.render.lm import projection_svg

    svg = projection_svg(["a", "b"], np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert ">principal component 1</text>" in svg
    assert re.search(r'transform="rotate\(-90[^"]*"[^>]*>principal component 2</text>', svg)
