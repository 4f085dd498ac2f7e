"""Lesson links in the page: `?tab=attention&model=gpt2&text=...` opens a tab with its inputs filled and runs it,
and every tab has a "link to this view" that writes the URL of what is on screen.

Each tab's `TabView` names the components a link fills; the limits a link's values are checked against are
those components' own (a slider's range, a dropdown's choices, a text box's length), read here, so a link can
never ask for what the page itself would not offer. Parsing and checking are `playground.lessons.links`.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from playground.errors import UserError
from playground.lessons import links as lesson_links
from playground.lessons.path import lesson_by_id
from playground.ui.common import TabView

log = logging.getLogger(__name__)
INT_LIMIT = 2**31 - 1  # a Number without a maximum (seeds) takes at most this

# after the server filled the inputs: let the page draw them, then click the tab's run buttons in turn
CLICK_JS = """(ids) => {
  if (!ids) return;
  const buttons = ids.split(",").filter(Boolean);
  buttons.forEach((id, i) => setTimeout(() => { const b = document.getElementById(id); if (b) b.click(); }, 400 + 300 * i));
}"""
# the server writes "?tab=..."; the page knows its own address
ABSOLUTE_JS = """(q) => (q && q.startsWith("?")) ? window.location.origin + window.location.pathname + q : q"""


def _values(choices: Any) -> tuple[str, ...]:
    return tuple(str(c[1] if isinstance(c, (tuple, list)) else c) for c in (choices or []))


def param_of(name: str, component: Any) -> lesson_links.Param:
    """The link parameter a component accepts, with the component's own limits."""
    if isinstance(component, gr.CheckboxGroup):
        return lesson_links.Param(name, "choices", choices=_values(component.choices))
    if isinstance(component, (gr.Dropdown, gr.Radio)):
        return lesson_links.Param(name, "choice", choices=_values(component.choices))
    if isinstance(component, gr.Slider):
        whole = float(component.step).is_integer() and float(component.minimum).is_integer()
        return lesson_links.Param(name, "int" if whole else "float", lo=component.minimum, hi=component.maximum)
    if isinstance(component, gr.Number):
        lo = component.minimum if component.minimum is not None else -INT_LIMIT
        hi = component.maximum if component.maximum is not None else INT_LIMIT
        return lesson_links.Param(name, "int" if component.precision == 0 else "float", lo=lo, hi=hi)
    if isinstance(component, gr.Textbox):
        return lesson_links.Param(
            name, "text", max_chars=min(component.max_length or lesson_links.MAX_TEXT_CHARS, lesson_links.MAX_TEXT_CHARS)
        )
    raise TypeError(f"{type(component).__name__} cannot be filled by a link")


def specs_of(views: dict[str, TabView]) -> dict[str, dict[str, lesson_links.Param]]:
    return {tab: {name: param_of(name, c) for name, c in view.inputs.items()} for tab, view in views.items()}


class LinkWiring:
    """The components a link writes to, in one fixed order, and the updates that open one link."""

    def __init__(self, tabs: gr.Tabs, notice: gr.Markdown, target: gr.Textbox, views: dict[str, TabView]):
        self.tabs, self.notice, self.target, self.views = tabs, notice, target, views
        self.specs = specs_of(views)
        self.slots: list[tuple[str, str | None, Any]] = []  # (tab, parameter or None for a pending state, component)
        for tab, view in views.items():
            self.slots += [(tab, name, c) for name, c in view.inputs.items() if name not in view.deferred]
            if view.pending is not None:
                self.slots.append((tab, None, view.pending))

    @property
    def outputs(self) -> list[Any]:
        return [self.tabs, self.notice, self.target, *(c for _, _, c in self.slots)]

    def updates(self, link: lesson_links.Link | None, message: str = "") -> list[Any]:
        """Select the link's tab, fill its inputs, name its run buttons; leave every other component as it is."""
        if link is None:
            return [gr.skip(), message or gr.skip(), "", *(gr.skip() for _ in self.slots)]
        view = self.views[link.tab]
        out = [gr.Tabs(selected=link.tab), message, ",".join(view.run)]
        for tab, name, _ in self.slots:
            if tab != link.tab:
                out.append(gr.skip())
            elif name is None:
                out.append({k: v for k, v in link.values.items() if k in view.deferred} or None)
            else:
                out.append(link.values[name] if name in link.values else gr.skip())
        return out

    def open_query(self, request: gr.Request) -> list[Any]:
        """The page's own address asked for a link (on load): open it, or say why not and open nothing."""
        pairs = list(request.query_params.multi_items()) if request is not None else []
        pairs = [(k, v) for k, v in pairs if not k.startswith("__")]  # Gradio's own parameters (e.g. __theme)
        try:
            link = lesson_links.parse(pairs, self.specs)
        except UserError as exc:
            log.info("refused a link: %s", exc)
            return self.updates(None, f"⚠️ {exc}")
        check = self.views[link.tab].link_check if link is not None else None
        problem = check(link.values) if check is not None else None
        if problem:  # it names what the model lacks (a layer): refused, nothing filled or run
            log.info("refused a link: %s", problem)
            return self.updates(None, f"⚠️ This link cannot be opened: {problem}")
        return self.updates(link, "" if link is None else f"Opened a lesson link: the **{link.tab}** tab, inputs filled.")

    def open_lesson(self, lesson_id: str) -> list[Any]:
        return self.updates(lesson_links.parse(lesson_by_id(lesson_id).query(self.specs), self.specs))

    def wire(self, demo: gr.Blocks) -> None:
        demo.load(self.open_query, None, self.outputs, api_visibility="private", queue=False).then(
            None, [self.target], None, js=CLICK_JS, api_visibility="private")
        for view in self.views.values():
            if view.opens is not None:
                picker, button = view.opens
                button.click(self.open_lesson, [picker], self.outputs, api_visibility="private", queue=False).then(
                    None, [self.target], None, js=CLICK_JS, api_visibility="private")


def view_link(tab: str, names: list[str], specs: dict[str, dict[str, lesson_links.Param]], *values: Any) -> str:
    """The query string of what a tab shows now. Values a link cannot carry (a model that is not one of the listed
    choices, a text over a link's length) are left out, and the line after the link says which."""
    kept, left = {}, []
    for name, value in zip(names, values):
        if value is None or value == "" or value == []:
            continue
        param = specs[tab][name]
        try:
            kept[name] = param.read(param.write(value if param.kind != "int" else int(value)))
        except (UserError, ValueError, TypeError):
            left.append(name)
    query = lesson_links.to_query(lesson_links.Link(tab, kept), specs)
    return query if not left else f"{query}\n(left out, a link cannot carry them: {', '.join(left)})"


def link_row(tab: str, view: TabView, specs: dict[str, dict[str, lesson_links.Param]]) -> None:
    """A "link to this view" button and the box it writes the URL into, at the foot of a tab."""
    names = list(view.inputs)
    with gr.Row(elem_classes=["view-link"]):
        button = gr.Button("Link to this view", size="sm", scale=0, min_width=180, elem_id=f"{tab}-link-btn")
        box = gr.Textbox(label="Link to this view: its inputs, filled in and run when opened", interactive=False, scale=4,
                         buttons=["copy"], elem_id=f"{tab}-link")

    def make(*values: Any) -> str:
        return view_link(tab, names, specs, *values)

    make.__name__ = f"link_{tab.replace('-', '_')}"
    button.click(make, [view.inputs[n] for n in names], box, api_visibility="private", queue=False).then(
        None, [box], [box], js=ABSOLUTE_JS, api_visibility="private")
