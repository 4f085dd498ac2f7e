"""Helpers every tab shares: turning library errors into messages that teach, and progress."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import TypeVar

import gradio as gr

from playground.config import ConfigError
from playground.models import LoadError, SourceError
from playground.models.device import DeviceError

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable)

# Errors whose message is written for the user: shown as is.
USER_ERRORS = (SourceError, LoadError, DeviceError, ConfigError, ValueError)


def user_errors(fn: F) -> F:
    """Show known errors as a `gr.Error` with their message; never a stack trace in the page.

    Unexpected errors are logged with their traceback on the server and reported in one line.
    Works for plain functions and generators (streaming handlers).
    """

    def convert(exc: Exception) -> gr.Error:
        if isinstance(exc, gr.Error):
            return exc
        if isinstance(exc, USER_ERRORS):
            return gr.Error(str(exc))
        log.exception("unexpected error in %s", fn.__name__)
        return gr.Error(f"Something went wrong ({type(exc).__name__}: {exc}). The server log has details.")

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise convert(exc) from exc
        return gen_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise convert(exc) from exc

    return wrapper  # type: ignore[return-value]


def progress_fn(progress: gr.Progress) -> Callable[[float, str], None]:
    """Adapt a `gr.Progress` to the loader's `(fraction, description)` callback."""

    def report(fraction: float, desc: str) -> None:
        progress(fraction, desc=desc)

    return report


def require_text(value: object, name: str, *, max_chars: int) -> str:
    """Server-side check of a text input (the API bypasses the UI's limits)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {type(value).__name__}.")
    if len(value) > max_chars:
        raise ValueError(f"{name} is {len(value):,} characters; the limit is {max_chars:,}. Shorten it.")
    return value
