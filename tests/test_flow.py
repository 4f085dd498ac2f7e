"""Flow matching on 2-D points (issue 33): the loss and the sampler written out, diffusers' Euler step, and the figures."""

from __future__ import annotations

import pytest
import torch

from playground.core.training import toy_diffusion, toy_flow
from playground.errors import InputError


@pytest.fixture(scope="module")
def trained():
    """Both models on the moons, trained alike with the defaults (the page's run)."""
    from playground.ui.training_tab import compare_flow

    return compare_flow("moons", toy_diffusion.ToyConfig.steps, 0)


def test_the_loss_is_the_rectified_flow_loss_written_out():
    model = toy_flow.new_model(toy_flow.FlowConfig(hidden=16))
    g = torch.Generator().manual_seed(0)
    x0, eps, sigma = torch.randn(8, 2, generator=g), torch.randn(8, 2, generator=g), torch.rand(8, generator=g)
    ours = toy_flow.flow_loss(model, x0, eps, sigma)
    written = 0.0
    for i in range(8):  # one point at a time: x_σ on the straight line, the target its velocity ε − x_0
        x_sigma = (1 - sigma[i]) * x0[i] + sigma[i] * eps[i]
        v = model.net(x_sigma[None], sigma[i:i + 1] * 1000, 1000)[0]
        written = written + ((v - (eps[i] - x0[i])) ** 2).mean() / 8
    torch.testing.assert_close(ours, written)


def test_the_sampler_is_diffusers_flow_match_euler_scheduler():
    """n Euler steps from σ = 1 to 0 equal FlowMatchEulerDiscreteScheduler's steps on the same σ grid (its timesteps = σ x 1000,
    what the network reads)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    model = toy_flow.new_model(toy_flow.FlowConfig(hidden=16))
    start = torch.randn(5, 2, generator=torch.Generator().manual_seed(1))
    ours = toy_flow.sample(model, 5, 0, n_steps=7, start=start)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000)
    scheduler.set_timesteps(sigmas=toy_flow.sigmas(7)[:-1].tolist())
    x = start.clone()
    with torch.no_grad():
        for t in scheduler.timesteps:
            x = scheduler.step(model.net(x, t.expand(5), 1000), t, x).prev_sample
    torch.testing.assert_close(ours, x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(scheduler.sigmas, torch.cat([toy_flow.sigmas(7)[:-1], torch.zeros(1)]))


def test_ddim_with_fewer_steps_skips_timesteps_and_with_all_is_the_full_sampler():
    model = toy_diffusion.new_model(toy_diffusion.ToyConfig(hidden=16, timesteps=20))
    start = torch.randn(4, 2, generator=torch.Generator().manual_seed(2))
    full = toy_diffusion.sample(model, 4, 0, "ddim", start=start)
    torch.testing.assert_close(toy_diffusion.sample(model, 4, 0, "ddim", start=start, n_steps=20), full)
    _, path = toy_diffusion.sample(model, 4, 0, "ddim", start=start, n_steps=5, keep=4)
    assert path.shape == (6, 4, 2)
    with pytest.raises(InputError, match="Only DDIM"):
        toy_diffusion.sample(model, 4, 0, "ddpm", n_steps=5)


@pytest.mark.slow
def test_flow_samples_come_within_twice_the_data_floor_and_beat_ddim_at_few_steps(trained):
    """At the default 50 Euler steps the flow's samples are within 2x of fresh data's own distance to held-out data; at 4
    steps the flow is already closer than the DDPM-trained model with 4 DDIM steps."""
    c = trained.curve
    at = dict(zip(c.counts, c.flow))
    assert toy_flow.quality(trained.flow_samples, toy_diffusion.make_dataset("moons", 1000, 1000)) <= 2 * c.data
    assert at[4] < dict(zip(c.counts, c.ddim))[4]
    assert c.flow[0] > c.flow[-1]  # one step is worse than a hundred


def test_quality_punishes_collapse():
    data = toy_diffusion.make_dataset("gaussians", 900, 0)
    collapsed = torch.zeros(900, 2)  # every sample on the centre Gaussian
    assert toy_flow.quality(collapsed, data) > 5 * toy_flow.quality(toy_diffusion.make_dataset("gaussians", 900, 1), data)


def test_the_api_returns_the_train_toy_keys_and_the_steps():
    from playground.ui import training_tab

    out = training_tab.train_flow_api("moons", 50, 0)
    assert {"data", "samples", "loss"} <= set(out) and len(out["samples"]) == len(out["data"]) == 1000
    assert list(out["samples_by_steps"]) == [str(n) for n in toy_flow.STEP_COUNTS]
    assert set(out["quality_by_steps"]) == {"flow", "ddim"} and out["data_quality"] > 0


@pytest.mark.parametrize("args, fragment", [(("moon", 10, 0), "dataset"), (("moons", 0, 0), "steps"), (("moons", 10, -1), "seed")])
def test_bad_requests_say_what_to_change(args, fragment):
    from playground.ui.training_tab import compare_flow

    with pytest.raises(InputError, match=fragment):
        compare_flow(*args)
