"""The Training tab's default runs on an idle machine and on a busy one: do they finish well inside the time cap?

    python benchmarks/training_busy.py [--hogs 2] [--threads 1]

Each default run (2-D diffusion on every dataset; the tiny GPT on Romeo and Juliet) is timed through the tab's own
handler, first alone, then while `--hogs` other processes each multiply matrices on `--threads` threads (a workshop
laptop running something else, or a Space serving other visitors). The figure is each run's seconds as a share of the
cap (`MAX_SECONDS`), and whether it reached its last step. The defaults are sized so that the busy runs end before
the cap (issue 29, item 12); the cap is a guard, the steps are the budget. With hogs of two threads each (four busy
threads on two cores) the trainers' OpenMP threads wait on each other at every small operation and the runs take
several times longer again (measured while sizing: 2-D runs of 2,000 steps x 256 points 84-113 s, the GPT's 300
steps 109 s): a known limit; OMP_WAIT_POLICY=PASSIVE cut a 2-D run from 97 s to 19 s there but doubled it when idle.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install needed

from benchmarks.report import record  # noqa: E402
from playground.config import Settings  # noqa: E402
from playground.core.training import toy_diffusion, toy_gpt  # noqa: E402
from playground.models import ModelLoader  # noqa: E402
from playground.ui import training_tab  # noqa: E402


def _hog(threads: int, stop) -> None:
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(1500, 1500)
    while not stop.is_set():
        a @ a


def _timed_runs(loader: ModelLoader) -> dict[str, tuple[float, bool]]:
    """{run: (seconds, finished)} for each default run, through the tab's handlers."""
    toy, gpt = toy_diffusion.ToyConfig(), toy_gpt.GPTTrainConfig()
    text = training_tab.CORPUS.read_text(encoding="utf-8")
    out = {}
    for dataset in toy_diffusion.DATASETS:
        start = time.perf_counter()
        *_, last = training_tab.on_train_toy(loader, training_tab.ToyRequest(dataset, None, toy.steps, toy.lr, toy.schedule,
                                                                             toy.timesteps, toy.seed))
        out[f"2-D {dataset}"] = (time.perf_counter() - start, "Done" in str(last[0]))
        print(dataset, out[f"2-D {dataset}"], flush=True)
    start = time.perf_counter()
    *_, last = training_tab.on_train_gpt(loader, training_tab.GPTTrainRequest(text, gpt.steps, gpt.seed))
    out["tiny GPT"] = (time.perf_counter() - start, "Done" in str(last[0]))
    print("gpt", out["tiny GPT"], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hogs", type=int, default=2, help="other busy processes during the second pass")
    parser.add_argument("--threads", type=int, default=1, help="threads of each busy process")
    args = parser.parse_args()
    loader = ModelLoader(Settings(offline=True, device="cpu"))
    idle = _timed_runs(loader)
    spawn = multiprocessing.get_context("spawn")  # a forked child would inherit this process's OpenMP pool and stall
    stop = spawn.Event()
    hogs = [spawn.Process(target=_hog, args=(args.threads, stop), daemon=True) for _ in range(args.hogs)]
    for h in hogs:
        h.start()
    time.sleep(5)  # the hogs import torch
    try:
        busy = _timed_runs(loader)
    finally:
        stop.set()
        for h in hogs:
            h.join(10)
    cap = toy_diffusion.MAX_SECONDS
    worst = max(busy.values())[0]
    parts = [f"{name} {idle[name][0]:.0f} s idle, {busy[name][0]:.0f} s busy" + ("" if busy[name][1] else " (**cut by the cap**)")
             for name in idle]
    figure = (f"{'; '.join(parts)}; cap {cap:.0f} s: the slowest busy run took **{worst / cap:.2f}x** the cap "
              f"({'all finished' if all(ok for _, ok in busy.values()) else 'not all finished'})")
    print(figure)
    record("training_busy", f"Training tab: the default runs alone and beside {args.hogs} processes of {args.threads} busy "
           f"thread{'s' if args.threads > 1 else ''} each, against the time cap", "python benchmarks/training_busy.py", figure)


if __name__ == "__main__":
    main()
