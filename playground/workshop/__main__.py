"""The instructor's check, the day before a workshop: does everything the path needs run here, offline?

    python -m playground.workshop check              # every preset resolves, every lesson link opens and runs
    python -m playground.workshop lessons --write    # the README's table of lessons and their links
    HF_HUB_OFFLINE=1 python -m playground.workshop check   # as the room will run it, without the Hub

For each preset: where it loads from (the Hub, a prefetched copy in the Hugging Face cache, or the embedded
teaching model) and that its files are there. For each lesson: its link opens (checked against the page's own
inputs) and runs on the models (the tab's own compute, with the link's values), and its reveal computes. Prints a
checklist and exits 1, saying what failed and how to fix it, if anything did.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from playground.config import Settings


@dataclass(frozen=True)
class Check:
    ok: bool
    name: str  # what was checked
    detail: str  # where it resolved, how long it took, or what failed and how to fix it


def check_presets(loader: Any) -> list[Check]:
    from playground.models.presets import PRESETS
    from playground.models.sources import SourceKind

    out = []
    for p in PRESETS:
        name = f"{p.hub_id} ({p.family.value})"
        try:
            r = loader.resolve(p.hub_id, p.family)
        except Exception as exc:  # noqa: BLE001 - every preset is reported, then the run fails
            out.append(Check(False, name, f"does not resolve: {exc}"))
            continue
        if r.kind is SourceKind.HUB:
            out.append(Check(True, name, "from the Hub (downloads on first use; run `python -m playground.prefetch` to have it offline)"))
            continue
        folder = r.folder
        files = [f for f in ("config.json", "model_index.json", "tokenizer.json", "tokenizer_config.json", "spiece.model", "vocab.txt")
                 if folder is not None and (folder / f).exists()]
        if not files:
            fix = (f"train it: `{p.train_command}`" if p.train_command else "restore assets/ from git") if r.kind is SourceKind.EMBEDDED \
                else f"prefetch it again: `python -m playground.prefetch {p.hub_id}`"
            out.append(Check(False, name, f"{r.kind.value} folder {r.short_location()} has no model files; {fix}"))
        else:
            out.append(Check(True, name, f"{r.kind.value} {r.short_location()}"))
    return out


def _runners() -> dict[str, Callable[[Any, dict], Any]]:
    """Per tab: run what its link's run button runs, with the link's values (the tab's own compute functions)."""
    from playground.ui import attention_tab, bert_tab, diffusion_tab, gpt_tab, inside_tab, models_tab, t5_tab, text_to_image_tab
    from playground.ui import tokenizer_tab, training_tab

    def diffusion(loader, v):
        if "t" in v:
            image = diffusion_tab.FORWARD_EXAMPLES[0] if diffusion_tab.FORWARD_EXAMPLES else None
            if image is not None:
                from PIL import Image

                diffusion_tab.forward_api(Image.open(image), v["t"], v.get("schedule", "linear"), 0)
        if "model" in v:
            for _ in diffusion_tab.denoise_api(loader, v["model"], v.get("prompt", ""), v.get("scheduler", "DDIM"), v.get("steps", 20),
                                               v.get("guidance", 3.0), v.get("seed", 0)):
                pass

    return {
        "start": lambda loader, v: None,
        "tokenizer": lambda loader, v: [tokenizer_tab.tokenize_api(loader, v.get("text", "Hello"), t) for t in v.get("tokenizers", ["gpt2"])],
        "attention": lambda loader, v: attention_tab.attention_api(loader, v.get("model", "gpt2"), v.get("text", "Hello"), v.get("target", "")),
        "inside": lambda loader, v: inside_tab.inside_api(loader, v.get("model", "gpt2"), v.get("text", "Hello"), v.get("layer", 0),
                                                         v.get("head", 0), -1),
        "gpt": lambda loader, v: gpt_tab.generate_api(loader, v.get("prompt", "Hello"), v.get("model", "gpt2"), v.get("max_new", 20), seed=v.get("seed", 0)),
        "bert": lambda loader, v: bert_tab.fill_mask_api(loader, v.get("text", "Hello [MASK]."), v.get("model", "bert-base-uncased"), v.get("top_k", 5)),
        "t5": lambda loader, v: t5_tab.text2text_api(loader, v.get("text", "reverse words: a b"), v.get("model", "t5-small"), v.get("beams", 1),
                                                     v.get("max_new", 32)),
        "diffusion": diffusion,
        "text-to-image": lambda loader, v: text_to_image_tab.cross_attention_api(loader, v.get("model", "segmind/tiny-sd"), v.get("prompt", ""),
                                                                                 v.get("seed", 0), v.get("steps", 50), v.get("guidance", 5.0)),
        "training": lambda loader, v: training_tab.train_toy_api(v.get("dataset", "moons"), v.get("steps", 1000), 0),
        "models": lambda loader, v: models_tab.on_refresh(loader),
    }


def check_lessons(loader: Any, specs: dict) -> list[Check]:
    from playground.lessons import links as lesson_links
    from playground.lessons.path import LESSONS, grade

    runners = _runners()
    out = []
    for lesson in LESSONS:
        start = time.perf_counter()
        try:
            query = lesson.query(specs)
            link = lesson_links.parse(query, specs)
            runners[link.tab](loader, link.values)
            q = lesson.question
            grade(lesson, q.answer or (q.choices[0] if q.choices else "the"), loader)
        except Exception as exc:  # noqa: BLE001 - every lesson is reported, then the run fails
            out.append(Check(False, lesson.title, f"{type(exc).__name__}: {exc}"))
            continue
        out.append(Check(True, lesson.title, f"{query}  ({time.perf_counter() - start:.1f} s)"))
    return out


def run_check(settings: Settings, *, lessons: bool = True, out: Any = None) -> bool:
    """Print the checklist (to `out`, default the current stdout); True when everything passed."""
    out = out or sys.stdout
    from playground.models import ModelLoader
    from playground.ui import build_app

    loader = ModelLoader(settings)
    hub = loader.hub_status()
    print(f"Workshop check, {time.strftime('%Y-%m-%d %H:%M')}: the Hub is {'reachable' if hub.reachable else f'out of reach ({hub.reason})'}",
          file=out)
    sections = [("Presets (every model a lesson or tab names)", check_presets(loader))]
    if lessons:
        specs = build_app(settings, loader).link_specs
        sections.append(("Lesson links (open with their inputs filled, run, reveal)", check_lessons(loader, specs)))
    failed = 0
    for title, checks in sections:
        print(f"\n{title}", file=out)
        for c in checks:
            print(f"  {'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}", file=out)
            failed += not c.ok
    print("\nThe day before:\n"
          "  [ ] every line above is ok, on the laptop (or Space) the room will use\n"
          "  [ ] offline? run this again with HF_HUB_OFFLINE=1: presets then load from the cache or the embedded models\n"
          "  [ ] share the Start tab's lesson links (README: instructor's sheet); each opens a tab filled in and running\n"
          "  [ ] learners' answers stay in their own browsers: nothing to collect or clear on the server", file=out)
    print(f"\n{'All checks passed.' if not failed else f'{failed} check(s) FAILED: see the FAIL lines above for the fix.'}", file=out)
    return not failed


def lessons_table(specs: dict) -> str:
    """The path as a markdown table: lesson, tab, the prediction asked, the lesson link (append it to the app's address)."""
    from playground.lessons.path import LESSONS

    rows = ["| lesson | opens | predict | link |", "|---|---|---|---|"]
    for le in LESSONS:
        rows.append(f"| {le.title} | {le.tab} | {le.question.prompt.replace('|', '/')} | `{le.query(specs)}` |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m playground.workshop", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check offline that every preset resolves and every lesson link opens and runs")
    check.add_argument("--presets-only", action="store_true", help="only resolve the presets (seconds; runs no model)")
    table = sub.add_parser("lessons", help="print the lessons and their links as a markdown table")
    table.add_argument("--write", action="store_true", help="write it into the README's lessons block")
    args = parser.parse_args(argv)
    if args.command == "check":
        return 0 if run_check(Settings.from_env(), lessons=not args.presets_only) else 1
    from playground.ui import build_app

    text = lessons_table(build_app(Settings(offline=True, device="cpu")).link_specs)
    if args.write:
        from playground.readme_blocks import write_block

        write_block("lessons", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
