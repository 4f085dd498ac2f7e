"""The shapes model's figures, measured by the checker (`shapes_check`), through the playground's own loop.

    python -m playground.train.evaluate --only shapes

Every sample is drawn by `core.diffusion.run` (the run the tabs and the API use) with DDIM and classifier-free
guidance, decoded by the model's autoencoder, and read back by the checker: colour (nearest palette colour),
shape (fill ratio of the bounding box) and place (centroid).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from playground.core.diffusion import cross_attention
from playground.core.diffusion.pictures import decode
from playground.core.diffusion.run import DiffusionRequest, Parts, final_sample
from playground.train import common, shapes_check, shapes_data

GUIDANCE = 5.0  # the card's default guidance scale
STEPS = 50  # DDIM steps
MAPS_BAR = 2.0  # a word map "lands on its object" when its share on it is at least this many times the object's share
MAPS_TARGET = 0.80  # ...for both the colour and the shape word, in at least this share of one-object prompts (the bar)
N_PROMPTS = 200  # prompts per figure
TARGETS = {"colour": 0.90, "shape": 0.85, "place": 0.85, "two_objects": 0.60, "negative_removes_colour": 0.80}
BATCH = 100  # prompts sampled at once


@torch.no_grad()
def draw(components: dict, prompts: list[str], seed: int, *, guidance: float = GUIDANCE, negatives: list[str] | None = None,
         steps: int = STEPS) -> np.ndarray:
    """uint8 [n, 32, 32, 3]: one sample per prompt (row i's noise depends on `seed` and i only)."""
    out = []
    for start in range(0, len(prompts), BATCH):
        chunk = prompts[start:start + BATCH]
        neg = (negatives or [""] * len(prompts))[start:start + BATCH]
        request = DiffusionRequest(prompt=tuple(chunk), negative=tuple(neg), scheduler="DDIM", steps=steps, guidance=guidance,
                                   seed=seed + start)
        img = decode(final_sample(Parts.of(components), request), components["vae"]).clamp(-1, 1)
        out.append(((img + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def _scenes(n: int, seed: int, *, two: bool, heldout: bool = False, coloured: bool = True) -> list[shapes_data.Scene]:
    rng = np.random.default_rng(seed)
    scenes = []
    while len(scenes) < n:
        s = shapes_data.random_scene(rng, heldout=heldout, two_share=1.0 if two else 0.0)
        if coloured == all(o.colour for o in s.objects):
            scenes.append(s)
    return scenes


def _share(values: list[bool | None]) -> float:
    kept = [v for v in values if v is not None]
    return round(sum(kept) / len(kept), 4) if kept else float("nan")


def one_and_two_objects(components: dict, n: int, seed: int, *, heldout: bool = False, guidance: float = GUIDANCE,
                        drawer=draw) -> dict:
    """Colour, shape and place accuracy on n one-object prompts; both objects and the relation on n two-object ones.
    `drawer(components, prompts, seed, guidance=...)` draws them (sd-shapes' run by default; the unCLIP model has its own)."""
    ones, twos = _scenes(n, seed, two=False, heldout=heldout), _scenes(n, seed + 1, two=True, heldout=heldout)
    v1 = [shapes_check.judge(img, s) for img, s in zip(drawer(components, [s.caption() for s in ones], seed, guidance=guidance), ones)]
    v2 = [shapes_check.judge(img, s) for img, s in zip(drawer(components, [s.caption() for s in twos], seed + 1, guidance=guidance), twos)]
    return {"colour": _share([v.colour for v in v1]), "shape": _share([v.shape for v in v1]), "place": _share([v.place for v in v1]),
            "two_objects": _share([v.both for v in v2]), "prompts": n}


def negative_removes_colour(components: dict, n: int, seed: int, guidance: float = GUIDANCE) -> dict:
    """Prompts that leave the colour unsaid ("a large circle"): the colour drawn without a negative prompt, then the
    same noise with that colour as the negative prompt: the share of pictures where it is gone."""
    scenes = _scenes(n, seed, two=False, coloured=False)
    prompts = [s.caption() for s in scenes]
    first = draw(components, prompts, seed, guidance=guidance)
    drawn = [next((f.colour for f in shapes_check.read(img)), None) for img in first]
    again = draw(components, prompts, seed, guidance=guidance, negatives=[c or "" for c in drawn])  # the same rows, the same noise
    keep = [i for i, c in enumerate(drawn) if c is not None]
    again = again[keep]
    gone = [not shapes_check.has_colour(img, drawn[i]) for img, i in zip(again, keep)]
    return {"share": _share(gone), "prompts": len(keep)}


@dataclass
class OnObject:
    """Where one one-object prompt's colour and shape words landed, and how big the drawn object is."""

    colour: float  # share of the colour word's map inside the object
    shape: float  # share of the shape word's map inside the object
    area: float  # the object's share of the picture (what a uniform map would put inside it)


def words_on_object(components: dict, caption: str, seed: int, steps: int = STEPS, guidance: float = GUIDANCE) -> OnObject | None:
    """Run a one-object grammar caption with its word maps and measure them on the object the checker finds (its
    largest blob); None when nothing was drawn. A smaller picture (imagen-shapes' 16x16 base) and its maps are enlarged
    to the checker's 32x32 first (nearest pixel)."""
    from playground.core.diffusion.pictures import to_uint8

    wm = cross_attention.word_maps(Parts.of(components), DiffusionRequest(prompt=caption, seed=seed, steps=steps, guidance=guidance))
    scale = shapes_data.SIZE // wm.image.shape[-1]
    enlarge = lambda x: x.repeat_interleave(scale, -2).repeat_interleave(scale, -1)  # noqa: E731  (nearest pixel; scale 1: as is)
    blobs = shapes_check.read(to_uint8(enlarge(wm.image)[0]).permute(1, 2, 0).numpy())
    if not blobs:
        return None
    mask = torch.from_numpy(blobs[0].mask)
    obj = shapes_data.parse(caption).objects[0]
    on_object = lambda word: cross_attention.mass_inside(enlarge(word_map(wm, word)), mask)  # noqa: E731
    return OnObject(colour=on_object(obj.colour), shape=on_object(obj.shape), area=float(mask.float().mean()))


def word_map(wm: cross_attention.WordMaps, word: str) -> torch.Tensor:
    """The map of `word`: its token's, or the sum of the pieces a tokenizer spells it in (T5 writes "purple" as
    "pur" + "ple")."""
    if word in wm.tokens:
        return wm.maps[wm.tokens.index(word)]
    for start in range(len(wm.tokens)):
        for end in range(start + 1, len(wm.tokens) + 1):
            if "".join(wm.tokens[start:end]) == word:
                return wm.maps[start:end].sum(0)
    raise ValueError(f"{word!r} is not among the prompt's tokens {wm.tokens}")


def word_map_mass(components: dict, n: int, seed: int, guidance: float = GUIDANCE) -> dict:
    """For one-object prompts, the share of the colour word's and the shape word's map on the drawn object (the
    checker's mask of the largest blob), against the object's share of the picture (what a uniform map would put there);
    and the share of prompts in which a word's map puts at least MAPS_BAR times the object's share on it."""
    found = [words_on_object(components, s.caption(), seed + k, guidance=guidance) for k, s in enumerate(_scenes(n, seed, two=False))]
    found = [f for f in found if f is not None]
    colour = [f.colour / f.area >= MAPS_BAR for f in found]
    shape = [f.shape / f.area >= MAPS_BAR for f in found]
    return {"colour_word_on_object": round(float(np.mean([f.colour for f in found])), 4),
            "shape_word_on_object": round(float(np.mean([f.shape for f in found])), 4),
            "object_share_of_image": round(float(np.mean([f.area for f in found])), 4), "prompts": len(found),
            "colour_word_at_bar": round(float(np.mean(colour)), 4), "shape_word_at_bar": round(float(np.mean(shape)), 4),
            "both_at_bar": round(float(np.mean([c and s for c, s in zip(colour, shape)])), 4), "bar": MAPS_BAR}


def maps_met(wm: dict) -> bool | None:
    """Whether the word maps meet the bar (None: measured before the per-prompt figure existed)."""
    if "colour_word_at_bar" not in wm:
        return None
    return min(wm["colour_word_at_bar"], wm["shape_word_at_bar"]) >= MAPS_TARGET


def maps_sentence(wm: dict, trained: str = "") -> str:
    """The card's paragraph on where the colour and shape words land. `trained`: how the model's maps were shaped."""
    share = wm["object_share_of_image"]
    text = (f"Where each word lands (cross-attention, averaged over heads, layers and steps; {wm['prompts']} one-object prompts "
            f"drawn from the grammar with the evaluation's seed): the colour word's map puts **{wm['colour_word_on_object']:.1%}** "
            f"of its mass on the drawn object and the shape word's **{wm['shape_word_on_object']:.1%}**, where the object covers "
            f"{share:.1%} of the picture ({wm['colour_word_on_object'] / share:.2f}x and {wm['shape_word_on_object'] / share:.2f}x "
            "what a map that ignored the object would put there).")
    met = maps_met(wm)
    if met is not None:
        text += (f" Per prompt, the colour word's map puts at least {wm['bar']:g}x the object's share on it in "
                 f"**{wm['colour_word_at_bar']:.0%}** of the prompts and the shape word's in **{wm['shape_word_at_bar']:.0%}** "
                 f"(both: {wm['both_at_bar']:.0%}); target {MAPS_TARGET:.0%} for each: {'met' if met else '**not met**'}.")
    return text + (f" {trained}" if trained else "")


SAMPLE_PROMPTS = (
    "a large red circle",
    "a small blue square on the left",
    "a yellow triangle at the top",
    "a green circle at the bottom",
    "a red circle left of a blue square",
    "a green square above a white circle",
    "a purple triangle",
    "a white circle on the right",
)


def prompt_expansion(components: dict, n: int, seed: int) -> dict:
    """DALL-E 3's prompt expansion, measured: the grammar's prompts as a user might type them (`alt_text.typed`: no
    articles, everyday words), drawn as typed and after `alt_text.expand` rewrites them, on the same noise; the checker
    reads both against the scene the prompt meant."""
    from playground.train.alt_text import expand, typed

    def drawer(rewrite: bool):
        def draw_typed(comps, prompts, seed_, *, guidance=GUIDANCE):
            rng = np.random.default_rng(seed_)
            said = [typed(p, rng) for p in prompts]
            return draw(comps, [expand(p) for p in said] if rewrite else said, seed_, guidance=guidance)
        return draw_typed

    rng = np.random.default_rng(seed)
    examples = [(t, expand(t)) for t in (typed(s.caption(), rng) for s in _scenes(2, seed, two=False) + _scenes(2, seed + 1, two=True))]
    return {"typed": one_and_two_objects(components, n, seed, drawer=drawer(False)),
            "expanded": one_and_two_objects(components, n, seed, drawer=drawer(True)),
            "examples": [{"typed": t, "expanded": e} for t, e in examples]}


def sample_grid(components: dict, folder: Path, per_prompt: int = 6, seed: int = 7) -> None:
    from playground.core.diffusion.pictures import image_grid

    prompts = [p for p in SAMPLE_PROMPTS for _ in range(per_prompt)]
    imgs = torch.from_numpy(draw(components, prompts, seed)).permute(0, 3, 1, 2).float() / 127.5 - 1
    image_grid(imgs, rows=len(SAMPLE_PROMPTS)).resize((2 * (per_prompt * 34 + 2), 2 * (len(SAMPLE_PROMPTS) * 34 + 2))).save(
        folder / "samples.png"
    )


def evaluate(lm, folder: Path, n: int = N_PROMPTS) -> dict:
    components = lm.components
    sample_grid(components, folder)
    figures = {"guidance": GUIDANCE, "ddim_steps": STEPS,
               "grammar": one_and_two_objects(components, n, 100),
               "heldout_pairs": one_and_two_objects(components, n // 2, 200, heldout=True),
               "negative_prompt": negative_removes_colour(components, n // 2, 300),
               "word_maps": word_map_mass(components, 40, 400)}
    figures["guidance_scan"] = {f"{g:g}": one_and_two_objects(components, n // 2, 500, guidance=g) for g in (1.0, 3.0, 7.5)}
    figures["prompt_expansion"] = prompt_expansion(components, n // 2, 900)
    return figures


def targets_met(m: dict) -> dict[str, bool]:
    g = m["grammar"]
    return {"colour": g["colour"] >= TARGETS["colour"], "shape": g["shape"] >= TARGETS["shape"], "place": g["place"] >= TARGETS["place"],
            "two_objects": g["two_objects"] >= TARGETS["two_objects"],
            "negative_removes_colour": m["negative_prompt"]["share"] >= TARGETS["negative_removes_colour"]}


def unet_steps_said(m: dict) -> str:
    runs = m.get("runs") or []
    if len(runs) < 2:
        return f"{m['config']['unet_steps']:,}"
    return f"{sum(r['unet_steps'] for r in runs):,} (" + ", then ".join(
        f"{r['unet_steps']:,} at peak learning rate {r['lr']:g}" for r in runs) + ")"


BEFORE_FLAGS = {"two_share": 0.4, "twins": False, "role_weight": 0.0, "attention_levels": 1, "grounding_weight": 0.0}  # what a run recorded before these flags existed used


def _flags(r: dict) -> str:
    """The command-line flags that made a run (a `metrics["runs"]` entry or the first run's config) differ from
    today's defaults.

    >>> _flags({"two_share": 0.5, "twins": True, "role_weight": 0.1}), _flags({})
    ('', ' --two-share 0.4 --no-twins --role-weight 0')
    """
    from playground.train.shapes import ShapesTrainConfig

    r = {**BEFORE_FLAGS, **r}
    return ((f" --two-share {r['two_share']:g}" if r["two_share"] != ShapesTrainConfig.two_share else "")
            + ((" --twins" if r["twins"] else " --no-twins") if r["twins"] != ShapesTrainConfig.twins else "")
            + (f" --role-weight {r['role_weight']:g}" if r["role_weight"] != ShapesTrainConfig.role_weight else "")
            + (f" --attention-levels {r['attention_levels']}" if r["attention_levels"] != ShapesTrainConfig.attention_levels else "")
            + (f" --grounding-weight {r['grounding_weight']:g}" if r["grounding_weight"] != ShapesTrainConfig.grounding_weight else ""))


def resume_commands(m: dict, folder: str = "sd-shapes", flags: str = "") -> list[str]:
    """The command of each run after the first (each resumed from the saved EMA weights)."""
    base = f"python -m playground.train.shapes --resume assets/models/{folder}" + (f" --out assets/models/{folder}" if folder != "sd-shapes" else "")
    return [f"`{base}{flags} --unet-steps {r['unet_steps']} --lr {r['lr']:g}{_flags(r)}`" for r in (m.get("runs") or [])[1:]]


def _minutes(m: dict) -> str:
    """The training time (a resumed model's runs are listed by `_runs_note`)."""
    if len(m.get("runs") or []) > 1:
        return f"{m['train_minutes']:.0f} min"
    return f"{m['train_minutes']:.0f} min on {m['config']['threads']} CPU threads"


def _runs_note(m: dict) -> str:
    runs = m.get("runs") or []
    if len(runs) < 2:
        return ""
    threads = lambda r: f" ({r['threads']} thread{'s' if r['threads'] > 1 else ''})" if "threads" in r else ""  # noqa: E731
    return (" in all: " + " + ".join(f"{r['minutes']:.0f}{threads(r)}" for r in runs) + " min; each run after the first resumed from the saved EMA "
            "weights with a fresh optimizer (" + "; then ".join(resume_commands(m)) + ")")


def _role_note(m: dict) -> str:
    weights = sorted({r.get("role_weight", BEFORE_FLAGS["role_weight"]) for r in [m["config"], *(m.get("runs") or [])]} - {0.0})
    if not weights:
        return ""
    return (f"; an auxiliary loss (weight {', '.join(f'{w:g}' for w in weights)}) teaches its last two states, which see the whole "
            "caption, to name the left/top and the right/bottom object (a causal encoder's first words cannot see the relation "
            "that follows them); its linear head is not saved")


def _levels(cfg: dict, levels: int | None = None) -> str:
    """Where the UNet works and where it reads the text (`levels`: how many levels cross-attend, if not the config's).

    >>> _levels({"unet_channels": (32, 64)}, 2)
    'widths (32, 64) at 16x16 and 8x8, cross-attention to the text at 16x16 and 8x8 (down and up) and 8x8 (middle)'
    """
    sides = [f"{16 >> k}x{16 >> k}" for k in range(len(cfg["unet_channels"]))]
    both = lambda xs: ", ".join(xs[:-1]) + " and " + xs[-1] if len(xs) > 1 else xs[0]  # noqa: E731
    attend = sides[len(sides) - (levels or cfg.get("attention_levels", 1)):]
    where = f"{sides[-1]} (down, middle and up)" if attend == sides[-1:] else f"{both(attend)} (down and up) and {sides[-1]} (middle)"
    return f"widths {tuple(cfg['unet_channels'])} at {both(sides)}, cross-attention to the text at {where}"


def _data(m: dict) -> str:
    cfg = {**BEFORE_FLAGS, **m["config"]}
    if not cfg["twins"]:
        return f"{cfg['n_images']:,} pictures ({cfg['two_share']:.0%} with two objects)"
    return (f"{m['pictures']:,} pictures: {cfg['n_images']:,} scenes ({cfg['two_share']:.0%} with two objects), each two-object one "
            "also drawn as its minimal pair (the same shapes swapped, the inverse relation)")


def _last(m: dict, key: str, default):
    """A setting as the last run left it (a resumed run can change it), else the first run's."""
    for r in reversed([m["config"], *(m.get("runs") or [])]):
        if key in r:
            return r[key]
    return default


def grounding_weight(m: dict) -> float:
    """The weight of the grounding loss the model's last run trained with (0: its maps were never asked to land)."""
    return _last(m, "grounding_weight", 0.0)


def grounding_note(m: dict) -> str:
    weight = grounding_weight(m)
    if not weight:
        return ("Nothing in its training asks the maps to land anywhere: what they show is what the attention learned on "
                "its own from the pictures.")
    where = "with cross-attention grown to 16x16 as well as 8x8, " if _last(m, "attention_levels", 1) > 1 else ""
    return (f"These maps land because training asked them to: a later run {where}added TokenCompose's token loss (weight {weight:g}; "
            "Wang et al. 2024; `playground/train/grounding.py`), which puts each object word's attention on its object's pixels in "
            "the training pictures. Stable Diffusion's maps (DAAM) localize without such a loss, from scale and data this model "
            "does not have.")


def _objective(cfg: dict) -> str:
    g = cfg["snr_gamma"]
    if cfg.get("prediction_type", "epsilon") == "v_prediction":
        return f"v-prediction (as Stable Diffusion 2) with loss weight min(1, {g:g} / (SNR + 1))"
    return f"ε-prediction with Min-SNR-{g:g} weighting"


def write_card(folder: Path, m: dict) -> None:
    cfg, params, g, h = m["config"], m["parameters"], m["grammar"], m["heldout_pairs"]
    met = targets_met(m)
    ok = lambda k: "met" if met[k] else "**not met**"  # noqa: E731
    wm = m["word_maps"]
    scan = "\n".join(f"| {k} | {v['colour']:.0%} | {v['shape']:.0%} | {v['place']:.0%} | {v['two_objects']:.0%} |"
                     for k, v in m["guidance_scan"].items())
    status = "" if all(met.values()) else "**Status: below some of its targets** (marked below).\n"
    common.write_card(
        folder,
        metadata={
            "license": "mit",
            "library_name": "diffusers",
            "pipeline_tag": "text-to-image",
            "tags": ["teaching", "stable-diffusion", "text-to-image", "classifier-free-guidance", "synthetic"],
        },
        body=f"""
# sd-shapes: a Stable-Diffusion-shaped text-to-image model of coloured shapes (32x32)

{common.TEACHING_NOTE.format(real="Stable Diffusion")}

{status}
| | |
|---|---|
| pipeline | `StableDiffusionPipeline.from_pretrained(folder)` runs it unchanged |
| text | `CLIPTokenizer` (byte-level BPE whose merges make every word of the grammar one token) and `CLIPTextModel` ({cfg["text_layers"]} layers, width {cfg["text_width"]}, {params["text_encoder"]:,} parameters), trained from scratch with the UNet{_role_note(m)} |
| UNet | `UNet2DConditionModel`, {_levels(cfg, _last(m, "attention_levels", 1))}, {params["unet"]:,} parameters |
| autoencoder | `AutoencoderKL`: a 3x32x32 picture <-> a {cfg["latent_channels"]}x16x16 latent ({params["vae"]:,} parameters; reconstruction MSE {m["reconstruction_mse"]:.4f}, pixels in [-1, 1]) |
| data | {_data(m)}, drawn by `playground/train/shapes_data.py`: one or two flat shapes on black, captions from its grammar |
| training | autoencoder {cfg["ae_steps"]:,} steps; UNet and text encoder {unet_steps_said(m)} AdamW steps of {cfg["batch_size"]}, Stable Diffusion's scaled-linear schedule (1,000 steps), {_objective(cfg)}, prompt dropout {cfg["prompt_dropout"]:.0%} (the empty prompt: classifier-free guidance), EMA weights; seed {cfg["seed"]}; {_minutes(m)}{_runs_note(m)} |

Vocabulary: colours {", ".join(shapes_data.COLOURS)}; shapes {", ".join(shapes_data.SHAPES)} (the triangle points up); sizes small, large;
places on the left, on the right, at the top, at the bottom, in the centre; relations {", ".join(shapes_data.RELATIONS)}.
Captions: "a large red circle", "a small blue square on the left", "a red circle left of a blue square"; one in ten
one-object captions leaves the colour unsaid ("a large circle").

**Never drawn in training** (held out, to test composition): {", ".join(" ".join(p) for p in shapes_data.HELDOUT_PAIRS)}.

## Figures

Measured by a checker that is not a network (`playground/train/shapes_check.py`: nearest palette colour, fill ratio of
the bounding box, centroid), {m["ddim_steps"]} DDIM steps at guidance {m["guidance"]:g}, {g["prompts"]} prompts each, drawn from the grammar:

| figure | value | target |
|---|---|---|
| one object: colour | **{g["colour"]:.1%}** | 90%: {ok("colour")} |
| one object: shape | **{g["shape"]:.1%}** | 85%: {ok("shape")} |
| one object: place (when said) | **{g["place"]:.1%}** | 85%: {ok("place")} |
| two objects: both right, and their relation | **{g["two_objects"]:.1%}** | 60%: {ok("two_objects")} |
| a negative prompt naming the drawn colour removes it (same noise, {m["negative_prompt"]["prompts"]} colourless prompts) | **{m["negative_prompt"]["share"]:.1%}** | 80%: {ok("negative_removes_colour")} |
| held-out pairs, one object ({h["prompts"]} prompts): colour / shape | {h["colour"]:.1%} / {h["shape"]:.1%} | reported |
| held-out pairs, two objects (one pair held out): both right | {h["two_objects"]:.1%} | reported |

{maps_sentence(wm, grounding_note(m))}

Guidance scale against the figures ({m["guidance_scan"]["1"]["prompts"]} prompts each):

| guidance | colour | shape | place | two objects |
|---|---|---|---|---|
{scan}

![{STEPS}-step DDIM samples at guidance {GUIDANCE:g}; one row per prompt: {"; ".join(SAMPLE_PROMPTS)}](samples.png)

Rows: {"; ".join(f'"{p}"' for p in SAMPLE_PROMPTS)}.

Train: `python -m playground.train.shapes{_flags(cfg)}`{" (then the resumed runs above)" if len(m.get("runs") or []) > 1 else ""}. Measure: `python -m playground.train.evaluate --only shapes`.

Intended use: showing how a prompt steers latent diffusion (text encoder, cross-attention, classifier-free guidance,
negative prompts) in the playground, offline. Limits: 32x32 pictures of its grammar's words; nothing else.
""",
    )
