"""Scene graphs, procedural images, COCO-style captions and latent features (private).

Used by :mod:`brainllm_utils.synth` only. Everything is deterministic given the
``numpy.random.Generator`` passed in.

A *scene graph* is a plain JSON-able dict::

    {"scene": "park",
     "objects": [{"category": "dog", "count": 1, "colour": "brown", "size": "large",
                  "kind": None, "facing": 1, "boxes": [[x0, y0, x1, y1], ...]}, ...],
     "interaction": {"action": "chasing", "agent": 0, "patient": 1} or None,
     "horizon": 0.45}

Boxes are in image-normalised coordinates (0..1, origin top-left). Object 0 and 1 are
the agent and the patient when there is an interaction.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
from PIL import Image, ImageDraw

from .._utils.docs import fill_doc

# --------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------

#: name -> (real COCO 2017 category id, supercategory, box (w, h) at unit depth, nouns)
#: nouns: list of (singular, plural) synonyms.
CATEGORIES = {
    "person": (1, "person", (0.14, 0.40), None),  # nouns come from the person's kind
    "bicycle": (2, "vehicle", (0.26, 0.17), [("bicycle", "bicycles"), ("bike", "bikes")]),
    "car": (3, "vehicle", (0.34, 0.18), [("car", "cars"), ("sedan", "sedans"), ("vehicle", "vehicles")]),
    "bus": (6, "vehicle", (0.55, 0.30), [("bus", "buses"), ("city bus", "city buses")]),
    "boat": (9, "vehicle", (0.34, 0.22), [("boat", "boats"), ("sailboat", "sailboats")]),
    "bench": (15, "outdoor", (0.30, 0.13), [("bench", "benches"), ("park bench", "park benches")]),
    "bird": (16, "animal", (0.10, 0.08), [("bird", "birds"), ("songbird", "songbirds")]),
    "cat": (17, "animal", (0.16, 0.13), [("cat", "cats"), ("kitten", "kittens"), ("kitty", "kitties")]),
    "dog": (18, "animal", (0.22, 0.16), [("dog", "dogs"), ("puppy", "puppies"), ("pup", "pups")]),
    "horse": (19, "animal", (0.34, 0.30), [("horse", "horses"), ("pony", "ponies")]),
    "sheep": (20, "animal", (0.20, 0.15), [("sheep", "sheep"), ("lamb", "lambs")]),
    "cow": (21, "animal", (0.30, 0.22), [("cow", "cows"), ("cattle", "cattle")]),
    "umbrella": (28, "accessory", (0.20, 0.22), [("umbrella", "umbrellas"), ("parasol", "parasols")]),
    "frisbee": (34, "sports", (0.09, 0.04), [("frisbee", "frisbees"), ("flying disc", "flying discs")]),
    "sports ball": (37, "sports", (0.06, 0.06), [("ball", "balls"), ("soccer ball", "soccer balls")]),
    "kite": (38, "sports", (0.10, 0.14), [("kite", "kites")]),
    "banana": (52, "food", (0.09, 0.05), [("banana", "bananas")]),
    "apple": (53, "food", (0.06, 0.06), [("apple", "apples")]),
    "pizza": (59, "food", (0.15, 0.07), [("pizza", "pizzas"), ("slice of pizza", "slices of pizza")]),
    "cake": (61, "food", (0.12, 0.10), [("cake", "cakes"), ("birthday cake", "birthday cakes")]),
    "chair": (62, "furniture", (0.14, 0.20), [("chair", "chairs"), ("seat", "seats")]),
    "couch": (63, "furniture", (0.45, 0.20), [("couch", "couches"), ("sofa", "sofas")]),
    "potted plant": (64, "furniture", (0.12, 0.20), [("potted plant", "potted plants"), ("house plant", "house plants")]),
    "dining table": (67, "furniture", (0.40, 0.18), [("table", "tables"), ("dining table", "dining tables")]),
}
CATEGORY_NAMES = list(CATEGORIES)
ANIMATE = {"person", "dog", "cat", "horse", "sheep", "cow", "bird"}
FLYING = {"bird", "kite"}
VEHICLES = {"car", "bus", "bicycle", "boat"}

PERSON_KINDS = {
    "man": [("man", "men"), ("guy", "guys"), ("person", "people")],
    "woman": [("woman", "women"), ("lady", "ladies"), ("person", "people")],
    "child": [("child", "children"), ("kid", "kids"), ("young child", "young children")],
}

#: attribute colours per category family (word -> RGB)
COLOURS = {
    "animal": {"brown": (120, 75, 35), "black": (30, 30, 30), "white": (235, 235, 230),
               "grey": (128, 128, 128), "golden": (215, 160, 60)},
    "thing": {"red": (200, 30, 30), "blue": (30, 60, 200), "green": (40, 150, 50),
              "yellow": (235, 205, 40), "white": (240, 240, 240), "black": (25, 25, 25),
              "orange": (240, 130, 20), "pink": (235, 120, 170)},
    "food": {"fresh": (225, 180, 60), "tasty": (215, 120, 40)},
    "plant": {"green": (40, 140, 50), "leafy": (70, 170, 60)},
}
CATEGORY_COLOURS = {c: ("animal" if c in ANIMATE - {"person"} else "thing") for c in CATEGORIES}
CATEGORY_COLOURS.update({"banana": "food", "apple": "food", "pizza": "food", "cake": "food",
                         "potted plant": "plant"})
FIXED_FOOD_RGB = {"banana": (240, 210, 50), "apple": (200, 30, 30), "pizza": (225, 170, 70),
                  "cake": (245, 225, 235)}
SIZES = {"small": 0.75, "medium": 1.0, "large": 1.3}
SKIN = (225, 180, 140)

SCENES = {
    "street": dict(sky=(150, 190, 235), ground=(80, 80, 85), texture="road",
                   cats={"person": 4, "car": 4, "bus": 3, "bicycle": 3, "dog": 2, "bench": 2, "umbrella": 2, "bird": 1},
                   loc=["on a city street", "in the street", "near a busy road", "on the sidewalk"],
                   intro=["On a city street", "In the street", "Near the road"],
                   noun=["A city street", "An urban street", "A busy road"]),
    "kitchen": dict(sky=(235, 225, 200), ground=(200, 200, 205), texture="tiles",
                    cats={"person": 4, "cat": 2, "dining table": 3, "chair": 2, "pizza": 3, "cake": 3, "banana": 2, "apple": 2, "dog": 1},
                    loc=["in a kitchen", "in the kitchen", "in a home kitchen"],
                    intro=["In a kitchen", "Inside the kitchen"],
                    noun=["A kitchen", "A small kitchen", "A bright kitchen"]),
    "beach": dict(sky=(120, 180, 240), ground=(230, 210, 160), texture="sand",
                  cats={"person": 4, "dog": 3, "kite": 3, "umbrella": 3, "frisbee": 2, "sports ball": 2, "bird": 2, "boat": 1},
                  loc=["on the beach", "on a sandy beach", "by the ocean", "near the shore"],
                  intro=["On the beach", "At the beach"],
                  noun=["A sandy beach", "A sunny beach"]),
    "field": dict(sky=(140, 195, 240), ground=(150, 185, 70), texture="grass",
                  cats={"horse": 4, "sheep": 4, "cow": 4, "dog": 2, "person": 3, "bird": 2, "kite": 1},
                  loc=["in a grassy field", "in a field", "on a pasture", "in an open meadow"],
                  intro=["In a field", "Out in the pasture"],
                  noun=["A grassy field", "An open field", "A green pasture"]),
    "park": dict(sky=(135, 190, 235), ground=(70, 160, 70), texture="park",
                 cats={"person": 4, "dog": 3, "bench": 3, "frisbee": 2, "sports ball": 2, "bicycle": 2, "bird": 2, "kite": 1, "cat": 1},
                 loc=["in the park", "in a city park", "on the grass in a park"],
                 intro=["In the park", "At a park"],
                 noun=["A park", "A green park", "A public park"]),
    "living room": dict(sky=(210, 190, 160), ground=(150, 100, 60), texture="planks",
                        cats={"person": 4, "cat": 3, "dog": 3, "couch": 3, "chair": 2, "potted plant": 2, "cake": 1},
                        loc=["in a living room", "inside a living room", "in the lounge"],
                        intro=["In the living room", "Inside a home"],
                        noun=["A living room", "A cozy living room"]),
    "lake": dict(sky=(160, 200, 240), ground=(50, 100, 170), texture="water",
                 cats={"boat": 5, "bird": 3, "person": 3, "dog": 1, "umbrella": 1},
                 loc=["on a lake", "on the water", "by a calm lake"],
                 intro=["On the lake", "Out on the water"],
                 noun=["A lake", "A calm lake"]),
}
SCENE_NAMES = list(SCENES)

_FOOD = {"pizza", "cake", "banana", "apple"}
_PETS = {"dog", "cat", "bird"}
#: action -> agents, patients, glyph, verb forms; ``reversible``: valid with swapped roles.
ACTIONS = {
    "chasing": dict(agents={"dog", "cat", "person", "horse", "sheep", "bird"},
                    patients={"dog", "cat", "person", "bird", "sheep", "sports ball", "frisbee"},
                    ing=["chasing", "running after", "going after"], s=["chases", "runs after"],
                    passive=["being chased by", "chased by"], reversible=True),
    "looking at": dict(agents=set(ANIMATE), patients=set(CATEGORIES),
                       ing=["looking at", "watching", "staring at"], s=["looks at", "watches"],
                       passive=["being watched by", "watched by"], reversible=True),
    "riding": dict(agents={"person"}, patients={"horse", "bicycle"},
                   ing=["riding"], s=["rides"], passive=["being ridden by", "ridden by"], reversible=False),
    "eating": dict(agents={"person", "dog", "horse", "cow", "sheep"}, patients=set(_FOOD),
                   ing=["eating", "munching on", "biting into"], s=["eats"],
                   passive=["being eaten by"], reversible=False),
    "holding": dict(agents={"person"}, patients={"umbrella", "kite", "frisbee", "sports ball", "cat", "bird", "apple", "banana", "pizza", "cake"},
                    ing=["holding", "holding onto", "grasping"], s=["holds"],
                    passive=["held by", "being held by"], reversible=False),
    "carrying": dict(agents={"person"}, patients={"dog", "cat", "umbrella", "chair", "cake", "pizza", "kite"},
                     ing=["carrying", "lugging"], s=["carries"], passive=["being carried by", "carried by"],
                     reversible=False),
    "pushing": dict(agents={"person", "dog"}, patients={"bicycle", "chair", "person", "sports ball", "dog"},
                    ing=["pushing", "shoving"], s=["pushes"], passive=["being pushed by", "pushed by"],
                    reversible=True),
    "sitting on": dict(agents={"person", "cat", "dog", "bird"}, patients={"bench", "chair", "couch"},
                       ing=["sitting on", "resting on"], s=["sits on"], passive=["occupied by"],
                       reversible=False),
}
ACTION_NAMES = list(ACTIONS)


def _action_pairs(action, reversible_only=False):
    spec = ACTIONS[action]
    pairs = [(a, p) for a in sorted(spec["agents"]) for p in sorted(spec["patients"]) if a != p]
    if reversible_only:
        pairs = [(a, p) for a, p in pairs if p in spec["agents"] and a in spec["patients"]]
    return pairs


# --------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------


def _pick(u, seq):
    """Element of ``seq`` chosen by a uniform number ``u`` in [0, 1) (fixed rng use)."""
    return seq[min(int(u * len(seq)), len(seq) - 1)]


def _weighted(rng, weights):
    keys = list(weights)
    cum = np.cumsum([weights[k] for k in keys], dtype=float)
    return keys[min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), len(keys) - 1)]


def _new_object(rng, category, count=1):
    u = rng.random(4)
    colour = _pick(u[0], list(COLOURS[CATEGORY_COLOURS[category]]))
    size = _pick(u[1], ["small"] * 3 + ["medium"] * 4 + ["large"] * 3)
    kind = _pick(u[2], ["man"] * 9 + ["woman"] * 8 + ["child"] * 3) if category == "person" else None
    return {"category": category, "count": int(count), "colour": colour, "size": size,
            "kind": kind, "facing": 1 if u[3] < 0.5 else -1, "boxes": []}


@fill_doc
def sample_scene_graph(rng, reversible=False):
    """Sample one scene graph (without boxes; see :func:`layout_scene`).

    Parameters
    ----------
    %(rng)s
    reversible : bool, default=False
        Force an interaction whose role-swapped version is also valid.

    Returns
    -------
    graph : dict
        A scene graph whose objects have empty ``boxes``.
    """
    scene = _weighted(rng, {s: 1.0 for s in SCENE_NAMES})
    cats = SCENES[scene]["cats"]
    objects, interaction = [], None
    if reversible or rng.random() < 0.6:
        pool = [a for a in ACTION_NAMES if ACTIONS[a]["reversible"]] if reversible else ACTION_NAMES
        action = pool[int(rng.integers(len(pool)))]
        pairs = _action_pairs(action, reversible_only=reversible)
        in_scene = [pr for pr in pairs if pr[0] in cats and pr[1] in cats]
        pairs = in_scene if in_scene and rng.random() < 0.8 else pairs
        agent, patient = pairs[int(rng.integers(len(pairs)))]
        objects = [_new_object(rng, agent), _new_object(rng, patient)]
        interaction = {"action": action, "agent": 0, "patient": 1}
    n_extra = int(rng.choice([0, 1, 2], p=[0.45, 0.4, 0.15])) if interaction else int(rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25]))
    used = {o["category"] for o in objects}
    for _ in range(n_extra):
        options = {c: w for c, w in cats.items() if c not in used}
        if not options:
            break
        cat = _weighted(rng, options)
        used.add(cat)
        count = int(rng.choice([1, 2, 3], p=[0.65, 0.25, 0.10]))
        objects.append(_new_object(rng, cat, count))
    return {"scene": scene, "objects": objects, "interaction": interaction,
            "horizon": float(rng.uniform(0.35, 0.55))}


@fill_doc
def reverse_roles(graph):
    """Copy of ``graph`` with agent and patient swapped (same objects, same layout).

    Parameters
    ----------
    %(graph)s
        It must have an interaction.

    Returns
    -------
    graph : dict
        A deep copy with roles swapped; when laid out, the new agent faces its patient.
    """
    out = copy.deepcopy(graph)
    inter = out["interaction"]
    inter["agent"], inter["patient"] = inter["patient"], inter["agent"]
    _face_patient(out)
    return out


def _face_patient(graph):
    inter = graph["interaction"]
    if inter is None:
        return
    a, p = graph["objects"][inter["agent"]], graph["objects"][inter["patient"]]
    if a["boxes"] and p["boxes"]:
        ax = np.mean(a["boxes"][0][::2])
        px = np.mean(p["boxes"][0][::2])
        a["facing"] = 1 if px >= ax else -1
        if inter["action"] in ("chasing",):
            p["facing"] = a["facing"]  # the chased one runs away


def _box_at(cx, foot, w, h):
    return [cx - w / 2, foot - h, cx + w / 2, foot]


def _base_dims(obj, foot, horizon):
    w, h = CATEGORIES[obj["category"]][2]
    depth = 0.6 + 0.8 * (foot - horizon) / max(1 - horizon, 1e-3)
    s = SIZES[obj["size"]] * (depth if obj["category"] not in FLYING else 1.0)
    if obj["category"] == "person" and obj["kind"] == "child":
        s *= 0.7
    return w * s, h * s


@fill_doc
def layout_scene(rng, graph):
    """Fill ``boxes`` (one per instance) for every object, in place; returns ``graph``.

    Parameters
    ----------
    %(rng)s
    %(graph)s

    Returns
    -------
    graph : dict
        The same dict, with boxes in image-normalised coordinates.
    """
    hz = graph["horizon"]
    inter = graph["interaction"]
    placed = set()
    if inter is not None:
        _layout_interaction(rng, graph)
        placed = {inter["agent"], inter["patient"]}
    for i, obj in enumerate(graph["objects"]):
        if i in placed:
            continue
        fly = obj["category"] in FLYING
        foot = rng.uniform(0.12, hz) if fly else rng.uniform(hz + 0.08, 0.97)
        w, h = _base_dims(obj, foot, hz)
        cx = rng.uniform(0.1, 0.9)
        boxes = []
        for k in range(obj["count"]):
            dx = (k - (obj["count"] - 1) / 2) * w * 1.15
            dy = rng.uniform(-0.02, 0.02)
            boxes.append(_box_at(cx + dx, min(foot + dy, 0.99), w, h))
        obj["boxes"] = boxes
    _face_patient(graph)
    return graph


def _layout_interaction(rng, graph):
    hz = graph["horizon"]
    inter = graph["interaction"]
    a, p = graph["objects"][inter["agent"]], graph["objects"][inter["patient"]]
    action = inter["action"]
    foot = rng.uniform(hz + 0.2, 0.95)
    aw, ah = _base_dims(a, foot, hz)
    pw, ph = _base_dims(p, foot, hz)
    side = 1 if rng.random() < 0.5 else -1  # patient to the right (1) or left of agent
    cx = rng.uniform(0.35, 0.65)
    if action in ("riding", "sitting on"):
        p_box = _box_at(cx, foot, pw, ph)
        a_box = _box_at(cx, foot - 0.55 * ph, aw, ah)
    elif action in ("holding", "carrying", "eating"):
        scale = min(1.0, 0.45 * ah / max(ph, 1e-3))
        pw, ph = pw * scale, ph * scale
        a_box = _box_at(cx, foot, aw, ah)
        lift = {"holding": 0.45, "carrying": 0.6, "eating": 0.75}[action]
        p_box = _box_at(cx + side * (aw / 2 + pw / 3), foot - lift * ah + ph / 2, pw, ph)
    else:
        gap = {"chasing": 0.08, "looking at": 0.18, "pushing": 0.0}[action]
        span = aw / 2 + pw / 2 + gap
        a_box = _box_at(cx - side * span / 2, foot, aw, ah)
        pfoot = foot if p["category"] not in FLYING else rng.uniform(0.15, hz)
        p_box = _box_at(cx + side * span / 2, pfoot, pw, ph)
    a["boxes"], p["boxes"] = [a_box], [p_box]


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------

# Primitives in box-normalised coordinates for an object facing right (+x).
# (kind, coords, colour key[, width]) ; colour keys: main, dark, light, skin or an RGB tuple.
_BLACK, _WHITE = (20, 20, 20), (245, 245, 245)
SHAPES = {
    "person": [("rect", (0.25, 0.62, 0.45, 1.0), "dark"), ("rect", (0.55, 0.62, 0.75, 1.0), "dark"),
               ("rect", (0.2, 0.22, 0.8, 0.64), "main"), ("ellipse", (0.3, 0.0, 0.7, 0.23), "skin"),
               ("line", (0.55, 0.3, 1.0, 0.45), "main", 0.12), ("ellipse", (0.58, 0.07, 0.66, 0.12), _BLACK)],
    "dog": [("rect", (0.2, 0.55, 0.3, 1.0), "dark"), ("rect", (0.62, 0.55, 0.72, 1.0), "dark"),
            ("ellipse", (0.12, 0.3, 0.8, 0.72), "main"), ("line", (0.15, 0.4, 0.0, 0.1), "main", 0.08),
            ("ellipse", (0.68, 0.08, 1.0, 0.46), "main"), ("poly", ((0.7, 0.1), (0.78, 0.45), (0.66, 0.4)), "dark"),
            ("ellipse", (0.86, 0.18, 0.91, 0.24), _BLACK)],
    "cat": [("rect", (0.2, 0.7, 0.28, 1.0), "dark"), ("rect", (0.6, 0.7, 0.68, 1.0), "dark"),
            ("ellipse", (0.1, 0.45, 0.75, 0.82), "main"), ("line", (0.12, 0.55, 0.02, 0.05), "main", 0.06),
            ("ellipse", (0.62, 0.18, 0.95, 0.55), "main"),
            ("poly", ((0.64, 0.28), (0.68, 0.0), (0.76, 0.22)), "main"),
            ("poly", ((0.82, 0.22), (0.9, 0.0), (0.94, 0.3)), "main"),
            ("ellipse", (0.84, 0.3, 0.89, 0.36), (60, 160, 60))],
    "horse": [("rect", (0.15, 0.55, 0.22, 1.0), "dark"), ("rect", (0.3, 0.55, 0.37, 1.0), "dark"),
              ("rect", (0.6, 0.55, 0.67, 1.0), "dark"), ("rect", (0.72, 0.55, 0.79, 1.0), "dark"),
              ("ellipse", (0.08, 0.3, 0.82, 0.66), "main"),
              ("poly", ((0.66, 0.42), (0.8, 0.05), (0.92, 0.1), (0.82, 0.48)), "main"),
              ("ellipse", (0.78, 0.0, 1.0, 0.2), "main"), ("line", (0.7, 0.38, 0.82, 0.02), "dark", 0.05),
              ("line", (0.09, 0.4, 0.0, 0.75), "dark", 0.06)],
    "sheep": [("rect", (0.22, 0.6, 0.3, 1.0), _BLACK), ("rect", (0.6, 0.6, 0.68, 1.0), _BLACK),
              ("ellipse", (0.05, 0.25, 0.45, 0.7), "light"), ("ellipse", (0.3, 0.15, 0.7, 0.65), "light"),
              ("ellipse", (0.45, 0.25, 0.85, 0.72), "light"), ("ellipse", (0.74, 0.2, 1.0, 0.52), _BLACK)],
    "cow": [("rect", (0.15, 0.6, 0.24, 1.0), "dark"), ("rect", (0.62, 0.6, 0.71, 1.0), "dark"),
            ("rect", (0.08, 0.25, 0.8, 0.68), "main"), ("ellipse", (0.2, 0.3, 0.4, 0.5), _BLACK),
            ("ellipse", (0.5, 0.4, 0.68, 0.6), _BLACK), ("rect", (0.76, 0.15, 1.0, 0.48), "main"),
            ("line", (0.8, 0.15, 0.76, 0.0), _WHITE, 0.04), ("line", (0.96, 0.15, 1.0, 0.0), _WHITE, 0.04),
            ("ellipse", (0.86, 0.36, 1.0, 0.48), (230, 160, 160))],
    "bird": [("ellipse", (0.15, 0.35, 0.8, 0.8), "main"), ("ellipse", (0.6, 0.12, 0.95, 0.5), "main"),
             ("poly", ((0.93, 0.25), (1.0, 0.33), (0.92, 0.4)), (240, 150, 20)),
             ("poly", ((0.3, 0.5), (0.5, 0.0), (0.62, 0.55)), "dark"),
             ("poly", ((0.18, 0.5), (0.0, 0.35), (0.02, 0.7)), "dark")],
    "car": [("rect", (0.0, 0.35, 1.0, 0.8), "main"),
            ("poly", ((0.18, 0.36), (0.3, 0.04), (0.7, 0.04), (0.84, 0.36)), "main"),
            ("rect", (0.33, 0.1, 0.48, 0.34), (170, 210, 240)), ("rect", (0.52, 0.1, 0.68, 0.34), (170, 210, 240)),
            ("ellipse", (0.1, 0.62, 0.34, 1.0), _BLACK), ("ellipse", (0.66, 0.62, 0.9, 1.0), _BLACK),
            ("rect", (0.94, 0.45, 1.0, 0.55), (250, 240, 150))],
    "bus": [("rect", (0.0, 0.0, 1.0, 0.86), "main"), ("rect", (0.04, 0.1, 0.2, 0.4), (170, 210, 240)),
            ("rect", (0.24, 0.1, 0.4, 0.4), (170, 210, 240)), ("rect", (0.44, 0.1, 0.6, 0.4), (170, 210, 240)),
            ("rect", (0.64, 0.1, 0.8, 0.4), (170, 210, 240)), ("rect", (0.85, 0.1, 0.98, 0.75), "dark"),
            ("ellipse", (0.1, 0.72, 0.26, 1.0), _BLACK), ("ellipse", (0.7, 0.72, 0.86, 1.0), _BLACK)],
    "bicycle": [("ellipse", (0.0, 0.4, 0.4, 1.0), None, 0.08), ("ellipse", (0.6, 0.4, 1.0, 1.0), None, 0.08),
                ("line", (0.2, 0.7, 0.5, 0.7), "main", 0.07), ("line", (0.5, 0.7, 0.8, 0.7), "main", 0.07),
                ("line", (0.5, 0.7, 0.38, 0.25), "main", 0.07), ("line", (0.38, 0.25, 0.78, 0.3), "main", 0.07),
                ("line", (0.78, 0.3, 0.8, 0.7), "main", 0.07), ("line", (0.78, 0.3, 0.85, 0.05), _BLACK, 0.06),
                ("rect", (0.28, 0.18, 0.46, 0.25), _BLACK)],
    "boat": [("line", (0.5, 0.0, 0.5, 0.62), "dark", 0.05), ("poly", ((0.53, 0.04), (0.53, 0.58), (0.92, 0.58)), _WHITE),
             ("poly", ((0.0, 0.6), (1.0, 0.6), (0.85, 1.0), (0.15, 1.0)), "main")],
    "bench": [("rect", (0.05, 0.55, 0.12, 1.0), "dark"), ("rect", (0.88, 0.55, 0.95, 1.0), "dark"),
              ("rect", (0.0, 0.45, 1.0, 0.6), "main"), ("rect", (0.0, 0.05, 1.0, 0.18), "main"),
              ("rect", (0.0, 0.24, 1.0, 0.36), "main"), ("rect", (0.1, 0.0, 0.16, 0.45), "dark"),
              ("rect", (0.84, 0.0, 0.9, 0.45), "dark")],
    "chair": [("rect", (0.1, 0.0, 0.28, 0.58), "main"), ("rect", (0.1, 0.45, 0.9, 0.6), "main"),
              ("rect", (0.1, 0.6, 0.2, 1.0), "dark"), ("rect", (0.8, 0.6, 0.9, 1.0), "dark")],
    "couch": [("rect", (0.05, 0.0, 0.95, 0.5), "dark"), ("rect", (0.0, 0.4, 1.0, 0.85), "main"),
              ("rect", (0.0, 0.2, 0.12, 0.85), "main"), ("rect", (0.88, 0.2, 1.0, 0.85), "main"),
              ("rect", (0.05, 0.85, 0.1, 1.0), _BLACK), ("rect", (0.9, 0.85, 0.95, 1.0), _BLACK)],
    "dining table": [("rect", (0.05, 0.12, 0.12, 1.0), "dark"), ("rect", (0.88, 0.12, 0.95, 1.0), "dark"),
                     ("rect", (0.0, 0.0, 1.0, 0.16), "main"), ("rect", (0.0, 0.16, 1.0, 0.3), "light")],
    "potted plant": [("ellipse", (0.0, 0.0, 0.7, 0.55), "main"), ("ellipse", (0.3, 0.1, 1.0, 0.65), "main"),
                     ("ellipse", (0.15, 0.3, 0.85, 0.7), "dark"),
                     ("poly", ((0.25, 0.6), (0.75, 0.6), (0.68, 1.0), (0.32, 1.0)), (190, 95, 50))],
    "umbrella": [("line", (0.5, 0.35, 0.5, 1.0), _BLACK, 0.06), ("pieslice", (0.0, 0.0, 1.0, 0.7), "main"),
                 ("line", (0.5, 0.0, 0.5, 0.35), "dark", 0.04)],
    "kite": [("line", (0.5, 0.7, 0.45, 1.0), _BLACK, 0.04),
             ("poly", ((0.5, 0.0), (1.0, 0.33), (0.5, 0.7), (0.0, 0.33)), "main"),
             ("line", (0.5, 0.0, 0.5, 0.7), "dark", 0.05), ("line", (0.0, 0.33, 1.0, 0.33), "dark", 0.05)],
    "frisbee": [("ellipse", (0.0, 0.1, 1.0, 0.9), "main"), ("ellipse", (0.25, 0.3, 0.75, 0.7), "light")],
    "sports ball": [("ellipse", (0.0, 0.0, 1.0, 1.0), _WHITE), ("poly", ((0.5, 0.3), (0.7, 0.45), (0.62, 0.7), (0.38, 0.7), (0.3, 0.45)), _BLACK)],
    "banana": [("arc", (0.0, -0.9, 1.0, 1.0), "food", 0.35)],
    "apple": [("ellipse", (0.0, 0.15, 1.0, 1.0), "food"), ("line", (0.5, 0.2, 0.55, 0.0), (100, 60, 20), 0.12),
              ("ellipse", (0.55, 0.0, 0.85, 0.15), (60, 160, 50))],
    "pizza": [("ellipse", (0.0, 0.0, 1.0, 1.0), (200, 140, 60)), ("ellipse", (0.1, 0.1, 0.9, 0.9), (220, 80, 40)),
              ("ellipse", (0.25, 0.25, 0.4, 0.55), (150, 20, 20)), ("ellipse", (0.6, 0.35, 0.75, 0.7), (150, 20, 20))],
    "cake": [("rect", (0.0, 0.35, 1.0, 1.0), "food"), ("rect", (0.0, 0.6, 1.0, 0.7), (200, 80, 120)),
             ("rect", (0.0, 0.3, 1.0, 0.4), _WHITE), ("rect", (0.46, 0.05, 0.54, 0.3), (220, 40, 40)),
             ("ellipse", (0.44, -0.08, 0.56, 0.08), (250, 200, 30))],
}


def _shade(rgb, f):
    return tuple(min(255, max(0, int(c * f))) for c in rgb)


def _palette(obj):
    return _palette_for(obj["category"], obj["colour"])


@functools.lru_cache(maxsize=None)
def _palette_for(cat, colour):
    main = COLOURS[CATEGORY_COLOURS[cat]][colour]
    food = FIXED_FOOD_RGB.get(cat, main)
    return {"main": main, "dark": _shade(main, 0.55), "light": _shade(main, 1.0) if cat == "sheep" else _shade(main, 1.35),
            "skin": SKIN, "food": food, None: None}


def _to_px(box, coords, facing, W, H):
    x0, y0, x1, y1 = box
    out = []
    for x, y in zip(coords[::2], coords[1::2]):
        x = 1 - x if facing < 0 else x
        out.append((x0 + x * (x1 - x0)) * W)
        out.append((y0 + y * (y1 - y0)) * H)
    return out


def _draw_object(draw, obj, box, W, H):
    pal = _palette(obj)
    facing = obj["facing"]
    scale = max((box[2] - box[0]) * W, 2.0)
    for prim in SHAPES[obj["category"]]:
        kind, coords, ckey = prim[:3]
        col = pal[ckey] if not isinstance(ckey, tuple) else ckey
        width = max(1, int(round(prim[3] * scale))) if len(prim) > 3 else 1
        if kind == "poly":
            flat = [v for xy in coords for v in xy]
            draw.polygon(_to_px(box, flat, facing, W, H), fill=col)
            continue
        x0, y0, x1, y1 = _to_px(box, coords, facing, W, H)
        if kind == "line":
            draw.line((x0, y0, x1, y1), fill=col, width=width)
            continue
        rect = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        if rect[2] - rect[0] < 1 or rect[3] - rect[1] < 1:
            continue
        if kind == "rect":
            draw.rectangle(rect, fill=col)
        elif kind == "ellipse":
            draw.ellipse(rect, fill=col, outline=_BLACK if col is None else None, width=width if col is None else 1)
        elif kind == "pieslice":
            draw.pieslice(rect, 180, 360, fill=col)
        elif kind == "arc":
            draw.arc(rect, 20, 160, fill=col, width=width)


_N_TEXTURES = 4


@functools.lru_cache(maxsize=64)
def _texture(kind, H, W, variant):
    """Multiplicative ground texture (H, W, 1) float32 for a scene's texture kind."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    phase = variant * np.pi / 2
    tex = np.ones((H, W), np.float32)
    if kind == "tiles":
        step = max(W // 8, 2)
        tex[((xx // step) + (yy // step + variant)) % 2 == 0] = 0.75
    elif kind == "sand":
        tex += np.random.default_rng(variant).normal(0, 0.06, (H, W)).astype(np.float32)
    elif kind in ("grass", "park"):
        tex += 0.12 * np.sin(yy * 1.3 + phase)
    elif kind == "planks":
        tex[(yy.astype(int) + variant) % max(H // 12, 2) == 0] = 0.6
    elif kind == "water":
        tex[np.sin(xx * 0.5 + yy * 2.0 + phase) > 0.85] = 1.35
    tex.setflags(write=False)
    return tex[:, :, None]


def _background(rng, graph, H, W):
    """Sky gradient over a textured ground, (H, W, 3) uint8 (scene decorations: see
    :func:`_decorate`)."""
    spec = SCENES[graph["scene"]]
    hz = max(1, int(graph["horizon"] * H))
    jitter = rng.uniform(-18, 18, size=(2, 3)).astype(np.float32)
    tex = _texture(spec["texture"], H, W, int(rng.random() * _N_TEXTURES))
    img = np.empty((H, W, 3), np.float32)
    img[:hz] = (np.asarray(spec["sky"], np.float32) + jitter[0]) * np.linspace(1.1, 0.9, hz, dtype=np.float32)[:, None, None]
    img[hz:] = (np.asarray(spec["ground"], np.float32) + jitter[1]) * tex[hz:]
    img += rng.normal(0, 4, size=(H, W, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _decorate(rng, draw, graph, H, W):
    """Scene-typical background objects (buildings, trees, sea, window, lane marks...)."""
    tex = SCENES[graph["scene"]]["texture"]
    hz = max(1, int(graph["horizon"] * H))
    u = rng.random(8)
    if tex == "road":
        for k, bx in enumerate(range(0, W, max(W // 6, 1))):
            g = int(110 + 80 * u[k % 8])
            draw.rectangle((bx, hz - (0.1 + 0.2 * u[(k + 3) % 8]) * H, bx + W // 7, hz - 1), fill=(g, g, g + 10))
        y = hz + (H - hz) * 0.6
        dash = max(W // 8, 2)
        for x in range(int(-u[0] * dash), W, 2 * dash):
            draw.rectangle((x, y - max(1, H // 64), x + dash, y + max(1, H // 64)), fill=(240, 240, 240))
    elif tex == "tiles":
        draw.rectangle((0, hz - H // 8, W, hz - 1), fill=(170, 140, 100))  # counter
    elif tex == "sand":
        draw.rectangle((0, hz, W, hz + H // 10), fill=(60, 120, 190))  # sea
    elif tex == "park":
        r = W / 10
        for tx in u[:3] * W:
            draw.rectangle((tx - max(W // 48, 1), hz - r, tx + max(W // 48, 1), hz), fill=(100, 70, 40))
            draw.ellipse((tx - r, hz - 2.2 * r, tx + r, hz - 0.2 * r), fill=(40, 110, 40))
    elif tex == "grass":
        pts = [(x, hz - (H / 12) * (1 + np.sin(x / W * 6 + u[0] * 6))) for x in np.linspace(0, W, 12)]
        draw.polygon(pts + [(W, hz), (0, hz)], fill=(110, 150, 90))  # hills
    elif tex == "planks":
        wx = u[0] * 0.5 * W + 0.1 * W
        draw.rectangle((wx, H // 10, wx + W // 4, max(hz - H // 10, H // 10 + 1)), fill=(190, 220, 250))
    elif tex == "water":
        draw.rectangle((0, hz, W, hz + H // 20), fill=(70, 130, 70))  # far shore


def _draw_glyph(draw, graph, W, H):
    inter = graph["interaction"]
    if inter is None:
        return
    a = graph["objects"][inter["agent"]]
    p = graph["objects"][inter["patient"]]
    ab, pb = a["boxes"][0], p["boxes"][0]
    f = a["facing"]
    lw = max(1, W // 64)
    action = inter["action"]
    if action == "chasing":  # motion lines behind the agent
        back = ab[0] if f > 0 else ab[2]
        for k in range(3):
            y = (ab[1] + (ab[3] - ab[1]) * (0.3 + 0.2 * k)) * H
            draw.line((back * W, y, (back - f * 0.08) * W, y), fill=_WHITE, width=lw)
    elif action == "looking at":  # dashed gaze line from the agent's head
        hx, hy = (ab[2] if f > 0 else ab[0]) * W, (ab[1] + 0.12 * (ab[3] - ab[1])) * H
        tx, ty = (pb[0] + pb[2]) / 2 * W, (pb[1] + pb[3]) / 2 * H
        for k in range(0, 10, 2):
            draw.line((hx + (tx - hx) * k / 10, hy + (ty - hy) * k / 10,
                       hx + (tx - hx) * (k + 1) / 10, hy + (ty - hy) * (k + 1) / 10), fill=(250, 230, 40), width=lw)
    elif action == "pushing":  # arrow into the patient
        y = (ab[1] + ab[3]) / 2 * H
        x0 = (ab[2] if f > 0 else ab[0]) * W
        x1 = x0 + f * 0.1 * W
        draw.line((x0, y, x1, y), fill=(230, 30, 30), width=lw * 2)
        draw.polygon([(x1, y - 3 * lw), (x1 + f * 4 * lw, y), (x1, y + 3 * lw)], fill=(230, 30, 30))
    elif action in ("holding", "carrying"):  # arm reaching the patient
        sx, sy = (ab[0] + ab[2]) / 2 * W, (ab[1] + 0.3 * (ab[3] - ab[1])) * H
        draw.line((sx, sy, (pb[0] + pb[2]) / 2 * W, (pb[1] + pb[3]) / 2 * H), fill=SKIN, width=lw * 2)
    elif action == "eating":  # crumbs between mouth and food
        for k in range(3):
            cx = ((pb[0] + pb[2]) / 2 + 0.02 * (k - 1)) * W
            cy = (pb[3] + 0.02 * (k + 1)) * H
            draw.ellipse((cx - lw, cy - lw, cx + lw, cy + lw), fill=(120, 70, 20))


@fill_doc
def render_image(rng, graph, H, W):
    """Render ``graph`` (with boxes) into an (H, W, 3) uint8 array.

    Parameters
    ----------
    %(rng)s
        Draws the background texture and decorations.
    %(graph)s
        With boxes (:func:`layout_scene`).
    H, W : int
        Height and width in pixels.

    Returns
    -------
    image : ndarray of uint8 of shape (H, W, 3)
        RGB image.
    """
    img = Image.fromarray(_background(rng, graph, H, W))
    draw = ImageDraw.Draw(img)
    _decorate(rng, draw, graph, H, W)
    inter = graph["interaction"]
    order = sorted(range(len(graph["objects"])), key=lambda i: graph["objects"][i]["boxes"][0][3])
    if inter is not None and inter["action"] in ("riding", "sitting on"):
        order = [i for i in order if i != inter["agent"]] + [inter["agent"]]
    for i in order:
        obj = graph["objects"][i]
        for box in obj["boxes"]:
            _draw_object(draw, obj, box, W, H)
    _draw_glyph(draw, graph, W, H)
    return np.asarray(img)


# --------------------------------------------------------------------------------------
# Captions
# --------------------------------------------------------------------------------------

_COUNT_WORDS = {2: ["two", "a couple of", "a pair of"], 3: ["three", "a few", "several"]}
_WITH_INTER = [
    "{A} {ing} {P} {loc}{O}.",
    "{Intro}, {A} is {ing} {P}{O}.",
    "{P} is {passive} {A} {loc}.",
    "There is {A} {ing} {P} {loc}.",
    "{A} {s} {P} {loc}{O}.",
    "A photo of {A} {ing} {P}{O}.",
    "{Noun} with {A} {ing} {P}.",
    "{A} is {ing} {P}{O}.",
]
_NO_INTER = [
    "{L} {loc}.",
    "{Intro}, there {be} {L}.",
    "A view of {noun} with {L}.",
    "{L} {pose} {loc}.",
    "An image of {L} {loc}.",
    "{Noun} with {L} in it.",
    "There {be} {L} {loc}.",
    "{L} can be seen {loc}.",
]
N_TEMPLATES = len(_WITH_INTER) + len(_NO_INTER)
_N_SLOTS = 24


def _article(phrase):
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _noun_phrase(obj, u):
    """Noun phrase for ``obj`` from three uniforms ``u`` (synonym, colour, size)."""
    nouns = PERSON_KINDS[obj["kind"]] if obj["category"] == "person" else CATEGORIES[obj["category"]][3]
    sing, plur = _pick(u[0], nouns)
    words = []
    if obj["size"] != "medium" and u[2] < 0.35:
        words.append(obj["size"])
    if obj["category"] != "person" and u[1] < 0.5:
        words.append(obj["colour"])
    elif obj["category"] == "person" and u[1] < 0.3:
        words.append(f"in {obj['colour']}")
    if obj["category"] == "person" and words and words[-1].startswith("in "):
        noun_part = " ".join(words[:-1] + [sing if obj["count"] == 1 else plur]) + " " + words[-1]
    else:
        noun_part = " ".join(words + [sing if obj["count"] == 1 else plur])
    if obj["count"] == 1:
        return _article(noun_part)
    return f"{_pick(u[1], _COUNT_WORDS[min(obj['count'], 3)])} {noun_part}"


def _join(phrases):
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _caption(graph, template_index, u):
    spec = SCENES[graph["scene"]]
    objs = graph["objects"]
    nps = [_noun_phrase(o, u[10 + 3 * i: 13 + 3 * i]) for i, o in enumerate(objs[:4])]
    fields = {"loc": _pick(u[1], spec["loc"]), "Intro": _pick(u[2], spec["intro"]),
              "Noun": _pick(u[3], spec["noun"])}
    fields["noun"] = fields["Noun"][0].lower() + fields["Noun"][1:]
    inter = graph["interaction"]
    if inter is not None:
        act = ACTIONS[inter["action"]]
        others = [nps[i] for i in range(len(nps)) if i not in (inter["agent"], inter["patient"])]
        connector = _pick(u[7], [" with {} nearby", " next to {}", " near {}"])
        fields.update(A=nps[inter["agent"]], P=nps[inter["patient"]], ing=_pick(u[4], act["ing"]),
                      s=_pick(u[4], act["s"]), passive=_pick(u[5], act["passive"]),
                      O=connector.format(_join(others)) if others and u[6] < 0.5 else "")
        text = _WITH_INTER[template_index].format(**fields)
    else:
        first = objs[0]
        pose = ("standing" if first["category"] in ANIMATE else
                "parked" if first["category"] in VEHICLES else "placed")
        fields.update(L=_join(nps), be="is" if first["count"] == 1 else "are",
                      pose=_pick(u[8], [pose, pose, "shown"]) if first["category"] in ANIMATE else pose)
        text = _NO_INTER[template_index].format(**fields)
    return text[0].upper() + text[1:]


_N_WITH = len(_WITH_INTER)
#: number of uniforms :func:`make_captions` consumes per image
CAPTION_RANDOMS = _N_WITH + 1 + _N_WITH * _N_SLOTS


def make_captions(graph, u, n_max: int | None = None):
    """Five (sometimes six) COCO-style captions for ``graph``.

    Parameters
    ----------
    graph : dict
        Scene graph with layout.
    u : ndarray of float of shape (CAPTION_RANDOMS,)
        Uniforms in [0, 1): all the randomness used. Two graphs that differ only in roles,
        given the same ``u``, get captions that differ only in who does what to whom.
    n_max : int, optional
        Keep only the first ``n_max`` captions (the same ones, whatever ``n_max``).

    Returns
    -------
    captions : list of str
        5 (sometimes 6) captions, at most ``n_max``.
    """
    order = np.argsort(u[:_N_WITH], kind="stable")
    n_caps = 6 if u[_N_WITH] < 0.05 else 5
    if n_max is not None:
        n_caps = min(n_caps, int(n_max))
    slots = np.asarray(u[_N_WITH + 1:]).reshape(_N_WITH, _N_SLOTS)
    return [_caption(graph, int(order[k]), slots[k]) for k in range(n_caps)]


# --------------------------------------------------------------------------------------
# Latent features
# --------------------------------------------------------------------------------------

FEATURE_SPACES = ("lowlevel", "category", "interaction", "layout")


def lowlevel_features(images, batch=512):
    """Low-level statistics of (n, H, W, 3) uint8 images: (n, 44) float32.

    Computed on a 4x box-reduced copy (H and W should be multiples of 32): coarse 4x4
    luminance grid (16), then per quadrant the mean RGB (3), luminance contrast (1),
    horizontal and vertical edge energy (2) and mean saturation (1).

    Parameters
    ----------
    images : array-like of uint8 of shape (n_images, H, W, 3)
        RGB images.
    batch : int, default=512
        Images processed at once.

    Returns
    -------
    features : ndarray of float32 of shape (n_images, 44)
        One row per image.
    """
    images = np.asarray(images)
    return np.concatenate([_lowlevel_batch(images[i:i + batch]) for i in range(0, len(images), batch)])


def _lowlevel_batch(images):
    n = images.shape[0]
    x = np.stack([np.asarray(Image.fromarray(im).reduce(4)) for im in images]).astype(np.float32) / 255.0
    lum = x @ np.array([0.299, 0.587, 0.114], np.float32)
    h, w = lum.shape[1:]
    feats = [lum.reshape(n, 4, h // 4, 4, w // 4).mean(axis=(2, 4)).reshape(n, 16)]
    gx = np.abs(np.diff(lum, axis=2))[:, :-1, :]
    gy = np.abs(np.diff(lum, axis=1))[:, :, :-1]
    sat = x.max(axis=3) - x.min(axis=3)
    for qy in (slice(0, h // 2), slice(h // 2, None)):
        for qx in (slice(0, w // 2), slice(w // 2, None)):
            feats.append(x[:, qy, qx].mean(axis=(1, 2)))
            feats += [a[:, qy, qx].reshape(n, -1)[:, :, None].mean(axis=1) if k else
                      a[:, qy, qx].reshape(n, -1).std(axis=1, keepdims=True)
                      for k, a in enumerate((lum, gx, gy, sat))]
    return np.concatenate(feats, axis=1).astype(np.float32)


@fill_doc
def category_features(graph):
    """Multi-hot (n_categories) followed by instance counts (n_categories).

    Parameters
    ----------
    %(graph)s

    Returns
    -------
    features : ndarray of float32 of shape (2 * n_categories,)
        Presence of each category, then its number of instances.
    """
    n = len(CATEGORY_NAMES)
    out = np.zeros(2 * n, np.float32)
    for obj in graph["objects"]:
        j = CATEGORY_NAMES.index(obj["category"])
        out[j] = 1.0
        out[n + j] += obj["count"]
    return out


#: fixed dense codes (not tied to the sandbox seed) for the role-bound interaction space
_CODES = np.random.default_rng(20250101)
CATEGORY_CODES = _CODES.standard_normal((len(CATEGORY_NAMES), 12)).astype(np.float32)
ACTION_CODES = _CODES.standard_normal((len(ACTION_NAMES), 6)).astype(np.float32)


@fill_doc
def interaction_features(graph):
    """Role-bound interaction code (152 values; zeros without an interaction).

    ``vec(c[agent] ⊗ a[action])`` (72), ``vec(c[patient] ⊗ a[action])`` (72) and the
    action one-hot (8), with fixed dense Gaussian codes ``c`` per category and ``a`` per
    action: swapping agent and patient changes the code, and the dimensions are dense
    enough for per-dimension z-scoring to stay well-behaved (sparse one-hot
    agent⊗action dimensions would blow up to z ≈ 1/sqrt(p)).

    Parameters
    ----------
    %(graph)s

    Returns
    -------
    features : ndarray of float32 of shape (152,)
        The role-bound code.
    """
    nc, na = CATEGORY_CODES.shape[1], ACTION_CODES.shape[1]
    out = np.zeros(2 * nc * na + len(ACTION_NAMES), np.float32)
    inter = graph["interaction"]
    if inter is None:
        return out
    ai = ACTION_NAMES.index(inter["action"])
    agent = CATEGORY_NAMES.index(graph["objects"][inter["agent"]]["category"])
    patient = CATEGORY_NAMES.index(graph["objects"][inter["patient"]]["category"])
    out[: nc * na] = np.outer(CATEGORY_CODES[agent], ACTION_CODES[ai]).ravel()
    out[nc * na: 2 * nc * na] = np.outer(CATEGORY_CODES[patient], ACTION_CODES[ai]).ravel()
    out[2 * nc * na + ai] = 1.0
    return out


@fill_doc
def layout_features(graph):
    """Coarse layout of a scene: where, how many and how large its objects are (16 values).

    3x3 area-weighted occupancy (9), n instances, mean/max box area, mean x, mean y,
    x spread, horizon height.

    Parameters
    ----------
    %(graph)s
        With boxes (:func:`layout_scene`).

    Returns
    -------
    features : ndarray of float32 of shape (16,)
        The layout summary.
    """
    occ = np.zeros((3, 3), np.float32)
    boxes = np.array([b for o in graph["objects"] for b in o["boxes"]], np.float32)
    b = np.clip(boxes, 0, 1)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    for x, y, a in zip(cx, cy, area):
        occ[min(int(y * 3), 2), min(int(x * 3), 2)] += a
    extra = [len(b), area.mean(), area.max(), cx.mean(), cy.mean(), cx.std(), graph["horizon"]]
    return np.concatenate([occ.ravel(), np.array(extra, np.float32)])


@fill_doc
def graph_features(graph):
    """Scene-graph feature spaces (all but ``lowlevel``) as a dict of 1-D arrays.

    Parameters
    ----------
    %(graph)s
        With boxes (:func:`layout_scene`).

    Returns
    -------
    features : dict of str to ndarray of float32
        ``category`` (:func:`category_features`), ``interaction``
        (:func:`interaction_features`) and ``layout`` (:func:`layout_features`).
    """
    return {"category": category_features(graph), "interaction": interaction_features(graph),
            "layout": layout_features(graph)}


# --------------------------------------------------------------------------------------
# Caption variety (opt-in: real COCO captions are not tidy)
# --------------------------------------------------------------------------------------

#: non-ASCII endings appended to some captions (real COCO captions have accents, dashes and
#: curly quotes)
_NON_ASCII_TAILS = [" near a café", " by an old façade", " — a naïve snapshot", " in the “old town”",
                    " at the crème brûlée stand", " on a 10 °C day", " — très jolie"]
#: number of uniforms :func:`vary_caption` consumes
VARIETY_RANDOMS = 8


def vary_caption(text: str, u) -> str:
    """Make a tidy template caption as untidy as real COCO captions can be.

    With small probabilities each: all lower case, all upper case, the final period
    dropped or doubled, a non-ASCII ending (accents, em dash, curly quotes, degree sign), an
    apostrophe turned curly, a double space, a leading space, trailing spaces and/or a
    newline.

    Parameters
    ----------
    text : str
        A caption from :func:`make_captions`.
    u : array-like of float of shape (VARIETY_RANDOMS,)
        Uniforms in [0, 1): all the randomness used.

    Returns
    -------
    caption : str
        The varied caption (the same words, plus an optional ending).
    """
    u = np.asarray(u, float)
    if u.shape != (VARIETY_RANDOMS,):
        raise ValueError(f"u must have shape ({VARIETY_RANDOMS},), got {u.shape}")
    body = text[:-1] if text.endswith(".") else text
    if u[0] < 0.18:
        body += _pick(u[1], _NON_ASCII_TAILS)
    if u[2] < 0.12:
        body = body.lower()
    elif u[2] > 0.985:
        body = body.upper()
    if u[3] < 0.06 and " " in body:
        i = body.index(" ")
        body = body[:i] + "  " + body[i + 1:]
    end = "" if u[4] < 0.25 else (".." if u[4] > 0.98 else ".")
    out = body + end
    if u[5] < 0.04:
        out = " " + out
    if u[6] < 0.12:
        out += " "
    if u[7] < 0.08:
        out += "\n"
    elif u[7] > 0.97:
        out += " \n"
    return out
