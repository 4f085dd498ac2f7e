"""What localized word maps cost: sd-shapes' UNet with cross-attention at 8x8 only, against the same UNet with it at
16x16 as well (the lever `shapes.grow` adds), and with TokenCompose's grounding loss on top.

    python benchmarks/word_map_levels.py [--repeats 7]

Figures: a training step (forward, loss, backward, batch 32 as `ShapesTrainConfig`), and one guided sampling step
(the UNet on [unconditional, conditional], as every DDIM step of the app), medians, alternating, on the process's
torch threads. Random weights: the cost does not depend on them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install needed

import torch  # noqa: E402

from benchmarks.report import interleaved_medians, record  # noqa: E402
from playground.train import grounding, shapes  # noqa: E402


def unets():
    torch.manual_seed(0)
    cfg = shapes.ShapesTrainConfig()
    return shapes.build_unet(cfg, 16), shapes.build_unet(shapes.ShapesTrainConfig(attention_levels=2), 16), cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    coarse, fine, cfg = unets()
    grounded = shapes.build_unet(shapes.ShapesTrainConfig(attention_levels=2), 16)
    store = grounding.install(grounded)
    b = cfg.batch_size
    z, t, c = torch.randn(b, 4, 16, 16), torch.randint(0, 1000, (b,)), torch.randn(b, shapes.MAX_TOKENS, cfg.text_width)
    positions = torch.tensor([[2, 3, -1, -1]] * b)
    masks = torch.rand(b, grounding.SLOTS, grounding.MASK_SIDE, grounding.MASK_SIDE)

    def train_step(unet, grounds: bool = False):
        def step():
            unet.zero_grad()
            loss = unet(z, t, encoder_hidden_states=c).sample.pow(2).mean()
            if grounds:
                loss = loss + 0.05 * grounding.loss(store, positions, masks)
            loss.backward()
        return step

    def sample_step(unet):
        @torch.no_grad()
        def step():
            unet(z[:2], t[:2], encoder_hidden_states=c[:2])
        return step

    train_fine, train_coarse = interleaved_medians(train_step(fine), train_step(coarse), args.repeats)
    train_grounded, train_coarse2 = interleaved_medians(train_step(grounded, True), train_step(coarse), args.repeats)
    sample_fine, sample_coarse = interleaved_medians(sample_step(fine), sample_step(coarse), 5 * args.repeats)
    n_coarse, n_fine = (sum(p.numel() for p in u.parameters()) for u in (coarse, fine))
    ms = lambda seconds: f"{seconds * 1e3:.0f} ms"  # noqa: E731
    figure = (f"training step {ms(train_coarse)} at 8x8 only vs {ms(train_fine)} with 16x16 (**{train_fine / train_coarse:.2f}x**), "
              f"{ms(train_grounded)} with the grounding loss too (**{train_grounded / train_coarse2:.2f}x**); guided sampling step "
              f"{sample_coarse * 1e3:.1f} vs {sample_fine * 1e3:.1f} ms (**{sample_fine / sample_coarse:.2f}x**); "
              f"parameters {n_coarse:,} vs {n_fine:,}")
    print(figure)
    record("word_map_levels", "sd-shapes' UNet with cross-attention at 8x8 only against 16x16 as well (the word-map lever), and with "
           "the grounding loss: a training step (batch 32) and a guided sampling step (median of 7 / 35, alternating)",
           "python benchmarks/word_map_levels.py", figure)


if __name__ == "__main__":
    main()
