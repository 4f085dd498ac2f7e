"""The "shapes" world: captions from a small grammar and the 32x32 pictures they describe, drawn by code.

Every picture is one or two flat shapes on black. The grammar (lower case):

    one object:   a [small|large] [colour] <shape> [on the left|on the right|at the top|at the bottom|in the centre]
    two objects:  a <colour> <shape> <left of|right of|above|below> a <colour> <shape>

>>> scene = Scene((Shape("red", "circle", "large", "left"),))
>>> scene.caption()
'a large red circle on the left'
>>> parse("a green square above a white circle").caption()
'a green square above a white circle'

What a caption leaves unsaid (size, place, for one object in ten even the colour) is drawn at random. Four colour-shape
pairs are never drawn in training (`HELDOUT_PAIRS`): the evaluation asks for them to see whether the model composes a
colour and a shape it never saw together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product

import numpy as np

SIZE = 32  # pixels per side
COLOURS = {  # name -> RGB: far apart in hue (and white), so a checker can read them back
    "red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 90, 235),
    "yellow": (235, 215, 30), "purple": (165, 60, 215), "white": (240, 240, 240),
}
SHAPES = ("circle", "square", "triangle")  # the triangle points up
SIZES = {"small": 8.0, "large": 15.0}  # side (or diameter) in pixels
PLACES = {  # phrase -> (name, centre x, centre y)
    "on the left": ("left", 8.5, 16.0), "on the right": ("right", 23.5, 16.0), "at the top": ("top", 16.0, 8.5),
    "at the bottom": ("bottom", 16.0, 23.5), "in the centre": ("centre", 16.0, 16.0),
}
RELATIONS = ("left of", "right of", "above", "below")
INVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
LEADING = ("left of", "above")  # the relations whose first-named object is the left/top one
HELDOUT_PAIRS = (("purple", "triangle"), ("yellow", "square"), ("white", "circle"), ("green", "triangle"))
PAIR_SIZE = 10.0  # each object's size in a two-object scene
WORDS = sorted({"a", *COLOURS, *SHAPES, *SIZES, *" ".join([*PLACES, *RELATIONS]).split()})  # the whole vocabulary


@dataclass(frozen=True)
class Shape:
    colour: str | None  # a key of COLOURS, or None (not said: drawn in a random colour)
    shape: str  # one of SHAPES
    size: str | None = None  # a key of SIZES, or None (not said: drawn at a random size)
    place: str | None = None  # a place name ("left", "top", ...), or None (not said: drawn anywhere)

    def phrase(self) -> str:
        words = ["a", *([self.size] if self.size else []), *([self.colour] if self.colour else []), self.shape]
        if self.place:
            words.append(next(p for p, (name, *_) in PLACES.items() if name == self.place))
        return " ".join(words)


@dataclass(frozen=True)
class Scene:
    objects: tuple[Shape, ...]  # one, or two with a relation
    relation: str | None = None  # one of RELATIONS, for two objects: objects[0] <relation> objects[1]

    def caption(self) -> str:
        if len(self.objects) == 1:
            return self.objects[0].phrase()
        a, b = self.objects
        return f"a {a.colour} {a.shape} {self.relation} a {b.colour} {b.shape}"


def roles(scene: Scene) -> tuple[int, int, int, int] | None:
    """(colour, shape) indices (into COLOURS and SHAPES) of a two-object scene's left/top object, then of its
    right/bottom one; None for one object. This is what the caption's order and relation word decide together.

    >>> roles(parse("a red circle right of a blue square"))  # the blue square is on the left
    (2, 1, 0, 0)
    """
    if len(scene.objects) == 1:
        return None
    a, b = scene.objects
    first, second = (a, b) if scene.relation in LEADING else (b, a)
    c = list(COLOURS)
    return c.index(first.colour), SHAPES.index(first.shape), c.index(second.colour), SHAPES.index(second.shape)


def parse(caption: str) -> Scene:
    """The scene a grammar caption describes; ValueError for text outside the grammar."""
    text = " ".join(caption.lower().split())
    colour, shape = "|".join(COLOURS), "|".join(SHAPES)
    two = re.fullmatch(rf"a ({colour}) ({shape}) ({'|'.join(RELATIONS)}) a ({colour}) ({shape})", text)
    if two:
        c1, s1, rel, c2, s2 = two.groups()
        return Scene((Shape(c1, s1), Shape(c2, s2)), rel)
    one = re.fullmatch(rf"a (?:({'|'.join(SIZES)}) )?(?:({colour}) )?({shape})(?: ({'|'.join(PLACES)}))?", text)
    if not one:
        raise ValueError(f"{caption!r} is not in the shapes grammar (e.g. 'a large red circle on the left').")
    size, c, s, place = one.groups()
    return Scene((Shape(c, s, size, PLACES[place][0] if place else None),))


def random_scene(rng: np.random.Generator, *, heldout: bool = False, two_share: float = 0.4) -> Scene:
    """A caption's scene drawn from the grammar. heldout=False never uses HELDOUT_PAIRS; heldout=True
    puts one held-out pair in every scene (the evaluation of composition)."""

    def pair(force_heldout: bool) -> tuple[str, str]:
        if force_heldout:
            return HELDOUT_PAIRS[rng.integers(len(HELDOUT_PAIRS))]
        while True:
            p = (list(COLOURS)[rng.integers(len(COLOURS))], SHAPES[rng.integers(len(SHAPES))])
            if p not in HELDOUT_PAIRS:
                return p

    if rng.random() < two_share:
        first = rng.random() < 0.5
        (c1, s1), (c2, s2) = pair(heldout and first), pair(heldout and not first)
        while (c2, s2) == (c1, s1):
            c2, s2 = pair(heldout and not first)
        return Scene((Shape(c1, s1), Shape(c2, s2)), RELATIONS[rng.integers(len(RELATIONS))])
    c, s = pair(heldout)
    if not heldout and rng.random() < 0.1:
        c = None  # "a large circle": any colour (a negative prompt can then rule one out)
    size = [None, *SIZES][rng.integers(len(SIZES) + 1)]
    place = [None, *(name for name, *_ in PLACES.values())][rng.integers(len(PLACES) + 1)]
    return Scene((Shape(c, s, size, place),))


def _mask(shape: str, cx: float, cy: float, side: float) -> np.ndarray:
    """Boolean [SIZE, SIZE] mask of one shape centred at (cx, cy) (pixel centres at i + 0.5)."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    h = side / 2
    if shape == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= h * h
    if shape == "square":
        return (abs(x - cx) <= h) & (abs(y - cy) <= h)
    # an upward triangle: apex at the top centre, base at the bottom; width grows linearly downwards
    inside_y = (y >= cy - h) & (y <= cy + h)
    half_width = (y - (cy - h)) / 2  # at the base: side / 2
    return inside_y & (abs(x - cx) <= half_width)


def _any_colour(shape: str, rng: np.random.Generator) -> str:
    allowed = [c for c in COLOURS if (c, shape) not in HELDOUT_PAIRS]
    return allowed[rng.integers(len(allowed))]


def draw(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """uint8 [SIZE, SIZE, 3]: the scene on black; what the caption leaves unsaid (size, exact place) is drawn at random."""
    img = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    jitter = lambda: rng.uniform(-1.5, 1.5)  # noqa: E731
    if len(scene.objects) == 1:
        obj = scene.objects[0]
        side = SIZES[obj.size] if obj.size else rng.uniform(SIZES["small"], SIZES["large"])
        if obj.place:
            _, cx, cy = next(v for v in PLACES.values() if v[0] == obj.place)
            cx, cy = cx + jitter(), cy + jitter()
        else:
            lo, hi = side / 2 + 1, SIZE - side / 2 - 1
            cx, cy = rng.uniform(lo, hi), rng.uniform(lo, hi)
        colour = obj.colour or _any_colour(obj.shape, rng)
        img[_mask(obj.shape, cx, cy, side)] = COLOURS[colour]
        return img
    a, b = scene.objects
    along, across = rng.uniform(8.0, 10.0), 16.0 + rng.uniform(-5.0, 5.0)  # the two sit apart along one axis
    first, second = 16.0 - along + jitter(), 16.0 + along + jitter()
    if scene.relation in LEADING:
        pa, pb = first, second
    else:
        pa, pb = second, first
    horizontal = scene.relation in ("left of", "right of")
    for obj, p in ((a, pa), (b, pb)):
        cx, cy = (p, across) if horizontal else (across, p)
        img[_mask(obj.shape, cx, cy, PAIR_SIZE + rng.uniform(-1.0, 1.0))] = COLOURS[obj.colour]
    return img


def dataset(n: int, seed: int, *, heldout: bool = False, two_share: float = 0.4) -> tuple[np.ndarray, list[str]]:
    """n pictures (uint8 [n, SIZE, SIZE, 3]) and their captions, reproducible from `seed`; `two_share` of them
    have two objects."""
    rng = np.random.default_rng(seed)
    scenes = [random_scene(rng, heldout=heldout, two_share=two_share) for _ in range(n)]
    return np.stack([draw(s, rng) for s in scenes]), [s.caption() for s in scenes]


def twin_dataset(n: int, seed: int, *, two_share: float = 0.5) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Like `dataset`, but every two-object picture comes with its minimal pair: the same two shapes at the same
    spots, swapped, captioned with the inverse relation ("a red circle left of a blue square" and "a red circle
    right of a blue square"). Only the relation word tells the two apart, so it alone must decide the order.

    Returns the pictures, their captions and `twin` (int [len]): the index of each picture's twin, -1 for none.

    >>> images, captions, twin = twin_dataset(4, 0, two_share=1.0)
    >>> captions[0], captions[twin[0]]
    ('a green circle left of a red circle', 'a green circle right of a red circle')
    """
    rng = np.random.default_rng(seed)
    images, captions, twin = [], [], []
    for _ in range(n):
        scene = random_scene(rng, two_share=two_share)
        if len(scene.objects) == 1:
            images.append(draw(scene, rng))
            captions.append(scene.caption())
            twin.append(-1)
            continue
        state = rng.bit_generator.state  # the twin reuses this picture's draws: same spots and sizes
        mirror = Scene(scene.objects, INVERSE[scene.relation])
        images.append(draw(scene, rng))
        rng.bit_generator.state = state
        images.append(draw(mirror, rng))
        captions += [scene.caption(), mirror.caption()]
        twin += [len(images) - 1, len(images) - 2]
    return np.stack(images), captions, np.array(twin)


def single_captions() -> list[str]:
    """The grammar's fully specified one-object captions: size, colour, shape and place (2 x 6 x 3 x 5 = 180)."""
    return [f"a {size} {colour} {shape} {place}" for size, colour, shape, place in
            product(SIZES, COLOURS, SHAPES, PLACES)]


def pair_captions() -> list[str]:
    """The grammar's two-object captions: every ordered pair of different colour-shape objects under every relation."""
    objects = [(c, s) for c in COLOURS for s in SHAPES]
    return [f"a {c1} {s1} {rel} a {c2} {s2}" for (c1, s1), (c2, s2) in product(objects, objects) if (c1, s1) != (c2, s2)
            for rel in RELATIONS]


def class_prompts() -> dict[str, dict[str, list[str]]]:
    """attribute -> class -> the grammar's captions that say it (averaged into one class embedding: prompt ensembling)."""
    place_of = {p: name for p, (name, *_) in PLACES.items()}
    out: dict[str, dict[str, list[str]]] = {"colour": {}, "shape": {}, "place": {}}
    for c in single_captions():
        words = c.split()
        out["colour"].setdefault(words[2], []).append(f"a {words[2]} {words[3]}")
        out["shape"].setdefault(words[3], []).append(f"a {words[2]} {words[3]}")
        place = " ".join(words[4:])
        out["place"].setdefault(place_of[place], []).append(c)
    return {k: {cls: sorted(set(v)) for cls, v in d.items()} for k, d in out.items()}
