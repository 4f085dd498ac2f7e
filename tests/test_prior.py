"""prior-shapes (issue 32): DALL-E 2's diffusion prior in the shapes world, as KandinskyPriorPipeline runs it."""

from __future__ import annotations

import pytest
import torch

from playground.train import prior as prior_training
from tests.conftest import MODELS, has_model


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A prior of 2 layers on clip-shapes' towers, saved the way the training script saves it (untrained: the loop, not
    the figures, is under test)."""
    if not has_model("clip-shapes"):
        pytest.skip("assets/models/clip-shapes is not built yet")
    torch.manual_seed(0)
    cfg = prior_training.PriorTrainConfig(layers=2)
    text, image, tok, processor = prior_training.towers()
    prior = prior_training.build_prior(cfg, text.config, text.config.projection_dim)
    with torch.no_grad():
        prior.clip_std.fill_(1.0)
    folder = tmp_path_factory.mktemp("prior") / "prior-shapes"
    prior_training.save(prior, text, image, tok, processor, folder)
    prior_training.save_regression(prior_training.RegressionPrior(text.config.projection_dim, 32), folder)
    return folder


def test_the_folder_runs_in_kandinskys_prior_pipeline_and_equals_the_projects_loop(tiny_folder):
    """KandinskyPriorPipeline.from_pretrained(folder), default arguments, float32; its image embedding for a prompt and
    seed equals `prior.sample` on the same text encodings, with and without guidance."""
    from diffusers import KandinskyPriorPipeline

    pipe = KandinskyPriorPipeline.from_pretrained(tiny_folder)
    assert pipe.prior.dtype == pipe.text_encoder.dtype == pipe.image_encoder.dtype == torch.float32
    for guidance in (1.0, 4.0):
        theirs = pipe("a red circle left of a blue square", num_inference_steps=4, guidance_scale=guidance,
                      generator=torch.Generator().manual_seed(3)).image_embeds
        e, s, m = prior_training.encode_captions(pipe.text_encoder, pipe.tokenizer, ["a red circle left of a blue square"])
        null = prior_training.encode_captions(pipe.text_encoder, pipe.tokenizer, [""])
        ours = prior_training.sample(pipe.prior, pipe.scheduler, e, s, m, null, 4, guidance, torch.Generator().manual_seed(3))
        torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=0)


def test_the_towers_are_clip_shapes_own(tiny_folder):
    """The pipeline's text and image towers give clip-shapes' embeddings (CLIPModel.get_text_features / get_image_features)."""
    import numpy as np
    from transformers import AutoTokenizer, CLIPModel

    from playground.core.multimodal import clip_space
    from playground.train import clip, shapes_data

    text, image, tok, _ = prior_training.towers()
    model = CLIPModel.from_pretrained(MODELS / "clip-shapes").eval()
    captions = ["a red circle", "a large blue square on the left"]
    pictures = np.stack([shapes_data.draw(shapes_data.parse(c), np.random.default_rng(0)) for c in captions])
    e, _, _ = prior_training.encode_captions(text, tok, captions)
    enc = AutoTokenizer.from_pretrained(MODELS / "clip-shapes")(captions, padding="max_length", max_length=16, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(e, clip_space.projected(model.get_text_features(**enc)), atol=1e-5, rtol=0)
        torch.testing.assert_close(prior_training.encode_pictures(image, pictures),
                                   clip_space.projected(model.get_image_features(pixel_values=clip.pixels(pictures))), atol=1e-5, rtol=0)


def test_the_regression_baseline_round_trips(tiny_folder):
    mlp = prior_training.load_regression(tiny_folder)
    assert mlp.net[0].in_features == 64 and mlp.net[0].out_features == 32


@pytest.mark.skipif(not has_model("prior-shapes"), reason="assets/models/prior-shapes is not built yet")
def test_prior_shapes_meets_its_card():
    """The card's figures (re-measured on fewer pictures, within a few points), and the prior does what it is for: its
    image embedding is nearer the caption's picture than the text embedding is."""
    from diffusers import KandinskyPriorPipeline

    from playground.train import common

    m = common.load_metrics(MODELS / "prior-shapes")
    pipe = KandinskyPriorPipeline.from_pretrained(MODELS / "prior-shapes")
    cfg = prior_training.PriorTrainConfig(**m["config"])
    regression = prior_training.load_regression(MODELS / "prior-shapes")
    here = prior_training.measure(pipe.prior, regression, pipe.text_encoder, pipe.image_encoder, pipe.tokenizer, cfg, n=100)
    for split in ("seen_pairs", "heldout_pairs"):
        for kind, value in here[split]["cosine"].items():
            assert abs(value - m[split]["cosine"][kind]) < 0.05, (split, kind, value)
    assert m["seen_pairs"]["cosine"]["diffusion_prior"] > m["seen_pairs"]["cosine"]["text_embedding"]
    card = (MODELS / "prior-shapes" / "README.md").read_text()
    assert f"diffusion prior cos {m['seen_pairs']['cosine']['diffusion_prior']:.3f}" in card


@pytest.mark.skipif(not has_model("prior-shapes"), reason="assets/models/prior-shapes is not built yet")
def test_the_prior_part_of_the_clip_section_and_the_loader():
    """The loader reads the folder as the prior family; the section's run equals the library pipeline's embedding for
    the same seed, and lists both embeddings' nearest captions (among all the grammar's) and pictures."""
    from diffusers import KandinskyPriorPipeline

    from playground.config import Settings
    from playground.core.diffusion import prior
    from playground.models import ModelLoader
    from playground.train import shapes_data
    from playground.ui import clip_section

    assert clip_section.GRAMMAR_CAPTIONS == len(shapes_data.single_captions()) + len(shapes_data.pair_captions())
    loader = ModelLoader(Settings(offline=True, device="cpu"))
    lm = loader.load("assets/models/prior-shapes", "prior")
    run = prior.run(lm.components, "a red circle left of a blue square", 6, 4.0, 5)
    pipe = KandinskyPriorPipeline.from_pretrained(MODELS / "prior-shapes")
    theirs = pipe("a red circle left of a blue square", num_inference_steps=6, guidance_scale=4.0,
                  generator=torch.Generator().manual_seed(5)).image_embeds
    torch.testing.assert_close(torch.tensor([run.image_embedding]), theirs, atol=1e-4, rtol=0)
    page = clip_section.on_prior(loader, clip_section.PriorRequest("a red circle left of a blue square", 6, 4.0, 5), progress=None)
    assert page.count("nearest captions") == 2 and page.count('class="clip-pic"') == 10 and "cos(text embedding" in page
    # the README's reading of the default request: the text embedding barely tells the relation from its inverse
    default = clip_section.on_prior(loader, clip_section.PriorRequest("a red circle left of a blue square"), progress=None)
    assert "<td>a red circle left of a blue square</td><td>1.000</td>" in default
    assert "<td>a red circle right of a blue square</td><td>0.99" in default
    with pytest.raises(Exception, match="steps"):
        clip_section.on_prior(loader, clip_section.PriorRequest("a red circle", 0), progress=None)
