"""Lesson links: a URL's query string that opens one tab with its inputs filled. No gradio here.

A link names a tab and some of its inputs; every value is checked against that input's own limits (a
slider's range, a dropdown's listed choices, a text box's length) before anything runs. A link can
only choose what the page itself offers: a model named in a link must be one of the tab's listed
presets, never an arbitrary Hub id or folder.

>>> specs = {"attention": {"model": Param("model", "choice", choices=("gpt2", "bert-base-uncased")),
...                        "layer": Param("layer", "int", lo=1, hi=12)}}
>>> parse([("tab", "attention"), ("model", "gpt2"), ("layer", "3")], specs)
Link(tab='attention', values={'model': 'gpt2', 'layer': 3})
>>> to_query(Link("attention", {"model": "gpt2", "layer": 3}))
'?tab=attention&model=gpt2&layer=3'
>>> parse([("tab", "attention"), ("model", "../../etc/passwd")], specs)
Traceback (most recent call last):
...
playground.lessons.links.LinkError: This link cannot be opened: model must be one of gpt2, bert-base-uncased (got '../../etc/passwd').
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from playground.errors import InputError

MAX_QUERY_CHARS = 4000  # a longer query string is refused whole
MAX_TEXT_CHARS = 2000  # a text input without its own limit takes at most this much from a link


class LinkError(InputError):
    """A link that names no tab, an unknown input, or a value outside the input's limits."""


@dataclass(frozen=True)
class Param:
    name: str  # the query key
    kind: str  # "text", "int", "float", "choice" (one of `choices`) or "choices" (comma-separated, each one of `choices`)
    choices: tuple[str, ...] = ()  # allowed values of a choice
    lo: float | None = None  # smallest number allowed
    hi: float | None = None  # largest number allowed
    max_chars: int = MAX_TEXT_CHARS  # longest text allowed

    def read(self, raw: str) -> Any:
        """The value a query string's `raw` text stands for, or a LinkError saying what this input accepts."""
        if self.kind == "text":
            if len(raw) > self.max_chars:
                raise LinkError(f"This link cannot be opened: {self.name} is {len(raw):,} characters; at most {self.max_chars:,}.")
            if any(ord(c) < 32 and c not in "\n\t" for c in raw):
                raise LinkError(f"This link cannot be opened: {self.name} holds control characters.")
            return raw
        if self.kind == "choice":
            if raw not in self.choices:
                raise LinkError(f"This link cannot be opened: {self.name} must be one of {', '.join(self.choices)} (got {raw[:80]!r}).")
            return raw
        if self.kind == "choices":
            picked = [v.strip() for v in raw.split(",") if v.strip()]
            bad = [v for v in picked if v not in self.choices]
            if bad or not picked:
                raise LinkError(f"This link cannot be opened: {self.name} takes a comma-separated list of {', '.join(self.choices)} "
                                f"(got {raw[:80]!r}).")
            return picked
        try:
            number = float(raw)
        except ValueError:
            raise LinkError(f"This link cannot be opened: {self.name} must be a number (got {raw[:80]!r}).") from None
        if not math.isfinite(number) or (self.kind == "int" and number != int(number)):
            raise LinkError(
                f"This link cannot be opened: {self.name} must be a {'whole ' if self.kind == 'int' else ''}number (got {raw[:80]!r})."
            )
        if (self.lo is not None and number < self.lo) or (self.hi is not None and number > self.hi):
            raise LinkError(f"This link cannot be opened: {self.name} must be from {self.lo:g} to {self.hi:g} (got {raw[:80]}).")
        return int(number) if self.kind == "int" else number

    def write(self, value: Any) -> str:
        if self.kind == "choices":
            return ",".join(value)
        if self.kind in ("int", "float"):
            return f"{value:g}" if isinstance(value, float) else str(value)
        return str(value)


@dataclass(frozen=True)
class Link:
    tab: str  # the tab's id
    values: dict[str, Any] = field(default_factory=dict)  # input name -> checked value


NOT_OURS = ("utm_", "__", "fbclid", "gclid", "mc_", "ref", "view")  # the page's own or a mailer's parameters: never a link input


def _not_ours(key: str) -> bool:
    """A query key that belongs to Gradio (`__theme`, `view=api`) or to whoever shared the address (utm_ tags)."""
    return key.startswith(NOT_OURS)


def parse(query: str | Iterable[tuple[str, str]], specs: Mapping[str, Mapping[str, Param]]) -> Link | None:
    """The link a query string (or its key-value pairs, repeats kept) asks for; None when it asks for nothing.

    `specs`: tab id -> its linkable inputs. Keys that belong to the page or a mailer (NOT_OURS) are ignored, and
    an address that names no tab is no link (None). Raises LinkError for anything else: an unknown tab, an unknown
    or repeated key, a value outside its input's limits.
    """
    if isinstance(query, str):
        if len(query) > MAX_QUERY_CHARS:
            raise LinkError(f"This link cannot be opened: it is {len(query):,} characters long; at most {MAX_QUERY_CHARS:,}.")
        pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True)
    else:
        pairs = list(query)
        if sum(len(k) + len(v) + 2 for k, v in pairs) > MAX_QUERY_CHARS:
            raise LinkError(f"This link cannot be opened: it is longer than {MAX_QUERY_CHARS:,} characters.")
    if not pairs:
        return None
    keys = [k for k, _ in pairs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise LinkError(f"This link cannot be opened: {', '.join(repeated)} appears more than once.")
    given = {k: v for k, v in pairs if not _not_ours(k)}
    tab = given.pop("tab", None)
    if tab is None:  # an address with other parameters (a tracking tag, Gradio's own ?__theme=dark): the page, as it is
        return None
    if tab not in specs:
        raise LinkError(f"This link cannot be opened: there is no tab {tab[:40]!r}; the tabs are {', '.join(specs)}.")
    params = specs[tab]
    unknown = sorted(k for k in given if k not in params)
    if unknown:
        known = ", ".join(params) or "none"
        raise LinkError(f"This link cannot be opened: the {tab} tab has no input {', '.join(repr(k[:40]) for k in unknown)}; "
                        f"its link inputs are {known}.")
    return Link(tab, {k: params[k].read(v) for k, v in given.items()})


def to_query(link: Link, specs: Mapping[str, Mapping[str, Param]] | None = None) -> str:
    """The query string of `link` (checked against `specs` when given, so a written link always opens)."""
    values = {"tab": link.tab}
    for name, value in link.values.items():
        param = (specs or {}).get(link.tab, {}).get(name) or Param(name, "text")
        values[name] = param.write(value)
    if specs is not None:
        parse(list(values.items()), specs)  # what we write must read back
    return "?" + urlencode(values, quote_via=quote, safe=",")
