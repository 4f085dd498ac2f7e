"""Text-to-image tab: how a prompt steers latent diffusion, and where each word lands (cross-attention maps)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from playground.core.diffusion import compare, cross_attention
from playground.core.diffusion.pictures import picture
from playground.core.diffusion.run import MAX_GUIDANCE, MAX_STEPS, DiffusionRequest
from playground.core.inputs import require_choice, require_int
from playground.core.render import word_maps as word_map_views
from playground.models import ModelLoader
from playground.models.zerogpu import GpuBudget, gpu_task
from playground.ui.clip_section import build_clip_section
from playground.ui.common import (
    TabView,
    api_endpoint,
    bind,
    clear_first,
    examples,
    figure,
    form_event,
    launch_alone,
    load_diffusion,
    png_file,
    user_errors,
)
from playground.ui.designs_section import build_designs_section
from playground.ui.unclip_section import build_unclip_section

EXPLAINER = """
### Text-to-image: how a prompt steers latent diffusion
The **text encoder** (CLIP's, in Stable Diffusion) turns the prompt into one vector per token. At every denoising
step, the UNet's **cross-attention** layers let each image position read those vectors: position i attends to token j
with weight softmax_j(q_i·k_j/√d). Averaged over heads, layers and steps, token j's weights form a map of where that
word's meaning went (DAAM, Tang et al. 2023). **Classifier-free guidance** runs the UNet with the prompt and with the
empty prompt and extrapolates, ε̂ = ε(∅) + w·(ε(prompt) − ε(∅)); a **negative prompt** takes the empty prompt's place,
so the step pushes away from what it names. Offline, `segmind/tiny-sd` runs **sd-shapes**, a Stable-Diffusion-shaped
model trained here on coloured shapes; its card names the four colour-shape pairs it never saw. Its word maps land on
their objects because its training asked them to (a grounding loss, as TokenCompose; so do alttext-shapes', the same
recipe); imagen-shapes' never were: compare them (each card gives the figure).
"""
# sd-shapes (offline), and the other embedded designs with text cross-attention: Imagen's pixel base on a frozen T5 (its
# tokenizer spells the grammar in pieces, so its maps are of pieces) and sd-shapes' recipe trained on alt text
MODEL_CHOICES = ["segmind/tiny-sd", "assets/models/imagen-shapes", "assets/models/alttext-shapes"]
DEFAULT_GUIDANCE = 5.0  # the embedded model's card measures at this scale
EXAMPLES = [
    ["a large red circle", ""],
    ["a small blue square on the left", ""],
    ["a yellow triangle at the top", ""],
    ["a red circle left of a blue square", ""],
    ["a green square above a white circle", ""],
    ["a purple triangle", ""],  # a held-out pair: never drawn in training
    ["a large circle", "red"],
]
BUDGET = GpuBudget(30, 1.0, "steps")
# with the comparison: a run of SAMPLES images per scale as well (a batch costs about what one image does on a GPU)
COMPARE_BUDGET = GpuBudget(30, 1.0 + len(compare.SCALES), "steps")
# the embedded sd-shapes' whole world, as its training grammar draws it (playground/train/shapes_data.py)
SHAPES_WORLD = ("sd-shapes draws only its shapes world: one or two flat shapes on black, in the words of its grammar: "
                "a [small | large] (red | green | blue | yellow | purple | white) (circle | square | triangle) "
                "[on the left | on the right | at the top | at the bottom | in the centre], or two such objects joined by "
                "left of | right of | above | below. For example: 'a small blue square on the left', 'a red circle left of a blue "
                "square'.")
_DOWNLOADS = Path(tempfile.gettempdir()) / "playground-word-maps"


@dataclass(frozen=True)
class WordMapsRequest:
    """One text-to-image run whose words are mapped, as the page (or /cross_attention) asked it."""

    model: str  # a Stable-Diffusion-shaped preset, Hub id or folder
    prompt: str  # what to draw
    negative: str  # what to push away from ("" for none)
    seed: Any  # x_T's seed
    steps: Any  # DDIM steps
    guidance: Any  # w
    step: Any = 0  # average the maps of this 1-based step only (0: every step)
    compare: str = "no"  # "yes": also draw the prompt at every scale of compare.SCALES from the same noise

    def diffusion(self) -> DiffusionRequest:
        """The run, checked (before any model loads), as every diffusion caller's is."""
        return DiffusionRequest(prompt=self.prompt, negative=self.negative or "", seed=self.seed, steps=self.steps,
                                guidance=self.guidance, snapshots=False).checked()


@dataclass(frozen=True)
class WordMapsView:
    """What the page shows of a run, in the order of the event's outputs."""

    status: str  # what the maps are
    image: Any  # the final image, enlarged
    words: Any  # (overlay, token) per prompt token
    files: list[str]  # the image (PNG) and the maps (JSON)
    comparison: Any = None  # (picture, caption) per scale and sample, a row per scale; None when not asked
    comparison_notes: str = ""  # what each row is, and how many follow the prompt (the embedded model's checker)

    def outputs(self) -> tuple:
        return self.status, png_file(self.image), png_file(self.words), self.files, png_file(self.comparison), self.comparison_notes


def compute(loader: ModelLoader, request: WordMapsRequest, progress=None) -> cross_attention.WordMaps:
    """Check the request before any model loads, then run it: the WordMaps."""
    diffusion = request.diffusion()
    step = require_int(request.step if request.step not in (None, "") else 0, "maps from step", low=0, high=diffusion.steps)
    _, model = load_diffusion(loader, request.model, progress)
    return cross_attention.word_maps(model, diffusion, step=step or None)


def _prompt_notes(loader: ModelLoader, request: WordMapsRequest) -> list[str]:
    """What the page says before the maps: the prompt cut at the text encoder's positions, and (the embedded model)
    the words it never learned, with the grammar it was trained on."""
    from playground.models import SourceKind

    _, model = load_diffusion(loader, request.model)
    reading = cross_attention.read_prompt(model.tokenizer, request.prompt)
    notes = []
    if reading.cut:
        notes.append(f"**The prompt was cut.** It is {reading.tokens} tokens and this text encoder reads {reading.limit}: the model "
                     f"read only \"{reading.kept}\".")
    if reading.split_words and model.source.kind is SourceKind.EMBEDDED:
        notes.append(f"**Words this model never learned:** {', '.join(repr(w) for w in reading.split_words)} (its tokenizer can "
                     f"only spell them letter by letter, so their maps are of letters). {SHAPES_WORLD}")
    return notes


SCALE_MEANING = {0.0: "the empty prompt only: the prompt is ignored", 1.0: "the prompt's model alone: no guidance"}


def guidance_comparison(loader: ModelLoader, request: WordMapsRequest) -> tuple[list, str]:
    """The prompt at w = 0, 1, 3, 7.5 from the same noise: (gallery items, a row per scale; the notes). On the embedded
    model, the shapes checker (the one its card's figures come from) counts the pictures that follow the prompt."""
    from PIL import Image

    from playground.models import SourceKind

    _, model = load_diffusion(loader, request.model)
    c = compare.compare_guidance(model, request.diffusion())
    verdicts = None
    if model.source.kind is SourceKind.EMBEDDED:
        from playground.train import shapes_check, shapes_data

        try:
            scene = shapes_data.parse(c.request.prompt)
        except ValueError:
            scene = None
        if scene is not None:
            verdicts = [[shapes_check.follows(shapes_check.judge(img, scene)) for img in row] for row in c.images]
    items = []
    for i, w in enumerate(c.scales):
        for j, img in enumerate(c.images[i]):
            mark = "" if verdicts is None else (" ✓" if verdicts[i][j] else " ✗")
            picture_ = Image.fromarray(img)
            scale = max(1, 96 // max(picture_.size))
            items.append((picture_.resize((picture_.width * scale, picture_.height * scale), Image.NEAREST), f"w = {w:g} · {j + 1}{mark}"))
    rows = ["| w | what it is |" + (" follows the prompt (✓, the shapes checker) |" if verdicts else ""),
            "|---|---|" + ("---|" if verdicts else "")]
    for i, w in enumerate(c.scales):
        meaning = SCALE_MEANING.get(w, "guided: pushed away from the empty prompt")
        rows.append(f"| {w:g} | {meaning} |" + (f" {sum(verdicts[i])} of {len(verdicts[i])} |" if verdicts else ""))
    how = (f"Each row is one guidance scale; sample i starts from the same noise in every row (seed {c.request.seed}, "
           f"{c.request.steps} DDIM steps).")
    if verdicts is None:
        how += (" The checker that marks a picture ✓ reads only the embedded model's shapes world, so there are no marks for "
                "this model or prompt.")
    return items, "\n\n".join([how, "\n".join(rows)])


@user_errors
def on_generate(loader: ModelLoader, request: WordMapsRequest, progress=gr.Progress()) -> tuple:
    """(status, the final image, the word overlays, downloads: the image PNG and the maps JSON, the guidance comparison
    and its notes)."""
    wanted = require_choice(request.compare if request.compare is not None else "no", "compare", ("no", "yes")) == "yes"
    wm = compute(loader, request, progress)
    _DOWNLOADS.mkdir(parents=True, exist_ok=True)
    image_file = Path(tempfile.mkstemp(prefix="text-to-image-", suffix=".png", dir=_DOWNLOADS)[1])
    picture(wm.image, 0).save(image_file)
    data_file = Path(tempfile.mkstemp(prefix="word-maps-", suffix=".json", dir=_DOWNLOADS)[1])
    data_file.write_text(json.dumps(word_map_views.to_json(wm)))
    which = "every step" if wm.step is None else f"step {wm.step + 1} of {wm.steps}"
    asked = request.diffusion()
    notes = _prompt_notes(loader, request)
    status = (f"{wm.steps} steps, guidance {asked.guidance:g}, seed {asked.seed}: each map is token j's cross-attention, averaged over "
              f"heads, layers and {which}, and sums to 1. Bright: where the image read that word.")
    status = "\n\n".join([*notes, status])
    comparison, comparison_notes = guidance_comparison(loader, request) if wanted else (None, "")
    return WordMapsView(status, picture(wm.image, 256), word_map_views.word_gallery(wm), [str(image_file), str(data_file)],
                        comparison, comparison_notes).outputs()


@user_errors
def cross_attention_api(loader: ModelLoader, model: str, prompt: str, seed: int, steps: int, guidance_scale: float) -> dict:
    """One text-to-image run and where each prompt token landed.

    Returns {"tokens": [str], "maps": [token][H][W] (at the image's size, each summing to 1: the token's cross-attention
    averaged over heads, layers and steps), "image": base64 PNG of the final image at native size, "steps", "step": null}.
    """
    request = WordMapsRequest(model=model, prompt=prompt, negative="", seed=seed, steps=steps, guidance=guidance_scale)
    return word_map_views.to_json(compute(loader, request))


def build_text_to_image_tab(loader: ModelLoader) -> TabView:
    """Prompt, image and word maps, CLIP space, DALL-E 2 and the designs side by side. Named API endpoints:
    `/cross_attention`, `/clip`, `/unclip`, `/variations`, `/designs`."""
    with gr.Column():
        gr.Markdown(EXPLAINER)
        with gr.Row():
            model = gr.Dropdown(MODEL_CHOICES, value=MODEL_CHOICES[0], allow_custom_value=True, scale=2, elem_id="t2i-model",
                                label="Model: segmind/tiny-sd (offline: sd-shapes), the embedded imagen-shapes or alttext-shapes, or a "
                                      "Stable Diffusion id or folder")
            seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="t2i-seed")
        with gr.Row():
            prompt = gr.Textbox(value=EXAMPLES[0][0], label="Prompt", scale=2, max_length=500, elem_id="t2i-prompt")
            negative = gr.Textbox(value="", label="Negative prompt (pushed away from)", max_length=500, elem_id="t2i-negative")
        examples(EXAMPLES, [prompt, negative], "Examples (the embedded model's grammar; 'a purple triangle' was never drawn in training)",
                 labels=[p + (f" (negative prompt: {n})" if n else "") for p, n in EXAMPLES])
        with gr.Row(elem_classes=["option-row"]):
            guidance = gr.Slider(0, MAX_GUIDANCE, value=DEFAULT_GUIDANCE, step=0.5, label="Guidance scale w", elem_id="t2i-guidance")
            steps = gr.Slider(1, MAX_STEPS, value=50, step=1, label="DDIM steps", elem_id="t2i-steps")
            step = gr.Slider(0, MAX_STEPS, value=0, step=1, label="Maps from one step (0: all steps)", elem_id="t2i-step")
        compare_scales = gr.Radio([("No", "no"), ("Yes: the same noise at w = " + ", ".join(f"{w:g}" for w in compare.SCALES) +
                                    f", {compare.SAMPLES} samples each", "yes")], value="no", elem_id="t2i-compare",
                                  label="Also compare guidance scales")
        run = gr.Button("Generate and map the words", variant="primary", elem_id="t2i-run")
        status = gr.Markdown(elem_id="t2i-status")
        with gr.Row():
            image = figure("Final image", interactive=False, height=256, elem_id="t2i-image")
            with gr.Column(scale=3):
                gr.Markdown("Where each word lands (cross-attention over the image)", elem_classes=["picture-caption"])
                words = gr.Gallery(label="Where each word lands", show_label=False, columns=4, height="auto", object_fit="contain",
                                   elem_id="t2i-words")
        files = gr.File(label="Downloads: the image (PNG) and the maps (JSON)", file_count="multiple", elem_id="t2i-files")
        with gr.Accordion("Guidance compared: the same noise at each scale", open=True, elem_id="t2i-compare-section"):
            gr.Markdown("Set *Also compare guidance scales* to Yes and generate: each row below is one scale w, each column one "
                        "starting noise. w = 0 ignores the prompt; larger w follows it more closely, at the cost of variety.")
            comparison_notes = gr.Markdown(elem_id="t2i-compare-notes")
            comparison = gr.Gallery(label="Guidance compared", show_label=False, columns=compare.SAMPLES, height="auto",
                                    object_fit="contain", elem_id="t2i-compare-grid")
        generate = form_event(gpu_task(bind(on_generate, loader), COMPARE_BUDGET), WordMapsRequest,
                              {"model": model, "prompt": prompt, "negative": negative, "seed": seed, "steps": steps, "guidance": guidance,
                               "step": step, "compare": compare_scales})
        clear_first(run.click, [status]).then(generate.event, generate.inputs, [status, image, words, files, comparison, comparison_notes],
                                              api_visibility="private")
        api_endpoint(cross_attention_api, loader, api_name="cross_attention", budget=BUDGET)
        clip = build_clip_section(loader)
        dalle2 = build_unclip_section(loader)
        side_by_side = build_designs_section(loader)
    return TabView(
        inputs={"model": model, "prompt": prompt, "negative": negative, "seed": seed, "steps": steps, "guidance": guidance,
                "compare": compare_scales, "clip_texts": clip.texts,
                "unclip_prompt": dalle2.prompt, "designs_prompt": side_by_side.prompt},
        run=("t2i-run",),
        forms={"t2i-run": generate, "designs-run": side_by_side.form},
    )


if __name__ == "__main__":  # run this tab on its own
    launch_alone(build_text_to_image_tab)
