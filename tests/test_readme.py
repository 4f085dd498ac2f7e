"""The README's generated blocks agree with what generated them, and name commands that exist."""

from __future__ import annotations

import re

from benchmarks.report import load_results, readme_block
from playground.readme_blocks import read_block
from tests.conftest import PROJECT_ROOT


def test_benchmark_block_shows_the_recorded_results():
    results = load_results()
    assert {"cold_start", "tokenize_100k"} <= set(results)
    assert read_block("benchmarks") == readme_block(results), "README benchmarks are stale: run the scripts in benchmarks/"


def test_every_recorded_benchmark_names_a_script_that_exists_and_a_ratio():
    for name, r in load_results().items():
        script = r["command"].split()[1]
        assert (PROJECT_ROOT / script).is_file(), f"{name}: {script} does not exist"
        assert re.search(r"\*\*\d+(\.\d+)?x\*\*", r["figure"]), f"{name}: no ratio in {r['figure']!r}"


def test_readme_opens_with_the_two_commands():
    first = (PROJECT_ROOT / "README.md").read_text().split("```", 2)[1]
    assert "pip install -r requirements.txt && python app.py" in first
    assert "pip install -r requirements-dev.txt && python -m pytest" in first
