"""Real-browser tests: headless Debian Chromium driven by Playwright (never a downloaded browser).

Screenshots go to test-artifacts/ beside the test output.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from tests.conftest import ARTIFACTS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(live_app):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium"):
        message = "Debian's chromium is not installed: `apt-get install -y chromium` (.ci/run does it)."
        if os.environ.get("PLAYGROUND_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        outside = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
        # not "networkidle": per-user gr.State keeps a heartbeat stream open for the session
        goto(page, live_app)
        page.get_by_role("tab", name="Models").wait_for(timeout=60_000)
        page.outside_requests = outside
        yield page
        browser.close()


def goto(page, url: str, tries: int = 3) -> None:
    """page.goto(url), again from a blank page if Chromium aborted it (net::ERR_ABORTED: the last page's own streams
    were still closing as it was left; seen in loaded CI runs between the light- and dark-theme checks and between
    two lesson links). Up to `tries` times, half a second apart; any other error is raised at once."""
    from playwright.sync_api import Error

    for attempt in range(tries):
        try:
            page.goto(url, wait_until="load")
            return
        except Error as exc:
            if "ERR_ABORTED" not in str(exc) or attempt == tries - 1:
                raise
            page.goto("about:blank")
            page.wait_for_timeout(500)


def test_page_switches_tabs_and_loads_nothing_from_outside(page):
    for name in ["Models", "Diffusion", "GPT", "Tokenizer"]:
        page.get_by_role("tab", name=name).click()
        assert page.get_by_role("tab", name=name).get_attribute("aria-selected") == "true"
    page.get_by_role("tab", name="Models").click()
    page.get_by_text("One loader behind every tab").wait_for()
    page.get_by_text("resolves to", exact=False).first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "models-tab.png"), full_page=True)
    page.get_by_role("tab", name="Tokenizer").click()
    assert page.outside_requests == []


def test_tokenizer_flow_types_picks_two_and_explains_a_word(page):
    page.get_by_role("tab", name="Tokenizer").click()
    panels = page.locator("#tok-panels .tok-panel")
    expect = pytest.importorskip("playwright.sync_api").expect
    expect(panels).to_have_count(3, timeout=30_000)  # the page's own first run, done before we type (it could land after ours)
    text = page.locator("#tok-text textarea")
    text.fill("Tokenizers split unbelievably long words, like Donaudampfschiff 🤗.")
    # keep gpt2 and bert-base-uncased, untick t5-small
    page.locator("#tok-names label", has_text="t5-small").click()
    page.locator("#tok-go").click()
    expect(panels).to_have_count(2, timeout=30_000)
    expect(panels.nth(1)).to_contain_text("donaudampfschiff", timeout=30_000)  # the typed text, not the example
    assert "gpt2" in panels.nth(0).inner_text() and "bert-base-uncased" in panels.nth(1).inner_text()
    assert "tokens" in page.locator("#tok-panels .tok-counts").first.inner_text()
    assert page.locator("#tok-panels .tok").count() > 10
    assert page.locator("#tok-panels .tok-unk").count() >= 1  # BERT cannot spell the emoji
    # word-split view: the first word offered is the one split into the most tokens
    page.locator("#split-explain").click()
    expect(page.locator("#split-steps")).to_contain_text("How gpt2 split", timeout=30_000)
    assert page.locator("#split-steps table").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "tokenizer-tab.png"), full_page=True)


def test_attention_flow_picks_a_model_switches_views_focuses_and_downloads(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    page.get_by_role("tab", name="Attention").click()
    model = page.locator("#att-model input")
    model.fill("t5-small")
    model.press("Enter")
    page.locator("#att-text textarea").fill("reverse words: red cat blue dog")
    page.locator("#att-run").click()
    expect(page.locator("#att-shown svg.att-heatmap")).to_have_count(1, timeout=60_000)
    expect(page.locator("#att-notice")).to_contain_text("greedy output", timeout=30_000)
    # the encoder-decoder's three kinds side by side
    page.locator("#att-view-choice label", has_text="Encoder / decoder / cross").click()
    expect(page.locator("#att-shown svg.att-heatmap")).to_have_count(3, timeout=30_000)
    expect(page.locator("#att-shown")).to_contain_text("cross-attention")
    # another layer and head, then the lines view
    for slider, value in (("#att-layer", "2"), ("#att-head", "3")):
        box = page.locator(f"{slider} input[type=number]")
        box.fill(value)
        box.press("Enter")
    page.locator("#att-view-choice label", has_text="Lines").click()
    expect(page.locator("#att-shown svg.att-lines")).to_have_count(1, timeout=30_000)
    expect(page.locator("#att-shown")).to_contain_text("layer 2, head 3")
    # focus a token: its summary appears
    page.locator("#att-view-choice label", has_text="One head").click()
    focus = page.locator("#att-focus input")
    focus.click()
    page.get_by_role("option").filter(has_text="▁red").first.click()
    expect(page.locator("#att-shown .att-focus").first).to_contain_text("attends most to", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "attention-tab.png"), full_page=True)
    # download the PNG of the current view
    page.locator("#att-export").click()
    link = page.locator("#att-downloads tr", has_text=".png").locator("a").first
    expect(link).to_be_visible(timeout=30_000)
    with page.expect_download() as info:
        link.click()
    path = info.value.path()
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert page.outside_requests == []


def _set_slider(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(value)
    box.press("Enter")


def test_gpt_flow_streams_tokens_then_steps_through_and_forces_a_candidate(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    page.get_by_role("tab", name="GPT").click()
    page.locator("#gpt-mode label", has_text="Sampling").click()
    _set_slider(page, "gpt-max-new", "200")
    # the continuation grows in the page while it is generated: record, in the page itself, the number of new
    # chips after every change of the text (polling from here misses states when the machine is busy)
    page.evaluate("""() => {
        window.__chipCounts = [];
        const watch = () => {
            const box = document.querySelector('#gpt-shown');
            if (!box) return setTimeout(watch, 20);
            new MutationObserver(() => window.__chipCounts.push(box.querySelectorAll('.lm-chip.lm-new').length))
                .observe(box, {childList: true, subtree: true, characterData: true});
        };
        watch();
    }""")
    page.locator("#gpt-generate").click()
    chips = page.locator("#gpt-shown .lm-chip.lm-new")
    expect(page.locator("#gpt-bars .lm-step")).to_have_count(1, timeout=60_000)
    seen = set(page.evaluate("() => window.__chipCounts"))
    assert len({n for n in seen if 0 < n < chips.count()}) >= 2, f"no intermediate states seen: {sorted(seen)}"
    # step 3: its candidates, then force another one and branch
    _set_slider(page, "gpt-step-pick", "3")
    expect(page.locator("#gpt-bars")).to_contain_text("Step 3", timeout=30_000)
    # the inspected step is outlined in the text (the third new token) and the lens says which step it explains
    expect(page.locator("#gpt-shown .lm-inspected")).to_have_count(1, timeout=30_000)
    assert (
        page.evaluate(
            "() => [...document.querySelectorAll('#gpt-shown .lm-chip.lm-new')].findIndex(c => c.classList.contains('lm-inspected'))"
        )
        == 2
    )
    expect(page.locator("#gpt-lens")).to_contain_text("Logit lens at step 3")
    page.locator("#gpt-branch").click()
    expect(page.locator("#gpt-shown .lm-forced")).to_have_count(1, timeout=30_000)
    expect(page.locator("#gpt-shown")).to_contain_text("branch: step 3")
    assert page.locator("#gpt-lens table").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "gpt-tab.png"), full_page=True)
    # an error clears the last run's status line instead of leaving it beside the message
    expect(page.locator("#gpt-notice")).to_contain_text("Running")
    page.locator("#gpt-prompt textarea").fill("")
    page.locator("#gpt-generate").click()
    expect(page.get_by_text("Enter a prompt", exact=False).first).to_be_visible(timeout=30_000)
    expect(page.locator("#gpt-notice")).not_to_contain_text("Running")
    page.locator("#gpt-prompt textarea").fill("ROMEO.\n")


def test_bert_flow_fills_a_mask(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    page.get_by_role("tab", name="BERT").click()
    page.locator("#bert-text textarea").fill("O Romeo, Romeo! wherefore art [MASK] Romeo?")
    page.locator("#bert-fill").click()
    expect(page.locator("#bert-sentence .lm-mask")).to_have_count(1, timeout=60_000)
    expect(page.locator("#bert-sentence .lm-mask")).to_contain_text("thou")
    expect(page.locator("#bert-predictions")).to_contain_text("thou")
    expect(page.locator("#bert-lens")).to_contain_text("layer 3", timeout=30_000)
    page.locator("#bert-embed").click()
    expect(page.locator("#bert-similarity table td").first).to_be_visible(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "bert-tab.png"), full_page=True)


def test_interventions_flow_knocks_out_sweeps_and_patches_on_the_embedded_gpt(page):
    """Issue 30: the section walked on the embedded GPT: knock out two heads, sweep every head, patch the residual stream,
    the heads and take the sink away, with a screenshot of each."""
    expect = pytest.importorskip("playwright.sync_api").expect
    page.get_by_role("tab", name="Interventions").click()
    page.locator("#iv-text textarea").fill("I am Lord Angelo's man. Lord")
    page.locator("#iv-heads textarea, #iv-heads input").first.fill("0.2, 3.2")
    page.locator("#iv-ablate").click()
    view = page.locator("#iv-ablate-view")
    expect(view).to_contain_text("Knocked out (zero): heads 0.2, 3.2", timeout=60_000)
    expect(view).to_contain_text("Angelo")
    expect(page.locator("#iv-notice")).to_contain_text("embedded")
    expect(page.locator("#iv-ablate-file")).to_contain_text(".json")
    view.screenshot(path=str(ARTIFACTS / "interventions-ablate.png"))
    page.locator("#iv-sweep").click()
    expect(page.locator("#iv-sweep-delta rect")).to_have_count(4 * 4 + 1, timeout=60_000)  # 4 layers x 4 heads, and the mark
    expect(view).to_contain_text("falls most when head 3.2 is gone")
    view.screenshot(path=str(ARTIFACTS / "interventions-sweep.png"))
    page.locator("#iv-patch").click()  # its defaults: Angelo / John
    patched = page.locator("#iv-patch-view")
    expect(patched.locator("#iv-patch-grid")).to_be_visible(timeout=60_000)
    expect(patched).to_contain_text("Largest: 1.00 at layer 0")
    patched.screenshot(path=str(ARTIFACTS / "interventions-patch-residual.png"))
    page.locator("#iv-what label", has_text="Heads").click()
    page.locator("#iv-patch").click()
    expect(patched).to_contain_text("layer x head", timeout=60_000)
    patched.screenshot(path=str(ARTIFACTS / "interventions-patch-heads.png"))
    page.locator("#iv-corrupt textarea").fill("I am Lord John, his man. Lord")  # a different token length: refused, clearly
    page.locator("#iv-patch").click()
    expect(page.get_by_text("must have the same number", exact=False).first).to_be_visible(timeout=30_000)
    page.locator("#iv-sink").click()
    expect(page.locator("#iv-sink-view")).to_contain_text("bits per character", timeout=60_000)
    page.locator("#iv-sink-view").screenshot(path=str(ARTIFACTS / "interventions-sink.png"))
    page.screenshot(path=str(ARTIFACTS / "interventions-tab.png"), full_page=True)
    assert page.outside_requests == []


def test_kv_cache_section_measures_both_ways_on_the_embedded_gpt(page):
    """Issue 31, item 3: the GPT tab's KV-cache section, run on the embedded GPT, with a screenshot."""
    expect = pytest.importorskip("playwright.sync_api").expect
    page.get_by_role("tab", name="GPT").click()
    if not page.locator("#kv-run").is_visible():
        page.locator("#kv-section").get_by_text("The KV cache, measured").first.click()
    _set_slider(page, "kv-steps", "12")
    page.locator("#kv-run").click()
    expect(page.locator("#kv-summary")).to_contain_text("8,192 bytes a token", timeout=60_000)
    expect(page.locator("#kv-summary")).to_contain_text("agree to")
    expect(page.locator("#kv-chart svg").first).to_be_visible()
    expect(page.locator("#kv-table")).to_contain_text("12")
    page.locator("#kv-section").screenshot(path=str(ARTIFACTS / "gpt-kv-cache.png"))
    assert page.outside_requests == []


def _look_inside(page, folder: str):
    """The Inside tab on the embedded model `folder` (skipped if it is not built), run; returns the model box."""
    from tests.conftest import has_model

    if not has_model(folder):
        pytest.skip(f"assets/models/{folder} is not built yet")
    page.get_by_role("tab", name="Inside").click()
    model = page.locator("#ins-model input")
    model.fill(f"assets/models/{folder}")
    model.press("Enter")
    page.locator("#ins-run").click()
    return model


def test_todays_decoder_on_the_embedded_llama_inside_and_its_kv_cache(page):
    """Issue 31: the embedded Llama-family model (rotary positions, 4 query heads on 2 key/value heads) in the Inside tab
    (RoPE written out, the shared key/value head) and in the KV-cache section (half the cache of full multi-head
    attention), with screenshots."""
    expect = pytest.importorskip("playwright.sync_api").expect
    model = _look_inside(page, "llama-shakespeare")
    expect(page.locator("#ins-head-view")).to_contain_text("RoPE", timeout=60_000)
    expect(page.locator("#ins-head-view")).to_contain_text("key/value head")
    expect(page.locator("#ins-block")).to_contain_text("SwiGLU")
    expect(page.locator("#ins-head-view")).to_contain_text("Learned positions (gpt2")  # GPT-2's positions beside RoPE
    page.locator("#ins-head-view").screenshot(path=str(ARTIFACTS / "inside-llama-head.png"))
    page.get_by_role("tab", name="Attention").click()  # the model view draws the heads that share a key/value head grouped
    att_model = page.locator("#att-model input")
    att_model.fill("assets/models/llama-shakespeare")
    att_model.press("Enter")
    page.locator("#att-run").click()
    expect(page.locator("#att-notice")).to_contain_text("Grouped-query attention: 4 query heads share 2", timeout=60_000)
    att_model.fill("gpt2")
    att_model.press("Enter")
    page.get_by_role("tab", name="Inside").click()
    page.get_by_role("tab", name="GPT").click()
    gpt_model = page.locator("#gpt-model input")
    gpt_model.fill("assets/models/llama-shakespeare")
    gpt_model.press("Enter")
    if not page.locator("#kv-run").is_visible():  # the accordion may be open already (an earlier test opened it)
        page.locator("#kv-section").get_by_text("The KV cache, measured").first.click()
    page.locator("#kv-run").click()
    expect(page.locator("#kv-summary")).to_contain_text("4 query heads share 2 key/value heads", timeout=60_000)
    page.locator("#kv-section").screenshot(path=str(ARTIFACTS / "gpt-kv-cache-llama.png"))
    gpt_model.fill("gpt2")
    gpt_model.press("Enter")
    page.get_by_role("tab", name="Inside").click()
    model.fill("gpt2")  # the next tests find the tabs as they were
    model.press("Enter")
    assert page.outside_requests == []


def test_the_embedded_mixture_of_experts_inside_and_routed(page):
    """Issue 31: the embedded mixture of experts in the Inside tab: its block's router (which experts ran for the token),
    then section 6: every token on its top expert's colour per layer, and what each expert's tokens have in common over
    the held-out Julius Caesar; screenshots."""
    expect = pytest.importorskip("playwright.sync_api").expect
    model = _look_inside(page, "moe-shakespeare")
    expect(page.locator("#ins-block")).to_contain_text("a mixture of 4 experts", timeout=60_000)
    assert page.locator("#ins-block td", has_text="ran").count() == 2
    if not page.locator("#ins-route").is_visible():
        page.locator("#ins-experts").get_by_text("6. Experts").first.click()
    page.locator("#ins-route").click()
    expect(page.locator("#rt-result")).to_contain_text("4 experts a layer, 2 a token", timeout=60_000)
    expect(page.locator("#rt-experts")).to_contain_text("Julius Caesar", timeout=60_000)
    assert page.locator("#rt-result .rt-layer").count() == 4 and page.locator("#rt-experts tr").count() == 5
    page.locator("#ins-experts").screenshot(path=str(ARTIFACTS / "inside-moe-routing.png"))
    page.locator("#ins-block").screenshot(path=str(ARTIFACTS / "inside-moe-block.png"))
    model.fill("gpt2")  # the next tests find the tab as it was
    model.press("Enter")
    assert page.outside_requests == []


def test_clip_space_grid_zero_shot_and_the_two_clouds(page):
    """Issue 32, item 1: the Text-to-image tab's CLIP space on the embedded clip-shapes: the picture x caption grid with
    each picture's own caption outlined, the zero-shot bars, the map of both clouds with the gap; screenshots."""
    from tests.conftest import has_model

    if not has_model("clip-shapes"):
        pytest.skip("assets/models/clip-shapes is not built yet")
    expect = pytest.importorskip("playwright.sync_api").expect
    page.get_by_role("tab", name="Text-to-image").click()
    if not page.locator("#clip-run").is_visible():
        page.locator("#clip-section").get_by_text("CLIP space").first.click()
    page.locator("#clip-texts textarea").fill("a red circle\na blue square\na yellow triangle\na white square above a purple circle")
    page.locator("#clip-run").click()
    expect(page.locator("#clip-notice")).to_contain_text("clip-shapes", timeout=60_000)
    expect(page.locator("#clip-grid-table")).to_be_visible()
    assert page.locator("#clip-grid-table tr").count() == 5  # the header and a row per drawn picture
    expect(page.locator("#clip-zero-shot")).to_contain_text("colour:")
    expect(page.locator("#clip-projection svg")).to_be_visible()
    page.locator("#clip-section").screenshot(path=str(ARTIFACTS / "text-to-image-clip-space.png"))
    if has_model("prior-shapes"):  # DALL-E 2's prior: the caption's text embedding and the prior's image embedding, their neighbours
        page.locator("#prior-run").click()
        expect(page.locator("#prior-nearest")).to_contain_text("the prior's image embedding", timeout=60_000)
        assert page.locator("#prior-nearest .clip-pic").count() == 10
        page.locator("#prior-result").screenshot(path=str(ARTIFACTS / "text-to-image-prior.png"))
    assert page.outside_requests == []


def test_dalle2_stage_by_stage_beside_sd_shapes_and_variations(page):
    """Issue 32, items 2 and 3: DALL-E 2's two stages on the embedded unclip-shapes (both embeddings with their nearest
    captions and pictures, the decoder streamed, the picture), sd-shapes beside it with the checker's readings and the
    table of differences; then variations of the drawn picture; screenshots."""
    from tests.conftest import has_model

    if not has_model("unclip-shapes"):
        pytest.skip("assets/models/unclip-shapes is not built yet")
    expect = pytest.importorskip("playwright.sync_api").expect
    page.get_by_role("tab", name="Text-to-image").click()
    if not page.locator("#unclip-run").is_visible():
        page.locator("#unclip-section").get_by_text("DALL-E 2, stage by stage").first.click()
    page.locator("#unclip-prompt textarea").fill("a large red circle")
    _set_slider(page, "unclip-steps", "20")
    page.locator("#unclip-run").click()
    expect(page.locator("#unclip-nearest")).to_contain_text("the prior's CLIP image embedding", timeout=90_000)
    assert page.locator("#unclip-nearest .clip-pic").count() == 10
    expect(page.locator("#unclip-status")).to_contain_text("Done", timeout=90_000)
    expect(page.locator("#unclip-side-by-side")).to_contain_text("sd-shapes (Stable Diffusion's design)")
    expect(page.locator("#unclip-side-by-side")).to_contain_text("the checker reads")
    expect(page.locator("#unclip-final img")).to_be_visible()
    expect(page.locator("#unclip-section")).to_contain_text("the diffusion model is conditioned on")
    page.locator("#unclip-section").screenshot(path=str(ARTIFACTS / "text-to-image-dalle2.png"))
    page.locator("#variations-take").click()
    expect(page.locator("#variations-image img")).to_be_visible(timeout=30_000)
    page.locator("#variations-run").click()
    expect(page.locator("#variations-notes")).to_contain_text("variation 4", timeout=90_000)
    assert page.locator("#variations-gallery img").count() >= 4
    page.locator("#variations-gallery").screenshot(path=str(ARTIFACTS / "text-to-image-variations.png"))
    assert page.outside_requests == []


def test_the_designs_side_by_side_with_the_checkers_marks_and_the_table(page):
    """Issue 33: one prompt through every text-to-image design, each card with its picture and the checker's marks
    (a design not built here says how to build it), the table of what differs; a terse prompt shows DALL-E 3's
    expansion; screenshots."""
    expect = pytest.importorskip("playwright.sync_api").expect
    page.get_by_role("tab", name="Text-to-image").click()
    page.locator("#designs-prompt textarea").fill("red circle left blue square")
    _set_slider(page, "designs-steps", "10")
    page.locator("#designs-run").click()
    expect(page.locator("#designs-status")).to_contain_text("5 of 5 designs drawn", timeout=180_000)
    cards = page.locator("#designs-cards .design-card")
    assert cards.count() == 5
    for key in ("sd", "dalle2", "dalle3"):
        expect(page.locator(f'#designs-cards [data-design="{key}"]')).to_contain_text("checker: colour")
    expect(page.locator('#designs-cards [data-design="dalle3"]')).to_contain_text("read: “a red circle left of a blue square”")
    for key in ("imagen", "alttext"):  # drawn, or saying how to build the model
        expect(page.locator(f'#designs-cards [data-design="{key}"]')).to_contain_text(re.compile("checker: colour|python -m"))
    expect(page.locator("#designs-table")).to_contain_text("where diffusion runs")
    page.locator("#designs-section").screenshot(path=str(ARTIFACTS / "text-to-image-designs.png"))
    _set_slider(page, "designs-steps", "50")
    assert page.outside_requests == []


def test_t5_flow_runs_a_task_with_beams(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    page.get_by_role("tab", name="T5").click()
    page.locator("#t5-text textarea").fill("sort numbers: 42 7 19 3")
    _set_slider(page, "t5-beams", "4")
    page.locator("#t5-run").click()
    expect(page.locator("#t5-output textarea")).to_have_value("3 7 19 42", timeout=60_000)
    expect(page.locator("#t5-steps .lm-finished").first).to_be_visible(timeout=30_000)
    assert page.locator("#t5-steps .lm-beam-step").count() >= 3
    expect(page.locator("#t5-beam-table")).to_contain_text("3 7 19 42")
    page.screenshot(path=str(ARTIFACTS / "t5-tab.png"), full_page=True)
    assert page.outside_requests == []


def test_diffusion_clipping_compared_at_high_guidance(page):
    """Issue 33: static clipping against Imagen's dynamic thresholding (and none), the same noise, on the pixel model."""
    expect = pytest.importorskip("playwright.sync_api").expect
    page.get_by_role("tab", name="Diffusion").click()
    _set_slider(page, "dif-guidance", "15")
    _set_slider(page, "dif-steps", "10")
    page.locator("#dif-clipping-section").get_by_text("Clipping compared").first.click()
    page.locator("#dif-clipping-run").click()
    expect(page.locator("#dif-clipping-notes")).to_contain_text("pixels pinned white", timeout=120_000)
    assert page.locator("#dif-clipping-grid img").count() >= 12
    page.locator("#dif-clipping-section").screenshot(path=str(ARTIFACTS / "diffusion-clipping-compared.png"))
    _set_slider(page, "dif-guidance", "3")  # the next tests find the tab as it was
    _set_slider(page, "dif-steps", "20")
    assert page.outside_requests == []


def test_diffusion_flow_streams_20_steps_scrubs_and_branches(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    page.get_by_role("tab", name="Diffusion").click()
    _set_slider(page, "dif-steps", "20")
    # every step counter the page draws while the run streams, recorded in the page as it changes (polling from here
    # missed steps when they came faster than a round trip)
    page.evaluate("""() => { window.__steps = new Set(); const el = document.querySelector('#dif-status');
      new MutationObserver(() => { const m = el.innerText.match(/Step (\\d+) of/); if (m) window.__steps.add(m[1]); })
        .observe(el, {subtree: true, childList: true, characterData: true}); }""")
    page.locator("#dif-run").click()
    status = page.locator("#dif-status")
    expect(status).to_contain_text("Done", timeout=120_000)
    seen = page.evaluate("() => [...window.__steps]")
    assert len(seen) >= 3, f"steps seen while streaming: {sorted(seen)}"
    expect(page.locator("#dif-final img")).to_be_visible(timeout=30_000)
    # the guidance view is filled after the run, before any scrubbing (it was empty until the slider moved)
    expect(page.locator("#dif-guidance-view img")).to_have_count(4, timeout=30_000)
    expect(page.locator("#dif-guidance-x0 img")).to_have_count(3, timeout=30_000)
    expect(page.locator("#dif-guidance-view")).to_contain_text("step 11:", timeout=30_000)  # the middle of 20
    # scrub back to step 5: ε_u, ε_c, their combination, what the condition adds, and the x̂_0 of each
    _set_slider(page, "dif-scrub", "5")
    expect(page.locator("#dif-guidance-view")).to_contain_text("step 5:", timeout=30_000)
    expect(page.locator("#dif-guidance-x0")).to_contain_text("step 5:", timeout=30_000)
    # each picture whole (not cropped to a square) with its caption inside the view (they were cut off below it)
    view = page.evaluate("""() => { const g = document.querySelector('#dif-guidance-view'), box = g.getBoundingClientRect();
      const leaves = [...g.querySelectorAll('*')].filter(e => !e.children.length && /ε_/.test(e.textContent));
      return {fits: [...g.querySelectorAll('img')].map(i => getComputedStyle(i).objectFit),
              captions: leaves.map(e => { const r = e.getBoundingClientRect();
                return [e.textContent.trim(), r.top >= box.top && r.bottom <= box.bottom && r.height > 0]; })}; }""")
    page.locator("#dif-guidance-view").screenshot(path=str(ARTIFACTS / "diffusion-guidance-view.png"))
    page.locator("#dif-guidance-x0").screenshot(path=str(ARTIFACTS / "diffusion-guidance-x0.png"))
    assert view["fits"] == ["contain"] * 4, view
    inside = [c for c, shown in view["captions"] if shown]
    assert inside[:3] == ["step 5: ε_u, without the condition", "ε_c: with it", "ε_u + 3·(ε_c − ε_u): the step's ε̂"], view
    assert inside[3].startswith("ε_c − ε_u: what the condition adds") and len(inside) == 4, view
    # branch from step 5 with another guidance scale
    _set_slider(page, "dif-guidance", "1")
    page.locator("#dif-branch").click()
    expect(page.locator("#dif-both img")).to_have_count(2, timeout=60_000)
    expect(page.locator("#dif-status")).to_contain_text("Branch from step 5 done", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "diffusion-tab.png"), full_page=True)
    assert page.outside_requests == []
