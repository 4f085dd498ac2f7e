"""DALL-E 3's two halves in the shapes world: alt-text captions at their stated rates, and prompt expansion by rules;
and the resumable checkpoint every long trainer now shares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from playground.train import alt_text, common, shapes, shapes_data


def test_alt_captions_come_at_their_stated_rates_and_the_full_ones_are_the_grammars():
    _, captions = shapes_data.dataset(20_000, 1, two_share=0.5)
    alt, kinds = alt_text.alt_captions(captions, 2)
    for kind, rate in alt_text.ALT_RATES.items():
        assert abs(kinds.count(kind) / len(kinds) - rate) < 0.012, kind
    assert all(a == c for a, c, k in zip(alt, captions, kinds) if k == "full")
    assert all(a != c for a, c, k in zip(alt, captions, kinds) if k in ("junk", "wrong"))
    for a, k in zip(alt, kinds):  # only full and wrong captions say a relation
        if any(r in a for r in shapes_data.RELATIONS):
            assert k in ("full", "wrong"), a


def test_a_wrong_caption_has_exactly_one_fact_wrong():
    rng = np.random.default_rng(0)
    for caption in ["a red circle left of a blue square", "a large green triangle at the top", "a purple square"]:
        scene = shapes_data.parse(caption)
        for _ in range(50):
            wrong = shapes_data.parse(alt_text._one_fact_wrong(scene, rng).caption())
            differences = sum(a != b for x, y in zip(wrong.objects, scene.objects) for a, b in
                              ((x.colour, y.colour), (x.shape, y.shape), (x.place, y.place))) + (wrong.relation != scene.relation)
            assert differences == 1, (caption, wrong)


def test_every_alt_word_is_one_token_of_the_alt_text_models_tokenizer():
    cfg = shapes.ShapesTrainConfig(captions="alt-text")
    tok = shapes.build_tokenizer(shapes.vocabulary(cfg))
    for word in alt_text.ALT_WORDS + shapes_data.WORDS:
        assert len(tok(word, add_special_tokens=False).input_ids) == 1, word


def test_expansion_turns_every_typed_grammar_caption_back_into_itself():
    rng = np.random.default_rng(0)
    captions = shapes_data.single_captions() + shapes_data.pair_captions()
    assert all(alt_text.expand(alt_text.typed(c, rng)) == c for c in captions)
    assert all(alt_text.expand(c) == c for c in captions)  # already descriptive: unchanged


@pytest.mark.parametrize("typed, expanded", [
    ("red thing", "a red circle"),  # no shape named: DEFAULT_SHAPE
    ("blue square above", "a blue square at the top"),  # a relation word with one object is a place
    ("red circle and blue square", "a red circle left of a blue square"),  # two objects, no relation: left to right
    ("GREEN   Triangles!", "a green triangle"),
    ("", "a circle"),
])
def test_expansion_fills_what_a_terse_prompt_leaves_out_by_stated_rules(typed, expanded):
    assert alt_text.expand(typed) == expanded


def test_role_targets_skip_captions_outside_the_grammar():
    t = shapes.role_targets(["a circle and a blue square", "img 0412", "a red circle left of a blue square"])
    assert t[:2].eq(-1).all() and t[2].tolist() == [0, 0, 2, 1]


def test_a_stopped_shapes_run_resumes_to_the_same_weights(tmp_path: Path):
    cfg = shapes.ShapesTrainConfig(n_images=40, unet_steps=6, checkpoint_every=3, captions="alt-text", text_width=32,
                                   unet_channels=(16, 32), batch_size=4)
    ckpt = tmp_path / "run.pt"

    def train():
        gen = common.setup(cfg.seed, 1)
        images, captions, twin = shapes.pictures(cfg)
        tok = shapes.build_tokenizer(shapes.vocabulary(cfg))
        ids, empty = shapes.caption_ids(tok, captions)
        latents = torch.randn(len(images), 4, 16, 16, generator=gen)
        text, unet = shapes.build_text_encoder(cfg, len(tok), tok), shapes.build_unet(cfg, 16)
        return shapes.train_unet(unet, text, ids, empty, latents, cfg, gen, common.Clock(), None, twin,
                                 shapes.role_targets(captions), resumable=ckpt)

    whole = train()[0]
    assert torch.load(ckpt, weights_only=False)["step"] == 3  # saved at 3, not at the end
    resumed = train()[0]  # goes on from step 3's checkpoint
    for a, b in zip(whole.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    common.save_checkpoint(ckpt, 3, {"other": 1}, torch.Generator())
    assert common.load_checkpoint(ckpt, cfg, torch.Generator()) == 0  # another configuration: afresh
