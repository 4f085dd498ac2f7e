"""clip-shapes (issue 32): the contrastive objective written out, the folder as the library loads it, the card's figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from playground.core.multimodal import clip_space
from playground.train import clip, shapes_data
from tests.conftest import MODELS, has_model


def _tiny():
    torch.manual_seed(0)
    cfg = clip.ClipTrainConfig(width=32, layers=1, heads=2, mlp=64, projection_dim=16)
    tok = clip.tokenizer()
    return clip.build(cfg, tok).eval(), tok, cfg


def _batch(n: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    scenes = [shapes_data.random_scene(rng) for _ in range(n)]
    return np.stack([shapes_data.draw(s, rng) for s in scenes]), [s.caption() for s in scenes]


def test_the_contrastive_loss_written_out_equals_the_models_own():
    """CLIP's symmetric InfoNCE: logits_ij = exp(t) cos(text_i, image_j); the mean of the cross-entropies of each
    caption over the pictures and each picture over the captions, the diagonal the right answers."""
    model, tok, cfg = _tiny()
    images, captions = _batch()
    enc = clip.encode_texts(tok, captions, cfg.max_tokens)
    with torch.no_grad():
        theirs = model(**enc, pixel_values=clip.pixels(images), return_loss=True)
        t = torch.nn.functional.normalize(clip_space.projected(model.get_text_features(**enc)), dim=-1)
        i = torch.nn.functional.normalize(clip_space.projected(model.get_image_features(pixel_values=clip.pixels(images))), dim=-1)
    logits = model.logit_scale.exp() * t @ i.T  # [caption, picture]
    target = torch.arange(len(captions))
    mine = (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2
    torch.testing.assert_close(mine, theirs.loss, atol=1e-5, rtol=0)
    torch.testing.assert_close(logits, theirs.logits_per_text, atol=1e-5, rtol=0)
    # the loss reads the diagonal: swapping two captions changes it
    swapped = [captions[1], captions[0], *captions[2:]]
    with torch.no_grad():
        other = model(**clip.encode_texts(tok, swapped, cfg.max_tokens), pixel_values=clip.pixels(images), return_loss=True).loss
    assert abs(float(other) - float(theirs.loss)) > 1e-6


def test_the_folder_loads_with_the_librarys_own_classes_and_reads_pictures_as_training_did(tmp_path):
    """CLIPModel.from_pretrained and CLIPProcessor.from_pretrained, default arguments: the processor's pixel values and
    token ids are the training script's, and the similarities the same."""
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    model, tok, cfg = _tiny()
    clip.save(model, tok, tmp_path)
    loaded, processor = CLIPModel.from_pretrained(tmp_path), CLIPProcessor.from_pretrained(tmp_path)
    assert loaded.dtype == torch.float32
    images, captions = _batch(4, seed=1)
    inputs = processor(text=captions, images=[Image.fromarray(x) for x in images], return_tensors="pt", padding="max_length",
                       max_length=cfg.max_tokens)
    torch.testing.assert_close(inputs["pixel_values"], clip.pixels(images), atol=1e-6, rtol=0)
    assert inputs["input_ids"].tolist() == clip.encode_texts(tok, captions, cfg.max_tokens)["input_ids"].tolist()
    with torch.no_grad():
        theirs = loaded(**inputs).logits_per_image
        ours = model.half().float()(**clip.encode_texts(tok, captions, cfg.max_tokens), pixel_values=clip.pixels(images)).logits_per_image
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=0)


def test_the_grammars_captions_and_class_prompts():
    captions = shapes_data.single_captions()
    assert len(captions) == len(set(captions)) == 2 * 6 * 3 * 5 and all(shapes_data.parse(c).caption() == c for c in captions)
    prompts = shapes_data.class_prompts()
    assert set(prompts["colour"]) == set(shapes_data.COLOURS) and all(len(v) == 3 for v in prompts["colour"].values())
    assert set(prompts["shape"]) == set(shapes_data.SHAPES) and all(len(v) == 6 for v in prompts["shape"].values())
    assert len(prompts["place"]) == 5 and all(len(v) == 36 for v in prompts["place"].values())


@pytest.mark.skipif(not has_model("clip-shapes"), reason="assets/models/clip-shapes is not built yet")
def test_clip_shapes_meets_its_card():
    """The card's zero-shot and retrieval figures, re-measured on fewer pictures (same generator, so the first ones are
    the card's): within a few points."""
    from transformers import AutoTokenizer, CLIPModel

    from playground.train import common

    model, tok = CLIPModel.from_pretrained(MODELS / "clip-shapes").eval(), AutoTokenizer.from_pretrained(MODELS / "clip-shapes")
    m = common.load_metrics(MODELS / "clip-shapes")
    here = clip.zero_shot(model, tok, n=200)
    for split in ("seen_pairs", "heldout_pairs"):
        for attr, value in here[split].items():
            assert abs(value - m["zero_shot"][split][attr]) < 0.08, (split, attr, value)
    assert m["zero_shot"]["seen_pairs"]["colour"] > 0.8 and m["zero_shot"]["seen_pairs"]["shape"] > 0.8
    card = (MODELS / "clip-shapes" / "README.md").read_text()
    assert f"{m['retrieval_top1']:.1%}" in card and f"{m['relations']:.1%} of the time (chance 50%)" in card


@pytest.fixture
def clip_folder(tmp_path, monkeypatch):
    """The embedded clip-shapes when built, else a tiny CLIP saved the same way; the section reads it."""
    from playground.ui import clip_section

    if has_model("clip-shapes"):
        return MODELS / "clip-shapes", None
    model, tok, _ = _tiny()
    folder = tmp_path / "clip-shapes"
    clip.save(model, tok, folder)
    monkeypatch.setattr(clip_section, "CLIP_MODEL", str(folder))
    return folder, tmp_path


def _loader(root):
    from playground.config import Settings
    from playground.models import ModelLoader

    if root is None:
        return ModelLoader(Settings(offline=True, device="cpu"))
    return ModelLoader(Settings(offline=True, device="cpu", model_roots=(root,), hf_cache=root / "hf-cache"))


def test_clip_endpoint_gives_the_librarys_similarities(clip_folder):
    """/clip's cosines equal CLIPModel.from_pretrained(folder) with CLIPProcessor, default arguments; without a picture
    the captions' cosines with each other; a single caption is refused with what to do."""
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    from playground.ui import clip_section

    folder, root = clip_folder
    loader = _loader(root)
    texts = ["a red circle", "a blue square", "a yellow triangle above a white circle"]
    picture = Image.fromarray(shapes_data.draw(shapes_data.parse("a large red circle on the left"), np.random.default_rng(0)))
    out = clip_section.clip_api(loader, "\n".join(texts), picture)
    model, processor = CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
    with torch.no_grad():
        inputs = processor(text=texts, images=[picture], return_tensors="pt", padding="max_length",
                           max_length=model.config.text_config.max_position_embeddings)
        result = model(**inputs)
    expected = result.logits_per_image / model.logit_scale.exp()
    assert set(out) == {"texts", "similarity", "logit_scale"} and out["texts"] == texts
    torch.testing.assert_close(torch.tensor(out["similarity"]), expected, atol=2e-4, rtol=0)
    assert out["logit_scale"] == pytest.approx(float(model.logit_scale.detach().exp()), abs=1e-3)
    alone = clip_section.clip_api(loader, "\n".join(texts))
    assert set(alone) == {"texts", "text_similarity", "logit_scale"}
    sims = torch.tensor(alone["text_similarity"])
    torch.testing.assert_close(sims.diagonal(), torch.ones(3), atol=1e-3, rtol=0)
    with pytest.raises(Exception, match="at least 2 captions"):
        clip_section.clip_api(loader, "a red circle")


def test_the_clip_section_draws_the_grid_zero_shot_and_the_two_clouds(clip_folder):
    from PIL import Image

    from playground.ui import clip_section

    folder, root = clip_folder
    loader = _loader(root)
    own = Image.fromarray(shapes_data.draw(shapes_data.parse("a blue square"), np.random.default_rng(3)))
    notice, grid, zero, projection = clip_section.on_compare(
        loader, clip_section.ClipRequest("a red circle\na blue square\nhello world\na green triangle", own, 0), progress=None)
    assert "Caption(s) 3 are outside the shapes grammar" in notice and "modality gap" in notice
    assert grid.count("<span>picture of ") == 3 and "<span>your picture" in grid and grid.count("outline:3px") == 3
    assert "colour:" in zero and "shape:" in zero and "place:" in zero
    assert projection.startswith("<svg") and "modality" not in projection and "the gap" in projection
