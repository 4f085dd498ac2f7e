"""The project's own error types. No gradio here.

`UserError` marks an error whose message is written for the person who caused it: what was wrong
and how to fix it. The UI shows exactly these (and `gr.Error`) as the user's fault, without a
server-side trace. Anything else, such as a `ValueError` raised deep inside a library, is a bug or
an environment problem: it is logged with its traceback and reported as what it is.
"""

from __future__ import annotations


class UserError(Exception):
    """Base of every error whose message is meant for the user."""


class InputError(UserError, ValueError):
    """A request's input is invalid (wrong type, out of range, too long); the message says the limit."""
