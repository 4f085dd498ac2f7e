"""The Training tab's streamed trainers against the same loops without streaming or plotting: steps per second.

    python benchmarks/training_stream.py [--repeats 3]

"Streamed" is what the page runs: the tab's handler (`on_train_toy`, `on_train_gpt`), which yields six updates
with a fresh sample set (2-D: 1,000 points through every reverse step) or a held-out evaluation and a sample (GPT),
each drawn as SVG. "Plain" is the same training loop (`train_toy`, `train_gpt` with stream=False): only the final
result. Defaults of the tab (2-D: 2,000 steps on two moons; GPT: 250 steps on Romeo and Juliet). Both in this one
process, alternating, medians.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install needed

from benchmarks.report import interleaved_medians, record  # noqa: E402
from playground.config import Settings  # noqa: E402
from playground.core.training import (
    toy_diffusion,  # noqa: E402
    toy_gpt,  # noqa: E402
)
from playground.models import ModelLoader  # noqa: E402
from playground.ui import training_tab  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    loader = ModelLoader(Settings(offline=True, device="cpu"))
    toy, gpt = toy_diffusion.ToyConfig(), toy_gpt.GPTTrainConfig(max_seconds=toy_gpt.MAX_SECONDS)
    data = toy_diffusion.make_dataset("moons", toy.n_points, toy.seed)
    text = training_tab.CORPUS.read_text(encoding="utf-8")

    def toy_plain() -> None:
        list(toy_diffusion.train_toy(data, toy, stream=False))

    def toy_streamed() -> None:
        list(
            training_tab.on_train_toy(
                loader, training_tab.ToyRequest("moons", None, toy.steps, toy.lr, toy.schedule, toy.timesteps, toy.seed)
            )
        )

    def gpt_plain() -> None:
        list(toy_gpt.train_gpt(text, gpt, stream=False))

    def gpt_streamed() -> None:
        list(training_tab.on_train_gpt(loader, training_tab.GPTTrainRequest(text, gpt.steps, gpt.seed)))

    parts = []
    for label, steps, plain, streamed in (
        ("2-D diffusion", toy.steps, toy_plain, toy_streamed),
        ("tiny GPT", gpt.steps, gpt_plain, gpt_streamed),
    ):
        p, s = interleaved_medians(plain, streamed, args.repeats)
        print(f"{label}: plain {steps / p:.0f} steps/s, streamed {steps / s:.0f} steps/s, ratio {s / p:.2f}x", flush=True)
        parts.append(f"{label} {steps / s:.0f} vs {steps / p:.0f} steps/s (**{s / p:.2f}x** the time)")
    record("training_stream", "Training tab: the streamed trainers (six updates with samples or held-out evaluations, drawn as SVG) "
           f"against the same loops without streaming or plotting, the tab's defaults (median of {args.repeats})",
           "python benchmarks/training_stream.py", "; ".join(parts))


if __name__ == "__main__":
    main()
