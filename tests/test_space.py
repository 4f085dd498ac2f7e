"""The repository is the Space: README.md opens with the Space's YAML front matter, made from the presets
table (one source of truth), and ZeroGPU runs every piece of GPU work inside `spaces.GPU`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

from playground import space
from playground.config import PROJECT_ROOT
from playground.models.presets import PRESETS

README = (PROJECT_ROOT / "README.md").read_text()


def _front_matter() -> dict:
    assert README.startswith("---\n"), "a Space reads its configuration from a YAML block on README.md's very first line"
    block, _ = space.split_readme(README)
    return yaml.safe_load(block.strip().strip("-"))


def test_front_matter_parses_and_agrees_with_the_presets_and_the_requirements():
    config = _front_matter()
    assert config["sdk"] == "gradio" and config["app_file"] == "app.py" and str(config["python_version"]) == "3.11"
    assert config["sdk_version"] == space.gradio_pin()  # the Space installs the gradio the app is tested with
    assert config["license"] and config["title"] and config["emoji"]
    assert config["models"] == list(dict.fromkeys(p.hub_id for p in PRESETS))
    preload = {}
    for entry in config["preload_from_hub"]:
        repo, files, commit = entry.split(" ")
        preload[repo] = (commit, files.split(","))
    for p in PRESETS:
        commit, files = preload[p.hub_id]
        assert commit == p.revision, f"{p.hub_id}: the front matter preloads {commit}, the preset is pinned to {p.revision}"
        assert set(p.files) <= set(files), f"{p.hub_id}: the loader reads {set(p.files) - set(files)}, which the Space does not preload"
    assert config == space.front_matter(), "README.md's front matter is stale: run `python -m playground.space`"


def test_the_two_commands_come_right_after_the_front_matter():
    _, rest = space.split_readme(README)
    first_block = rest.split("```", 2)[1]
    assert rest.lstrip().startswith("```bash")
    assert "pip install -r requirements.txt && python app.py" in first_block
    assert "pip install -r requirements-dev.txt && python -m pytest" in first_block


def test_preloaded_files_are_only_what_the_loader_reads():
    for entry in _front_matter()["preload_from_hub"]:
        files = entry.split(" ")[1].split(",")
        assert not [f for f in files if f.endswith((".bin", ".pt", ".ckpt", ".h5", ".msgpack", ".onnx", ".py"))], entry


def test_space_check_command_reports_a_stale_front_matter(tmp_path, monkeypatch):
    assert space.main(["--check"]) == 0
    stale = tmp_path / "README.md"
    stale.write_text(README.replace(space.gradio_pin(), "0.0.1", 1))
    monkeypatch.setattr(space, "README", stale)
    assert space.main(["--check"]) == 1


# ---- ZeroGPU -------------------------------------------------------------------------------------------

STAND_IN = '''
"""A stand-in for Hugging Face's `spaces` package (installed only for this test): GPU(duration) runs the
function with a flag set around every call (every resume, for generators) and records the duration asked."""
import functools, inspect, threading, time

state = threading.local()
granted = []  # (function name, seconds asked, seconds it ran)


def GPU(fn=None, duration=60):
    def decorate(f):
        def seconds(args, kwargs):
            return duration(*args, **kwargs) if callable(duration) else duration

        if inspect.isgeneratorfunction(f):
            @functools.wraps(f)  # as the real spaces.GPU: the signature gradio reads stays the function's
            def wrapped(*args, **kwargs):
                asked, start = seconds(args, kwargs), time.perf_counter()
                gen = f(*args, **kwargs)
                try:
                    while True:
                        state.inside = True
                        try:
                            item = next(gen)
                        except StopIteration:
                            return
                        finally:
                            state.inside = False
                        yield item
                finally:
                    granted.append((f.__name__, asked, time.perf_counter() - start))
        else:
            @functools.wraps(f)
            def wrapped(*args, **kwargs):
                asked, start = seconds(args, kwargs), time.perf_counter()
                state.inside = True
                try:
                    return f(*args, **kwargs)
                finally:
                    state.inside = False
                    granted.append((f.__name__, asked, time.perf_counter() - start))
        wrapped._zerogpu = True
        return wrapped
    return decorate(fn) if callable(fn) else decorate
'''

DRIVER = """
import json, sys
import httpx
import spaces
from playground.config import Settings
from playground.ui import build_app, launch_options

demo = build_app(Settings(offline=True, device="cpu"))
torch_at_import = "torch" in sys.modules
import torch
cuda_at_import = torch.cuda.is_initialized()
outside = []
torch.nn.modules.module.register_module_forward_pre_hook(
    lambda module, args: None if getattr(spaces.state, "inside", False) else outside.append(type(module).__name__))
demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=PORT, quiet=True, **launch_options())
url = "http://127.0.0.1:PORT/"
http = httpx.Client(timeout=300)
done = {}
for name, args in [("generate", ["ROMEO.\\n", "gpt2", 8, 1.0, 0, 1.0, 0, False]), ("attention", ["gpt2", "The cat sat.", ""]),
                   ("text2text", ["add: 2 + 3", "t5-small", 2, 4]), ("fill_mask", ["the [MASK] sat", "bert-base-uncased", 3]),
                   ("inside", ["gpt2", "The cat sat.", 1, 1, 2, ""]), ("score", ["The cat sat on the mat.", "gpt2"]),
                   ("ablate", ["gpt2", "I am Lord Angelo's man. Lord", "sweep", "zero", 5]),
                   ("patch", ["gpt2", "I am Lord Angelo's man. Lord", "I am Lord John's man. Lord", "Angelo", "John", "heads"]),
                   ("sink", ["gpt2", "The cat sat on the mat.", "all"]),
                   ("kv_cache", ["gpt2", "ROMEO.", 4]), ("clip", ["a red circle\\na blue square", None]),
                   ("unclip", ["a red circle", 0, 3, 4.0]), ("designs", ["a red circle", 0, 2, 5.0]),
                   ("denoise", ["google/ddpm-cifar10-32", "Bag", "DDIM", 5, 3.0, 0, ""]),
                   ("denoise", ["google/ddpm-cifar10-32", "Bag", "DDIM", 60, 3.0, 0, ""])]:
    event = http.post(url + "gradio_api/call/" + name, json={"data": args}).json()["event_id"]
    done[name] = "event: complete" in http.get(url + "gradio_api/call/" + name + "/" + event).text
fns = [[getattr(d.fn, "__module__", "") or "", getattr(d.fn, "__name__", ""), bool(getattr(d.fn, "_zerogpu", False))]
       for d in demo.fns.values()]
print("RESULT " + json.dumps({"fns": fns, "torch_at_import": torch_at_import, "cuda_at_import": cuda_at_import, "done": done,
                              "outside": outside, "granted": spaces.granted}))
demo.close()
"""


MODEL_HANDLERS = [
    ("attention_tab", "on_run"), ("attention_tab", "on_compare"), ("attention_tab", "attention"),
    ("bert_tab", "on_fill"), ("bert_tab", "on_lens"), ("bert_tab", "on_embed"), ("bert_tab", "fill_mask"), ("bert_tab", "embed"),
    ("gpt_tab", "on_generate"), ("gpt_tab", "on_step"), ("gpt_tab", "on_inspect"), ("gpt_tab", "on_branch"), ("gpt_tab", "generate"),
    ("t5_tab", "on_run"), ("t5_tab", "on_lens"), ("t5_tab", "text2text"),
    ("inside_tab", "on_run"), ("inside_tab", "inside"), ("gpt_tab", "on_score"), ("gpt_tab", "score"),
    ("training_tab", "on_train_toy"), ("training_tab", "on_train_gpt"), ("training_tab", "train_toy"), ("training_tab", "train_gpt"),
    ("training_tab", "on_train_flow"), ("training_tab", "train_flow"),
    ("diffusion_tab", "on_denoise"), ("diffusion_tab", "on_scrub"), ("diffusion_tab", "on_branch"), ("diffusion_tab", "on_export"),
    ("diffusion_tab", "denoise_api"), ("diffusion_tab", "on_compare_clipping"),
    ("text_to_image_tab", "on_generate"), ("text_to_image_tab", "cross_attention"),
    ("interventions_tab", "on_ablate"), ("interventions_tab", "on_patch"), ("interventions_tab", "on_sink"),
    ("interventions_tab", "ablate"), ("interventions_tab", "patch"), ("interventions_tab", "sink"),
    ("kv_cache_section", "on_measure"), ("kv_cache_section", "kv_cache"), ("inside_tab", "on_route"), ("inside_tab", "route"),
    ("clip_section", "on_compare"), ("clip_section", "clip_api"), ("clip_section", "on_prior"),
    ("unclip_section", "on_unclip"), ("unclip_section", "on_variations"), ("unclip_section", "unclip"),
    ("unclip_section", "variations_api"), ("designs_section", "on_designs"), ("designs_section", "designs"),
]


@pytest.mark.slow
def test_zerogpu_runs_all_gpu_work_inside_spaces_gpu_with_a_fitting_duration(tmp_path):
    from tests.conftest import free_port

    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "__init__.py").write_text(STAND_IN)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PROJECT_ROOT)]),
        "SPACES_ZERO_GPU": "true",
        "HF_HUB_OFFLINE": "1",
    }
    script = textwrap.dedent(DRIVER).replace("PORT", str(free_port()))
    proc = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert not out["torch_at_import"] and not out["cuda_at_import"]  # nothing touches CUDA (or even torch) at import
    assert all(out["done"].values()), out["done"]
    assert out["outside"] == [], f"forward passes outside spaces.GPU: {sorted(set(out['outside']))}"
    wrapped = {(module.rsplit(".", 1)[-1], name): flag for module, name, flag in out["fns"]}
    for key in MODEL_HANDLERS:  # every handler that runs a model is wrapped, UI events included (lenses, scrubbing, exports)
        assert wrapped.get(key) is True, f"{key} runs a model outside spaces.GPU" if key in wrapped else f"{key} is not wired"
    granted = out["granted"]
    assert {name for name, _, _ in granted} >= {"generate", "attention", "text2text", "fill_mask", "denoise_api", "inside", "score",
                                                "ablate", "patch", "sink", "kv_cache", "clip_api", "unclip",
                                                "designs"}
    for name, asked, ran in granted:
        assert ran < asked, f"{name} ran {ran:.1f} s but asked the GPU for only {asked} s"
    denoise = [asked for name, asked, _ in granted if name == "denoise_api"]
    assert denoise[1] > denoise[0]  # 60 steps ask for more GPU time than 5: the duration fits the request
