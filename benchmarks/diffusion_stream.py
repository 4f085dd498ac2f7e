"""The diffusion explorer's streamed run against the plain loop, and the latent preview against one UNet step.

    python benchmarks/diffusion_stream.py [--repeats 15]

1. Streaming with previews: the Diffusion tab's whole run (`on_denoise`: every step's snapshot for
   rewinding, the status line every step, x_t / x̂_0 / ε̂ pictures as often as a browser can show them) against a plain
   loop with the same model,
   scheduler (DDIM), 20 steps, guidance 3 and seed: `scale_model_input`, the UNet on the guided
   batch, `scheduler.step`, nothing kept. Median of `--repeats`, alternating, one process.
2. The latent preview (the linear map fitted to the model's own autoencoder) against one guided
   UNet step, on the embedded latent model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install needed

import torch  # noqa: E402

from benchmarks.report import median_time  # noqa: E402
from playground.config import Settings  # noqa: E402
from playground.core.diffusion import pictures  # noqa: E402
from playground.core.diffusion.run import latent_shape  # noqa: E402
from playground.core.diffusion.schedule import make_scheduler  # noqa: E402
from playground.models import ModelLoader  # noqa: E402
from playground.ui import diffusion_tab  # noqa: E402

STEPS, GUIDANCE, SEED = 20, 3.0, 0


@torch.no_grad()
def plain_loop(lm) -> torch.Tensor:
    unet = lm.model
    scheduler = make_scheduler("DDIM", lm.components["scheduler"].config)
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(latent_shape(lm), generator=g) * scheduler.init_noise_sigma
    scheduler.set_timesteps(STEPS)
    labels = torch.tensor([9, lm.pipeline.null_class])
    for t in scheduler.timesteps:
        model_in = scheduler.scale_model_input(x, t)
        eps_c, eps_u = unet(torch.cat([model_in, model_in]), t, class_labels=labels).sample.chunk(2)
        x = scheduler.step(eps_u + GUIDANCE * (eps_c - eps_u), t, x).prev_sample
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    loader = ModelLoader(Settings(offline=True, device="cpu"))
    parts = []
    for label, preset, family in (
        ("pixel ddpm-fashion", "google/ddpm-cifar10-32", "diffusion"),
        ("latent ldm-fashion", "assets/models/ldm-fashion", "latent-diffusion"),
    ):
        lm = loader.load(preset, family)

        def streamed(preset: str = preset) -> None:
            request = diffusion_tab.DenoiseRequest(
                model=preset,
                prompt="Ankle boot",
                scheduler="DDIM",
                steps=STEPS,
                guidance=GUIDANCE,
                seed=SEED,  # noqa: B023 (called within this iteration)
                rederive=False,
            )
            for _ in diffusion_tab.on_denoise(loader, request, progress=None):
                pass

        streamed(), plain_loop(lm)  # warm up (the latent preview map is fitted once per model here)
        s, p = [], []
        for _ in range(args.repeats):
            s.append(median_time(streamed, 1))
            p.append(median_time(lambda: plain_loop(lm), 1))  # noqa: B023 (called within this iteration)
        s, p = statistics.median(s), statistics.median(p)
        print(f"{label}: streamed run {s:.3f} s, plain loop {p:.3f} s, ratio {s / p:.2f}x")
        parts.append(f"{label}: streamed {s:.2f} s vs plain loop {p:.2f} s (**{s / p:.2f}x**)")
    lm = loader.load("assets/models/ldm-fashion", "latent-diffusion")
    vae, unet = lm.components["vae"], lm.model
    z = torch.randn(latent_shape(lm), generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([9, lm.pipeline.null_class])
    with torch.no_grad():
        step = median_time(lambda: unet(torch.cat([z, z]), 500, class_labels=labels), 20)
        preview = median_time(lambda: pictures.latent_preview(z, vae), 20)
        decode = median_time(lambda: pictures.decode(z, vae), 20)
    print(
        f"latent preview {preview * 1000:.2f} ms, one guided UNet step {step * 1000:.2f} ms ({preview / step:.3f}x), full decode "
        f"{decode * 1000:.2f} ms"
    )
    parts.append(f"latent preview {preview * 1000:.2f} ms vs one guided UNet step {step * 1000:.1f} ms (**{preview / step:.3f}x**; "
                 f"a full decode: {decode / step:.2f}x)")
    from benchmarks.report import record

    record("diffusion_stream", f"diffusion explorer: the streamed run with previews and rewind snapshots against the plain loop "
           f"(DDIM, {STEPS} steps, guidance {GUIDANCE:g}, median of {args.repeats}); the latent preview against a UNet step",
           "python benchmarks/diffusion_stream.py", "; ".join(parts))


if __name__ == "__main__":
    main()
