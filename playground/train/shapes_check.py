"""Read a shapes picture back without a network: colours by the nearest palette colour, shapes by how much of
their bounding box they fill, places by their centroid.

A circle fills π/4 ≈ 0.79 of its box, a square all of it, an upward triangle half:

>>> import numpy as np
>>> from playground.train import shapes_data
>>> img = shapes_data.draw(shapes_data.parse("a large red circle on the left"), np.random.default_rng(0))
>>> [(o.colour, o.shape, o.place) for o in read(img)]
[('red', 'circle', 'left')]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from playground.train import shapes_data

MIN_PIXELS = 6  # smaller blobs are noise
BRIGHT = 90  # a pixel whose brightest channel is under this is background


@dataclass(frozen=True)
class Found:
    colour: str  # nearest palette colour of the blob
    shape: str  # circle, square or triangle, from the fill ratio of the bounding box
    place: str  # nearest named place of the centroid
    cx: float  # centroid x, pixels
    cy: float  # centroid y, pixels
    pixels: int  # area
    mask: np.ndarray  # bool [H, W]


def colour_map(img: np.ndarray) -> np.ndarray:
    """int [H, W]: the index of each pixel's nearest colour in COLOURS, or -1 for background."""
    palette = np.array(list(shapes_data.COLOURS.values()), dtype=float)
    px = img.astype(float)
    nearest = ((px[:, :, None, :] - palette[None, None]) ** 2).sum(-1).argmin(-1)
    return np.where(px.max(-1) >= BRIGHT, nearest, -1)


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """4-connected components of a boolean mask, as masks."""
    seen = np.zeros_like(mask, dtype=bool)
    out = []
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        comp = np.zeros_like(mask, dtype=bool)
        stack = [(y0, x0)]
        seen[y0, x0] = True
        while stack:
            y, x = stack.pop()
            comp[y, x] = True
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        out.append(comp)
    return out


def shape_of(mask: np.ndarray) -> str:
    ys, xs = np.nonzero(mask)
    fill = mask.sum() / ((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1))
    return "square" if fill > 0.9 else "circle" if fill > 0.64 else "triangle"


def place_of(cx: float, cy: float) -> str:
    return min(shapes_data.PLACES.values(), key=lambda p: (p[1] - cx) ** 2 + (p[2] - cy) ** 2)[0]


def read(img: np.ndarray) -> list[Found]:
    """The blobs of one colour each in an RGB uint8 picture, largest first."""
    cmap = colour_map(img)
    names = list(shapes_data.COLOURS)
    found = []
    for k in range(len(names)):
        for comp in _components(cmap == k):
            if comp.sum() < MIN_PIXELS:
                continue
            ys, xs = np.nonzero(comp)
            cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
            found.append(Found(names[k], shape_of(comp), place_of(cx, cy), cx, cy, int(comp.sum()), comp))
    return sorted(found, key=lambda f: -f.pixels)


def relation_holds(a: Found, b: Found, relation: str) -> bool:
    """a <relation> b, read from the centroids (the offset along the named axis must beat the other axis)."""
    dx, dy = b.cx - a.cx, b.cy - a.cy  # image y grows downwards
    return {"left of": dx > 2 and abs(dx) > abs(dy), "right of": -dx > 2 and abs(dx) > abs(dy),
            "above": dy > 2 and abs(dy) > abs(dx), "below": -dy > 2 and abs(dy) > abs(dx)}[relation]


@dataclass(frozen=True)
class Verdict:
    colour: bool | None  # the (first) object's colour right (None: not asked)
    shape: bool  # the (first) object's shape right
    place: bool | None  # its place right (None: not asked)
    both: bool | None  # two objects: both right in colour and shape, and the relation holds (None: one object)


def judge(img: np.ndarray, scene: shapes_data.Scene) -> Verdict:
    """How far a picture matches its caption's scene."""
    blobs = read(img)
    if len(scene.objects) == 1:
        want = scene.objects[0]
        main = blobs[0] if blobs else None
        if main is None:
            return Verdict(False if want.colour else None, False, False if want.place else None, None)
        return Verdict(main.colour == want.colour if want.colour else None, main.shape == want.shape,
                       main.place == want.place if want.place else None, None)
    a, b = scene.objects

    def match(obj: shapes_data.Shape, exclude: Found | None = None) -> Found | None:
        return next((f for f in blobs if f is not exclude and f.colour == obj.colour and f.shape == obj.shape), None)

    fa = match(a)
    fb = match(b, exclude=fa)
    first = next((f for f in blobs if f.colour == a.colour), None)
    return Verdict(first is not None, first is not None and first.shape == a.shape, None,
                   fa is not None and fb is not None and relation_holds(fa, fb, scene.relation))


def follows(verdict: Verdict) -> bool:
    """A picture follows its caption: both objects and their relation, or the object's colour, shape and place (those
    the caption says)."""
    if verdict.both is not None:
        return bool(verdict.both)
    return bool(verdict.shape and verdict.colour is not False and verdict.place is not False)


def has_colour(img: np.ndarray, colour: str) -> bool:
    """Whether any blob of `colour` is in the picture."""
    return any(f.colour == colour for f in read(img))


def reading(img: np.ndarray, caption: str) -> dict[str, bool | None]:
    """The checker's verdict on a picture of `caption` as {colour, shape, place, relation}: true/false where the caption
    says it, null where it does not (a caption outside the grammar: every entry null). One object: its colour, shape and
    place. Two objects: colour = both colours are there, shape = both objects (colour and shape) are there, place = null,
    relation = both objects are there in the caption's relation.

    >>> img = shapes_data.draw(shapes_data.parse("a red circle left of a blue square"), np.random.default_rng(0))
    >>> reading(img, "a red circle left of a blue square")
    {'colour': True, 'shape': True, 'place': None, 'relation': True}
    >>> reading(img, "a blue square left of a red circle")["relation"]
    False
    """
    def truth(x) -> bool | None:
        return None if x is None else bool(x)

    try:
        scene = shapes_data.parse(caption)
    except ValueError:
        return {"colour": None, "shape": None, "place": None, "relation": None}
    if len(scene.objects) == 1:
        v = judge(img, scene)
        return {"colour": truth(v.colour), "shape": truth(v.shape), "place": truth(v.place), "relation": None}
    blobs = read(img)
    a, b = scene.objects
    fa = next((f for f in blobs if f.colour == a.colour and f.shape == a.shape), None)
    fb = next((f for f in blobs if f is not fa and f.colour == b.colour and f.shape == b.shape), None)
    colours = {f.colour for f in blobs}
    return {"colour": a.colour in colours and b.colour in colours, "shape": fa is not None and fb is not None, "place": None,
            "relation": fa is not None and fb is not None and bool(relation_holds(fa, fb, scene.relation))}
