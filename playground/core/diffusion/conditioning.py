"""What the UNet is told: nothing, a class (class-conditional UNets) or a text (text-to-image), and the "nothing"
classifier-free guidance compares it with (the null class, the empty or negative prompt). No gradio."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from playground.core.cache import shared_lock
from playground.core.inputs import require_int, require_text
from playground.errors import InputError
from playground.lazy import from_library, torch

MAX_PROMPT_CHARS = 500  # a text prompt's and a negative prompt's limit (CLIP reads 77 tokens; a model may read fewer)


@dataclass(frozen=True)
class Conditioning:
    """What the UNet is told: nothing, a class, or a text (embeddings); and the 'nothing' used for guidance. An unCLIP
    decoder is told a text and an image embedding (`labels`, its class-embedding input)."""

    kind: str  # "none", "class" or "text"
    cond: torch.Tensor | None = None  # class labels [B] or text embeddings [B, L, D]
    uncond: torch.Tensor | None = None  # the null class / the negative-prompt embeddings (for guidance)
    labels: torch.Tensor | None = None  # an unCLIP decoder's image condition [B, 2d]: the (noised) embedding and its noise level
    labels_uncond: torch.Tensor | None = None  # its "nothing": zeros, as the unCLIP pipelines feed it
    image: torch.Tensor | None = None  # a super-resolution stage's low-resolution picture, upsampled and noised [B, C, H, W]

    def to(self, device: Any) -> Conditioning:
        """The same on `device` (class labels are made on the CPU)."""
        return Conditioning(self.kind, *(None if t is None else t.to(device)
                                         for t in (self.cond, self.uncond, self.labels, self.labels_uncond, self.image)))

    def unet_input(self, x: torch.Tensor, branch: str) -> torch.Tensor:
        """What the UNet reads for x_t: x_t itself, or (a super-resolution stage) x_t with the upsampled low-resolution
        picture as more channels, as IFSuperResolutionPipeline concatenates them. `branch` as `unet_kwargs`'."""
        if self.image is None:
            return x
        image = torch.cat([self.image, self.image]) if branch == "both" else self.image
        return torch.cat([x, image.to(x.dtype)], 1)

    def unet_kwargs(self, branch: str) -> dict[str, Any]:
        """The UNet's keyword arguments for one branch: "cond", "uncond", or "both" (the unconditional batch first)."""
        def pick(cond: torch.Tensor | None, uncond: torch.Tensor | None) -> torch.Tensor | None:
            return {"cond": cond, "uncond": uncond}.get(branch) if branch != "both" else torch.cat([uncond, cond])

        kwargs: dict[str, Any] = {}
        if self.kind == "class":
            kwargs["class_labels"] = pick(self.cond, self.uncond)
        if self.kind == "text":
            kwargs["encoder_hidden_states"] = pick(self.cond, self.uncond)
        if self.labels is not None:
            kwargs["class_labels"] = pick(self.labels, self.labels_uncond)
        return kwargs


def class_index(prompt: str, id2label: dict[int, str]) -> int:
    """The class a prompt names, matched without regard to case; an unknown prompt lists the classes.

    >>> class_index("ankle BOOT", {0: "T-shirt/top", 9: "Ankle boot"})
    9
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError(f"Give a class name as the prompt: one of {', '.join(id2label.values())}.")
    wanted = " ".join(prompt.split()).casefold()
    for index, label in id2label.items():
        if label.casefold() == wanted:
            return int(index)
    raise InputError(
        f"{prompt!r} is not a class this model knows. It draws only these: {', '.join(id2label.values())}."
    )


def is_t5_model(components: dict[str, Any]) -> bool:
    """Whether a text-to-image model reads a T5 encoder's states, as DeepFloyd IF (Imagen's design) does."""
    encoder = components.get("text_encoder")
    return encoder is not None and type(encoder).__name__ == "T5EncoderModel"


def text_conditioning(components: dict[str, Any], prompts: list[str], negatives: list[str], guided: bool) -> Conditioning:
    """A text-to-image model's prompt embeddings, encoded by its pipeline's own `encode_prompt` (Stable Diffusion's; or
    DeepFloyd IF's for a T5 encoder: 77 tokens, no caption cleaning) (one per prompt; `negatives` as long, "" for the
    empty prompt)."""
    device = next(components["unet"].parameters()).device
    negative = negatives if any(negatives) else None
    prompt = prompts if len(prompts) > 1 else prompts[0]
    negative = negative if negative is None or len(negative) > 1 else negative[0]
    if is_t5_model(components):
        pipe = from_library("diffusers", "IFPipeline")(
            tokenizer=components["tokenizer"], text_encoder=components["text_encoder"], unet=components["unet"], scheduler=None,
            safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False)
        with shared_lock(components["tokenizer"]):
            cond, uncond = pipe.encode_prompt(prompt, guided, 1, device, negative, clean_caption=False)
        return Conditioning("text", cond, uncond)
    pipeline_cls = from_library("diffusers", "StableDiffusionPipeline")

    parts = {k: components.get(k) for k in ("vae", "text_encoder", "tokenizer", "unet", "scheduler")}
    pipe = pipeline_cls(**parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    with shared_lock(parts["tokenizer"]):  # encode_prompt sets the shared tokenizer's padding and truncation
        cond, uncond = pipe.encode_prompt(prompt, device, 1, guided, negative)
    return Conditioning("text", cond, uncond)


def conditioning(model: Any, prompts: list[str], negatives: list[str], guidance: float) -> tuple[Conditioning, str]:
    """The conditioning of `model` (anything with `.model`, `.components`, `.pipeline`) for one image per prompt, and a
    label for captions: a class-conditional UNet's classes, a text-to-image model's prompts, or none."""
    unet = model.model
    if getattr(unet, "class_embedding", None) is not None and not is_unclip_decoder(model) and not is_super_resolution(model):
        labels = model.pipeline.id2label if model.pipeline is not None else {}
        if not labels:
            raise InputError("This class-conditional model lists no class names (id2label in model_index.json).")
        indices = [class_index(p, labels) for p in prompts]
        null_class = model.pipeline.null_class
        if guidance != 1.0 and null_class is None:
            raise InputError("Guidance other than 1 needs the 'no class' label the UNet was trained with; this model has none "
                             "(use guidance 1).")
        cond = torch.tensor(indices)
        return Conditioning("class", cond, None if null_class is None else torch.full_like(cond, null_class)), \
            ", ".join(dict.fromkeys(labels[i] for i in indices))
    if getattr(unet.config, "cross_attention_dim", None) is not None:
        if model.components.get("text_encoder") is None or model.components.get("tokenizer") is None:
            raise InputError("This text-conditioned UNet comes without its text encoder and tokenizer.")
        prompts = [require_text(p, "prompt", max_chars=MAX_PROMPT_CHARS) for p in prompts]
        negatives = [require_text(n or "", "negative prompt", max_chars=MAX_PROMPT_CHARS) for n in negatives]
        return text_conditioning(model.components, prompts, negatives, guidance != 1.0), " | ".join(dict.fromkeys(prompts))
    if guidance != 1.0:
        raise InputError("This model is unconditional (no class, no prompt): use guidance 1.")
    return Conditioning("none"), "unconditional"


def is_unclip_decoder(model: Any) -> bool:
    """Whether `model` is an unCLIP decoder (Stable unCLIP's UNet: a text condition, and a CLIP image embedding read through
    `class_embed_type="projection"` with the pipeline's image normalizer)."""
    config = model.model.config
    return getattr(config, "class_embed_type", None) == "projection" and model.components.get("image_normalizer") is not None


def is_super_resolution(model: Any) -> bool:
    """Whether `model` is a cascade's super-resolution stage (DeepFloyd IF-II's UNet: x_t and an upsampled, noised
    low-resolution picture as its input channels, the picture's noise level as its class label)."""
    config = model.model.config
    return getattr(config, "class_embed_type", None) == "timestep" and model.components.get("image_noising_scheduler") is not None


def with_low_resolution(model: Any, cond: Conditioning, low: Any, noise_level: Any, shape: tuple[int, ...],
                        generator: torch.Generator) -> Conditioning:
    """`cond` with a super-resolution stage's picture, as IFSuperResolutionPipeline makes it: `low` [1 or n, C, h, w] in
    [-1, 1] upsampled (bilinear, align_corners) to x's size, noised to `noise_level` by the image noising scheduler with
    noise from `generator` (drawn after x_T, in the pipeline's order); the level is the UNet's class label."""
    noising = model.components["image_noising_scheduler"]
    level = require_int(noise_level, "noise_level", low=0, high=noising.config.num_train_timesteps - 1)
    n, channels, size = shape[0], shape[1], shape[-1]
    if not isinstance(low, torch.Tensor) or low.ndim != 4 or low.shape[1] != channels or low.shape[0] not in (1, n):
        raise InputError(f"A super-resolution stage draws from a low-resolution picture ({channels} channels, one for all {n} "
                         "images or one each): run the base stage first.")
    if low.shape[-1] >= size:
        raise InputError(f"A super-resolution stage enlarges a smaller picture; this one is {low.shape[-1]} px, the stage draws {size} px.")
    up = torch.nn.functional.interpolate(low.float().cpu(), (size, size), mode="bilinear", align_corners=True).expand(n, -1, -1, -1)
    noise = torch.randn(up.shape, generator=generator, dtype=up.dtype)
    levels = torch.full((n,), level)
    up = noising.add_noise(up, noise, levels)
    return replace(cond, image=up, labels=levels, labels_uncond=levels)


def image_condition(normalizer: Any, noising: Any, embeds: torch.Tensor, levels: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """What an unCLIP decoder's class embedding reads (`StableUnCLIPPipeline.noise_image_embeddings`, one level per row):
    the embedding standardized, noised to `levels` (the noising scheduler's q(x_t | x_0) with `noise`), un-standardized,
    then followed by the sinusoidal embedding of its level: [e_noised, emb(level)], 2d numbers."""
    from diffusers.models.embeddings import get_timestep_embedding

    x = noising.add_noise(normalizer.scale(embeds), timesteps=levels, noise=noise)
    x = normalizer.unscale(x)
    level = get_timestep_embedding(timesteps=levels, embedding_dim=x.shape[-1], flip_sin_to_cos=True, downscale_freq_shift=0)
    return torch.cat((x, level.to(x.dtype)), 1)


def with_image_embedding(model: Any, cond: Conditioning, embeds: Any, noise_level: Any, n: int, generator: torch.Generator) -> Conditioning:
    """`cond` with an unCLIP decoder's image condition for `n` images: `embeds` [1 or n, d] (one row shared by every
    image, as the variations pipeline repeats its picture's, or one per image, as the prior gives them), noised to
    `noise_level` with noise drawn from `generator` (before the latents, in the pipelines' order); its "nothing" is zeros."""
    normalizer, noising = model.components["image_normalizer"], model.components["image_noising_scheduler"]
    top = noising.config.num_train_timesteps - 1
    level = require_int(noise_level, "noise_level", low=0, high=top)
    dim = normalizer.mean.shape[-1]
    if not isinstance(embeds, torch.Tensor) or embeds.ndim != 2 or embeds.shape[-1] != dim or embeds.shape[0] not in (1, n):
        raise InputError(f"An unCLIP decoder draws from CLIP image embeddings of {dim} numbers, one for all {n} images or one each: "
                         "run the prior first (/unclip) or give a picture (/variations).")
    device, dtype = normalizer.mean.device, normalizer.mean.dtype
    noise = torch.randn(embeds.shape, generator=generator, dtype=embeds.dtype)  # on the CPU, as the pipelines draw it
    levels = torch.full((embeds.shape[0],), level, device=device)
    labels = image_condition(normalizer, noising, embeds.to(device, dtype), levels, noise.to(device, dtype))
    labels = labels.expand(n, -1) if labels.shape[0] == 1 else labels
    return replace(cond, labels=labels, labels_uncond=torch.zeros_like(labels))
