"""A test per lesson (issue 29, item 7): what each lesson of the Start path claims, checked on what the room runs
(offline: the embedded models), through the lesson's own link values. A lesson whose claim stops being true of the
running models fails here, not in front of a room. Live reveals are checked in tests/test_workshop.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from playground.config import Settings
from playground.lessons.path import LESSONS, lesson_by_id
from playground.models import Family, ModelLoader
from tests.conftest import has_model


@pytest.fixture(scope="module")
def room() -> ModelLoader:
    """The page's models offline: the presets resolve to the embedded teaching models."""
    return ModelLoader(Settings(offline=True, device="cpu"))


def link(lesson_id: str) -> dict:
    return lesson_by_id(lesson_id).link


def test_every_lesson_has_a_test_here_or_a_live_reveal():
    tested = {name[len("test_lesson_"):].split("__")[0].replace("_", "-") for name in globals() if name.startswith("test_lesson_")}
    for lesson in LESSONS:
        assert lesson.id in tested or lesson.question.live is not None, f"lesson {lesson.id!r} has no test of its claim"


def test_lesson_embeddings__the_two_kings_share_a_token_row_not_a_position(room):
    from playground.ui.inside_tab import inside_api

    values = link("embeddings")
    ids = room.load("gpt2", Family.TOKENIZER).tokenizer(values["text"])["input_ids"]
    kings = [i for i, t in enumerate(ids) if t == ids[-1]]
    assert len(kings) == 2  # the query (the last token) is the second "king"
    first, second = (inside_api(room, values["model"], values["text"], 0, 0, i) for i in kings)
    assert first["embedding"]["token"] == second["embedding"]["token"]  # the same row of the embedding matrix
    assert first["embedding"]["position"] != second["embedding"]["position"]  # a different position vector
    assert not np.allclose(first["embedding"]["sum"], second["embedding"]["sum"])


def test_lesson_attention__each_query_rows_weights_add_up_to_one(room):
    from playground.ui.attention_tab import attention_api

    values = link("attention")
    weights = np.array(attention_api(room, values["model"], values["text"])["attentions"]["encoder"])
    assert np.allclose(weights.sum(-1), 1.0, atol=1e-5)


def test_lesson_causal__gpt_cannot_look_ahead_and_bert_can(room):
    from playground.ui.attention_tab import attention_api

    values = link("causal")
    gpt = np.array(attention_api(room, values["model"], values["text"])["attentions"]["decoder"])
    assert np.all(np.triu(gpt, k=1) == 0)  # every weight on a later token is exactly 0
    bert = np.array(attention_api(room, "bert-base-uncased", values["text"])["attentions"]["encoder"])
    assert np.triu(bert, k=1).sum() > 1  # the encoder's square is full


def test_lesson_cross_attention__queries_are_the_decoders_and_reverse_words_runs_backwards(room):
    from playground.ui.attention_tab import attention_api

    values = link("cross-attention")
    out = attention_api(room, values["model"], values["text"], values["target"])
    cross = np.array(out["attentions"]["cross"])  # [layer][head][decoder token][encoder token]
    assert cross.shape[2] == len(out["target_tokens"]) and cross.shape[3] == len(out["tokens"])
    words = ["▁red", "▁cat", "▁blue", "▁dog"]
    source = [out["tokens"].index(w) for w in words]
    rows = cross.mean(axis=(0, 1))[:4][:, source]  # the decoder's first four rows: <pad>, dog, blue, cat
    assert out["target_tokens"][:4] == ["<pad>", "▁dog", "▁blue", "▁cat"]
    # each row reads hardest, among the four words, the one it is about to write: dog, blue, cat, red; the anti-diagonal
    # the reveal promises (a row is the token before: the decoder reads its own last output and predicts the next)
    assert rows.argmax(1).tolist() == [3, 2, 1, 0], rows.round(2)


def test_lesson_kv_cache__the_cached_run_computes_the_same_scores_and_the_bytes_it_says(room):
    from playground.core.text import kv_cache

    values = link("kv-cache")
    lm = room.load(values["model"], Family.CAUSAL_LM)
    run = kv_cache.measure(lm.model, lm.tokenizer, values["prompt"], 8)
    assert run.max_abs_logit_diff < 1e-3  # "the same, up to rounding"
    assert run.bytes_per_token == 8192 and "8,192 bytes a token" in lesson_by_id("kv-cache").question.why


def test_lesson_encoder__bert_reads_the_words_after_the_blank(room):
    from playground.ui.bert_tab import fill_mask_api

    first = fill_mask_api(room, "The [MASK] is dead.", "bert-base-uncased", 5)["masks"][0]
    other = fill_mask_api(room, "The [MASK] is sweet.", "bert-base-uncased", 5)["masks"][0]
    assert first != other  # only the words after the blank changed, and the guesses with them


def test_lesson_encoder_decoder__beam_search_keeps_the_best_total_not_the_greedy_path(room):
    from playground.ui.t5_tab import text2text_api

    values = link("encoder-decoder")
    greedy = text2text_api(room, values["text"], values["model"], 1)
    beams = text2text_api(room, values["text"], values["model"], values["beams"])
    assert len(beams["beams"]) == values["beams"] and beams["beams"][0]["score"] >= greedy["beams"][0]["score"] - 1e-6


def test_lesson_parameters__the_scale_table_answers_with_gpt2s_training_data():
    from playground.ui.inside_tab import PUBLISHED

    gpt2 = next(row for row in PUBLISHED if row[0].startswith("GPT-2 small"))
    assert "WebText, 40 GB" in gpt2[0] and gpt2[1] == 124e6 and gpt2[2] > 1e9  # billions of tokens, not 124 million


@pytest.mark.skipif(not has_model("moe-shakespeare"), reason="assets/models/moe-shakespeare is not built yet")
def test_lesson_experts__two_experts_do_the_llamas_mlp_arithmetic(room):
    """Two of the mixture's experts hold exactly the embedded Llama's MLP weights (so the same arithmetic per token), the
    mixture stores twice the MLP parameters, and routing the link's text sends every token to 2 experts in every layer."""
    from playground.core.text import routing
    from playground.train.moe import active_parameters

    values = link("experts")
    moe = room.load(values["model"], Family.CAUSAL_LM).model
    llama = room.load("assets/models/llama-shakespeare", Family.CAUSAL_LM).model
    c, d = moe.config, llama.config
    assert (c.num_local_experts, c.num_experts_per_tok, c.intermediate_size, d.intermediate_size) == (4, 2, 384, 768)
    expert = sum(p.numel() for n, p in moe.named_parameters() if ".experts." in n) // (c.num_hidden_layers * c.num_local_experts)
    dense_mlp = sum(p.numel() for n, p in llama.named_parameters() if ".mlp." in n) // d.num_hidden_layers
    assert 2 * expert == dense_mlp == 3 * 256 * 768  # "the same as the Llama"
    router = c.num_hidden_layers * c.num_local_experts * c.hidden_size
    assert active_parameters(moe) == sum(p.numel() for p in llama.parameters()) + router
    r = routing.route(moe, room.load(values["model"], Family.CAUSAL_LM).tokenizer, values["text"])
    assert all(len(picks) == 2 and len(set(picks)) == 2 for layer in r.chosen for picks in layer)


@pytest.mark.skipif(not has_model("clip-shapes"), reason="assets/models/clip-shapes is not built yet")
def test_lesson_clip__the_relation_and_its_inverse_nearly_tie(room):
    """On the link's captions, the picture drawn from "a red circle left of a blue square" scores its caption and the
    inverse relation's within a few hundredths; over 200 minimal pairs CLIP is near chance; the reveal's figures are the card's."""
    from playground.core.multimodal import clip_space
    from playground.train import clip as clip_training
    from playground.train import common
    from playground.ui import clip_section

    texts = link("clip")["clip_texts"]
    _, grid, _, _ = clip_section.on_compare(room, clip_section.ClipRequest(texts, None, 0), progress=None)
    lm = room.load(clip_section.CLIP_MODEL, Family.CLIP)
    pictures = clip_section.drawn(texts.splitlines(), 0)
    cos = clip_space.compare(lm.model, lm.tokenizer, lm.components["image_processor"], texts, [pictures[0][1]]).similarity[0]
    assert abs(cos[0] - cos[1]) < 0.05 and "picture of 1" in grid  # nearly a tie
    assert 0.35 < clip_training.relations(lm.model, lm.tokenizer, n=200, seed=5) < 0.65
    card = common.load_metrics(common.MODELS_DIR / "clip-shapes")
    assert f"only {card['relations']:.0%} of the time" in lesson_by_id("clip").question.why


def test_lesson_objective__the_toy_network_learns_to_predict_the_added_noise():
    from playground.core.training import toy_diffusion

    values = link("objective")
    cfg = toy_diffusion.ToyConfig(steps=values["steps"], seed=0)
    data = toy_diffusion.make_dataset(values["dataset"], 512, 0)
    model, _ = list(toy_diffusion.train_toy(data, cfg, stream=False))[-1]
    g = torch.Generator().manual_seed(7)
    x0, eps = data[:256], torch.randn(256, 2, generator=g)
    t = torch.full((256,), model.timesteps // 2)
    ab = model.alphas_cumprod[t][:, None]
    with torch.no_grad():
        guess = model.net(ab.sqrt() * x0 + (1 - ab).sqrt() * eps, t, model.timesteps)
    assert ((guess - eps) ** 2).mean() < 0.5 * (eps ** 2).mean()  # its output is the noise that was added, not x_(t+1)


@pytest.mark.skipif(not has_model("ddpm-fashion"), reason="the embedded ddpm-fashion is not built")
def test_lesson_denoising__at_step_5_of_50_the_estimate_already_looks_like_the_final_shoe(room):
    from playground.core.diffusion.run import DiffusionRequest, run

    values = link("denoising")
    lm = room.load(values["model"], Family.DIFFUSION)
    records = list(run(lm, DiffusionRequest(prompt=values["prompt"], scheduler=values["scheduler"], steps=values["steps"],
                                             seed=values["seed"], snapshots=False)))
    final = records[-1].x.flatten()

    def corr(a: torch.Tensor) -> float:
        return float(torch.corrcoef(torch.stack([a.flatten(), final]))[0, 1])

    assert corr(records[4].x0_hat) > 0.6  # x̂_0 at step 5: a blurry version of the final boot
    assert corr(records[4].x) < corr(records[4].x0_hat) - 0.2  # while x_t itself is still mostly noise


@pytest.mark.skipif(not has_model("ddpm-fashion"), reason="the embedded ddpm-fashion is not built")
def test_lesson_schedulers__ddpm_and_ddim_run_the_same_network(room):
    from playground.core.diffusion.run import DiffusionRequest, final_sample

    values = link("schedulers")
    lm = room.load(values["model"], Family.DIFFUSION)
    loads = room.load_count
    for scheduler in ("DDPM", "DDIM"):
        final_sample(lm, DiffusionRequest(prompt=values["prompt"], scheduler=scheduler, steps=4, seed=0))
        assert room.load(values["model"], Family.DIFFUSION).model is lm.model
    assert room.load_count == loads  # no second network was loaded for the other scheduler


@pytest.mark.skipif(not has_model("sd-shapes"), reason="the embedded sd-shapes is not built")
def test_lesson_latent__the_offline_unet_denoises_a_4x16x16_latent_of_a_32x32_picture(room):
    from playground.core.diffusion.run import latent_shape

    lm = room.load(link("latent")["model"], Family.LATENT_DIFFUSION)
    assert tuple(latent_shape(lm)[1:]) == (4, 16, 16) and lm.model.config.sample_size == 16
    vae = lm.components["vae"]
    with torch.no_grad():
        picture = vae.decode(torch.zeros(1, 4, 16, 16)).sample
    assert tuple(picture.shape[1:]) == (3, 32, 32)
    assert (3 * 512 * 512) / (4 * 64 * 64) == 48  # Stable Diffusion 1.5: "48 times fewer numbers to denoise"


@pytest.mark.slow
def test_lesson_image_models__the_reveal_is_the_designs_sections_own_run(room):
    """The live reveal runs the link's prompt through every design as the Designs section does (seed 0, 50 steps, w 5):
    its table's marks are /designs' relation verdicts, and the grade follows them."""
    from playground.lessons.path import NO_DESIGN_WRONG, grade
    from playground.ui.designs_section import designs_api

    lesson = lesson_by_id("image-models")
    answer = designs_api(room, link("image-models")["designs_prompt"], 0, 50, 5.0)
    reveal = grade(lesson, NO_DESIGN_WRONG, room)
    wrong = [e for e in answer if e["checker"] is not None and not e["checker"]["relation"]]
    assert reveal.correct == (not wrong)
    for e, name in zip(answer, lesson.question.choices):
        if e["checker"] is not None:
            assert f"| {name} | {e['model']} | {'✓ right' if e['checker']['relation'] else '✗ wrong'} |" in reveal.text


@pytest.mark.skipif(not (has_model("sd-shapes") and has_model("imagen-shapes")), reason="the embedded text-to-image models are not built")
def test_lesson_word_maps__the_reveal_measures_each_model_as_its_card_does_and_the_grounded_maps_land(room):
    from playground.lessons.path import MAPS_MODELS, MAPS_PROMPT, grade
    from playground.train import shapes_eval

    ratios = {}
    for name, (preset, family, _) in MAPS_MODELS.items():
        on = shapes_eval.words_on_object(room.load(preset, family).components, MAPS_PROMPT, seed=0, steps=50, guidance=5.0)
        ratios[name] = on.shape / on.area
    best = max(ratios, key=ratios.get)
    reveal = grade(lesson_by_id("word-maps"), best, room)
    assert reveal.correct and f"**{best}**" in reveal.text and f"({ratios[best]:.1f}x) |" in reveal.text
    assert not grade(lesson_by_id("word-maps"), min(ratios, key=ratios.get), room).correct
    assert best == "sd-shapes" and ratios[best] >= shapes_eval.MAPS_BAR  # the model trained to land its maps does, here


@pytest.mark.skipif(not has_model("sd-shapes"), reason="the embedded sd-shapes is not built")
def test_lesson_guidance__the_comparison_shows_guidance_following_the_prompt(room):
    """Lesson 17 asks whether w = 1 or w = 7.5 follows the prompt more closely: on its link (the offline model, a pair it
    never saw), the checker counts fewer pictures that follow the prompt at w = 0 than at w = 1, and fewer at w = 1
    than at w = 7.5 (issue 29, item 10)."""
    from playground.ui import text_to_image_tab

    values = link("guidance")
    request = text_to_image_tab.WordMapsRequest(values["model"], values["prompt"], "", values["seed"], 50, values["guidance"], 0,
                                                values["compare"])
    *_, gallery, notes = text_to_image_tab.on_generate(room, request, progress=None)
    counts = {w: int(notes.split(f"| {w} |")[1].split("|")[1].split(" of ")[0]) for w in ("0", "1", "3", "7.5")}
    assert counts["0"] < counts["1"] < counts["7.5"], counts
    assert sum(caption.endswith("✓") for _, caption in gallery) == sum(counts.values())


@pytest.mark.slow
def test_lesson_flow__four_euler_steps_land_closer_than_four_ddim_steps():
    """Through the link's dataset and the page's defaults: the reveal's figures, re-measured."""
    from playground.core.training import toy_diffusion
    from playground.ui.training_tab import compare_flow

    c = compare_flow(link("flow")["flow_dataset"], toy_diffusion.ToyConfig.steps, 0).curve
    flow, ddim = dict(zip(c.counts, c.flow)), dict(zip(c.counts, c.ddim))
    assert flow[4] * 4 < ddim[4]  # "eight times farther" (at least four)
    why = lesson_by_id("flow").question.why
    assert f"{flow[4]:.3f}" in why and f"{c.data:.3f}" in why and f"{ddim[4]:.2f}" in why and ddim[100] < 0.05
    assert f"{flow[8]:.3f}" in why and f"{ddim[8]:.2f}" in why
    assert f"{c.flow_bend:.2f}" in why and f"{c.ddim_bend:.2f}" in why and c.flow_bend < c.ddim_bend


@pytest.mark.skipif(not has_model("unclip-shapes"), reason="assets/models/unclip-shapes is not built yet")
def test_lesson_variations__the_variations_keep_the_colour(room):
    """The link's caption drawn on the page, then its variations: they keep the colour and the shape while the pixels
    differ; the reveal's figures are the card's."""
    from playground.train import common, shapes_check
    from playground.ui import unclip_section

    prompt = link("variations")["unclip_prompt"]
    *_, last = unclip_section.on_unclip(room, unclip_section.UnclipPageRequest(prompt, 0, 20, compare=False), progress=None)
    drawn = last[-1]
    original = shapes_check.read(drawn)[0]
    run = unclip_section.unclip.variations(unclip_section.load_unclip(room),
                                           unclip_section.unclip.VariationsRequest(drawn, n=4, seed=0, steps=20))
    images = unclip_section.unclip.drawn(unclip_section.load_unclip(room), run.decoder)
    found = [shapes_check.read(unclip_section._uint8(images[i:i + 1])) for i in range(4)]
    assert sum(bool(f) and f[0].colour == original.colour for f in found) >= 3  # the lesson's question
    assert all(not np.array_equal(unclip_section._uint8(images[i:i + 1]), drawn) for i in range(4))
    m = common.load_metrics(common.MODELS_DIR / "unclip-shapes")
    why = lesson_by_id("variations").question.why
    assert f"{m['variations']['kept']:.1%}" in why and f"{m['variations']['same_place']:.1%}" in why
    assert f"{m['variations_two_objects']['kept']:.1%}" in why and f"{m['variations_of_own_pictures']['colour_kept']:.1%}" in why
