"""How was this word split? Each tokenizer algorithm's own steps, replayed for one word.

- BPE (GPT-2): start from single bytes; repeatedly merge the adjacent pair with the best
  (lowest) merge rank, until no learned merge applies.
      "Ġlow" -> [Ġ, l, o, w] -> (rank 23: o+w) [Ġ, l, ow] -> (rank 1088: Ġ+l) [Ġl, ow] -> ...
- WordPiece (BERT): greedy longest-match-first: at each position take the longest vocabulary
  entry that matches ("##" marks a piece inside a word); if nothing matches, the whole word is [UNK].
      "tokenizers" -> token | ##izer | ##s
- Unigram (T5 SentencePiece): every vocabulary piece has a log-probability; Viterbi picks the
  segmentation with the highest total. We also show the runner-up segmentation and its score.

`explain_word(tokenizer, word)` normalizes and pre-tokenizes `word` exactly as the tokenizer
does, then runs the algorithm on each piece from the tokenizer's own vocabulary and merges.
The final tokens are checked against the tokenizer's output in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playground.core.cache import per_object
from playground.core.text.tokenize import TokenizerSpec, _backend, tokenizer_spec
from playground.errors import InputError

K_UNK_PENALTY = 10.0  # Unigram: an unknown character scores (lowest piece score - 10), as in HF tokenizers
MAX_WORD_CHARS = 200  # longer "words" are not explained (the steps would not fit on a page)


@dataclass(frozen=True)
class BPEStep:
    rank: int  # the merge's rank: lower was learned earlier (more frequent)
    left: str  # the pair merged
    right: str
    pieces: tuple[str, ...]  # all pieces after this merge


@dataclass(frozen=True)
class WordPieceStep:
    position: int  # character position where the search started
    tried: tuple[str, ...]  # candidates tried, longest first, that were not in the vocabulary
    match: str | None  # the piece taken (None: nothing matched, so the word is [UNK])


@dataclass(frozen=True)
class Segmentation:
    pieces: tuple[str, ...]  # the pieces, in order
    scores: tuple[float, ...]  # each piece's log-probability
    total: float  # their sum: what Viterbi maximizes


@dataclass(frozen=True)
class PieceExplanation:
    """The algorithm's steps for one pre-tokenized piece of the word."""

    algorithm: str  # "BPE", "WordPiece", "Unigram"
    pretoken: str  # the piece as the algorithm sees it ("Ġworld", "tokenizers", "▁world")
    initial: tuple[str, ...]  # BPE: the starting symbols (bytes)
    bpe_steps: tuple[BPEStep, ...] = ()
    wordpiece_steps: tuple[WordPieceStep, ...] = ()
    best: Segmentation | None = None  # Unigram: the chosen segmentation
    runner_up: Segmentation | None = None  # Unigram: the second best, if any
    tokens: tuple[str, ...] = ()  # the final tokens (raw vocabulary strings)
    note: str = ""  # e.g. "whole word in vocabulary", "no match: [UNK]"


@dataclass(frozen=True)
class WordExplanation:
    word: str  # as given
    normalized: str  # after the tokenizer's normalizer (lower-casing, accents, ...)
    pieces: list[PieceExplanation] = field(default_factory=list)

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(t for p in self.pieces for t in p.tokens)


# ---- BPE ---------------------------------------------------------------------------------------


@per_object
def _bpe_ranks(spec: TokenizerSpec) -> dict[tuple[str, str], int]:
    ranks = {}
    for rank, merge in enumerate(spec.model["merges"]):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        ranks[(left, right)] = rank
    return ranks


def explain_bpe(pretoken: str, spec: TokenizerSpec) -> PieceExplanation:
    """Merge the lowest-ranked adjacent pair, all its occurrences left to right, until none applies.

    >>> spec = TokenizerSpec("BPE", False, {"merges": ["a b", "ab c"], "vocab": {}}, None)
    >>> [s.pieces for s in explain_bpe("abcab", spec).bpe_steps]
    [('ab', 'c', 'ab'), ('abc', 'ab')]
    """
    vocab = spec.model.get("vocab", {})
    if spec.model.get("ignore_merges") and pretoken in vocab:
        return PieceExplanation("BPE", pretoken, (pretoken,), tokens=(pretoken,), note="whole word in vocabulary (merges skipped)")
    if spec.model.get("continuing_subword_prefix") or spec.model.get("end_of_word_suffix"):
        raise InputError("This BPE variant (with subword prefix/suffix) is not explained yet.")
    ranks = _bpe_ranks(spec)
    pieces = list(pretoken)
    initial = tuple(pieces)
    steps = []
    while len(pieces) > 1:
        candidates = [(ranks[(a, b)], a, b) for a, b in zip(pieces, pieces[1:]) if (a, b) in ranks]
        if not candidates:
            break
        rank, left, right = min(candidates)
        merged, i = [], 0
        while i < len(pieces):
            if i + 1 < len(pieces) and pieces[i] == left and pieces[i + 1] == right:
                merged.append(left + right)
                i += 2
            else:
                merged.append(pieces[i])
                i += 1
        pieces = merged
        steps.append(BPEStep(rank, left, right, tuple(pieces)))
    unk = spec.model.get("unk_token")
    tokens = tuple(p if (p in vocab or not vocab or unk is None) else unk for p in pieces)
    return PieceExplanation("BPE", pretoken, initial, bpe_steps=tuple(steps), tokens=tokens)


# ---- WordPiece ---------------------------------------------------------------------------------


def explain_wordpiece(pretoken: str, spec: TokenizerSpec) -> PieceExplanation:
    """Greedy longest-match-first, as BERT does it.

    >>> spec = TokenizerSpec("WordPiece", False, {"vocab": {"un": 0, "##aff": 1, "##able": 2}, "unk_token": "[UNK]",
    ...     "continuing_subword_prefix": "##", "max_input_chars_per_word": 100}, "[UNK]")
    >>> explain_wordpiece("unaffable", spec).tokens
    ('un', '##aff', '##able')
    """
    vocab = spec.model["vocab"]
    prefix = spec.model.get("continuing_subword_prefix", "##")
    unk = spec.model.get("unk_token", "[UNK]")
    if len(pretoken) > spec.model.get("max_input_chars_per_word", 100):
        return PieceExplanation("WordPiece", pretoken, (), tokens=(unk,), note="longer than max_input_chars_per_word: [UNK]")
    steps, tokens, start = [], [], 0
    while start < len(pretoken):
        tried, match, end = [], None, len(pretoken)
        while end > start:
            candidate = (prefix if start > 0 else "") + pretoken[start:end]
            if candidate in vocab:
                match = candidate
                break
            tried.append(candidate)
            end -= 1
        steps.append(WordPieceStep(start, tuple(tried), match))
        if match is None:
            return PieceExplanation("WordPiece", pretoken, (), wordpiece_steps=tuple(steps), tokens=(unk,),
                                    note=f"nothing in the vocabulary matches at position {start}: the whole word becomes {unk}")
        tokens.append(match)
        start = end
    return PieceExplanation("WordPiece", pretoken, (), wordpiece_steps=tuple(steps), tokens=tuple(tokens))


# ---- Unigram -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _UnigramTable:
    scores: dict[str, float]
    max_len: int
    unk: str
    unk_score: float


@per_object
def _unigram_table(spec: TokenizerSpec) -> _UnigramTable:
    vocab = spec.model["vocab"]
    scores = {piece: score for piece, score in vocab}
    unk = vocab[spec.model["unk_id"]][0] if spec.model.get("unk_id") is not None else "<unk>"
    min_score = min(score for _, score in vocab)
    return _UnigramTable(scores, max(len(p) for p in scores), unk, min_score - K_UNK_PENALTY)


def explain_unigram(pretoken: str, spec: TokenizerSpec) -> PieceExplanation:
    """Viterbi over the vocabulary's log-probabilities, keeping the two best paths at each position.

    >>> spec = TokenizerSpec("Unigram", False, {"vocab": [["<unk>", 0.0], ["a", -1.0], ["b", -1.0], ["ab", -1.5]], "unk_id": 0}, "<unk>")
    >>> e = explain_unigram("ab", spec)
    >>> e.best.pieces, e.best.total, e.runner_up.pieces, e.runner_up.total
    (('ab',), -1.5, ('a', 'b'), -2.0)
    """
    table = _unigram_table(spec)
    n = len(pretoken)
    # best[i]: up to two (total, previous position, rank at previous, piece, score) ending at i
    best: list[list[tuple[float, int, int, str, float]]] = [[] for _ in range(n + 1)]
    best[0] = [(0.0, -1, -1, "", 0.0)]
    for start in range(n):
        if not best[start]:
            continue
        has_single = False
        for end in range(start + 1, min(n, start + table.max_len) + 1):
            piece = pretoken[start:end]
            score = table.scores.get(piece)
            if score is None:
                continue
            if end == start + 1:
                has_single = True
            _relax(best, start, end, piece, score)
        if not has_single:  # an unknown character: an <unk> node with a penalty score
            _relax(best, start, start + 1, table.unk, table.unk_score, raw=pretoken[start])

    paths = [_backtrack(best, n, rank) for rank in range(len(best[n]))]
    segmentations = [_fuse_unknown(p, table.unk) for p in paths]
    best_seg = segmentations[0]
    runner_up = segmentations[1] if len(segmentations) > 1 else None
    return PieceExplanation("Unigram", pretoken, (), best=best_seg, runner_up=runner_up, tokens=best_seg.pieces)


def _relax(best, start, end, piece, score, raw=None):
    for rank, entry in enumerate(best[start]):
        candidate = (entry[0] + score, start, rank, piece if raw is None else f"\x00{raw}", score)
        best[end].append(candidate)
    best[end].sort(key=lambda e: -e[0])
    del best[end][2:]


def _backtrack(best, pos, rank) -> list[tuple[str, float]]:
    pieces = []
    while pos > 0:
        total, prev, prev_rank, piece, score = best[pos][rank]
        pieces.append((piece, score))
        pos, rank = prev, prev_rank
    return pieces[::-1]


def _fuse_unknown(path: list[tuple[str, float]], unk: str) -> Segmentation:
    """Consecutive unknown characters become one unknown token (HF's fuse_unk)."""
    pieces, scores, previous_unknown = [], [], False
    for piece, score in path:
        is_unk = piece.startswith("\x00")
        if is_unk and previous_unknown:
            scores[-1] += score
            continue
        pieces.append(unk if is_unk else piece)
        scores.append(score)
        previous_unknown = is_unk
    total = sum(s for _, s in path)
    return Segmentation(tuple(pieces), tuple(round(s, 4) for s in scores), round(total, 4))


# ---- one word, any tokenizer ---------------------------------------------------------------------

_EXPLAINERS = {"BPE": explain_bpe, "WordPiece": explain_wordpiece, "Unigram": explain_unigram}


def explain_word(tokenizer: Any, word: str) -> WordExplanation:
    """Normalize and pre-tokenize `word` as `tokenizer` does, then replay its algorithm on each piece.

    >>> from transformers import AutoTokenizer
    >>> tok = AutoTokenizer.from_pretrained("assets/tokenizers/gpt2")
    >>> explain_word(tok, " lower").tokens
    ('Ġlower',)
    """
    if not isinstance(word, str) or not word:
        raise InputError("Pick a word to explain.")
    if len(word) > MAX_WORD_CHARS:
        raise InputError(f"That word is {len(word)} characters; words up to {MAX_WORD_CHARS} are explained.")
    spec = tokenizer_spec(tokenizer)
    explain = _EXPLAINERS.get(spec.algorithm)
    if explain is None:
        raise InputError(f"Explaining {spec.algorithm} tokenizers is not supported (BPE, WordPiece and Unigram are).")
    added = set(getattr(tokenizer, "get_added_vocab", dict)())
    if word.strip() in added:
        piece = word.strip()
        note = "an added (special) token: matched whole before the algorithm runs"
        return WordExplanation(word, word, [PieceExplanation(spec.algorithm, piece, (), tokens=(piece,), note=note)])
    backend = _backend(tokenizer)
    normalized = backend.normalizer.normalize_str(word) if backend.normalizer else word
    pretokens = [p for p, _ in backend.pre_tokenizer.pre_tokenize_str(normalized)] if backend.pre_tokenizer else [normalized]
    return WordExplanation(word, normalized, [explain(p, spec) for p in pretokens])
