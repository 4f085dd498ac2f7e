"""Word maps (cross-attention per prompt token) against probabilities recomputed from the UNet's own projections,
on a tiny random pipeline; and recording leaves the shared UNet's outputs, and other threads, untouched."""

from __future__ import annotations

import copy
import threading

import pytest
import torch

from playground.core.diffusion import cross_attention
from playground.core.diffusion.run import DiffusionRequest, Parts, run
from playground.errors import InputError


@pytest.fixture(scope="module")
def comps(tiny_root):
    from playground.config import Settings
    from playground.models import ModelLoader

    loader = ModelLoader(Settings(offline=True, model_roots=(tiny_root,), device="cpu"))
    return loader.load(str(tiny_root / "tiny-sd"), "latent-diffusion").components


def _reference_maps(comps, prompt: str, negative: str, seed: int, steps: int, guidance: float) -> torch.Tensor:
    """The same run on a private copy of the UNet, with forward hooks reading every cross-attention's inputs, and
    P = softmax(q kᵀ · scale) computed here from `to_q` and `to_k`, heads split by hand."""
    unet = copy.deepcopy(comps["unet"])
    side = unet.config.sample_size
    calls = []

    def hook(module, args, kwargs):
        h, c = args[0] if args else kwargs["hidden_states"], kwargs.get("encoder_hidden_states")
        if c is None:
            return
        q, k = module.to_q(h), module.to_k(c)
        b, n, heads = q.shape[0], q.shape[1], module.heads
        q = q.view(b, n, heads, -1).transpose(1, 2)
        k = k.view(b, c.shape[1], heads, -1).transpose(1, 2)
        p = torch.softmax(q @ k.transpose(-1, -2) * module.scale, dim=-1).mean(1)[b // 2 if guidance > 1 else 0:]  # conditional rows
        s = int(n ** 0.5)
        p = p.transpose(1, 2).reshape(1, -1, s, s)
        calls.append(torch.nn.functional.interpolate(p, size=(side, side), mode="bilinear", align_corners=False))

    for module in unet.modules():
        if getattr(module, "is_cross_attention", False):
            module.register_forward_pre_hook(hook, with_kwargs=True)
    private = Parts.of(dict(comps, unet=unet))
    with torch.no_grad():
        for _ in run(
            private, DiffusionRequest(prompt=prompt, negative=negative, seed=seed, steps=steps, guidance=guidance, snapshots=False)
        ):
            pass
    total = torch.stack(calls).sum(0)[0]
    n_tokens = len(cross_attention.prompt_tokens(comps["tokenizer"], prompt))
    maps = total[1:1 + n_tokens]
    return maps / maps.sum(dim=(1, 2), keepdim=True)


def word_maps(comps, prompt: str, step: int | None = None, **request):
    """The word maps of one run of `comps` (a pipeline's parts), through the same request every caller builds."""
    return cross_attention.word_maps(Parts.of(comps), DiffusionRequest(prompt=prompt, **request), step=step)


@pytest.mark.parametrize("guidance, negative", [(1.0, ""), (3.0, ""), (4.0, "blue")])
def test_word_maps_equal_attention_recomputed_from_the_unets_own_projections(comps, guidance, negative):
    ours = word_maps(comps, "a red cat", negative=negative, seed=3, steps=4, guidance=guidance)
    assert ours.tokens == cross_attention.prompt_tokens(comps["tokenizer"], "a red cat") and len(ours.tokens) == len(ours.maps)
    expected = _reference_maps(comps, "a red cat", negative, 3, 4, guidance)
    torch.testing.assert_close(ours.latent_maps, expected, rtol=1e-4, atol=1e-6)
    assert torch.allclose(ours.maps.sum(dim=(1, 2)), torch.ones(len(ours.tokens)), atol=1e-5)
    assert ours.maps.shape[-2:] == ours.image.shape[-2:]


def test_one_chosen_step_differs_from_the_average_and_still_sums_to_one(comps):
    every = word_maps(comps, "a red cat", seed=3, steps=4, guidance=3.0)
    last = word_maps(comps, "a red cat", seed=3, steps=4, guidance=3.0, step=4)
    assert not torch.allclose(every.latent_maps, last.latent_maps)
    assert torch.allclose(last.maps.sum(dim=(1, 2)), torch.ones(len(last.tokens)), atol=1e-5)
    torch.testing.assert_close(every.image, last.image)  # the recording does not change the run


def test_recording_leaves_the_shared_unets_output_unchanged_and_other_threads_unrecorded(comps):
    unet = comps["unet"]
    z, t, c = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor(10), torch.randn(2, 16, 32)
    with torch.no_grad():
        before = unet(z, t, encoder_hidden_states=c).sample
        cross_attention.install(unet)
        after = unet(z, t, encoder_hidden_states=c).sample
        with cross_attention.recording(8, 2) as rec:
            recorded = unet(z, t, encoder_hidden_states=c).sample
    assert torch.equal(before, after) and torch.equal(before, recorded) and rec.layers > 0
    alone = {p: word_maps(comps, p, seed=1, steps=3, guidance=3.0).latent_maps for p in ("a red cat", "a big blue dog")}
    results, errors = {}, []

    def work(prompt: str, k: int) -> None:
        try:
            if k % 2:  # a plain forward pass in another thread, while others record
                with torch.no_grad():
                    results[k] = torch.equal(unet(z, t, encoder_hidden_states=c).sample, before)
            else:
                results[k] = torch.allclose(word_maps(comps, prompt, seed=1, steps=3, guidance=3.0).latent_maps, alone[prompt])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(("a red cat", "a big blue dog")[k % 4 // 2], k)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and all(results.values()) and len(results) == 8
    assert cross_attention.install(unet) == sum(1 for m in unet.modules() if getattr(m, "is_cross_attention", False))  # wrapped once


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(prompt=""), "Give a prompt"), (dict(guidance=0.0), "Guidance 0"), (dict(steps=0), "steps"),
    (dict(step=9), "step"), (dict(scheduler="Heun"), "scheduler"),
])
def test_bad_requests_say_what_to_change(comps, kwargs, fragment):
    args = dict(prompt="a red cat", seed=0, steps=3, guidance=3.0) | kwargs
    with pytest.raises(InputError, match=fragment):
        word_maps(comps, args.pop("prompt"), **args)


def test_a_class_conditional_model_is_told_it_has_no_words(tiny_root):
    unet = torch.nn.Linear(1, 1)
    unet.config = type("C", (), {"cross_attention_dim": None})()
    with pytest.raises(InputError, match="text-to-image model"):
        word_maps({"unet": unet, "vae": unet, "tokenizer": object()}, "a red cat")
