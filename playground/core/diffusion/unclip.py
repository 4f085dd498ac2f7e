"""DALL-E 2's two stages (Ramesh et al. 2022) on a `StableUnCLIPPipeline` folder's parts, as the pipelines run them
(tested equal to `StableUnCLIPPipeline` and `StableUnCLIPImg2ImgPipeline`). No gradio.

Text to image, one generator for every draw (the pipeline's order):

1. the caption -> its CLIP text embedding z_text and token states (the prior's text tower, clip-shapes');
2. the prior's loop (`prior.sample`): z_T ~ N(0, I) -> ... -> the CLIP image embedding z_img it predicts;
3. z_img is noised to `noise_level` and followed by that level's embedding (`conditioning.with_image_embedding`);
4. the decoder's loop (`run.run`, the same loop as every diffusion model here): x_T ~ N(0, I) -> ... -> x_0, each step
   ε̂ = ε_θ(x_t, t, caption, z_img), guided against ε_θ(x_t, t, "", 0);
5. x_0 decoded by the autoencoder.

Variations: a picture -> its CLIP image embedding (the image tower, clip-shapes') -> steps 3-5 with the empty caption,
n pictures from one embedding and n starting noises.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

from playground.core.diffusion.prior import encode_captions, sample
from playground.core.diffusion.run import DiffusionRequest, Run
from playground.core.diffusion.run import run as diffusion_run
from playground.core.inputs import require_caption, require_float, require_int
from playground.errors import InputError
from playground.lazy import no_grad, torch

MAX_PROMPT_CHARS = 200  # the caption (the prior's tokenizer reads its window; the rest is cut)
MAX_STEPS = 100  # the decoder's and the prior's steps
MAX_GUIDANCE = 20.0
MAX_VARIATIONS = 8  # pictures per variations request
MAX_SEED = 2**31 - 1
PRIOR_STEPS = 25  # StableUnCLIPPipeline's defaults for the prior
PRIOR_GUIDANCE = 4.0


@dataclass(frozen=True)
class UnclipRequest:
    """Text -> prior -> decoder, as asked. `checked()` validates every field."""

    prompt: str  # the caption both stages read
    seed: int = 0  # the prior's noise, the embedding's noise and the decoder's x_T, in that order, from one generator
    steps: int = 50  # the decoder's DDIM steps
    guidance: float = 4.0  # the decoder's classifier-free guidance w (caption and image embedding against "" and zeros)
    prior_steps: int = PRIOR_STEPS  # the prior's sampling steps
    prior_guidance: float = PRIOR_GUIDANCE  # the prior's guidance (caption against "")
    noise_level: int = 0  # how far the image embedding is noised before the decoder reads it (0: as the prior gave it)

    def checked(self) -> UnclipRequest:
        return replace(self, prompt=require_caption(self.prompt, max_chars=MAX_PROMPT_CHARS),
                       seed=require_int(self.seed, "seed", low=0, high=MAX_SEED),
                       steps=require_int(self.steps, "steps", low=1, high=MAX_STEPS),
                       guidance=require_float(self.guidance, "guidance_scale", low=0.0, high=MAX_GUIDANCE),
                       prior_steps=require_int(self.prior_steps, "prior steps", low=1, high=MAX_STEPS),
                       prior_guidance=require_float(self.prior_guidance, "prior guidance", low=0.0, high=MAX_GUIDANCE),
                       noise_level=require_int(self.noise_level, "noise_level", low=0, high=999))

    def decoder_request(self, image_embedding: Any, snapshots: bool = False) -> DiffusionRequest:
        return DiffusionRequest(prompt=self.prompt, scheduler="DDIM", steps=self.steps, guidance=self.guidance, seed=self.seed,
                                image_embedding=image_embedding, noise_level=self.noise_level, snapshots=snapshots)


def drawn(model: Any, decoder: Run) -> Any:
    """Take the decoder's remaining steps and decode the last: the pictures [n, 3, H, W] in [-1, 1]."""
    from collections import deque

    from playground.core.diffusion.pictures import pixels

    deque(decoder, maxlen=0)
    return pixels(model, decoder.records[-1].x, full=True)


@dataclass
class UnclipRun:
    """Both stages of one run: the embeddings (at once) and the decoder's Run (its steps taken when iterated)."""

    request: UnclipRequest  # as checked
    text_embedding: Any  # [d] the caption's CLIP text embedding
    image_embedding: Any  # [d] the prior's CLIP image embedding
    decoder: Run  # the decoder's run (`run.run`): iterate it for the steps


DECODER_PARTS = ("image_normalizer", "image_noising_scheduler")
PRIOR_PARTS = ("prior", "prior_text_encoder", "prior_tokenizer", "prior_scheduler")


def check_model(model: Any, parts: tuple[str, ...] = PRIOR_PARTS + DECODER_PARTS) -> None:
    missing = [k for k in parts if model.components.get(k) is None]
    if missing:
        raise InputError(f"This model is not an unCLIP pipeline (it lacks {', '.join(missing)}): pick a StableUnCLIPPipeline "
                         "folder such as the embedded unclip-shapes.")


@no_grad
def run(model: Any, request: UnclipRequest, model_name: str = "", snapshots: bool = False) -> UnclipRun:
    """Stages 1-3 now (text embedding, the prior's loop, the embedding's noise), and the decoder's run to iterate
    (`snapshots`: keep a rewind point per step, for branching)."""
    request = request.checked()
    check_model(model)
    generator = torch.Generator().manual_seed(request.seed)
    e, z = stage_one(model, [request.prompt], request.prior_steps, request.prior_guidance, generator)
    # 3-5. the decoder: the same generator goes on (the embedding's noise, then x_T)
    decoder = diffusion_run(model, request.decoder_request(z, snapshots), model_name, generator=generator)
    return UnclipRun(request, e[0].float().cpu(), z[0].float().cpu(), decoder)


@no_grad
def stage_one(model: Any, prompts: list[str], steps: int, guidance: float, generator: Any) -> tuple[Any, Any]:
    """(text embeddings [n, d], the prior's image embeddings [n, d]) of captions, drawing from `generator`."""
    parts = model.components
    # 1. the caption's CLIP text embedding and token states; the empty caption's for the prior's guidance
    tower, tok = parts["prior_text_encoder"], parts["prior_tokenizer"]
    e, s, m = encode_captions(tower, tok, prompts)
    null = encode_captions(tower, tok, [""])
    # 2. the prior: a CLIP image embedding for the caption (a copy of the scheduler: requests never share timesteps)
    z = sample(parts["prior"], copy.deepcopy(parts["prior_scheduler"]), e, s, m, null, steps, guidance, generator)
    return e, z


@no_grad
def picture_embedding(model: Any, image: Any) -> Any:
    """[1, d]: a picture's CLIP image embedding, through the folder's image processor and image tower."""
    extractor, encoder = model.components.get("feature_extractor"), model.components.get("image_encoder")
    if extractor is None or encoder is None:
        raise InputError("This unCLIP folder has no image encoder, so it cannot make variations (it needs `image_encoder` and "
                         "`feature_extractor`, as StableUnCLIPImg2ImgPipeline).")
    param = next(encoder.parameters())
    pixels = extractor(images=image, return_tensors="pt").pixel_values.to(param.device, param.dtype)
    return encoder(pixels).image_embeds


@dataclass(frozen=True)
class VariationsRequest:
    image: Any  # the picture (PIL, or an array H x W x 3)
    n: int = 4  # pictures to draw, 1 to MAX_VARIATIONS
    seed: int = 0  # the embedding's noise and the n starting noises
    steps: int = 50  # the decoder's DDIM steps
    guidance: float = 4.0  # the decoder's guidance (the embedding against zeros; the caption is "" in both)
    noise_level: int = 0  # how far the embedding is noised first: more noise, more different pictures

    def checked(self) -> VariationsRequest:
        if self.image is None:
            raise InputError("Give a picture to make variations of (upload one, or draw one with /unclip first).")
        return replace(self, n=require_int(self.n, "n", low=1, high=MAX_VARIATIONS),
                       seed=require_int(self.seed, "seed", low=0, high=MAX_SEED),
                       steps=require_int(self.steps, "steps", low=1, high=MAX_STEPS),
                       guidance=require_float(self.guidance, "guidance_scale", low=0.0, high=MAX_GUIDANCE),
                       noise_level=require_int(self.noise_level, "noise_level", low=0, high=999))


@dataclass
class VariationsRun:
    request: VariationsRequest  # as checked
    embedding: Any  # [d] the picture's CLIP image embedding
    decoder: Run  # n pictures from it: iterate for the steps


@no_grad
def variations(model: Any, request: VariationsRequest, model_name: str = "") -> VariationsRun:
    """A picture's embedding and the decoder's run drawing `n` pictures from it with the empty caption."""
    request = request.checked()
    check_model(model, DECODER_PARTS)
    embedding = picture_embedding(model, request.image)
    decoder_request = DiffusionRequest(prompt="", scheduler="DDIM", steps=request.steps, guidance=request.guidance, seed=request.seed,
                                       batch=request.n, image_embedding=embedding, noise_level=request.noise_level, snapshots=False)
    return VariationsRun(request, embedding[0].float().cpu(), diffusion_run(model, decoder_request, model_name))
