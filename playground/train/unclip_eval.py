"""unclip-shapes' figures, measured by the shapes checker (`shapes_check`) through the playground's own runs.

    python -m playground.train.evaluate --only unclip

Text to image goes caption -> prior -> decoder exactly as `/unclip` runs it (`core.diffusion.unclip.stage_one`, then the
one diffusion run), on the same random grammar prompts and seeds as sd-shapes' figures, so the two designs are read on
the same prompts. Variations go picture -> CLIP image embedding -> decoder with the empty caption, as `/variations`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from playground.core.diffusion import unclip
from playground.core.diffusion.pictures import decode
from playground.core.diffusion.run import DiffusionRequest, Parts, final_sample
from playground.train import common, shapes_check, shapes_data, shapes_eval

GUIDANCE = 4.0  # the decoder's guidance (the /unclip default)
STEPS = 50  # the decoder's DDIM steps
N_PROMPTS = shapes_eval.N_PROMPTS  # prompts per figure, as sd-shapes'
TARGETS = {"colour": 0.85, "shape": 0.85, "place": 0.75, "variations_keep": 0.80}
BATCH = 100


def _uint8(x: torch.Tensor, vae) -> np.ndarray:
    img = decode(x, vae).clamp(-1, 1)
    return ((img + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


@torch.no_grad()
def draw(components: dict, prompts: list[str], seed: int, *, guidance: float = GUIDANCE, steps: int = STEPS,
         caption_to_decoder: bool = True) -> np.ndarray:
    """uint8 [n, 32, 32, 3]: caption -> prior -> decoder, one picture per prompt (row i's draws depend on `seed` and its
    batch). `caption_to_decoder=False`: the decoder reads only the prior's image embedding (its caption is "")."""
    model, out = Parts.of(components), []
    for start in range(0, len(prompts), BATCH):
        chunk = prompts[start:start + BATCH]
        gen = torch.Generator().manual_seed(seed + start)
        _, z = unclip.stage_one(model, chunk, unclip.PRIOR_STEPS, unclip.PRIOR_GUIDANCE, gen)
        said = tuple(chunk) if caption_to_decoder else ("",) * len(chunk)
        request = DiffusionRequest(prompt=said, scheduler="DDIM", steps=steps, guidance=guidance, seed=seed + start, image_embedding=z)
        out.append(_uint8(final_sample(model, request, generator=gen), components["vae"]))
    return np.concatenate(out)


def embedding_only(components: dict, prompts: list[str], seed: int, *, guidance: float = GUIDANCE) -> np.ndarray:
    return draw(components, prompts, seed, guidance=guidance, caption_to_decoder=False)


@torch.no_grad()
def variations_kept(components: dict, n: int, per: int, seed: int, *, two: bool = False, own: bool = False) -> dict:
    """`per` variations of each of n fresh pictures (one object, or two with a relation): how often the checker reads the
    same colour and shape (two objects: both objects and the relation) in the variation as in the picture, and how much
    the pixels differ (mean |Δ| over the picture, 0-255). `own`: pictures the model drew itself from those captions (CLIP
    was trained on clean drawings only), instead of the world's drawings."""
    from playground.train.clip import pixels

    pictures, captions = shapes_data.dataset(n, seed, two_share=1.0 if two else 0.0)
    if own:  # the model's own pictures of the same captions: drawn by the pipeline, so blurred and textured a little
        pictures = draw(components, captions, seed)
    encoder = components["image_encoder"]
    embeds = encoder(pixel_values=pixels(pictures)).image_embeds  # the processor's pixels (tested equal in test_clip)
    model, kept, moved, same_place, colour_kept = Parts.of(components), [], [], [], []
    for start in range(0, n, BATCH // per):
        rows = list(range(start, min(n, start + BATCH // per)))
        request = DiffusionRequest(prompt=("",) * len(rows), scheduler="DDIM", steps=STEPS, guidance=GUIDANCE, seed=seed + start, batch=per,
                                   image_embedding=embeds[rows].repeat_interleave(per, 0))
        drawn = _uint8(final_sample(model, request), components["vae"])
        for k, i in enumerate(rows):
            scene = shapes_data.parse(captions[i])
            original = shapes_check.read(pictures[i])
            for img in drawn[k * per:(k + 1) * per]:
                moved.append(float(np.abs(img.astype(float) - pictures[i].astype(float)).mean()))
                if two:
                    kept.append(bool(shapes_check.judge(img, scene).both))
                    continue
                found = shapes_check.read(img)
                kept.append(bool(found and original and found[0].colour == original[0].colour and found[0].shape == original[0].shape))
                colour_kept.append(bool(found and original and found[0].colour == original[0].colour))
                same_place.append(bool(found and original and found[0].place == original[0].place))
    figures = {"kept": round(float(np.mean(kept)), 4), "mean_abs_pixel_change": round(float(np.mean(moved)), 2),
               "pictures": n, "variations_each": per}
    if not two:
        figures["same_place"] = round(float(np.mean(same_place)), 4)
        figures["colour_kept"] = round(float(np.mean(colour_kept)), 4)
    return figures


SAMPLE_PROMPTS = shapes_eval.SAMPLE_PROMPTS


def sample_grid(components: dict, folder: Path, per_prompt: int = 6, seed: int = 7) -> None:
    from playground.core.diffusion.pictures import image_grid

    prompts = [p for p in SAMPLE_PROMPTS for _ in range(per_prompt)]
    imgs = torch.from_numpy(draw(components, prompts, seed)).permute(0, 3, 1, 2).float() / 127.5 - 1
    image_grid(imgs, rows=len(SAMPLE_PROMPTS)).resize((2 * (per_prompt * 34 + 2), 2 * (len(SAMPLE_PROMPTS) * 34 + 2))).save(
        folder / "samples.png"
    )


def evaluate(components: dict, folder: Path, n: int = N_PROMPTS) -> dict:
    sample_grid(components, folder)
    sd = common.load_metrics(common.MODELS_DIR / "sd-shapes")
    return {
        "guidance": GUIDANCE, "ddim_steps": STEPS, "prior_steps": unclip.PRIOR_STEPS, "prior_guidance": unclip.PRIOR_GUIDANCE,
        # the same prompts and seeds as sd-shapes' "grammar" and "heldout_pairs"
        "grammar": shapes_eval.one_and_two_objects(components, n, 100, guidance=GUIDANCE, drawer=draw),
        "heldout_pairs": shapes_eval.one_and_two_objects(components, n // 2, 200, heldout=True, guidance=GUIDANCE, drawer=draw),
        "embedding_only": shapes_eval.one_and_two_objects(components, n // 2, 100, guidance=GUIDANCE, drawer=embedding_only),
        "variations": variations_kept(components, 50, 4, 600),
        "variations_two_objects": variations_kept(components, 50, 4, 700, two=True),
        "variations_of_own_pictures": variations_kept(components, 50, 4, 800, own=True),
        "sd_shapes_same_prompts": {"grammar": sd["grammar"], "heldout_pairs": sd["heldout_pairs"], "guidance": sd["guidance"]},
    }


def targets_met(m: dict) -> dict[str, bool]:
    g = m["grammar"]
    return {"colour": g["colour"] >= TARGETS["colour"], "shape": g["shape"] >= TARGETS["shape"], "place": g["place"] >= TARGETS["place"],
            "variations_keep": m["variations"]["kept"] >= TARGETS["variations_keep"]}
