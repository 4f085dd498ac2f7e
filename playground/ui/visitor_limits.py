"""Limits per visitor on the shared queue: no visitor can lock the rest out of a public Space.

Gradio's queue has one size limit for everything: one session that posts 80 training jobs fills it, and every
other visitor's tokenizer request is refused with "Queue is full" until they drain. Here every job that asks to
join the queue is checked first against what is already waiting or running (Gradio's own record of live events,
so nothing is counted twice or forgotten when a job ends or is cancelled):

- **light** jobs (tokenizing, the Models tab; events with `concurrency_id="light"`, see `LIGHT`) have their own,
  large line and never count against a visitor's heavy jobs: they are never refused because of another's work;
- **heavy** jobs (everything else that is queued): at most `per_session` waiting or running per browser session,
  `per_address` per client address (API clients start a new session per call), and `heavy_waiting` waiting in all;
- **training** (`concurrency_id="training"`, one at a time on the machine) has its own line of `training_waiting`;
- at most `heavy_running` heavy jobs run at once, and light lines are served first, so a quick request never waits
  for a worker behind heavy ones (Gradio's `get_events`, rewritten here with that order).

A refused job gets HTTP 429 (Too Many Requests) with a message that says which limit it met and what to do; nothing is queued.
The client address is the peer's, or, behind a proxy (a peer on a private address, as on a Space), the first
X-Forwarded-For entry. A client that writes its own header can pose as many addresses; the session and the
overall lines still hold.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from playground.config import QueueLimits

LIGHT_ID = "light"  # the concurrency id of light events (tokenize, explain a word, the Models tab)
TRAINING_ID = "training"  # the concurrency id of the training events (one run at a time on the machine)
LIGHT = {"concurrency_id": LIGHT_ID, "concurrency_limit": 4}  # event options of a light event
TRAINING = {"concurrency_id": TRAINING_ID, "concurrency_limit": 1}  # event options of a training event


@dataclass(frozen=True)
class Job:
    """One live event as the limits see it."""

    session: str  # its browser session (Gradio's session hash; an API call without one is its own)
    address: str  # its client's address
    line: str  # "light", "training" or "heavy"
    waiting: bool  # True: still in the line; False: running


def line_of(concurrency_id: str | None) -> str:
    """The line an event with this concurrency id waits in.

    >>> line_of("light"), line_of("training"), line_of("17")
    ('light', 'training', 'heavy')
    """
    return concurrency_id if concurrency_id in (LIGHT_ID, TRAINING_ID) else "heavy"


def client_address(request: Any) -> str:
    """The visitor's address: the peer's, or behind a proxy on a private address, the first X-Forwarded-For entry."""
    peer = getattr(getattr(request, "client", None), "host", None) or "unknown"
    forwarded = (getattr(request, "headers", None) or {}).get("x-forwarded-for", "")
    first = forwarded.split(",")[0].strip()
    if first and _is_private(peer):
        return first
    return peer


def _is_private(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host in ("localhost", "testclient", "unknown")
    return address.is_private or address.is_loopback


def refusal(limits: QueueLimits, live: Iterable[Job], new: Job) -> str | None:
    """Why `new` may not join the queue given the `live` jobs, or None when it may. The message says what to do.

    >>> limits = QueueLimits(per_session=1)
    >>> busy = [Job("a", "1.2.3.4", "heavy", True)]
    >>> refusal(limits, busy, Job("b", "5.6.7.8", "heavy", True)) is None  # another visitor
    True
    >>> refusal(limits, busy, Job("a", "1.2.3.4", "light", True)) is None  # light work never waits on heavy
    True
    >>> refusal(limits, busy, Job("a", "1.2.3.4", "heavy", True))[:40]
    'You already have 1 job waiting or runnin'
    """
    live = list(live)
    if new.line == LIGHT_ID:
        waiting = sum(job.waiting and job.line == LIGHT_ID for job in live)
        if waiting >= limits.light_waiting:
            return f"The server is very busy ({waiting} quick requests waiting). Try again in a few seconds."
        return None
    mine = [job for job in live if job.line != LIGHT_ID and job.session == new.session]
    if len(mine) >= limits.per_session:
        return (f"You already have {len(mine)} job{'s' if len(mine) != 1 else ''} waiting or running, the most one visitor may "
                f"have on this shared machine ({limits.per_session}). Wait for one to finish (or stop it), then try again.")
    from_address = [job for job in live if job.line != LIGHT_ID and job.address == new.address]
    if len(from_address) >= limits.per_address:
        return (f"Your address already has {len(from_address)} jobs waiting or running, the most one address may have on this "
                f"shared machine ({limits.per_address}). Wait for some to finish, then try again.")
    if new.line == TRAINING_ID:
        waiting = sum(job.waiting and job.line == TRAINING_ID for job in live)
        if waiting >= limits.training_waiting:
            return (f"The training line is full: {waiting} runs are waiting for this machine's one trainer. Try again in a "
                    f"minute (or run the app on your own machine: see the README).")
        return None
    waiting = sum(job.waiting and job.line == "heavy" for job in live)
    if waiting >= limits.heavy_waiting:
        return f"The server is busy: {waiting} jobs are waiting. Try again in a minute."
    return None


def live_jobs(queue: Any) -> list[Job]:
    """Gradio's queue's live events (waiting or running) as Jobs."""
    waiting = {id(event) for line in queue.event_queue_per_concurrency_id.values() for event in line.queue}
    return [_job(event.session_hash, event.request, event.fn.concurrency_id, id(event) in waiting)
            for event in list(queue.event_ids_to_events.values())]


def _job(session: str, request: Any, concurrency_id: str | None, waiting: bool) -> Job:
    return Job(session, client_address(request), line_of(concurrency_id), waiting)


def install(demo: Any, limits: QueueLimits) -> None:
    """Check every job against `limits` before it joins `demo`'s queue (call after `demo.queue()`).

    Wraps the one queue object's `push` once, when the app is built; nothing changes per request."""
    from fastapi import HTTPException
    from gradio import route_utils

    queue = demo._queue
    push = queue.push

    async def limited_push(body: Any, request: Any, username: Any) -> Any:
        if body.fn_index is not None:
            fn = route_utils.get_fn(queue.blocks, None, body)
            new = _job(body.session_hash or "", request, fn.concurrency_id, True)
            if not new.session:  # an API call without a session is its own session
                new = Job(f"call-{id(body)}", new.address, new.line, True)
            reason = refusal(limits, live_jobs(queue), new)
            if reason is not None:  # 429, not Gradio's 503: the page shows a 429's message, and a 503's only as "busy"
                raise HTTPException(status_code=429, detail=reason)
        return await push(body=body, request=request, username=username)

    def next_events() -> Any:
        """Gradio's `get_events` (the next events to start), light lines first, heavy ones only while fewer than
        `heavy_running` heavy jobs run: a quick request never waits for a slot behind another visitor's work."""
        running_heavy = sum(1 for job in queue.active_jobs if job and line_of(job[0].concurrency_id) != LIGHT_ID)
        lines = list(queue.event_queue_per_concurrency_id.items())
        random.shuffle(lines)  # as Gradio does: no heavy line is always served last
        lines.sort(key=lambda item: line_of(item[0]) != LIGHT_ID)  # stable: light lines first
        for concurrency_id, line in lines:
            if line_of(concurrency_id) != LIGHT_ID and running_heavy >= limits.heavy_running:
                break
            if line.queue and (line.concurrency_limit is None or line.current_concurrency < line.concurrency_limit):
                first = line.queue[0]
                events = [first]
                if first.fn.batch:
                    events += [event for event in line.queue[1:] if event.fn == first.fn][: first.fn.max_batch_size - 1]
                for event in events:
                    line.queue.remove(event)
                return events, first.fn.batch, concurrency_id
        return None

    queue.push = limited_push
    queue.get_events = next_events
    demo.queue_limits = limits  # the limits in force (the README's table and the tests read them)
