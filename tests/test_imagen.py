"""Imagen's design on DeepFloyd IF's folders: the one diffusion run and the cascade equal IFPipeline and
IFSuperResolutionPipeline, with tiny random UNets on the frozen t5-tasks encoder (the shipped folders are checked the
same way in test_embedded_models once built)."""

from __future__ import annotations

import pytest
import torch

from playground.core.diffusion import cascade
from playground.core.diffusion.conditioning import is_super_resolution
from playground.core.diffusion.run import DiffusionRequest, Parts, branch_from, final_sample, run
from playground.errors import InputError
from playground.train import imagen

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    torch.manual_seed(0)
    tokenizer, encoder = imagen.text_parts()
    out = {}
    for stage, channels in (("base", (16, 32)), ("sr", (16, 16, 32))):
        cfg = imagen.ImagenTrainConfig(stage=stage, channels=channels)
        unet = imagen.build_unet(cfg, encoder.config.d_model)
        with torch.no_grad():  # random, but not the zeros a fresh conv_out starts at: the pictures must depend on the text
            for p in unet.conv_out.parameters():
                p[:3].normal_(0, 0.1)
        folder = tmp_path_factory.mktemp(stage)
        imagen.save(folder, cfg, tokenizer=tokenizer, encoder=encoder, unet=unet)
        out[stage] = folder
    return out


@pytest.fixture(scope="module")
def pipes(folders):
    from diffusers import IFPipeline, IFSuperResolutionPipeline

    return IFPipeline.from_pretrained(folders["base"]), IFSuperResolutionPipeline.from_pretrained(folders["sr"])


def test_the_folders_load_with_the_pipelines_defaults_in_float32_and_keep_the_variance_channels_zero(pipes):
    base, sr = pipes
    assert base.text_encoder.dtype == torch.float32 and base.unet.dtype == torch.float32
    assert base.scheduler.config.thresholding and base.scheduler.config.dynamic_thresholding_ratio == 0.95
    assert (base.unet.conv_out.weight[3:] == 0).all() and (sr.unet.conv_out.bias[3:] == 0).all()
    assert sr.unet.config.in_channels == 6 and sr.unet.config.class_embed_type == "timestep"
    assert is_super_resolution(Parts.of(dict(sr.components))) and not is_super_resolution(Parts.of(dict(base.components)))


@pytest.mark.parametrize("guidance", [1.0, 5.0])
def test_the_run_equals_both_if_pipelines_with_their_own_ddpm_scheduler(pipes, guidance):
    base, sr = pipes
    gen = torch.Generator().manual_seed(3)
    ref = base("a red circle", num_inference_steps=4, guidance_scale=guidance, generator=gen, output_type="pt").images
    ours = final_sample(Parts.of(dict(base.components)), DiffusionRequest(prompt="a red circle", scheduler="DDPM", steps=4,
                                                                          guidance=guidance, seed=3))
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    gen = torch.Generator().manual_seed(4)
    ref2 = sr(image=ref, prompt="a red circle", num_inference_steps=4, guidance_scale=guidance, noise_level=100, generator=gen,
              output_type="pt").images
    ours2 = final_sample(Parts.of(dict(sr.components)), DiffusionRequest(prompt="a red circle", scheduler="DDPM", steps=4,
                                                                         guidance=guidance, seed=4, low_res=ours, noise_level=100))
    assert ours2.shape == (1, 3, 32, 32)
    torch.testing.assert_close(ours2, ref2, atol=1e-5, rtol=0)


def test_the_cascade_equals_the_two_pipelines_with_their_shipped_ddpm(pipes):
    base, sr = pipes
    models = Parts.of(dict(base.components)), Parts.of(dict(sr.components))
    request = cascade.CascadeRequest("a green square above a white circle", seed=7, steps=3, guidance=4.0, scheduler="DDPM")
    cascade_run = cascade.run(*models, request)
    picture = cascade_run.picture()
    low = base(request.prompt, num_inference_steps=3, guidance_scale=4.0, generator=torch.Generator().manual_seed(7),
               output_type="pt").images
    torch.testing.assert_close(cascade_run.base_picture(), low.clamp(-1, 1), atol=1e-5, rtol=0)
    ref = sr(image=low.clamp(-1, 1), prompt=request.prompt, num_inference_steps=3, guidance_scale=4.0, noise_level=250,
             generator=torch.Generator().manual_seed(8), output_type="pt").images
    torch.testing.assert_close(picture, ref.clamp(-1, 1), atol=1e-5, rtol=0)
    stages = [stage for stage, _ in cascade.run(*models, request).steps()]
    assert stages == ["base"] * 3 + ["sr"] * 3


def test_the_cascades_ddim_is_the_apps_loop_on_both_stages(pipes):
    """DDIM (the page's sampler) through the one run, stage by stage: the base's run, then the stage's on its picture."""
    base, sr = pipes
    models = Parts.of(dict(base.components)), Parts.of(dict(sr.components))
    request = cascade.CascadeRequest("a red circle", seed=2, steps=3, guidance=4.0)
    picture = cascade.run(*models, request).picture()
    low = final_sample(models[0], DiffusionRequest(prompt="a red circle", steps=3, guidance=4.0, seed=2)).clamp(-1, 1)
    again = final_sample(models[1], DiffusionRequest(prompt="a red circle", steps=3, guidance=4.0, seed=3, low_res=low, noise_level=250))
    torch.testing.assert_close(picture, again.clamp(-1, 1), rtol=0, atol=0)


def test_a_branch_of_the_super_resolution_stage_with_the_same_settings_retraces_it(pipes):
    base, sr = pipes
    model = Parts.of(dict(sr.components))
    low = torch.zeros(1, 3, 16, 16)
    first = run(model, DiffusionRequest(prompt="a red circle", steps=4, guidance=3.0, seed=1, low_res=low, noise_level=50))
    records = list(first)
    again = list(branch_from(model, first, 2, prompt="a red circle", negative="", guidance=3.0))
    torch.testing.assert_close(again[-1].x, records[-1].x)


def test_the_super_resolution_stage_refuses_what_it_cannot_read(pipes):
    base, sr = pipes
    model = Parts.of(dict(sr.components))
    with pytest.raises(InputError, match="low-resolution picture"):
        list(run(model, DiffusionRequest(prompt="a red circle", steps=2)))  # no picture
    with pytest.raises(InputError, match="low-resolution picture"):
        list(run(model, DiffusionRequest(prompt="a red circle", steps=2, low_res=torch.zeros(1, 1, 16, 16))))
    with pytest.raises(InputError, match="smaller picture"):
        list(run(model, DiffusionRequest(prompt="a red circle", steps=2, low_res=torch.zeros(1, 3, 32, 32))))
    with pytest.raises(InputError, match="noise_level"):
        list(run(model, DiffusionRequest(prompt="a red circle", steps=2, low_res=torch.zeros(1, 3, 16, 16), noise_level=1000)))
    with pytest.raises(InputError, match="super-resolution"):
        list(run(Parts.of(dict(base.components)), DiffusionRequest(prompt="a red circle", steps=2, low_res=torch.zeros(1, 3, 8, 8))))


def test_dynamic_thresholding_is_the_folders_default_and_static_clipping_differs(pipes):
    base, _ = pipes
    model = Parts.of(dict(base.components))
    asked = DiffusionRequest(prompt="a red circle", steps=5, guidance=15.0, seed=0)
    default = final_sample(model, asked)
    assert torch.equal(default, final_sample(model, DiffusionRequest(**{**vars(asked), "clip": "dynamic"})))
    assert not torch.equal(default, final_sample(model, DiffusionRequest(**{**vars(asked), "clip": "clip"})))


def test_a_cascade_request_is_checked():
    with pytest.raises(InputError, match="caption"):
        cascade.CascadeRequest("  ").checked()
    with pytest.raises(InputError, match="steps"):
        cascade.CascadeRequest("a red circle", steps=0).checked()
    with pytest.raises(InputError, match="noise_level"):
        cascade.CascadeRequest("a red circle", noise_level=1000).checked()


def test_word_maps_run_on_the_pixel_base_and_the_stage_that_needs_a_picture_says_so(pipes):
    from playground.core.diffusion.cross_attention import prompt_tokens, word_maps

    base, sr = pipes
    wm = word_maps(Parts.of(dict(base.components)), DiffusionRequest(prompt="a red circle", steps=2, guidance=5.0))
    assert wm.tokens == prompt_tokens(base.tokenizer, "a red circle") and len(wm.tokens) > 3  # T5: no start token, pieces
    assert wm.maps.shape == (len(wm.tokens), 16, 16) and wm.image.shape == (1, 3, 16, 16)
    torch.testing.assert_close(wm.maps.sum(dim=(1, 2)), torch.ones(len(wm.tokens)))
    with pytest.raises(InputError, match="base stage"):
        word_maps(Parts.of(dict(sr.components)), DiffusionRequest(prompt="a red circle", steps=2, guidance=5.0))


@pytest.mark.skipif(not (imagen.common.MODELS_DIR / "imagen-shapes-sr" / "metrics.json").exists(), reason="imagen-shapes is not built")
def test_denoise_streams_the_super_resolution_stage_after_the_base():
    from playground.config import Settings
    from playground.models import ModelLoader
    from playground.ui.diffusion_tab import denoise_api

    loader = ModelLoader(Settings(offline=True, device="cpu"))
    frames = list(denoise_api(loader, "assets/models/imagen-shapes", "a red circle", "DDIM", 3, 5.0, 0))
    assert [f.size for f in frames] == [(16, 16)] * 4 + [(32, 32)] * 3  # base steps and picture, then the stage's steps


@pytest.mark.skipif(not (imagen.common.MODELS_DIR / "imagen-shapes" / "metrics.json").exists(), reason="imagen-shapes is not built")
def test_cross_attention_maps_the_words_of_the_embedded_imagen_base():
    from playground.config import Settings
    from playground.models import ModelLoader
    from playground.ui.text_to_image_tab import cross_attention_api

    out = cross_attention_api(ModelLoader(Settings(offline=True, device="cpu")), "assets/models/imagen-shapes", "a red circle", 0, 3, 5.0)
    assert len(out["maps"]) == len(out["tokens"]) and len(out["maps"][0]) == 16
