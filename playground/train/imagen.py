"""Train the embedded Imagen-shaped cascade "imagen-shapes": pixel diffusion on a frozen, text-only T5 encoder.

    python -m playground.train.imagen --stage base   # -> assets/models/imagen-shapes     (an IFPipeline folder)
    python -m playground.train.imagen --stage sr     # -> assets/models/imagen-shapes-sr  (an IFSuperResolutionPipeline folder)

Both stages are resumable (a checkpoint every 500 steps beside the folder) and independent: run them at once with
`--threads 1` each. The world and pictures are sd-shapes' (`shapes_data`, the same seed), so the two designs differ
only in how they are built. Imagen's three ideas (Saharia et al. 2022), as DeepFloyd IF ships them:

1. **A frozen text encoder trained only on text.** The embedded t5-tasks' encoder (3 layers, width 128), which learnt
   word reversal, sorting and number words and never saw a picture or the word "triangle" (its 251-piece tokenizer
   spells most of the grammar letter by letter). It is not trained here: its states for every caption are computed
   once, with `IFPipeline.encode_prompt` (77 tokens, as IF). A linear probe on those frozen states already reads the
   left object's colour and shape in 87% and 93% of held-out two-object captions, so the words are in there.
2. **Diffusion in pixels, as a cascade.** The base draws 16x16 pictures; the super-resolution stage draws 32x32
   ones from the base's picture, upsampled (bilinear) and noised to a level it is told (noise-conditioning
   augmentation: trained on levels 0 to `aug_max`, IF's default level 250 at sampling), and the text again.
3. **Dynamic thresholding**: the schedulers are saved with IF's settings (thresholding on, the 95th percentile,
   s at most 1.5), so the pipelines and the app clip x̂_0 that way unless told otherwise.

The UNets predict v (as sd-shapes; on the cosine schedule IF uses for pixels) in IF's 6 output channels: the pipelines
split guidance over 3 + 3 (IF's last 3 are its learned variance). Here the variance is the scheduler's fixed one, so
the last 3 channels start at zero and get no gradient: they stay zero, and the saved scheduler says "fixed_small".
"""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from playground.train import common, shapes_data
from playground.train.shapes import pictures_tensor

T5_FOLDER = common.MODELS_DIR / "t5-tasks"
BASE_SIZE = 16  # the base stage's pictures (pixels per side)
MAX_TEXT_TOKENS = 77  # IFPipeline.encode_prompt's window (the prompt is padded to it; the UNet reads every position)


@dataclass
class ImagenTrainConfig:
    stage: str = "base"  # "base" (16x16 from text) or "sr" (32x32 from the 16x16 picture and the text)
    n_images: int = 40_000  # training scenes, as sd-shapes (the same seed: the same pictures)
    two_share: float = 0.5  # share of the scenes with two objects and a relation
    channels: tuple[int, ...] = (32, 64)  # UNet widths per level, finest first (base: 16x16, 8x8; sr: see main)
    attention_levels: int = 1  # down levels with cross-attention, coarsest first; the middle and coarsest up level have it too
    steps: int = 8_000  # optimizer steps (main: 8,000 base, 3,000 sr)
    batch_size: int = 32  # pictures per step
    lr: float = 1e-3  # peak learning rate (AdamW), cosine-decayed
    warmup: int = 300  # linear warm-up steps
    ema_decay: float = 0.999  # EMA of the UNet's weights, used for sampling
    prompt_dropout: float = 0.1  # probability a caption is replaced by "" (the unconditional model; Imagen: 10%)
    snr_gamma: float = 5.0  # the v loss's weight min(1, γ / (SNR_t + 1)), as sd-shapes
    aug_max: int = 500  # sr: noise-augmentation levels of the low-resolution picture are drawn from [0, aug_max)
    num_train_timesteps: int = 1000  # diffusion steps T
    seed: int = 2718  # sd-shapes' seed: the same pictures
    threads: int = 2  # torch CPU threads
    checkpoint_every: int = 500  # steps between resumable checkpoints


def noise_scheduler(cfg: ImagenTrainConfig):
    """DDPM on the cosine schedule (IF's for pixels), predicting v, with IF's dynamic thresholding."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction",
                         variance_type="fixed_small", clip_sample=True, thresholding=True, dynamic_thresholding_ratio=0.95,
                         sample_max_value=1.5)


def image_noising_scheduler():
    """The super-resolution stage's noise augmentation of its low-resolution input (IF-II's: DDPM, cosine)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")


def build_unet(cfg: ImagenTrainConfig, text_width: int):
    from diffusers import UNet2DConditionModel

    n, a = len(cfg.channels), cfg.attention_levels
    sr = cfg.stage == "sr"
    unet = UNet2DConditionModel(
        sample_size=2 * BASE_SIZE if sr else BASE_SIZE,
        in_channels=6 if sr else 3,  # sr: x_t and the upsampled low-resolution picture, concatenated
        out_channels=6,  # IF's: v (3) and its variance (3, unused here: zero)
        down_block_types=("DownBlock2D",) * (n - a) + ("CrossAttnDownBlock2D",) * a,
        up_block_types=("CrossAttnUpBlock2D",) * a + ("UpBlock2D",) * (n - a),
        block_out_channels=cfg.channels,
        layers_per_block=1,
        cross_attention_dim=text_width,
        attention_head_dim=8,
        norm_num_groups=16,
        class_embed_type="timestep" if sr else None,  # sr: the augmentation level, embedded like a timestep (IF-II)
    )
    with torch.no_grad():
        unet.conv_out.weight[3:].zero_()
        unet.conv_out.bias[3:].zero_()
    return unet


def text_parts():
    """t5-tasks' tokenizer and encoder, the encoder rounded to float16 as it is shipped (the states it gives are then
    the ones the folders' pipelines give)."""
    from transformers import AutoTokenizer, T5EncoderModel

    tokenizer = AutoTokenizer.from_pretrained(T5_FOLDER)
    encoder = common.round_to_half(T5EncoderModel.from_pretrained(T5_FOLDER, torch_dtype=torch.float32)).eval()
    return tokenizer, encoder


@torch.no_grad()
def encode_captions(tokenizer, encoder, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(the states [u, 77, d] of the u distinct captions, each caption's row in them, the empty prompt's states [77, d]),
    by IFPipeline's own encode_prompt."""
    from diffusers import IFPipeline

    pipe = IFPipeline(tokenizer=tokenizer, text_encoder=encoder, unet=None, scheduler=None, safety_checker=None,
                      feature_extractor=None, watermarker=None, requires_safety_checker=False)
    distinct = sorted(set(captions))
    row = {c: i for i, c in enumerate(distinct)}
    states = torch.cat([pipe.encode_prompt(distinct[i:i + 256], do_classifier_free_guidance=False, device="cpu")[0]
                        for i in range(0, len(distinct), 256)])
    empty = pipe.encode_prompt("", do_classifier_free_guidance=False, device="cpu")[0][0]
    return states, torch.tensor([row[c] for c in captions]), empty


def low_resolution(x: torch.Tensor) -> torch.Tensor:
    """The base stage's size: 2x2 average pooling (a 32x32 picture -> 16x16)."""
    return torch.nn.functional.avg_pool2d(x, 2)


def upsample(low: torch.Tensor, size: int) -> torch.Tensor:
    """As IFSuperResolutionPipeline: bilinear, align_corners=True."""
    return torch.nn.functional.interpolate(low, (size, size), mode="bilinear", align_corners=True)


def train(unet, data: torch.Tensor, states: torch.Tensor, rows: torch.Tensor, empty: torch.Tensor, cfg: ImagenTrainConfig,
          gen: torch.Generator, clock: common.Clock, ckpt: Path):
    """The v loss on pixels (base: 16x16 pictures; sr: 32x32 given the noised, upsampled 16x16 one); returns the EMA UNet."""
    sched, noising = noise_scheduler(cfg), image_noising_scheduler()
    alpha_bar = sched.alphas_cumprod
    weight = (cfg.snr_gamma / (alpha_bar / (1 - alpha_bar) + 1)).clamp(max=1.0)
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    params = list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    first = common.load_checkpoint(ckpt, cfg, gen, unet=unet, ema=ema, opt=opt)
    unet.train()
    for step in range(first, cfg.steps):
        for group in opt.param_groups:
            group["lr"] = common.cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup, floor=0.05)
        idx = torch.randint(0, len(data), (cfg.batch_size,), generator=gen)
        drop = torch.rand(cfg.batch_size, generator=gen) < cfg.prompt_dropout
        c = torch.where(drop[:, None, None], empty, states[rows[idx]])
        x0 = data[idx]
        kwargs = {}
        if cfg.stage == "sr":
            levels = torch.randint(0, cfg.aug_max, (cfg.batch_size,), generator=gen)
            up = upsample(low_resolution(x0), x0.shape[-1])
            up = noising.add_noise(up, torch.randn(up.shape, generator=gen), levels)
            kwargs["class_labels"] = levels
        else:
            x0 = low_resolution(x0)
        eps = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, cfg.num_train_timesteps, (cfg.batch_size,), generator=gen)
        xt = sched.add_noise(x0, eps, t)
        x_in = torch.cat([xt, up], 1) if cfg.stage == "sr" else xt
        v = unet(x_in, t, encoder_hidden_states=c, **kwargs).sample[:, :3]  # the variance channels get no gradient
        err = (v - sched.get_velocity(x0, eps, t)).pow(2).mean(dim=(1, 2, 3))
        loss = (weight[t] * err).mean()
        common.optimizer_step(opt, loss, params)
        common.ema_update([(ema, unet)], step, cfg.ema_decay)
        if step % 200 == 0 or step == cfg.steps - 1:
            print(f"{cfg.stage} step {step:5d}  loss {loss.item():.4f}  {clock.minutes():.1f} min", flush=True)
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            common.save_checkpoint(ckpt, step + 1, cfg, gen, unet=unet, ema=ema, opt=opt)
    return ema


def save(out: Path, cfg: ImagenTrainConfig, *, tokenizer, encoder, unet) -> None:
    """An IFPipeline (base) or IFSuperResolutionPipeline (sr) folder: float16 weights, float32 configs, no safety
    checker, feature extractor or watermarker."""
    import diffusers

    out.mkdir(parents=True, exist_ok=True)
    common.save_half(encoder, out / "text_encoder")
    common.save_half(unet, out / "unet")
    tokenizer.save_pretrained(out / "tokenizer")
    noise_scheduler(cfg).save_pretrained(out / "scheduler")
    index = {"_class_name": "IFSuperResolutionPipeline" if cfg.stage == "sr" else "IFPipeline",
             "_diffusers_version": diffusers.__version__, "feature_extractor": [None, None], "requires_safety_checker": False,
             "safety_checker": [None, None], "scheduler": ["diffusers", "DDPMScheduler"],
             "text_encoder": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "T5Tokenizer"],
             "unet": ["diffusers", "UNet2DConditionModel"], "watermarker": [None, None]}
    if cfg.stage == "sr":
        image_noising_scheduler().save_pretrained(out / "image_noising_scheduler")
        index["image_noising_scheduler"] = ["diffusers", "DDPMScheduler"]
    (out / "model_index.json").write_text(json.dumps(dict(sorted(index.items())), indent=2) + "\n")
    for part in ("unet", "text_encoder"):  # no local path in the shipped configs
        config = out / part / "config.json"
        config.write_text(json.dumps({k: v for k, v in json.loads(config.read_text()).items() if k != "_name_or_path"},
                                     indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", choices=("base", "sr"), default="base")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default: 8,000 base, 3,000 sr)")
    parser.add_argument("--n-images", type=int, default=ImagenTrainConfig.n_images)
    parser.add_argument("--threads", type=int, default=ImagenTrainConfig.threads)
    parser.add_argument("--out", type=Path, default=None, help="default: assets/models/imagen-shapes (base), imagen-shapes-sr (sr)")
    args = parser.parse_args(argv)
    sr = args.stage == "sr"
    cfg = ImagenTrainConfig(stage=args.stage, steps=args.steps or (3_000 if sr else 8_000), n_images=args.n_images,
                            threads=args.threads, channels=(16, 32, 64) if sr else (32, 64))
    out = args.out or common.MODELS_DIR / ("imagen-shapes-sr" if sr else "imagen-shapes")
    gen = common.setup(cfg.seed, cfg.threads)
    clock = common.Clock()
    images, captions, _ = shapes_data.twin_dataset(cfg.n_images, cfg.seed, two_share=cfg.two_share)
    data = pictures_tensor(images)
    tokenizer, encoder = text_parts()
    states, rows, empty = encode_captions(tokenizer, encoder, captions)
    print(f"{len(captions):,} pictures, {len(states):,} distinct captions encoded by the frozen T5 in {clock.minutes():.1f} min",
          flush=True)
    unet = build_unet(cfg, encoder.config.d_model)
    print(f"parameters: unet {sum(p.numel() for p in unet.parameters()):,} (trained), text encoder "
          f"{sum(p.numel() for p in encoder.parameters()):,} (frozen)", flush=True)
    ckpt = out.with_name(out.name + "-checkpoint.pt")
    unet = train(unet, data, states, rows, empty, cfg, gen, clock, ckpt)
    minutes = clock.minutes()
    save(out, cfg, tokenizer=tokenizer, encoder=encoder, unet=unet)
    before = common.load_metrics(out)
    common.save_metrics(out, {**before, "train_minutes": round(minutes, 1), "train_cpu_minutes": round(clock.cpu_minutes(), 1),
                              "machine": common.machine(),
                              "parameters": {"unet": sum(p.numel() for p in unet.parameters()),
                                             "text_encoder_frozen": sum(p.numel() for p in encoder.parameters())},
                              "pictures": len(captions), "config": asdict(cfg), "text_encoder_from": "t5-tasks (frozen)"})
    ckpt.unlink(missing_ok=True)
    print(f"saved to {out} after {minutes:.1f} min; measure with python -m playground.train.evaluate --only imagen", flush=True)


if __name__ == "__main__":
    main()
