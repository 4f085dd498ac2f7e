"""A `/unclip` request against the plain two-stage loop it runs (target: at most 1.10x, as the Diffusion tab's stream).

    python benchmarks/unclip_request.py [--repeats 11]

The request (`unclip_section.unclip_api`): checks, the prior's loop, the decoder's run through the project's one
diffusion loop (`run.run`, a Record per step), the decode, the nearest captions (embedded once per model) and the
PNG. The plain loop: the same caption, seed and settings written out as `StableUnCLIPPipeline` runs them (the prior's
25 guided steps, the embedding's noise, 50 guided DDIM steps of the decoder, the decode), nothing kept. Also the page's
stream (`on_unclip`, the x̂_0 preview as often as a browser shows it, without sd-shapes beside it). Medians, alternating,
one process, on the embedded unclip-shapes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install needed

import torch  # noqa: E402

from benchmarks.report import interleaved_medians  # noqa: E402
from playground.config import Settings  # noqa: E402
from playground.models import ModelLoader  # noqa: E402
from playground.ui import unclip_section  # noqa: E402

PROMPT, SEED, STEPS, GUIDANCE = "a red circle left of a blue square", 0, 50, 4.0


@torch.no_grad()
def plain_loop(c: dict) -> torch.Tensor:
    from diffusers.models.embeddings import get_timestep_embedding

    g = torch.Generator().manual_seed(SEED)
    tok, tower, prior, sched = c["prior_tokenizer"], c["prior_text_encoder"], c["prior"], c["prior_scheduler"]
    enc = tok([PROMPT, ""], padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
    out = tower(enc.input_ids)
    mask = enc.attention_mask.bool()
    sched.set_timesteps(25)
    z = torch.randn(1, prior.config.embedding_dim, generator=g) * sched.init_noise_sigma
    for t in sched.timesteps:
        cond, uncond = prior(torch.cat([z, z]), timestep=t, proj_embedding=out.text_embeds, encoder_hidden_states=out.last_hidden_state,
                             attention_mask=mask).predicted_image_embedding.chunk(2)
        z = sched.step(uncond + 4.0 * (cond - uncond), t, z, generator=g).prev_sample
    z = prior.post_process_latents(z)
    norm, noising = c["image_normalizer"], c["image_noising_scheduler"]
    level = torch.zeros(1, dtype=torch.long)
    e = norm.unscale(noising.add_noise(norm.scale(z), timesteps=level, noise=torch.randn(z.shape, generator=g)))
    labels = torch.cat([e, get_timestep_embedding(level, e.shape[-1], flip_sin_to_cos=True, downscale_freq_shift=0)], 1)
    ids = c["tokenizer"]([PROMPT, ""], padding="max_length", max_length=c["tokenizer"].model_max_length, truncation=True,
                         return_tensors="pt").input_ids
    states = c["text_encoder"](ids).last_hidden_state
    unet, ddim = c["unet"], c["scheduler"]
    ddim.set_timesteps(STEPS)
    x = torch.randn(1, unet.config.in_channels, unet.config.sample_size, unet.config.sample_size, generator=g) * ddim.init_noise_sigma
    both = torch.cat([labels, torch.zeros_like(labels)])
    for t in ddim.timesteps:
        cond, uncond = unet(torch.cat([x, x]), t, encoder_hidden_states=states, class_labels=both).sample.chunk(2)
        x = ddim.step(uncond + GUIDANCE * (cond - uncond), t, x).prev_sample
    return c["vae"].decode(x / c["vae"].config.scaling_factor).sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    loader = ModelLoader(Settings(offline=True, device="cpu"))
    lm = unclip_section.load_unclip(loader)

    def request() -> None:
        unclip_section.unclip_api(loader, PROMPT, SEED, STEPS, GUIDANCE)

    def page() -> None:
        for _ in unclip_section.on_unclip(loader, unclip_section.UnclipPageRequest(PROMPT, SEED, STEPS, GUIDANCE, compare=False),
                                          progress=None):
            pass

    api, plain = interleaved_medians(request, lambda: plain_loop(lm.components), args.repeats)
    stream, plain2 = interleaved_medians(page, lambda: plain_loop(lm.components), args.repeats)
    print(f"/unclip {api:.3f} s, plain loop {plain:.3f} s: {api / plain:.2f}x; the page's stream {stream:.3f} s vs {plain2:.3f} s: "
          f"{stream / plain2:.2f}x")
    from benchmarks.report import record

    record("unclip_request", f"/unclip (DALL-E 2's prior, then the decoder: 25 + {STEPS} guided steps on the embedded unclip-shapes) "
           f"against the same two loops written out plainly (median of {args.repeats}, alternating)",
           "python benchmarks/unclip_request.py",
           f"/unclip {api:.2f} s vs plain {plain:.2f} s (**{api / plain:.2f}x**); the page's stream with x̂_0 previews {stream:.2f} s "
           f"(**{stream / plain2:.2f}x**)")


if __name__ == "__main__":
    main()
