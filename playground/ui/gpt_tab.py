"""GPT tab: decoder-only generation, one token at a time, with the distribution behind every token."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, replace
from typing import Any

import gradio as gr
import pandas as pd

from playground.core.cache import shared_lock
from playground.core.inputs import require_choice, require_int, require_text
from playground.core.render.lm import chips, step_bars, surprisal_html
from playground.core.text.generation import (
    MAX_NEW_TOKENS,
    GenStep,
    SamplingConfig,
    context_length,
    fit_to_context,
    logit_lens,
    step_through,
)
from playground.core.text.tokenize import byte_piece_face, visible
from playground.errors import InputError
from playground.lazy import torch
from playground.lessons import game
from playground.models import ModelLoader
from playground.models.zerogpu import GpuBudget, gpu_task
from playground.ui.common import (
    SESSION_GPT,
    TabView,
    api_endpoint,
    bind,
    clear_first,
    examples,
    form_event,
    launch_alone,
    lens_table,
    load_causal,
    user_errors,
)
from playground.ui.kv_cache_section import build_kv_cache_section

EXPLAINER = """
### GPT: a decoder writes one token at a time
A decoder-only model reads the text so far (left to right: the causal mask) and outputs a score,
a **logit**, for every token in its vocabulary; softmax turns them into a probability
distribution over the next token. The decoding rule picks one: **greedy** takes the most likely;
**sampling** draws from the distribution after **temperature** (below 1 sharpens, above 1
flattens), **top-k** (keep the k best) and **top-p** (keep the smallest set with probability p).
A **repetition penalty** lowers tokens already in the text. The token is appended; repeat.

Generate (or **Step** one token at a time), then pick a step: its candidates before and after
those rules, and the **logit lens**, what each layer would already predict there (the final norm
and output head applied to that layer's hidden state). Pick another candidate to **branch**.
"""
EXAMPLES = [
    ["gpt2", "ROMEO.\nBut soft, what light through yonder window breaks?\n"],
    ["gpt2", "First Citizen.\nBefore we proceed any further, hear me speak.\n"],
    ["gpt2", "The meaning of life is"],
]
TOKENS_BUDGET = GpuBudget(20, 0.25, "max_new_tokens")  # ZeroGPU: loading, then a generous quarter second a token
MODES = [("Greedy", "greedy"), ("Sampling", "sample"), ("Beam search (final text only)", "beam")]
MAX_PROMPT_CHARS = 4_000
MAX_BEAMS = 8
LENS_TOP = 5


@dataclass
class GenSession:
    """One user's generation (kept in gr.State): what was asked, every step, and a branch if one was taken."""

    model: str  # the source it was asked for by
    prompt_ids: list[int]  # the prompt as the model reads it (its end, when it had to be cut to fit the model's positions)
    cfg: SamplingConfig
    steps: list[GenStep]
    branch_at: int | None = None  # the 0-based step the branch replaced
    branch: list[GenStep] | None = None
    asked_ids: list[int] | None = None  # the whole prompt as asked (Step continues a session only for the same prompt)

    def __post_init__(self) -> None:
        if self.asked_ids is None:
            self.asked_ids = list(self.prompt_ids)


def sampling_config(
    mode: Any, max_new_tokens: Any, temperature: Any, top_k: Any, top_p: Any, repetition_penalty: Any, seed: Any
) -> SamplingConfig:
    require_choice(mode, "decoding", [m for _, m in MODES])
    return SamplingConfig(max_new_tokens=max_new_tokens, do_sample=mode == "sample", temperature=temperature, top_k=top_k, top_p=top_p,
                          repetition_penalty=repetition_penalty, seed=seed).checked()


@dataclass(frozen=True)
class GenerateRequest:
    """A generation as the page asks it (Generate, or Step: one more token)."""

    model: str  # a causal LM preset, Hub id or folder, or SESSION_GPT
    prompt: str  # the text to continue
    mode: str  # one of MODES' values: greedy, sample, beam
    max_new_tokens: Any = 40  # tokens to generate (Step ignores it: one more each press)
    temperature: Any = 1.0  # sampling only
    top_k: Any = 0  # sampling only; 0: off
    top_p: Any = 1.0  # sampling only; 1: off
    repetition_penalty: Any = 1.0  # 1: off
    seed: Any = 0  # the sampler's generator
    num_beams: Any = 4  # beam search only

    def sampling(self, max_new_tokens: Any = None) -> SamplingConfig:
        return sampling_config(self.mode, self.max_new_tokens if max_new_tokens is None else max_new_tokens, self.temperature,
                               self.top_k, self.top_p, self.repetition_penalty, self.seed)


@dataclass(frozen=True)
class GenerateFrame:
    """One update of the generated text, in the order of the event's outputs."""

    text: str  # the prompt and the continuation as chips (HTML)
    session: GenSession | None  # the session's generation (None after beam search: it has no single steps)
    step: Any  # the step slider's update
    notice: str  # which model runs, and anything cut or out of its depth

    def outputs(self) -> tuple:
        return self.text, self.session, self.step, self.notice


def prompt_ids(tokenizer: Any, prompt: Any) -> list[int]:
    prompt = require_text(prompt, "prompt", max_chars=MAX_PROMPT_CHARS)
    with shared_lock(tokenizer):  # shared by every user: one call at a time
        ids = tokenizer(prompt, verbose=False)["input_ids"]
    if not ids:
        raise InputError("Enter a prompt: the model continues it.")
    return ids


def _face(tokenizer: Any, token_id: int) -> str:
    """A token as text, whitespace visible; a byte-level piece that is part of a character (half an emoji, the start of an
    accented letter) as its bytes, ‹F0›‹9F›, not the "�" that decoding it alone gives."""
    with shared_lock(tokenizer):
        text = tokenizer.decode([token_id])
        raw = tokenizer.convert_ids_to_tokens([token_id])[0] if "\ufffd" in text else None
    return byte_piece_face(raw)[0] if raw is not None else visible(text)


def render_session(tokenizer: Any, session: GenSession, inspected: int | None = None) -> str:
    """The prompt, then the continuation as chips; with a branch, both continuations one above the other.
    `inspected`: the step (from 0) looked at under "Inside one step", outlined in the text and titled so."""
    with shared_lock(tokenizer):
        prompt = f'<div class="lm-prompt">{html.escape(tokenizer.decode(session.prompt_ids))}</div>'
    marks = ["lm-new lm-inspected" if i == inspected else "lm-new" for i in range(len(session.steps))]
    title = "continuation" + (f" (outlined: step {inspected + 1}, inspected below)" if inspected is not None else "")
    original = chips([_face(tokenizer, s.token_id) for s in session.steps], marks, title)
    if session.branch is None:
        return f'<div class="lm-gen" id="gpt-text">{prompt}{original}</div>'
    marks = ["lm-forced" if s.index == session.branch_at else "lm-new" for s in session.branch]
    branch = chips([_face(tokenizer, s.token_id) for s in session.branch], marks, f"branch: step {session.branch_at + 1} changed by you")
    return f'<div class="lm-gen">{prompt}<div class="lm-side">{original}{branch}</div></div>'


def _steps(lm, ids: list[int], cfg: SamplingConfig, forced: dict[int, int] | None = None):
    return step_through(lm.model, torch.tensor([ids]), cfg, forced=forced, eos_token_id=lm.tokenizer.eos_token_id)


def _fitted(lm, prompt: Any, max_new_tokens: int) -> tuple[list[int], list[str]]:
    """(the prompt's ids, kept to what fits the model's positions beside the new tokens; the notes to show)."""
    ids, cut = fit_to_context(prompt_ids(lm.tokenizer, prompt), max_new_tokens, context_length(lm.model.config))
    return ids, [n for n in (cut, lm.depth_note(len(ids) + max_new_tokens)) if n]


# ---- event handlers ---------------------------------------------------------------------------------


@user_errors
def on_generate(loader: ModelLoader, request: GenerateRequest, trained: Any = None, progress=gr.Progress()):
    """Stream the continuation token by token: yields a GenerateFrame's outputs (text HTML, session, step slider, notice)."""
    cfg = request.sampling()
    name, lm = load_causal(loader, request.model, progress, trained)
    ids, notes = _fitted(lm, request.prompt, cfg.max_new_tokens)
    notice = " ".join([f"Running {lm.source.describe()}.", *notes])
    if request.mode == "beam":
        beams = require_int(request.num_beams, "beams", low=2, high=MAX_BEAMS)
        with torch.no_grad():
            out = lm.model.generate(torch.tensor([ids]), num_beams=beams, max_new_tokens=cfg.max_new_tokens, do_sample=False,
                                    repetition_penalty=cfg.repetition_penalty, pad_token_id=lm.tokenizer.eos_token_id)
        new = out[0, len(ids):].tolist()
        with shared_lock(lm.tokenizer):
            shown = html.escape(lm.tokenizer.decode(ids))
        text = (f'<div class="lm-gen"><div class="lm-prompt">{shown}</div>'
                f'{chips([_face(lm.tokenizer, t) for t in new], ["lm-new"] * len(new), f"best of {beams} beams")}</div>')
        yield GenerateFrame(text, None, gr.update(maximum=2, value=1, interactive=False),  # a slider's maximum must exceed its minimum (1)
                            notice + " Beam search shows its final text here; the T5 tab shows beams step by step.").outputs()
        return
    session = GenSession(name, ids, cfg, [])
    for step in _steps(lm, ids, cfg):
        session.steps.append(step)
        yield GenerateFrame(render_session(lm.tokenizer, session), session,
                            gr.update(maximum=max(2, len(session.steps)), value=len(session.steps), interactive=True), notice).outputs()


@user_errors
def on_step(loader: ModelLoader, request: GenerateRequest, session: GenSession | None, trained: Any = None, progress=gr.Progress()):
    """One more token. With the same model, prompt and settings it continues the session (earlier steps
    replayed as they were, so the result equals one full run with the same seed); otherwise it starts over."""
    if request.mode == "beam":
        raise InputError("Step works with greedy or sampling; beam search keeps several texts at once (see the T5 tab).")
    cfg = request.sampling(MAX_NEW_TOKENS)
    name, lm = load_causal(loader, request.model, progress, trained)
    full = prompt_ids(lm.tokenizer, request.prompt)
    same = (session is not None and session.model == name and session.asked_ids == full and session.branch is None
            and replace(session.cfg, max_new_tokens=MAX_NEW_TOKENS) == cfg)  # the budget may differ; the rules may not
    if not same:
        session = GenSession(name, full, cfg, [])
    n = len(session.steps)
    if n >= MAX_NEW_TOKENS:
        raise InputError(f"{MAX_NEW_TOKENS} tokens is the most one session generates; start again with a longer prompt.")
    if session.steps and session.steps[-1].token_id == lm.tokenizer.eos_token_id:
        raise InputError("The model ended the text (end-of-text token); change the prompt or settings to start again.")
    ids, notes = _fitted(lm, request.prompt, n + 1)
    if len(ids) < len(session.prompt_ids):  # the context is full: the prompt's start slides out, the steps stay
        session = replace(session, prompt_ids=ids)
    new = list(_steps(lm, session.prompt_ids, replace(cfg, max_new_tokens=n + 1), forced={s.index: s.token_id for s in session.steps}))
    session.steps.append(new[-1])
    return GenerateFrame(render_session(lm.tokenizer, session), session, gr.update(maximum=max(2, n + 1), value=n + 1, interactive=True),
                         " ".join([f"Running {lm.source.describe()}.", *notes])).outputs()


@user_errors
def on_inspect(loader: ModelLoader, session: GenSession | None, step: float, trained: Any = None):
    """The text with that step outlined, its candidates as bars, the candidates to branch to, and the logit lens
    table at that position."""
    if session is None or not session.steps:  # nothing generated yet, or beam search (which has no single steps)
        note = ('<p class="lm-note">No single steps to show: beam search keeps several texts at once and shows only the best '
                "(the T5 tab shows every beam step by step). Generate or Step with greedy or sampling to look inside one step.</p>")
        return (
            gr.update(),
            note,
            gr.update(choices=[], value=None),
            gr.update(value=None, label="Logit lens: generate with greedy or sampling"),
        )
    index = require_int(step, "step", low=1, high=len(session.steps)) - 1
    _, lm = load_causal(loader, session.model, trained=trained)
    chosen = session.steps[index]
    tok = lm.tokenizer
    bars = step_bars(chosen, [_face(tok, c.token_id) for c in chosen.candidates], [_face(tok, c.token_id) for c in chosen.raw_candidates],
                     sampled=session.cfg.do_sample)
    seen, options = set(), []
    for c in chosen.candidates + chosen.raw_candidates:
        if c.token_id not in seen:
            seen.add(c.token_id)
            options.append((f"{_face(tok, c.token_id)}  (p={c.prob:.3f}, model {c.raw_prob:.3f})", c.token_id))
    prefix = session.prompt_ids + [s.token_id for s in session.steps[:index]]
    lens = logit_lens(lm.model, torch.tensor([prefix]), position=-1, k=LENS_TOP)
    table = pd.DataFrame([[layer] + [f"{_face(tok, t)} ({p:.2f})" for t, p in row] for layer, row in zip(lens.layers, lens.top)],
                         columns=["layer"] + [f"#{i + 1}" for i in range(LENS_TOP)])
    alternative = next((v for _, v in options if v != chosen.token_id), None)
    label = f"Logit lens at step {index + 1}, where the text got {_face(tok, chosen.token_id)!r}: what each layer would predict"
    return (
        render_session(tok, session, inspected=index),
        bars,
        gr.update(choices=options, value=alternative),
        gr.update(value=table, label=label),
    )


@user_errors
def on_branch(loader: ModelLoader, session: GenSession | None, step: float, token_id: Any, trained: Any = None):
    """Continue from step `step` with `token_id` instead; the original stays beside the branch."""
    if session is None or not session.steps:
        raise InputError("Generate first, then pick a step and another candidate.")
    index = require_int(step, "step", low=1, high=len(session.steps)) - 1
    _, lm = load_causal(loader, session.model, trained=trained)
    token = require_int(token_id, "candidate", low=0, high=lm.model.config.vocab_size - 1)
    forced = {s.index: s.token_id for s in session.steps[:index]} | {index: token}
    cfg = replace(session.cfg, max_new_tokens=len(session.steps))  # as long as the original continuation
    session = replace(session, branch_at=index, branch=list(_steps(lm, session.prompt_ids, cfg, forced)))
    return render_session(lm.tokenizer, session), session


def _scored(lm, text: Any):
    from playground.core.text.inside import score_text

    with shared_lock(lm.tokenizer):  # score_text locks it too (re-entrant); faces are decoded under the same lock
        score = score_text(lm.model, lm.tokenizer, text)
        face = lambda token: _face(lm.tokenizer, lm.tokenizer.convert_tokens_to_ids(token))  # noqa: E731
        faces = [face(t) for t in score.tokens]
        top = [[(face(t.token), t.prob) for t in row] for row in score.top]
    return score, faces, top


@user_errors
def on_score(loader: ModelLoader, model: str, text: str, trained: Any = None, progress=gr.Progress()):
    """The text's tokens shaded by surprisal, with bits per character."""
    _, lm = load_causal(loader, model, progress, trained)
    score, faces, top = _scored(lm, text)
    probs = [None if lp is None else math.exp(lp) for lp in score.logprobs]
    note = " (cut at the model's context)" if score.truncated else ""
    return surprisal_html(faces, probs, score.ranks, top, score.bits_per_char) + (f"<p>{note}</p>" if note else "")


@user_errors
def score_api(loader: ModelLoader, text: str, model: str = "gpt2") -> dict:
    """Score `text` under a causal LM: each token's log-probability given the ones before it.

    Returns {"tokens", "logprobs" (natural log; null for the first token), "ranks" (1 = the model's top guess),
    "top" (per position, the model's top 5 as {"token", "prob"}), "bits_per_char" (over the scored tokens' characters),
    "truncated"}.
    """
    _, lm = load_causal(loader, model)
    return _scored(lm, text)[0].to_json()


@user_errors
def generate_api(loader: ModelLoader, prompt: str, model: str = "gpt2", max_new_tokens: int = 30, temperature: float = 1.0,
                 top_k: int = 0, top_p: float = 1.0, seed: int = 0, do_sample: bool = False) -> dict:
    """Generate a continuation of `prompt`, greedy or sampled, with the candidates of every step.

    Returns {"text", "tokens": [str], "steps": [{"token", "candidates": [{"token", "prob"}]}]}: `prob` is
    after temperature / top-k / top-p (what the sampler drew from); the same seed gives the same text.
    """
    if not isinstance(do_sample, bool):
        raise InputError("do_sample must be true or false.")
    cfg = sampling_config("sample" if do_sample else "greedy", max_new_tokens, temperature, top_k, top_p, 1.0, seed)
    _, lm = load_causal(loader, model)
    steps = list(_steps(lm, _fitted(lm, prompt, cfg.max_new_tokens)[0], cfg))
    tok = lm.tokenizer
    with shared_lock(tok):
        return {
            "text": tok.decode([s.token_id for s in steps]),
            "tokens": [tok.decode([s.token_id]) for s in steps],
            "steps": [
                {
                    "token": tok.decode([s.token_id]),
                    "candidates": [{"token": tok.decode([c.token_id]), "prob": c.prob} for c in s.candidates],
                }
                for s in steps
            ],
        }


# ---- guess the next token: the learner against the model ---------------------------------------------------

def _game_score(score: game.Score) -> str:
    if not score.rounds:
        return f"**Score:** no guesses yet. {game.STUDY}"
    you, model = score.you / score.rounds, score.model / score.rounds
    return (f"**Score after {score.rounds} token{'s' if score.rounds != 1 else ''}:** you {score.you} ({you:.0%}), the model's top-1 "
            f"{score.model} ({model:.0%}). {game.STUDY}")


def _game_context(tokenizer: Any, score: game.Score) -> str:
    passage = game.PASSAGES[score.passage]
    text = game.prompt_with_pieces(tokenizer, score)
    gap = "" if text.endswith(game.PIECE) else " "  # a piece to guess follows its word directly
    return (f'<div class="lm-prompt game-context"><em>{html.escape(passage.source)}</em><br>'
            f"{html.escape(text)}{gap}<strong>…?</strong></div>")


@user_errors
def on_game_new(loader: ModelLoader, model: str, passage: Any, trained: Any = None):
    """A new game on one passage: (game state, the passage so far, the last round (emptied), the score line)."""
    passage = require_int(passage, "passage", low=0, high=len(game.PASSAGES) - 1)
    _, lm = load_causal(loader, model, trained=trained)
    score = game.new_game(passage)
    return score.to_dict(), _game_context(lm.tokenizer, score), "", _game_score(score)


@user_errors
def on_game_guess(loader: ModelLoader, model: str, state: Any, guess: str, trained: Any = None):
    """Score one guess: (game state, the passage so far, what the model predicted and where your guess ranks, the
    score line, an emptied guess box)."""
    if not isinstance(state, dict):
        raise InputError("Press *New game* first: it picks the passage.")
    _, lm = load_causal(loader, model, trained=trained)
    score = game.Score(**state)
    r = game.play(lm.model, lm.tokenizer, score, require_text(guess, "guess", max_chars=game.MAX_GUESS_CHARS))
    rank = (f"your guess is its #{r.guess.rank:,} choice ({r.guess.probability:.2%})" if r.guess.rank
            else "your guess is not one token of its vocabulary")
    verdict = (f"The next token was **`{visible(r.actual)}`**. You: {'✅' if r.you_right else '❌'}; "
               f"the model's top-1 `{visible(r.guess.top[0][0])}`: {'✅' if r.model_right else '❌'}.")
    report = f"{verdict} The model: {rank}.\n\n{game.top_table(r.guess.top)}"
    if r.finished:
        report += "\n\n**Passage finished.** Pick another and press *New game*."
    return r.score.to_dict(), _game_context(lm.tokenizer, r.score), report, _game_score(r.score), ""


# ---- layout and wiring --------------------------------------------------------------------------


def build_gpt_tab(loader: ModelLoader, trained: gr.State | None = None) -> TabView:
    """Decoder-only generation. Named API endpoints: `/generate`, `/score`. `trained`: the session's tiny GPT from the
    Training tab (a state shared by the two tabs), offered as a model."""
    with gr.Column():  # a column of the app's page (a nested gr.Blocks costs a whole app's setup)
        gr.Markdown(EXPLAINER)
        session = gr.State(None, time_to_live=3600)
        with gr.Row():
            model = gr.Dropdown(["gpt2", "HuggingFaceTB/SmolLM2-135M", SESSION_GPT], value="gpt2", allow_custom_value=True,
                                elem_id="gpt-model",
                                label="Model: gpt2, your tiny GPT from the Training tab, a Hub id or an allowed folder", scale=2)
            mode = gr.Radio(MODES, value="greedy", label="Decoding", scale=3, elem_id="gpt-mode")
        prompt = gr.Textbox(label="Prompt", lines=3, value=EXAMPLES[0][1], max_length=MAX_PROMPT_CHARS, elem_id="gpt-prompt")
        examples(EXAMPLES, [model, prompt], "Examples (offline, gpt2 runs on a small GPT trained here on Shakespeare)")
        with gr.Row():
            max_new = gr.Slider(1, MAX_NEW_TOKENS, value=40, step=1, label="Max new tokens", elem_id="gpt-max-new")
            temperature = gr.Slider(0.05, 3.0, value=1.0, step=0.05, label="Temperature (sampling)")
            top_k = gr.Slider(0, 200, value=0, step=1, label="Top-k (0: off; sampling)")
            top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.01, label="Top-p (1: off; sampling)")
        with gr.Row():
            repetition = gr.Slider(1.0, 3.0, value=1.0, step=0.05, label="Repetition penalty (1: off)")
            seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
            beams = gr.Slider(2, MAX_BEAMS, value=4, step=1, label="Beams (beam search)")
        with gr.Row():
            go = gr.Button("Generate", variant="primary", elem_id="gpt-generate")
            step_btn = gr.Button("Step: one more token", elem_id="gpt-step")
        notice = gr.Markdown(elem_id="gpt-notice")
        shown = gr.HTML(elem_id="gpt-shown")
        gr.Markdown("#### Inside one step")
        step = gr.Slider(1, 2, value=1, step=1, label="Step", elem_id="gpt-step-pick")
        bars = gr.HTML(elem_id="gpt-bars")
        with gr.Row():
            alternative = gr.Dropdown([], label="Another candidate for this step", scale=3, elem_id="gpt-alternative")
            branch_btn = gr.Button("Branch from here", elem_id="gpt-branch", scale=1)
        lens = gr.Dataframe(
            label="Logit lens: what each layer would predict at this step", interactive=False, elem_id="gpt-lens", **lens_table(LENS_TOP)
        )

        mine = [trained] if trained is not None else []  # the session's tiny GPT, for the handlers that run a model
        widgets = {"model": model, "prompt": prompt, "mode": mode, "max_new_tokens": max_new, "temperature": temperature, "top_k": top_k,
                   "top_p": top_p, "repetition_penalty": repetition, "seed": seed, "num_beams": beams}
        generate = form_event(gpu_task(bind(on_generate, loader), TOKENS_BUDGET), GenerateRequest, widgets, *mine)
        one_more = form_event(gpu_task(bind(on_step, loader), TOKENS_BUDGET), GenerateRequest, widgets, session, *mine)
        generated = [shown, session, step, notice]
        inspected = [shown, bars, alternative, lens]
        inspect = gpu_task(bind(on_inspect, loader), GpuBudget(30))  # the logit lens runs the model
        clear_first(go.click, [notice]).then(generate.event, generate.inputs, generated, api_visibility="private").then(
            inspect, [session, step] + mine, inspected, api_visibility="private")
        clear_first(step_btn.click, [notice]).then(one_more.event, one_more.inputs, generated, api_visibility="private").then(
            inspect, [session, step] + mine, inspected, api_visibility="private")
        step.input(
            inspect, [session, step] + mine, inspected, api_visibility="private", trigger_mode="always_last"
        )  # user changes only, coalesced
        branch_btn.click(
            gpu_task(bind(on_branch, loader), GpuBudget(30, 0.25, "max_new_tokens")),
            [session, step, alternative] + mine,
            [shown, session],
            api_visibility="private",
        )

        gr.Markdown("#### How surprising is each token? (per-token surprisal)\n"
                    "Any text scored by the model: each token's probability given the tokens before it. A model that "
                    "predicts a text well spends few bits per character on it.")
        score_text_box = gr.Textbox(
            label="Text to score", lines=3, value=EXAMPLES[0][1], max_length=MAX_PROMPT_CHARS, elem_id="gpt-score-text"
        )
        score_btn = gr.Button("Score", elem_id="gpt-score")
        scored = gr.HTML(elem_id="gpt-scored")
        score_btn.click(gpu_task(bind(on_score, loader), GpuBudget(30)), [model, score_text_box] + mine, scored, api_visibility="private")

        with gr.Accordion("Guess the next token: you against the model", open=False, elem_id="gpt-game"):
            gr.Markdown("Read the passage so far and type the **token** you think comes next; the model predicts too. A "
                        "token is usually a whole word or a punctuation mark, but a rarer word is spelled in pieces, shown "
                        "here with a · between them (Rom·ans): when the passage ends in ·, guess the rest of that word's "
                        "next piece. A guess counts when it is the real next token, ignoring case and spaces. The passages "
                        "are from plays the offline GPT never read.")
            with gr.Row():
                passage = gr.Dropdown(
                    [(p.source, i) for i, p in enumerate(game.PASSAGES)], value=0, label="Passage", elem_id="gpt-game-passage"
                )
                new_game = gr.Button("New game", elem_id="gpt-game-new")
            game_state = gr.State(None)
            context = gr.HTML(elem_id="gpt-game-context")
            with gr.Row():
                guess = gr.Textbox(label="Your guess of the next token", max_length=game.MAX_GUESS_CHARS, scale=3, elem_id="gpt-game-guess")
                guess_btn = gr.Button("Guess", variant="primary", scale=1, elem_id="gpt-game-go")
            round_md = gr.Markdown(elem_id="gpt-game-round")
            score_md = gr.Markdown(elem_id="gpt-game-score")
        new_game.click(
            bind(on_game_new, loader), [model, passage] + mine, [game_state, context, round_md, score_md], api_visibility="private"
        )
        for trigger in (guess_btn.click, guess.submit):
            trigger(
                gpu_task(bind(on_game_guess, loader), GpuBudget(30)),
                [model, game_state, guess] + mine,
                [game_state, context, round_md, score_md, guess],
                api_visibility="private",
            )

        kv_form = build_kv_cache_section(loader, model, trained)
        api_endpoint(generate_api, loader, api_name="generate", budget=TOKENS_BUDGET)
        api_endpoint(score_api, loader, api_name="score", budget=GpuBudget(30))
    return TabView(inputs={"model": model, "prompt": prompt, "mode": mode, "max_new": max_new, "seed": seed}, run=("gpt-generate",),
                   forms={"gpt-generate": generate, "kv-run": kv_form})


if __name__ == "__main__":  # run this tab on its own
    launch_alone(build_gpt_tab)
