"""Colour-vision-deficiency simulation for the palette tests: Machado, Oliveira and Fernandes (2009), severity 1
(complete protanopia, deuteranopia, tritanopia), applied in linear RGB; distances as CIE76 ΔE in CIELAB.

>>> round(delta_e("#000000", "#ffffff"))
100
"""

from __future__ import annotations

import numpy as np

MACHADO = {
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]]),
}


def rgb(colour) -> np.ndarray:
    """'#rrggbb', 'rgb(r,g,b)' or an (r, g, b) tuple -> floats in [0, 1]."""
    if isinstance(colour, str):
        c = colour.strip()
        if c.startswith("#"):
            return np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
        if c.startswith("rgb("):
            return np.array([float(v) for v in c[4:-1].split(",")]) / 255.0
        raise ValueError(colour)
    return np.asarray(colour, dtype=float) / 255.0


def _linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _srgb(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(np.clip(c, 0, None), 1 / 2.4) - 0.055)


def simulate(colour, kind: str | None) -> np.ndarray:
    """The colour as a viewer with `kind` of deficiency sees it (None: unchanged), sRGB in [0, 1]."""
    c = rgb(colour)
    if kind is None:
        return c
    return np.clip(_srgb(np.clip(MACHADO[kind] @ _linear(c), 0, 1)), 0, 1)


def lab(c: np.ndarray) -> np.ndarray:
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ _linear(c) / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def delta_e(a, b, kind: str | None = None) -> float:
    return float(np.linalg.norm(lab(simulate(a, kind)) - lab(simulate(b, kind))))


def lightness(colour, kind: str | None = None) -> float:
    return float(lab(simulate(colour, kind))[0])
