"""The embedded models: each loads through the shared loader, offline, and does its job.

Known answers come from each model's metrics.json (written by `python -m playground.train.evaluate`).
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from playground.config import Settings
from playground.core.diffusion import class_index
from playground.models import ModelLoader, SourceKind
from playground.train import common
from tests.conftest import MODELS, PROJECT_ROOT, has_model

FOLDERS = ["gpt-shakespeare", "bert-shakespeare", "t5-tasks", "ddpm-fashion", "ldm-fashion", "fashion-classifier"]
PRESETS = [("causal-lm", "gpt2", "gpt-shakespeare"), ("masked-lm", "bert-base-uncased", "bert-shakespeare"),
           ("seq2seq", "t5-small", "t5-tasks"), ("diffusion", "google/ddpm-cifar10-32", "ddpm-fashion"),
           ("latent-diffusion", "segmind/tiny-sd", "ldm-fashion")]


def needs(name: str):
    return pytest.mark.skipif(not has_model(name), reason=f"assets/models/{name} is not built yet")


@pytest.fixture(scope="module")
def loader() -> ModelLoader:
    return ModelLoader(Settings(offline=True, device="cpu"))


def metrics(name: str) -> dict:
    return common.load_metrics(MODELS / name)


def test_all_embedded_models_fit_the_size_limits():
    files = [f for f in MODELS.rglob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in files) <= 50 * 2**20
    for f in files:
        assert f.stat().st_size < 10 * 2**20, f"{f} is over 10 MB (a Space would need Git LFS)"
        assert f.suffix not in {".bin", ".pt", ".pth", ".ckpt"}, f"{f}: weights must be safetensors"


@pytest.mark.parametrize("name", FOLDERS)
def test_each_model_has_a_card_with_its_figures(name):
    if not has_model(name):
        pytest.skip(f"{name} is not built yet")
    card = (MODELS / name / "README.md").read_text()
    assert card.startswith("---\n") and "license:" in card
    assert "python -m playground.train." in card
    if name != "fashion-classifier":
        assert "teaching model" in card.lower()
    if name in ("ddpm-fashion", "ldm-fashion"):  # the measured figure and the sample grid it shows
        assert f"**{metrics(name)['class_accuracy']['guidance_3']['overall']:.1%}**" in card
        assert "](samples.png)" in card and (MODELS / name / "samples.png").is_file()


@pytest.mark.parametrize("family, preset, folder", PRESETS)
def test_presets_run_on_the_embedded_models_offline(loader, family, preset, folder):
    if not has_model(folder):
        pytest.skip(f"{folder} is not built yet")
    lm = loader.load(preset, family)
    assert lm.source.kind is SourceKind.EMBEDDED and lm.source.location.endswith(folder)
    assert lm.n_params > 0


@needs("gpt-shakespeare")
def test_gpt_writes_text_and_beats_the_baby_gpt_on_held_out_shakespeare(loader):
    lm = loader.load("gpt2", "causal-lm")
    ids = lm.tokenizer("ROMEO.\n", return_tensors="pt").input_ids
    out = lm.model.generate(ids, max_new_tokens=30, do_sample=False)
    text = lm.tokenizer.decode(out[0, ids.shape[1]:])
    assert sum(c.isalpha() for c in text) > 20
    sample_text = (PROJECT_ROOT / "tests" / "data" / "shakespeare_heldout_sample.txt").read_text()
    from playground.train.gpt import bits_per_char

    bpc = bits_per_char(lm.model, lm.tokenizer, [sample_text], block_size=128)
    assert bpc < 2.71, f"{bpc:.3f} bits/char on a held-out Julius Caesar passage"


@needs("bert-shakespeare")
def test_bert_fill_mask_matches_the_reported_rate(loader):
    from playground.train.bert import EVAL_FILE, fill_mask_accuracy

    lm = loader.load("bert-base-uncased", "masked-lm")
    examples = [json.loads(line) for line in EVAL_FILE.read_text().splitlines()]
    acc = fill_mask_accuracy(lm.model, lm.tokenizer, examples)
    reported = metrics("bert-shakespeare")
    # the shipped weights reproduce the reported figures (the card compares them with the unigram baseline)
    assert acc["top5"] == pytest.approx(reported["heldout_fill_mask"]["top5"], abs=0.01)
    assert acc["top1"] == pytest.approx(reported["heldout_fill_mask"]["top1"], abs=0.01)
    # and it uses context: far better than always guessing the most frequent words
    baseline = reported["unigram_baseline"]
    assert acc["top1"] > 2 * baseline["top1"] and acc["top5"] > 2 * baseline["top5"], (acc, baseline)


@needs("t5-tasks")
def test_t5_solves_held_out_examples(loader):
    from playground.train.t5 import exact_match, heldout_examples

    lm = loader.load("t5-small", "seq2seq")
    held = {task: pairs[:60] for task, pairs in heldout_examples().items()}  # never seen in training
    scores = exact_match(lm.model, lm.tokenizer, held)
    reported = metrics("t5-tasks")["heldout_exact_match"]
    # 60 examples a task: within ~2.5 standard errors of the figure measured on all 200
    assert all(scores[task] >= reported[task] - 0.16 for task in scores), (scores, reported)
    assert sum(scores.values()) / len(scores) > 0.3, scores


def test_unknown_prompt_lists_the_classes():
    labels = {0: "T-shirt/top", 1: "Trouser", 9: "Ankle boot"}
    assert class_index("trouser", labels) == 1
    with pytest.raises(ValueError, match="T-shirt/top, Trouser, Ankle boot"):
        class_index("a cat", labels)


@pytest.mark.parametrize("preset, family, folder", [("google/ddpm-cifar10-32", "diffusion", "ddpm-fashion"),
                                                    ("segmind/tiny-sd", "latent-diffusion", "ldm-fashion")])
def test_diffusion_samples_pass_the_classifier(loader, preset, family, folder):
    if not has_model(folder) or not has_model("fashion-classifier"):
        pytest.skip(f"{folder} or the classifier is not built yet")
    from playground.train.evaluate import classifier, draw

    lm = loader.load(preset, family)
    labels = torch.arange(10).repeat_interleave(4)  # 4 samples of each class
    x = draw(lm, labels, guidance=3.0, seed=0, num_steps=25)  # the evaluation's own sampling, in fewer steps
    assert x.shape == (40, 1, 32, 32) and torch.isfinite(x).all()
    acc = (classifier()(x.clamp(-1, 1)).argmax(1) == labels).float().mean().item()
    reported = metrics(folder)["class_accuracy"]["guidance_3"]["overall"]
    assert not math.isnan(reported)
    # a regression check against the reported figure (40 samples: ~0.08 standard error), and far above chance (0.1)
    assert acc >= max(0.25, reported - 0.2), f"{acc:.2f} of 40 samples labelled as the requested class (reported {reported:.2f})"


def test_readme_shows_the_current_figures():
    from playground.train.evaluate import README_END, README_START, summary_table

    text = (PROJECT_ROOT / "README.md").read_text()
    block = text.split(README_START, 1)[1].split(README_END, 1)[0].strip()
    assert block == summary_table(), "README figures are stale: run python -m playground.train.evaluate"
    if has_model("ddpm-fashion"):  # the sampler paragraph quotes the figure without re-derived ε
        stale = metrics("ddpm-fashion")["class_accuracy_eps_not_rederived"]["guidance_3"]["overall"]
        assert f"score {stale:.1%} at guidance 3" in " ".join(text.split()), "README's sampler paragraph is stale"


@pytest.mark.parametrize("folder, clips", [("ddpm-fashion", True), ("ldm-fashion", False)])
def test_only_the_pixel_scheduler_clips(folder, clips):
    # pixels live in [-1, 1], so x̂_0 is clipped there (denoise re-derives ε from it); latents are not bounded
    if not has_model(folder):
        pytest.skip(f"{folder} is not built yet")
    config = json.loads((MODELS / folder / "scheduler" / "scheduler_config.json").read_text())
    assert config["clip_sample"] is clips


@needs("ldm-fashion")
def test_latent_scaling_factor_is_measured():
    vae = json.loads((MODELS / "ldm-fashion" / "vae" / "config.json").read_text())
    assert vae["scaling_factor"] != 1.0  # set from the latents' std by the training script
