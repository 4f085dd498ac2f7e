"""The lesson's text-to-image designs side by side: one prompt and seed drawn by every design the playground has, each
a trained model of the same shapes world (the same pictures, the same grammar, the same checker). No gradio.

| design | model | what is different |
|---|---|---|
| Stable Diffusion | sd-shapes | a text encoder trained with the images; diffusion in an autoencoder's latents; cross-attention |
| DALL-E 2 | unclip-shapes | a prior maps the caption's CLIP embedding to an image embedding; the decoder reads that |
| Imagen | imagen-shapes (+ -sr) | a frozen text-only T5; diffusion in pixels, 16x16 then 32x32; dynamic thresholding |
| DALL-E 3 | sd-shapes + `expand` | descriptive training captions, and the user's prompt rewritten into that form first |
| alt text | alttext-shapes | sd-shapes' recipe on alt-text-like captions: what DALL-E 3 improved on |

Each design's pictures come from the same loops as everywhere else (`run.run`, `unclip.run`, `cascade.run`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from playground.core.diffusion import cascade, unclip
from playground.core.diffusion.pictures import pixels, to_uint8
from playground.core.diffusion.run import DiffusionRequest, final_sample
from playground.core.inputs import require_caption, require_float, require_int
from playground.errors import InputError
from playground.lazy import no_grad
from playground.models.presets import Family

MAX_PROMPT_CHARS = 200  # the designs' shortest window is 16 tokens (sd-shapes' CLIP-style encoder); the rest is cut
MAX_STEPS = 100  # each stage's DDIM steps
MAX_GUIDANCE = 20.0
MAX_SEED = cascade.MAX_SEED  # the cascade's second stage uses seed + 1


@dataclass(frozen=True)
class Design:
    """One text-to-image design and the embedded model that stands for it."""

    key: str  # "sd", "dalle2", "imagen", "dalle3", "alttext": the JSON's `design`
    name: str  # the system it stands for
    model: str  # the embedded model (the JSON's `model`)
    folders: tuple[str, ...]  # what the loader loads (a preset's Hub id, or folders under assets/), in stage order
    family: Family  # how the loader loads them: latent models, or pixel models (the cascade)
    train_command: str  # how the model is built
    text_encoder: str  # the table's rows: what reads the prompt ...
    where: str  # ... where diffusion runs ...
    conditioning: str  # ... what the diffusion model is told ...
    captions: str  # ... what it was trained on ...
    guidance: str  # ... and how guidance and clipping work in it


DESIGNS = (
    Design("sd", "Stable Diffusion", "sd-shapes", ("segmind/tiny-sd",), Family.LATENT_DIFFUSION,
           "python -m playground.train.shapes",
           "a CLIP-style text encoder (2 layers) trained with the UNet, on the captions",
           "a 4x16x16 latent of an autoencoder (32x32 pictures)",
           "the caption's token states, by cross-attention", "the grammar's descriptive captions", "classifier-free (caption vs \"\")"),
    Design("dalle2", "DALL-E 2", "unclip-shapes", ("assets/models/unclip-shapes",), Family.LATENT_DIFFUSION,
           "python -m playground.train.unclip",
           "clip-shapes' text tower (trained contrastively against pictures) for the prior; sd-shapes' encoder for the decoder",
           "sd-shapes' latents (the decoder); a 64-number CLIP space (the prior)",
           "a CLIP image embedding from the prior (added to the timestep embedding) and the caption's states",
           "the grammar's captions (the caption dropped half the time)", "classifier-free in both stages (prior at 4)"),
    Design("imagen", "Imagen", "imagen-shapes", ("assets/models/imagen-shapes", "assets/models/imagen-shapes-sr"), Family.DIFFUSION,
           "python -m playground.train.imagen --stage base; ... --stage sr",
           "t5-tasks' T5 encoder, frozen: trained only on text tasks, never with a picture",
           "pixels, as a cascade: 16x16, then 32x32 from the upsampled 16x16", "the T5 token states (77), by cross-attention; the "
           "second stage also reads the noised low-resolution picture", "the grammar's descriptive captions",
           "classifier-free in both stages, x̂_0 dynamically thresholded (95th percentile)"),
    Design("dalle3", "DALL-E 3", "sd-shapes + prompt expansion", ("segmind/tiny-sd",), Family.LATENT_DIFFUSION,
           "python -m playground.train.shapes",
           "sd-shapes' (as Stable Diffusion's row), reading the prompt rewritten into the training captions' form",
           "sd-shapes' latents", "the expanded caption's token states", "descriptive captions (DALL-E 3 recaptions its pictures "
           "so; here the grammar is descriptive already)", "as sd-shapes"),
    Design("alttext", "alt text (DALL-E 3's baseline)", "alttext-shapes", ("assets/models/alttext-shapes",), Family.LATENT_DIFFUSION,
           "python -m playground.train.shapes --captions alt-text --out assets/models/alttext-shapes",
           "as sd-shapes, trained on alt text", "as sd-shapes", "as sd-shapes",
           "alt-text-like captions: 15% junk, 25% one word, 30% partial, 10% wrong, 20% full", "as sd-shapes"),
)
DESIGN_KEYS = tuple(d.key for d in DESIGNS)


@dataclass(frozen=True)
class DesignsRequest:
    """One prompt and seed for every design. `checked()` validates every field."""

    prompt: str  # the caption every design draws
    seed: int = 0  # each design's noise (the noises still differ: the designs draw different shapes of noise)
    steps: int = 50  # DDIM steps (of each stage)
    guidance: float = 5.0  # classifier-free guidance w (of each stage)

    def checked(self) -> DesignsRequest:
        return replace(self, prompt=require_caption(self.prompt, max_chars=MAX_PROMPT_CHARS),
                       seed=require_int(self.seed, "seed", low=0, high=MAX_SEED),
                       steps=require_int(self.steps, "steps", low=1, high=MAX_STEPS),
                       guidance=require_float(self.guidance, "guidance_scale", low=0.0, high=MAX_GUIDANCE))


@dataclass
class DesignPicture:
    """One design's picture of the request."""

    design: Design
    image: Any  # uint8 [H, W, 3] at the model's native size (32x32)
    prompt_used: str  # what the model read (DALL-E 3: the expanded prompt)
    stages: tuple[Any, ...] = ()  # a cascade's base picture (uint8 16x16) before its final one


def _uint8(x: Any) -> Any:
    """The first picture of a batch in [-1, 1] as uint8 [H, W, 3]."""
    return to_uint8(x[0]).permute(1, 2, 0).cpu().numpy()


@no_grad
def draw(d: Design, models: tuple[Any, ...], request: DesignsRequest) -> DesignPicture:
    """Design `d`'s picture of `request`, from its loaded models (in `d.folders`' order)."""
    asked = request.checked()
    if d.key == "dalle2":
        run = unclip.run(models[0], unclip.UnclipRequest(asked.prompt, asked.seed, asked.steps, asked.guidance), d.model)
        return DesignPicture(d, _uint8(unclip.drawn(models[0], run.decoder)), asked.prompt)
    if d.key == "imagen":
        run = cascade.run(models[0], models[1], cascade.CascadeRequest(asked.prompt, asked.seed, asked.steps, asked.guidance), d.model)
        base = run.base_picture()
        return DesignPicture(d, _uint8(run.picture()), asked.prompt, (_uint8(base),))
    prompt = asked.prompt
    if d.key == "dalle3":
        from playground.train.alt_text import expand

        prompt = expand(asked.prompt)
    request = DiffusionRequest(prompt=prompt, scheduler="DDIM", steps=asked.steps, guidance=asked.guidance, seed=asked.seed)
    return DesignPicture(d, _uint8(pixels(models[0], final_sample(models[0], request), full=True)), prompt)


def load(loader: Any, d: Design, progress=None) -> tuple[Any, ...]:
    """The loaded models of design `d`, or an InputError that says how to build the missing one."""
    from playground.models.sources import SourceError

    models = []
    for name in d.folders:
        try:
            models.append(loader.load(name, d.family, progress=progress))  # segmind/tiny-sd: sd-shapes offline
        except SourceError as exc:
            raise InputError(f"{d.name}'s model ({name}) is not here: build it with `{d.train_command}`.") from exc
    return tuple(models)


@dataclass
class DesignOutcome:
    """One design's picture and the checker's reading, or why it could not run."""

    design: Design
    picture: DesignPicture | None  # None: not built here
    checker: dict[str, bool | None] | None  # {colour, shape, place, relation}
    note: str = ""  # why there is no picture

    def json(self) -> dict:
        """The /designs entry: design, model, image (base64 PNG, native size), checker, prompt_used (or note)."""
        from playground.core.render.word_maps import png_base64

        return {"design": self.design.key, "model": self.design.model,
                "image": None if self.picture is None else png_base64(self.picture.image),
                "checker": self.checker, **({"prompt_used": self.picture.prompt_used} if self.picture else {}),
                **({"note": self.note} if self.note else {})}


def outcomes(loader: Any, request: DesignsRequest, progress=None):
    """Each design's outcome as it is drawn (a generator, in DESIGNS' order). The checker reads every picture against
    what the prompt means: its expanded form (a grammar prompt is its own)."""
    from playground.train.alt_text import expand
    from playground.train.shapes_check import reading

    meant = expand(request.prompt)
    for d in DESIGNS:
        try:
            models = load(loader, d, progress)
        except InputError as exc:
            yield DesignOutcome(d, None, None, str(exc))
            continue
        drawn = draw(d, models, request)
        yield DesignOutcome(d, drawn, reading(drawn.image, meant))
