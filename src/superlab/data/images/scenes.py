"""A generated visual question-answering task with known answers: shapes on a grid.

A scene puts 1 to 4 shapes (circle, square, triangle; red, green, blue, yellow; small or
big) in distinct cells of a 3 x 3 grid on a black square image. Each scene gets one
question of each type that has a single right answer:

- ``count``: "how many red shapes?" / "how many circles?" (0 to 4)
- ``color``: "what color is the square?" (the scene's only square)
- ``shape``: "what shape is blue?" (the scene's only blue shape)
- ``left_of``: "what is left of the red circle?" (the nearest shape to its left in the
  same row, as "green square", or "nothing")
- ``size``: "is the blue triangle big or small?"

The questions never say the answer, so a model without the image can only guess from the
question (the text-only control, ``docs/multimodal.md``). A seed fixes everything: train
and held-out splits use different seeds.

Legend: H = W image side, C channels (3).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from superlab.common.deps import require

KINDS = ("circle", "square", "triangle")
COLORS = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 240),
    "yellow": (240, 220, 40),
}
SIZES = ("small", "big")
GRID = 3
TYPES = ("count", "color", "shape", "left_of", "size")


@dataclass(frozen=True)
class Shape:
    kind: str
    color: str
    size: str
    row: int
    col: int

    @property
    def name(self) -> str:
        return f"{self.color} {self.kind}"


@dataclass(frozen=True)
class QA:
    type: str
    question: str
    answer: str


def random_scene(rng: random.Random) -> list[Shape]:
    """1 to 4 shapes in distinct cells, no two with the same colour and kind."""
    cells = rng.sample(range(GRID * GRID), rng.randint(1, 4))
    names = rng.sample([(k, c) for k in KINDS for c in COLORS], len(cells))
    return [
        Shape(kind, color, rng.choice(SIZES), cell // GRID, cell % GRID)
        for cell, (kind, color) in zip(cells, names, strict=True)
    ]


def draw(scene: list[Shape], side: int) -> np.ndarray:
    """(H, W, 3) uint8 picture of ``scene`` on a black ``side`` x ``side`` square."""
    Image = require("PIL.Image", "drawing the shapes task", extra="vision", package="pillow")
    ImageDraw = require(
        "PIL.ImageDraw", "drawing the shapes task", extra="vision", package="pillow"
    )
    img = Image.new("RGB", (side, side))
    pen = ImageDraw.Draw(img)
    cell = side / GRID
    for s in scene:
        half = cell * (0.45 if s.size == "big" else 0.25)
        cx, cy = (s.col + 0.5) * cell, (s.row + 0.5) * cell
        box = (cx - half, cy - half, cx + half - 1, cy + half - 1)
        fill = COLORS[s.color]
        if s.kind == "circle":
            pen.ellipse(box, fill=fill)
        elif s.kind == "square":
            pen.rectangle(box, fill=fill)
        else:
            pen.polygon([(cx, box[1]), (box[0], box[3]), (box[2], box[3])], fill=fill)
    return np.asarray(img, dtype=np.uint8)


def _left_of(scene: list[Shape], s: Shape) -> str:
    left = [o for o in scene if o.row == s.row and o.col < s.col]
    return max(left, key=lambda o: o.col).name if left else "nothing"


def questions(scene: list[Shape], rng: random.Random) -> list[QA]:
    """One question per type that has a single right answer in ``scene``."""
    out = []
    if rng.random() < 0.5:
        color = rng.choice(list(COLORS))
        n = sum(s.color == color for s in scene)
        out.append(QA("count", f"how many {color} shapes?", str(n)))
    else:
        kind = rng.choice(KINDS)
        out.append(QA("count", f"how many {kind}s?", str(sum(s.kind == kind for s in scene))))
    kinds = [k for k in KINDS if sum(s.kind == k for s in scene) == 1]
    if kinds:
        kind = rng.choice(kinds)
        color = next(s.color for s in scene if s.kind == kind)
        out.append(QA("color", f"what color is the {kind}?", color))
    colors = [c for c in COLORS if sum(s.color == c for s in scene) == 1]
    if colors:
        color = rng.choice(colors)
        kind = next(s.kind for s in scene if s.color == color)
        out.append(QA("shape", f"what shape is {color}?", kind))
    target = rng.choice(scene)
    out.append(QA("left_of", f"what is left of the {target.name}?", _left_of(scene, target)))
    target = rng.choice(scene)
    out.append(QA("size", f"is the {target.name} big or small?", target.size))
    return out


def examples(n: int, seed: int, side: int) -> list[tuple[np.ndarray, list[QA]]]:
    """``n`` scenes drawn at ``side`` px, each with its questions; fixed by ``seed``."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        scene = random_scene(rng)
        out.append((draw(scene, side), questions(scene, rng)))
    return out
