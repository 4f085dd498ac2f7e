"""Load: 32 concurrent clients over mixed endpoints on 2 CPU cores (a workshop room on one laptop).

Every request is answered, or told the server is busy and to try again; each model is loaded once
(single-flight, however many clients ask at once); memory stays inside the budget, the sessions' kept
results counted and the oldest released first. p50/p95 latency and failures are reported."""

from __future__ import annotations

import json
import statistics
import threading
import time
from dataclasses import replace

import httpx
import pytest

from playground.config import Settings
from playground.models import ModelLoader
from playground.models.results import resolve
from playground.ui import attention_tab, build_app
from tests.conftest import launched, report_figure

pytestmark = pytest.mark.slow

CLIENTS = 32
REQUESTS_PER_CLIENT = 4
SESSIONS = 8  # of the clients, browser sessions that keep an attention run in the server's memory
MIX = [
    ("tokenize", ["The cat sat on the mat.", "gpt2"]),
    ("tokenize", ["Tokenizers split words into pieces.", "bert-base-uncased"]),
    ("attention", ["bert-base-uncased", "The animal didn't cross the street because it was tired.", ""]),
    ("generate", ["ROMEO.\n", "gpt2", 8, 1.0, 0, 1.0, 0, False]),
    ("fill_mask", ["wherefore art [MASK] Romeo?", "bert-base-uncased", 3]),
    ("text2text", ["add: 12 + 30", "t5-small", 2, 4]),
    ("embed", ["The king is dead.\nThe queen is dead.", "bert-base-uncased"]),
    ("denoise", ["google/ddpm-cifar10-32", "Bag", "DDIM", 4, 3.0, 0, ""]),
]
BUSY = ("queue is full", "busy", "try again")


def _call(http: httpx.Client, url: str, name: str, args: list) -> tuple[str, str]:
    r = http.post(f"{url}gradio_api/call/{name}", content=json.dumps({"data": args}), headers={"Content-Type": "application/json"})
    if r.status_code != 200:
        return ("busy" if any(b in r.text.lower() for b in BUSY) else "failed"), r.text[:200]
    stream = http.get(f"{url}gradio_api/call/{name}/{r.json()['event_id']}").text
    if "event: complete" in stream:
        return "ok", ""
    return ("busy" if any(b in stream.lower() for b in BUSY) else "failed"), stream[-300:]


@pytest.fixture(scope="module")
def served(tiny_root):
    """The app with a budget sized for its models plus a few sessions' attention runs (so results get evicted)."""
    settings = Settings(offline=True, device="cpu")
    probe = ModelLoader(settings)
    for fam, name in [("tokenizer", "gpt2"), ("tokenizer", "bert-base-uncased"), ("causal-lm", "gpt2"), ("masked-lm", "bert-base-uncased"),
                      ("seq2seq", "t5-small"), ("diffusion", "google/ddpm-cifar10-32")]:
        probe.load(name, fam)
    probe.load("bert-base-uncased", "masked-lm", attention=True)
    one = resolve(attention_tab.on_run(probe, attention_tab.AttentionRequest("bert-base-uncased", MIX[2][1][1], "", 128), progress=None)[0])
    budget = probe.memory_used() + 4 * one.nbytes  # the models, and room for about 3 sessions' runs
    del probe
    loader = ModelLoader(replace(settings, memory_gb=budget / 2**30))
    with launched(build_app(loader.settings, loader)) as url:
        yield url, loader


def test_32_clients_over_mixed_endpoints(served):
    url, loader = served
    latencies: list[float] = []
    outcomes = {"ok": 0, "busy": 0, "failed": 0}
    failures: list[str] = []
    peak = [0]
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(i: int) -> None:
        http = httpx.Client(timeout=300)
        start.wait()
        handle = None
        for k in range(REQUESTS_PER_CLIENT):
            t0 = time.perf_counter()
            if i < SESSIONS:  # a browser session: its attention run stays on the server, in the budget
                try:
                    question = f"Session {i} asks question {k}: where does it attend?"
                    asked = attention_tab.AttentionRequest("bert-base-uncased", question, "", 128)
                    handle = attention_tab.on_run(loader, asked, handle, progress=None)[0]
                    outcome, detail = "ok", ""
                except Exception as exc:  # noqa: BLE001 - reported below
                    outcome, detail = "failed", repr(exc)
            else:
                name, args = MIX[(i + k) % len(MIX)]
                outcome, detail = _call(http, url, name, args)
            with lock:
                latencies.append(time.perf_counter() - t0)
                outcomes[outcome] += 1
                if outcome == "failed":
                    failures.append(detail)
                peak[0] = max(peak[0], loader.memory_used())

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=20)
    report_figure(
        "load: 32 clients, mixed endpoints",
        f"{len(latencies)} requests in {wall:.1f} s: {outcomes['ok']} answered, "
        f"{outcomes['busy']} told busy, {outcomes['failed']} failed; p50 {statistics.median(latencies):.2f} s, p95 {q[18]:.2f} s; "
        f"{loader.load_count} model loads for {len(loader.loaded())} models; peak memory {peak[0] / 2**20:.1f} of "
        f"{loader.settings.memory_budget_bytes / 2**20:.1f} MiB, {loader.results.evicted} session results released",
    )
    assert not failures, failures[:5]
    assert outcomes["ok"] + outcomes["busy"] == CLIENTS * REQUESTS_PER_CLIENT
    assert loader.load_count == len(loader.loaded())  # each model loaded once, however many clients asked at once
    assert peak[0] <= loader.settings.memory_budget_bytes
    assert loader.results.evicted > 0  # the budget was tight enough to release the oldest sessions' runs
    assert len(loader.results) <= SESSIONS
