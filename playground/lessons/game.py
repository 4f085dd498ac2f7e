"""Guess the next token: the learner and the model predict the next token of a real passage, one token at a time.

People who played this game against language models scored *below* small models on top-1 accuracy
(Shlegeris, Roger, Chan and McLean, "Language Models Are Better than Humans at Next-Token Prediction",
TMLR 2024, arXiv:2212.11281): humans are worse than even models about GPT-1's size at the one task these
models are trained on. The running score lets a learner see it for themselves.

The passages come from plays the offline GPT never read (held out of its training: Julius Caesar, Twelfth
Night, The Winter's Tale). A guess counts when it is the next token's text, ignoring case and the spaces around it.

>>> normalize("  Ears ")
'ears'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from playground.core.cache import shared_lock
from playground.core.text.tokenize import visible
from playground.errors import InputError
from playground.lazy import no_grad, torch

MIN_CONTEXT = 6  # tokens of the passage shown before the first guess
TOP = 10  # the model's candidates shown
MAX_GUESS_CHARS = 50


@dataclass(frozen=True)
class Passage:
    source: str  # play, act and scene
    text: str


PASSAGES = (
    Passage("Julius Caesar, III.2", "Friends, Romans, countrymen, lend me your ears; I come to bury Caesar, not to praise him. "
            "The evil that men do lives after them; The good is oft interred with their bones; So let it be with Caesar."),
    Passage("Julius Caesar, I.2", "The fault, dear Brutus, is not in our stars, But in ourselves, that we are underlings."),
    Passage("Julius Caesar, II.2", "Cowards die many times before their deaths; The valiant never taste of death but once."),
    Passage("Twelfth Night, I.1", "If music be the food of love, play on; Give me excess of it, that, surfeiting, The appetite "
            "may sicken, and so die."),
    Passage("Twelfth Night, II.5", "Be not afraid of greatness: some are born great, some achieve greatness, and some have "
            "greatness thrust upon them."),
    Passage("The Winter's Tale, II.1", "A sad tale's best for winter: I have one Of sprites and goblins."),
)
STUDY = ("Shlegeris et al., *Language Models Are Better than Humans at Next-Token Prediction* (TMLR 2024, "
         "[arXiv:2212.11281](https://arxiv.org/abs/2212.11281)): people who played this game scored below even small "
         "language models on top-1 accuracy.")


def normalize(text: str) -> str:
    return text.strip().lower()


@dataclass
class Score:
    """A game in progress: plain numbers, kept in the learner's session (`asdict` / `Score(**d)`)."""

    passage: int = 0  # index into PASSAGES
    position: int = MIN_CONTEXT  # index of the token to guess next
    rounds: int = 0  # guesses made
    you: int = 0  # the learner's guesses that were the real next token
    model: int = 0  # rounds where the model's top-1 was the real next token
    history: list[dict[str, Any]] = field(default_factory=list)  # each round: guess, actual, model's top-1, both verdicts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Guess:
    top: list[tuple[str, float]]  # the model's most likely next tokens (decoded text, probability), best first
    rank: int | None  # 1-based rank of the guess among all tokens (None: the guess is not one token)
    probability: float  # the model's probability of the guess (0 when it is not one token)


@dataclass(frozen=True)
class Round:
    context: str  # the passage up to the token guessed
    actual: str  # the real next token's text
    guess: Guess  # the model's distribution and where the learner's guess sits in it
    you_right: bool
    model_right: bool  # the model's top-1 was the real token
    score: Score  # after this round
    finished: bool  # the passage has no more tokens


def _ids(tokenizer: Any, text: str) -> list[int]:
    with shared_lock(tokenizer):  # every user shares the cached tokenizer
        return tokenizer(text, add_special_tokens=False)["input_ids"]


def _decode(tokenizer: Any, ids: list[int]) -> str:
    with shared_lock(tokenizer):
        return tokenizer.decode(ids)


def _guess_ids(tokenizer: Any, guess: str) -> list[int]:
    """The vocabulary ids whose text is `guess` (as a word after a space, or glued on), ignoring case."""
    word = guess.strip()
    ids = set()
    for variant in {word, word.lower(), word.capitalize()}:
        for spelled in (variant, " " + variant):
            one = _ids(tokenizer, spelled)
            if len(one) == 1:
                ids.add(one[0])
    return sorted(ids)


@no_grad
def next_token_guess(model: Any, tokenizer: Any, context: str, guess: str) -> Guess:
    """The model's next-token distribution after `context`, and the rank of `guess` in it.

    `model` is a causal LM (its forward returns `.logits`); runs one forward pass on the last
    `n_positions` tokens of the context.
    """
    if not isinstance(guess, str) or not guess.strip():
        raise InputError("Type your guess of the next token first.")
    if len(guess) > MAX_GUESS_CHARS:
        raise InputError(f"A guess is one token: at most {MAX_GUESS_CHARS} characters.")
    ids = _ids(tokenizer, context)
    window = getattr(model.config, "n_positions", None) or 1024
    device = next(model.parameters()).device
    logits = model(torch.tensor([ids[-window:]], device=device)).logits[0, -1].float()
    probs = torch.softmax(logits, dim=-1)
    values, order = probs.topk(TOP)
    top = [(_decode(tokenizer, [int(i)]), float(p)) for p, i in zip(values, order)]
    candidates = _guess_ids(tokenizer, guess)
    if not candidates:
        return Guess(top, None, 0.0)
    best = max(candidates, key=lambda i: float(probs[i]))
    rank = int((probs > probs[best]).sum()) + 1
    return Guess(top, rank, float(probs[best]))


def top_table(top: list[tuple[str, float]], n: int = 5) -> str:
    """The model's first `n` candidates as a markdown table (rank, token with its whitespace shown, probability)."""
    rows = "\n".join(f"| {i + 1} | `{visible(t)}` | {p:.1%} |" for i, (t, p) in enumerate(top[:n]))
    return f"| rank | token | probability |\n|---|---|---|\n{rows}"


def new_game(passage: int = 0) -> Score:
    if isinstance(passage, bool) or not isinstance(passage, int) or not 0 <= passage < len(PASSAGES):
        raise InputError(f"passage must be a whole number from 0 to {len(PASSAGES) - 1}.")
    return Score(passage=passage)


def prompt_of(tokenizer: Any, score: Score) -> str:
    """The passage's text before the token to guess."""
    ids = _ids(tokenizer, PASSAGES[score.passage].text)
    return _decode(tokenizer, ids[:score.position])


PIECE = "·"  # drawn between two tokens of one word (GPT-2 spells a rarer word in pieces: "Rom·ans")


def _joins(before: str, after: str) -> bool:
    """Whether token `after` continues the word that `before` ends: no space between, letters or digits on both sides."""
    return bool(before) and bool(after) and before[-1].isalnum() and after[0].isalnum()


def prompt_with_pieces(tokenizer: Any, score: Score) -> str:
    """The passage before the token to guess, with a · between the tokens of a word spelled in pieces, and one at the end
    when the token to guess is the rest of a word: the game plays tokens, and this shows where they begin.

    >>> _joins("Rom", "ans"), _joins(" Romans", ","), _joins(",", " lend")
    (True, False, False)
    """
    ids = _ids(tokenizer, PASSAGES[score.passage].text)
    faces = [_decode(tokenizer, [i]) for i in ids]
    out = ""
    for k, face in enumerate(faces[:score.position]):
        out += (PIECE if k and _joins(faces[k - 1], face) else "") + face
    if 0 < score.position < len(faces) and _joins(faces[score.position - 1], faces[score.position]):
        out += PIECE  # the next token is the rest of this word
    return out


def play(model: Any, tokenizer: Any, score: Score, guess: str) -> Round:
    """One round: the learner's `guess` against the real next token and the model's top-1; the score moves on."""
    ids = _ids(tokenizer, PASSAGES[score.passage].text)
    if score.position >= len(ids):
        raise InputError("This passage is finished: start a new one.")
    context = _decode(tokenizer, ids[:score.position])
    g = next_token_guess(model, tokenizer, context, guess)
    actual = _decode(tokenizer, [ids[score.position]])
    you_right = normalize(guess) == normalize(actual)
    model_right = normalize(g.top[0][0]) == normalize(actual)
    history = [*score.history, {"guess": guess.strip(), "actual": actual, "model": g.top[0][0], "you_right": you_right,
                                "model_right": model_right}]
    after = Score(score.passage, score.position + 1, score.rounds + 1, score.you + you_right, score.model + model_right, history[-50:])
    return Round(context, actual, g, you_right, model_right, after, after.position >= len(ids))
