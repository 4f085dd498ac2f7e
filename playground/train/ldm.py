"""Train the embedded latent-diffusion pair on Fashion-MNIST: an autoencoder, then a UNet on its latents.

    python -m playground.train.ldm      # ~13 min on 1 CPU thread -> assets/models/ldm-fashion

1. `AutoencoderKL` compresses a 1x32x32 image (1,024 values) to a 4x8x8 latent (256 values,
   4 times fewer) and decodes it back.
2. A class-conditional `UNet2DModel` learns DDPM denoising on the scaled latents z = s * E(x),
   with label dropout for classifier-free guidance, as in `playground.train.ddpm`.
Sampling denoises an 8x8 latent, then decodes it once: that is why latent diffusion is cheap.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from playground.train import common
from playground.train.data import FASHION_CLASSES, fashion_tensor
from playground.train.ddpm import DDPMTrainConfig, build_unet, save_pipeline, train_diffusion


@dataclass
class LDMTrainConfig:
    ae_channels: tuple[int, ...] = (8, 16, 32)  # autoencoder widths; 3 levels -> 4x downsampling
    latent_channels: int = 4  # channels of the 8x8 latent
    ae_steps: int = 800  # autoencoder optimizer steps
    ae_batch_size: int = 32  # images per autoencoder step
    ae_lr: float = 2e-3  # autoencoder peak learning rate
    kl_weight: float = 1e-6  # weight of the KL term (small: we want a sharp, nearly deterministic code)
    unet_channels: tuple[int, ...] = (32, 64)  # latent UNet widths (8x8, 4x4)
    unet_steps: int = 2000  # latent UNet optimizer steps
    unet_batch_size: int = 64  # latents per UNet step
    seed: int = 31415  # data order, noise and initialization
    threads: int = 1  # torch CPU threads (one: the other core trained another model)


def build_autoencoder(cfg: LDMTrainConfig):
    from diffusers import AutoencoderKL

    n = len(cfg.ae_channels)
    return AutoencoderKL(
        in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=cfg.ae_channels, layers_per_block=1, latent_channels=cfg.latent_channels, norm_num_groups=8,
        sample_size=32,
    )


def train_autoencoder(vae, data: torch.Tensor, cfg: LDMTrainConfig, gen: torch.Generator, clock: common.Clock):
    """MSE + KL on random batches, cosine learning rate; reads cfg.ae_steps, ae_lr, ae_batch_size and kl_weight
    (the shapes model's config has the same fields and trains its autoencoder here too)."""
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.ae_lr, weight_decay=0.0)
    vae.train()
    for step in range(cfg.ae_steps):
        for group in opt.param_groups:
            group["lr"] = common.cosine_lr(step, cfg.ae_steps, cfg.ae_lr, 100, floor=0.05)
        x = data[torch.randint(0, len(data), (cfg.ae_batch_size,), generator=gen)]
        posterior = vae.encode(x).latent_dist
        z = posterior.sample(generator=gen)
        recon = vae.decode(z).sample
        rec_loss = torch.nn.functional.mse_loss(recon, x)
        loss = rec_loss + cfg.kl_weight * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == cfg.ae_steps - 1:
            print(f"ae step {step:5d}  mse {rec_loss.item():.4f}  {clock.minutes():.1f} min", flush=True)
    return vae.eval()


@torch.no_grad()
def encode_all(vae, data: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """Latent means (the posterior's mode) for every image: [N, C, 8, 8]."""
    return torch.cat([vae.encode(data[i: i + batch]).latent_dist.mode() for i in range(0, len(data), batch)])


@torch.no_grad()
def reconstruction_mse(vae, data: torch.Tensor, batch: int = 500) -> float:
    """Mean squared error of decode(encode(x)) on images in [-1, 1]."""
    total = 0.0
    for i in range(0, len(data), batch):
        x = data[i: i + batch]
        total += torch.nn.functional.mse_loss(vae.decode(vae.encode(x).latent_dist.mode()).sample, x, reduction="sum").item()
    return total / data.numel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ae-steps", type=int, default=LDMTrainConfig.ae_steps)
    parser.add_argument("--unet-steps", type=int, default=LDMTrainConfig.unet_steps)
    parser.add_argument("--threads", type=int, default=LDMTrainConfig.threads)
    parser.add_argument("--out", type=Path, default=common.MODELS_DIR / "ldm-fashion")
    args = parser.parse_args(argv)
    cfg = LDMTrainConfig(ae_steps=args.ae_steps, unet_steps=args.unet_steps, threads=args.threads)
    gen = common.setup(cfg.seed, cfg.threads)
    clock = common.Clock()
    data, labels = fashion_tensor("train")
    test, _ = fashion_tensor("test")

    vae = train_autoencoder(build_autoencoder(cfg), data, cfg, gen, clock)
    mse = reconstruction_mse(vae, test[:2000])
    latents = encode_all(vae, data)
    scale = 1.0 / latents.std().item()  # the latent scaling factor s, so that s*z has unit variance
    vae.register_to_config(scaling_factor=scale)
    print(f"autoencoder test MSE {mse:.4f}; latents {tuple(latents.shape[1:])}, scaling factor {scale:.4f}")

    dcfg = DDPMTrainConfig(block_out_channels=cfg.unet_channels, layers_per_block=2, batch_size=cfg.unet_batch_size,
                           steps=cfg.unet_steps, seed=cfg.seed, threads=cfg.threads,
                           clip_sample=False)  # latents are not confined to [-1, 1] like pixels
    unet = build_unet(dcfg, sample_size=latents.shape[-1], channels=cfg.latent_channels)
    ema, scheduler = train_diffusion(unet, latents * scale, labels, dcfg, gen, clock)
    minutes = clock.minutes()
    save_pipeline(args.out, {"unet": ema, "vae": vae, "scheduler": scheduler}, dict(enumerate(FASHION_CLASSES)))
    n_unet = sum(p.numel() for p in ema.parameters())
    n_vae = sum(p.numel() for p in vae.parameters())
    common.save_metrics(
        args.out,
        {
            "reconstruction_mse": round(mse, 5),
            "scaling_factor": scale,
            "train_minutes": round(minutes, 1),
            "train_cpu_minutes": round(clock.cpu_minutes(), 1),
            "machine": common.machine(),
            "parameters": {"unet": n_unet, "vae": n_vae},
            "config": asdict(cfg),
        },
    )
    print(f"saved to {args.out} after {minutes:.1f} min; measure with python -m playground.train.evaluate --only ldm")


if __name__ == "__main__":
    main()
