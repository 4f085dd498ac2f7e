"""Train the embedded text-to-image model "shapes": a Stable-Diffusion-shaped latent diffusion model, from scratch.

    python -m playground.train.shapes   # 54 min on 2 CPU threads -> assets/models/sd-shapes
    python -m playground.train.shapes --resume assets/models/sd-shapes --unet-steps 12000   # train it further
    python -m playground.train.shapes --resume assets/models/sd-shapes --unet-steps 2500 --lr 3e-4 \
        --grounding-weight 0.05   # the shipped model's second run: word maps that land

The world is `playground.train.shapes_data` (captions from a small grammar, 32x32 pictures drawn by code). The
parts are Stable Diffusion's, only small, and saved as a `StableDiffusionPipeline` folder:

1. `AutoencoderKL`: a 3x32x32 picture <-> a 4x16x16 latent.
2. `CLIPTokenizer` (a byte-level BPE whose merges make every grammar word one token) and `CLIPTextModel`
   (2 layers, width 64), trained here together with the UNet (Stable Diffusion's is a frozen CLIP).
3. `UNet2DConditionModel`: v_θ(z_t, t, c) (v-prediction, as Stable Diffusion 2; `prediction_type`), whose coarse
   blocks cross-attend to the text encoder's states c; the prompt is dropped (replaced by "") with probability
   `prompt_dropout`, so the same network is also the unconditional model and classifier-free guidance works.

Where a shape goes is decided early, at high noise. There the ε loss hardly weighs the picture at all
(‖ε̂ − ε‖² = SNR_t ‖ẑ_0 − z_0‖², and SNR_t is 0.005 at t = T); the v loss weighs it by SNR_t + 1 ≥ 1 at every
step. Measured on two runs of this script that differ only in that (100 prompts each, at 8,000 steps): places
27% right with ε (chance is 20%), 54% with v; two objects and their relation 29% and 50%; colours and shapes
about the same (99-100%, 92-97%).

Where the cross-attention works, and whether training asks anything of it, decides what the word maps show. With all
three layers at 8x8 (the first run) a colour or shape word's map put 1.25-1.3x the object's share of the picture on
the object, at least 2x in 0-3% of prompts: the attention spread over the picture. A variant with a third level
(widths (32, 64, 64), three of its four cross-attention layers at 4x4) drew nearly as well but read each word almost
evenly (1.0-1.1x). The shipped model's second run (`--grounding-weight 0.05`, 2,500 steps) adds TokenCompose's token
loss (`grounding.py`), which puts each object word's attention on its object's pixels in the training pictures; its
maps then land (the card's figures). Measured beside it, on 40 prompts, the lever the issue named (`--attention-levels
2`: cross-attention grown to 16x16 as well, down and up; `grow` starts the new layers' output at zero, so the grown
UNet first computes what it grew from) with the same loss: 9.1x and 9.0x the object's share (the shipped run: 8.7x
and 8.7x), 2x in 100% of prompts either way, the checker's figures the same (99.5/98.5/100/98.5% against
99.5/98.5/100/98.0%), at the cost `benchmarks/word_map_levels.py` measures; so the shipped model keeps 8x8.

CLIP's text encoder is causal: in "a red circle left of a blue square" the words "red circle" cannot see "left of",
so no state of the first object knows where it goes. An auxiliary loss (weight `role_weight`, its linear head
discarded after training) asks the encoder's last two states, which see the whole caption, to name the left/top
object and the right/bottom one; the UNet's cross-attention can then read each object's place from one state.
"""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from playground.train import alt_text, common, grounding, shapes_data
from playground.train.ldm import encode_all, train_autoencoder  # the same autoencoder training as the Fashion-MNIST latent model

MAX_TOKENS = 16  # the text encoder's window: the longest caption is 9 words + start and end tokens
ROLE_SLOTS = (MAX_TOKENS - 2, MAX_TOKENS - 1)  # the states (always padding) that name the left/top and right/bottom object


@dataclass
class ShapesTrainConfig:
    n_images: int = 40_000  # training scenes, drawn once from the seed (with twins, a two-object scene is two pictures)
    two_share: float = 0.5  # share of the scenes with two objects and a relation
    twins: bool = True  # each two-object picture also drawn as its minimal pair, trained in pairs (see train_unet)
    ae_channels: tuple[int, ...] = (16, 32)  # autoencoder widths; 2 levels -> 2x downsampling (32 -> 16)
    latent_channels: int = 4  # latent channels, as in Stable Diffusion
    ae_steps: int = 1000  # autoencoder optimizer steps
    ae_batch_size: int = 32  # pictures per autoencoder step
    ae_lr: float = 2e-3  # autoencoder peak learning rate
    kl_weight: float = 1e-6  # weight of the KL term (small: a sharp, nearly deterministic code)
    text_width: int = 64  # text encoder width (= the UNet's cross_attention_dim)
    text_layers: int = 2  # text encoder layers
    unet_channels: tuple[int, ...] = (32, 64)  # UNet widths at 16x16 and 8x8
    attention_levels: int = 1  # levels with cross-attention, coarsest first (1: 8x8 only; 2: 16x16 too), down and up; the middle has it too
    unet_steps: int = 18_000  # UNet + text encoder optimizer steps
    batch_size: int = 32  # latents per step
    lr: float = 1e-3  # peak learning rate (AdamW), cosine-decayed
    warmup: int = 300  # linear warm-up steps
    ema_decay: float = 0.999  # exponential moving average of the UNet's and text encoder's weights, used for sampling
    prompt_dropout: float = 0.1  # probability a caption is replaced by "" (the unconditional model)
    role_weight: float = 0.1  # weight of the auxiliary loss naming each object's role at ROLE_SLOTS (0: none)
    grounding_weight: float = 0.0  # weight of TokenCompose's token loss putting object words' attention on their objects (grounding.py; 0: none)
    prediction_type: str = (
        "v_prediction"  # what the UNet predicts: "v_prediction" (v = √ᾱ ε − √(1−ᾱ) z_0, as Stable Diffusion 2) or "epsilon"
    )
    snr_gamma: float = 5.0  # loss weight cap: ε loss min(SNR_t, γ) / SNR_t (Min-SNR, Hang et al. 2023); v loss min(1, γ / (SNR_t + 1))
    num_train_timesteps: int = 1000  # diffusion steps T
    seed: int = 2718  # data, order, noise and initialization
    threads: int = 2  # torch CPU threads
    captions: str = "descriptive"  # "descriptive" (the grammar's, always full) or "alt-text" (alt_text.alt_caption's, at its stated rates)
    checkpoint_every: int = 500  # steps between resumable checkpoints of the UNet stage


def build_tokenizer(words: list[str]):
    """A CLIPTokenizer whose BPE merges turn each of `words` into one token (any other text still encodes, bytewise).

    The merges are found by running BPE itself: while a word is still split, add the merge of its first two
    pieces, and repeat until every word is whole (a later merge can never split an earlier one's result).
    """
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    alphabet = sorted(ByteLevel.alphabet())  # the 256 characters byte-level BPE writes bytes as
    vocab = {c: i for i, c in enumerate(alphabet)}
    for c in alphabet:
        vocab[c + "</w>"] = len(vocab)
    merges: list[tuple[str, str]] = []

    def pieces(word: str) -> list[str]:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        ranks = {m: r for r, m in enumerate(merges)}
        while len(parts) > 1:
            pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, i = min(pairs)
            if rank == 1 << 30:
                break
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        return parts

    changed = True
    while changed:
        changed = False
        for word in words:
            parts = pieces(word)
            if len(parts) > 1:
                merges.append((parts[0], parts[1]))
                vocab.setdefault(parts[0] + parts[1], len(vocab))
                changed = True
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    tok = CLIPTokenizer(vocab=vocab, merges=list(merges), model_max_length=MAX_TOKENS)
    for word in words:
        assert len(tok(word, add_special_tokens=False)["input_ids"]) == 1, word
    return tok


def build_text_encoder(cfg: ShapesTrainConfig, vocab_size: int, tok):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(vocab_size=vocab_size, hidden_size=cfg.text_width, intermediate_size=4 * cfg.text_width,
                            num_hidden_layers=cfg.text_layers, num_attention_heads=4, max_position_embeddings=MAX_TOKENS,
                            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                            projection_dim=cfg.text_width)
    return CLIPTextModel(config)


def build_autoencoder(cfg: ShapesTrainConfig):
    from diffusers import AutoencoderKL

    n = len(cfg.ae_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=cfg.ae_channels, layers_per_block=1, latent_channels=cfg.latent_channels, norm_num_groups=16,
        sample_size=shapes_data.SIZE,
    )


def build_unet(cfg: ShapesTrainConfig, latent_size: int):
    from diffusers import UNet2DConditionModel

    n, a = len(cfg.unet_channels), cfg.attention_levels
    return UNet2DConditionModel(
        sample_size=latent_size,
        in_channels=cfg.latent_channels,
        out_channels=cfg.latent_channels,
        # cross-attention (with self-attention) in the coarsest `a` levels, down and up, and the middle: the attention
        # layers are most of a step's time (at 16x16 a layer costs 4x one at 8x8), and an up block has two of them
        down_block_types=("DownBlock2D",) * (n - a) + ("CrossAttnDownBlock2D",) * a,
        up_block_types=("CrossAttnUpBlock2D",) * a + ("UpBlock2D",) * (n - a),
        block_out_channels=cfg.unet_channels,
        layers_per_block=1,
        cross_attention_dim=cfg.text_width,
        attention_head_dim=8,
        norm_num_groups=16,
    )


def pictures_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [n, H, W, 3] -> float [n, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def batch(latents: torch.Tensor, twin: torch.Tensor | None, cfg: ShapesTrainConfig, gen: torch.Generator):
    """One step's (latent indices, which prompts to drop, ε, t). With `twin`, the second half of the batch is the
    first half's twins (or other random latents where there is none), with the same ε and t."""
    if twin is None:
        idx = torch.randint(0, len(latents), (cfg.batch_size,), generator=gen)
    else:
        half = torch.randint(0, len(latents), (cfg.batch_size // 2,), generator=gen)
        other = torch.randint(0, len(latents), half.shape, generator=gen)
        idx = torch.cat([half, torch.where(twin[half] >= 0, twin[half], other)])
    drop = torch.rand(len(idx), generator=gen) < cfg.prompt_dropout
    noise = torch.randn((len(idx), *latents.shape[1:]), generator=gen)
    t = torch.randint(0, cfg.num_train_timesteps, (len(idx),), generator=gen)
    if twin is not None:  # a pair shares its noise and its step
        noise[len(half):], t[len(half):] = noise[:len(half)], t[:len(half)]
    return idx, drop, noise, t


def role_targets(captions: list[str]) -> torch.Tensor:
    """int64 [n, 4]: `shapes_data.roles` of each caption (left/top colour and shape, right/bottom colour and shape),
    -1 for a one-object caption or one outside the grammar, such as alt text's "a circle and a square" (no role loss)."""
    def roles(caption: str):
        try:
            return shapes_data.roles(shapes_data.parse(caption))
        except ValueError:
            return None

    return torch.tensor([roles(c) or (-1, -1, -1, -1) for c in captions])


def role_loss(head: torch.nn.Linear, c: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of `head` reading, from the states at ROLE_SLOTS, the left/top then the right/bottom object's
    colour and shape (targets [n, 4], rows of -1 skipped). One head for both slots: both name an object the same way."""
    keep = targets[:, 0] >= 0
    if not keep.any():
        return c.new_zeros(())
    n_colours = len(shapes_data.COLOURS)
    loss = c.new_zeros(())
    for k, slot in enumerate(ROLE_SLOTS):
        logits = head(c[keep, slot])
        loss = loss + torch.nn.functional.cross_entropy(logits[:, :n_colours], targets[keep, 2 * k])
        loss = loss + torch.nn.functional.cross_entropy(logits[:, n_colours:], targets[keep, 2 * k + 1])
    return loss / len(ROLE_SLOTS)


def train_unet(unet, text_encoder, ids: torch.Tensor, empty: torch.Tensor, latents: torch.Tensor, cfg: ShapesTrainConfig,
               gen: torch.Generator, clock: common.Clock, checkpoint=None, twin: torch.Tensor | None = None,
               roles: torch.Tensor | None = None, resumable: Path | None = None,
               grounds: tuple[torch.Tensor, torch.Tensor] | None = None):
    """The DDPM objective with a text condition; returns the EMA (UNet, text encoder) and the noise scheduler.

    With `twin` (each latent's minimal-pair index, -1 for none; `shapes_data.twin_dataset`), half of every batch is
    drawn at random and the other half is their twins (or other random latents), noised with the same ε and t: the
    two losses then differ only where the relation word moves the shapes. With `grounds` (`grounding.targets`) and
    `cfg.grounding_weight`, TokenCompose's token loss puts each object word's attention on its object. With `resumable`, the run saves everything it
    needs there every `cfg.checkpoint_every` steps and goes on from that file when it exists.
    """
    from diffusers import DDPMScheduler

    noise_scheduler = DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_schedule="scaled_linear",
                                    beta_start=0.00085, beta_end=0.012, clip_sample=False,  # Stable Diffusion's schedule
                                    prediction_type=cfg.prediction_type)
    alpha_bar = noise_scheduler.alphas_cumprod
    snr = alpha_bar / (1 - alpha_bar)
    # In z_0 terms the ε loss weighs a step by SNR_t (‖ε̂ − ε‖² = SNR_t ‖ẑ_0 − z_0‖²): almost nothing at high noise, where
    # the layout (where each shape goes) is decided. The v loss weighs it by SNR_t + 1 ≥ 1; both are capped at γ.
    if cfg.prediction_type == "v_prediction":
        weight = (cfg.snr_gamma / (snr + 1)).clamp(max=1.0)
    else:
        weight = snr.clamp(max=cfg.snr_gamma) / snr
    ema_unet = copy.deepcopy(unet).eval().requires_grad_(False)
    ema_text = copy.deepcopy(text_encoder).eval().requires_grad_(False)
    head = torch.nn.Linear(text_encoder.config.hidden_size, len(shapes_data.COLOURS) + len(shapes_data.SHAPES))  # training only
    use_roles = roles is not None and cfg.role_weight > 0
    use_grounds = grounds is not None and cfg.grounding_weight > 0
    attention = grounding.install(unet) if use_grounds else None  # the training UNet's own processors (the EMA copy keeps its own)
    params = [*unet.parameters(), *text_encoder.parameters(), *(head.parameters() if use_roles else ())]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    parts = dict(unet=unet, text_encoder=text_encoder, ema_unet=ema_unet, ema_text=ema_text, head=head, opt=opt)
    first = common.load_checkpoint(resumable, cfg, gen, **parts) if resumable else 0
    unet.train()
    text_encoder.train()
    for step in range(first, cfg.unet_steps):
        for group in opt.param_groups:
            group["lr"] = common.cosine_lr(step, cfg.unet_steps, cfg.lr, cfg.warmup, floor=0.05)
        idx, drop, noise, t = batch(latents, twin, cfg, gen)
        z0, tokens = latents[idx], ids[idx].clone()
        tokens[drop] = empty  # the unconditional model: the "" prompt
        zt = noise_scheduler.add_noise(z0, noise, t)  # z_t = sqrt(ᾱ_t) z_0 + sqrt(1 - ᾱ_t) ε
        c = text_encoder(tokens).last_hidden_state  # the states the UNet's cross-attention reads
        target = noise_scheduler.get_velocity(z0, noise, t) if cfg.prediction_type == "v_prediction" else noise
        err = (unet(zt, t, encoder_hidden_states=c).sample - target).pow(2).mean(dim=(1, 2, 3))
        loss = (weight[t] * err).mean()
        if use_roles:
            named = roles[idx].clone()
            named[drop] = -1  # the empty prompt names nothing
            aux = role_loss(head, c, named)
            loss = loss + cfg.role_weight * aux
        if use_grounds:
            positions = grounds[0][idx].clone()
            positions[drop] = -1  # the empty prompt names nothing
            grounded = grounding.loss(attention, positions, grounds[1][idx])
            loss = loss + cfg.grounding_weight * grounded
        common.optimizer_step(opt, loss, params)
        common.ema_update([(ema_unet, unet), (ema_text, text_encoder)], step, cfg.ema_decay)
        if checkpoint and step and step % 2000 == 0:
            checkpoint(ema_unet, ema_text, noise_scheduler)
        if resumable and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.unet_steps:
            common.save_checkpoint(resumable, step + 1, cfg, gen, **parts)
        if step % 200 == 0 or step == cfg.unet_steps - 1:
            print(f"unet step {step:5d}  loss {loss.item():.4f}" + (f"  role {aux.item():.3f}" if use_roles else "")
                  + (f"  grounding {grounded.item():.3f}" if use_grounds else "") + f"  {clock.minutes():.1f} min", flush=True)
    return ema_unet, ema_text, noise_scheduler


def save(out: Path, *, vae, text_encoder, tokenizer, unet, scheduler) -> None:
    """A StableDiffusionPipeline folder (float16 weights; no safety checker or feature extractor)."""
    import diffusers
    from diffusers import DDIMScheduler

    out.mkdir(parents=True, exist_ok=True)
    for name, model in (("vae", vae), ("text_encoder", text_encoder), ("unet", unet)):
        common.save_half(model, out / name)
    tokenizer.save_pretrained(out / "tokenizer")
    DDIMScheduler.from_config(scheduler.config, set_alpha_to_one=False, steps_offset=1).save_pretrained(out / "scheduler")
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusers.__version__,
             "feature_extractor": [None, None], "image_encoder": [None, None], "requires_safety_checker": False,
             "safety_checker": [None, None], "scheduler": ["diffusers", "DDIMScheduler"],
             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def pictures(cfg: ShapesTrainConfig) -> tuple[np.ndarray, list[str], torch.Tensor | None]:
    """The training pictures, their captions (alt text in place of the grammar's with `cfg.captions == "alt-text"`:
    the same pictures) and (with `cfg.twins`) each one's minimal-pair index."""
    if cfg.twins:
        images, captions, twin = shapes_data.twin_dataset(cfg.n_images, cfg.seed, two_share=cfg.two_share)
        out = images, captions, torch.from_numpy(twin)
    else:
        out = *shapes_data.dataset(cfg.n_images, cfg.seed, two_share=cfg.two_share), None
    if cfg.captions == "alt-text":
        return out[0], alt_text.alt_captions(out[1], cfg.seed + 1)[0], out[2]
    return out


def vocabulary(cfg: ShapesTrainConfig) -> list[str]:
    """The words the tokenizer keeps whole: the grammar's, and alt text's own for an alt-text run."""
    return sorted({*shapes_data.WORDS, *(alt_text.ALT_WORDS if cfg.captions == "alt-text" else ())})


def caption_ids(tokenizer, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids [n, MAX_TOKENS] of the captions, the ids of the empty prompt ""), padded to the text encoder's window."""
    ids = tokenizer(captions, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt").input_ids
    empty = tokenizer([""], padding="max_length", max_length=MAX_TOKENS, return_tensors="pt").input_ids[0]
    return ids, empty


def resumable_path(out: Path) -> Path:
    return out.with_name(out.name + "-checkpoint.pt")


def checkpointer(out: Path, vae, tokenizer):
    """train_unet's checkpoint callback: an early look at the run, saved beside `out` as `<out>-checkpoint`."""
    def checkpoint(unet, text_encoder, scheduler):
        save(out.with_name(out.name + "-checkpoint"), vae=vae, text_encoder=copy.deepcopy(text_encoder), tokenizer=tokenizer,
             unet=copy.deepcopy(unet), scheduler=scheduler)
    return checkpoint


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ae-steps", type=int, default=ShapesTrainConfig.ae_steps)
    parser.add_argument("--unet-steps", type=int, default=ShapesTrainConfig.unet_steps)
    parser.add_argument("--n-images", type=int, default=ShapesTrainConfig.n_images)
    parser.add_argument("--threads", type=int, default=ShapesTrainConfig.threads)
    parser.add_argument("--lr", type=float, default=ShapesTrainConfig.lr)
    parser.add_argument(
        "--two-share",
        type=float,
        default=ShapesTrainConfig.two_share,
        help="share of the scenes with two objects (a resumed run draws its own pictures when this or --twins differs from the first run)",
    )
    parser.add_argument("--role-weight", type=float, default=ShapesTrainConfig.role_weight,
                        help="weight of the auxiliary loss that teaches the text encoder each object's role (0: none)")
    parser.add_argument("--attention-levels", type=int, choices=(1, 2), default=ShapesTrainConfig.attention_levels,
                        help="UNet levels with cross-attention (2: 16x16 as well as 8x8); with --resume, a 1-level model grows its 16x16 layers")
    parser.add_argument("--grounding-weight", type=float, default=ShapesTrainConfig.grounding_weight,
                        help="weight of the token loss putting each object word's attention on its object (playground.train.grounding; 0: none)")
    parser.add_argument("--out", type=Path, default=common.MODELS_DIR / "sd-shapes")
    parser.add_argument("--twins", action=argparse.BooleanOptionalAction, default=ShapesTrainConfig.twins,
                        help="draw every two-object picture with its minimal pair (the inverse relation) and train on pairs")
    parser.add_argument("--captions", choices=("descriptive", "alt-text"), default=ShapesTrainConfig.captions,
                        help="the grammar's descriptive captions, or alt-text-like ones (playground.train.alt_text) for the DALL-E 3 comparison")
    parser.add_argument("--resume", type=Path, default=None,
                        help="a folder this script saved: keep its autoencoder and tokenizer, train its UNet and text encoder further")
    args = parser.parse_args(argv)
    cfg = ShapesTrainConfig(ae_steps=args.ae_steps, unet_steps=args.unet_steps, n_images=args.n_images, threads=args.threads, lr=args.lr,
                            two_share=args.two_share, twins=args.twins, role_weight=args.role_weight, captions=args.captions,
                            attention_levels=args.attention_levels, grounding_weight=args.grounding_weight)
    if args.resume:
        return resume(args.resume, args.out, cfg)
    gen = common.setup(cfg.seed, cfg.threads)
    clock = common.Clock()
    images, captions, twin = pictures(cfg)
    data = pictures_tensor(images)
    tokenizer = build_tokenizer(vocabulary(cfg))
    ids, empty = caption_ids(tokenizer, captions)
    print(f"{len(captions):,} pictures; vocabulary {len(tokenizer)} tokens; e.g. {captions[:3]}", flush=True)

    vae = train_autoencoder(build_autoencoder(cfg), data, cfg, gen, clock)
    test = pictures_tensor(shapes_data.dataset(1000, cfg.seed + 1)[0])
    with torch.no_grad():
        mse = torch.nn.functional.mse_loss(vae.decode(vae.encode(test).latent_dist.mode()).sample, test).item()
    latents = encode_all(vae, data)
    scale = 1.0 / latents.std().item()  # the latent scaling factor s: s * z has unit variance
    vae.register_to_config(scaling_factor=scale)
    print(f"autoencoder test MSE {mse:.4f}; latents {tuple(latents.shape[1:])}, scaling factor {scale:.4f}", flush=True)

    text_encoder = build_text_encoder(cfg, len(tokenizer), tokenizer)
    unet = build_unet(cfg, latents.shape[-1])
    print(
        f"parameters: unet {sum(p.numel() for p in unet.parameters()):,}, text encoder "
        f"{sum(p.numel() for p in text_encoder.parameters()):,}",
        flush=True,
    )
    unet, text_encoder, scheduler = train_unet(unet, text_encoder, ids, empty, latents * scale, cfg, gen, clock,
                                               checkpointer(args.out, vae, tokenizer), twin, role_targets(captions),
                                               resumable=resumable_path(args.out), grounds=grounding_targets(cfg, images, captions))
    minutes = clock.minutes()
    save(args.out, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler)
    common.save_metrics(args.out, {
        "reconstruction_mse": round(mse, 5), "scaling_factor": scale, "train_minutes": round(minutes, 1),
        "train_cpu_minutes": round(clock.cpu_minutes(), 1), "machine": common.machine(),
        "parameters": {"unet": sum(p.numel() for p in unet.parameters()), "text_encoder": sum(p.numel() for p in text_encoder.parameters()),
                       "vae": sum(p.numel() for p in vae.parameters())},
        "heldout_pairs": [" ".join(p) for p in shapes_data.HELDOUT_PAIRS], "pictures": len(captions), "config": asdict(cfg),
    })
    resumable_path(args.out).unlink(missing_ok=True)
    print(f"saved to {args.out} after {minutes:.1f} min; measure with python -m playground.train.evaluate --only shapes", flush=True)


def grounding_targets(cfg: ShapesTrainConfig, images: np.ndarray, captions: list[str]):
    """The grounding loss's targets for these pictures, or None when it is off."""
    return grounding.targets(images, captions) if cfg.grounding_weight > 0 else None


def attention_levels(unet) -> int:
    """How many of a UNet's up levels cross-attend (build_unet's `attention_levels`)."""
    return sum(t == "CrossAttnUpBlock2D" for t in unet.config.up_block_types)


def grow(unet, cfg: ShapesTrainConfig):
    """`unet` with cross-attention in `cfg.attention_levels` levels: its weights, plus new attention layers whose output
    projection starts at zero, so the grown UNet first computes exactly what `unet` did."""
    bigger = build_unet(replace(cfg, unet_channels=tuple(unet.config.block_out_channels)), unet.config.sample_size)
    missing, unexpected = bigger.load_state_dict(unet.state_dict(), strict=False)
    if unexpected or not all(".attentions." in k for k in missing):
        raise ValueError(f"cannot grow this UNet: unexpected {unexpected[:3]}, missing {[k for k in missing if '.attentions.' not in k][:3]}")
    with torch.no_grad():
        for name, param in bigger.named_parameters():
            if name in missing and ".proj_out." in name:
                param.zero_()
    return bigger


def resume(folder: Path, out: Path, cfg: ShapesTrainConfig) -> None:
    """Train a saved model's UNet and text encoder `cfg.unet_steps` more steps (a fresh optimizer and learning-rate
    schedule, the same objective, and the first run's pictures unless `cfg.two_share` or `cfg.twins` differ), from its EMA weights; its autoencoder and tokenizer are kept."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    before = common.load_metrics(folder)
    saved = json.loads((folder / "scheduler" / "scheduler_config.json").read_text()).get("prediction_type", "epsilon")
    cfg = replace(cfg, prediction_type=saved)  # a model goes on predicting what it was trained to predict
    gen = common.setup(cfg.seed + len(before.get("runs", [])) + 1, cfg.threads)  # new batches and noise, reproducibly
    clock = common.Clock()
    images, captions, twin = pictures(cfg)
    vae = AutoencoderKL.from_pretrained(folder / "vae", torch_dtype=torch.float32)
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder", torch_dtype=torch.float32)
    unet = UNet2DConditionModel.from_pretrained(folder / "unet", torch_dtype=torch.float32)
    grown = attention_levels(unet) < cfg.attention_levels
    if grown:
        unet = grow(unet, cfg)
    ids, empty = caption_ids(tokenizer, captions)
    latents = encode_all(vae, pictures_tensor(images)) * vae.config.scaling_factor
    print(f"resuming {folder} ({before.get('train_minutes', 0)} min so far) for {cfg.unet_steps:,} steps", flush=True)

    kept = {f.relative_to(folder): f.read_bytes() for f in [*(folder / "tokenizer").iterdir(), folder / "vae" / "config.json"]}
    unet, text_encoder, scheduler = train_unet(unet, text_encoder, ids, empty, latents, cfg, gen, clock, checkpointer(out, vae, tokenizer),
                                                 twin, role_targets(captions), grounds=grounding_targets(cfg, images, captions))
    minutes = clock.minutes()
    save(out, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler)
    for name, data in kept.items():  # unchanged parts keep their files (a reloaded tokenizer writes its load-time options)
        (out / name).write_bytes(data)
    for part in ("unet", "text_encoder"):  # no local path in the shipped configs
        config = out / part / "config.json"
        config.write_text(json.dumps({k: v for k, v in json.loads(config.read_text()).items() if k != "_name_or_path"}, indent=2) + "\n")
    runs = before.get("runs") or [{"unet_steps": before["config"]["unet_steps"], "lr": before["config"]["lr"],
                                   "minutes": before["train_minutes"]}]
    runs = [
        *runs,
        {
            "unet_steps": cfg.unet_steps,
            "lr": cfg.lr,
            "two_share": cfg.two_share,
            "twins": cfg.twins,
            "role_weight": cfg.role_weight,
            "attention_levels": cfg.attention_levels,
            "grounding_weight": cfg.grounding_weight,
            "threads": cfg.threads,
            "minutes": round(minutes, 1),
            "resumed_from_ema": True,
        },
    ]
    parameters = {**before.get("parameters", {}), "unet": sum(p.numel() for p in unet.parameters())}  # a grown UNet has more
    common.save_metrics(out, {**before, "parameters": parameters, "runs": runs, "unet_steps_total": sum(r["unet_steps"] for r in runs),
                              "train_minutes": round(sum(r["minutes"] for r in runs), 1),
                              "train_cpu_minutes": round(before.get("train_cpu_minutes", 0) + clock.cpu_minutes(), 1)})
    print(f"saved to {out} after {minutes:.1f} more min; measure with python -m playground.train.evaluate --only shapes", flush=True)


if __name__ == "__main__":
    main()
