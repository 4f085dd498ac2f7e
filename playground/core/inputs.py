"""Server-side validation of request inputs (the API bypasses the UI's sliders and length limits).

Each compute module names its own limits (e.g. `tokenize.MAX_CHARS`) and checks them with these
helpers; the UI imports the same names for its widgets, so a limit is written once.

    >>> require_int(3, "steps", low=1, high=50)
    3
    >>> require_int(0, "steps", low=1, high=50)
    Traceback (most recent call last):
    ...
    playground.errors.InputError: steps must be between 1 and 50, got 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from playground.errors import InputError


def require_text(value: object, name: str, *, max_chars: int) -> str:
    """`value` if it is a string of at most `max_chars` characters."""
    if not isinstance(value, str):
        raise InputError(f"{name} must be text, got {type(value).__name__}.")
    if len(value) > max_chars:
        raise InputError(f"{name} is {len(value):,} characters; the limit is {max_chars:,}. Shorten it.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800" in JSON): not text any tokenizer can read
        raise InputError(f"{name} contains a lone surrogate (U+{ord(value[exc.start]):04X} at character {exc.start}), "
                         "which is not valid Unicode text. Remove it.") from None
    return value


def require_caption(value: object, *, max_chars: int, example: str = "a red circle left of a blue square") -> str:
    """A text-to-image caption: text of at most `max_chars` characters, stripped, not empty."""
    caption = require_text(value, "prompt", max_chars=max_chars).strip()
    if not caption:
        raise InputError(f"Enter a caption, e.g. '{example}'.")
    return caption


def require_int(value: object, name: str, *, low: int, high: int) -> int:
    """`value` as an int if it is a whole number in [low, high] (floats like 3.0 from a slider pass)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a whole number, got {type(value).__name__}.")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise InputError(f"{name} must be a whole number, got {value!r}.")
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low:,} and {high:,}, got {int(value):,}.")
    return int(value)


def require_float(value: object, name: str, *, low: float, high: float) -> float:
    """`value` as a float if it is a finite number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}.")
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low:g} and {high:g}, got {value:g}.")
    return float(value)


def require_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """`value` if it is one of `choices`."""
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}.")
    return value  # type: ignore[return-value]
