"""The house's stated boundaries, enforced: compute and the loader import no gradio; settings import no compute; no
import cycle anywhere in `playground/`; no tab imports another tab; every diffusion caller goes through `run`; no
handler takes more than six parameters; module aliases say what they are."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import playground
import playground.core
import playground.models

ROOT = Path(playground.__file__).resolve().parent
COMPUTE = sorted(m.name for pkg in (playground.core, playground.models) for m in pkgutil.walk_packages(pkg.__path__, f"{pkg.__name__}."))


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its __init__)."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the playground modules it imports, anywhere in its file (a function-level import closes a cycle too)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_anywhere_in_playground():
    graph = import_graph()
    assert len(graph) > 60 and graph["playground.ui.shell"]  # every module found, edges read
    assert cycles(graph) == [], "import cycles (each line one circle of modules): " + "; ".join(" <-> ".join(c) for c in cycles(graph))


def test_no_tab_imports_another_tab_and_lessons_sit_below_the_ui():
    graph = import_graph()
    tabs = {m for m in graph if m.startswith("playground.ui.") and m.endswith("_tab")}
    assert len(tabs) >= 11
    for tab in tabs:
        assert not graph[tab] & (tabs - {tab}), f"{tab} imports another tab: {graph[tab] & tabs}; move the shared part to ui/common.py"
    below = [m for m in graph if m.startswith(("playground.lessons", "playground.core", "playground.models"))]
    for m in below:
        assert not {t for t in graph[m] if t.startswith(("playground.ui", "playground.workshop"))}, f"{m} imports the UI"


def test_every_core_and_models_module_is_gradio_free():
    assert len(COMPUTE) >= 30 and "playground.core.diffusion.run" in COMPUTE  # every module found, subpackages too
    code = f"import sys, importlib\nfor m in {COMPUTE!r}: importlib.import_module(m)\nassert 'gradio' not in sys.modules, 'gradio imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_settings_import_no_compute_and_no_torch():
    code = "import sys, playground.config\nassert not [m for m in sys.modules if m.startswith(('playground.core', 'torch', 'gradio'))]"
    subprocess.run([sys.executable, "-c", code], check=True)


LOOP_PARTS = {"start", "denoise_loop", "resume_from", "make_scheduler", "set_timesteps"}  # what only `run` may touch


def test_every_diffusion_caller_goes_through_run():
    """Outside `core/diffusion/`, nobody sets up a scheduler, a generator or x_T: they build a DiffusionRequest and call
    `run` (or `final_sample`, `branch_from`, `word_maps`, which call it). The 2-D toy trainer keeps its own lesson loop."""
    offenders = []
    for name, path in _modules().items():
        if name.startswith("playground.core.diffusion") or name == "playground.core.training.toy_diffusion":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("playground.core.diffusion"):
                offenders += [f"{name} imports {node.module}.{a.name}" for a in node.names if a.name in LOOP_PARTS | {"loop"}]
            if isinstance(node, ast.Attribute) and node.attr in LOOP_PARTS - {"start"}:
                offenders.append(f"{name} calls .{node.attr}")
    assert offenders == []


def test_no_handler_takes_more_than_six_parameters():
    """A handler takes the loader and one request dataclass (and the session's state), not a dozen loose values."""
    wide = []
    for path in (ROOT / "ui").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("on_"):
                n = len(node.args.posonlyargs) + len(node.args.args) + len(node.args.kwonlyargs)
                if n > 6:
                    wide.append(f"{path.name}:{node.name} takes {n}")
    assert wide == []


def test_module_aliases_say_what_they_are():
    """`from playground.core.text import attention as A` made every reader look up what A was."""
    short = []
    for path in [*ROOT.rglob("*.py"), *(ROOT.parent / "tests").glob("*.py"), *(ROOT.parent / "benchmarks").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                module = getattr(node, "module", None) or ""
                for a in node.names:
                    if a.asname and len(a.asname) <= 2 and (module.startswith("playground") or a.name.startswith("playground")):
                        short.append(f"{path.name}: {a.name} as {a.asname}")
    assert short == []
