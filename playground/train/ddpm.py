"""Train the embedded pixel-space diffusion model: a class-conditional DDPM on Fashion-MNIST 32x32.

    python -m playground.train.ddpm     # ~27 min on 2 CPU threads -> assets/models/ddpm-fashion

The UNet (diffusers `UNet2DModel`) gets the class as `class_labels`; with probability
`label_dropout` the label is replaced by the extra "no class" index, so the same network also
learns the unconditional model and classifier-free guidance works at sampling time.
"""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from playground.train import common
from playground.train.data import FASHION_CLASSES, fashion_tensor

NULL_CLASS = len(FASHION_CLASSES)  # index 10: "no class", for classifier-free guidance


@dataclass
class DDPMTrainConfig:
    block_out_channels: tuple[int, ...] = (16, 32, 64)  # UNet widths per resolution (32, 16, 8)
    layers_per_block: int = 1  # ResNet blocks per resolution
    batch_size: int = 32  # images per step
    steps: int = 5000  # optimizer steps
    lr: float = 1e-3  # peak learning rate (AdamW), cosine-decayed
    warmup: int = 200  # linear warm-up steps
    ema_decay: float = 0.999  # exponential moving average of weights, used for sampling
    label_dropout: float = 0.15  # probability a label is replaced by NULL_CLASS
    snr_gamma: float = 5.0  # Min-SNR loss weighting min(SNR_t, γ) / SNR_t (Hang et al. 2023): less weight on nearly clean steps
    num_train_timesteps: int = 1000  # diffusion steps T
    beta_schedule: str = "squaredcos_cap_v2"  # noise schedule (cosine)
    clip_sample: bool = True  # sampling clips x̂_0 to [-1, 1] (training never does): right for pixels, wrong for latents
    seed: int = 42  # data order, noise and initialization
    threads: int = 2  # torch CPU threads


def build_unet(cfg: DDPMTrainConfig, *, sample_size: int = 32, channels: int = 1):
    from diffusers import UNet2DModel

    n = len(cfg.block_out_channels)
    return UNet2DModel(
        sample_size=sample_size, in_channels=channels, out_channels=channels,
        layers_per_block=cfg.layers_per_block, block_out_channels=cfg.block_out_channels,
        down_block_types=("DownBlock2D",) * (n - 1) + ("AttnDownBlock2D",),
        up_block_types=("AttnUpBlock2D",) + ("UpBlock2D",) * (n - 1),
        num_class_embeds=NULL_CLASS + 1, norm_num_groups=8, attention_head_dim=32,
    )


def train_diffusion(unet, data: torch.Tensor, labels: torch.Tensor, cfg, gen: torch.Generator, clock: common.Clock):
    """The DDPM objective: predict the noise added at a random timestep. Returns the EMA UNet."""
    from diffusers import DDPMScheduler

    noise_scheduler = DDPMScheduler(
        num_train_timesteps=cfg.num_train_timesteps, beta_schedule=cfg.beta_schedule, clip_sample=cfg.clip_sample
    )
    alpha_bar = noise_scheduler.alphas_cumprod
    snr = alpha_bar / (1 - alpha_bar)  # SNR_t = ᾱ_t / (1 - ᾱ_t)
    weight = snr.clamp(max=cfg.snr_gamma) / snr  # per-timestep loss weight for ε-prediction
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=0.0)
    unet.train()
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = common.cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup, floor=0.05)
        idx = torch.randint(0, len(data), (cfg.batch_size,), generator=gen)
        x0, y = data[idx], labels[idx].clone()
        y[torch.rand(len(y), generator=gen) < cfg.label_dropout] = NULL_CLASS
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, cfg.num_train_timesteps, (len(x0),), generator=gen)
        xt = noise_scheduler.add_noise(x0, noise, t)  # x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε
        err = (unet(xt, t, class_labels=y).sample - noise).pow(2).mean(dim=(1, 2, 3))  # ||ε_θ(x_t, t, y) - ε||² per image
        loss = (weight[t] * err).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        common.ema_update([(ema, unet)], step, cfg.ema_decay)
        if step % 200 == 0 or step == cfg.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}  {clock.minutes():.1f} min", flush=True)
    return ema, noise_scheduler


def save_pipeline(out: Path, components: dict[str, object], id2label: dict[int, str]) -> None:
    """A diffusers-style folder: one subfolder per component and a model_index.json naming them."""
    import diffusers

    out.mkdir(parents=True, exist_ok=True)
    index: dict[str, object] = {"_class_name": "DDPMPipeline", "_diffusers_version": diffusers.__version__}
    for name, component in components.items():
        if isinstance(component, torch.nn.Module):
            common.save_half(component, out / name)
        else:
            component.save_pretrained(out / name)
        index[name] = ["diffusers", type(component).__name__]
    index["id2label"] = {str(k): v for k, v in id2label.items()}
    index["null_class"] = NULL_CLASS
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=DDPMTrainConfig.steps)
    parser.add_argument("--threads", type=int, default=DDPMTrainConfig.threads)
    parser.add_argument("--out", type=Path, default=common.MODELS_DIR / "ddpm-fashion")
    args = parser.parse_args(argv)
    cfg = DDPMTrainConfig(steps=args.steps, threads=args.threads)
    gen = common.setup(cfg.seed, cfg.threads)
    clock = common.Clock()
    data, labels = fashion_tensor("train")
    unet = build_unet(cfg)
    n_params = sum(p.numel() for p in unet.parameters())
    print(f"UNet parameters: {n_params:,}")
    ema, scheduler = train_diffusion(unet, data, labels, cfg, gen, clock)
    minutes = clock.minutes()
    save_pipeline(args.out, {"unet": ema, "scheduler": scheduler}, dict(enumerate(FASHION_CLASSES)))
    common.save_metrics(
        args.out, {"train_minutes": round(minutes, 1), "machine": common.machine(), "parameters": n_params, "config": asdict(cfg)}
    )
    print(f"saved to {args.out} after {minutes:.1f} min; measure with python -m playground.train.evaluate --only ddpm")


if __name__ == "__main__":
    main()
