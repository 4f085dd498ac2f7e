"""Tokenization as data: ids, raw vocabulary strings, character spans, counts, round-trip check.

Works on any Hugging Face *fast* tokenizer; it never imports gradio and never loads a model.

    >>> from transformers import AutoTokenizer
    >>> tok = AutoTokenizer.from_pretrained("assets/tokenizers/gpt2")
    >>> t = tokenize(tok, "Hello world", name="gpt2")
    >>> [(x.id, x.text, x.start, x.end) for x in t.tokens]
    [(15496, 'Hello', 0, 5), (995, 'Ġworld', 5, 11)]
    >>> t.lossless
    True

Glossary: a *raw* string is the token as the vocabulary spells it ("Ġworld", "##ing", "▁the");
its *face* is the text it stands for with whitespace made visible ("␣world", "ing", "␣the").
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from playground.core.cache import per_object, shared_lock
from playground.core.inputs import require_text
from playground.errors import InputError

MAX_CHARS = 200_000  # longest text accepted (the API bypasses the UI's limits)
DIFF_WINDOW = 5_000  # the round-trip diff is shown for this many leading characters (about the chips drawn)

_VISIBLE_WS = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


@dataclass(frozen=True)
class Token:
    id: int  # vocabulary id, exactly as the tokenizer returns it
    text: str  # raw vocabulary string ("Ġworld", "##ing", "▁the", "[CLS]")
    start: int | None  # character offset into the input (None for special tokens)
    end: int | None  # end offset, exclusive (None for special tokens)
    special: bool  # a special token: added by the tokenizer ([CLS], </s>; no span) or typed in the input
    face: str  # what it stands for, whitespace made visible ("␣world")
    unknown: bool = False  # the unknown token ([UNK], <unk>): the vocabulary could not spell this
    partial: bool = False  # a byte-level piece of one character (e.g. 2 of an emoji's 4 bytes)


@dataclass(frozen=True)
class Counts:
    tokens: int  # every id, special tokens included
    characters: int  # characters of the input (Python str length: code points)
    words: int  # whitespace-separated words of the input
    chars_per_token: float  # characters per token spelled from the input (higher = more compression)
    text_tokens: int | None = None  # the tokens spelled from the input ([CLS], </s> and other added tokens left out)


@dataclass(frozen=True)
class DiffOp:
    kind: str  # "equal", "replace", "delete" or "insert"
    original: str  # the input's text here
    decoded: str  # what decoding the ids gave here
    why: str  # best guess at the cause ("lower-cased", "accents stripped", "unknown → [UNK]", ...)


@dataclass(frozen=True)
class Tokenization:
    tokenizer: str  # the name it was asked for by
    algorithm: str  # "BPE", "WordPiece", "Unigram", ...
    text: str  # the input
    tokens: Sequence[Token]  # in order (a LazyTokens from `tokenize`: each Token built when looked at)
    counts: Counts
    # the ids spelled from the input decoded back to text (added specials left out; a long lossy text: its first
    # DIFF_WINDOW characters' worth)
    decoded: str
    lossless: bool  # decoded == text
    diff: list[DiffOp] = field(default_factory=list)  # where decoded differs (first DIFF_WINDOW chars)
    diff_truncated: bool = False  # the texts were longer than DIFF_WINDOW

    @property
    def ids(self) -> list[int]:
        return self.tokens.ids if isinstance(self.tokens, LazyTokens) else [t.id for t in self.tokens]

    def to_json(self) -> dict[str, Any]:
        """The `/tokenize` API's answer."""
        return {
            "tokenizer": self.tokenizer,
            "algorithm": self.algorithm,
            "tokens": [
                {"id": t.id, "text": t.text, "start": t.start, "end": t.end, "special": t.special}
                for t in self.tokens
            ],
            "counts": asdict(self.counts),
            "lossless": self.lossless,
        }


class LazyTokens(Sequence):
    """The tokens of one text, each `Token` (face, byte pieces, spans) built only when it is looked at.

    100,000 characters are ~30,000 tokens, of which the page draws at most 2,000 chips: describing
    every token up front cost more than the tokenizer itself. `len`, slicing and iteration work as on
    a list; `ids` needs no Token at all.
    """

    _BLOCK = 2048  # raw strings are looked up this many ids at a time

    def __init__(self, ids: list[int], tokenizer: Any, offsets: list[tuple[int, int]], specials: list[int], unk_id: int | None,
                 spec: TokenizerSpec) -> None:
        self.ids, self._tokenizer, self._offsets, self._specials = ids, tokenizer, offsets, specials
        self._unk_id, self._spec = unk_id, spec
        self._built: dict[int, Token] = {}
        self._raws: dict[int, list[str]] = {}

    def _raw(self, i: int) -> str:
        block = i // self._BLOCK
        raws = self._raws.get(block)
        if raws is None:
            with shared_lock(self._tokenizer):
                raws = self._raws[block] = self._tokenizer.convert_ids_to_tokens(self.ids[block * self._BLOCK:(block + 1) * self._BLOCK])
        return raws[i - block * self._BLOCK]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        token = self._built.get(index)
        if token is None:
            token = self._built[index] = self._make(index)
        return token

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, (list, tuple, Sequence)) else NotImplemented

    def plain_ids(self, until: int | None = None) -> list[int]:
        """The ids spelled from the input (tokens the tokenizer added, with no characters, left out); with
        `until`, only those ending within the input's first `until` characters."""
        return [tid for tid, (start, end), sp in zip(self.ids, self._offsets, self._specials)
                if not (sp and start == end) and (until is None or end <= until)]

    def _make(self, i: int) -> Token:
        tid, raw, (start, end), special = self.ids[i], self._raw(i), self._offsets[i], self._specials[i]
        if special and start == end:  # added by the tokenizer ([CLS], </s>): no characters of the input
            return Token(tid, raw, None, None, True, raw)
        if special:  # a special token the input spelled out ("<|endoftext|>")
            return Token(tid, raw, start, end, True, raw)
        unknown = self._unk_id is not None and tid == self._unk_id
        face, partial = (raw, False) if unknown else token_face(raw, self._spec)
        return Token(tid, raw, start, end, False, face, unknown, partial)


# ---- facts about a tokenizer, parsed once --------------------------------------------------------


@dataclass(frozen=True, eq=False)  # hashed by identity: it is a cache key
class TokenizerSpec:
    """What the word-split explainer needs from a fast tokenizer's `tokenizer.json`."""

    algorithm: str  # model type: "BPE", "WordPiece", "Unigram", "WordLevel"
    byte_level: bool  # GPT-2 style: each byte is one vocabulary character
    model: dict[str, Any]  # the "model" section of tokenizer.json
    unk_token: str | None


@per_object
def tokenizer_spec(tokenizer: Any) -> TokenizerSpec:
    backend = _backend(tokenizer)
    data = json.loads(backend.to_str())
    model = data["model"]
    parts = [data.get("pre_tokenizer") or {}, data.get("decoder") or {}]
    byte_level = any(_mentions(p, "ByteLevel") for p in parts)
    return TokenizerSpec(model["type"], byte_level, model, getattr(tokenizer, "unk_token", None))


def _mentions(node: Any, type_name: str) -> bool:
    if isinstance(node, dict):
        return node.get("type") == type_name or any(_mentions(v, type_name) for v in node.values())
    if isinstance(node, list):
        return any(_mentions(v, type_name) for v in node)
    return False


def _backend(tokenizer: Any) -> Any:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise InputError(
            f"{type(tokenizer).__name__} is a slow (Python) tokenizer; the visualizer needs a fast one "
            "(a folder with tokenizer.json)."
        )
    return backend


@functools.lru_cache(maxsize=1)
def byte_decoder() -> dict[str, int]:
    """GPT-2's map from the printable stand-in characters back to bytes ("Ġ" -> 0x20).

    >>> byte_decoder()["Ġ"], byte_decoder()["A"]
    (32, 65)
    """
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


@functools.lru_cache(maxsize=1 << 16)  # pure; tokens repeat (the same words, the same pieces)
def visible(text: str) -> str:
    """Whitespace made visible: spaces as ␣, newlines as ↵, tabs as ⇥; control chars escaped.

    >>> visible("a b\\n")
    'a␣b↵'
    """
    out = []
    for ch in text:
        if ch in _VISIBLE_WS:
            out.append(_VISIBLE_WS[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\u200d":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


@functools.lru_cache(maxsize=1 << 16)  # pure on the raw string
def byte_piece_face(raw: str) -> tuple[str, bool]:
    """(face, partial) of a byte-level token: its bytes decoded, undecodable bytes shown as hex.

    >>> byte_piece_face("Ġworld")
    ('␣world', False)
    >>> byte_piece_face("ðŁ")   # the first two of the four bytes of an emoji
    ('‹F0›‹9F›', True)
    """
    table = byte_decoder()
    if any(ch not in table for ch in raw):
        return visible(raw), False
    data = bytes(table[ch] for ch in raw)
    try:
        return visible(data.decode("utf-8")), False
    except UnicodeDecodeError:
        pass
    out, partial, i = [], False, 0
    while i < len(data):
        for j in range(min(len(data), i + 4), i, -1):  # longest decodable run first
            try:
                out.append(visible(data[i:j].decode("utf-8")))
                i = j
                break
            except UnicodeDecodeError:
                continue
        else:
            out.append(f"‹{data[i]:02X}›")
            partial = True
            i += 1
    return "".join(out), partial


def token_face(raw: str, spec: TokenizerSpec) -> tuple[str, bool]:
    """(face, partial) of a non-special token for the tokenizer described by `spec`."""
    if spec.byte_level:
        return byte_piece_face(raw)
    if spec.algorithm == "WordPiece":
        prefix = spec.model.get("continuing_subword_prefix") or "##"
        if raw.startswith(prefix) and raw != prefix:
            raw = raw[len(prefix):]
    if re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", raw):  # SentencePiece byte fallback
        return raw, True
    return visible(raw.replace("▁", " ")), False


# ---- tokenize ----------------------------------------------------------------------------------


def check_text(text: object) -> str:
    """`text` if it is a string within MAX_CHARS (an InputError that says the limit otherwise)."""
    return require_text(text, "The text", max_chars=MAX_CHARS)


def _decode_or_first_difference(tokenizer: Any, tokens: LazyTokens, plain: list[int], text: str) -> str:
    """The plain ids (`tokens.plain_ids()`) decoded back to text; for a long text whose first DIFF_WINDOW characters already decode
    differently (BERT's lower-casing), only those: the rest is not shown, and the text is lossy either way.

    A prefix of the ids decodes to a prefix of the whole decoding, except that its last characters can
    differ (a byte-level piece of a character cut in two), so the last few are not compared.
    """
    def decode(ids: list[int]) -> str:
        with shared_lock(tokenizer):
            return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    if len(text) > 2 * DIFF_WINDOW:
        decoded = decode(tokens.plain_ids(until=DIFF_WINDOW))
        sure = len(decoded) - 8  # the tail may be a character cut in two
        if sure > 0 and decoded[:sure] != text[:sure]:
            return decoded
    return decode(plain)


def tokenize(tokenizer: Any, text: str, name: str = "") -> Tokenization:
    """Tokenize `text` with a fast tokenizer and describe every token (see the module example)."""
    text = check_text(text)
    spec = tokenizer_spec(tokenizer)
    with shared_lock(tokenizer):
        enc = tokenizer(
            text, add_special_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True, verbose=False
        )
    ids: list[int] = enc["input_ids"]
    tokens = LazyTokens(ids, tokenizer, enc["offset_mapping"], enc["special_tokens_mask"], tokenizer.unk_token_id, spec)
    plain = tokens.plain_ids()
    decoded = _decode_or_first_difference(tokenizer, tokens, plain, text)
    lossless = decoded == text
    diff, truncated = ([], False) if lossless else diff_texts(text, decoded, getattr(tokenizer, "unk_token", None))
    n_plain = len(plain)
    counts = Counts(
        tokens=len(tokens),
        characters=len(text),
        words=len(text.split()),
        chars_per_token=round(len(text) / n_plain, 2) if n_plain else 0.0,
        text_tokens=n_plain,
    )
    return Tokenization(
        name or getattr(tokenizer, "name_or_path", ""), spec.algorithm, text, tokens, counts, decoded, lossless, diff, truncated
    )


# ---- what changed on the round trip --------------------------------------------------------------

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# diff units: whitespace runs, runs of (non-CJK) word characters, or any single other character
_UNITS = re.compile(rf"\s+|(?:(?![{_CJK}])\w)+|.", re.UNICODE | re.DOTALL)


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def _why(original: str, decoded: str, unk: str | None) -> str:
    if unk and unk in decoded:
        return f"unknown → {unk}"
    if not decoded.strip() and not original.strip():
        return "whitespace normalized"
    if original.lower() == decoded:
        return "lower-cased"
    if _strip_accents(original) == decoded:
        return "accents stripped"
    if _strip_accents(original).lower() == decoded:
        return "lower-cased, accents stripped"
    if original.split() == decoded.split() or not original.strip() or not decoded.strip():
        return "whitespace normalized"
    if unicodedata.normalize("NFKC", original) == decoded:
        return "unicode normalized (NFKC)"
    return "changed"


def _key(unit: str) -> str:
    """What two units are matched by: case, accents and the amount of whitespace ignored."""
    return " " if unit.isspace() else _strip_accents(unit).casefold()


def diff_texts(text: str, decoded: str, unk: str | None = None, lookahead: int = 12) -> tuple[list[DiffOp], bool]:
    """Word-level diff of the input against its decoding, over the first DIFF_WINDOW characters.

    A decoding differs from its input only locally (case, accents, whitespace, an unknown
    token), so a linear two-pointer walk suffices: units are matched by a normalized key (case,
    accents and whitespace runs ignored); where keys differ, the walk resynchronizes at the
    nearest matching pair within `lookahead` units. Aligned units that differ are reported one by
    one with the likely cause. (difflib takes minutes on 20,000 characters of lower-cased text.)

    >>> [(d.kind, d.original, d.decoded, d.why) for d in diff_texts("Hello", "hello")[0]]
    [('replace', 'Hello', 'hello', 'lower-cased')]
    """
    truncated = len(text) > DIFF_WINDOW or len(decoded) > DIFF_WINDOW
    a = _UNITS.findall(text[:DIFF_WINDOW])
    b = _UNITS.findall(decoded[:DIFF_WINDOW])
    ka, kb = [_key(u) for u in a], [_key(u) for u in b]
    ops: list[DiffOp] = []

    def emit(original: str, new: str) -> None:
        kind = "equal" if original == new else "delete" if not new else "insert" if not original else "replace"
        if kind == "equal" and ops and ops[-1].kind == "equal":
            ops[-1] = DiffOp("equal", ops[-1].original + original, ops[-1].decoded + new, "")
        else:
            ops.append(DiffOp(kind, original, new, "" if kind == "equal" else _why(original, new, unk)))

    i = j = 0
    while i < len(a) and j < len(b):
        if ka[i] == kb[j]:
            emit(a[i], b[j])
            i, j = i + 1, j + 1
        elif ka[i] == " ":
            emit(a[i], "")
            i += 1
        elif kb[j] == " ":
            emit("", b[j])
            j += 1
        else:
            skip = next(
                ((di, total - di) for total in range(1, 2 * lookahead + 1) for di in range(total + 1)
                 if i + di < len(a) and j + total - di < len(b) and ka[i + di] == kb[j + total - di]),
                (len(a) - i, len(b) - j),
            )
            emit("".join(a[i:i + skip[0]]), "".join(b[j:j + skip[1]]))
            i, j = i + skip[0], j + skip[1]
    if i < len(a) or j < len(b):
        emit("".join(a[i:]), "".join(b[j:]))
    return ops, truncated


# ---- words -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Word:
    index: int  # the tokenizer's word index (pre-tokenization split)
    text: str  # the input's characters for this word (may include a leading space)
    start: int  # character offsets into the input
    end: int
    token_ids: tuple[int, ...]  # the ids the tokenizer produced for it
    tokens: tuple[str, ...]  # their raw strings


def words_of(tokenizer: Any, text: str, limit: int | None = None) -> list[Word]:
    """The words the tokenizer split `text` into before its algorithm ran, with their tokens.

    >>> from transformers import AutoTokenizer
    >>> tok = AutoTokenizer.from_pretrained("assets/tokenizers/bert-base-uncased")
    >>> [(w.text, w.tokens) for w in words_of(tok, "Tokenizers rock")]
    [('Tokenizers', ('token', '##izer', '##s')), ('rock', ('rock',))]
    """
    text = check_text(text)
    with shared_lock(tokenizer):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        raws = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    word_ids = enc.word_ids()
    groups: dict[int, list[int]] = {}
    for pos, wid in enumerate(word_ids):
        if wid is not None:
            groups.setdefault(wid, []).append(pos)
    words = []
    for wid, positions in groups.items():
        start = min(enc["offset_mapping"][p][0] for p in positions)
        end = max(enc["offset_mapping"][p][1] for p in positions)
        words.append(
            Word(wid, text[start:end], start, end, tuple(enc["input_ids"][p] for p in positions), tuple(raws[p] for p in positions))
        )
        if limit is not None and len(words) >= limit:
            break
    return words
