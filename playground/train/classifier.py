"""The Fashion-MNIST classifier that grades the embedded diffusion models' samples.

    python -m playground.train.classifier    # ~2 min on 2 CPU cores -> assets/models/fashion-classifier

It is trained separately, on the real training images only, and its accuracy on the real test
images is the ceiling for the "samples labelled as the requested class" figure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from playground.train import common
from playground.train.data import FASHION_CLASSES, fashion_tensor


class FashionClassifier(nn.Module):
    """A small CNN on 32x32 images in [-1, 1] -> 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),  # 16x16
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),  # 8x8
            nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(), nn.MaxPool2d(2),  # 4x4
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(128 * 16, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 1, 32, 32] -> [B, 10]
        return self.net(x)

    @classmethod
    def from_folder(cls, folder: Path) -> FashionClassifier:
        from safetensors.torch import load_file

        model = cls()
        model.load_state_dict(load_file(folder / "model.safetensors"))
        return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    model.eval()
    right = sum((model(x[i: i + batch]).argmax(1) == y[i: i + batch]).sum().item() for i in range(0, len(x), batch))
    return right / len(x)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=common.MODELS_DIR / "fashion-classifier")
    args = parser.parse_args(argv)
    gen = common.setup(7, args.threads)
    clock = common.Clock()
    x, y = fashion_tensor("train")
    xt, yt = fashion_tensor("test")
    model = FashionClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps_per_epoch = len(x) // 128
    total = args.epochs * steps_per_epoch
    step = 0
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for i in range(steps_per_epoch):
            idx = order[i * 128: (i + 1) * 128]
            batch = x[idx]
            shift = torch.randint(-2, 3, (2,), generator=gen).tolist()  # small random translations
            batch = torch.roll(batch, shifts=shift, dims=(2, 3))
            for group in opt.param_groups:
                group["lr"] = common.cosine_lr(step, total, 2e-3, 100, floor=0.02)
            loss = nn.functional.cross_entropy(model(batch), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        print(f"epoch {epoch}: loss {loss.item():.3f}, test accuracy {accuracy(model, xt, yt):.4f}, {clock.minutes():.1f} min", flush=True)
    test_acc = accuracy(model, xt, yt)
    args.out.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    save_file(model.state_dict(), args.out / "model.safetensors")
    (args.out / "config.json").write_text(
        json.dumps({"architecture": "FashionClassifier", "id2label": dict(enumerate(FASHION_CLASSES))}, indent=2)
    )
    common.save_metrics(
        args.out,
        {
            "test_accuracy": round(test_acc, 4),
            "train_minutes": round(clock.minutes(), 1),
            "train_cpu_minutes": round(clock.cpu_minutes(), 1),
            "machine": common.machine(),
        },
    )
    common.write_card(
        args.out,
        metadata={"license": "mit", "library_name": "pytorch", "tags": ["teaching", "fashion-mnist", "evaluation"]},
        body=f"""
# fashion-classifier: grades the diffusion samples

A small CNN (`playground.train.classifier.FashionClassifier`) trained on the 60,000 real Fashion-MNIST
training images ({args.epochs} epochs, seed 7, {clock.minutes():.1f} min). **Accuracy on the 10,000 real
test images: {test_acc:.2%}**, the ceiling for the diffusion models' class-accuracy figures.

Train: `python -m playground.train.classifier`. Data: Debian's `dataset-fashion-mnist` (MIT, Zalando).
""",
    )


if __name__ == "__main__":
    main()
