"""unclip-shapes (issue 32): DALL-E 2's two stages and variations, as diffusers' StableUnCLIP pipelines run them."""

from __future__ import annotations

import base64
import io
import threading

import numpy as np
import pytest
import torch

from playground.core.diffusion import unclip
from playground.core.diffusion.pictures import decode
from playground.core.diffusion.run import DiffusionRequest, Parts, branch_from, run
from playground.errors import InputError
from tests.conftest import MODELS, has_model

FOLDER = MODELS / "unclip-shapes"
pytestmark = pytest.mark.skipif(not has_model("unclip-shapes"), reason="assets/models/unclip-shapes is not built yet")


@pytest.fixture(scope="module")
def pipe():
    from diffusers import StableUnCLIPPipeline

    return StableUnCLIPPipeline.from_pretrained(FOLDER)  # plain: default arguments, on the CPU


@pytest.fixture(scope="module")
def variation_pipe():
    from diffusers import StableUnCLIPImg2ImgPipeline

    return StableUnCLIPImg2ImgPipeline.from_pretrained(FOLDER)


@pytest.fixture(scope="module")
def loader():
    from playground.config import Settings
    from playground.models import ModelLoader

    return ModelLoader(Settings(offline=True, device="cpu"))


def _final(components, records) -> torch.Tensor:
    return (decode(records[-1].x, components["vae"]).clamp(-1, 1) + 1) / 2


@pytest.mark.parametrize("noise_level", [0, 300])
def test_text_to_image_equals_stable_unclip_pipeline(pipe, noise_level):
    """StableUnCLIPPipeline.from_pretrained(folder) and the app's run (unclip.run: the prior's loop, then the one diffusion
    run), same caption, seed and settings: the same picture."""
    assert all(p.dtype == torch.float32 for p in (pipe.unet, pipe.prior, pipe.text_encoder, pipe.prior_text_encoder, pipe.vae))
    kwargs = dict(num_inference_steps=6, guidance_scale=4.0, prior_num_inference_steps=5, prior_guidance_scale=4.0, noise_level=noise_level)
    theirs = pipe("a red circle left of a blue square", generator=torch.Generator().manual_seed(3), output_type="pt", **kwargs).images
    ours = unclip.run(Parts.of(pipe.components), unclip.UnclipRequest("a red circle left of a blue square", seed=3, steps=6, guidance=4.0,
                                                                      prior_steps=5, noise_level=noise_level))
    torch.testing.assert_close(_final(pipe.components, list(ours.decoder)), theirs, atol=1e-4, rtol=0)
    assert ours.image_embedding.shape == ours.text_embedding.shape == (pipe.prior.config.embedding_dim,)


def test_variations_equal_stable_unclip_img2img_pipeline(pipe, variation_pipe):
    """StableUnCLIPImg2ImgPipeline.from_pretrained(folder) (it reads the image tower and ignores the prior) and
    unclip.variations: the same n pictures from the same picture and seed."""
    from PIL import Image

    from playground.train import shapes_data

    img = shapes_data.dataset(1, 5)[0][0]
    theirs = variation_pipe(Image.fromarray(img), generator=torch.Generator().manual_seed(5), num_inference_steps=5, guidance_scale=4.0,
                            num_images_per_prompt=3, output_type="pt").images
    ours = unclip.variations(Parts.of(variation_pipe.components), unclip.VariationsRequest(img, n=3, seed=5, steps=5, guidance=4.0))
    torch.testing.assert_close(_final(variation_pipe.components, list(ours.decoder)), theirs, atol=1e-4, rtol=0)


def test_the_decoder_started_as_sd_shapes():
    """The training script's new UNet, before any step, is sd-shapes' UNet whatever image embedding it reads (the
    projection's last layer starts at zero)."""
    from diffusers import UNet2DConditionModel

    from playground.train.unclip import build_unet

    sd = UNet2DConditionModel.from_pretrained(MODELS / "sd-shapes" / "unet", torch_dtype=torch.float32)
    new = build_unet(sd, 64)
    g = torch.Generator().manual_seed(0)
    z, c = torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 16, sd.config.cross_attention_dim, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(new(z, 10, encoder_hidden_states=c, class_labels=torch.randn(2, 128, generator=g)).sample,
                                   sd(z, 10, encoder_hidden_states=c).sample)


def test_the_image_condition_is_the_pipelines_noise_image_embeddings(pipe):
    from playground.core.diffusion.conditioning import image_condition

    embeds = torch.randn(3, 64, generator=torch.Generator().manual_seed(1))
    theirs = pipe.noise_image_embeddings(embeds, 250, generator=torch.Generator().manual_seed(2))
    noise = torch.randn(embeds.shape, generator=torch.Generator().manual_seed(2))
    ours = image_condition(pipe.image_normalizer, pipe.image_noising_scheduler, embeds, torch.full((3,), 250), noise)
    torch.testing.assert_close(ours, theirs)


def test_a_branch_of_a_decoder_run_keeps_its_image_embedding(pipe):
    """Branching at a step with the same settings retraces the run (the branch reads the run's image embedding)."""
    model = Parts.of(pipe.components)
    first = unclip.run(model, unclip.UnclipRequest("a green square", seed=2, steps=5, prior_steps=3), snapshots=True)
    records = list(first.decoder)
    branch = list(branch_from(model, first.decoder, 3, prompt="a green square", negative="", guidance=4.0))
    torch.testing.assert_close(branch[-1].x, records[-1].x)


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(prompt="  "), "Enter a caption"), (dict(steps=0), "steps"), (dict(guidance=99), "guidance"),
    (dict(prior_steps=500), "prior steps"), (dict(noise_level=1000), "noise_level"), (dict(seed=-1), "seed"),
    (dict(prompt="x" * 201), "prompt"),
])
def test_bad_requests_say_what_to_change(pipe, kwargs, fragment):
    args = dict(prompt="a red circle") | kwargs
    with pytest.raises(InputError, match=fragment):
        unclip.run(Parts.of(pipe.components), unclip.UnclipRequest(**args))


def test_bad_variations_and_wrong_models_say_what_to_change(pipe):
    model = Parts.of(pipe.components)
    with pytest.raises(InputError, match="Give a picture"):
        unclip.variations(model, unclip.VariationsRequest(None))
    with pytest.raises(InputError, match="n"):
        unclip.variations(model, unclip.VariationsRequest(np.zeros((32, 32, 3), np.uint8), n=9))
    with pytest.raises(InputError, match="image embeddings of 64 numbers"):  # the decoder needs the prior's (or a picture's)
        list(run(model, DiffusionRequest(prompt="a red circle", steps=2)))
    sd = {k: pipe.components[k] for k in ("vae", "text_encoder", "tokenizer", "scheduler")}
    from diffusers import UNet2DConditionModel

    sd["unet"] = UNet2DConditionModel.from_pretrained(MODELS / "sd-shapes" / "unet", torch_dtype=torch.float32)
    with pytest.raises(InputError, match="Only an unCLIP decoder"):
        run(Parts.of(sd), DiffusionRequest(prompt="a red circle", steps=2, image_embedding=torch.zeros(1, 64)))
    with pytest.raises(InputError, match="not an unCLIP pipeline"):
        unclip.run(Parts.of(sd), unclip.UnclipRequest("a red circle"))


def test_the_loader_reads_the_folder_with_its_image_tower(loader):
    lm = loader.load(str(FOLDER), "latent-diffusion")
    assert {"prior", "image_normalizer", "image_encoder", "feature_extractor", "unet", "vae"} <= set(lm.components)
    sd = loader.load("segmind/tiny-sd", "latent-diffusion")
    assert "image_encoder" not in sd.components  # a Stable Diffusion pipeline still skips what it never runs


def _png(b64: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def test_unclip_and_variations_api_keys(loader):
    from playground.ui.unclip_section import picture_from, unclip_api, variations_api

    out = unclip_api(loader, "a red circle", seed=1, steps=4, guidance_scale=4.0)
    assert set(out) == {"text_embedding", "image_embedding", "nearest_captions", "image", "steps", "seed"}
    assert len(out["text_embedding"]) == len(out["image_embedding"]) == 64 and _png(out["image"]).shape == (32, 32, 3)
    cosines = [c["cosine"] for c in out["nearest_captions"]]
    assert len(cosines) == 5 and cosines == sorted(cosines, reverse=True)
    again = unclip_api(loader, "a red circle", seed=1, steps=4, guidance_scale=4.0)
    assert again == out  # the seed decides everything
    var = variations_api(loader, picture_from(_png(out["image"])), n=2, seed=0)
    assert set(var) == {"images", "embedding"} and len(var["images"]) == 2 and len(var["embedding"]) == 64
    assert all(_png(b).shape == (32, 32, 3) for b in var["images"])


@pytest.mark.slow
def test_unclip_and_denoise_at_once_give_their_alone_results(loader):
    """Threads running /unclip and /denoise (sd-shapes) at once, on the loader's shared models: each gets what it gets alone."""
    from playground.ui.diffusion_tab import denoise_api
    from playground.ui.unclip_section import unclip_api

    def denoise(seed: int):
        return list(denoise_api(loader, "segmind/tiny-sd", "a blue square", "DDIM", 4, 5.0, seed))[-1]

    def dalle2(seed: int):
        return unclip_api(loader, "a yellow triangle", seed=seed, steps=4, guidance_scale=4.0)["image"]

    alone = {("d", s): denoise(s) for s in (0, 1)} | {("u", s): dalle2(s) for s in (0, 1)}
    results, errors = {}, []

    def work(kind: str, seed: int) -> None:
        try:
            results[(kind, seed)] = (denoise if kind == "d" else dalle2)(seed)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=key) for key in alone]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for key, value in alone.items():
        if key[0] == "u":
            assert results[key] == value
        else:
            assert np.array_equal(np.asarray(results[key]), np.asarray(value))
