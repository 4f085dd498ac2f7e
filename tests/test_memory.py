"""Memory stays inside its budget however many sessions come (issue 34, item 2).

A few hundred browser sessions each run an attention view at the model's full context, as the page does, and keep
its result. The loader's budget bounds the kept results (the oldest are released); the server's copy of each
session's page is bounded by `Settings.max_sessions`; big arrays freed by a request go back to the system
(`models.memory`). The process's resident memory must level off: what the second half of the sessions adds is
measured and printed."""

from __future__ import annotations

import gc
from dataclasses import replace

import httpx
import pytest

from playground.config import Settings
from playground.models import ModelLoader
from playground.models.results import resolve
from playground.ui import attention_tab, build_app
from tests.conftest import launched, report_figure

pytestmark = pytest.mark.slow

SESSIONS = 240
MAX_SESSIONS = 40  # page states the server keeps, far below the number of sessions
KEPT_RESULTS = 20  # attention runs the budget holds beside the models
TEXT = " ".join(["word"] * 600)  # past the model's 512 positions: the run is cut to the full context
MODEL = "bert-base-uncased"


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


@pytest.fixture(scope="module")
def small_budget_app():
    settings = Settings(offline=True, device="cpu")
    probe = ModelLoader(settings)
    probe.load(MODEL, "masked-lm", attention=True)
    one = resolve(attention_tab.on_run(probe, attention_tab.AttentionRequest(MODEL, TEXT, "", 512), progress=None)[0])
    budget = probe.memory_used() + KEPT_RESULTS * one.nbytes
    del probe, one
    loader = ModelLoader(replace(settings, memory_gb=budget / 2**30, max_sessions=MAX_SESSIONS))
    demo = build_app(loader.settings, loader)
    with launched(demo, loader.settings) as url:
        yield url, demo, loader


def _run_attention_in_a_new_session(http: httpx.Client, url: str, demo, session: str) -> None:
    """What a browser session does: join the attention tab's run event with its own session id, read it to the end."""
    form = demo.tab_views["attention"].forms["att-run"]
    fn_index = next(i for i, fn in demo.fns.items() if {b._id for b in fn.inputs} == {b._id for b in form.inputs} and fn.queue)
    values = {form.widgets["model"]._id: MODEL, form.widgets["text"]._id: TEXT, form.widgets["target_text"]._id: "",
              form.widgets["max_tokens"]._id: 512}
    data = [values.get(block._id, getattr(block, "value", None)) for block in demo.fns[fn_index].inputs]
    body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None}
    joined = http.post(f"{url}gradio_api/queue/join", json=body)
    assert joined.status_code == 200, joined.text
    with http.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if "process_completed" in line:
                assert '"success":true' in line.replace(" ", ""), line[:300]
                return
    raise AssertionError("the stream ended before the run completed")


def test_resident_memory_levels_off_over_hundreds_of_sessions(small_budget_app):
    url, demo, loader = small_budget_app
    http = httpx.Client(timeout=120)
    marks = {}
    for i in range(1, SESSIONS + 1):
        _run_attention_in_a_new_session(http, url, demo, f"visitor-{i}")
        if i in (1, SESSIONS // 4, SESSIONS // 2, 3 * SESSIONS // 4, SESSIONS):
            gc.collect()
            marks[i] = rss_mib()
    budget = loader.settings.memory_budget_bytes / 2**20
    second_half = marks[SESSIONS] - marks[SESSIONS // 2]
    report_figure(
        f"memory: {SESSIONS} sessions of {MODEL} attention at 512 tokens",
        "resident " + ", ".join(f"{mib:.0f} MiB after {n}" for n, mib in marks.items())
        + f" sessions; the second half added {second_half:+.0f} MiB ({second_half / (SESSIONS // 2) * 1024:+.0f} KiB a session); "
        f"loader {loader.memory_used() / 2**20:.0f} of {budget:.0f} MiB budget, {loader.results.evicted} results released, "
        f"{len(demo.state_holder.session_data)} page states kept (max {MAX_SESSIONS})",
    )
    assert loader.memory_used() <= loader.settings.memory_budget_bytes
    assert loader.results.evicted > 0  # the budget was reached: results were released
    assert len(demo.state_holder.session_data) <= MAX_SESSIONS
    assert second_half < 0.25 * (SESSIONS // 2), marks  # under 256 KiB a session on average: it levels off
