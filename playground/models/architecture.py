"""Which of the three transformer families a config describes: encoder, decoder or encoder-decoder."""

from __future__ import annotations

from typing import Any

# model types that are decoder-only even when a folder holds only the base model (no LM head in `architectures`)
DECODER_TYPES = frozenset({"gpt2", "gpt_neo", "gpt_neox", "gptj", "llama", "mistral", "qwen2", "phi", "opt", "bloom", "falcon", "gemma"})


def architecture_of(config: Any) -> str:
    """"encoder-decoder", "decoder" or "encoder", from a transformers config.

    >>> from transformers import BertConfig, GPT2Config, T5Config
    >>> [architecture_of(c()) for c in (BertConfig, GPT2Config, T5Config)]
    ['encoder', 'decoder', 'encoder-decoder']
    """
    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder"
    names = " ".join(getattr(config, "architectures", None) or [])
    if getattr(config, "is_decoder", False) or "CausalLM" in names or "LMHead" in names or config.model_type in DECODER_TYPES:
        return "decoder"
    return "encoder"


def has_masked_lm_head(config: Any) -> bool:
    """Does the folder's `architectures` name a masked-LM head (BertForMaskedLM, ...)?"""
    return any("MaskedLM" in name for name in getattr(config, "architectures", None) or [])
