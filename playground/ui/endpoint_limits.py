"""Every API endpoint's limits in one table, made from the constants the validators use.

    python -m playground.ui.endpoint_limits          # rewrite the README's `limits` block
    python -m playground.ui.endpoint_limits --check  # exit 1 if it is stale

Each row names the constant its check reads, so the table cannot drift from the code; `tests/test_endpoint_limits.py`
sends every "refused" length limit's value plus one to its endpoint and expects the refusal (and the README block to
be this table).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from playground.config import ATTENTION_MAX_TOKENS, QueueLimits, Settings
from playground.core.diffusion import conditioning, designs, unclip
from playground.core.diffusion import run as diffusion_run
from playground.core.diffusion.pictures import MAX_IMAGE_SIDE
from playground.core.multimodal import clip_space
from playground.core.text import (
    attention,
    generation,
    inside,
    interventions,
    kv_cache,
    masked,
    routing,
    seq2seq,
    tokenize,
    word_split,
)
from playground.core.training import toy_diffusion, toy_gpt
from playground.models.sources import MAX_SOURCE_LEN
from playground.readme_blocks import read_block, write_block
from playground.ui import gpt_tab, tokenizer_tab
from playground.ui.common import MAX_UPLOAD_PIXELS

REFUSED = "refused"  # `past` of a limit whose next value is refused with a message


@dataclass(frozen=True)
class Limit:
    endpoint: str  # the API name, without its slash
    parameter: str  # the parameter it bounds
    most: int | float  # the largest length or value accepted
    unit: str  # what `most` counts: "characters", "tokens", "lines", or "" for a plain number
    past: str = REFUSED  # what happens past it: REFUSED, or how the input is cut


SOURCE = "model / tokenizer"
LIMITS: tuple[Limit, ...] = (
    Limit("tokenize", "text", tokenize.MAX_CHARS, "characters"),
    Limit("tokenize", "tokenizer", MAX_SOURCE_LEN, "characters"),
    Limit("explain_word", "word", word_split.MAX_WORD_CHARS, "characters"),
    Limit("attention", "text", attention.MAX_TEXT_CHARS, "characters"),
    Limit("attention", "target_text", attention.MAX_TEXT_CHARS, "characters"),
    Limit("attention", "text", Settings.attention_max_tokens, "tokens",
          f"cut to its start (`truncated`); PLAYGROUND_ATTENTION_MAX_TOKENS, at most {ATTENTION_MAX_TOKENS}, and the model's context"),
    Limit("generate", "prompt", gpt_tab.MAX_PROMPT_CHARS, "characters"),
    Limit("generate", "prompt", 0, "", "its positions less `max_new_tokens`: cut to its end, with a notice"),
    Limit("generate", "max_new_tokens", generation.MAX_NEW_TOKENS, ""),
    Limit("inside", "text", inside.MAX_TEXT_CHARS, "characters"),
    Limit("inside", "text", inside.MAX_TOKENS, "tokens", "cut to its start"),
    Limit("route", "text", routing.MAX_TEXT_CHARS, "characters"),
    Limit("route", "text", routing.MAX_TOKENS, "tokens", "cut to its start, with a note; and the model's context"),
    Limit("kv_cache", "prompt", kv_cache.MAX_PROMPT_CHARS, "characters"),
    Limit("kv_cache", "prompt", 0, "", "its positions less `max_new_tokens`: cut to its end, with a notice"),
    Limit("kv_cache", "max_new_tokens", kv_cache.MAX_NEW_TOKENS, ""),
    Limit("score", "text", inside.MAX_TEXT_CHARS, "characters"),
    Limit("score", "text", inside.MAX_SCORE_TOKENS, "tokens", "cut at the model's context (`truncated`)"),
    Limit("ablate", "text", interventions.MAX_TEXT_CHARS, "characters"),
    Limit("ablate", "text", interventions.MAX_TOKENS, "tokens", "its end kept (`truncated`); the model's context"),
    Limit("ablate", "text", interventions.MAX_GRID_TOKENS, "tokens for a sweep", "its end kept (`truncated`)"),
    Limit("ablate", "heads", interventions.MAX_HEADS_LISTED, "heads"),
    Limit("ablate", "top_k", interventions.MAX_TOP_K, ""),
    Limit("patch", "clean", interventions.MAX_TEXT_CHARS, "characters"),
    Limit("patch", "corrupt", interventions.MAX_TEXT_CHARS, "characters"),
    Limit("patch", "clean", interventions.MAX_GRID_TOKENS, "tokens"),
    Limit("patch", "corrupt", interventions.MAX_GRID_TOKENS, "tokens"),
    Limit("sink", "text", interventions.MAX_TEXT_CHARS, "characters"),
    Limit("sink", "text", interventions.MAX_TOKENS, "tokens", "its end kept (`truncated`); the model's context"),
    Limit("fill_mask", "text", masked.MAX_TEXT_CHARS, "characters"),
    Limit("fill_mask", "text", masked.MAX_MASKS, "[MASK]s"),
    Limit("fill_mask", "top_k", masked.MAX_TOP_K, ""),
    Limit("embed", "sentences", masked.MAX_SENTENCES, "lines"),
    Limit("embed", "sentences", masked.MAX_SENTENCE_CHARS, "characters a line"),
    Limit("text2text", "text", seq2seq.MAX_TEXT_CHARS, "characters"),
    Limit("text2text", "num_beams", seq2seq.MAX_BEAMS, ""),
    Limit("text2text", "max_new_tokens", seq2seq.MAX_NEW_TOKENS, ""),
    Limit("forward_noise", "image", MAX_UPLOAD_PIXELS, "pixels", "refused before it is decoded"),
    Limit("forward_noise", "image", MAX_IMAGE_SIDE, "pixels a side", "shrunk to fit"),
    Limit("denoise", "prompt", conditioning.MAX_PROMPT_CHARS, "characters"),
    Limit("denoise", "negative_prompt", conditioning.MAX_PROMPT_CHARS, "characters"),
    Limit("denoise", "steps", diffusion_run.MAX_STEPS, ""),
    Limit("denoise", "guidance_scale", diffusion_run.MAX_GUIDANCE, ""),
    Limit("cross_attention", "prompt", conditioning.MAX_PROMPT_CHARS, "characters"),
    Limit("cross_attention", "steps", diffusion_run.MAX_STEPS, ""),
    Limit("cross_attention", "guidance_scale", diffusion_run.MAX_GUIDANCE, ""),
    Limit("clip", "texts", clip_space.MAX_TEXTS, "lines"),
    Limit("clip", "texts", clip_space.MAX_LINE_CHARS, "characters a line"),
    Limit("clip", "texts", 0, "tokens a line", "each caption cut to its start (clip-shapes reads 16 tokens)"),
    Limit("clip", "image", MAX_UPLOAD_PIXELS, "pixels", "refused before it is decoded; read at the model's size"),
    Limit("unclip", "prompt", unclip.MAX_PROMPT_CHARS, "characters"),
    Limit("unclip", "prompt", 0, "tokens", "cut to its start (unclip-shapes' text towers read 16 tokens)"),
    Limit("unclip", "steps", unclip.MAX_STEPS, ""),
    Limit("unclip", "guidance_scale", unclip.MAX_GUIDANCE, ""),
    Limit("variations", "image", MAX_UPLOAD_PIXELS, "pixels", "refused before it is decoded; read at the model's size (32x32)"),
    Limit("variations", "n", unclip.MAX_VARIATIONS, ""),
    Limit("designs", "prompt", designs.MAX_PROMPT_CHARS, "characters"),
    Limit("designs", "prompt", 0, "tokens", "cut to its start (sd-shapes' encoder reads 16 tokens, imagen-shapes' T5 77)"),
    Limit("designs", "steps", designs.MAX_STEPS, ""),
    Limit("designs", "guidance_scale", designs.MAX_GUIDANCE, ""),
    Limit("train_toy", "steps", toy_diffusion.MAX_STEPS, ""),
    Limit("train_flow", "steps", toy_diffusion.MAX_STEPS, "", "refused (each of the two trainings stops at 60 s)"),
    Limit("train_gpt", "text", toy_gpt.MAX_CHARS, "characters"),
    Limit("train_gpt", "steps", toy_gpt.MAX_STEPS, ""),
)


def _most(limit: Limit) -> str:
    if not limit.most:  # set by the model that runs
        return "the model's context:"
    return f"{limit.most:,g}" if isinstance(limit.most, float) else f"{limit.most:,}"


def table(limits: tuple[Limit, ...] = LIMITS, queue: QueueLimits | None = None) -> str:
    """The markdown of the README's `limits` block."""
    queue = queue or QueueLimits()
    rows = ["| endpoint | parameter | at most | past it |", "|---|---|---|---|"]
    rows += [f"| `/{limit.endpoint}` | `{limit.parameter}` | {_most(limit)} {limit.unit} | {limit.past} |".replace("  |", " |")
             for limit in limits]
    return "\n".join([
        "Generated from the constants the checks read (`python -m playground.ui.endpoint_limits`); every model id or folder is "
        f"at most {MAX_SOURCE_LEN} characters, every tokenizer list at most {tokenizer_tab.MAX_TOKENIZERS} names.",
        "",
        *rows,
        "",
        f"Per visitor (`ui/visitor_limits.py`): {queue.per_session} heavy jobs waiting or running per browser session, "
        f"{queue.per_address} per client address; {queue.training_waiting} training runs waiting for the one trainer; "
        f"{queue.heavy_waiting} heavy jobs waiting in all, {queue.heavy_running} running at once; quick requests (`/tokenize`, "
        "`/explain_word`, `/models`) have their own line, served first. Past a limit: HTTP 429 and a message.",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's block is stale")
    if parser.parse_args(argv).check:
        stale = read_block("limits") != table()
        print("README limits block is stale: run python -m playground.ui.endpoint_limits" if stale else "README limits block is current")
        return int(stale)
    write_block("limits", table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
