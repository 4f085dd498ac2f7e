"""The instructor's check, the day before a workshop: does everything the path needs run here, offline?

    python -m playground.workshop check              # every preset resolves, every lesson link opens and runs
    python -m playground.workshop lessons --write    # the README's table of lessons and their links
    HF_HUB_OFFLINE=1 python -m playground.workshop check   # as the room will run it, without the Hub

For each preset: where it loads from (the Hub, a prefetched copy in the Hugging Face cache, or the embedded
teaching model) and that its files are there. For each lesson: its link opens (checked against the page's own
inputs) and runs on the models (the Forms of the buttons the link clicks: the tab's own request objects and handlers,
with the link's values), and its reveal computes. Prints a
checklist and exits 1, saying what failed and how to fix it, if anything did.
"""

from __future__ import annotations

import argparse
import sys
import time
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


def _page_value(component: Any) -> Any:
    """A component's value as its handler receives it: an image's file opened as a picture, anything else as it is."""
    value = getattr(component, "value", None)
    if isinstance(value, dict) and value.get("path"):
        from PIL import Image

        return Image.open(value["path"])
    return value


def run_link(views: dict, link: Any) -> None:
    """Run what a lesson link's run buttons run: each button's Form, its request built from the page's widgets as built,
    the link's values in their place (the same request objects and handlers the page uses)."""
    view = views[link.tab]
    given = {view.inputs[name]: value for name, value in link.values.items() if name in view.inputs and name not in view.deferred}
    for button in view.run:
        form = view.forms[button]
        form.run({c: given[c] if c in given else _page_value(c) for c in form.widgets.values()})  # the session's state: none yet


def check_lessons(loader: Any, app: Any) -> list[Check]:
    from playground.lessons import links as lesson_links
    from playground.lessons.path import LESSONS, grade

    out = []
    for lesson in LESSONS:
        start = time.perf_counter()
        try:
            query = lesson.query(app.link_specs)
            link = lesson_links.parse(query, app.link_specs)
            run_link(app.tab_views, link)
            q = lesson.question
            grade(lesson, q.answer or (q.choices[0] if q.choices else q.sample_guess), loader)
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
    print(
        f"Workshop check, {time.strftime('%Y-%m-%d %H:%M')}: the Hub is {'reachable' if hub.reachable else f'out of reach ({hub.reason})'}",
        file=out,
    )
    sections = [("Presets (every model a lesson or tab names)", check_presets(loader))]
    if lessons:
        app = build_app(settings, loader)
        sections.append(("Lesson links (open with their inputs filled, run, reveal)", check_lessons(loader, app)))
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
