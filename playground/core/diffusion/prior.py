"""DALL-E 2's prior (Ramesh et al. 2022, section 2.1), on a `PriorTransformer`: from a caption's CLIP text encoding to a
CLIP image embedding, by diffusion. No gradio.

The loop, as `KandinskyPriorPipeline` runs it (tested equal), in the paper's terms: z_T ~ N(0, I) in the standardized
embedding space; at each step the transformer reads the caption's token states, its text embedding z_t^text, the
timestep and the noisy z_t, and predicts the clean embedding ẑ_0 (not the noise); with guidance w,
ẑ_0 = ẑ_0(∅) + w (ẑ_0(caption) − ẑ_0(∅)); the scheduler steps z_t -> z_{t-1} towards ẑ_0; at the end the embedding is
un-standardized (× std + mean) into CLIP's image space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playground.core.cache import shared_lock
from playground.errors import InputError
from playground.lazy import no_grad, torch

MAX_STEPS = 100  # sampling steps
MAX_GUIDANCE = 20.0
MAX_PROMPT_CHARS = 200


@no_grad
def encode_captions(text_encoder: Any, tokenizer: Any, captions: list[str]) -> tuple[Any, Any, Any]:
    """(text embeddings [N, d], token states [N, T, width], masks [N, T] bool), as KandinskyPriorPipeline encodes a prompt:
    padded to the tokenizer's length, cut past it."""
    with shared_lock(tokenizer):
        enc = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt")
    device = next(text_encoder.parameters()).device
    out = text_encoder(enc.input_ids.to(device))
    return out.text_embeds, out.last_hidden_state, enc.attention_mask.bool().to(device)


@no_grad
def sample(prior: Any, scheduler: Any, embeds: Any, states: Any, masks: Any, null: tuple, steps: int, guidance: float,
           generator: Any) -> Any:
    """The prior's loop on text encodings (`null`: the empty caption's (embeds, states, mask), the unconditional branch).
    Returns image embeddings [N, d] in CLIP's image space."""
    import inspect

    n = embeds.shape[0]
    guided = guidance > 1.0
    tells_prev = "prev_timestep" in inspect.signature(scheduler.step).parameters
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps
    # 1. z_T ~ N(0, I): a standardized image embedding of pure noise
    latents = torch.randn(n, prior.config.embedding_dim, generator=generator).to(embeds.device) * scheduler.init_noise_sigma
    if guided:  # the caption's branch, then the empty caption's, in one batch
        embeds = torch.cat([embeds, null[0].expand(n, -1)])
        states = torch.cat([states, null[1].expand(n, -1, -1)])
        masks = torch.cat([masks, null[2].expand(n, -1)])
    for i, t in enumerate(timesteps):
        # 2. ẑ_0 = prior(z_t, t, caption): the transformer predicts the clean embedding
        x = torch.cat([latents] * 2) if guided else latents
        z0 = prior(x, timestep=t, proj_embedding=embeds, encoder_hidden_states=states, attention_mask=masks).predicted_image_embedding
        # 3. guidance: ẑ_0(∅) + w (ẑ_0(caption) − ẑ_0(∅))
        if guided:
            text_z0, null_z0 = z0.chunk(2)
            z0 = null_z0 + guidance * (text_z0 - null_z0)
        # 4. z_t -> z_{t-1}: the posterior step towards ẑ_0 (UnCLIPScheduler is told the previous timestep; DDPM knows it)
        prev = {"prev_timestep": None if i + 1 == len(timesteps) else timesteps[i + 1]} if tells_prev else {}
        latents = scheduler.step(z0, timestep=t, sample=latents, generator=generator, **prev).prev_sample
    # 5. back to CLIP's image space: × std + mean
    return prior.post_process_latents(latents)


@dataclass
class PriorRun:
    prompt: str
    text_embedding: list[float]  # the caption's CLIP text embedding (as the text tower gives it)
    image_embedding: list[float]  # the prior's CLIP image embedding
    cosine: float  # between the two: how far the prior moved the caption


def check(prompt: Any, steps: Any, guidance: Any, seed: Any) -> tuple[str, int, float, int]:
    from playground.core.inputs import require_float, require_int, require_text

    text = require_text(prompt, "prompt", max_chars=MAX_PROMPT_CHARS).strip()
    if not text:
        raise InputError("Enter a caption for the prior, e.g. 'a red circle left of a blue square'.")
    return (text, require_int(steps, "steps", low=1, high=MAX_STEPS),
            require_float(guidance, "guidance_scale", low=0.0, high=MAX_GUIDANCE), require_int(seed, "seed", low=0, high=2**31 - 1))


def run(components: dict[str, Any], prompt: Any, steps: Any = 25, guidance: Any = 4.0, seed: Any = 0) -> PriorRun:
    """The prior for one caption, on a KandinskyPriorPipeline folder's components (prior, scheduler, text_encoder,
    tokenizer). The scheduler is copied: one request's timesteps never touch another's."""
    import copy

    text, steps, guidance, seed = check(prompt, steps, guidance, seed)
    tower, tok = components["text_encoder"], components["tokenizer"]
    e, s, m = encode_captions(tower, tok, [text])
    null = encode_captions(tower, tok, [""])
    scheduler = copy.deepcopy(components["scheduler"])
    z = sample(components["prior"], scheduler, e, s, m, null, steps, guidance, torch.Generator().manual_seed(seed))
    cos = torch.nn.functional.cosine_similarity(e.float(), z.float(), dim=-1)
    return PriorRun(text, [round(float(v), 5) for v in e[0]], [round(float(v), 5) for v in z[0]], round(float(cos[0]), 4))
