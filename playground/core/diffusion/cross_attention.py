"""Where each word lands: a text-to-image UNet's cross-attention, per prompt token, over the image (DAAM, Tang et al. 2023).

In every cross-attention layer, image position i (a query) reads the prompt's token states c_j (keys and
values) with the probabilities

    P_ij = softmax_j(q_i · k_j / √d),   q = W_q h,  k = W_k c      (per head)

Averaging P[:, j] over heads, layers (each upsampled to the latent's size) and steps gives token j a map of
where the image read it; normalized to sum to 1, it says where that word's meaning went.

Thread safety: the maps are recorded by a processor installed once on each cross-attention module of a model
(`install`), which hands every call to the module's own processor and, only while the calling thread is
inside `recording(...)`, also computes P with the module's own `to_q`, `to_k` and `get_attention_scores`.
No request ever swaps a processor or adds a hook on a shared UNet; other users' runs are untouched.
No gradio here.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import threading
from dataclasses import dataclass, replace
from typing import Any

from playground.core.cache import shared_lock
from playground.core.diffusion.run import DiffusionRequest, run
from playground.core.inputs import require_int
from playground.errors import InputError
from playground.lazy import no_grad, torch

_ACTIVE: contextvars.ContextVar[_Recorder | None] = contextvars.ContextVar("cross_attention_recorder", default=None)
_INSTALL_LOCK = threading.Lock()


class _Recorder:
    """Sums, for the current run, each step's head- and layer-averaged cross-attention of the conditional rows."""

    def __init__(self, size: int, n_prompts: int, step: int | None):
        self.size = size  # maps are kept at the latent's side (the largest attention resolution)
        self.n = n_prompts  # the prompts' batch; a guided batch is [unconditional, conditional] (2n rows)
        self.step = step  # only this 0-based step, or every step (None)
        self.current = 0  # the step being taken
        self.total: torch.Tensor | None = None  # [n, L, size, size]: summed over the kept steps' layers
        self.layers = 0  # how many layer-calls were summed

    def add(self, probs: torch.Tensor, batch: int, heads: int) -> None:
        if self.step is not None and self.current != self.step:
            return
        b, hw, tokens = batch, probs.shape[1], probs.shape[2]
        p = probs.float().view(b, heads, hw, tokens).mean(1)[b - self.n:]  # the conditional rows, heads averaged
        side = math.isqrt(hw)
        if side * side != hw:
            return  # a non-square latent: skipped rather than mis-drawn
        p = p.transpose(1, 2).reshape(self.n, tokens, side, side)
        if side != self.size:
            p = torch.nn.functional.interpolate(p, size=(self.size, self.size), mode="bilinear", align_corners=False)
        self.total = p if self.total is None else self.total + p
        self.layers += 1


class RecordingProcessor:
    """Wraps a cross-attention module's own processor: the output is always the wrapped processor's."""

    def __init__(self, inner: Any):
        self.inner = inner

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        recorder = _ACTIVE.get()
        if recorder is not None and encoder_hidden_states is not None:
            with torch.no_grad():
                h = hidden_states
                if h.ndim == 4:
                    h = h.flatten(2).transpose(1, 2)
                c = attn.norm_encoder_hidden_states(encoder_hidden_states) if attn.norm_cross else encoder_hidden_states
                q, k = attn.head_to_batch_dim(attn.to_q(h)), attn.head_to_batch_dim(attn.to_k(c))
                mask = attn.prepare_attention_mask(attention_mask, c.shape[1], c.shape[0])
                recorder.add(attn.get_attention_scores(q, k, mask), h.shape[0], attn.heads)  # P: [batch·heads, HW, L]
        return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)


def install(unet: Any) -> int:
    """Wrap each cross-attention module's processor once (idempotent, thread-safe); returns how many are wrapped."""
    with _INSTALL_LOCK:
        count = 0
        for module in unet.modules():
            if getattr(module, "is_cross_attention", False) and hasattr(module, "set_processor"):
                if not isinstance(module.processor, RecordingProcessor):
                    module.set_processor(RecordingProcessor(module.processor))
                count += 1
        return count


@contextlib.contextmanager
def recording(size: int, n_prompts: int = 1, step: int | None = None):
    """While inside, this thread's cross-attention calls (on installed models) are summed into the recorder."""
    recorder = _Recorder(size, n_prompts, step)
    token = _ACTIVE.set(recorder)
    try:
        yield recorder
    finally:
        _ACTIVE.reset(token)


@dataclass
class WordMaps:
    """One text-to-image run and where each prompt token landed."""

    tokens: list[str]  # the prompt's tokens, as words (no start, end or padding tokens)
    maps: torch.Tensor  # [tokens, H, W] at the image's size; each map sums to 1
    image: torch.Tensor  # [1, C, H, W] the decoded image, in [-1, 1]
    latent_maps: torch.Tensor  # [tokens, h, w] the same at the latent's size (what was recorded)
    steps: int  # denoising steps run
    step: int | None  # the one step averaged (0-based), or None for all


def prompt_tokens(tokenizer: Any, prompt: str) -> list[str]:
    """The tokens of `prompt` as the text encoder sees them, in order, written as text (CLIP's "red</w>" is "red")."""
    with shared_lock(tokenizer):
        ids = tokenizer(prompt, truncation=True, max_length=tokenizer.model_max_length)["input_ids"]
    ids = [i for i in ids if i not in (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)]
    return [tokenizer.decode([i]).strip() or tokenizer.convert_ids_to_tokens(i) for i in ids]


def start_tokens(tokenizer: Any, prompt: str) -> int:
    """How many tokens the encoder reads before the prompt's own: 1 for a start token (CLIP's), 0 without (T5's)."""
    with shared_lock(tokenizer):
        ids = tokenizer(prompt)["input_ids"]
    return int(bool(ids) and tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id)


@dataclass(frozen=True)
class PromptReading:
    """How the text encoder reads a prompt: which words it has no token for, and whether the prompt was cut."""

    split_words: list[str]  # words the tokenizer could only spell in pieces (not one token of its vocabulary)
    tokens: int  # the prompt's tokens, start and end included
    limit: int  # the text encoder's positions: tokens past it are cut
    kept: str  # the prompt as far as the encoder reads it

    @property
    def cut(self) -> bool:
        return self.tokens > self.limit


def read_prompt(tokenizer: Any, prompt: str) -> PromptReading:
    """Which of the prompt's words are not one token, and where the text encoder's positions cut it.

    A model whose tokenizer was built for its own small world (sd-shapes: every grammar word one token) spells any
    other word letter by letter ("cat" -> "c", "at"): a word it never learned."""
    words = [w.strip(".,;:!?\"'()") for w in prompt.split()]
    with shared_lock(tokenizer):
        split = [w for w in dict.fromkeys(words) if w and len(tokenizer(w, add_special_tokens=False)["input_ids"]) > 1]
        ids = tokenizer(prompt)["input_ids"]
        limit = int(tokenizer.model_max_length)
        kept = tokenizer.decode(ids[:limit], skip_special_tokens=True)
    return PromptReading(split, len(ids), limit, kept)


@no_grad
def word_maps(model: Any, request: DiffusionRequest, step: int | None = None) -> WordMaps:
    """Run a text-to-image `model` (the loader's LoadedModel, or `run.Parts`) once through `run`, recording every
    cross-attention layer; the maps of the prompt's tokens and the final image. `step`: average only this 1-based
    step's maps (None: every step)."""
    from playground.core.diffusion.conditioning import is_super_resolution
    from playground.core.diffusion.pictures import pixels

    components = model.components
    unet, tokenizer = components.get("unet"), components.get("tokenizer")
    if unet is None or getattr(unet.config, "cross_attention_dim", None) is None or tokenizer is None:
        raise InputError("Word maps need a text-to-image model (a UNet with cross-attention, its text encoder and tokenizer), "
                         "such as segmind/tiny-sd or assets/models/imagen-shapes.")
    if is_super_resolution(model):
        raise InputError("A cascade's super-resolution stage draws from its base stage's picture, so it cannot run alone: map the "
                         "words of the base stage (assets/models/imagen-shapes for imagen-shapes-sr).")
    if not isinstance(request.prompt, str) or not request.prompt.strip():
        raise InputError("Give a prompt, e.g. 'a large red circle on the left'.")
    request = replace(request, prompt=request.prompt.strip(), batch=1, snapshots=False).checked()
    if request.guidance == 0:
        raise InputError("Guidance 0 runs only the empty prompt, so no word is read: use a guidance of 1 or more.")
    if step is not None:
        step = require_int(step, "step", low=1, high=request.steps) - 1
    tokens = prompt_tokens(tokenizer, request.prompt)
    if not tokens:
        raise InputError("The prompt has no tokens the text encoder reads; use words.")
    if not install(unet):
        raise InputError("This UNet has no cross-attention layers: nothing reads the prompt.")
    diffusion_run = run(model, request)
    side = unet.config.sample_size if isinstance(unet.config.sample_size, int) else unet.config.sample_size[0]
    with recording(side, 1, step) as recorder:
        for _ in diffusion_run:
            recorder.current += 1
    if recorder.total is None:
        raise InputError("No cross-attention was recorded: this UNet's attention maps are not square.")
    first = start_tokens(tokenizer, request.prompt)  # CLIP's start token comes first; T5 has none
    latent = recorder.total[0, first:first + len(tokens)]
    latent = latent / latent.sum(dim=(1, 2), keepdim=True).clamp_min(1e-12)
    image = pixels(model, diffusion_run.records[-1].x, full=True).clamp(-1, 1)  # a latent model's decoded; a pixel model's as is
    maps = torch.nn.functional.interpolate(latent[None], size=image.shape[-2:], mode="bilinear", align_corners=False)[0].clamp_min(0)
    maps = maps / maps.sum(dim=(1, 2), keepdim=True).clamp_min(1e-12)
    return WordMaps(tokens, maps, image, latent, request.steps, step)


def mass_inside(word_map: torch.Tensor, mask: torch.Tensor) -> float:
    """The share of a map's mass on the pixels of `mask` (bool, the same size).

    >>> m = torch.zeros(4, 4); m[:2, :2] = 0.25
    >>> mass_inside(m, m > 0)
    1.0
    """
    return float((word_map * mask.to(word_map.dtype)).sum() / word_map.sum().clamp_min(1e-12))
