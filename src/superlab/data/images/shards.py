"""A split of the image task in the run's data directory, written like the text shards.

``build_split`` generates the split's examples from its seed into a source file
(``<split>.source.jsonl``: one scene per line, its PNG in base64 and its questions), then
reads that file back through ``read_source``, which keeps a row or rejects it with a
reason and its location, and writes, each atomically and the marker last:

    images/<split>.pixels.npy      (N, H, W, 3) uint8, the accepted images in order
    images/<split>.rows.jsonl      one question per line: image index, type, question, answer
    images/<split>.tokens.npz      the questions as token ids, what the train and eval
                                   stages read (below)
    images/<split>.rejects.jsonl   what was dropped, with the reason and file:line
    images/<split>.done            the split's stats and settings; with it the split is complete

A split with its marker and outputs, made with the same settings, is skipped on a rerun;
one without is redone from scratch (``superlab.data.pipeline.shards`` does the same per
text shard).

``tokens.npz`` is the contract with the later stages (which read the run directory, not
this package): ``x``, ``y`` (Q, T) int16 inputs and targets of each question with its
image's ``tokens_per_image`` placeholders (``superlab.data.images.text``; targets -100
off the answer), ``x_text``, ``y_text`` the same text without the image's tokens (the
text-only control), ``image`` (Q,) the row of ``pixels.npy`` each question is about, and
``type`` (Q,) its question type.

Legend: N images, H = W image side, Q questions, T longest sequence.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from superlab.common.atomic import atomic_write_json, atomic_write_text, atomic_write_with
from superlab.data.images import codec, scenes, text

OUTPUTS = (".pixels.npy", ".rows.jsonl", ".tokens.npz", ".rejects.jsonl", ".done")


def _paths(data_dir: str | Path, split: str) -> dict[str, Path]:
    root = Path(data_dir) / "images"
    return {s: root / f"{split}{s}" for s in (".source.jsonl", *OUTPUTS)}


def is_done(data_dir: str | Path, split: str, settings: dict[str, Any] | None = None) -> bool:
    """True when the split's marker and every output exist (and, given ``settings``, the
    marker says the split was made with them)."""
    paths = _paths(data_dir, split)
    if not all(p.exists() for s, p in paths.items() if s in OUTPUTS):
        return False
    return settings is None or json.loads(paths[".done"].read_text()).get("settings") == settings


def write_source(path: Path, n: int, seed: int, side: int) -> None:
    """``n`` generated scenes as JSONL: ``{"id", "image": base64 PNG, "questions": [...]}``."""
    lines = []
    for i, (pixels, qas) in enumerate(scenes.examples(n, seed, side)):
        png = base64.b64encode(codec.encode_png(pixels)).decode("ascii")
        qs = [{"type": q.type, "question": q.question, "answer": q.answer} for q in qas]
        lines.append(json.dumps({"id": i, "image": png, "questions": qs}))
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def _questions(row: Any) -> list[dict[str, str]] | str:
    qs = row.get("questions") if isinstance(row, dict) else None
    if not isinstance(qs, list) or not qs:
        return "no 'questions' list"
    for q in qs:
        if not isinstance(q, dict) or not all(
            isinstance(q.get(k), str) for k in ("type", "question", "answer")
        ):
            return "a question without string 'type', 'question' and 'answer'"
    return qs


def read_source(
    path: Path, side: int
) -> Iterator[tuple[np.ndarray, list[dict[str, str]]] | dict[str, str]]:
    """Each line's (pixels, questions), or a reject ``{"reason", "location"}``."""
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            where = f"{path}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                yield {"reason": f"malformed JSON: {e}", "location": where}
                continue
            qs = _questions(row)
            image = row.get("image") if isinstance(row, dict) else None
            if isinstance(qs, str) or not isinstance(image, str):
                why = qs if isinstance(qs, str) else "no 'image' string (base64 PNG)"
                yield {"reason": why, "location": where}
                continue
            pixels = codec.read(image, side)
            if isinstance(pixels, str):
                yield {"reason": pixels, "location": where + " field 'image'"}
                continue
            yield pixels, qs


def write_tokens(path: Path, rows: list[dict[str, Any]], tokens_per_image: int) -> None:
    """``tokens.npz`` of ``rows`` (see the module docstring), atomically."""
    empty = np.zeros((0, 1), np.int64)
    x, y = text.batch(rows, tokens_per_image) if rows else (empty, empty)
    xt, yt = text.batch(rows, tokens_per_image, image=False) if rows else (empty, empty)
    arrays = {
        "x": x.astype(np.int16),
        "y": y.astype(np.int16),
        "x_text": xt.astype(np.int16),
        "y_text": yt.astype(np.int16),
        "image": np.array([r["image"] for r in rows], dtype=np.int64),
        "type": np.array([r["type"] for r in rows], dtype=str),
    }
    atomic_write_with(path, lambda f: np.savez(f, **arrays))


def write_split(
    data_dir: str | Path,
    split: str,
    side: int,
    tokens_per_image: int,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read ``<split>.source.jsonl``; write pixels, rows, tokens, rejects, then the marker
    (the split's stats, and ``settings`` to know it by on a rerun)."""
    paths = _paths(data_dir, split)
    images, rows, rejects = [], [], []
    for item in read_source(paths[".source.jsonl"], side):
        if isinstance(item, dict):
            rejects.append(item)
            continue
        pixels, qs = item
        rows += [{"image": len(images), **q} for q in qs]
        images.append(pixels)
    stack = np.stack(images) if images else np.zeros((0, side, side, 3), np.uint8)
    atomic_write_with(paths[".pixels.npy"], lambda f: np.save(f, stack))
    atomic_write_text(paths[".rows.jsonl"], "".join(json.dumps(r) + "\n" for r in rows))
    write_tokens(paths[".tokens.npz"], rows, tokens_per_image)
    atomic_write_text(paths[".rejects.jsonl"], "".join(json.dumps(r) + "\n" for r in rejects))
    stats = {
        "split": split,
        "images": len(images),
        "questions": len(rows),
        "rejected": len(rejects),
    }
    atomic_write_json(paths[".done"], {**stats, "settings": settings})
    return stats


def settings(n: int, seed: int, side: int, tokens_per_image: int) -> dict[str, Any]:
    """What a split is made from; its marker keeps them, and a rerun with others redoes it."""
    return {"n": n, "seed": seed, "side": side, "tokens_per_image": tokens_per_image}


def build_split(
    data_dir: str | Path, split: str, n: int, seed: int, side: int, tokens_per_image: int
) -> dict[str, Any]:
    """Generate (seed ``seed``) and write one split; a finished split made with the same
    settings is kept as it is."""
    paths = _paths(data_dir, split)
    made_with = settings(n, seed, side, tokens_per_image)
    if is_done(data_dir, split, made_with):
        done = json.loads(paths[".done"].read_text())
        return {k: v for k, v in done.items() if k != "settings"}
    for s in reversed(OUTPUTS):  # unfinished: redo from scratch, marker first (never stale)
        paths[s].unlink(missing_ok=True)
    write_source(paths[".source.jsonl"], n, seed, side)
    return write_split(data_dir, split, side, tokens_per_image, made_with)


def read_split(data_dir: str | Path, split: str) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A finished split's images (N, H, W, 3) and question rows."""
    paths = _paths(data_dir, split)
    if not is_done(data_dir, split):
        raise FileNotFoundError(
            f"{paths['.done']}: split {split!r} is not finished; build it first"
        )
    rows = [json.loads(line) for line in paths[".rows.jsonl"].read_text().splitlines()]
    return np.load(paths[".pixels.npy"]), rows
