"""What the UNet is told: nothing, a class (class-conditional UNets) or a text (text-to-image), and the "nothing"
classifier-free guidance compares it with (the null class, the empty or negative prompt). No gradio."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playground.core.cache import shared_lock
from playground.core.inputs import require_text
from playground.errors import InputError
from playground.lazy import from_library, torch

MAX_PROMPT_CHARS = 500  # a text prompt's and a negative prompt's limit (CLIP reads 77 tokens; a model may read fewer)


@dataclass(frozen=True)
class Conditioning:
    """What the UNet is told: nothing, a class, or a text (embeddings); and the 'nothing' used for guidance."""

    kind: str  # "none", "class" or "text"
    cond: torch.Tensor | None = None  # class labels [B] or text embeddings [B, L, D]
    uncond: torch.Tensor | None = None  # the null class / the negative-prompt embeddings (for guidance)

    def to(self, device: Any) -> Conditioning:
        """The same on `device` (class labels are made on the CPU)."""
        return Conditioning(self.kind, *(None if t is None else t.to(device) for t in (self.cond, self.uncond)))

    def unet_kwargs(self, which: torch.Tensor | None) -> dict[str, Any]:
        if self.kind == "class":
            return {"class_labels": which}
        if self.kind == "text":
            return {"encoder_hidden_states": which}
        return {}


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


def text_conditioning(components: dict[str, Any], prompts: list[str], negatives: list[str], guided: bool) -> Conditioning:
    """A text-to-image model's prompt embeddings, encoded by the Stable Diffusion pipeline's own `encode_prompt`
    (one per prompt; `negatives` as long, "" for the empty prompt)."""
    pipeline_cls = from_library("diffusers", "StableDiffusionPipeline")

    parts = {k: components.get(k) for k in ("vae", "text_encoder", "tokenizer", "unet", "scheduler")}
    pipe = pipeline_cls(**parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    device = next(components["unet"].parameters()).device
    negative = negatives if any(negatives) else None
    with shared_lock(parts["tokenizer"]):  # encode_prompt sets the shared tokenizer's padding and truncation
        cond, uncond = pipe.encode_prompt(prompts if len(prompts) > 1 else prompts[0], device, 1, guided,
                                          negative if negative is None or len(negative) > 1 else negative[0])
    return Conditioning("text", cond, uncond)


def conditioning(model: Any, prompts: list[str], negatives: list[str], guidance: float) -> tuple[Conditioning, str]:
    """The conditioning of `model` (anything with `.model`, `.components`, `.pipeline`) for one image per prompt, and a
    label for captions: a class-conditional UNet's classes, a text-to-image model's prompts, or none."""
    unet = model.model
    if getattr(unet, "class_embedding", None) is not None:
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
