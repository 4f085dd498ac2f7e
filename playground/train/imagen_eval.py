"""imagen-shapes' figures, measured by the shapes checker (`shapes_check`) through the playground's own runs.

    python -m playground.train.evaluate --only imagen

The same random grammar prompts and seeds as sd-shapes' figures, each drawn by the base stage (16x16, enlarged 2x with
hard edges for the checker, which reads 32x32 pictures) and by the whole cascade (the base, then the super-resolution
stage at IF-II's augmentation level 250), both with DDIM and the folders' dynamic thresholding, as `/designs` and the
Designs section draw them. Also: the share of saturated (pure white) pixels at high guidance with static clipping,
dynamic thresholding and none, on the base stage (`compare.compare_clipping`, the Diffusion tab's comparison).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from playground.core.diffusion import cascade
from playground.core.diffusion.compare import compare_clipping
from playground.core.diffusion.pictures import to_uint8
from playground.core.diffusion.run import DiffusionRequest, Parts, final_sample
from playground.train import common, shapes_eval

GUIDANCE = 5.0  # as sd-shapes' figures
STEPS = 50  # DDIM steps of each stage
N_PROMPTS = shapes_eval.N_PROMPTS
TARGETS = {"colour": 0.90, "shape": 0.90, "place": 0.85, "two_objects": 0.60}  # the issue's, for the cascade
BATCH = 100
HIGH_GUIDANCE = 15.0  # the clipping comparison's scale


def _uint8(x: torch.Tensor) -> np.ndarray:
    return to_uint8(x).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def draw_stages(stages: tuple[dict, dict], prompts: list[str], seed: int, *, guidance: float = GUIDANCE, steps: int = STEPS,
                clip: str = "default") -> tuple[np.ndarray, np.ndarray]:
    """(the base's pictures enlarged to 32x32, the cascade's 32x32 pictures), uint8 [n, 32, 32, 3], one per prompt."""
    base, sr = (Parts.of(c) for c in stages)
    small, large = [], []
    for start in range(0, len(prompts), BATCH):
        chunk = tuple(prompts[start:start + BATCH])
        asked = cascade.CascadeRequest(chunk[0], seed + start, steps, guidance, clip=clip).checked()
        low = final_sample(base, replace(asked.stage(), prompt=chunk)).clamp(-1, 1)
        large.append(_uint8(final_sample(sr, replace(asked.stage(low), prompt=chunk))))
        small.append(_uint8(torch.nn.functional.interpolate(low, scale_factor=2, mode="nearest")))
    return np.concatenate(small), np.concatenate(large)


_DRAWN: dict = {}  # (prompts, seed, guidance) -> both stages' pictures: the base's figures reuse the cascade's draws


def cascade_drawer(stage: str):
    """A `shapes_eval.one_and_two_objects` drawer of the base ("base") or the whole cascade ("cascade")."""
    def drawer(components, prompts, seed, *, guidance=GUIDANCE):
        key = (id(components[0]), tuple(prompts), seed, guidance)
        if key not in _DRAWN:
            _DRAWN[key] = draw_stages(components, prompts, seed, guidance=guidance)
        small, large = _DRAWN[key]
        return small if stage == "base" else large
    return drawer


def sample_grid(stages: tuple[dict, dict], folder: Path, per_prompt: int = 6, seed: int = 7) -> None:
    from playground.core.diffusion.pictures import image_grid

    prompts = [p for p in shapes_eval.SAMPLE_PROMPTS for _ in range(per_prompt)]
    small, large = draw_stages(stages, prompts, seed)
    rows = []
    for i in range(len(shapes_eval.SAMPLE_PROMPTS)):  # each prompt: the base's pictures, then the cascade's
        rows += [small[i * per_prompt:(i + 1) * per_prompt], large[i * per_prompt:(i + 1) * per_prompt]]
    imgs = torch.from_numpy(np.concatenate(rows)).permute(0, 3, 1, 2).float() / 127.5 - 1
    image_grid(imgs, rows=2 * len(shapes_eval.SAMPLE_PROMPTS)).resize(
        (2 * (per_prompt * 34 + 2), 2 * (2 * len(shapes_eval.SAMPLE_PROMPTS) * 34 + 2))).save(folder / "samples.png")


def clipping_at_high_guidance(base: dict, n: int = 8, seed: int = 0) -> dict:
    """Saturated pixels (all channels >= 0.98) at guidance HIGH_GUIDANCE per clipping, over n pictures of each of three prompts."""
    shares: dict[str, list[float]] = {}
    for k, prompt in enumerate(("a large red circle", "a green square above a white circle", "a small blue triangle")):
        request = DiffusionRequest(prompt=prompt, scheduler="DDIM", steps=STEPS, guidance=HIGH_GUIDANCE, seed=seed + k)
        result = compare_clipping(Parts.of(base), request, samples=n)
        for clip, share in zip(result.clippings, result.saturated):
            shares.setdefault(clip, []).append(share)
    return {"guidance": HIGH_GUIDANCE, **{clip: round(float(np.mean(v)), 4) for clip, v in shares.items()}, "pictures": 3 * n}


def evaluate(stages: tuple[dict, dict], folder: Path, n: int = N_PROMPTS) -> dict:
    sample_grid(stages, folder)
    sd = common.load_metrics(common.MODELS_DIR / "sd-shapes")
    return {
        "guidance": GUIDANCE, "ddim_steps": STEPS, "sr_noise_level": cascade.SR_NOISE_LEVEL,
        # the same prompts and seeds as sd-shapes' "grammar" and "heldout_pairs"
        "grammar": shapes_eval.one_and_two_objects(stages, n, 100, drawer=cascade_drawer("cascade")),
        "base_grammar": shapes_eval.one_and_two_objects(stages, n, 100, drawer=cascade_drawer("base")),
        "heldout_pairs": shapes_eval.one_and_two_objects(stages, n // 2, 200, heldout=True, drawer=cascade_drawer("cascade")),
        "clipping": clipping_at_high_guidance(stages[0]),
        "word_maps": shapes_eval.word_map_mass(stages[0], 40, 400),  # the base's words (the SR stage reads the same text)
        "sd_shapes_same_prompts": {"grammar": sd["grammar"], "heldout_pairs": sd["heldout_pairs"], "guidance": sd["guidance"]},
    }


def targets_met(m: dict) -> dict[str, bool]:
    g = m["grammar"]
    return {k: g[k] >= TARGETS[k] for k in TARGETS}


def _figures(g: dict) -> str:
    return f"{g['colour']:.1%} / {g['shape']:.1%} / {g['place']:.1%} / {g['two_objects']:.1%}"


def _maps(m: dict) -> str:
    if "word_maps" not in m:
        return ""
    return shapes_eval.maps_sentence(m["word_maps"], (
        "Measured on the base stage (16x16, its maps and picture enlarged to 32x32). A word the T5 tokenizer spells in "
        "pieces is mapped as the sum of its pieces' maps. Nothing in its training asks the maps to land anywhere."))


def write_card(folder: Path, m: dict, sr: dict) -> None:
    """The card of the base folder (it describes the cascade); the super-resolution folder's card points to it."""
    cfg, g, base, h, sd = m["config"], m["grammar"], m["base_grammar"], m["heldout_pairs"], m["sd_shapes_same_prompts"]
    met = targets_met(m)
    marks = ", ".join(f"{k} {'met' if v else '**not met**'}" for k, v in met.items())
    c = m["clipping"]
    common.write_card(
        folder,
        metadata=common.text_to_image_card("imagen", "deepfloyd-if", "cascade", "text-to-image", "synthetic"),
        body=f"""
# imagen-shapes: an Imagen-shaped cascade of coloured shapes (16x16, then 32x32)

{common.TEACHING_NOTE.format(real="Imagen or DeepFloyd IF")}

Imagen's design (Saharia et al. 2022), as DeepFloyd IF ships it, in sd-shapes' world (the same {m["pictures"]:,} pictures and seed):

| | |
|---|---|
| base (this folder) | `IFPipeline.from_pretrained(folder)` runs it unchanged: `UNet2DConditionModel` on 3x16x16 pixels, widths {tuple(cfg["channels"])}, cross-attention to the text at 8x8, {m["parameters"]["unet"]:,} parameters, {cfg["steps"]:,} steps ({m["train_minutes"]:.0f} min on {cfg["threads"]} CPU thread) |
| super-resolution (`imagen-shapes-sr`) | `IFSuperResolutionPipeline.from_pretrained(folder)` runs it unchanged: 3x32x32 pixels beside the upsampled 16x16 picture (6 channels in), its noise level as the class label, widths {tuple(sr["config"]["channels"])}, {sr["parameters"]["unet"]:,} parameters, {sr["config"]["steps"]:,} steps ({sr["train_minutes"]:.0f} min); trained on 2x2-average-pooled pictures noised to levels 0-{sr["config"]["aug_max"] - 1} |
| text | t5-tasks' T5 encoder, **frozen** ({m["parameters"]["text_encoder_frozen"]:,} parameters): trained on text tasks only (word reversal, sorting, number words), never with a picture; its 251-piece tokenizer spells most grammar words letter by letter. 77 tokens, as IF |
| objective | v-prediction on the cosine schedule, loss weight min(1, {cfg["snr_gamma"]:g} / (SNR + 1)), prompt dropout {cfg["prompt_dropout"]:.0%}, EMA weights; IF's 6 output channels, of which the last 3 (IF's learned variance) stay zero: the schedulers use fixed variances |
| sampling | the saved DDPM scheduler has IF's dynamic thresholding (95th percentile, s at most 1.5); the playground samples with DDIM from the same config |

## Figures

The checker and the prompts and seeds of sd-shapes' card ({m["ddim_steps"]} DDIM steps per stage, guidance {m["guidance"]:g},
super-resolution at noise level {m["sr_noise_level"]}; {g["prompts"]} prompts each). Colour / shape / place / two objects:

| | imagen-shapes | sd-shapes, same prompts |
|---|---|---|
| the cascade (32x32) | **{_figures(g)}** | {_figures(sd["grammar"])} |
| the base alone (16x16, enlarged) | {_figures(base)} | |
| held-out pairs (cascade) | {_figures(h)} | {_figures(sd["heldout_pairs"])} |

Targets (colour and shape 90%, place 85%, two objects 60%): {marks}.

Dynamic thresholding at guidance {c["guidance"]:g} (the base, {c["pictures"]} pictures of three prompts, the same noise in each row):
pixels pinned white with static clipping **{c["clip"]:.1%}**, with dynamic thresholding **{c["dynamic"]:.1%}**, with no clipping {c["none"]:.1%}.

{_maps(m)}

![each prompt: a row of base pictures (16x16, enlarged), then the cascade's]({"samples.png"})

Rows, each twice (base, then cascade): {"; ".join(f'"{p}"' for p in shapes_eval.SAMPLE_PROMPTS)}.

Train: `python -m playground.train.imagen --stage base` and `python -m playground.train.imagen --stage sr` (independent and
resumable; run them at once with `--threads 1` each). Measure: `python -m playground.train.evaluate --only imagen`.

Intended use: the Designs section of the playground's Text-to-image tab and the Diffusion tab (the base as a pixel model
with a text prompt). Limits: the shapes grammar's words; 16x16 and 32x32 pictures.
""",
    )
    common.write_card(
        folder.with_name(folder.name + "-sr"),
        metadata=common.text_to_image_card("imagen", "deepfloyd-if", "super-resolution", "synthetic"),
        body=f"""
# imagen-shapes-sr: the super-resolution stage of imagen-shapes (16x16 -> 32x32)

{common.TEACHING_NOTE.format(real="DeepFloyd IF-II")}

`IFSuperResolutionPipeline.from_pretrained(folder)` runs it unchanged, on the base stage's picture. Its card, with
the cascade's figures, is imagen-shapes' (`assets/models/imagen-shapes/README.md`). Train:
`python -m playground.train.imagen --stage sr`.
""",
    )
