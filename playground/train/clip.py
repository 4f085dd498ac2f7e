"""Train clip-shapes: a small CLIPModel that puts the shapes world's pictures and captions in one embedding space.

    python -m playground.train.clip                # ~15 min on 2 CPU cores -> assets/models/clip-shapes
    python -m playground.train.clip --threads 1    # beside other work; resumable: run it again after a stop

CLIP (Radford et al. 2021) trains an image tower and a text tower together: for a batch of N pictures and their N
captions, the N x N matrix of cosine similarities (times a learned temperature) is read as N-way classification both
ways, picture -> its caption and caption -> its picture, so matching pairs are pushed up the diagonal and the rest down
(the symmetric InfoNCE loss, `CLIPModel(..., return_loss=True)`). DALL-E 2 builds on that space: its prior maps a
caption's text embedding to an image embedding, its decoder draws a picture from one.

Here: a vision transformer on 32x32 pictures (patches of 8 pixels: 16 tokens and a class token) and a text
transformer on sd-shapes' own tokenizer (the grammar's words), both 3 layers of width 96, projected to 64 dimensions. Pictures and
captions are drawn fresh every step by `shapes_data` (one or two objects; the four held-out colour-shape pairs never
appear). Figures (`evaluate --only clip`): zero-shot colour, shape and place of held-out pictures, with class
embeddings averaged over the grammar's captions of each class (CLIP's prompt ensembling), the held-out colour-shape
pairs reported apart; and picture-to-caption retrieval top-1 over the grammar's 180 fully specified one-object captions.

Resumable: every `--save-every` steps the model, the optimizer and the random generators go to
`data/clip-shapes.ckpt.pt`; a run finds it and continues from its step.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from playground.core.multimodal import clip_space
from playground.train import common, shapes_data
from playground.train.data import data_dir


@dataclass
class ClipTrainConfig:
    width: int = 96  # both towers' hidden size
    layers: int = 3  # transformer layers per tower
    heads: int = 4  # attention heads per layer
    mlp: int = 384  # MLP width
    patch: int = 8  # vision patch side in pixels: 32 / 8 = 4 x 4 = 16 patch tokens (and a class token)
    projection_dim: int = 64  # the shared embedding space
    max_tokens: int = 16  # caption length in tokens, padded (the longest caption has 12 and the two markers)
    batch_size: int = 128  # pairs per step: the contrastive matrix is 128 x 128
    steps: int = 1500  # optimizer steps
    lr: float = 1e-3  # peak learning rate (AdamW), cosine-decayed
    warmup: int = 100  # linear warm-up steps
    weight_decay: float = 0.1  # AdamW weight decay on matrices
    two_share: float = 0.4  # share of two-object pictures
    seed: int = 0  # every random choice derives from it
    threads: int = 2  # torch CPU threads


def checkpoint_path() -> Path:
    return data_dir() / "clip-shapes.ckpt.pt"


def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(common.MODELS_DIR / "sd-shapes" / "tokenizer")  # the grammar's words, as sd-shapes reads them


def image_processor():
    """Pictures as CLIP reads them: 32x32 RGB scaled to [-1, 1] (the shapes world's own size: nothing resized)."""
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(do_resize=True, size={"shortest_edge": shapes_data.SIZE}, do_center_crop=True,
                              crop_size={"height": shapes_data.SIZE, "width": shapes_data.SIZE}, do_rescale=True,
                              do_normalize=True, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], do_convert_rgb=True)


def build(cfg: ClipTrainConfig, tok):
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    text = CLIPTextConfig(vocab_size=len(tok), hidden_size=cfg.width, intermediate_size=cfg.mlp, num_hidden_layers=cfg.layers,
                          num_attention_heads=cfg.heads, max_position_embeddings=cfg.max_tokens, projection_dim=cfg.projection_dim,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    vision = CLIPVisionConfig(image_size=shapes_data.SIZE, patch_size=cfg.patch, hidden_size=cfg.width, intermediate_size=cfg.mlp,
                              num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, projection_dim=cfg.projection_dim,
                              num_channels=3)
    return CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=cfg.projection_dim))


def pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, 32, 32, 3] -> float [N, 3, 32, 32] in [-1, 1], as `image_processor()` makes them."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def encode_texts(tok, texts: list[str], max_tokens: int) -> dict[str, torch.Tensor]:
    return tok(texts, padding="max_length", max_length=max_tokens, truncation=True, return_tensors="pt")


# ---- figures ----------------------------------------------------------------------------------------------------------


def embed_texts(model, tok, texts: list[str]) -> torch.Tensor:
    return clip_space.text_embeddings(model, tok, texts)


def embed_images(model, images: np.ndarray) -> torch.Tensor:
    return clip_space.pixel_embeddings(model, pixels(images))


@torch.no_grad()
def zero_shot(model, tok, n: int = 600, seed: int = 1234) -> dict:
    """Zero-shot colour, shape and place of fresh one-object pictures (fully specified captions), each class embedding
    the mean of its captions' (renormalized): accuracy over pictures of the training pairs and of the held-out pairs."""
    rng = np.random.default_rng(seed)
    found = clip_space.class_centres(model, tok, shapes_data.class_prompts())
    classes = {a: names for a, (names, _) in found.items()}
    centres = {a: c for a, (_, c) in found.items()}
    out = {}
    for split, heldout in (("seen_pairs", False), ("heldout_pairs", True)):
        captions, images = [], []
        while len(captions) < n:
            obj = shapes_data.random_scene(rng, heldout=heldout, two_share=0.0).objects[0]  # held out: always a held-out pair
            size = obj.size or str(rng.choice(list(shapes_data.SIZES)))
            place = obj.place or str(rng.choice([name for name, *_ in shapes_data.PLACES.values()]))
            colour = obj.colour or str(rng.choice(list(shapes_data.COLOURS)))
            full = shapes_data.Scene((shapes_data.Shape(colour, obj.shape, size, place),))
            captions.append(full.objects[0])
            images.append(shapes_data.draw(full, rng))
        feats = embed_images(model, np.stack(images))
        truth = {"colour": [o.colour for o in captions], "shape": [o.shape for o in captions], "place": [o.place for o in captions]}
        out[split] = {a: round(float(np.mean([classes[a][i] == t for i, t in zip((feats @ centres[a].T).argmax(-1).tolist(),
                                                                                 truth[a])])), 4) for a in classes}
    return out


@torch.no_grad()
def retrieval(model, tok, n: int = 600, seed: int = 4321) -> float:
    """Picture -> caption top-1 over the 180 fully specified one-object captions, on fresh pictures of training pairs."""
    rng = np.random.default_rng(seed)
    captions = shapes_data.single_captions()
    keep = [c for c in captions if tuple(c.split()[2:4]) not in shapes_data.HELDOUT_PAIRS]
    texts = embed_texts(model, tok, keep)
    picks = [keep[i] for i in rng.integers(0, len(keep), n)]
    images = np.stack([shapes_data.draw(shapes_data.parse(c), rng) for c in picks])
    best = (embed_images(model, images) @ texts.T).argmax(-1).tolist()
    return round(float(np.mean([keep[b] == c for b, c in zip(best, picks)])), 4)


@torch.no_grad()
def relations(model, tok, n: int = 400, seed: int = 99) -> float:
    """Two-object pictures against their minimal pairs: the share whose own caption ("a red circle left of a blue square")
    scores above the same words with the inverse relation ("... right of ..."), which describes the swapped picture.
    Chance is 50%: a bag of words cannot tell them apart, only the word order can."""
    images, captions, twin = shapes_data.twin_dataset(n, seed, two_share=1.0)
    keep = [i for i in range(len(captions)) if twin[i] >= 0]
    pictures = embed_images(model, images[keep])
    own = embed_texts(model, tok, [captions[i] for i in keep])
    other = embed_texts(model, tok, [captions[twin[i]] for i in keep])
    return round(float(((pictures * own).sum(-1) > (pictures * other).sum(-1)).float().mean()), 4)


# ---- training ---------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=ClipTrainConfig.steps)
    parser.add_argument("--threads", type=int, default=ClipTrainConfig.threads)
    parser.add_argument("--save-every", type=int, default=100, help="steps between resumable checkpoints")
    parser.add_argument("--fresh", action="store_true", help="ignore a checkpoint and start again")
    parser.add_argument("--out", type=Path, default=common.MODELS_DIR / "clip-shapes")
    args = parser.parse_args(argv)
    cfg = ClipTrainConfig(steps=args.steps, threads=args.threads)
    gen = common.setup(cfg.seed, cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    clock = common.Clock()
    tok = tokenizer()
    model = build(cfg, tok)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.98))
    start, minutes_before, ckpt = 0, 0.0, checkpoint_path()
    if ckpt.exists() and not args.fresh:
        state = torch.load(ckpt, weights_only=False)
        if state["config"] == asdict(cfg) | {"threads": state["config"]["threads"]}:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            rng.bit_generator.state = state["numpy"]
            start, minutes_before = state["step"], state["minutes"]
            print(f"resumed at step {start} ({minutes_before:.1f} min before)", flush=True)
    model.train()
    for step in range(start, cfg.steps):
        for group in opt.param_groups:
            group["lr"] = common.cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup)
        scenes = [shapes_data.random_scene(rng, two_share=cfg.two_share) for _ in range(cfg.batch_size)]
        images = np.stack([shapes_data.draw(s, rng) for s in scenes])
        enc = encode_texts(tok, [s.caption() for s in scenes], cfg.max_tokens)
        loss = model(**enc, pixel_values=pixels(images), return_loss=True).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)  # CLIP's cap: a temperature of at least 1/100
        if step % 100 == 0 or step == cfg.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.3f}  {minutes_before + clock.minutes():.1f} min", flush=True)
        if (step + 1) % args.save_every == 0 and step + 1 < cfg.steps:
            torch.save({"step": step + 1, "model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                        "numpy": rng.bit_generator.state, "minutes": minutes_before + clock.minutes(), "config": asdict(cfg)},
                       ckpt.with_suffix(".tmp"))
            ckpt.with_suffix(".tmp").replace(ckpt)
    model.eval()
    common.round_to_half(model)
    metrics = {"zero_shot": zero_shot(model, tok), "retrieval_top1": retrieval(model, tok), "relations": relations(model, tok),
               "logit_scale": round(float(model.logit_scale.detach().exp()), 2),
               "train_minutes": round(minutes_before + clock.minutes(), 1),
               "machine": common.machine(), "parameters": sum(p.numel() for p in model.parameters()), "config": asdict(cfg),
               "pairs_seen": cfg.steps * cfg.batch_size}
    print(metrics, flush=True)
    save(model, tok, args.out)
    common.save_metrics(args.out, metrics)
    write_card(args.out, metrics)
    ckpt.unlink(missing_ok=True)


def save(model, tok, out: Path) -> None:
    from transformers import CLIPProcessor

    out.mkdir(parents=True, exist_ok=True)
    common.save_half(model, out)
    CLIPProcessor(image_processor=image_processor(), tokenizer=tok).save_pretrained(out)


def write_card(out: Path, metrics: dict) -> None:
    cfg = ClipTrainConfig(**metrics["config"])
    z = metrics["zero_shot"]
    architecture = (f"`CLIPModel`: a vision transformer on 32x32 pictures (patches of {cfg.patch}: {(32 // cfg.patch) ** 2} tokens "
                    f"and a class token) and a text transformer on sd-shapes' tokenizer, each {cfg.layers} layers of width "
                    f"{cfg.width}, projected to {cfg.projection_dim} dimensions")
    pairs = ", ".join(" ".join(p) for p in shapes_data.HELDOUT_PAIRS)
    data = (f"pictures and captions drawn fresh by `shapes_data` every step ({metrics['pairs_seen']:,} pairs; {cfg.two_share:.0%} "
            f"with two objects); the held-out colour-shape pairs ({pairs}) never drawn")
    training = (f"{cfg.steps:,} AdamW steps of {cfg.batch_size} pairs, the symmetric contrastive loss; "
                f"{metrics['train_minutes']:.1f} min on {cfg.threads} CPU thread(s)")
    rel = metrics.get("relations")
    relation = ("not measured" if rel is None else
                f"a two-object picture scores its own caption above the inverse relation's (\"left of\" for \"right of\", the "
                f"swapped picture's caption) {rel:.1%} of the time (chance 50%)")
    zs = "; ".join(f"{split.replace('_', ' ')}: " + ", ".join(f"{a} {v:.1%}" for a, v in z[split].items()) for split in z)
    common.write_card(
        out,
        metadata={"license": "mit", "library_name": "transformers", "pipeline_tag": "zero-shot-image-classification",
                  "tags": ["teaching", "clip", "shapes"]},
        body=f"""
# clip-shapes: pictures and captions of the shapes world in one embedding space

{common.TEACHING_NOTE.format(real="OpenAI's CLIP")}

| | |
|---|---|
| architecture | {architecture} |
| parameters | {metrics["parameters"]:,} (stored in float16) |
| data | {data} |
| training | {training} |
| **zero-shot** | one-object pictures, class embeddings averaged over the grammar's captions of each class: {zs} |
| **retrieval** | picture -> caption top-1 over the grammar's fully specified one-object captions: {metrics["retrieval_top1"]:.1%} |
| **relations** | {relation} |
| temperature | logit scale {metrics["logit_scale"]:g} |

Load: `CLIPModel.from_pretrained(folder)` and `CLIPProcessor.from_pretrained(folder)`.
Train: `python -m playground.train.clip`. Measure: `python -m playground.train.evaluate --only clip`.

Limits: 32x32 flat shapes on black, the grammar's words only; a caption outside the grammar is spelled in pieces and
lands wherever its pieces do.
""",
    )


if __name__ == "__main__":
    main()
