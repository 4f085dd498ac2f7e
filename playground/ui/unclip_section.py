"""The Text-to-image tab's "DALL-E 2, stage by stage" section: caption -> prior -> decoder on the embedded unclip-shapes,
streamed, beside sd-shapes on the same prompt; and variations of a picture (`/unclip`, `/variations`)."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from playground.core.cache import per_object
from playground.core.diffusion import unclip
from playground.core.diffusion.pictures import picture, pixels
from playground.core.diffusion.run import DiffusionRequest, final_sample
from playground.core.render import clip as clip_views
from playground.core.render.word_maps import png_base64
from playground.errors import InputError
from playground.models import Family, ModelLoader
from playground.models.zerogpu import GpuBudget, gpu_task
from playground.ui.common import (
    api_endpoint,
    bind,
    caption_row,
    checked_image,
    clear_first,
    examples,
    form_event,
    load_diffusion,
    user_errors,
)

UNCLIP_MODEL = "assets/models/unclip-shapes"  # DALL-E 2's design on clip-shapes (python -m playground.train.unclip)
SD_MODEL = "segmind/tiny-sd"  # offline: sd-shapes, the same world drawn by Stable Diffusion's design
SD_GUIDANCE = 5.0  # sd-shapes' card measures at this scale
POOL = 300  # pictures drawn (seed 2024) to find an embedding's nearest
NEAREST = 5  # captions (and pictures) listed per embedding
FRAME_INTERVAL_S = 0.25  # while streaming, the decoder's preview goes out at most this often
BUDGET = GpuBudget(30, 1.0, "steps")  # the prior (25 steps), the decoder's steps, sd-shapes' 50 steps beside it
VARIATIONS_BUDGET = GpuBudget(20, 0.5, "steps")
EXPLAINER = """
#### DALL-E 2, stage by stage, beside Stable Diffusion
DALL-E 2 (Ramesh et al. 2022) draws in two stages. The **prior** turns the caption's CLIP text embedding into a CLIP
**image** embedding (64 numbers here); the **decoder**, a diffusion model, draws a picture from that image embedding
(here it also reads the caption, as Stable unCLIP's decoder does; it was trained with the caption dropped half the time).
The embedded **unclip-shapes** is a `StableUnCLIPPipeline` folder: clip-shapes' towers, prior-shapes' prior, and a
decoder fine-tuned from sd-shapes' UNet in the same latent space, so the two designs differ only in what the diffusion
model is conditioned on. Below: both embeddings and their nearest captions and pictures, the decoder's steps (x̂_0, the
picture each step predicts), and the same caption drawn by sd-shapes, each read by the shapes checker.
Because the decoder reads an image embedding, a picture's own CLIP embedding gives **variations**: the same things, drawn
again (the caption is empty; only the embedding says what to draw). Its limits: sd-shapes' world only (32x32 pictures
of one or two flat shapes, in the grammar's words); its text towers read 16 tokens and cut the rest.
"""
EXAMPLES = [["a large red circle"], ["a small blue square on the left"], ["a red circle left of a blue square"],
            ["a green square above a white circle"], ["a purple triangle"]]  # a purple triangle: a pair never drawn in training
DIFFERENCE_ROWS = (  # (what, sd-shapes, unclip-shapes)
    ("stages", "one: caption -> picture",
     "two: caption -> CLIP image embedding (the prior) -> picture (the decoder)"),
    ("text encoder", "a small CLIP-style text encoder trained with the UNet",
     "clip-shapes' text tower (trained contrastively on pictures) for the prior; sd-shapes' encoder for the decoder's cross-attention"),
    ("the diffusion model is conditioned on", "the caption's token states (cross-attention)",
     "the image embedding (added to the timestep embedding) and the caption's token states (dropped 50% in training)"),
    ("where it runs", "4x16x16 latents of sd-shapes' autoencoder", "the same latents, the same autoencoder"),
    ("variations of a picture", "no (image-to-image re-noises the pixels instead)",
     "yes: encode the picture with CLIP, decode the embedding again"),
)
DIFFERENCES = "\n".join(["| | sd-shapes (Stable Diffusion's design) | unclip-shapes (DALL-E 2's design) |", "|---|---|---|",
                         *(f"| {a} | {b} | {c} |" for a, b, c in DIFFERENCE_ROWS)])


def load_unclip(loader: ModelLoader, progress=None) -> Any:
    """The embedded unCLIP pipeline, or an error that says how to build it."""
    from playground.models.sources import SourceError

    try:
        return loader.load(UNCLIP_MODEL, Family.LATENT_DIFFUSION, progress=progress)
    except SourceError as exc:
        raise InputError(f"The embedded DALL-E 2 model ({UNCLIP_MODEL}) is not here: build it with "
                         "`python -m playground.train.unclip`.") from exc


@per_object
def _held(unet: Any) -> Any:
    """A slot that lives as long as a loaded model's UNet (the loader may evict the model; the slot then goes too)."""
    import threading
    from types import SimpleNamespace

    return SimpleNamespace(value=None, lock=threading.Lock())


def neighbours(model: Any) -> tuple[list[str], Any, np.ndarray, list[str], Any]:
    """Once per loaded model: the grammar's fully specified captions with their unit CLIP text embeddings, and POOL drawn
    pictures (seed 2024) with their captions and unit CLIP image embeddings (the folder's own towers)."""
    slot = _held(model.model)
    with slot.lock:
        if slot.value is None:
            slot.value = _neighbours(model)
        return slot.value


def _neighbours(model: Any) -> tuple[list[str], Any, np.ndarray, list[str], Any]:
    import torch

    from playground.core.diffusion.prior import encode_captions
    from playground.train import shapes_data

    parts = model.components
    captions = shapes_data.single_captions() + shapes_data.pair_captions()
    text = torch.cat([encode_captions(parts["prior_text_encoder"], parts["prior_tokenizer"], captions[i: i + 512])[0]
                      for i in range(0, len(captions), 512)])
    pictures, pool_captions = shapes_data.dataset(POOL, 2024)
    with torch.no_grad():
        images = torch.cat([unclip.picture_embedding(model, list(pictures[i: i + 100])) for i in range(0, POOL, 100)])
    unit = lambda x: torch.nn.functional.normalize(x.float().cpu(), dim=-1)  # noqa: E731
    return captions, unit(text), pictures, pool_captions, unit(images)


def nearest(model: Any, vector: Any, k: int = NEAREST) -> tuple[list[tuple[str, float]], list[tuple[np.ndarray, str, float]]]:
    """An embedding's k nearest grammar captions and drawn pictures, with their cosines."""
    import torch

    captions, text, pictures, pool_captions, images = neighbours(model)
    q = torch.nn.functional.normalize(vector.float().cpu(), dim=-1)
    cap_cos, pic_cos = text @ q, images @ q
    return ([(captions[i], round(float(cap_cos[i]), 4)) for i in cap_cos.topk(k).indices.tolist()],
            [(pictures[i], pool_captions[i], float(pic_cos[i])) for i in pic_cos.topk(k).indices.tolist()])


def reading(img: np.ndarray, prompt: str | None = None) -> str:
    """The shapes checker's reading of a picture (what it finds), and against the caption's scene when it parses."""
    from playground.train import shapes_check, shapes_data

    found = shapes_check.read(img)
    seen = "; ".join(f"{f.colour} {f.shape} {f.place}" for f in found[:2]) or "nothing"
    if prompt is None:
        return f"the checker reads: {seen}"
    try:
        scene = shapes_data.parse(prompt)
    except ValueError:
        return f"the checker reads: {seen} (the caption is outside the grammar, so nothing to check it against)"
    v = shapes_check.judge(img, scene)
    if shapes_check.follows(v):
        verdict = "both objects and the relation right ✓" if v.both is not None else "follows the caption ✓"
    elif v.both is not None:
        verdict = "not both objects in that relation ✗"
    else:
        verdict = "misses: " + ", ".join(k for k, x in (("colour", v.colour), ("shape", v.shape), ("place", v.place)) if x is False) + " ✗"
    return f"the checker reads: {seen}: {verdict}"


def _uint8(image: Any) -> np.ndarray:
    return np.asarray(picture(image, 0))


@dataclass(frozen=True)
class UnclipPageRequest:
    """The section's inputs (the page's widgets; /unclip has its own signature)."""

    prompt: str  # the caption
    seed: Any = 0  # every draw of the run (the prior's, the embedding's noise, the decoder's)
    steps: Any = 50  # the decoder's DDIM steps
    guidance: Any = 4.0  # the decoder's guidance
    noise_level: Any = 0  # how far the prior's embedding is noised before the decoder reads it
    compare: bool = True  # also draw the caption with sd-shapes (same seed)

    def checked(self) -> unclip.UnclipRequest:
        return unclip.UnclipRequest(self.prompt, self.seed, self.steps, self.guidance, noise_level=self.noise_level).checked()


@dataclass(frozen=True)
class UnclipFrame:
    """One streamed update, in the order of the event's outputs."""

    status: str  # the status line
    stages: Any  # the embeddings' HTML (gr.update() to keep)
    preview: Any  # the decoder's x̂_0 at the latest shown step (gr.update() between frames)
    final: Any  # the picture (last frame), enlarged
    side_by_side: Any  # sd-shapes beside it (last frame)
    drawn: Any  # the drawn picture (uint8), kept for "variations of this picture"

    def outputs(self) -> tuple:
        return self.status, self.stages, self.preview, self.final, self.side_by_side, self.drawn


def stages_html(model: Any, run: Any) -> str:
    """Both embeddings: a strip of their 64 numbers, their cosine, their nearest captions and pictures."""
    import torch

    columns = []
    for title, vector in (("1. the caption's CLIP text embedding", run.text_embedding),
                          ("2. the prior's CLIP image embedding", run.image_embedding)):
        caps, pics = nearest(model, vector)
        columns.append(clip_views.nearest_html(title, caps, pics))
    cos = float(torch.nn.functional.cosine_similarity(run.text_embedding, run.image_embedding, dim=0))
    return (f"<p>cos(text embedding, the prior's image embedding) = <b>{cos:.3f}</b>: the prior moves the caption from among "
            f"the captions to among the pictures ({run.request.prior_steps} prior steps at guidance {run.request.prior_guidance:g}).</p>"
            f'<div style="display:flex;flex-wrap:wrap;gap:16px" id="unclip-nearest">{"".join(columns)}</div>')


def side_by_side_html(prompt: str, ours: np.ndarray, theirs: np.ndarray | None, request: unclip.UnclipRequest) -> str:
    def cell(title: str, img: np.ndarray, how: str) -> str:
        return (f'<div style="flex:1 1 260px"><b>{html.escape(title)}</b><br>{clip_views.thumbnail(img, 128)}<br>'
                f"<small>{html.escape(how)}</small><br>{html.escape(reading(img, prompt))}</div>")

    how = f"prior then decoder, {request.steps} DDIM steps, guidance {request.guidance:g}"
    cells = [cell("unclip-shapes (DALL-E 2's design)", ours, how)]
    if theirs is not None:
        cells.append(cell("sd-shapes (Stable Diffusion's design)", theirs, f"50 DDIM steps, guidance {SD_GUIDANCE:g}"))
    return (f'<div style="display:flex;flex-wrap:wrap;gap:16px" id="unclip-side-by-side">{"".join(cells)}</div>'
            f"<p><small>Both from seed {request.seed}; the noises differ all the same (the two-stage run draws the prior's noise "
            "first). The card of each model gives the checker's figures over 200 prompts.</small></p>")


@user_errors
def on_unclip(loader: ModelLoader, request: UnclipPageRequest, progress=gr.Progress()):
    """Stream the run: the embeddings at once, the decoder's x̂_0 as it goes, then the picture and sd-shapes beside it."""
    asked = request.checked()  # before any model loads
    model = load_unclip(loader, progress)
    run = unclip.run(model, asked, UNCLIP_MODEL)
    head = f"Running {model.source.describe()}: \"{asked.prompt}\", seed {asked.seed}."
    yield UnclipFrame(head + " Stage 2: the prior's embedding is ready; the decoder is drawing.", stages_html(model, run), None, None,
                      None, None).outputs()
    shown = time.monotonic()
    for record in run.decoder:
        line = f"{head} Decoder step {record.index + 1} of {asked.steps} (t = {record.timestep})."
        if time.monotonic() - shown >= FRAME_INTERVAL_S:
            yield UnclipFrame(line, gr.update(), picture(pixels(model, record.x0_hat, full=True), 128), None, None, None).outputs()
            shown = time.monotonic()
        else:
            yield UnclipFrame(line, gr.update(), gr.update(), None, None, None).outputs()
    final = unclip.drawn(model, run.decoder)  # the steps are all taken: this decodes the last
    ours = _uint8(final)
    theirs = None
    if request.compare:
        _, sd = load_diffusion(loader, SD_MODEL)
        sd_request = DiffusionRequest(prompt=asked.prompt, scheduler="DDIM", steps=50, guidance=SD_GUIDANCE, seed=asked.seed)
        theirs = _uint8(pixels(sd, final_sample(sd, sd_request), full=True))
    yield UnclipFrame(f"{head} Done: {reading(ours, asked.prompt)}.", gr.update(), gr.update(), picture(final, 256),
                      side_by_side_html(asked.prompt, ours, theirs, asked), ours).outputs()


@dataclass(frozen=True)
class VariationsPageRequest:
    image: Any  # the picture (the learner's, or the one drawn above)
    n: Any = 4  # variations
    seed: Any = 0  # their noises
    noise_level: Any = 0  # how far the picture's embedding is noised first


@user_errors
def on_variations(loader: ModelLoader, request: VariationsPageRequest, progress=gr.Progress()) -> tuple[list, str]:
    """(gallery items, notes): n pictures from the picture's CLIP image embedding, each read by the checker."""
    import torch

    asked = unclip.VariationsRequest(_as_array(request.image), request.n, request.seed, noise_level=request.noise_level).checked()
    model = load_unclip(loader, progress)
    run = unclip.variations(model, asked, UNCLIP_MODEL)
    images = unclip.drawn(model, run.decoder)
    source = np.asarray(asked.image)
    drawn = [_uint8(images[i: i + 1]) for i in range(images.shape[0])]
    again = unclip.picture_embedding(model, drawn)
    cos = torch.nn.functional.cosine_similarity(again.float().cpu(), run.embedding[None], dim=-1)
    items = [(picture(images[i: i + 1], 128), f"{i + 1}: cos {float(cos[i]):.2f}") for i in range(len(drawn))]
    rows = [f"- variation {i + 1}: {reading(img)}" for i, img in enumerate(drawn)]
    notes = (f"The picture: {reading(source)}. Its CLIP image embedding, decoded {asked.n} times with the empty caption "
             f"(seed {asked.seed}, {asked.steps} DDIM steps, guidance {asked.guidance:g}); cos: each variation's own embedding "
             "against the picture's.\n\n" + "\n".join(rows))
    return items, notes


def _as_array(image: Any) -> Any:
    """A picture from the page or the API (PIL, an array, or None) as an H x W x 3 uint8 array."""
    if image is None:
        return None
    if hasattr(image, "convert"):
        return np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise InputError("The picture must be an RGB image.")
    return arr[..., :3].astype(np.uint8)


@user_errors
def unclip_api(loader: ModelLoader, prompt: str, seed: int = 0, steps: int = 50, guidance_scale: float = 4.0) -> dict:
    """DALL-E 2's two stages on the embedded unclip-shapes: caption -> prior -> decoder.

    Returns {"text_embedding": [d] (the caption's CLIP text embedding), "image_embedding": [d] (the prior's CLIP image
    embedding), "nearest_captions": [{"caption", "cosine"}] (the image embedding's 5 nearest among the grammar's captions),
    "image": base64 PNG at native size (32x32), "steps", "seed"}.
    """
    asked = unclip.UnclipRequest(prompt, seed, steps, guidance_scale).checked()
    model = load_unclip(loader)
    run = unclip.run(model, asked, UNCLIP_MODEL)
    image = unclip.drawn(model, run.decoder)
    caps, _ = nearest(model, run.image_embedding)
    return {"text_embedding": [round(float(v), 5) for v in run.text_embedding],
            "image_embedding": [round(float(v), 5) for v in run.image_embedding],
            "nearest_captions": [{"caption": c, "cosine": v} for c, v in caps],
            "image": png_base64(image), "steps": asked.steps, "seed": asked.seed}


@user_errors
def variations_api(loader: ModelLoader, image: Any, n: int = 4, seed: int = 0) -> dict:
    """Variations of a picture: its CLIP image embedding, decoded n times (1-8) with the empty caption.

    Returns {"images": [base64 PNG at native size], "embedding": [d] (the picture's CLIP image embedding)}.
    """
    asked = unclip.VariationsRequest(_as_array(image), n, seed).checked()
    model = load_unclip(loader)
    run = unclip.variations(model, asked, UNCLIP_MODEL)
    images = unclip.drawn(model, run.decoder)
    return {"images": [png_base64(images[i: i + 1]) for i in range(images.shape[0])],
            "embedding": [round(float(v), 5) for v in run.embedding]}


@dataclass(frozen=True)
class UnclipSection:
    form: Any  # the two-stage run's Form
    prompt: Any  # its caption box (a lesson link fills it)


def build_unclip_section(loader: ModelLoader) -> UnclipSection:
    """The section. Named API endpoints: `/unclip`, `/variations`."""
    with gr.Accordion("DALL-E 2, stage by stage: prior, decoder, variations, and sd-shapes beside it", open=False,
                      elem_id="unclip-section"):
        gr.Markdown(EXPLAINER)
        prompt, seed = caption_row("unclip", unclip.MAX_PROMPT_CHARS)
        examples(EXAMPLES, [prompt], "Examples (the shapes grammar; 'a purple triangle' was never drawn in training)")
        with gr.Row(elem_classes=["option-row"]):
            steps = gr.Slider(1, unclip.MAX_STEPS, value=50, step=1, label="Decoder steps (DDIM)", elem_id="unclip-steps")
            guidance = gr.Slider(0, unclip.MAX_GUIDANCE, value=4.0, step=0.5, label="Decoder guidance", elem_id="unclip-guidance")
            noise_level = gr.Slider(0, 999, value=0, step=1, label="Noise added to the image embedding (0: none)",
                                    elem_id="unclip-noise-level")
            compare = gr.Checkbox(value=True, label="Draw it with sd-shapes too", elem_id="unclip-compare")
        run = gr.Button("Run both stages", variant="primary", elem_id="unclip-run")
        status = gr.Markdown(elem_id="unclip-status")
        stages = gr.HTML(elem_id="unclip-stages")
        with gr.Row():
            preview = gr.Image(label="The decoder's x̂_0 (streamed)", interactive=False, height=160, elem_id="unclip-preview")
            final = gr.Image(label="The picture", interactive=False, height=256, elem_id="unclip-final")
        side = gr.HTML(elem_id="unclip-side")
        gr.Markdown(DIFFERENCES)
        drawn = gr.State(None)
        form = form_event(gpu_task(bind(on_unclip, loader), BUDGET), UnclipPageRequest,
                          {"prompt": prompt, "seed": seed, "steps": steps, "guidance": guidance, "noise_level": noise_level,
                           "compare": compare})
        clear_first(run.click, [status]).then(form.event, form.inputs, [status, stages, preview, final, side, drawn],
                                              api_visibility="private")
        gr.Markdown("#### Variations: a picture's CLIP embedding, drawn again\nPredict first: will a variation keep the colour? the "
                    "shape? the place? Give a picture (or take the one drawn above) and draw from its embedding alone.")
        with gr.Row():
            source = checked_image(type="pil", label="The picture", height=160, elem_id="variations-image")
            with gr.Column():
                take = gr.Button("Use the picture drawn above", elem_id="variations-take")
                n = gr.Slider(1, unclip.MAX_VARIATIONS, value=4, step=1, label="Variations", elem_id="variations-n")
                var_seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="variations-seed")
                var_noise = gr.Slider(0, 999, value=0, step=1, label="Noise added to the embedding", elem_id="variations-noise-level")
        var_run = gr.Button("Draw variations", elem_id="variations-run")
        gallery = gr.Gallery(label="Variations", columns=unclip.MAX_VARIATIONS, height="auto", object_fit="contain",
                             elem_id="variations-gallery")
        var_notes = gr.Markdown(elem_id="variations-notes")
        take.click(lambda img: None if img is None else picture_from(img), drawn, source, api_visibility="private")
        var_form = form_event(gpu_task(bind(on_variations, loader), VARIATIONS_BUDGET), VariationsPageRequest,
                              {"image": source, "n": n, "seed": var_seed, "noise_level": var_noise})
        var_run.click(var_form.event, var_form.inputs, [gallery, var_notes], api_visibility="private")
        api_endpoint(unclip_api, loader, api_name="unclip", budget=BUDGET)
        with gr.Group(visible=False):  # /variations takes a picture (a file), so it is an event of its own, not a gr.api
            api_image = checked_image(type="pil", label="image")
            api_n, api_seed = gr.Number(value=4, precision=0, label="n"), gr.Number(value=0, precision=0, label="seed")
            api_out, api_run = gr.JSON(label="result"), gr.Button()
        api_run.click(gpu_task(bind(variations_api, loader), VARIATIONS_BUDGET), [api_image, api_n, api_seed], api_out,
                      api_name="variations")
    return UnclipSection(form, prompt)


def picture_from(array: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(np.asarray(array, dtype=np.uint8))
