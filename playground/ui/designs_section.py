"""The Text-to-image tab's "Designs, side by side" section: one prompt and seed drawn by every text-to-image design the
playground has (Stable Diffusion, DALL-E 2, Imagen, DALL-E 3 and its alt-text baseline), each read by the shapes
checker, with a table of what differs (`/designs`)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr

from playground.core.diffusion import designs
from playground.core.render import clip as clip_views
from playground.models import ModelLoader
from playground.models.zerogpu import GpuBudget, gpu_task
from playground.ui.common import api_endpoint, bind, caption_row, clear_first, examples, form_event, user_errors

# every design's steps: sd-shapes twice (Stable Diffusion, DALL-E 3), the alt-text model, the unCLIP prior and decoder,
# and the cascade's two stages
BUDGET = GpuBudget(40, 7.0, "steps")
EXPLAINER = """
#### The designs, side by side
The lesson's four text-to-image systems made different bets. **Stable Diffusion** trains a text encoder's reading
into a latent diffusion model by cross-attention. **DALL-E 2** first turns the caption into a CLIP *image* embedding
(the prior) and draws from that. **Imagen** keeps a text-only language model (T5) frozen and diffuses in pixels, small
first, then larger. **DALL-E 3** changes the data, not the network: it trains on descriptive captions instead of the
alt text a web crawl gives, and rewrites a user's terse prompt into that descriptive form before drawing.
Here each is a model trained in the same shapes world (the same pictures and grammar, 32x32 pictures), so one prompt
and seed go through all of them and the same checker reads each picture. **Predict first:** which designs draw
"a red circle left of a blue square" right? Then run it, and try a terse prompt ("red circle left blue square"):
DALL-E 3's row expands it by rules first (`playground/train/alt_text.py`); the others read it as typed.
Limits: the shapes world only; prompts up to 200 characters; sd-shapes' encoder reads 16 tokens, T5 77.
"""
EXAMPLES = [["a red circle left of a blue square"], ["a large red circle"], ["red circle left blue square"],
            ["a green square above a white circle"], ["a purple triangle"], ["a small yellow triangle at the top"]]
MARK = {True: "✓", False: "✗", None: "–"}


@dataclass(frozen=True)
class DesignsPageRequest:
    """The section's inputs (the page's widgets; /designs has its own signature)."""

    prompt: str  # the caption every design draws
    seed: Any = 0
    steps: Any = 50  # DDIM steps of each stage
    guidance: Any = 5.0  # w of each stage

    def checked(self) -> designs.DesignsRequest:
        return designs.DesignsRequest(self.prompt, self.seed, self.steps, self.guidance).checked()


def cards_html(request: designs.DesignsRequest, done: list[designs.DesignOutcome]) -> str:
    """A card per design: its picture enlarged (a cascade's 16x16 stage beside it), what it read, the checker's marks."""
    from playground.train.alt_text import expand

    cells = []
    for o in done:
        d = o.design
        if o.picture is None:
            body = f"<i>{html.escape(o.note)}</i>"
        else:
            pics = "".join(clip_views.thumbnail(s, 64) for s in o.picture.stages) + clip_views.thumbnail(o.picture.image, 128)
            read = "" if o.picture.prompt_used == request.prompt else f"<br><small>read: “{html.escape(o.picture.prompt_used)}”</small>"
            marks = " · ".join(f"{k} {MARK[v]}" for k, v in o.checker.items())
            body = f"{pics}{read}<br><small>checker: {marks}</small>"
        cells.append(f'<div style="flex:1 1 180px" class="design-card" data-design="{d.key}"><b>{html.escape(d.name)}</b><br>'
                     f"<small>{html.escape(d.model)}</small><br>{body}</div>")
    return (f'<div style="display:flex;flex-wrap:wrap;gap:14px" id="designs-cards">{"".join(cells)}</div>'
            f"<p><small>“{html.escape(request.prompt)}”, seed {request.seed}, {request.steps} DDIM steps, guidance "
            f"{request.guidance:g} in every stage. The checker reads each picture against “{html.escape(expand(request.prompt))}”: "
            "✓ right, ✗ wrong, – not asked (two objects: colour = both colours there, shape = "
            "both objects there, relation = both there in the caption's relation). Each model's card has the checker's figures over "
            "200 prompts: one picture is an anecdote.</small></p>")


def differences_markdown() -> str:
    rows = [("what reads the prompt", "text_encoder"), ("where diffusion runs", "where"),
            ("what the diffusion model is told", "conditioning"), ("trained on", "captions"), ("guidance", "guidance"),
            ("built by", "train_command")]
    head = "| | " + " | ".join(f"{d.name} ({d.model})" for d in designs.DESIGNS) + " |"
    lines = [head, "|---" * (len(designs.DESIGNS) + 1) + "|"]
    for title, field in rows:
        lines.append(f"| {title} | " + " | ".join(getattr(d, field).replace("|", "/") for d in designs.DESIGNS) + " |")
    return "\n".join(lines)


@user_errors
def on_designs(loader: ModelLoader, request: DesignsPageRequest, progress=gr.Progress()):
    """Stream the designs' cards as each is drawn."""
    asked = request.checked()  # before any model loads
    done: list[designs.DesignOutcome] = []
    total = len(designs.DESIGNS)
    yield f"Drawing with {total} designs…", cards_html(asked, done)
    for outcome in designs.outcomes(loader, asked, progress):
        done.append(outcome)
        right = sum(1 for o in done if o.checker and _follows(o.checker))
        yield (f"{len(done)} of {total} designs drawn; {right} of them follow the caption so far.", cards_html(asked, done))


def _follows(checker: dict[str, bool | None]) -> bool:
    said = [v for v in checker.values() if v is not None]
    return bool(said) and all(said)


@user_errors
def designs_api(loader: ModelLoader, prompt: str, seed: int = 0, steps: int = 50, guidance_scale: float = 5.0) -> list:
    """One prompt and seed drawn by every text-to-image design (Stable Diffusion, DALL-E 2, Imagen, DALL-E 3, alt text).

    Returns a list, one entry per design: {"design": "sd" | "dalle2" | "imagen" | "dalle3" | "alttext", "model": the
    embedded model, "image": base64 PNG at native size (32x32; null if the model is not built here, with a "note"),
    "checker": {"colour", "shape", "place", "relation"}: true/false, or null where the caption does not say it,
    "prompt_used": what the model read (DALL-E 3's row: the prompt expanded)}.
    """
    asked = designs.DesignsRequest(prompt, seed, steps, guidance_scale).checked()
    return [o.json() for o in designs.outcomes(loader, asked)]


@dataclass(frozen=True)
class DesignsSection:
    form: Any  # the run's Form
    prompt: Any  # its caption box (a lesson link fills it)


def build_designs_section(loader: ModelLoader) -> DesignsSection:
    """The section. Named API endpoint: `/designs`."""
    with gr.Accordion("The designs, side by side: Stable Diffusion, DALL-E 2, Imagen, DALL-E 3", open=True, elem_id="designs-section"):
        gr.Markdown(EXPLAINER)
        prompt, seed = caption_row("designs", designs.MAX_PROMPT_CHARS)
        examples(EXAMPLES, [prompt], "Examples ('red circle left blue square' is terse; 'a purple triangle' was never drawn in training)")
        with gr.Row(elem_classes=["option-row"]):
            steps = gr.Slider(1, designs.MAX_STEPS, value=50, step=1, label="DDIM steps (each stage)", elem_id="designs-steps")
            guidance = gr.Slider(0, designs.MAX_GUIDANCE, value=5.0, step=0.5, label="Guidance (each stage)", elem_id="designs-guidance")
        run = gr.Button("Draw it with every design", variant="primary", elem_id="designs-run")
        status = gr.Markdown(elem_id="designs-status")
        cards = gr.HTML(elem_id="designs-cards-box")
        gr.Markdown(differences_markdown(), elem_id="designs-table")
        form = form_event(gpu_task(bind(on_designs, loader), BUDGET), DesignsPageRequest,
                          {"prompt": prompt, "seed": seed, "steps": steps, "guidance": guidance})
        clear_first(run.click, [status]).then(form.event, form.inputs, [status, cards], api_visibility="private")
        api_endpoint(designs_api, loader, api_name="designs", budget=BUDGET)
    return DesignsSection(form, prompt)
