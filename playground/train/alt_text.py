"""Alt-text-like captions for the shapes world, and DALL-E 3's prompt expansion by rules.

DALL-E 3 (Betker et al. 2023, "Improving Image Generation with Better Captions") found that the same model follows
prompts much better when it is trained on descriptive captions instead of the alt text a web crawl gives. The
embedded "alttext-shapes" is sd-shapes' recipe (the same pictures, seed, architecture and steps) trained on the
captions `alt_caption` writes, which are what alt text is like: terse, partial, sometimes wrong, often nothing at all.
Each training caption is, independently (the rates are `ALT_RATES`):

- **junk** (15%): says nothing about the picture: "shapes", "untitled", "img 0412", ...
- **terse** (25%): one word of one object: "a red thing", "a circle", "red".
- **partial** (30%): the objects, each colour (and a lone object's size and place) dropped with probability 0.5,
  two objects joined by "and" (the relation dropped): "a circle and a blue square".
- **wrong** (10%): the full caption with one fact wrong: a colour or a shape swapped for another, or the relation
  (a lone object's place) replaced.
- **full** (20%): the grammar's descriptive caption, as sd-shapes is always trained on.

sd-shapes sees the full caption every time: that is the "better captions" arm of the experiment.

>>> rng = np.random.default_rng(0)
>>> scene = shapes_data.parse("a red circle left of a blue square")
>>> sorted({alt_caption(scene, rng)[1] for _ in range(200)})
['full', 'junk', 'partial', 'terse', 'wrong']

`expand` is DALL-E 3's other half: a terse user prompt rewritten into the descriptive form the model was trained on
before drawing. DALL-E 3 asks GPT-4 to do it; here a few rules do, because the target form is a known grammar (the
embedded T5 was never trained on this rewrite, and a rule says exactly what it adds):

>>> expand("red circle left blue square")
'a red circle left of a blue square'
>>> expand("big green triangle top")
'a large green triangle at the top'
>>> expand("Purple squares")
'a purple square'
"""

from __future__ import annotations

import re

import numpy as np

from playground.train import shapes_data

ALT_RATES = {"junk": 0.15, "terse": 0.25, "partial": 0.30, "wrong": 0.10, "full": 0.20}  # kind -> share of training captions
JUNK = ("shapes", "untitled", "image", "abstract art", "geometric shapes", "img {n:04d}", "picture {n:04d}", "dsc {n:04d}")
ALT_WORDS = sorted({"and", "thing", *" ".join(JUNK).replace("{n:04d}", "").split()})  # words alt text adds to the grammar's
DROP = 0.5  # probability a partial caption drops each colour (and a lone object's size and place)


def alt_caption(scene: shapes_data.Scene, rng: np.random.Generator) -> tuple[str, str]:
    """(an alt-text-like caption of `scene`, which kind of caption it is: a key of ALT_RATES)."""
    kind = list(ALT_RATES)[rng.choice(len(ALT_RATES), p=list(ALT_RATES.values()))]
    if kind == "junk":
        return JUNK[rng.integers(len(JUNK))].format(n=int(rng.integers(10_000))), kind
    objects = scene.objects
    if kind == "terse":
        obj = objects[rng.integers(len(objects))]
        choices = [f"a {obj.shape}", *([f"a {obj.colour} thing", obj.colour] if obj.colour else [])]
        return choices[rng.integers(len(choices))], kind
    if kind == "partial":
        def keep(value: str | None) -> str | None:
            return value if value and rng.random() >= DROP else None

        if len(objects) == 1:
            o = objects[0]
            return shapes_data.Shape(keep(o.colour), o.shape, keep(o.size), keep(o.place)).phrase(), kind
        return " and ".join(shapes_data.Shape(keep(o.colour), o.shape).phrase() for o in objects), kind
    if kind == "wrong":
        return _one_fact_wrong(scene, rng).caption(), kind
    return scene.caption(), kind


def _one_fact_wrong(scene: shapes_data.Scene, rng: np.random.Generator) -> shapes_data.Scene:
    """`scene` with one colour, one shape, or the relation (a lone object's place) changed to another value."""
    objects = list(scene.objects)
    i = int(rng.integers(len(objects)))
    o = objects[i]
    fact = ["colour", "shape", "where"][rng.integers(3)]
    if fact == "colour" and o.colour:
        others = [c for c in shapes_data.COLOURS if c != o.colour]
        objects[i] = shapes_data.Shape(others[rng.integers(len(others))], o.shape, o.size, o.place)
    elif fact == "where" and scene.relation:
        others = [r for r in shapes_data.RELATIONS if r != scene.relation]
        return shapes_data.Scene(scene.objects, others[rng.integers(len(others))])
    elif fact == "where":
        places = [name for name, *_ in shapes_data.PLACES.values() if name != o.place]
        objects[i] = shapes_data.Shape(o.colour, o.shape, o.size, places[rng.integers(len(places))])
    else:
        others = [s for s in shapes_data.SHAPES if s != o.shape]
        objects[i] = shapes_data.Shape(o.colour, others[rng.integers(len(others))], o.size, o.place)
    return shapes_data.Scene(tuple(objects), scene.relation)


def alt_captions(scenes_captions: list[str], seed: int) -> tuple[list[str], list[str]]:
    """Alt-text-like captions (and their kinds) for a list of grammar captions, reproducible from `seed`; the empty
    caption stays empty."""
    rng = np.random.default_rng(seed)
    out = [alt_caption(shapes_data.parse(c), rng) for c in scenes_captions]
    return [c for c, _ in out], [k for _, k in out]


# --- prompt expansion -------------------------------------------------------------------------------------------

SYNONYMS = {"big": "large", "little": "small", "tiny": "small", "center": "centre", "middle": "centre", "up": "top",
            "down": "bottom", "under": "below", "over": "above", "circles": "circle", "squares": "square",
            "triangles": "triangle", "ball": "circle", "box": "square", "grey": "white", "gray": "white"}
_PLACE_WORDS = {name: phrase for phrase, (name, *_) in shapes_data.PLACES.items()}  # "left" -> "on the left"
_RELATION_WORDS = {"left": "left of", "right": "right of", "above": "above", "below": "below"}
DEFAULT_SHAPE = "circle"  # what expansion draws when a prompt names no shape (stated in the Designs section)


def expand(prompt: str) -> str:
    """A terse prompt rewritten into the shapes grammar's descriptive form, by rules: the colour, shape, size, place
    and relation words it has (or their synonyms), in its order, with the grammar's articles and phrases; a
    missing shape becomes DEFAULT_SHAPE. A prompt already in the grammar comes back unchanged. Two objects need a
    relation word between them; without one they are drawn left to right."""
    words = [SYNONYMS.get(w, w) for w in re.findall(r"[a-z]+", prompt.lower())]
    try:
        return shapes_data.parse(" ".join(words)).caption()
    except ValueError:
        pass
    objects: list[dict] = [{}]
    relation = place = None
    for w in words:
        current = objects[-1]
        if w in shapes_data.SHAPES:
            if "shape" in current:
                objects.append(current := {})
            current["shape"] = w
        elif w in shapes_data.COLOURS:
            if "colour" in current or "shape" in current:
                objects.append(current := {})
            current["colour"] = w
        elif w in shapes_data.SIZES:
            current["size"] = w
        elif w in _RELATION_WORDS and "shape" in current and len(objects) == 1:
            relation = _RELATION_WORDS[w]
        elif w in _PLACE_WORDS or w in ("top", "bottom"):
            place = w
    objects = [o for o in objects if o][:2] or [{}]
    if len(objects) == 2:
        a, b = ({"shape": DEFAULT_SHAPE, "colour": "white", **o} for o in objects)
        if relation is None and place in ("top", "bottom"):
            relation = "above" if place == "top" else "below"
        return shapes_data.Scene((shapes_data.Shape(a["colour"], a["shape"]), shapes_data.Shape(b["colour"], b["shape"])),
                                 relation or "left of").caption()
    o = objects[0]
    if relation and place is None:  # "red circle left": a place, not a relation
        place = {"left of": "left", "right of": "right", "above": "top", "below": "bottom"}[relation]
    return shapes_data.Shape(o.get("colour"), o.get("shape", DEFAULT_SHAPE), o.get("size"), place).phrase()


TYPED = {"large": "big", "small": "little", "circle": "ball", "square": "box", "centre": "middle"}  # how a user might say it


def typed(caption: str, rng: np.random.Generator) -> str:
    """A grammar caption as a user might type it: `terse`, each word of TYPED swapped for its everyday word with
    probability 0.5 ("a large red circle on the left" -> "big red ball left"). `expand` turns it back."""
    return " ".join(TYPED[w] if w in TYPED and rng.random() < 0.5 else w for w in terse(caption).split())


def terse(caption: str) -> str:
    """A grammar caption as a user might type it: the articles and the place and relation phrases' small words
    dropped ("a large red circle on the left" -> "large red circle left"). `expand` turns it back."""
    return " ".join(w for w in caption.split() if w not in ("a", "on", "the", "at", "in", "of"))
