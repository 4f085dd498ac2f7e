"""The Text-to-image tab and /cross_attention on a tiny random pipeline; the embedded sd-shapes model against
diffusers' own StableDiffusionPipeline, and where its words land; a real browser typing a prompt."""

from __future__ import annotations

import base64
import io
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from playground.config import Settings
from playground.core.diffusion.pictures import decode
from playground.core.diffusion.run import DiffusionRequest, final_sample
from playground.models import ModelLoader
from playground.ui import text_to_image_tab
from tests.conftest import MODELS, has_model
from tests.test_browser import page as _page  # noqa: F401  (the real-browser fixture: Debian's chromium, offline)

needs_shapes = pytest.mark.skipif(not has_model("sd-shapes"), reason="assets/models/sd-shapes is not built yet")


@pytest.fixture(scope="module")
def tiny(tiny_root):
    return ModelLoader(Settings(offline=True, model_roots=(tiny_root,), device="cpu")), str(tiny_root / "tiny-sd")


@pytest.fixture(scope="module")
def embedded() -> ModelLoader:
    return ModelLoader(Settings(offline=True, device="cpu"))


def test_the_api_returns_tokens_maps_that_sum_to_one_and_the_image(tiny):
    loader, folder = tiny
    out = text_to_image_tab.cross_attention_api(loader, folder, "a red cat", 3, 4, 3.0)
    # the tiny tokenizer has no merges: one token a letter (the embedded model's merges make each word one token)
    assert set(out) >= {"tokens", "maps", "image"} and out["tokens"] == list("aredcat")
    image = Image.open(io.BytesIO(base64.b64decode(out["image"])))
    maps = np.array(out["maps"])
    assert image.format == "PNG" and maps.shape == (7, image.height, image.width)
    assert np.allclose(maps.sum(axis=(1, 2)), 1.0, atol=1e-6) and (maps >= 0).all()
    again = text_to_image_tab.cross_attention_api(loader, folder, "a red cat", 3, 4, 3.0)  # the same seed, the same answer
    assert again["maps"] == out["maps"] and again["image"] == out["image"]


def test_the_tab_shows_the_image_a_picture_per_word_and_downloads(tiny):
    loader, folder = tiny
    request = text_to_image_tab.WordMapsRequest(model=folder, prompt="a red cat", negative="blue", seed=1, steps=4, guidance=3.0, step=0)
    status, image, words, files, comparison, comparison_notes = text_to_image_tab.on_generate(loader, request, progress=None)
    assert "sums to 1" in status and Image.open(image).size[0] >= 128
    assert comparison is None and comparison_notes == ""  # not asked
    assert [caption for _, caption in words] == list("aredcat")
    assert files[0].endswith(".png") and files[1].endswith(".json")
    one_step = text_to_image_tab.on_generate(loader, replace(request, step=2), progress=None)[0]
    assert "step 2 of 4" in one_step


def test_the_guidance_comparison_draws_each_scale_from_the_same_noise(tiny):
    """Issue 29 item 10: row w of the comparison is the plain run at w, sample i from the same x_T in every row."""
    from playground.core.diffusion.compare import compare_guidance

    loader, folder = tiny
    model = loader.load(folder, "latent-diffusion")
    request = DiffusionRequest(prompt="a red cat", steps=3, seed=5, guidance=9.0)
    c = compare_guidance(model, request, scales=(0.0, 1.0, 4.0), samples=2)
    assert c.scales == (0.0, 1.0, 4.0) and c.images.shape[:2] == (3, 2) and c.images.dtype == np.uint8
    for row, w in enumerate(c.scales):
        plain = decode(final_sample(model, replace(request, guidance=w, batch=2, snapshots=False)), model.components["vae"])
        expected = ((plain.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        assert np.array_equal(c.images[row], expected)
    assert not np.array_equal(c.images[0], c.images[2])  # the scale changes the picture
    request_ = text_to_image_tab.WordMapsRequest(folder, "a red cat", "", 5, 3, 2.0, 0, "yes")
    *_, gallery, notes = text_to_image_tab.on_generate(loader, request_, progress=None)
    assert len(gallery) == 4 * 6 and gallery[0][1] == "w = 0 · 1" and "no marks for this model" in notes
    with pytest.raises(Exception, match="compare must be one of"):
        text_to_image_tab.on_generate(loader, replace(request_, compare="maybe"), progress=None)


@pytest.mark.parametrize("args, fragment", [
    (("", 0, 4, 3.0), "Give a prompt"), (("a cat", -1, 4, 3.0), "seed"), (("a cat", 0, float("nan"), 3.0), "steps"),
    (("a cat", 0, 4, float("inf")), "guidance"), (("a cat", 0, 500, 3.0), "steps"), (("a cat", 0, 4, 0.0), "Guidance 0"),
])
def test_bad_requests_are_refused_with_what_to_change(tiny, args, fragment):
    loader, folder = tiny
    with pytest.raises(Exception, match=fragment):
        text_to_image_tab.cross_attention_api(loader, folder, *args)


def test_a_class_conditional_model_is_told_it_needs_a_text_to_image_one(embedded):
    if not has_model("ldm-fashion"):
        pytest.skip("ldm-fashion is not built")
    with pytest.raises(Exception, match="text-to-image model"):
        text_to_image_tab.cross_attention_api(embedded, "assets/models/ldm-fashion", "Trouser", 0, 3, 3.0)


@needs_shapes
@pytest.mark.parametrize("prompt, says, not_says", [
    ("a cat", ["Words this model never learned:** 'cat'", "sd-shapes draws only its shapes world"], ["The prompt was cut"]),
    ("an astronaut riding a horse", ["'astronaut', 'riding', 'horse'"], []),
    ("a small red circle on the left of a large blue square at the top and a green triangle below it",
     ["The prompt was cut.** It is", "this text encoder reads 16"], []),
    ("a large red circle", [], ["never learned", "was cut"]),
])
def test_the_page_says_which_words_leave_the_models_world_and_when_a_prompt_is_cut(embedded, prompt, says, not_says):
    """'a cat' gave a black square and maps for 'a', 'c', 'at', and prompts past 16 tokens were cut with only a server
    log line (learner walk, item 8)."""
    request = text_to_image_tab.WordMapsRequest(model="segmind/tiny-sd", prompt=prompt, negative="", seed=0, steps=2, guidance=5.0)
    status = text_to_image_tab.on_generate(embedded, request, progress=None)[0]
    assert all(s in status for s in says) and not any(s in status for s in not_says), status


@needs_shapes
def test_stable_diffusion_pipeline_runs_the_shapes_folder_and_equals_the_explorer(embedded):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(MODELS / "sd-shapes")  # float32 throughout, as every config says
    expected = pipe("a red circle left of a blue square", negative_prompt="green", guidance_scale=5.0, num_inference_steps=20,
                    generator=torch.Generator().manual_seed(4), output_type="np").images
    lm = embedded.load("segmind/tiny-sd", "latent-diffusion")
    x = final_sample(lm, DiffusionRequest(prompt="a red circle left of a blue square", negative="green", steps=20, guidance=5.0, seed=4))
    ours = (decode(x, lm.components["vae"]) / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert expected.shape == (1, 32, 32, 3)
    np.testing.assert_allclose(ours, expected, atol=2e-3)  # float16 weights upcast, in another order of batching


@needs_shapes
def test_colour_and_shape_words_land_on_the_drawn_object(embedded):
    from playground.train import shapes_eval

    comps = embedded.load("segmind/tiny-sd", "latent-diffusion").components
    ratios = {"colour": [], "shape": []}  # the share of a word's map inside the object / the object's share of the image
    for k, prompt in enumerate(
        [
            "a large red circle",
            "a small blue square on the left",
            "a yellow triangle at the top",
            "a large green square",
            "a purple circle on the right",
            "a small white triangle",
            "a blue circle at the bottom",
            "a large red triangle",
        ]
    ):
        on = shapes_eval.words_on_object(comps, prompt, seed=k, steps=25, guidance=5.0)
        assert on is not None, f"nothing drawn for {prompt!r}"
        for kind, found in ratios.items():
            found.append(getattr(on, kind) / on.area)
    # in most prompts each kind of word puts at least the card's bar (2x, shapes_eval.MAPS_BAR) of the object's share on
    # the object; the same model before its grounding run (cross-attention at 8x8 only) did so in 0-3% of the card's prompts
    assert shapes_eval.MAPS_BAR == 2.0
    assert all(np.mean(np.array(found) >= shapes_eval.MAPS_BAR) >= 0.75 for found in ratios.values()), ratios


@needs_shapes
def test_the_card_reports_the_checkers_figures_and_the_held_out_pairs():
    from playground.train import shapes_data

    card = (MODELS / "sd-shapes" / "README.md").read_text()
    assert all(" ".join(p) in card for p in shapes_data.HELDOUT_PAIRS) and "python -m playground.train.shapes" in card
    assert "StableDiffusionPipeline.from_pretrained" in card and "](samples.png)" in card


@pytest.mark.browser
@needs_shapes
def test_browser_types_a_prompt_runs_and_sees_the_word_maps(_page):
    expect = pytest.importorskip("playwright.sync_api").expect
    from tests.conftest import ARTIFACTS

    page = _page
    page.get_by_role("tab", name="Text-to-image").click()
    page.locator("#t2i-prompt textarea").fill("a small blue square on the left")
    page.locator("#t2i-run").click()
    expect(page.locator("#t2i-status")).to_contain_text("sums to 1", timeout=120_000)
    expect(page.locator("#t2i-words img")).to_have_count(7)  # a, small, blue, square, on, the, left
    expect(page.locator("#t2i-image img")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "text-to-image-tab.png"), full_page=True)
    page.locator("#t2i-prompt textarea").fill("a purple triangle")  # lesson 17: guidance compared (issue 29, item 10)
    page.locator("#t2i-compare label", has_text="Yes").click()
    page.locator("#t2i-run").click()
    expect(page.locator("#t2i-compare-grid img")).to_have_count(24, timeout=120_000)
    expect(page.locator("#t2i-compare-notes")).to_contain_text("of 6")
    page.locator("#t2i-compare-grid").scroll_into_view_if_needed()
    for i in range(24):  # the gallery loads its pictures lazily: bring each into view, then wait for all of them
        page.locator("#t2i-compare-grid img").nth(i).scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('#t2i-compare-grid img')].every(i => i.complete && i.naturalWidth > 0)",
                           timeout=30_000)
    page.locator("#t2i-compare-section").screenshot(path=str(ARTIFACTS / "text-to-image-guidance-compared.png"))
    page.get_by_test_id("No-radio-label").click()
    assert page.outside_requests == []


def test_twin_pictures_swap_the_shapes_and_the_checker_reads_the_inverse_relation():
    from playground.train import shapes_check, shapes_data

    images, captions, twin = shapes_data.twin_dataset(60, 3, two_share=0.5)
    pairs = [(i, int(j)) for i, j in enumerate(twin) if j > i]
    assert pairs and all(twin[j] == i for i, j in pairs) and (twin == -1).any()
    for i, j in pairs:
        a, b = shapes_data.parse(captions[i]), shapes_data.parse(captions[j])
        assert a.objects == b.objects and shapes_data.INVERSE[a.relation] == b.relation
        assert abs((images[i] > 0).sum() - (images[j] > 0).sum()) < 0.1 * (images[i] > 0).sum()  # the same shapes, moved
        assert not np.array_equal(images[i], images[j])
        assert shapes_check.judge(images[i], a).both and shapes_check.judge(images[j], b).both and not shapes_check.judge(images[j], a).both


@pytest.mark.parametrize("paired", [False, True])
def test_paired_batches_give_each_twin_the_same_noise_and_step(paired):
    from playground.train import shapes

    cfg = shapes.ShapesTrainConfig(batch_size=8)
    latents = torch.zeros(6, 4, 8, 8)
    twin = torch.tensor([1, 0, 3, 2, -1, -1]) if paired else None
    idx, drop, noise, t = shapes.batch(latents, twin, cfg, torch.Generator().manual_seed(0))
    assert idx.shape == t.shape == (8,) and noise.shape == (8, 4, 8, 8)
    if not paired:
        assert not torch.equal(noise[:4], noise[4:])
        return
    assert torch.equal(noise[:4], noise[4:]) and torch.equal(t[:4], t[4:])
    for k in range(4):
        if twin[idx[k]] >= 0:
            assert idx[4 + k] == twin[idx[k]]


def test_role_targets_name_the_left_or_top_object_the_checker_finds_in_the_drawn_picture():
    from playground.train import shapes, shapes_check, shapes_data

    images, captions = shapes_data.dataset(80, 5, two_share=0.5)
    targets = shapes.role_targets(captions)
    assert (targets[:, 0] == -1).any() and (targets[:, 0] >= 0).any()
    for img, caption, target in zip(images, captions, targets.tolist()):
        if target[0] < 0:
            assert len(shapes_data.parse(caption).objects) == 1
            continue
        first, second = sorted(shapes_check.read(img), key=lambda f: f.cx + f.cy)  # left/top has the smaller x + y on either axis
        named = [(list(shapes_data.COLOURS).index(f.colour), shapes_data.SHAPES.index(f.shape)) for f in (first, second)]
        assert named == [tuple(target[:2]), tuple(target[2:])], caption


def test_role_loss_reads_only_the_role_slots_and_skips_captions_without_roles():
    from playground.train import shapes, shapes_data

    torch.manual_seed(0)
    head = torch.nn.Linear(8, len(shapes_data.COLOURS) + len(shapes_data.SHAPES))
    c = torch.randn(3, shapes.MAX_TOKENS, 8)
    targets = torch.tensor([[0, 1, 2, 0], [-1, -1, -1, -1], [5, 2, 4, 1]])
    loss = shapes.role_loss(head, c, targets)
    n = len(shapes_data.COLOURS)
    want = 0.0
    for k, slot in enumerate(shapes.ROLE_SLOTS):
        logits = head(c[[0, 2], slot])
        want += torch.nn.functional.cross_entropy(logits[:, :n], targets[[0, 2], 2 * k])
        want += torch.nn.functional.cross_entropy(logits[:, n:], targets[[0, 2], 2 * k + 1])
    torch.testing.assert_close(loss, want / 2)
    other = c.clone()
    other[:, :shapes.ROLE_SLOTS[0]] = 0.0  # the caption's own states: not read
    other[1] = 0.0  # the row without roles: not read
    torch.testing.assert_close(shapes.role_loss(head, other, targets), loss)
    assert shapes.role_loss(head, c, torch.full((3, 4), -1)).item() == 0.0
