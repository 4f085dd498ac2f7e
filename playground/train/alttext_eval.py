"""alttext-shapes' figures against sd-shapes' (DALL-E 3's finding), measured by the shapes checker.

    python -m playground.train.evaluate --only alttext

alttext-shapes is sd-shapes' recipe (the same pictures, seed, architecture, steps) trained on alt-text-like captions
(`alt_text.alt_caption`); it is measured exactly as sd-shapes is (`shapes_eval.evaluate`: the same prompts and seeds,
full descriptive prompts), and DALL-E 3's prompt expansion is measured on both models: the same prompts as a user
might type them, drawn as typed and expanded by rules.
"""

from __future__ import annotations

from pathlib import Path

from playground.train import alt_text, common, shapes_data, shapes_eval


def caption_kinds(cfg: dict) -> dict[str, float]:
    """The share of each kind of caption alttext-shapes was trained on (its own pictures' captions, re-drawn)."""
    _, captions = shapes_data.dataset(5000, cfg["seed"], two_share=cfg["two_share"])
    _, kinds = alt_text.alt_captions(captions, cfg["seed"] + 1)
    return {k: round(kinds.count(k) / len(kinds), 3) for k in alt_text.ALT_RATES}


def evaluate(alt, sd, folder: Path, n: int = shapes_eval.N_PROMPTS) -> dict:
    figures = shapes_eval.evaluate(alt, folder, n)
    sd_metrics = common.load_metrics(common.MODELS_DIR / "sd-shapes")
    figures["sd_shapes_same_prompts"] = {"grammar": sd_metrics["grammar"], "heldout_pairs": sd_metrics["heldout_pairs"],
                                         "prompt_expansion": shapes_eval.prompt_expansion(sd.components, n // 2, 900)}
    figures["caption_kinds"] = caption_kinds(common.load_metrics(folder)["config"])
    return figures


def _row(name: str, a: dict, b: dict) -> str:
    return f"| {name} | {a['colour']:.1%} / {a['shape']:.1%} / {a['place']:.1%} / {a['two_objects']:.1%} | " \
           f"{b['colour']:.1%} / {b['shape']:.1%} / {b['place']:.1%} / {b['two_objects']:.1%} |"


def _grounding(m: dict) -> str:
    note = shapes_eval.grounding_note(m)
    if not shapes_eval.grounding_weight(m):
        return note
    return (note + f" Alt text is grounded only where a caption is in the grammar (its full captions, {m['caption_kinds']['full']:.1%} "
            "of them): \"a red thing\" names no object's pixels reliably.")


def _then(m: dict) -> str:
    """sd-shapes' later runs, repeated on this model (the same steps, learning rate and flags)."""
    later = shapes_eval.resume_commands(m, "alttext-shapes", " --captions alt-text")
    return (", then " + ", then ".join(later) + " (sd-shapes' later runs, the same)") if later else ""


def write_card(folder: Path, m: dict) -> None:
    cfg, sd = m["config"], m["sd_shapes_same_prompts"]
    pe, sd_pe = m["prompt_expansion"], sd["prompt_expansion"]
    kinds = m["caption_kinds"]
    rates = ", ".join(f"{k} {v:.0%}" for k, v in alt_text.ALT_RATES.items())
    examples = "; ".join(f'"{e["typed"]}" -> "{e["expanded"]}"' for e in pe["examples"])
    common.write_card(
        folder,
        metadata=common.text_to_image_card("stable-diffusion", "text-to-image", "dall-e-3", "alt-text", "synthetic"),
        body=f"""
# alttext-shapes: sd-shapes' recipe trained on alt text (DALL-E 3's baseline)

{common.TEACHING_NOTE.format(real="DALL-E 3 or Stable Diffusion")}

DALL-E 3 (Betker et al. 2023) found that the same model follows prompts much better when it is trained on descriptive
captions instead of the alt text a web crawl gives. This is the shapes world's version of that experiment:
`StableDiffusionPipeline.from_pretrained(folder)` runs it unchanged, and it is sd-shapes in every respect (the same
{m["pictures"]:,} pictures and seed, autoencoder recipe, text encoder and UNet sizes, {shapes_eval.unet_steps_said(m)} steps, {m["train_minutes"]:.0f} min on
{cfg["threads"]} CPU thread(s)) except its captions: each picture's caption was rewritten by `playground/train/alt_text.py`
into alt text, independently, at the rates {rates} (measured on the training captions: {", ".join(f"{k} {v:.1%}" for k, v in kinds.items())}):
junk says nothing ("untitled", "img 0412"), terse names one word of one object ("a red thing"), partial drops each colour
(and a lone object's size and place) half the time and the relation always ("a circle and a blue square"), wrong swaps
one colour, shape or relation. Its vocabulary adds alt text's words ({", ".join(alt_text.ALT_WORDS)}).

## Figures, against sd-shapes on the same full prompts

The checker and prompts of sd-shapes' card ({m["ddim_steps"]} DDIM steps, guidance {m["guidance"]:g}; {m["grammar"]["prompts"]} prompts each):

| prompts | alttext-shapes: colour / shape / place / two objects | sd-shapes (descriptive captions) |
|---|---|---|
{_row("the grammar's", m["grammar"], sd["grammar"])}
{_row("held-out pairs", m["heldout_pairs"], sd["heldout_pairs"])}

{shapes_eval.maps_sentence(m["word_maps"], _grounding(m))}

## Prompt expansion (DALL-E 3's other half)

The same prompts as a user might type them (no articles, everyday words: {examples}), drawn as typed and after
`alt_text.expand` rewrites them into the grammar's descriptive form by rules ({pe["typed"]["prompts"]} prompts each, the same noise):

| model | typed: colour / shape / place / two objects | expanded |
|---|---|---|
| alttext-shapes | {pe["typed"]["colour"]:.1%} / {pe["typed"]["shape"]:.1%} / {pe["typed"]["place"]:.1%} / {pe["typed"]["two_objects"]:.1%} | {pe["expanded"]["colour"]:.1%} / {pe["expanded"]["shape"]:.1%} / {pe["expanded"]["place"]:.1%} / {pe["expanded"]["two_objects"]:.1%} |
| sd-shapes | {sd_pe["typed"]["colour"]:.1%} / {sd_pe["typed"]["shape"]:.1%} / {sd_pe["typed"]["place"]:.1%} / {sd_pe["typed"]["two_objects"]:.1%} | {sd_pe["expanded"]["colour"]:.1%} / {sd_pe["expanded"]["shape"]:.1%} / {sd_pe["expanded"]["place"]:.1%} / {sd_pe["expanded"]["two_objects"]:.1%} |

![samples: one row per prompt]({"samples.png"})

Train: `python -m playground.train.shapes --captions alt-text --out assets/models/alttext-shapes` (resumable: a checkpoint
every 500 steps){_then(m)}. Measure: `python -m playground.train.evaluate --only alttext`.

Intended use: the Designs section of the playground's Text-to-image tab, beside sd-shapes. Limits: 32x32 pictures of the
shapes grammar's words; nothing else.
""",
    )
