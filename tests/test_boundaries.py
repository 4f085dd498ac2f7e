"""Layer boundaries: the compute layer and the loader never import gradio; settings import no compute."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import playground.core
import playground.models

COMPUTE = sorted(
    f"{pkg.__name__}.{m.name}" for pkg in (playground.core, playground.models) for m in pkgutil.iter_modules(pkg.__path__)
)


def test_every_core_and_models_module_is_gradio_free():
    assert len(COMPUTE) >= 20  # every module found, not a hand-kept list that misses new ones
    code = f"import sys, importlib\nfor m in {COMPUTE!r}: importlib.import_module(m)\nassert 'gradio' not in sys.modules, 'gradio imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_settings_import_no_compute_and_no_torch():
    code = "import sys, playground.config\nassert not [m for m in sys.modules if m.startswith(('playground.core', 'torch', 'gradio'))]"
    subprocess.run([sys.executable, "-c", code], check=True)
