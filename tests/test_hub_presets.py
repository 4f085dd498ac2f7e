"""Every preset loads and runs from a local fake Hub that serves the real repos' file layouts (read from
the Hub's own file listings, at the commits the presets are pinned to), and nothing pickled or
executable is ever requested.

The layouts' names are the real ones; the weights behind them are the tiny test models (the real
ones are hundreds of MB). Pickles, other frameworks' weights, ONNX/Core ML exports and custom code
are served as junk bytes: fetching one is a failure, loading one would crash.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from playground.config import PROJECT_ROOT
from playground.models.presets import PRESETS, Family
from tests.fakehub import FakeHub, folder_files

pytestmark = pytest.mark.slow

JUNK = b"\x80\x02 not a file the playground may read"
# What must never be requested: pickles, other frameworks' weights, exports, code.
FORBIDDEN = (".bin", ".h5", ".msgpack", ".ot", ".tflite", ".onnx", ".py", ".mlmodel", ".pt", ".ckpt")

REV = {p.hub_id: p.revision for p in PRESETS}


def _with_junk(files: dict[str, bytes], junk: list[str]) -> dict[str, bytes]:
    return {**files, **{name: JUNK for name in junk}, ".gitattributes": b"*.bin filter=lfs\n", "README.md": b"# card\n"}


def _layouts(tiny_root: Path) -> tuple[dict, dict]:
    gpt = folder_files(tiny_root / "tiny-gpt")
    gpt["generation_config.json"] = json.dumps({"bos_token_id": 50256, "eos_token_id": 50256}).encode()
    del gpt["tokenizer_config.json"]  # openai-community/gpt2 has none: vocab.json, merges.txt and tokenizer.json
    llama = folder_files(tiny_root / "tiny-llama")  # HuggingFaceTB/SmolLM2-135M: the tokenizer's five files at the root
    llama["generation_config.json"] = json.dumps({"bos_token_id": 50256, "eos_token_id": 50256}).encode()
    llama["special_tokens_map.json"] = json.dumps({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}).encode()
    llama.setdefault("tokenizer_config.json", json.dumps({"model_max_length": 8192}).encode())
    bert = folder_files(tiny_root / "tiny-bert")
    t5 = folder_files(tiny_root / "tiny-t5")
    t5["generation_config.json"] = json.dumps({"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0}).encode()
    ddpm = tiny_root / "tiny-ddpm"  # saved with unet/ and scheduler/ folders; the real repo keeps them at its root
    index = {"_class_name": "DDPMPipeline", "_diffusers_version": "0.1.1", "scheduler": ["diffusers", "DDPMScheduler"],
             "unet": ["diffusers", "UNet2DModel"]}
    ddpm_root = {
        "config.json": (ddpm / "unet" / "config.json").read_bytes(),
        "diffusion_pytorch_model.safetensors": (ddpm / "unet" / "diffusion_pytorch_model.safetensors").read_bytes(),
        "scheduler_config.json": (ddpm / "scheduler" / "scheduler_config.json").read_bytes(),
        "model_index.json": json.dumps(index).encode(),
        "images/generated_image_0.png": b"\x89PNG not really",
    }
    sd = folder_files(tiny_root / "tiny-sd")
    # the worst case for a Stable Diffusion repo: a safety checker and its image processor listed and present
    index = json.loads(sd["model_index.json"])
    index.update(
        safety_checker=["stable_diffusion", "StableDiffusionSafetyChecker"], feature_extractor=["transformers", "CLIPImageProcessor"]
    )
    sd["model_index.json"] = json.dumps(index).encode()
    sd.update({"safety_checker/config.json": b"{}", "safety_checker/model.safetensors": JUNK,
               "feature_extractor/preprocessor_config.json": b"{}"})
    # its tokenizer as older saves (and segmind/tiny-sd) keep it: vocab.json and merges.txt, no tokenizer.json
    del sd["tokenizer/tokenizer.json"]
    symbols = list("abcdefghijklmnopqrstuvwxyz ")
    vocab = {c: i for i, c in enumerate(symbols)} | {f"{c}</w>": len(symbols) + i for i, c in enumerate(symbols)}
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    sd.update({"tokenizer/vocab.json": json.dumps(vocab).encode(), "tokenizer/merges.txt": b"#version: 0.2\n",
               "tokenizer/special_tokens_map.json": json.dumps({"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                                                                "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}).encode()})
    sd_pickles = [
        name.replace("model.safetensors", "pytorch_model.bin").replace("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
        for name in sd
        if name.endswith(".safetensors")
    ]
    sd_main = {name: data for name, data in sd.items() if not name.endswith(".safetensors")}  # main: only pickles
    repos = {
        # openai-community/gpt2 at 607a30d: tflite, flax, rust, TF and pickled weights beside model.safetensors; an onnx/ export
        "gpt2": {
            REV["gpt2"]: _with_junk(
                gpt,
                [
                    "pytorch_model.bin",
                    "tf_model.h5",
                    "flax_model.msgpack",
                    "rust_model.ot",
                    "64.tflite",
                    "64-8bits.tflite",
                    "64-fp16.tflite",
                    "onnx/decoder_model.onnx",
                    "onnx/decoder_with_past_model.onnx",
                ],
            )
            | {"onnx/config.json": b"{}", "onnx/tokenizer.json": b"{}"}
        },
        # HuggingFaceTB/SmolLM2-135M at 4e53f73: everything at the root, safetensors only
        "HuggingFaceTB/SmolLM2-135M": {REV["HuggingFaceTB/SmolLM2-135M"]: _with_junk(llama, [])},
        # google-bert/bert-base-uncased at 86b5e09: a coreml/ export with JSON manifests, model.onnx, LICENSE
        "bert-base-uncased": {
            REV["bert-base-uncased"]: _with_junk(
                bert,
                [
                    "pytorch_model.bin",
                    "tf_model.h5",
                    "flax_model.msgpack",
                    "rust_model.ot",
                    "model.onnx",
                    "coreml/fill-mask/float32_model.mlpackage/Data/com.apple.CoreML/model.mlmodel",
                    "coreml/fill-mask/float32_model.mlpackage/Data/com.apple.CoreML/weights/weight.bin",
                ],
            )
            | {"coreml/fill-mask/float32_model.mlpackage/Manifest.json": b"{}", "LICENSE": b"Apache-2.0"}
        },
        # google-t5/t5-small at df1b051: an onnx/ export, spiece.model beside tokenizer.json
        "t5-small": {
            REV["t5-small"]: _with_junk(
                t5,
                [
                    "pytorch_model.bin",
                    "tf_model.h5",
                    "flax_model.msgpack",
                    "rust_model.ot",
                    "onnx/encoder_model.onnx",
                    "onnx/decoder_model_merged.onnx",
                    "spiece.model",
                ],
            )
            | {"onnx/config.json": b"{}"}
        },
        # google/ddpm-cifar10-32 at 267b167: every component at the root, a pickle and custom code beside them
        "google/ddpm-cifar10-32": {
            REV["google/ddpm-cifar10-32"]: _with_junk(ddpm_root, ["diffusion_pytorch_model.bin", "modeling_ddpm.py"])
        },
        # segmind/tiny-sd: main holds only pickles; refs/pr/1 (252ce16) adds the safetensors conversion
        "segmind/tiny-sd": {
            "0" * 40: _with_junk(sd_main, sd_pickles),
            REV["segmind/tiny-sd"]: _with_junk(sd, sd_pickles),
        },
    }
    aliases = {"segmind/tiny-sd": {"main": "0" * 40, "refs/pr/1": REV["segmind/tiny-sd"]}}
    for repo, revs in repos.items():
        aliases.setdefault(repo, {}).setdefault("main", next(iter(revs)))
    return repos, aliases


# Loads every preset through the app's own loader, online against the fake Hub, and runs each once.
SCRIPT = r"""
import json, sys, torch
from playground.config import Settings
from playground.models import ModelLoader
from playground.models.presets import PRESETS
from playground.core.text import tokenize, generation, masked, seq2seq

loader = ModelLoader(Settings.from_env())
out = {}
for p in PRESETS:
    lm = loader.load(p.hub_id, p.family)
    row = {"kind": lm.source.kind.value, "folder": str(lm.folder), "note": lm.source.note}
    if p.family.value == "tokenizer":
        row["tokens"] = len(tokenize.tokenize(lm.tokenizer, "Hello world").tokens)
    elif p.family.value == "causal-lm":
        row["logits"] = list(lm.model(torch.tensor([[464, 3797]])).logits.shape)
    elif p.family.value == "masked-lm":
        row["fill"] = len(masked.fill_mask(lm.model, lm.tokenizer, "the [MASK] sat", 3).predictions[0])
    elif p.family.value == "seq2seq":
        row["beams"] = len(seq2seq.text_to_text(lm.model, lm.tokenizer, "translate English to German: hi", 2, 3).sequences)
    else:
        from playground.ui.diffusion_tab import DenoiseRequest, on_denoise
        request = DenoiseRequest(model=p.hub_id, prompt="a red circle" if p.family.value == "latent-diffusion" else "", steps=2,
                                 guidance=1.0 if p.family.value == "diffusion" else 3.0)
        frames = list(on_denoise(loader, request, None, None))
        row["frames"] = len(frames)
    out[f"{p.family.value}:{p.hub_id}"] = row
print("RESULT " + json.dumps(out))
"""


def _run(hub_url: str, cache: Path, script: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_ENDPOINT": hub_url, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "0", "PLAYGROUND_DEVICE": "cpu",
           "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "PLAYGROUND_HUB_TIMEOUT_S": "5"}
    env.pop("HF_HOME", None)
    return subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_every_preset_loads_and_runs_from_the_real_hub_layouts(tiny_root, tmp_path):
    repos, aliases = _layouts(tiny_root)
    with FakeHub(repos, aliases) as hub:
        proc = _run(hub.url, tmp_path / "cache", SCRIPT)
        requested = list(hub.requested)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert len(result) == len(PRESETS)
    for name, row in result.items():
        assert row["kind"] == "hub", (name, row)  # the Hub model ran, not the embedded fallback
    assert all(result[f"tokenizer:{p}"]["tokens"] > 0 for p in ("gpt2", "bert-base-uncased", "t5-small"))
    assert result["diffusion:google/ddpm-cifar10-32"]["frames"] >= 2 and result["latent-diffusion:segmind/tiny-sd"]["frames"] >= 2
    fetched = [r for r in requested if "/resolve/" in r]
    bad = [r for r in fetched if r.endswith(FORBIDDEN) or "/coreml/" in r or "/onnx/" in r]
    assert not bad, f"fetched files the playground must never read: {bad}"
    # exactly the files the presets table names (what the Space preloads): nothing more, nothing missing
    for repo in REV:
        got = {r.split(f"/resolve/{REV[repo]}/", 1)[1] for r in fetched if r.startswith(f"/{repo}/resolve/")}
        named = {f for p in PRESETS if p.hub_id == repo for f in p.files}
        assert got == named, f"{repo}: fetched {sorted(got - named)} beyond the preset's files, missed {sorted(named - got)}"
    # every resolve request names the pinned commit, never a moving branch
    pinned = {REV[repo] for repo in REV}
    assert all(any(f"/resolve/{sha}/" in r for sha in pinned) for r in fetched), [r for r in fetched if not any(sha in r for sha in pinned)]
    print(f"\nfake Hub: {len(PRESETS)} presets loaded and ran; {len(fetched)} files fetched, none pickled or executable")


def test_a_revision_with_only_pickles_is_refused_with_a_reason(tiny_root, tmp_path):
    repos, aliases = _layouts(tiny_root)
    script = r"""
from playground.models.hub import download_repo, HubFilesError
from playground.config import Settings
s = Settings.from_env()
try:
    download_repo("segmind/tiny-sd", s.hf_cache, s.hub_endpoint, "main")
except HubFilesError as exc:
    print("REFUSED", exc)
"""
    with FakeHub(repos, aliases) as hub:
        proc = _run(hub.url, tmp_path / "cache", script)
        requested = list(hub.requested)
    assert "REFUSED" in proc.stdout and "only pickles" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    assert not [r for r in requested if r.endswith(".bin")]


def test_a_missing_file_on_the_hub_does_not_mark_it_unreachable(tiny_root, tmp_path):
    """One failed download (the Hub answered 404) falls back for that request only; the next user still gets the Hub."""
    repos, aliases = _layouts(tiny_root)
    del repos["t5-small"][REV["t5-small"]]["model.safetensors"]
    script = r"""
from playground.config import Settings
from playground.models import ModelLoader
loader = ModelLoader(Settings.from_env())
t5 = loader.load("t5-small", "seq2seq")
gpt = loader.load("gpt2", "causal-lm")
print("KINDS", t5.source.kind.value, gpt.source.kind.value, loader.hub_status().reachable)
"""
    with FakeHub(repos, aliases) as hub:
        proc = _run(hub.url, tmp_path / "cache", script)
    assert "KINDS embedded hub True" in proc.stdout, proc.stdout + proc.stderr[-3000:]


def test_presets_are_pinned_to_commits():
    for p in PRESETS:
        assert p.revision and len(p.revision) == 40 and all(c in "0123456789abcdef" for c in p.revision), p
    assert {p.family for p in PRESETS} >= {Family.TOKENIZER, Family.DIFFUSION, Family.LATENT_DIFFUSION}
