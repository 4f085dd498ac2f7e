"""What localized word maps cost: sd-shapes' UNet (cross-attention at 8x8) trained with TokenCompose's grounding loss, as
shipped, against the plain training step; and the lever not shipped, cross-attention grown to 16x16 as well
(`shapes.grow`), for training and for sampling.

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
    coarse_grounded = shapes.build_unet(cfg, 16)
    fine_grounded = shapes.build_unet(shapes.ShapesTrainConfig(attention_levels=2), 16)
    b = cfg.batch_size
    z, t, c = torch.randn(b, 4, 16, 16), torch.randint(0, 1000, (b,)), torch.randn(b, shapes.MAX_TOKENS, cfg.text_width)
    positions = torch.tensor([[2, 3, -1, -1]] * b)
    masks = torch.rand(b, grounding.SLOTS, grounding.MASK_SIDE, grounding.MASK_SIDE)

    def train_step(unet, grounds: bool = False):
        store = grounding.install(unet) if grounds else None

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

    shipped, plain = interleaved_medians(train_step(coarse_grounded, True), train_step(coarse), args.repeats)
    fine_train, plain2 = interleaved_medians(train_step(fine_grounded, True), train_step(coarse), args.repeats)
    sample_fine, sample_coarse = interleaved_medians(sample_step(fine), sample_step(coarse), 5 * args.repeats)
    n_coarse, n_fine = (sum(p.numel() for p in u.parameters()) for u in (coarse, fine))
    ms = lambda seconds: f"{seconds * 1e3:.0f} ms"  # noqa: E731
    figure = (f"training step with the grounding loss {ms(shipped)} vs plain {ms(plain)} (**{shipped / plain:.2f}x**, as shipped); "
              f"with 16x16 cross-attention too {ms(fine_train)} (**{fine_train / plain2:.2f}x**); a guided sampling step at 16x16 "
              f"{sample_fine * 1e3:.1f} vs {sample_coarse * 1e3:.1f} ms at 8x8 (**{sample_fine / sample_coarse:.2f}x**; the grounding "
              f"loss costs sampling nothing); parameters {n_fine:,} vs {n_coarse:,}")
    print(figure)
    record("word_map_levels", "Word maps that land: a training step of sd-shapes' UNet (batch 32) with the grounding loss against "
           "without, and with cross-attention grown to 16x16; a guided sampling step at 16x16 against 8x8 (medians of 7 / 35, "
           "alternating)", "python benchmarks/word_map_levels.py", figure)


if __name__ == "__main__":
    main()
