"""Limits per visitor on the shared queue (issue 34, item 1): one visitor flooding the queue with training jobs
cannot make another visitor's quick request wait or fail, and the flood is refused with a message that says why."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from types import SimpleNamespace

import httpx
import pytest

from playground.config import QueueLimits, Settings
from playground.ui import build_app
from playground.ui.visitor_limits import Job, client_address, line_of, refusal
from tests.conftest import launched, report_figure

# ---- the rules, on their own --------------------------------------------------------------------------------


def test_a_session_past_its_limit_is_refused_with_what_to_do():
    limits = QueueLimits(per_session=2)
    live = [Job("a", "1.1.1.1", "heavy", False), Job("a", "1.1.1.1", "training", True)]
    reason = refusal(limits, live, Job("a", "1.1.1.1", "heavy", True))
    assert reason is not None and "2 jobs waiting or running" in reason and "try again" in reason
    assert refusal(limits, live, Job("b", "1.1.1.1", "heavy", True)) is None  # another session from the same address


def test_light_jobs_are_never_counted_against_heavy_ones_nor_refused_for_them():
    limits = QueueLimits(per_session=1, per_address=1, heavy_waiting=1, training_waiting=1)
    live = [Job("a", "1.1.1.1", "heavy", True), Job("b", "1.1.1.1", "training", True), Job("a", "1.1.1.1", "light", True)]
    assert refusal(limits, live, Job("a", "1.1.1.1", "light", True)) is None
    assert refusal(limits, live * 1000, Job("c", "2.2.2.2", "light", True)) is not None  # the backstop of 256
    assert refusal(QueueLimits(per_session=2), [Job("a", "x", "light", True)] * 5, Job("a", "x", "heavy", True)) is None


def test_an_address_and_the_training_line_and_the_heavy_line_are_each_bounded():
    limits = QueueLimits(per_session=10, per_address=3, heavy_waiting=2, training_waiting=1)
    three = [Job(f"s{i}", "9.9.9.9", "heavy", False) for i in range(3)]
    assert "Your address already has 3 jobs" in refusal(limits, three, Job("new", "9.9.9.9", "heavy", True))
    waiting_run = [Job("s", "1.1.1.1", "training", True)]
    assert "training line is full" in refusal(limits, waiting_run, Job("t", "2.2.2.2", "training", True))
    assert refusal(limits, waiting_run, Job("t", "2.2.2.2", "heavy", True)) is None  # training has its own line
    waiting = [Job(f"s{i}", f"1.1.1.{i}", "heavy", True) for i in range(2)]
    assert "2 jobs are waiting" in refusal(limits, waiting, Job("t", "2.2.2.2", "heavy", True))
    assert refusal(limits, waiting, Job("t", "2.2.2.2", "training", True)) is None


def test_the_client_address_is_the_proxys_forwarded_one_only_behind_a_private_peer():
    def request(peer: str, forwarded: str = "") -> SimpleNamespace:
        return SimpleNamespace(client=SimpleNamespace(host=peer), headers={"x-forwarded-for": forwarded} if forwarded else {})

    assert client_address(request("10.16.3.80", "203.0.113.7, 10.0.0.1")) == "203.0.113.7"  # a Space's proxy
    assert client_address(request("8.8.8.8", "1.2.3.4")) == "8.8.8.8"  # a public peer cannot name another
    assert client_address(request("127.0.0.1")) == "127.0.0.1"
    assert line_of("light") == "light" and line_of("training") == "training" and line_of("42") == "heavy"


# ---- over HTTP: a flood from one session, a quick request from another ----------------------------------------


@pytest.fixture(scope="module")
def limited_app():
    settings = replace(Settings(offline=True, device="cpu"), queue_limits=QueueLimits(per_session=4, per_address=12))
    demo = build_app(settings)
    with launched(demo, settings) as url:
        yield url, demo


def _fn_index(demo, api_name: str) -> int:
    return next(i for i, fn in demo.fns.items() if fn.api_name == api_name)


def _call_light(http: httpx.Client, url: str, name: str, args: list) -> tuple[float, str]:
    """(seconds to the answer, the stream's last event) of one named-endpoint call, as any HTTP client makes it."""
    t0 = time.perf_counter()
    r = http.post(f"{url}gradio_api/call/{name}", content=json.dumps({"data": args}), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    stream = http.get(f"{url}gradio_api/call/{name}/{r.json()['event_id']}").text
    events = [line for line in stream.splitlines() if line.startswith("event: ")]
    return time.perf_counter() - t0, events[-1] if events else ""


@pytest.mark.slow
def test_one_session_flooding_training_cannot_lock_out_another_sessions_quick_requests(limited_app):
    url, demo = limited_app
    http = httpx.Client(timeout=120)
    _call_light(http, url, "tokenize", ["warm up", "gpt2"])  # the tokenizer is loaded before the clock runs
    train = _fn_index(demo, "train_toy")
    answers = []
    t0 = time.perf_counter()
    for i in range(80):  # one session posts 80 training jobs as fast as it can
        body = {"data": ["spiral", 3000, i], "fn_index": train, "session_hash": "flood", "event_data": None, "trigger_id": None}
        answers.append(http.post(f"{url}gradio_api/queue/join", json=body))
    posted = time.perf_counter() - t0
    accepted = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(accepted) + len(refused) == 80
    assert 1 <= len(accepted) <= 4  # the session's limit (the training line may refuse sooner)
    detail = refused[-1].json()["detail"]
    assert "try again" in detail.lower() and ("You already have" in detail or "training line is full" in detail), detail

    waits = {}
    for name, args in [("tokenize", ["The cat sat on the mat.", "gpt2"]), ("models", []), ("explain_word", ["gpt2", "unbelievably"])]:
        waits[name], last = _call_light(http, url, name, args)
        assert last == "event: complete", (name, last)
    live = len(demo._queue.event_ids_to_events)
    report_figure("queue flood: one session posts 80 training jobs",
                  f"posted in {posted:.2f} s: {len(accepted)} queued, {len(refused)} refused with a message; meanwhile another session's "
                  + ", ".join(f"/{name} answered in {s:.2f} s" for name, s in waits.items()) + f" ({live} jobs still live)")
    assert live >= 1  # the flood was still running while the quick requests were answered
    assert max(waits.values()) < 5.0, waits
