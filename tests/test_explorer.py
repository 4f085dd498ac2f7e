"""The diffusion explorer's engine against diffusers' own pipelines, every scheduler on every kind of model,
and branches that reproduce a run exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMPipeline, StableDiffusionPipeline

from playground.config import Settings
from playground.core.diffusion import pictures
from playground.core.diffusion.loop import start
from playground.core.diffusion.run import DiffusionRequest, Parts, branch_from, run
from playground.core.diffusion.schedule import SCHEDULERS, make_scheduler
from playground.errors import InputError
from playground.models import ModelLoader
from playground.models.results import resolve
from playground.ui.common import load_diffusion
from tests.conftest import has_model

CPU = torch.device("cpu")


@pytest.fixture
def tiny_sd(shared_loader, tiny_root):
    return shared_loader.load(str(tiny_root / "tiny-sd"), "latent-diffusion")


@pytest.fixture(scope="module")
def embedded() -> ModelLoader:
    return ModelLoader(Settings(offline=True, device="cpu"))


def with_prediction(comps, prediction: str) -> Parts:
    scheduler = comps["scheduler"]
    return Parts.of({**comps, "scheduler": type(scheduler).from_config({**scheduler.config, "prediction_type": prediction})})


def sd_run(comps, scheduler_name: str, guidance: float, steps: int = 6, seed: int = 5, prompt="a red cat", negative="blue",
           prediction: str = "epsilon"):
    """(the records, the Run, the parts) of one run through `run`, the one setup every caller uses."""
    parts = with_prediction(comps, prediction)
    diffusion_run = run(parts, DiffusionRequest(prompt=prompt, negative=negative, scheduler=scheduler_name, steps=steps,
                                                guidance=guidance, seed=seed, rederive=False))
    return list(diffusion_run), diffusion_run, parts


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("name", SCHEDULERS)
def test_text_to_image_equals_the_stable_diffusion_pipeline(tiny_sd, name, prediction):
    comps = tiny_sd.components
    records, _, _ = sd_run(comps, name, guidance=3.0, prediction=prediction)
    pipe = StableDiffusionPipeline(**{k: comps[k] for k in ("vae", "text_encoder", "tokenizer", "unet")},
                                   scheduler=make_scheduler(name, {**comps["scheduler"].config, "prediction_type": prediction}),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    expected = pipe("a red cat", negative_prompt="blue", guidance_scale=3.0, num_inference_steps=6, height=16, width=16,
                    generator=torch.Generator().manual_seed(5), output_type="np").images
    ours = (pictures.decode(records[-1].x, comps["vae"]) / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-6)
    assert len(records) == 6 and all(r.eps_uncond is not None for r in records)
    # guidance made visible: the step's ε is ε_u + w (ε_c − ε_u), from the two predictions it stores
    r = records[2]
    assert torch.allclose(r.eps, r.eps_uncond + 3.0 * (r.eps_cond - r.eps_uncond))
    if name == "DDIM":  # the recorded ε̂ is noise whatever the model predicts: x_t = √ᾱ_t x̂_0 + √(1 − ᾱ_t) ε̂
        a_bar = make_scheduler(name, comps["scheduler"].config).alphas_cumprod[r.timestep]
        torch.testing.assert_close(records[1].x, a_bar.sqrt() * r.x0_hat + (1 - a_bar).sqrt() * r.eps, atol=1e-4, rtol=1e-4)


def test_the_x0_of_each_prediction_equals_the_x0_of_a_run_that_used_it(tiny_sd):
    """The guidance view draws the x̂_0 that ε_u and ε_c would each have given: at the first step (the same x_T and t),
    ε_u's is what a run at guidance 0 predicts, and ε_c's what a run at guidance 1 predicts."""
    from playground.core.diffusion.loop import x0_with

    guided, _, _ = sd_run(tiny_sd.components, "DDIM", guidance=4.0)
    for w, eps in ((0.0, guided[0].eps_uncond), (1.0, guided[0].eps_cond)):
        alone, _, _ = sd_run(tiny_sd.components, "DDIM", guidance=w, negative="" if w == 1.0 else "blue")
        torch.testing.assert_close(x0_with(guided[0], eps), alone[0].x0_hat, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(x0_with(guided[0], guided[0].eps), guided[0].x0_hat)


@pytest.mark.parametrize("name", SCHEDULERS)
def test_a_branch_with_nothing_changed_reproduces_the_run_exactly(tiny_sd, name):
    records, diffusion_run, parts = sd_run(tiny_sd.components, name, guidance=3.0)
    for k in (0, 3, 5):
        again = list(branch_from(parts, diffusion_run, k + 1, prompt="a red cat", negative="blue", guidance=3.0))
        assert [r.index for r in again] == list(range(k, 6))
        assert torch.equal(again[-1].x, records[-1].x)
    changed = list(branch_from(parts, diffusion_run, 4, prompt="a red cat", negative="blue", guidance=7.0))
    assert not torch.equal(changed[-1].x, records[-1].x)  # and another guidance scale does change it


class _WithLabels(torch.nn.Module):
    """A class-conditional UNet with its labels fixed, so diffusers' own DDIMPipeline can run it."""

    def __init__(self, unet, labels):
        super().__init__()
        self.unet, self.labels = unet, labels
        self.config = unet.config

    @property
    def dtype(self):
        return self.unet.dtype

    @property
    def device(self):
        return self.unet.device

    def forward(self, x, t, **kwargs):
        return self.unet(x, t, class_labels=self.labels)


@pytest.mark.skipif(not has_model("ddpm-fashion"), reason="embedded DDPM not built")
@pytest.mark.parametrize("clipped", [True, False])
def test_embedded_pixel_model_equals_ddim_pipeline(embedded, clipped):
    lm = embedded.load("google/ddpm-cifar10-32", "diffusion")
    labels = torch.tensor([9])
    records = list(run(lm, DiffusionRequest(prompt=lm.pipeline.id2label[9], steps=10, seed=3, guidance=1.0, rederive=clipped)))
    pipe = DDIMPipeline(unet=_WithLabels(lm.model, labels), scheduler=make_scheduler("DDIM", lm.components["scheduler"].config))
    expected = pipe(batch_size=1, generator=torch.Generator().manual_seed(3), num_inference_steps=10, eta=0.0,
                    use_clipped_model_output=clipped, output_type="np").images
    ours = (records[-1].x / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-5)


@pytest.mark.skipif(not has_model("ddpm-fashion"), reason="embedded DDPM not built")
def test_dynamic_thresholding_is_diffusers_own_and_keeps_x0_in_range_at_high_guidance(embedded):
    """Imagen's dynamic thresholding (the clipping option "dynamic"): the run equals DDIMPipeline with a scheduler built with
    `thresholding=True` (IF's ratio 0.95 and sample_max_value 1.5) at guidance 1; at guidance 15 every step's x̂_0 stays in
    [-1, 1] and the picture differs from static clipping's; latent models and Euler are refused with the reason."""
    from playground.core.diffusion.schedule import DYNAMIC_MAX, DYNAMIC_RATIO

    lm = embedded.load("google/ddpm-cifar10-32", "diffusion")
    records = list(run(lm, DiffusionRequest(prompt=lm.pipeline.id2label[9], steps=10, seed=3, guidance=1.0, clip="dynamic",
                                            rederive=False)))
    scheduler = make_scheduler("DDIM", lm.components["scheduler"].config)
    scheduler = type(scheduler).from_config(scheduler.config, clip_sample=False, thresholding=True,
                                            dynamic_thresholding_ratio=DYNAMIC_RATIO, sample_max_value=DYNAMIC_MAX)
    pipe = DDIMPipeline(unet=_WithLabels(lm.model, torch.tensor([9])), scheduler=scheduler)
    expected = pipe(batch_size=1, generator=torch.Generator().manual_seed(3), num_inference_steps=10, eta=0.0,
                    use_clipped_model_output=False, output_type="np").images
    np.testing.assert_allclose((records[-1].x / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy(), expected, atol=1e-5)
    high = dict(prompt=lm.pipeline.id2label[9], steps=10, seed=3, guidance=15.0)
    dynamic = list(run(lm, DiffusionRequest(**high, clip="dynamic")))
    static = list(run(lm, DiffusionRequest(**high, clip="clip")))
    assert all(r.x0_hat.abs().max() <= 1.0 + 1e-5 for r in dynamic)
    assert not torch.allclose(dynamic[-1].x, static[-1].x)
    with pytest.raises(InputError, match="pixel models"):
        run(embedded.load("assets/models/ldm-fashion", "latent-diffusion"), DiffusionRequest(prompt="Bag", clip="dynamic", guidance=1.0))
    with pytest.raises(InputError, match="Dynamic thresholding is an option of"):
        run(lm, DiffusionRequest(prompt="Bag", clip="dynamic", scheduler="Euler", guidance=1.0))


@pytest.mark.parametrize("preset, family", [("google/ddpm-cifar10-32", "diffusion"), ("assets/models/ldm-fashion", "latent-diffusion")])
@pytest.mark.parametrize("name", SCHEDULERS)
def test_every_scheduler_runs_on_the_embedded_models(embedded, preset, family, name):
    lm = embedded.load(preset, family)
    if lm.pipeline.null_class is None:
        pytest.skip("embedded model not built")
    records = list(run(lm, DiffusionRequest(prompt=lm.pipeline.id2label[1], scheduler=name, steps=8, guidance=3.0, seed=0)))
    assert len(records) == 8 and torch.isfinite(records[-1].x).all()
    if "vae" in lm.components:
        image = pictures.decode(records[-1].x, lm.components["vae"])
        preview = pictures.latent_preview(records[-1].x, lm.components["vae"])
        assert image.shape == preview.shape == (1, 1, 32, 32)
        assert torch.corrcoef(torch.stack([image.flatten(), preview.flatten()]))[0, 1] > 0.5  # the cheap preview looks like the decode


@pytest.mark.parametrize("preset", ["segmind/tiny-sd", "assets/models/ldm-fashion"])
def test_a_latent_models_x_t_shows_noise_as_noise(embedded, preset):
    """sd-shapes' x_t panel was near-black at every step (the /denoise stream's previews averaged RGB about (14, 5, 3),
    std about 1 of 255): its autoencoder decodes noise to black, so the map fitted to it drew noise flat. Every latent
    model's first x_t must now look like noise, and its pictures change as the run goes."""
    from playground.ui import diffusion_tab

    prompt = "a red circle" if preset == "segmind/tiny-sd" else "Ankle boot"
    frames = list(diffusion_tab.denoise_api(embedded, preset, prompt, "DDIM", 10, 5.0, 0))
    first, middle = (np.asarray(f.convert("RGB"), dtype=float) for f in (frames[0], frames[5]))
    assert first.std() > 15, first.std()  # speckle, not one flat colour (sd-shapes: about 1 of 255 before)
    assert np.abs(first - middle).mean() > 5  # and it changes as noise is removed


def test_image_to_image_starts_part_way(tiny_sd):
    scheduler = make_scheduler("DDIM", tiny_sd.components["scheduler"].config)
    init = torch.zeros(1, 4, 8, 8)
    x, first = start(scheduler, 10, (1, 4, 8, 8), torch.Generator().manual_seed(0), CPU, init=init, strength=0.3)
    assert first == 7  # 30% of the 10 steps are left to run
    a_bar = scheduler.alphas_cumprod[scheduler.timesteps[7]]
    noise = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(x, (1 - a_bar).sqrt() * noise, atol=1e-6)  # x_t = √ᾱ_t·0 + √(1−ᾱ_t)·ε


@pytest.mark.parametrize("call, fragment", [
    (lambda: make_scheduler("PNDM", {}), "scheduler must be one of"),
    (lambda: DiffusionRequest(steps=0).checked(), "steps must be between 1 and 100"),
    (lambda: DiffusionRequest(steps=10, guidance=99.0).checked(), "guidance scale must be between 0 and 20"),
    (lambda: DiffusionRequest(prompt=("a", "b"), negative=("x", "y", "z")).checked(), "one negative prompt per prompt"),
])
def test_bad_settings_say_what_to_change(call, fragment):
    with pytest.raises(InputError, match=fragment):
        call()


def test_dpm_solvers_x0_preview_equals_ddims_own(tiny_sd):
    records, _, _ = sd_run(tiny_sd.components, "DPM-Solver++", guidance=3.0)
    r = records[2]
    ddim = make_scheduler("DDIM", tiny_sd.components["scheduler"].config, clip_sample=False)
    ddim.set_timesteps(6)
    expected = ddim.step(r.eps, r.timestep, r.before.x).pred_original_sample  # DDIM reports x̂_0 itself
    assert torch.allclose(r.x0_hat, expected, atol=1e-5)
    assert all(rec.x0_hat is not None for rec in records)


# ---- the tab's handlers and endpoints ------------------------------------------------------------


def test_diffusion_handlers_stream_scrub_branch_and_export(embedded):
    from playground.ui import diffusion_tab

    request = diffusion_tab.DenoiseRequest(
        model=diffusion_tab.LDM_FASHION, prompt="Trouser", scheduler="Euler ancestral", steps=6, guidance=3.0, seed=2
    )
    frames = list(diffusion_tab.on_denoise(embedded, request, progress=None))
    assert len(frames) == 7 and "Step 1 of 6" in frames[0][5] and frames[-1][4] is not None  # one update a step, then the final
    handle = frames[-1][6]
    xt, x0, eps, chans, guidance, outcomes, *charts = diffusion_tab.on_scrub(embedded, handle, 3)
    t = resolve(handle).records[2].timestep  # the scrubbed step's timestep, marked on each schedule chart
    assert len(charts) == 3 and all('class="lm-mark"' in c and f">step 3: t = {t}</text>" in c for c in charts)
    assert xt is not None and x0 is not None and chans is not None and [c for _, c in guidance][2].startswith("ε_u + 3")
    captions = [c for _, c in guidance]  # what the condition adds, and the x̂_0 of each prediction (learner walk, item 9)
    assert captions[3].startswith("ε_c − ε_u") and [c for _, c in outcomes][2].startswith("x̂_0 guided (w = 3)") and len(outcomes) == 3
    noises, after_run = diffusion_tab.on_guidance(embedded, handle)  # filled after every run, before any scrubbing
    assert len(noises) == 4 and len(after_run) == 3 and noises[0][1].startswith("step 4:")
    *_, last = diffusion_tab.on_branch(
        embedded, diffusion_tab.BranchRequest(step=3, prompt="Trouser", negative="", guidance=3.0), handle, progress=None
    )
    assert last[6]["distance"].max() == 0.0  # nothing changed: the branch retraces the run
    *_, last = diffusion_tab.on_branch(
        embedded, diffusion_tab.BranchRequest(step=3, prompt="Sneaker", negative="", guidance=3.0), handle, progress=None
    )
    assert last[6]["distance"].iloc[-1] > 0 and "Sneaker" in last[5][1][1]
    # the top row is the branch's own, every picture of it (learner walk, cosmetic: x_t of the branch beside the original's
    # x̂_0 and final image): its final image is the branch's, the one shown beside the original below
    x_t, x0, eps, _, final, both = last[:6]
    assert all(p is not None for p in (x_t, x0, eps, final)) and "top row shows the branch" in last[7]
    assert open(final, "rb").read() == open(both[1][0], "rb").read() != open(both[0][0], "rb").read()
    grid, gif = diffusion_tab.on_export(embedded, handle)
    assert grid.endswith(".png") and gif.endswith(".gif")


@pytest.mark.parametrize("args, fragment", [
    ({"model": "google/ddpm-cifar10-32", "prompt": "a cat"}, "not a class this model knows"),
    ({"model": "google/ddpm-cifar10-32", "steps": 500}, "steps must be between 1 and 100"),
    ({"model": "google/ddpm-cifar10-32", "scheduler": "LMS"}, "scheduler must be one of"),
    ({"model": "/etc"}, "outside the folders"),
])
def test_denoise_refuses_bad_input_with_a_message(embedded, args, fragment):
    import gradio as gr

    from playground.ui import diffusion_tab

    with pytest.raises(gr.Error, match=fragment):
        next(
            diffusion_tab.on_denoise(
                embedded, diffusion_tab.DenoiseRequest(**{"prompt": "Bag", "steps": 5, "guidance": 3.0, **args}), progress=None
            )
        )


def test_diffusion_endpoints_over_http_return_native_lossless_pngs(live_app):
    from gradio_client import Client, handle_file
    from PIL import Image

    from playground.ui import diffusion_tab

    client = Client(live_app, verbose=False)
    noised = client.predict(handle_file(diffusion_tab.FORWARD_EXAMPLES[0]), 500, "linear", 0, api_name="/forward_noise")
    served = Image.open(noised)
    expected = diffusion_tab.forward_api(Image.open(diffusion_tab.FORWARD_EXAMPLES[0]).convert("RGB"), 500, "linear", 0)
    assert (
        served.format == "PNG" and served.size == expected.size == Image.open(diffusion_tab.FORWARD_EXAMPLES[0]).size
    )  # native, not enlarged
    assert np.array_equal(np.asarray(served.convert(expected.mode)), np.asarray(expected))  # lossless: the handler's own pixels
    job = client.submit("google/ddpm-cifar10-32", "Ankle boot", "DDIM", 5, 3.0, 0, "", api_name="/denoise")
    final, outputs = job.result(), job.outputs()
    assert len(outputs) >= 6  # every step streamed, then the final image
    loader = ModelLoader(Settings(offline=True, device="cpu"))
    own = list(diffusion_tab.denoise_api(loader, "google/ddpm-cifar10-32", "Ankle boot", "DDIM", 5, 3.0, 0, ""))[-1]
    img = Image.open(final)
    assert img.format == "PNG" and img.size == own.size  # the model's 28 px, not 256
    assert np.abs(np.asarray(img.convert(own.mode), dtype=int) - np.asarray(own, dtype=int)).max() <= 1


@pytest.mark.parametrize("content, fragment", [
    (b"#!/bin/sh\necho hi\n", "not a picture this page can read"),
    (b"<html><script>alert(1)</script></html>", "not a picture this page can read"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="9" height="9"/></svg>', "not a picture this page can read"),
    (b"", "not a picture this page can read"),
    ("bomb", "9,400 x 9,400 pixels; the limit is 16,777,216"),
])
def test_an_upload_that_is_no_picture_or_too_many_pixels_is_refused_before_it_is_decoded(live_app, tmp_path, content, fragment):
    """A shell script, HTML, SVG or an empty file named .png got Gradio's generic 'upstream app has raised an exception';
    a 9,400 x 9,400 paletted PNG of 107 KB was decoded (+365 MB) (hold, round 2, item 4)."""
    import httpx
    from PIL import Image

    path = tmp_path / "upload.png"
    if content == "bomb":
        Image.new("P", (9400, 9400)).save(path, optimize=True)  # a small file of many pixels
        assert path.stat().st_size < 2_000_000
    else:
        path.write_bytes(content)
    http = httpx.Client(timeout=60)
    with open(path, "rb") as f:
        uploaded = http.post(f"{live_app}gradio_api/upload", files={"files": ("upload.png", f, "image/png")}).json()[0]
    body = {"data": [{"path": uploaded, "meta": {"_type": "gradio.FileData"}}, 100, "linear", 0]}
    event = http.post(f"{live_app}gradio_api/call/forward_noise", json=body).json()["event_id"]
    stream = http.get(f"{live_app}gradio_api/call/forward_noise/{event}").text
    assert "event: error" in stream and fragment in stream, stream[-400:]


@pytest.mark.parametrize("body, fragment", [
    ('["google/ddpm-cifar10-32", "Ankle boot", "DDIM", NaN, 3.0, 0, ""]', "steps must be a whole number"),
    ('["google/ddpm-cifar10-32", "Ankle boot", "DDIM", 5, Infinity, 0, ""]', "guidance"),
    ('["google/ddpm-cifar10-32", "Ankle boot", "DDIM", 5, 3.0, -1e300, ""]', "seed"),
])
def test_denoise_with_nan_or_infinity_sent_as_raw_json_says_what_is_wrong(live_app, body, fragment):
    import httpx

    event = httpx.post(f"{live_app}gradio_api/call/denoise", content=f'{{"data": {body}}}',
                       headers={"Content-Type": "application/json"}, timeout=30).json()["event_id"]
    stream = httpx.get(f"{live_app}gradio_api/call/denoise/{event}", timeout=60).text
    assert "event: error" in stream and fragment in stream, stream[-500:]


@pytest.mark.parametrize("pipeline_name, scheduler_name", [("DDIMPipeline", "DDIM"), ("DDPMPipeline", "DDPM")])
def test_unconditional_unet_equals_its_pipeline(settings, tiny_root, pipeline_name, scheduler_name):
    import diffusers

    lm = ModelLoader(settings).load(str(tiny_root / "tiny-ddpm"), "diffusion")  # an unconditional UNet2DModel
    records = list(run(lm, DiffusionRequest(scheduler=scheduler_name, steps=10, seed=4, rederive=False)))
    pipe = getattr(diffusers, pipeline_name)(unet=lm.model, scheduler=make_scheduler(scheduler_name, lm.components["scheduler"].config))
    expected = pipe(batch_size=1, generator=torch.Generator().manual_seed(4), num_inference_steps=10, output_type="np").images
    ours = (records[-1].x / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-6)


def test_forward_view_keeps_grey_images_grey_and_labels_every_schedule():
    from PIL import Image

    from playground.core.diffusion.schedule import SCHEDULES
    from playground.ui import diffusion_tab

    grey = Image.open(diffusion_tab.FORWARD_EXAMPLES[0]).convert("RGB")  # as gradio hands it over
    noised, strip, *charts = diffusion_tab.on_forward(diffusion_tab.ForwardRequest(grey, 400, "linear", 0))
    noised, strip = Image.open(noised), Image.open(strip)  # pictures reach the page as PNG files (see test_pictures)
    assert all('class="lm-mark"' in c and ">t = 400</text>" in c for c in charts)  # the forward view's t is marked
    # with every schedule's value there (lesson 13 asks the learner to read ᾱ_t and the SNR at a t)
    from playground.core.diffusion.schedule import noise_schedule

    assert f">linear {float(noise_schedule('linear').alphas_cumprod[400]):.3g}</text>" in charts[1]
    assert noised.mode == "L" and strip.mode == "L"  # one ε per pixel, not coloured speckles
    assert len(charts) == 3 and all(
        all(f"</svg> {name}</span>" in c for name in SCHEDULES) and c.count("stroke-dasharray") >= 6 for c in charts
    )  # a legend that shows
    native = diffusion_tab.forward_api(grey, 400, "linear", 0)  # the API's picture: the model's own pixels, not enlarged
    assert native.size == grey.size and noised.resize(native.size, Image.NEAREST).tobytes() == native.tobytes()


@pytest.mark.parametrize("steps, strength", [(1, 1.0), (20, 0.05)], ids=["one-step", "img2img-low-strength"])
def test_a_one_step_run_finishes_with_a_valid_scrub_slider(embedded, steps, strength):
    """Steps = 1, or image-to-image at strength 0.05 of 20 steps, used to set the scrub slider's maximum to its
    minimum: the page showed only errors and the status stuck at "Step 1 of 1"."""
    from PIL import Image

    from playground.ui import diffusion_tab

    init = Image.open(diffusion_tab.FORWARD_EXAMPLES[0]) if strength < 1 else None
    request = diffusion_tab.DenoiseRequest(model="google/ddpm-cifar10-32", prompt="Bag", steps=steps, guidance=3.0, init_image=init,
                               strength=strength)
    frames = list(diffusion_tab.on_denoise(embedded, request, progress=None))
    final = frames[-1]
    slider = final[7]
    assert final[4] is not None and "Done" in final[5]
    assert slider["maximum"] > slider["minimum"] and slider["interactive"] is False


def test_a_denoise_request_is_checked_whole_before_any_model_loads():
    from playground.ui import diffusion_tab

    req = diffusion_tab.DenoiseRequest(model="google/ddpm-cifar10-32", prompt="Bag", steps=5.0, guidance=3, seed=0).checked()
    assert (req.steps, req.guidance, req.seed, req.strength) == (5, 3.0, 0, 1.0) and isinstance(req.steps, int)
    with pytest.raises(InputError, match="clipping"):
        diffusion_tab.DenoiseRequest(model="no/such-model", prompt="Bag", clip="sometimes").checked()
    with pytest.raises(InputError, match="strength"):
        diffusion_tab.DenoiseRequest(model="no/such-model", prompt="Bag", init_image=object(), strength=float("nan")).checked()


def test_latent_exports_end_with_the_decoded_image_and_x0_is_decoded_where_cheap(embedded):
    """The latent model's x̂_0 panel and its GIF used to show only the preview: the GIF ended on a blocky guess."""
    import numpy as np
    from PIL import Image

    from playground.ui import diffusion_tab

    request = diffusion_tab.DenoiseRequest(model=diffusion_tab.LDM_FASHION, prompt="Trouser", steps=5, guidance=3.0, seed=1)
    frames = list(diffusion_tab.on_denoise(embedded, request, progress=None))
    handle = frames[-1][6]
    lm = load_diffusion(embedded, diffusion_tab.LDM_FASHION)[1]
    assert pictures.decode_is_cheap(lm)
    last = resolve(handle).records[-1]
    shown = np.asarray(Image.open(frames[-1][1]))
    assert np.array_equal(shown, np.asarray(pictures.picture(pictures.pixels(lm, last.x0_hat, full=True))))  # x̂_0 decoded
    grid, gif = diffusion_tab.on_export(embedded, handle)
    movie = Image.open(gif)
    movie.seek(movie.n_frames - 1)
    decoded = pictures.picture(pictures.pixels(lm, last.x, full=True), 256)
    assert np.abs(np.asarray(movie.convert("L"), dtype=int) - np.asarray(decoded.convert("L"), dtype=int)).mean() < 2  # ends decoded
