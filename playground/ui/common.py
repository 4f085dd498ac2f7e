"""Helpers every tab shares: errors that teach, progress, and binding handlers to the loader.

The shape every tab follows (see `diffusion_tab.py`):
- a handler is a module-level function `on_*(loader, request, ...)`: `request` is one dataclass of what the page
  asked, built from the widgets by field name (`form_event`); it returns a result dataclass whose `outputs()`
  orders the widget values (or plain values, for a handler with one or two outputs), so tests build requests and
  read results by name with a tiny loader;
- `build_*_tab(loader)` only lays out widgets and wires events (`form_event`, or `bind(on_*, loader)`);
- limits are imported from the compute module that enforces them, never written again here.
"""

from __future__ import annotations

import functools
import inspect
import io
import logging
import os
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr

from playground.config import ASSETS_DIR, Settings
from playground.core.inputs import require_text
from playground.errors import InputError, UserError
from playground.models import Family, ModelLoader
from playground.models.sources import MAX_SOURCE_LEN

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable)


def user_errors(fn: F) -> F:
    """Show the project's own errors (`UserError`) as a `gr.Error` with their message.

    Anything else (a bug, or a `ValueError` from inside a library) is logged with its traceback on
    the server and reported in one line as an internal error: never a stack trace in the page,
    and never dressed up as the user's mistake. Works for plain functions and generators.
    """

    def convert(exc: Exception) -> gr.Error:
        if isinstance(exc, gr.Error):
            return exc
        # print_exception=False: no traceback in the server log for a user's mistake (and none twice for a bug,
        # which log.exception below has already written once)
        if isinstance(exc, UserError):
            return gr.Error(str(exc), print_exception=False)
        if _is_out_of_memory(exc):  # not a bug and not the user's input: the machine is full right now
            log.warning("out of memory in %s: %s", fn.__name__, exc)
            return gr.Error("The server ran out of memory for this request. Try a shorter input or fewer steps, or try again in "
                            "a moment when other users' requests have finished.", print_exception=False)
        log.exception("unexpected error in %s", fn.__name__)
        return gr.Error(f"Internal error ({type(exc).__name__}: {exc}). This is a bug, not your input; the server log has the details.",
                        print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise convert(exc) from exc
        return gen_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise convert(exc) from exc

    return wrapper  # type: ignore[return-value]


def _is_out_of_memory(exc: BaseException) -> bool:
    import sys

    torch = sys.modules.get("torch")  # not imported yet: it cannot be torch's out-of-memory error (and stays unimported)
    return isinstance(exc, MemoryError) or (torch is not None and isinstance(exc, torch.OutOfMemoryError))


def on_page_load(fn: Callable[..., Any], inputs: Any, outputs: Any, **kwargs: Any) -> Any:
    """Run `fn` when the page loads: the `load` event of the app being built (a tab is a column of it)."""
    from gradio.context import Context

    root = Context.root_block
    if root is None:
        raise RuntimeError("on_page_load must be called inside a gr.Blocks being built")
    return root.load(fn, inputs, outputs, **kwargs)


def launch_alone(build: Callable[[ModelLoader], Any]) -> None:
    """Serve one tab on its own (`python -m playground.ui.gpt_tab`), with the app's offline theme and styles."""
    loader = ModelLoader(Settings.from_env())
    with gr.Blocks() as demo:
        build(loader)
    demo.queue().launch(**launch_options(loader.settings))


def launch_options(settings: Settings | None = None) -> dict[str, Any]:
    """What `launch()` needs so the page works offline: a theme with system fonts (no Google
    Fonts CDN) and the local stylesheet; and how many sessions' page state the server keeps (`settings.max_sessions`)."""
    system = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
    return {
        "theme": gr.themes.Soft(font=system, font_mono=mono),
        "css_paths": [Path(ASSETS_DIR / "style.css")],
        "state_session_capacity": (settings or Settings()).max_sessions,
    }


def bind(handler: Callable[..., Any], *bound: Any) -> Callable[..., Any]:
    """`handler` with its first arguments fixed (usually the loader), for event wiring.

    Unlike `functools.wraps`, the signature gradio inspects is the remaining parameters only; the
    name and docstring are kept for the API page.
    """
    partial = functools.partial(handler, *bound)
    partial.__name__ = handler.__name__  # type: ignore[attr-defined]
    partial.__module__ = handler.__module__
    partial.__doc__ = handler.__doc__
    return partial


@dataclass(frozen=True)
class Form:
    """One event's request, built from the page's widgets by field name, and the handler it goes to.

    Gradio hands an event whose inputs are a set one dict of {component: value}; `event` builds
    `request_type(**{field: value})` from `widgets` and calls `handler(request, *values of extra)`. The workshop check
    builds the same request from a lesson link's values (`request_from`) and calls the same handler."""

    handler: Callable[..., Any]  # the tab's handler with its loader bound (`bind(on_*, loader)`, `gpu_task` where it runs a model)
    request_type: Callable[..., Any]  # the request dataclass, its fields named like `widgets`' keys
    widgets: dict[str, Any]  # request field -> the component that holds it on the page
    extra: tuple[Any, ...] = ()  # components whose values follow the request (gr.State: the session's run, its trained model)

    @property
    def inputs(self) -> set:
        return {*self.widgets.values(), *self.extra}

    def request_from(self, values: dict) -> Any:
        """The request from {component: value} (missing components: their value on the page as built)."""
        return self.request_type(**{name: values.get(c, getattr(c, "value", None)) for name, c in self.widgets.items()})

    def arguments(self, values: dict) -> tuple:
        """The handler's positional arguments: the request, then the values of `extra` (absent ones: None)."""
        return (self.request_from(values), *(values.get(c) for c in self.extra))

    @property
    def event(self) -> Callable[..., Any]:
        handler, arguments = self.handler, self.arguments
        wants_progress = "progress" in inspect.signature(handler).parameters
        streams = inspect.isgeneratorfunction(inspect.unwrap(handler))

        if streams and wants_progress:
            def event(values: dict, progress=gr.Progress()):  # noqa: B008 (Gradio's idiom: a default it replaces per call)
                yield from handler(*arguments(values), progress=progress)
        elif streams:
            def event(values: dict):
                yield from handler(*arguments(values))
        elif wants_progress:
            def event(values: dict, progress=gr.Progress()):  # noqa: B008
                return handler(*arguments(values), progress=progress)
        else:
            def event(values: dict):
                return handler(*arguments(values))

        # the handler's name, module and marks (ZeroGPU's `_zerogpu`) for the API page and the tests; not `__wrapped__`:
        # Gradio reads the event's own signature (one dict, then progress)
        for key, value in {"__name__": "event", "__module__": __name__, **getattr(handler, "__dict__", {})}.items():
            if key != "__wrapped__":
                setattr(event, key, value)
        event.__name__ = getattr(handler, "__name__", event.__name__)
        event.__module__ = getattr(handler, "__module__", None) or __name__
        event.__doc__ = handler.__doc__
        return event

    def run(self, values: dict) -> Any:
        """Call the handler outside Gradio (the workshop check): a stream is run to its end; its last update returned."""
        result = self.handler(*self.arguments(values),
                              **({"progress": None} if "progress" in inspect.signature(self.handler).parameters else {}))
        if inspect.isgenerator(result):
            return next(iter(deque(result, maxlen=1)), None)  # a stream runs to its end; its last update is the result
        return result


def form_event(handler: Callable[..., Any], request_type: Callable[..., Any], widgets: dict[str, Any], *extra: Any) -> Form:
    """The Form of `handler(request, *extra values)`: wire it as `trigger(form.event, form.inputs, outputs)`."""
    return Form(handler, request_type, dict(widgets), tuple(extra))


def api_endpoint(handler: Callable[..., Any], *bound: Any, api_name: str, gpu: bool = True, budget: Any = None,
                 **options: Any) -> Callable[..., Any]:
    """Expose `handler(*bound, ...)` as the named API endpoint `/{api_name}` (a `gr.api`, inside a Blocks; `options`
    go to `gr.api`, e.g. a concurrency limit).

    The endpoint's signature, which gradio reads for the API page and its input schema, is the
    handler's with the bound parameters (the loader) left out; its docstring is the handler's. GPU
    work runs inside `spaces.GPU` on ZeroGPU (`gpu=True`). Returns the function registered.
    """
    import typing

    from playground.models.zerogpu import gpu_task

    signature = inspect.signature(handler)
    params = list(signature.parameters.values())[len(bound):]
    hints = typing.get_type_hints(handler)

    if inspect.isgeneratorfunction(handler):
        def endpoint(*args, **kwargs):
            yield from handler(*bound, *args, **kwargs)
    else:
        def endpoint(*args, **kwargs):
            return handler(*bound, *args, **kwargs)

    endpoint.__name__ = endpoint.__qualname__ = api_name
    endpoint.__doc__ = handler.__doc__
    endpoint.__signature__ = signature.replace(parameters=[p.replace(annotation=hints.get(p.name, p.annotation)) for p in params],
                                               return_annotation=hints.get("return", signature.return_annotation))
    endpoint.__annotations__ = {name: hint for name, hint in hints.items() if name in {p.name for p in params} or name == "return"}
    endpoint.__module__ = handler.__module__
    registered = gpu_task(endpoint, budget) if gpu else endpoint
    gr.api(registered, api_name=api_name, **options)
    return registered


def load_transformer(loader: ModelLoader, model: Any, accept: tuple[Family, ...], need: str, *, attention: bool = False, progress=None):
    """(name, LoadedModel) of `model` if its family (a preset's, or its config's) is one of `accept`;
    otherwise an error that says what the tab needs (`need`, e.g. "a decoder-only (causal-lm) model such as gpt2")."""
    name = require_text(model, "model", max_chars=MAX_SOURCE_LEN).strip()
    if not name:
        raise InputError(f"Choose a model: {need}, a Hub id or an allowed folder.")
    family = loader.transformer_family(name)
    if family not in accept:
        raise InputError(f"{name!r} is a {family.value} model; this needs {need}.")
    return name, loader.load(name, family, attention=attention, progress=progress_fn(progress) if progress is not None else None)


def load_causal(loader: ModelLoader, model: Any, progress=None, trained: Any = None):
    """(name, model) of a decoder-only model (a preset, Hub id or folder), or of the session's tiny GPT when `model` is
    SESSION_GPT (`trained`: its handle); a clear error for any other kind."""
    if model == SESSION_GPT:
        return session_gpt(trained)
    return load_transformer(loader, model, (Family.CAUSAL_LM,), "a decoder-only (causal-lm) model such as gpt2", progress=progress)


def local_layers_and_heads(loader: ModelLoader, model: Any) -> tuple[int, int] | None:
    """(layers, heads) of a preset or local model folder from its config.json alone (no weights, no network); None when
    that cannot be known here (a Hub model not in the cache, an unknown name: the run itself says what is wrong)."""
    import json

    from playground.models import find_preset

    name = model.strip() if isinstance(model, str) else ""
    family = next((f for f in (Family.CAUSAL_LM, Family.MASKED_LM, Family.SEQ2SEQ) if find_preset(f, name)), Family.ENCODER)
    try:
        folder = loader.resolve(name, family).folder
        config = json.loads((folder / "config.json").read_text()) if folder is not None else None
    except (UserError, OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    layers = config.get("n_layer") or config.get("num_hidden_layers") or config.get("num_layers")
    heads = config.get("n_head") or config.get("num_attention_heads") or config.get("num_heads")
    return (int(layers), int(heads)) if layers and heads else None


def layer_head_link_check(loader: ModelLoader, default_model: str, first: int) -> Callable[[dict], str | None]:
    """A TabView.link_check for a tab whose link names a layer and a head (counted from `first`): a link that names one
    the model lacks is refused before anything runs, instead of opening on another layer."""
    def check(values: dict) -> str | None:
        model = values.get("model", default_model)
        shape = local_layers_and_heads(loader, model)
        if shape is None:
            return None
        for name, count in zip(("layer", "head"), shape):
            if name in values and not first <= values[name] <= count - 1 + first:
                return (f"it asks for {name} {values[name]:g}, and {model} has {count} {name}s ({first} to {count - 1 + first}). "
                        f"Ask for one of those.")
        return None

    return check


def load_diffusion(loader: ModelLoader, model: Any, progress=None):
    """(name, LoadedModel) of a diffusion pipeline: a diffusion or latent-diffusion preset, a Hub id or an allowed folder."""
    from playground.models import find_preset

    name = require_text(model, "model", max_chars=MAX_SOURCE_LEN).strip()
    if not name:
        raise InputError("Choose a model: a preset (google/ddpm-cifar10-32, segmind/tiny-sd), a Hub id or an allowed folder of a "
                         "diffusers pipeline.")
    family = next((f for f in (Family.DIFFUSION, Family.LATENT_DIFFUSION) if find_preset(f, name)), Family.DIFFUSION)
    return name, loader.load(name, family, progress=progress_fn(progress) if progress is not None else None)


def caption_row(prefix: str, max_chars: int, value: str = "a red circle left of a blue square") -> tuple[Any, Any]:
    """A caption box and a seed box in a row (the shapes world's text-to-image sections): elem_ids `{prefix}-prompt`, `{prefix}-seed`."""
    with gr.Row():
        prompt = gr.Textbox(label="Caption", value=value, scale=3, max_length=max_chars, elem_id=f"{prefix}-prompt")
        seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id=f"{prefix}-seed")
    return prompt, seed


def examples(rows: list[list[Any]], inputs: list[gr.components.Component], label: str, *, text: int = -1,
             labels: list[str] | None = None) -> gr.Examples:
    """gr.Examples shown as short labelled buttons (model: the text's start) instead of a table, which on a phone
    gave its width to the long model header and left the texts off screen. `text`: the column the labels quote;
    `labels`: the buttons' own labels, where the first column is not a model name."""
    def name(row: list[Any]) -> str:
        words = " ".join(str(row[text]).split())
        quote = words if len(words) <= 60 else words[:59].rstrip() + "…"
        return quote if len(row) == 1 else f"{row[0]}: {quote}"

    return gr.Examples(rows, inputs=inputs, label=label, example_labels=labels or [name(r) for r in rows])


def png_file(image: Any) -> Any:
    """A PIL image as a PNG file in Gradio's cache, written once and atomically; anything else unchanged.

    Gradio saves a returned PIL image by rewriting `<cache>/<hash of its bytes>/image.webp` every time, so when
    the same picture is sent again (scrubbing back to a step, a rerun with the same seed, another session) a
    browser still fetching the first copy reads a file being truncated (ERR_CONTENT_LENGTH_MISMATCH: a broken
    image). Here an existing file is never rewritten and a new one appears whole (written, then renamed), at
    the very path Gradio's own file handling (`save_file_to_cache`) would give it, so Gradio uses it as it is.
    """
    from PIL import Image

    if isinstance(image, (list, tuple)):
        return type(image)(png_file(v) for v in image)
    if not isinstance(image, Image.Image):
        return image
    from gradio.processing_utils import hash_bytes
    from gradio.utils import get_upload_folder

    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # lossless either way; the fastest level (a frame is streamed every 0.25 s)
    data = buffer.getvalue()
    folder = Path(get_upload_folder()) / hash_bytes(data)
    path = folder / "image.png"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        fd, staging = tempfile.mkstemp(dir=folder, prefix=".image.png.")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(staging, path)
    return str(path)


MAX_UPLOAD_PIXELS = 4096 * 4096  # an uploaded picture's width x height, read from its header before it is decoded


def checked_image(**options: Any) -> gr.Image:
    """gr.Image whose uploads are checked before Pillow decodes them: a file that is no picture (a script, HTML, an
    empty file named .png) or a picture of more than MAX_UPLOAD_PIXELS pixels (a 107 KB paletted PNG can decode to
    365 MB) is refused with a message that says what to change, instead of Gradio's generic upstream error. (Its
    `preprocess` is wrapped on the instance, once, as the page is built: a subclass of a Gradio component would make
    Gradio write a .pyi stub beside this file.)"""
    image = gr.Image(**options)
    decode = image.preprocess

    def preprocess(payload: Any) -> Any:
        if payload is not None and getattr(payload, "path", None):
            from PIL import Image, UnidentifiedImageError

            try:
                with Image.open(payload.path) as picture:  # reads the header only
                    width, height = picture.size
            except (UnidentifiedImageError, OSError, ValueError):
                raise gr.Error("That file is not a picture this page can read: upload a PNG, JPEG, WebP or GIF image.",
                               print_exception=False) from None
            if width * height > MAX_UPLOAD_PIXELS:
                raise gr.Error(f"That picture is {width:,} x {height:,} pixels; the limit is {MAX_UPLOAD_PIXELS:,} pixels (4,096 x "
                               "4,096). Shrink it first: it is drawn at 256 pixels a side at most.", print_exception=False)
        return decode(payload)

    image.preprocess = preprocess
    return image


def figure(caption: str, **image: Any) -> gr.Image:
    """A gr.Image (uploads checked: `checked_image`) with its caption above it as text, not as the floating label Gradio lays
    over the picture's top-left corner (it hid the model view's column headers and cut long labels: "Final image (full
    decod")."""
    with gr.Column(min_width=image.pop("min_width", 160), scale=image.pop("scale", 1)):
        gr.Markdown(caption, elem_classes=["picture-caption"])
        return checked_image(label=caption, show_label=False, **image)


@dataclass
class TabView:
    """What a `build_*_tab` hands the shell for lesson links: which components a link fills and how it runs them."""

    inputs: dict[str, Any] = field(default_factory=dict)  # link parameter -> the component it fills (and whose limits check it)
    run: tuple[str, ...] = ()  # elem_ids of the buttons a link clicks once the inputs are filled, in order
    pending: Any = None  # a gr.State for values the run itself applies (it would reset those controls otherwise)
    deferred: tuple[str, ...] = ()  # the link parameters that go to `pending` instead of to their component
    opens: tuple[Any, Any] | None = None  # (a lesson picker, its "try it" button): the button opens the lesson's link
    forms: dict[str, Form] = field(default_factory=dict)  # run button elem_id -> the Form it submits (the workshop check runs them)
    link_check: Any = None  # (a link's values) -> why the model cannot show what it names (a layer it lacks), or None


SESSION_GPT = "my tiny GPT (trained in this session)"  # the model choice that means the session's own trained model


@dataclass
class _SessionSource:
    requested: str
    kind: Any = None  # not a loader source: never embedded, never the Hub

    def describe(self) -> str:
        return "your tiny GPT, trained in the Training tab in this session (only you can see it)"


@dataclass
class SessionModel:
    """A model a user trained in their own session, with what the tabs read of a loaded model."""

    source: _SessionSource
    model: Any
    tokenizer: Any
    training: Any = None  # a TrainingRecord: steps x batch x window characters

    def depth_note(self, n_tokens: int) -> str | None:
        window = self.model.config.n_positions
        if n_tokens <= window:
            return None
        return f"Your tiny GPT reads {window} characters at a time; this text has {n_tokens}, so it sees only the last {window}."


def session_gpt(trained: Any) -> tuple[str, SessionModel]:
    """(name, model) of the tiny GPT this session trained (its handle from the Training tab), or a clear error."""
    from playground.models.loader import TrainingRecord
    from playground.models.results import resolve

    run = resolve(trained) if trained is not None else None
    if run is None:
        raise InputError("Train a tiny GPT in the Training tab first: it stays in your session, for you only.")
    cfg = run.model.config
    steps = run.tokens_seen // max(1, run.batch_size * cfg.n_positions)
    record = TrainingRecord(run.tokens_seen, steps * run.batch_size, f"{steps:,} steps x {run.batch_size} x {cfg.n_positions} characters")
    return SESSION_GPT, SessionModel(_SessionSource(SESSION_GPT), run.model, run.tokenizer, record)


def clear_first(trigger: Callable[..., Any], outputs: list[gr.components.Component]) -> Any:
    """Blank these status lines the moment `trigger` fires (e.g. `run.click`), so that when the work chained
    after it with `.then(...)` fails, the page does not keep the last run's "Done" beside the error."""
    def blank():
        return [""] * len(outputs) if len(outputs) > 1 else ""

    return trigger(blank, None, outputs, queue=False, api_visibility="private", show_progress="hidden")


def lens_table(top: int) -> dict[str, Any]:
    """gr.Dataframe settings for a logit-lens table (a layer column and `top` guesses) that wraps to fit half a page."""
    return {"wrap": True, "column_widths": ["12%"] + [f"{88 / top:.1f}%"] * top}


def progress_fn(progress: gr.Progress) -> Callable[[float, str], None]:
    """Adapt a `gr.Progress` to the loader's `(fraction, description)` callback."""

    def report(fraction: float, desc: str) -> None:
        progress(fraction, desc=desc)

    return report
