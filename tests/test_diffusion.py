"""The one run (`core.diffusion.run`, through its unrolled loop) against diffusers' own pipelines, and the guidance
arithmetic, on tiny UNets."""

import pytest
import torch
from diffusers import DDIMPipeline, DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel

from playground.core.diffusion.pictures import image_grid
from playground.core.diffusion.run import DiffusionRequest, Parts, final_sample, run
from playground.core.diffusion.schedule import SCHEDULES, forward_noise, noise_schedule
from playground.errors import InputError


def tiny_unet(num_class_embeds: int | None = None) -> UNet2DModel:
    torch.manual_seed(0)
    return UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(4, 8),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=4, num_class_embeds=num_class_embeds).eval()


@pytest.mark.parametrize("pipeline_cls, scheduler_cls, kwargs", [
    # deterministic after x_T; DDIMScheduler clips x̂_0 by default, so test both ways of using it
    (DDIMPipeline, DDIMScheduler, {"eta": 0.0, "use_clipped_model_output": True}),
    (DDIMPipeline, DDIMScheduler, {"eta": 0.0, "use_clipped_model_output": False}),
    (DDPMPipeline, DDPMScheduler, {}),  # draws fresh noise every step from the same generator
])
@torch.no_grad()
def test_denoise_equals_the_diffusers_pipeline(pipeline_cls, scheduler_cls, kwargs):
    unet = tiny_unet()
    scheduler = scheduler_cls(num_train_timesteps=100)
    expected = pipeline_cls(unet=unet, scheduler=scheduler)(
        batch_size=3, generator=torch.Generator().manual_seed(7), num_inference_steps=10, output_type="np", **kwargs
    ).images  # [3, 8, 8, 1] in [0, 1]
    parts = Parts.of({"unet": unet, "scheduler": scheduler_cls.from_config(scheduler.config)})
    ours = final_sample(parts, DiffusionRequest(scheduler=scheduler_cls.__name__.removesuffix("Scheduler"), batch=3, steps=10, seed=7,
                                                rederive=kwargs.get("use_clipped_model_output", True)))
    ours = (ours / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert ours.shape == expected.shape
    assert abs(ours - expected).max() < 1e-5


@torch.no_grad()
def test_clipping_changes_the_ddim_step_only_through_a_consistent_eps():
    # a random UNet's x̂_0 lies outside [-1, 1], so clipping bites; with use_clipped_model_output the
    # step is exactly DDIM's update from the clipped x̂_0 and the ε re-derived from it
    unet, scheduler = tiny_unet(), DDIMScheduler(num_train_timesteps=100, clip_sample=True)
    steps = list(run(Parts.of({"unet": unet, "scheduler": scheduler}), DiffusionRequest(batch=2, steps=2, seed=3)))
    scheduler.set_timesteps(2)
    x_t = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    t, t_prev = scheduler.timesteps
    x0 = steps[0].x0_hat
    assert x0.abs().max() <= 1 and not torch.equal(x0, x0.clamp(-0.999, 0.999))  # clipped, and at the bound
    a_t, a_prev = scheduler.alphas_cumprod[t], scheduler.alphas_cumprod[t_prev]
    eps = (x_t - a_t.sqrt() * x0) / (1 - a_t).sqrt()  # ε that fits x_t and the clipped x̂_0
    assert torch.allclose(steps[0].x, a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps, atol=1e-5)


@torch.no_grad()
def test_guidance_is_uncond_plus_w_times_the_difference():
    unet = tiny_unet(num_class_embeds=3)
    scheduler = DDIMScheduler(num_train_timesteps=100, clip_sample=False)
    parts = Parts.of({"unet": unet, "scheduler": scheduler}, id2label={0: "zero", 1: "one", 2: "none"}, null_class=2)
    first = next(iter(run(parts, DiffusionRequest(prompt="one", guidance=2.5, steps=5, seed=0))))
    # the same first step by hand: ε = ε(∅) + w (ε(c) − ε(∅)), then one DDIM step
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    reference = DDIMScheduler.from_config(scheduler.config)
    reference.set_timesteps(5)
    t = reference.timesteps[0]
    cond, uncond = unet(x, t, class_labels=torch.tensor([1])).sample, unet(x, t, class_labels=torch.tensor([2])).sample
    expected = reference.step(uncond + 2.5 * (cond - uncond), t, x).prev_sample
    assert first.timestep == int(t)
    assert torch.allclose(first.x, expected, atol=1e-5)
    assert first.x0_hat is not None and first.x0_hat.shape == x.shape


def test_denoise_yields_every_step():
    steps = list(run(Parts.of({"unet": tiny_unet(), "scheduler": DDIMScheduler(num_train_timesteps=100)}),
                     DiffusionRequest(batch=2, steps=4, seed=0)))
    assert [s.index for s in steps] == [0, 1, 2, 3]
    assert [s.timestep for s in steps] == sorted((s.timestep for s in steps), reverse=True)


@pytest.mark.parametrize("num_class_embeds, labels, kwargs, message", [
    (None, None, {"guidance": 3.0}, "unconditional .*use guidance 1"),
    (None, None, {"batch": 0}, "batch must be between 1 and"),
    (3, None, {"prompt": "zero"}, "lists no class names"),
    (3, {0: "zero", 1: "one"}, {"prompt": ""}, "Give a class name"),
    (3, {0: "zero", 1: "one"}, {"prompt": "two"}, "not a class this model knows. It draws only these: zero, one"),
    (3, {0: "zero", 1: "one"}, {"prompt": "zero", "guidance": 3.0}, "needs the 'no class' label"),
    (3, {0: "zero", 1: "one"}, {"prompt": "zero", "steps": 0}, "steps must be between 1 and"),
])
def test_a_run_explains_what_is_missing(num_class_embeds, labels, kwargs, message):
    parts = Parts.of({"unet": tiny_unet(num_class_embeds), "scheduler": DDIMScheduler(num_train_timesteps=100)}, id2label=labels)
    with pytest.raises(ValueError, match=message):
        next(iter(run(parts, DiffusionRequest(**kwargs))))


def test_image_grid_lays_out_rows_and_rejects_a_ragged_grid():
    images = torch.linspace(-1, 1, 6).view(6, 1, 1, 1).expand(6, 1, 4, 4)
    grid = image_grid(images, rows=2, pad=1)
    assert grid.size == (3 * 5 + 1, 2 * 5 + 1)
    assert grid.getpixel((1, 1)) == 0 and grid.getpixel((1 + 2 * 5, 1 + 5)) == 255  # first image black, last white
    with pytest.raises(ValueError, match="do not fill 4 rows"):
        image_grid(images, rows=4)


@pytest.mark.parametrize("name", SCHEDULES)
def test_forward_noise_equals_the_schedulers_add_noise(name):
    schedule = noise_schedule(name)
    kwargs = {"beta_start": 0.00085, "beta_end": 0.012} if name == "scaled_linear" else {}
    reference = DDPMScheduler(num_train_timesteps=1000, beta_schedule=name, **kwargs)
    x0 = torch.linspace(-1, 1, 64).view(1, 1, 8, 8)
    for t in (0, 250, 999):
        x_t, eps = forward_noise(x0, t, schedule, torch.Generator().manual_seed(t))
        expected = reference.add_noise(x0, eps, torch.tensor([t]))
        assert torch.allclose(x_t, expected, atol=1e-6)
    # ᾱ falls from ~1 to ~0, so the SNR falls monotonically: early steps keep the image, late ones are noise
    assert schedule.alphas_cumprod[0] > 0.99 and schedule.alphas_cumprod[-1] < 0.01
    assert torch.all(schedule.snr[1:] < schedule.snr[:-1])


def test_forward_noise_is_repeatable_and_checked():
    schedule = noise_schedule("linear", 100)
    x0 = torch.zeros(1, 1, 4, 4)
    a, _ = forward_noise(x0, 50, schedule, torch.Generator().manual_seed(1))
    b, _ = forward_noise(x0, 50, schedule, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    with pytest.raises(InputError, match="from 0 to 99"):
        forward_noise(x0, 100, schedule, torch.Generator())
    with pytest.raises(InputError, match="Unknown schedule"):
        noise_schedule("sigmoid")
