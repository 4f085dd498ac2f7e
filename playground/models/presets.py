"""Model families and presets: each preset names a Hub default and its embedded offline counterpart.

A preset is addressed by its Hub id everywhere (UI and API). Online it loads that Hub model;
offline (or when the Hub cannot be reached) it resolves to the embedded counterpart under
`assets/`, trained by the scripts in `playground/train/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from playground.errors import InputError


class Family(str, Enum):
    """What kind of model a source holds, which decides how it is loaded."""

    TOKENIZER = "tokenizer"  # AutoTokenizer only
    CAUSAL_LM = "causal-lm"  # decoder-only (GPT)
    MASKED_LM = "masked-lm"  # encoder-only (BERT)
    SEQ2SEQ = "seq2seq"  # encoder-decoder (T5)
    ENCODER = "encoder"  # any encoder's base model without a head (AutoModel): attention and embeddings
    CLIP = "clip"  # a CLIPModel (image and text towers in one space), its tokenizer and its image processor
    PRIOR = "prior"  # DALL-E 2's prior: a KandinskyPriorPipeline folder (PriorTransformer, scheduler, CLIP towers)
    DIFFUSION = "diffusion"  # pixel-space DDPM (UNet2DModel + scheduler)
    LATENT_DIFFUSION = "latent-diffusion"  # autoencoder + UNet on its latents

    @classmethod
    def parse(cls, value: Family | str) -> Family:
        if isinstance(value, Family):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            names = ", ".join(f.value for f in cls)
            raise InputError(f"Unknown model family {value!r}; use one of: {names}.") from None


@dataclass(frozen=True)
class Preset:
    family: Family  # how it is loaded
    hub_id: str  # the name users and the API address it by; loaded from the Hub when online
    embedded: str  # folder under assets/ used offline (relative to assets/)
    description: str  # one line for the Models tab
    train_command: str | None = None  # how to build the embedded counterpart, when it is trained here
    revision: str | None = None  # the Hub commit it is pinned to (a moving `main` could change what users see)
    pin_note: str = ""  # why this revision, when it is not simply the head of `main`
    files: tuple[str, ...] = ()  # the files of the Hub repo at `revision` that the loader reads (the Space preloads them)


# Commits of the Hub repos the presets are pinned to (the head of `main` when pinned, unless noted), and the
# files there that the loader reads, from the repos' own file listings (hub.transformers_files picks them;
# tests/test_hub_presets.py checks that the loader fetches exactly these from the same layouts).
GPT2_REVISION = "607a30d783dfa663caf39e06633721c8d4cfcd7e"
BERT_REVISION = "86b5e0934494bd15c9632b12f734a8a67f723594"
T5_REVISION = "df1b051c49625cf57a3d0d8d3863ed4d13564fe4"
GPT2_TOKENIZER = ("config.json", "merges.txt", "tokenizer.json", "vocab.json")
BERT_TOKENIZER = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt")
T5_TOKENIZER = ("config.json", "spiece.model", "tokenizer.json", "tokenizer_config.json")

PRESETS: tuple[Preset, ...] = (
    Preset(
        Family.TOKENIZER,
        "gpt2",
        "tokenizers/gpt2",
        "OpenAI GPT-2 byte-level BPE (the real vocabulary)",
        revision=GPT2_REVISION,
        files=GPT2_TOKENIZER,
    ),
    Preset(
        Family.TOKENIZER,
        "bert-base-uncased",
        "tokenizers/bert-base-uncased",
        "Google BERT WordPiece, lower-cased (real)",
        revision=BERT_REVISION,
        files=BERT_TOKENIZER,
    ),
    Preset(
        Family.TOKENIZER,
        "t5-small",
        "tokenizers/t5-small",
        "Google T5 SentencePiece unigram (real)",
        revision=T5_REVISION,
        files=T5_TOKENIZER,
    ),
    Preset(
        Family.CAUSAL_LM,
        "gpt2",
        "models/gpt-shakespeare",
        "decoder-only; offline: a small GPT trained here on Shakespeare",
        "python -m playground.train.gpt",
        GPT2_REVISION,
        files=(*GPT2_TOKENIZER, "generation_config.json", "model.safetensors"),
    ),
    Preset(
        Family.CAUSAL_LM,
        "HuggingFaceTB/SmolLM2-135M",
        "models/llama-shakespeare",
        "today's decoder (Llama family: RoPE, RMSNorm, SwiGLU, 9 query heads on 3 key/value heads); offline: a small Llama trained "
        "here on Shakespeare",
        "python -m playground.train.llama",
        "4e53f736cbb20a9a0f56b4c4bf378d9f306ff915",
        files=("config.json", "generation_config.json", "merges.txt", "model.safetensors", "special_tokens_map.json", "tokenizer.json",
               "tokenizer_config.json", "vocab.json"),
    ),
    Preset(
        Family.MASKED_LM,
        "bert-base-uncased",
        "models/bert-shakespeare",
        "encoder-only; offline: a small BERT trained here on Shakespeare",
        "python -m playground.train.bert",
        BERT_REVISION,
        files=(*BERT_TOKENIZER, "model.safetensors"),
    ),
    Preset(
        Family.SEQ2SEQ,
        "t5-small",
        "models/t5-tasks",
        "encoder-decoder; offline: a small T5 trained here on text-to-text tasks",
        "python -m playground.train.t5",
        T5_REVISION,
        files=(*T5_TOKENIZER, "generation_config.json", "model.safetensors"),
    ),
    Preset(
        Family.DIFFUSION,
        "google/ddpm-cifar10-32",
        "models/ddpm-fashion",
        "pixel DDPM; offline: a class-conditional DDPM trained here on Fashion-MNIST",
        "python -m playground.train.ddpm",
        "267b167dc01f0e4e61923ea244e8b988f84deb80",
        "head of main; components at the repo root (no unet/ or scheduler/ folders), beside a pickle and custom code that are never "
        "fetched",
        ("config.json", "diffusion_pytorch_model.safetensors", "model_index.json", "scheduler_config.json"),
    ),
    Preset(
        Family.LATENT_DIFFUSION,
        "segmind/tiny-sd",
        "models/sd-shapes",
        "latent diffusion (text-to-image); offline: a Stable-Diffusion-shaped model of coloured shapes trained here",
        "python -m playground.train.shapes",
        "252ce164b33431e42db66b366f82dc15e4df7575",
        "refs/pr/1 (the Hub's safetensors conversion, unmerged): main holds only pickled .bin weights, which are never loaded",
        (
            "model_index.json",
            "scheduler/scheduler_config.json",
            "text_encoder/config.json",
            "text_encoder/model.safetensors",
            "tokenizer/merges.txt",
            "tokenizer/special_tokens_map.json",
            "tokenizer/tokenizer_config.json",
            "tokenizer/vocab.json",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.safetensors",
        ),
    ),
)


def find_preset(family: Family | str, name: str) -> Preset | None:
    """The preset of `family` addressed by `name` (its Hub id), or None.

    >>> find_preset("tokenizer", "gpt2").embedded
    'tokenizers/gpt2'
    """
    family = Family.parse(family)
    for preset in PRESETS:
        if preset.family is family and preset.hub_id == name:
            return preset
    return None


def presets_of(family: Family | str) -> list[Preset]:
    family = Family.parse(family)
    return [p for p in PRESETS if p.family is family]
