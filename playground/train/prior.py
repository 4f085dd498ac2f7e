"""Train DALL-E 2's prior in the shapes world: a caption's CLIP text embedding -> a CLIP image embedding (clip-shapes').

    python -m playground.train.prior                # ~10 min on 2 CPU cores -> assets/models/prior-shapes
    python -m playground.train.prior --threads 1    # beside other work

DALL-E 2 (Ramesh et al. 2022) draws a picture in two steps: a **prior** turns the caption into an image embedding, a
**decoder** draws a picture from that embedding. The paper tried an autoregressive and a diffusion prior and found the
diffusion prior as good or better for less compute; it also reports that conditioning the decoder on the text embedding
directly, skipping the prior, works worse. Two priors are trained here on the same pairs and measured the same way:

- a **diffusion prior** (shipped): diffusers' `PriorTransformer`, DALL-E 2's design: a causal transformer reads the
  caption's token states, its text embedding, the timestep and the noisy image embedding, and predicts the clean
  image embedding (x_0, not the noise), trained with an MSE loss on embeddings standardized by their mean and std, the
  caption dropped 10% of the time so that classifier-free guidance works; sampled by `UnCLIPScheduler`;
- a **regression MLP** (the baseline): text embedding -> image embedding in one step, trained on the cosine.

Both are measured on fresh pictures (`evaluate --only prior`): the cosine between the predicted image embedding and the
embedding of a picture drawn from the caption, beside the text embedding's own cosine with that picture (what a
decoder would read without a prior); and how often the predicted embedding's nearest picture, among a batch, is the
caption's own.

The folder is a `KandinskyPriorPipeline` (prior, scheduler, and clip-shapes' text and image towers with their tokenizer
and image processor), so `KandinskyPriorPipeline.from_pretrained(folder)("a red circle").image_embeds` runs unchanged.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from playground.core.diffusion.prior import encode_captions, sample
from playground.train import common, shapes_data

CLIP = common.MODELS_DIR / "clip-shapes"


@dataclass
class PriorTrainConfig:
    layers: int = 4  # PriorTransformer blocks
    heads: int = 4  # attention heads
    head_dim: int = 24  # 4 x 24 = 96: the text tower's width, so its token states enter without a projection
    pairs: int = 40_000  # training pictures and captions, embedded once by the frozen CLIP
    batch_size: int = 256  # pairs per step
    steps: int = 2000  # optimizer steps
    lr: float = 5e-4  # peak learning rate (AdamW), cosine-decayed
    warmup: int = 100  # linear warm-up steps
    drop_text: float = 0.1  # share of captions replaced by "" in training (classifier-free guidance)
    mlp_hidden: int = 256  # the regression baseline's hidden width
    mlp_steps: int = 2000  # the regression baseline's steps
    inference_steps: int = 25  # the diffusion prior's sampling steps (measured and in the app)
    guidance: float = 4.0  # the prior's classifier-free guidance scale (KandinskyPriorPipeline's default)
    seed: int = 0  # every random choice derives from it
    threads: int = 2  # torch CPU threads


def towers(folder: Path = CLIP):
    """clip-shapes' text and image towers as the pipeline's classes (CLIPTextModelWithProjection, CLIPVisionModelWithProjection),
    their weights copied from the CLIPModel, with its tokenizer and image processor."""
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel, CLIPTextModelWithProjection, CLIPVisionModelWithProjection

    clip = CLIPModel.from_pretrained(folder).eval()
    text = CLIPTextModelWithProjection(clip.config.text_config)
    text.text_model.load_state_dict(clip.text_model.state_dict())
    text.text_projection.load_state_dict(clip.text_projection.state_dict())
    image = CLIPVisionModelWithProjection(clip.config.vision_config)
    image.vision_model.load_state_dict(clip.vision_model.state_dict())
    image.visual_projection.load_state_dict(clip.visual_projection.state_dict())
    processor = CLIPImageProcessor.from_pretrained(folder)
    return text.eval(), image.eval(), AutoTokenizer.from_pretrained(folder), processor


def build_prior(cfg: PriorTrainConfig, text_config, embed_dim: int):
    from diffusers import PriorTransformer

    return PriorTransformer(num_attention_heads=cfg.heads, attention_head_dim=cfg.head_dim, num_layers=cfg.layers,
                            embedding_dim=embed_dim, num_embeddings=text_config.max_position_embeddings, additional_embeddings=4,
                            encoder_hid_proj_type=None, norm_in_type="layer")


def scheduler():
    from diffusers import UnCLIPScheduler

    return UnCLIPScheduler(num_train_timesteps=1000, variance_type="fixed_small_log", clip_sample=True, clip_sample_range=10.0,
                           prediction_type="sample")


@torch.no_grad()
def encode_pictures(image, pictures: np.ndarray, batch: int = 1024) -> torch.Tensor:
    from playground.train.clip import pixels

    return torch.cat([image(pixel_values=pixels(pictures[s: s + batch])).image_embeds for s in range(0, len(pictures), batch)])


class RegressionPrior(torch.nn.Module):
    """The baseline: text embedding -> image embedding in one step (two layers)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, dim))

    def forward(self, text_embeds: torch.Tensor) -> torch.Tensor:
        return self.net(text_embeds)


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)


@torch.no_grad()
def measure(prior, mlp, text, image, tok, cfg: PriorTrainConfig, n: int = 500, seed: int = 777) -> dict:
    """On n fresh pictures and their captions (and n with a held-out colour-shape pair): mean cos(prediction, the
    picture's embedding) for the diffusion prior, the regression MLP and the text embedding itself; and how often the
    prediction's nearest picture among the n is its own (top-1)."""
    out = {}
    for split, heldout in (("seen_pairs", False), ("heldout_pairs", True)):
        pictures, captions = shapes_data.dataset(n, seed + heldout, heldout=heldout)
        img = encode_pictures(image, pictures)
        e, s, m = encode_captions(text, tok, captions)
        null = encode_captions(text, tok, [""])
        gen = torch.Generator().manual_seed(seed)
        diffusion = sample(prior, scheduler(), e, s, m, null, cfg.inference_steps, cfg.guidance, gen)
        regression = mlp(e)
        unit = torch.nn.functional.normalize(img, dim=-1)

        def top1(pred: torch.Tensor, unit: torch.Tensor = unit) -> float:
            nearest = (torch.nn.functional.normalize(pred, dim=-1) @ unit.T).argmax(-1)
            return round(float(nearest.eq(torch.arange(n)).float().mean()), 4)

        out[split] = {
            "cosine": {"diffusion_prior": round(float(_cos(diffusion, img).mean()), 4),
                       "regression_mlp": round(float(_cos(regression, img).mean()), 4),
                       "text_embedding": round(float(_cos(e, img).mean()), 4)},
            "top1": {"diffusion_prior": top1(diffusion), "regression_mlp": top1(regression), "text_embedding": top1(e)},
        }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=PriorTrainConfig.steps)
    parser.add_argument("--threads", type=int, default=PriorTrainConfig.threads)
    parser.add_argument("--pairs", type=int, default=PriorTrainConfig.pairs)
    parser.add_argument("--out", type=Path, default=common.MODELS_DIR / "prior-shapes")
    args = parser.parse_args(argv)
    cfg = PriorTrainConfig(steps=args.steps, threads=args.threads, pairs=args.pairs)
    gen = common.setup(cfg.seed, cfg.threads)
    clock = common.Clock()
    text, image, tok, processor = towers()
    pictures, captions = shapes_data.dataset(cfg.pairs, cfg.seed)
    chunks = [encode_captions(text, tok, captions[i: i + 2048]) for i in range(0, len(captions), 2048)]
    e, s, m = (torch.cat(part) for part in zip(*chunks))
    null = encode_captions(text, tok, [""])
    img = encode_pictures(image, pictures)
    print(f"{cfg.pairs:,} pairs embedded ({clock.minutes():.1f} min)", flush=True)
    prior = build_prior(cfg, text.config, img.shape[1])
    with torch.no_grad():
        prior.clip_mean.copy_(img.mean(0, keepdim=True))
        prior.clip_std.copy_(img.std(0, keepdim=True))
    prior.clip_mean.requires_grad_(False)
    prior.clip_std.requires_grad_(False)
    sched = scheduler()
    params = [p for p in prior.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    prior.train()
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = common.cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup)
        idx = torch.randint(0, cfg.pairs, (cfg.batch_size,), generator=gen)
        x0 = (img[idx] - prior.clip_mean) / prior.clip_std  # standardized, as post_process_latents undoes
        drop = torch.rand(cfg.batch_size, generator=gen) < cfg.drop_text
        be = torch.where(drop[:, None], null[0], e[idx])
        bs = torch.where(drop[:, None, None], null[1], s[idx])
        bm = torch.where(drop[:, None], null[2], m[idx])
        t = torch.randint(0, 1000, (cfg.batch_size,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        xt = sched.add_noise(x0, noise, t)
        pred = prior(xt, timestep=t, proj_embedding=be, encoder_hidden_states=bs, attention_mask=bm).predicted_image_embedding
        loss = torch.nn.functional.mse_loss(pred, x0)  # DALL-E 2 predicts x_0
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 200 == 0 or step == cfg.steps - 1:
            print(f"prior step {step:5d}  loss {loss.item():.4f}  {clock.minutes():.1f} min", flush=True)
    prior.eval()
    prior_minutes = clock.minutes()
    mlp = RegressionPrior(img.shape[1], cfg.mlp_hidden)
    opt = torch.optim.AdamW(mlp.parameters(), lr=1e-3, weight_decay=0.01)
    for _ in range(cfg.mlp_steps):
        idx = torch.randint(0, cfg.pairs, (cfg.batch_size,), generator=gen)
        loss = (1 - _cos(mlp(e[idx]), img[idx])).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    mlp.eval()
    print(f"regression MLP: loss {loss.item():.4f}", flush=True)
    common.round_to_half(prior)
    figures = measure(prior, mlp, text, image, tok, cfg)
    print(figures, flush=True)
    save(prior, text, image, tok, processor, args.out)
    save_regression(mlp, args.out)
    metrics = {**figures, "train_minutes": round(prior_minutes, 1), "machine": common.machine(), "config": asdict(cfg),
               "parameters": sum(p.numel() for p in prior.parameters()), "mlp_parameters": sum(p.numel() for p in mlp.parameters())}
    common.save_metrics(args.out, metrics)
    write_card(args.out, metrics)


def save(prior, text, image, tok, processor, out: Path) -> None:
    """A KandinskyPriorPipeline folder; weights in float16, configs saying float32 (as every embedded folder)."""
    from diffusers import KandinskyPriorPipeline

    out.mkdir(parents=True, exist_ok=True)
    pipe = KandinskyPriorPipeline(prior=prior, image_encoder=image, text_encoder=text, tokenizer=tok, scheduler=scheduler(),
                                  image_processor=processor)
    pipe.save_pretrained(out)
    for name, module in (("prior", prior), ("text_encoder", text), ("image_encoder", image)):
        common.save_half(module, out / name)


def save_regression(mlp: RegressionPrior, out: Path) -> None:
    """The baseline beside the pipeline (a folder the pipeline does not read), so `evaluate` can measure it again."""
    import json

    from safetensors.torch import save_file

    folder = out / "regression"
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in mlp.state_dict().items()}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"dim": mlp.net[0].in_features, "hidden": mlp.net[0].out_features}) + "\n")


def load_regression(out: Path) -> RegressionPrior:
    import json

    from safetensors.torch import load_file

    config = json.loads((out / "regression" / "config.json").read_text())
    mlp = RegressionPrior(config["dim"], config["hidden"])
    mlp.load_state_dict({k: v.float() for k, v in load_file(out / "regression" / "model.safetensors").items()})
    return mlp.eval()


def write_card(out: Path, metrics: dict) -> None:
    cfg = PriorTrainConfig(**metrics["config"])

    def row(split: str) -> str:
        c, t = metrics[split]["cosine"], metrics[split]["top1"]
        return (f"diffusion prior cos {c['diffusion_prior']:.3f} (top-1 {t['diffusion_prior']:.1%}), regression MLP "
                f"{c['regression_mlp']:.3f} ({t['regression_mlp']:.1%}), the text embedding itself {c['text_embedding']:.3f} "
                f"({t['text_embedding']:.1%})")

    architecture = (f"diffusers' `PriorTransformer` ({cfg.layers} layers, {cfg.heads} heads of {cfg.head_dim}), reading clip-shapes' "
                    "caption token states and text embedding, the timestep and the noisy image embedding; predicts the clean "
                    "image embedding; `UnCLIPScheduler`")
    seen = metrics["seen_pairs"]["cosine"]
    finding = ("Both priors move the text embedding towards the pictures. " + (
        "The regression scores the higher mean cosine: it predicts the average picture of a caption, which is what a cosine "
        "rewards when the caption leaves size and place open; the diffusion prior draws one plausible picture's embedding "
        "(a size, a place), which is what a decoder needs to draw a definite picture, and what makes variety possible."
        if seen["regression_mlp"] > seen["diffusion_prior"] else "The diffusion prior scores the higher mean cosine."))
    data = (f"{cfg.pairs:,} pictures and captions drawn by `shapes_data` (the held-out colour-shape pairs never among them), "
            "embedded once by clip-shapes")
    training = (f"{cfg.steps:,} AdamW steps of {cfg.batch_size}, MSE on x_0, the caption dropped {cfg.drop_text:.0%} of the time; "
                f"{metrics['train_minutes']:.1f} min on {cfg.threads} CPU thread(s)")
    common.write_card(
        out,
        metadata={"license": "mit", "library_name": "diffusers", "tags": ["teaching", "dalle-2", "unclip", "prior", "shapes"]},
        body=f"""
# prior-shapes: DALL-E 2's prior in the shapes world

{common.TEACHING_NOTE.format(real="OpenAI's DALL-E 2 prior")}

| | |
|---|---|
| architecture | {architecture} |
| parameters | {metrics["parameters"]:,} (the regression baseline: {metrics["mlp_parameters"]:,}) |
| data | {data} |
| training | {training} |
| **seen pairs** | {row("seen_pairs")} |
| **held-out pairs** | {row("heldout_pairs")} |

Cosine: between the predicted image embedding and the embedding of a picture drawn from the caption ({cfg.inference_steps}
sampling steps, guidance {cfg.guidance:g}); top-1: how often that picture is the prediction's nearest among 500. The text
embedding's own figures are what a decoder would read with no prior. Shipped: the diffusion prior (the paper found it as
good as the autoregressive one for less compute); the regression is measured beside it, not shipped. {finding}

Run: `KandinskyPriorPipeline.from_pretrained(folder)("a red circle").image_embeds`. Train: `python -m playground.train.prior`.
Measure: `python -m playground.train.evaluate --only prior`.
""",
    )


if __name__ == "__main__":
    main()
