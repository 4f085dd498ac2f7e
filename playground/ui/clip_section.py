"""The Text-to-image tab's "CLIP space" section: pictures and captions in one embedding space, DALL-E 2's first stage
(`/clip`)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from playground.core.multimodal import clip_space
from playground.core.render import clip as clip_views
from playground.core.render.lm import similarity_heatmap
from playground.errors import InputError
from playground.models import Family, ModelLoader
from playground.models.zerogpu import GpuBudget, gpu_task
from playground.ui.common import bind, checked_image, clear_first, form_event, user_errors

CLIP_MODEL = "assets/models/clip-shapes"  # the embedded CLIP of the shapes world (python -m playground.train.clip)
PRIOR_MODEL = "assets/models/prior-shapes"  # DALL-E 2's prior on it (python -m playground.train.prior)
POOL = 300  # pictures drawn (seed 2024) to find an embedding's nearest
GRAMMAR_CAPTIONS = 180 + 18 * 17 * 4  # shapes_data.single_captions() and pair_captions(): the candidates for "nearest captions"
PRIOR_EXPLAINER = f"""
#### DALL-E 2's prior: from a caption to an image embedding
DALL-E 2 does not draw from the caption's text embedding: a **prior** first turns it into an **image** embedding, the
kind its decoder was trained to draw from. The embedded **prior-shapes** is DALL-E 2's diffusion prior (diffusers'
`PriorTransformer`): from noise, each step predicts the clean image embedding from the caption's tokens and embedding,
with classifier-free guidance. Below, for your caption: the text embedding's and the prior's image embedding's nearest
captions (among the grammar's {GRAMMAR_CAPTIONS:,} fully specified ones) and nearest pictures ({POOL} drawn ones), and the
cosine between the two embeddings. The text
embedding sits among captions; the prior's lands among pictures. (The decoder that draws from it: *DALL-E 2, stage by
stage*, below.)
"""
DEFAULT_CAPTIONS = "\n".join([
    "a red circle", "a blue square", "a yellow triangle", "a large green circle on the left",
    "a white square above a purple circle", "a purple triangle",
])
EXPLAINER = f"""
#### CLIP space: pictures and words in one space
DALL-E 2 starts from **CLIP** (Radford et al. 2021): an image tower and a text tower trained together so that a picture
and its caption land close together in one embedding space. For a batch of N pictures and N captions the N x N cosines
are read as N-way classification both ways (picture → its caption, caption → its picture), which pushes the matching
pairs, the diagonal, up and the rest down. Here the embedded **clip-shapes** (trained in sd-shapes' world) reads your
captions, one per line ({clip_space.MIN_TEXTS}-{clip_space.MAX_TEXTS}); every caption in the grammar is also drawn as a
picture, and your own picture (optional) is added as a row. Below the grid: the zero-shot reading of a picture (which
colour, shape, place is most like it, no classifier trained), and both clouds on one map, with the **gap** between them.
"""
BUDGET = GpuBudget(20)


def load_clip(loader: ModelLoader, progress=None) -> Any:
    """The embedded CLIP, or an error that says how to build it."""
    from playground.models.sources import SourceError

    try:
        return loader.load(CLIP_MODEL, Family.CLIP, progress=progress)
    except SourceError as exc:
        raise InputError(f"The embedded CLIP ({CLIP_MODEL}) is not here: build it with `python -m playground.train.clip`.") from exc


def drawn(lines: list[str], seed: int) -> list[tuple[int, np.ndarray]]:
    """(caption index, picture) for every caption the shapes grammar can draw, with the seed's sizes and places."""
    from playground.train import shapes_data

    rng = np.random.default_rng(seed)
    out = []
    for i, line in enumerate(lines):
        try:
            out.append((i, shapes_data.draw(shapes_data.parse(line), rng)))
        except ValueError:  # outside the grammar: a caption column, no picture
            continue
    return out


@dataclass(frozen=True)
class ClipRequest:
    """The CLIP-space section's inputs."""

    texts: str  # captions, one per line
    image: Any = None  # the learner's own picture (PIL), added as a row; None for none
    seed: Any = 0  # the drawn pictures' sizes and places


@dataclass(frozen=True)
class ClipView:
    notice: str  # markdown: the model, captions that could not be drawn
    grid: str  # HTML: pictures x captions
    zero_shot: str  # HTML: colour, shape, place probabilities of one picture
    projection: str  # SVG: both clouds on two axes

    def outputs(self) -> tuple:
        return self.notice, self.grid, self.zero_shot, self.projection


@user_errors
def on_compare(loader: ModelLoader, request: ClipRequest, progress=gr.Progress()) -> tuple:
    """ClipView's outputs."""
    from playground.core.inputs import require_int
    from playground.train import shapes_data

    lines = clip_space.check_texts(request.texts)
    seed = require_int(request.seed, "seed", low=0, high=2**31 - 1)
    lm = load_clip(loader, progress)
    model, tok, proc = lm.model, lm.tokenizer, lm.components["image_processor"]
    pictures = drawn(lines, seed)
    images = [img for _, img in pictures]
    labels = [f"picture of {i + 1}" for i, _ in pictures]
    pairs: list[int | None] = [i for i, _ in pictures]
    if request.image is not None:
        own = np.asarray(request.image.convert("RGB"))
        images, labels, pairs = [*images, own], [*labels, "your picture"], [*pairs, None]
    notes = [f"Running {lm.source.describe()}."]
    missing = [f"{i + 1}" for i in range(len(lines)) if i not in {p for p, _ in pictures}]
    if missing:
        notes.append(f"Caption(s) {', '.join(missing)} are outside the shapes grammar: no picture drawn, a column only (the model "
                     "spells unknown words in pieces and places them wherever the pieces land).")
    if not images:
        sims = clip_space.compare(model, tok, proc, "\n".join(lines))
        grid = similarity_heatmap(lines, np.asarray(sims.text_similarity))
        return ClipView(" ".join([*notes, "No caption could be drawn and no picture was given: the captions' cosines with each "
                                  "other."]), grid, "", "").outputs()
    text_emb, image_emb = clip_space.text_embeddings(model, tok, lines), clip_space.image_embeddings(model, proc, images)
    sims = clip_space.similarities(lines, text_emb, image_emb, clip_space.logit_scale(model))
    grid = clip_views.grid_html(images, labels, lines, sims.similarity, sims.probs, pairs)
    subject = request.image if request.image is not None else images[0]
    zero = clip_space.zero_shot(model, tok, proc, subject, shapes_data.class_prompts())
    zero_html = (f"<p><b>Zero-shot: {'your picture' if request.image is not None else labels[0]}</b> against class embeddings "
                 "averaged over the grammar's captions of each colour, shape and place (CLIP's prompt ensembling).</p>"
                 + clip_views.zero_shot_html(zero))
    projection = ""
    if len(pictures) >= 2:  # the drawn pictures (the first rows) and their own captions, embedded above
        drawn_from = [i for i, _ in pictures]
        p = clip_space.project(image_emb[: len(pictures)], text_emb[drawn_from])
        captions = [lines[i] for i in drawn_from]
        projection = clip_views.projection_svg(p, captions, captions)
        notes.append(f"The two clouds' centres sit {p.gap:.2f} apart (the modality gap); a picture's cosine with its own caption "
                     f"averages {p.paired_cosine:.2f}, with the other captions {p.cross_cosine:.2f}.")
    return ClipView(" ".join(notes), grid, zero_html, projection).outputs()


@dataclass(frozen=True)
class PriorRequest:
    """The prior part's inputs."""

    prompt: str  # the caption
    steps: Any = 25  # sampling steps
    guidance: Any = 4.0  # classifier-free guidance scale of the prior
    seed: Any = 0  # the starting noise


@user_errors
def on_prior(loader: ModelLoader, request: PriorRequest, progress=gr.Progress()) -> str:
    """The prior's run for a caption: both embeddings' nearest captions and pictures, and their cosine."""
    import torch

    from playground.core.diffusion import prior
    from playground.models.sources import SourceError
    from playground.train import shapes_data

    prior.check(request.prompt, request.steps, request.guidance, request.seed)
    try:
        pipe = loader.load(PRIOR_MODEL, Family.PRIOR, progress=progress)
    except SourceError as exc:
        raise InputError(f"The embedded prior ({PRIOR_MODEL}) is not here: build it with `python -m playground.train.prior`.") from exc
    run = prior.run(pipe.components, request.prompt, request.steps, request.guidance, request.seed)
    lm = load_clip(loader)
    model, tok, proc = lm.model, lm.tokenizer, lm.components["image_processor"]
    captions = shapes_data.single_captions() + shapes_data.pair_captions()
    caption_emb = clip_space.text_embeddings(model, tok, captions)
    pictures, pool_captions = shapes_data.dataset(POOL, 2024)
    picture_emb = clip_space.image_embeddings(model, proc, list(pictures))
    columns = []
    for title, vector in (("the caption's text embedding", run.text_embedding), ("the prior's image embedding", run.image_embedding)):
        q = torch.nn.functional.normalize(torch.tensor(vector), dim=-1)
        cap_cos, pic_cos = caption_emb @ q, picture_emb @ q
        near_caps = [(captions[i], float(cap_cos[i])) for i in cap_cos.topk(5).indices.tolist()]
        near_pics = [(pictures[i], pool_captions[i], float(pic_cos[i])) for i in pic_cos.topk(5).indices.tolist()]
        columns.append(clip_views.nearest_html(title, near_caps, near_pics))
    return (f"<p>Running {html.escape(pipe.source.describe())}. cos(text embedding, the prior's image embedding) = "
            f"<b>{run.cosine:.3f}</b>; "
            f"{request.steps} steps, guidance {float(request.guidance):g}, seed {request.seed}.</p>"
            f'<div style="display:flex;flex-wrap:wrap;gap:16px" id="prior-nearest">{"".join(columns)}</div>')


@user_errors
def clip_api(loader: ModelLoader, texts: str, image: Any = None) -> dict:
    """Cosine similarities in the embedded CLIP's space.

    `texts`: captions, one per line (2-32). `image`: optional picture. Returns {"texts", "similarity" [image][text]
    (with a picture) or "text_similarity" [text][text] (without), "logit_scale" (logits = logit_scale x cosine)}.
    """
    lm = load_clip(loader)
    images = None if image is None else [image]
    return clip_space.compare(lm.model, lm.tokenizer, lm.components["image_processor"], texts, images).to_json()


@dataclass(frozen=True)
class ClipSection:
    form: Any  # the CLIP-space Form
    texts: Any  # the captions box (a lesson link fills it)


def build_clip_section(loader: ModelLoader) -> ClipSection:
    """The section. Named API endpoint: `/clip`."""
    with gr.Accordion("CLIP space: pictures and words in one space (DALL-E 2's first stage)", open=False, elem_id="clip-section"):
        gr.Markdown(EXPLAINER)
        with gr.Row():
            texts = gr.Textbox(label=f"Captions, one per line ({clip_space.MIN_TEXTS}-{clip_space.MAX_TEXTS})", value=DEFAULT_CAPTIONS,
                               lines=6, scale=3, max_length=clip_space.MAX_TEXT_CHARS, elem_id="clip-texts")
            with gr.Column(scale=1):
                image = checked_image(type="pil", label="Your picture (optional): a row of its own", height=160, elem_id="clip-image")
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed (the drawn pictures' sizes and places)", elem_id="clip-seed")
        run = gr.Button("Compare pictures and captions", elem_id="clip-run")
        notice = gr.Markdown(elem_id="clip-notice")
        grid = gr.HTML(elem_id="clip-grid")
        zero = gr.HTML(elem_id="clip-zero-shot")
        projection = gr.HTML(elem_id="clip-projection")
        form = form_event(gpu_task(bind(on_compare, loader), BUDGET), ClipRequest, {"texts": texts, "image": image, "seed": seed})
        clear_first(run.click, [notice]).then(form.event, form.inputs, [notice, grid, zero, projection], api_visibility="private")
        gr.Markdown(PRIOR_EXPLAINER)
        with gr.Row():
            prompt = gr.Textbox(label="Caption", value="a red circle left of a blue square", scale=3, max_length=200,
                                elem_id="prior-prompt")
            steps = gr.Slider(1, 100, value=25, step=1, label="Prior steps", elem_id="prior-steps")
            guidance = gr.Slider(0, 20, value=4.0, step=0.5, label="Prior guidance", elem_id="prior-guidance")
            prior_seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="prior-seed")
        prior_run = gr.Button("Run the prior", elem_id="prior-run")
        prior_out = gr.HTML(elem_id="prior-result")
        prior_form = form_event(gpu_task(bind(on_prior, loader), BUDGET), PriorRequest,
                                {"prompt": prompt, "steps": steps, "guidance": guidance, "seed": prior_seed})
        prior_run.click(prior_form.event, prior_form.inputs, prior_out, api_visibility="private")
        with gr.Group(visible=False):  # the API's inputs: a picture is a file, so /clip is an event of its own, not a gr.api
            api_texts, api_image, api_out = gr.Textbox(label="texts"), checked_image(type="pil", label="image"), gr.JSON(label="result")
            api_run = gr.Button()
        api_run.click(gpu_task(bind(clip_api, loader), BUDGET), [api_texts, api_image], api_out, api_name="clip")
    return ClipSection(form, texts)
