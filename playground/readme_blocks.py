"""Generated blocks of the project README: text between `<!-- NAME: start -->` and `<!-- NAME: end -->`.

`python -m playground.train.evaluate` writes the `figures` block; the scripts in `benchmarks/` write
the `benchmarks` block (from `benchmarks/results.json`). Tests fail when a block is stale.

    >>> replace_block("a <!-- x: start -->\\nold\\n<!-- x: end --> b", "x", "new")
    'a <!-- x: start -->\\nnew\\n<!-- x: end --> b'
"""

from __future__ import annotations

from pathlib import Path

from playground.config import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}: start -->", f"<!-- {name}: end -->"


def read_block(name: str, readme: Path = README) -> str:
    """The text of block `name`, stripped."""
    start, end = markers(name)
    return readme.read_text().split(start, 1)[1].split(end, 1)[0].strip()


def replace_block(text: str, name: str, body: str) -> str:
    """`text` with block `name` holding `body`."""
    start, end = markers(name)
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def write_block(name: str, body: str, readme: Path = README) -> None:
    """Put `body` into block `name` of `readme`."""
    readme.write_text(replace_block(readme.read_text(), name, body))
