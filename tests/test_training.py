"""Training, made visible (issue 19): the 2-D diffusion model and the tiny GPT learn, reproducibly; the samplers are
diffusers' own DDPM and DDIM steps; the tab streams; the endpoints answer."""

from __future__ import annotations

import re

import pytest
import torch

from playground.config import Settings
from playground.core.training import toy_diffusion, toy_gpt
from playground.models import ModelLoader
from playground.models.results import resolve
from playground.ui import training_tab
from tests.test_browser import page as _page  # noqa: F401  (the real-browser fixture: Debian's chromium, offline)

TEXT = training_tab.CORPUS.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def moons_model():
    """Two moons, trained with the tab's defaults."""
    cfg = toy_diffusion.ToyConfig(max_seconds=toy_diffusion.MAX_SECONDS)  # the defaults, with the longest time cap
    data = toy_diffusion.make_dataset("moons", cfg.n_points, cfg.seed)
    *_, (model, progress) = toy_diffusion.train_toy(data, cfg, stream=False)
    assert not progress.stopped_early, f"the machine was too busy: the run reached the time cap at step {progress.step}"
    return model, data, progress


def test_toy_loss_falls_and_samples_lie_on_both_moons(moons_model):
    model, data, progress = moons_model
    losses = progress.losses
    assert sum(losses[-200:]) / 200 < 0.6 * sum(losses[:20]) / 20  # the first steps against the last
    heldout = toy_diffusion.make_dataset("moons", len(data), seed=99)  # fresh points from the same distribution
    baseline = toy_diffusion.nearest_distance(heldout, data)
    samples = progress.samples
    assert len(samples) == len(data)
    assert toy_diffusion.nearest_distance(samples, data) < 2 * baseline, (toy_diffusion.nearest_distance(samples, data), baseline)
    assert toy_diffusion.nearest_distance(data, samples) < 2 * baseline  # every part of the data has samples near it
    # both moons: make_dataset puts even-indexed points on the upper moon
    nearest = torch.cdist(samples, data).argmin(1)
    upper = float((nearest % 2 == 0).float().mean())
    assert 0.35 < upper < 0.65, f"share of samples on the upper moon: {upper:.2f}"
    untrained = toy_diffusion.sample(toy_diffusion.new_model(toy_diffusion.ToyConfig()), len(data), seed=3)
    assert toy_diffusion.nearest_distance(untrained, data) > 5 * baseline  # an untrained model does not


def test_the_same_seed_gives_the_same_losses():
    cfg = toy_diffusion.ToyConfig(steps=40, sample_every=40)
    data = toy_diffusion.make_dataset("spiral", 300, 1)
    a = [p.losses for _, p in toy_diffusion.train_toy(data, cfg)][-1]
    b = [p.losses for _, p in toy_diffusion.train_toy(data, cfg)][-1]
    c = [p.losses for _, p in toy_diffusion.train_toy(data, toy_diffusion.ToyConfig(steps=40, sample_every=40, seed=1))][-1]
    assert a == b and a != c
    before = torch.random.get_rng_state()
    list(toy_diffusion.train_toy(data, cfg))
    assert torch.equal(before, torch.random.get_rng_state())  # the global generator is untouched


@pytest.mark.parametrize("method", ["ddpm", "ddim"])
def test_samplers_equal_diffusers_own_steps(moons_model, method):
    from diffusers import DDIMScheduler, DDPMScheduler

    model = moons_model[0]
    T_ = model.timesteps
    ours = toy_diffusion.sample(model, 64, seed=5, method=method)
    common = {"num_train_timesteps": T_, "beta_schedule": toy_diffusion.ToyConfig.schedule, "clip_sample": False}
    scheduler = DDPMScheduler(**common, variance_type="fixed_small") if method == "ddpm" else DDIMScheduler(**common, set_alpha_to_one=True)
    scheduler.set_timesteps(T_)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(64, 2, generator=g)
    with torch.no_grad():
        for t in scheduler.timesteps:
            eps = model.net(x, torch.full((64,), int(t)), T_)
            x = scheduler.step(eps, t, x, generator=g).prev_sample if method == "ddpm" else scheduler.step(eps, t, x, eta=0.0).prev_sample
    assert torch.allclose(ours, x, atol=1e-4)


def test_drawn_points_come_from_the_strokes():
    import numpy as np

    sketch = np.zeros((100, 200, 4), dtype=np.uint8)
    sketch[45:55, 20:180, 3] = 255  # a horizontal bar, transparent elsewhere
    pts = toy_diffusion.points_from_sketch(sketch, 500, 0)
    assert pts.shape == (500, 2) and float(pts[:, 1].abs().max()) < 0.1 and float(pts[:, 0].min()) < -0.7 < 0.7 < float(pts[:, 0].max())


def test_char_tokenizer_round_trips_every_character():
    tok = toy_gpt.char_tokenizer("To be, or not\tto be:\n  that")
    text = "not to be,\n\tthat"
    ids = tok(text)["input_ids"]
    assert len(ids) == len(text) and tok.decode(ids) == text


@pytest.mark.slow  # the defaults: about 15 s on 2 cores
def test_tiny_gpt_beats_a_unigram_model_within_the_default_steps_and_is_reproducible():
    cfg = toy_gpt.GPTTrainConfig(max_seconds=toy_gpt.MAX_SECONDS)  # the defaults, with the longest time cap
    *_, (trained, p) = toy_gpt.train_gpt(TEXT, cfg)
    assert p.step == cfg.steps and p.heldout_bpc[-1] < trained.unigram_bpc, (p.heldout_bpc, trained.unigram_bpc)
    assert p.heldout_bpc[-1] < p.heldout_bpc[0] and 100_000 < trained.parameters < 1_000_000
    short = toy_gpt.GPTTrainConfig(steps=6, eval_every=3)
    first = [q.losses for _, q in toy_gpt.train_gpt(TEXT, short)][-1]
    again = [q.losses for _, q in toy_gpt.train_gpt(TEXT, short)][-1]
    assert first == again


def _sample_without_cache(model, tok, prompt, n, seed, temperature=0.8):
    """The plain loop: the whole window through the model for every character."""
    g = torch.Generator().manual_seed(seed)
    out = tok(prompt, verbose=False)["input_ids"]
    for _ in range(n):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([out[-model.config.n_positions:]])).logits[0, -1] / temperature
        out.append(int(torch.multinomial(logits.softmax(-1), 1, generator=g)))
    return tok.decode(out[len(tok(prompt, verbose=False)["input_ids"]):])


def test_cached_sampling_equals_the_plain_loop_inside_the_window_and_runs_past_it():
    *_, (trained, _) = toy_gpt.train_gpt(TEXT, toy_gpt.GPTTrainConfig(steps=30, block_size=16, eval_every=30))
    block = trained.model.config.n_positions
    for prompt in ("R", "ROMEO. "):
        n = block - len(prompt)  # every character still sees the whole context
        assert toy_gpt.generate(trained.model, trained.tokenizer, prompt, n, seed=5) == _sample_without_cache(
            trained.model, trained.tokenizer, prompt, n, 5
        )
    long = toy_gpt.generate(trained.model, trained.tokenizer, "R", 5 * block, seed=5)  # the cache restarts from half a window
    assert len(long) == 5 * block and set(long) <= set(TEXT)


def test_short_text_and_bad_settings_say_what_to_change():
    from playground.errors import InputError

    with pytest.raises(InputError, match="at least 2,000 characters"):
        list(toy_gpt.train_gpt("too short", toy_gpt.GPTTrainConfig()))
    with pytest.raises(InputError, match="dataset must be one of"):
        toy_diffusion.make_dataset("squares", 10, 0)
    with pytest.raises(Exception, match="steps must be between"):  # the endpoint's message (a gr.Error)
        training_tab.train_toy_api("moons", 10**9, 0)


@pytest.fixture(scope="module")
def loader() -> ModelLoader:
    return ModelLoader(Settings(offline=True, device="cpu"))


def test_the_tab_streams_training_and_keeps_the_model_in_the_session(loader):
    outs = list(training_tab.on_train_toy(loader, training_tab.ToyRequest("rings", None, 600, 0.01, "squaredcos_cap_v2", 50, 0)))
    assert len(outs) >= 6 and all("<svg" in o[1] and "samples at step" in o[2] for o in outs)  # the curve and samples stream
    handle = outs[-1][3]
    assert "Done" in outs[-1][0] and loader.memory_used() > 0
    slider = outs[-1][4]  # the explorer's t fits the model just trained (T = 50), not the 0-999 it used to offer
    assert slider["maximum"] == 49 and "T = 50" in slider["label"] and all(o[4] == {"__type__": "update"} for o in outs[:-1])
    forward, field, paths = training_tab.on_explore_toy(handle, 10, 0)
    assert "x_t at t = 10" in forward and "marker-end" in field and "DDIM (deterministic)" in paths
    gpt = list(training_tab.on_train_gpt(loader, training_tab.GPTTrainRequest(TEXT, 12, 0, 60)))
    assert len(gpt) >= 6 and "held-out" in gpt[-1][1] and len(gpt[-1][2]) == len(gpt) and gpt[-1][3] is not None


def test_a_run_ended_by_stop_keeps_its_model_and_says_where_it_stopped(loader):
    """Stop discarded the run: the charts stayed but the model was gone and the status said nothing (learner walk, item
    12). Now the model trained so far is the session's from the first update on, and Stop says at which step it ended."""
    toy = training_tab.on_train_toy(loader, training_tab.ToyRequest("moons", None, 3000, seed=0))
    first, second = next(toy), next(toy)  # two updates, then the learner presses Stop (Gradio closes the stream)
    toy.close()
    handle = second[3]
    said = training_tab.on_toy_stopped(handle)
    assert handle is first[3] is not None and said.startswith("Stopped at step ") and "of 3,000" in said and "kept" in said
    forward, field, paths = training_tab.on_explore_toy(handle, 10, 0)  # the model as it was is there to explore
    assert "x_t at t = 10" in forward
    gpt = training_tab.on_train_gpt(loader, training_tab.GPTTrainRequest(TEXT, 300, 0, 60))
    update = next(gpt)
    gpt.close()
    assert "Stopped after" in training_tab.on_gpt_stopped(update[3]) and training_tab.on_toy_stopped(None).startswith("Stopped before")


def test_the_trained_gpt_is_the_sessions_own_model_in_the_gpt_and_inside_tabs(loader):
    import gradio as gr

    from playground.ui import gpt_tab, inside_tab
    from playground.ui.common import SESSION_GPT

    *_, last = training_tab.on_train_gpt(loader, training_tab.GPTTrainRequest(TEXT, 6, 0, 60))
    handle = last[3]
    outs = list(
        gpt_tab.on_generate(
            loader, gpt_tab.GenerateRequest(SESSION_GPT, "ROMEO.\n", "greedy", 5, 1.0, 0, 1.0, 1.0, 0, 2), handle, progress=None
        )
    )
    assert "your tiny GPT" in outs[-1][3] and len(outs) == 5
    trained = resolve(handle)
    ids = trained.tokenizer("ROMEO.\n")["input_ids"]
    with torch.no_grad():  # greedy: the session model's own argmax continues the prompt
        first = int(trained.model(torch.tensor([ids])).logits[0, -1].argmax())
    assert outs[-1][1].steps[0].token_id == first
    notice, *_, scale = inside_tab.on_run(
        loader, inside_tab.InsideRequest(SESSION_GPT, "ROMEO. But soft", "", 0, 0, None, ""), handle, progress=None
    )
    assert "your tiny GPT" in notice and "your tiny GPT" in scale["model"].iloc[0]
    with pytest.raises(gr.Error, match="Train a tiny GPT in the Training tab first"):  # another session has none
        next(
            gpt_tab.on_generate(
                loader, gpt_tab.GenerateRequest(SESSION_GPT, "ROMEO.\n", "greedy", 5, 1.0, 0, 1.0, 1.0, 0, 2), None, progress=None
            )
        )


def test_one_training_at_a_time_on_the_machine():
    from playground.ui import build_app

    demo = build_app(Settings(offline=True, device="cpu"))
    trainers = [d for d in demo.fns.values() if getattr(d.fn, "__name__", "") in ("on_train_toy", "on_train_gpt", "train_toy", "train_gpt")]
    assert len(trainers) == 4
    assert all(d.concurrency_id == "training" and d.concurrency_limit == 1 for d in trainers)


def test_the_gpt_trainer_stops_at_its_time_cap():
    *_, (trained, p) = toy_gpt.train_gpt(TEXT, toy_gpt.GPTTrainConfig(steps=5000, max_seconds=2))
    assert p.done and p.stopped_early and p.step < 5000 and p.heldout_bpc  # ended by the cap, with a last evaluation


def test_training_endpoints_over_http(live_app):
    from gradio_client import Client

    client = Client(live_app, verbose=False)
    toy = client.predict("moons", 300, 0, api_name="/train_toy")
    assert len(toy["data"]) == len(toy["samples"]) == toy_diffusion.ToyConfig.n_points and len(toy["loss"]) == 300
    flow = client.predict("moons", 100, 0, api_name="/train_flow")
    assert len(flow["samples"]) == len(flow["data"]) and len(flow["loss"]) == 100 and "8" in flow["samples_by_steps"]
    gpt = client.predict(TEXT[:20_000], 20, 0, api_name="/train_gpt")
    assert len(gpt["loss"]) == 20 and gpt["heldout_bpc"] and gpt["samples"] and gpt["parameters"] > 100_000


@pytest.mark.browser
def test_browser_trains_both_with_defaults_and_sees_them_stream(_page):
    import time

    expect = pytest.importorskip("playwright.sync_api").expect
    from tests.conftest import ARTIFACTS

    page = _page
    page.get_by_role("tab", name="Training").click()
    for button, status, plot in (
        ("#trn-toy-train", "#trn-toy-status", "#trn-toy-samples"),
        ("#trn-gpt-train", "#trn-gpt-status", "#trn-gpt-chart"),
    ):
        page.locator(button).click()
        seen, deadline = set(), time.time() + 240
        while time.time() < deadline:  # the step counter and the plots update while it trains
            text = page.locator(status).inner_text()
            if text.startswith("Step "):
                seen.add(text.split(" of")[0])
            if "Done" in text or "time cap" in text:
                break
            time.sleep(0.2)
        # Either end is a finished run: the speed of the defaults is measured by benchmarks/training_stream.py,
        # and a busy CI machine may reach the time cap first.
        expect(page.locator(status)).to_contain_text(re.compile("Done|Stopped at the time cap"), timeout=10_000)
        assert len(seen) >= 3, f"updates seen while training: {sorted(seen)}"
        expect(page.locator(f"{plot} svg").first).to_be_visible()
    last_step = page.locator("#trn-gpt-status").inner_text().split(" of")[0].removeprefix("Step ").strip()
    expect(page.locator("#trn-gpt-samples")).to_contain_text(last_step)  # a sample from the last step
    page.locator("#trn-explore").click()
    expect(page.locator("#trn-paths")).to_contain_text("DDIM (deterministic)", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "training-tab.png"), full_page=True)
    assert page.outside_requests == []


@pytest.mark.browser
def test_browser_trains_ddpm_and_flow_matching_alike_and_compares_their_steps(_page):
    """Issue 33, flow matching: both trainings on the moons, the paths from the same noise, the steps curve; screenshot."""
    expect = pytest.importorskip("playwright.sync_api").expect
    from tests.conftest import ARTIFACTS

    page = _page
    page.get_by_role("tab", name="Training").click()
    page.locator("#trn-flow-train").click()
    expect(page.locator("#trn-flow-status")).to_contain_text("Trained both", timeout=240_000)
    expect(page.locator("#trn-flow-paths")).to_contain_text("flow, 50 Euler steps")
    expect(page.locator("#trn-flow-curve svg").first).to_be_visible()
    expect(page.locator("#trn-flow-table")).to_contain_text("flow matching (Euler)")
    page.locator("#trn-flow-paths").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "training-flow-matching.png"), full_page=True)
    assert page.outside_requests == []
