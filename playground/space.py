"""The Hugging Face Space's configuration: the YAML block at the very top of README.md, made from the
presets table (`models.presets`, the one source of truth) and the `gradio` pin in requirements.txt.

    python -m playground.space          # rewrite README.md's front matter from the presets
    python -m playground.space --check  # exit 1 if it is stale

`preload_from_hub` lists, per preset repo, exactly the files the loader reads and the commit it is
pinned to, so the Space downloads them while it builds and the first visitor does not wait.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from playground.config import PROJECT_ROOT
from playground.models.presets import PRESETS

README = PROJECT_ROOT / "README.md"
REQUIREMENTS = PROJECT_ROOT / "requirements.txt"

# Fixed fields of the Space card (what is not derived from the code).
CARD = {
    "title": "Foundation Model Playground",
    "emoji": "🔬",
    "colorFrom": "indigo",
    "colorTo": "green",
    "sdk": "gradio",
    "python_version": "3.11",
    "app_file": "app.py",
    "license": "mit",
    "short_description": "How Transformers and diffusion models work, on live models",
    "pinned": False,
}


def gradio_pin(requirements: Path = REQUIREMENTS) -> str:
    """The version `gradio==X` pins in requirements.txt.

    >>> gradio_pin()[:2]
    '6.'
    """
    match = re.search(r"^gradio==([\w.]+)\s*(#.*)?$", requirements.read_text(), re.MULTILINE)
    if not match:
        raise ValueError("requirements.txt must pin gradio exactly (gradio==X.Y.Z): the Space's sdk_version is that pin")
    return match.group(1)


def preload() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Per Hub repo of the presets: (the commit it is pinned to, the files the loader reads there), in order."""
    repos: dict[str, tuple[str, tuple[str, ...]]] = {}
    for p in PRESETS:
        if p.revision is None:
            continue
        commit, files = repos.get(p.hub_id, (p.revision, ()))
        if commit != p.revision:
            raise ValueError(f"presets of {p.hub_id} are pinned to two commits ({commit}, {p.revision}); pin them to one")
        repos[p.hub_id] = (commit, tuple(dict.fromkeys((*files, *p.files))))
    return repos


def front_matter() -> dict[str, Any]:
    """The Space configuration as a mapping (what the YAML block says)."""
    repos = preload()
    return {
        **CARD,
        "sdk_version": gradio_pin(),
        "models": list(repos),
        "preload_from_hub": [f"{repo} {','.join(files)} {commit}" for repo, (commit, files) in repos.items()],
    }


def render(config: dict[str, Any]) -> str:
    """The YAML block, `---` lines included (plain YAML: strings that could be misread are quoted)."""
    lines = ["---"]
    for key, value in config.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines.extend(f"  - {item}" for item in value)
        elif isinstance(value, bool):
            lines.append(f"{key}: {'true' if value else 'false'}")
        else:
            lines.append(f'{key}: "{value}"' if key in ("python_version", "sdk_version") else f"{key}: {value}")
    lines.append("---")
    return "\n".join(lines) + "\n"


def split_readme(text: str) -> tuple[str, str]:
    """(the front matter block, the rest); the block is '' when the README has none."""
    if text.startswith("---\n"):
        end = text.index("\n---\n", 4) + len("\n---\n")
        return text[:end], text[end:]
    return "", text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m playground.space", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md's front matter is stale")
    args = parser.parse_args(argv)
    current, rest = split_readme(README.read_text())
    wanted = render(front_matter())
    if args.check:
        if current != wanted:
            print("README.md's Space front matter is stale: run `python -m playground.space`", file=sys.stderr)
            return 1
        return 0
    README.write_text(wanted + rest.lstrip("\n") if not current else wanted + rest)
    print(f"wrote the Space front matter of {README.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
