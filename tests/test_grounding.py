"""The word-grounding lever of the shapes models (playground.train.grounding, shapes.grow): the token loss against
hand-made attention, its targets against the checker's own reading of the pictures, its processor against diffusers'
plain attention, and a grown UNet against the one it grew from."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from playground.train import grounding, shapes, shapes_check, shapes_data


@pytest.fixture(scope="module")
def small_unet():
    torch.manual_seed(0)
    cfg = shapes.ShapesTrainConfig(unet_channels=(16, 32), text_width=16)
    return shapes.build_unet(cfg, 8), cfg


def test_targets_name_each_object_words_token_and_the_pixels_the_checker_finds_for_that_object():
    images, captions = shapes_data.dataset(60, 11, two_share=0.5)
    tokenizer = shapes.build_tokenizer(shapes_data.WORDS)
    positions, masks = grounding.targets(images, captions)
    checked = 0
    for img, caption, pos, mask in zip(images, captions, positions, masks):
        ids = tokenizer(caption)["input_ids"]
        blobs = shapes_check.read(img)
        for slot, (_, _, word) in enumerate(grounding.caption_slots(caption)):
            assert tokenizer.decode([ids[int(pos[slot])]]).strip() == word, caption
            # the mask's object is the blob of the colour or shape this word names
            covered = [b for b in blobs if (mask[slot].float().numpy().repeat(2, 0).repeat(2, 1) > 0.5)[b.mask].mean() > 0.5]
            assert len(covered) == 1 and word in (covered[0].colour, covered[0].shape), caption
            checked += 1
        assert (pos[len(grounding.caption_slots(caption)):] == -1).all()
    assert checked > 100


def test_a_caption_outside_the_grammar_is_not_grounded():
    images, _ = shapes_data.dataset(2, 1)
    positions, masks = grounding.targets(images, ["a red thing", "picture 0412"])
    assert (positions == -1).all() and masks.sum() == 0


def test_the_token_loss_is_zero_on_the_object_and_one_minus_its_share_squared_when_uniform():
    side, hw, tokens = grounding.MASK_SIDE, grounding.MASK_SIDE ** 2, 6
    mask = torch.zeros(1, grounding.SLOTS, side, side)
    mask[0, 0, :4, :4] = 1.0  # a 4x4 object: 1/16 of the picture
    positions = torch.tensor([[2, -1, -1, -1]])
    on_object = torch.full((1, hw, tokens), 1.0 / tokens)
    on_object[0, :, 2] = 0.0
    on_object[0, mask[0, 0].flatten() > 0, 2] = 0.5  # only the object's pixels attend to token 2
    uniform = torch.full((1, hw, tokens), 1.0 / tokens)
    torch.testing.assert_close(grounding.loss([(on_object, 1, 1)], positions, mask), torch.tensor(0.0))
    store = [(uniform, 1, 1)]
    torch.testing.assert_close(grounding.loss(store, positions, mask), torch.tensor((1 - 1 / 16) ** 2))
    assert store == []  # each step's layers are used once
    # a coarser layer reads the mask averaged down to its side; slots of -1 add nothing
    coarse = torch.full((1, hw // 4, tokens), 1.0 / tokens)
    torch.testing.assert_close(grounding.loss([(coarse, 1, 1)], positions, mask), torch.tensor((1 - 1 / 16) ** 2))
    assert grounding.loss([(uniform, 1, 1)], torch.full((1, 4), -1), mask).item() == 0.0


def test_the_training_processor_computes_what_diffusers_plain_attention_does_and_keeps_the_maps(small_unet):
    from diffusers.models.attention_processor import AttnProcessor

    unet, cfg = small_unet
    z, t, c = torch.randn(2, 4, 8, 8), torch.tensor([3, 700]), torch.randn(2, 5, cfg.text_width)
    unet.set_attn_processor(AttnProcessor())
    with torch.no_grad():
        plain = unet(z, t, encoder_hidden_states=c).sample
    store = grounding.install(unet)
    with torch.no_grad():
        recorded = unet(z, t, encoder_hidden_states=c).sample
    torch.testing.assert_close(recorded, plain)
    assert len(store) == 4 and all(p.shape[-1] == 5 and torch.allclose(p.sum(-1), torch.ones(())) for p, _, _ in store)


def test_a_grown_unet_cross_attends_at_16x16_and_first_computes_what_it_grew_from(small_unet):
    unet, cfg = small_unet
    grown = shapes.grow(unet, shapes.ShapesTrainConfig(unet_channels=(16, 32), text_width=16, attention_levels=2))
    assert shapes.attention_levels(unet) == 1 and shapes.attention_levels(grown) == 2
    assert grown.config.down_block_types == ("CrossAttnDownBlock2D",) * 2 and grown.config.up_block_types == ("CrossAttnUpBlock2D",) * 2
    z, t, c = torch.randn(2, 4, 8, 8), torch.tensor([3, 700]), torch.randn(2, 5, cfg.text_width)
    with torch.no_grad():
        torch.testing.assert_close(grown(z, t, encoder_hidden_states=c).sample, unet(z, t, encoder_hidden_states=c).sample)
    assert sum(p.numel() for p in grown.parameters()) > sum(p.numel() for p in unet.parameters())


def test_object_masks_split_two_objects_along_their_relation():
    scene = shapes_data.parse("a red circle below a blue square")
    img = shapes_data.draw(scene, np.random.default_rng(0))
    masks = grounding.object_masks(img, scene.caption())
    top, bottom = masks.astype(bool)
    assert (img[top] == shapes_data.COLOURS["blue"]).all() and (img[bottom] == shapes_data.COLOURS["red"]).all()
    assert top.sum() + bottom.sum() == (img.max(-1) > 0).sum()


def test_training_with_the_grounding_loss_lowers_it_and_saves_a_unet_with_plain_processors():
    """A few steps of train_unet on 8 pictures: the token loss falls, and the returned (EMA) UNet keeps diffusers' own
    processors (the recording ones belong to the training copy only)."""
    from playground.train import common

    cfg = shapes.ShapesTrainConfig(unet_channels=(16, 32), text_width=16, text_layers=1, attention_levels=2, unet_steps=30,
                                   batch_size=8, warmup=1, lr=3e-3, grounding_weight=1.0, twins=False)
    images, captions = shapes_data.dataset(8, 2, two_share=0.5)
    tokenizer = shapes.build_tokenizer(shapes_data.WORDS)
    ids, empty = shapes.caption_ids(tokenizer, captions)
    torch.manual_seed(0)
    unet, text_encoder = shapes.build_unet(cfg, 16), shapes.build_text_encoder(cfg, len(tokenizer), tokenizer)
    latents = torch.randn(8, 4, 16, 16)
    grounds = grounding.targets(images, captions)

    def token_loss(u, te) -> float:
        store = grounding.install(u)
        with torch.no_grad():
            u(latents, torch.full((8,), 500), encoder_hidden_states=te(ids).last_hidden_state)
            return grounding.loss(store, *grounds).item()

    before = token_loss(copy.deepcopy(unet), text_encoder)
    ema_unet, _, _ = shapes.train_unet(unet, text_encoder, ids, empty, latents, cfg, torch.Generator().manual_seed(0), common.Clock(),
                                       grounds=grounds)
    assert not any(isinstance(m.processor, grounding.GroundingProcessor) for m in ema_unet.modules() if hasattr(m, "processor"))
    assert token_loss(copy.deepcopy(unet), text_encoder) < 0.8 * before
