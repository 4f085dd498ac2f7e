"""Encoder-decoder models at work: generate with greedy or beam search, and see every beam step. No gradio.

Beam search is `model.generate`'s own, so results equal it by construction; a logits processor
placed last in its list records, at every step, the live beams (`input_ids`) and the log-probs
they extend with. From those we rebuild what the search did:

    score(beam + v) = score(beam) + log p(v | beam, input)        (the running sum of log-probs)
    the top 2k extensions survive as the next live beams (k of them) unless they end in </s>,
    in which case the best k of those are set aside as finished hypotheses, scored
    score / length ** length_penalty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playground.core.cache import shared_lock
from playground.core.inputs import require_int, require_text
from playground.errors import InputError
from playground.lazy import from_library, no_grad, torch

MAX_TEXT_CHARS = 2_000
MAX_BEAMS = 8
MAX_NEW_TOKENS = 64


@dataclass(frozen=True)
class Beam:
    ids: tuple[int, ...]  # decoder tokens after the start token
    score: float  # sum of log-probs of `ids`
    status: str  # "live", "pruned" or "finished" (ended with </s> among the best)


@dataclass(frozen=True)
class BeamStep:
    index: int  # 0-based decoding step
    live: list[Beam]  # the beams extended at this step (distinct prefixes), best first
    candidates: list[Beam]  # the best 2k extensions and what became of them


@dataclass(frozen=True)
class TextResult:
    sequences: list[tuple[int, ...]]  # returned decoder tokens (start token dropped), best first
    # per output: its summed log-probability / length ** length_penalty (1: the mean log-probability per token), the
    # score beam search ranks finished beams by (generate's sequences_scores); greedy's one output is scored the same way
    scores: list[float]
    steps: list[BeamStep]  # beam search only; [] for greedy


class _Recorder:
    """A logits processor that changes nothing and keeps (input_ids, log-probs) of every step."""

    def __init__(self) -> None:
        self.records: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.records.append((input_ids.detach().cpu().clone(), scores.detach().float().cpu().clone()))
        return scores


def check_request(text: Any, num_beams: Any, max_new_tokens: Any, prefix: str = "") -> tuple[str, int, int]:
    """`prefix`: a task prefix the running model knows, named in the error for an empty input."""
    text = require_text(text, "text", max_chars=MAX_TEXT_CHARS)
    if not text.strip():
        such = f", such as '{prefix}'" if prefix else ""
        raise InputError(f"Enter an input text, starting with a task prefix the model was trained on{such}.")
    return (
        text,
        require_int(num_beams, "beams", low=1, high=MAX_BEAMS),
        require_int(max_new_tokens, "max new tokens", low=1, high=MAX_NEW_TOKENS),
    )


@no_grad
def text_to_text(model: Any, tokenizer: Any, text: str, num_beams: int = 1, max_new_tokens: int = 32) -> TextResult:
    """Greedy (num_beams=1) or beam search through `model.generate`, with the beam steps recorded."""
    LogitsProcessorList = from_library("transformers", "LogitsProcessorList")

    text, num_beams, max_new_tokens = check_request(text, num_beams, max_new_tokens)
    device = next(model.parameters()).device
    with shared_lock(tokenizer):  # shared by every user: one call at a time
        enc = {k: v.to(device) for k, v in tokenizer(text, return_tensors="pt", truncation=True, verbose=False).items()}
    recorder = _Recorder()
    out = model.generate(**enc, num_beams=num_beams, num_return_sequences=num_beams, max_new_tokens=max_new_tokens,
                         do_sample=False, output_scores=True, return_dict_in_generate=True,
                         logits_processor=LogitsProcessorList([recorder]))
    start = 1  # the decoder start token
    sequences = [tuple(t for t in seq[start:].tolist()) for seq in out.sequences.cpu()]
    sequences = [_strip_pad(s, model.config.pad_token_id, model.config.eos_token_id) for s in sequences]
    if num_beams == 1:
        # greedy search hands the processors raw logits (beam search hands them log-probs)
        logprobs = [rec[1].log_softmax(-1)[0, tok].item() for rec, tok in zip(recorder.records, sequences[0])]
        # scored as beam search scores a finished beam, so one beam and eight read on one scale
        penalty = float(getattr(model.generation_config, "length_penalty", 1.0) or 1.0)
        return TextResult(sequences, [sum(logprobs) / max(1, len(logprobs)) ** penalty], [])
    steps = _beam_steps(recorder.records, num_beams, model.config.eos_token_id)
    return TextResult(sequences, out.sequences_scores.cpu().tolist(), steps)


def _strip_pad(seq: tuple[int, ...], pad: int | None, eos: int | None) -> tuple[int, ...]:
    """Drop the padding after </s> (shorter beams are padded to the longest)."""
    if eos is not None and eos in seq:
        return seq[: seq.index(eos) + 1]
    return tuple(t for t in seq if t != pad)


def _beam_steps(records, num_beams: int, eos: int | None) -> list[BeamStep]:
    scores: dict[tuple[int, ...], float] = {(): 0.0}
    steps = []
    for index, (ids, logprobs) in enumerate(records):
        prefixes = [tuple(row[1:].tolist()) for row in ids]  # drop the start token
        live, rows = [], []
        for r, p in enumerate(prefixes):
            if p in scores and p not in [b.ids for b in live]:
                live.append(Beam(p, scores[p], "live"))
                rows.append(r)
        live.sort(key=lambda b: -b.score)
        total = torch.stack([logprobs[r] + scores[prefixes[r]] for r in rows])  # [beams, vocab]
        values, flat = total.flatten().topk(min(2 * num_beams, total.numel()))
        next_live = {tuple(row[1:].tolist()) for row in records[index + 1][0]} if index + 1 < len(records) else None
        candidates, n_finished = [], 0
        for v, f in zip(values.tolist(), flat.tolist()):
            beam_row, token = divmod(f, total.shape[1])
            seq = prefixes[rows[beam_row]] + (token,)
            if token == eos:
                status = "finished" if n_finished < num_beams and len(candidates) < num_beams else "pruned"
                n_finished += status == "finished"
            elif next_live is None:
                status = "live" if sum(c.status == "live" for c in candidates) < num_beams else "pruned"
            else:
                status = "live" if seq in next_live else "pruned"
            candidates.append(Beam(seq, v, status))
            if status == "live":
                scores[seq] = v
        steps.append(BeamStep(index, live, candidates))
    return steps


@dataclass(frozen=True)
class DecoderLens:
    position: int  # the decoder position (0: predicting the first output token)
    layers: list[str]
    top: list[list[tuple[int, float]]]  # per layer: (token id, probability) best first


@no_grad
def decoder_lens(model: Any, tokenizer: Any, text: str, decoder_ids: tuple[int, ...], position: int, k: int = 5) -> DecoderLens:
    """What each decoder layer would predict at output `position` (teacher-forced on `decoder_ids`):
    the final norm and the LM head applied to its hidden state. The last row is the model's own."""
    k = require_int(k, "k", low=1, high=20)
    start = model.config.decoder_start_token_id
    dec = torch.tensor([[start, *decoder_ids]])
    position = require_int(position, "output position", low=0, high=dec.shape[1] - 1)
    device = next(model.parameters()).device
    with shared_lock(tokenizer):
        enc = {kk: v.to(device) for kk, v in tokenizer(text, return_tensors="pt", truncation=True, verbose=False).items()}
    out = model(**enc, decoder_input_ids=dec.to(device), output_hidden_states=True)
    hidden = out.decoder_hidden_states  # embeddings, then each block; the last one already through the final norm
    scale = model.config.d_model ** -0.5 if getattr(model.config, "tie_word_embeddings", False) else 1.0  # T5 rescales tied heads
    norm, head = model.decoder.final_layer_norm, model.get_output_embeddings()
    top = []
    for i, h in enumerate(hidden):
        x = h[0, position]
        x = x if i == len(hidden) - 1 else norm(x)
        probs = head(x * scale).float().softmax(-1)
        values, ids = probs.topk(k)
        top.append([(int(t), float(v)) for v, t in zip(values, ids)])
    return DecoderLens(position, ["embeddings"] + [f"layer {i}" for i in range(1, len(hidden))], top)
