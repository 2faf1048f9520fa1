"""Humanity's Last Exam-format items from a local file: accuracy and calibration error.

An item has ``id``, ``question``, ``answer``, ``answer_type`` (``exactMatch`` or
``multipleChoice``) and ``category``; ``.json`` (a list of items), ``.jsonl`` or
``.parquet``. Items with an image are skipped (counted, with the reason): the model
reads text only.

Scoring (no judge model; HLE itself uses one to extract answers from chat replies):

- ``multipleChoice``: the choice letters are read from the question's lines
  ("A. ...", "B) ...", "(C) ..."); the model picks the letter with the highest
  log-likelihood after the prompt; confidence = that letter's share of the
  probability over the listed letters.
- ``exactMatch``: greedy decoding until a newline, EOS or ``max_new_tokens``; correct
  when it equals the answer after normalising case, spaces and end punctuation;
  confidence = the probability of the generated tokens.

Calibration error: HLE's RMS calibration error, items sorted by confidence and cut
into bins of ``beta`` items, ``sqrt(sum_b n_b/N (conf_b - acc_b)^2)``. The widely
copied implementation (``calib_err`` from hendrycks/outlier-exposure, reused by HLE)
loops ``for i in range(len(bins) - 1)`` and so never adds the last bin, which also
holds the remainder: with fewer than 2*beta items it returns 0 whatever the model
does, and with fewer than beta it fails on an empty bin list. Here every bin counts,
and fewer than beta items make one bin.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from superlab.eval.lm import Scorer

ANSWER_TYPES = ("exactMatch", "multipleChoice")
REQUIRED = ("id", "question", "answer", "answer_type")
_CHOICE = re.compile(r"^\s*\(?([A-Z])[.)]\s+\S", re.MULTILINE)


class HLEFormatError(ValueError):
    """A malformed file or item; the message names the file and line or row."""


@dataclass(frozen=True)
class HLEItem:
    """One question."""

    id: str
    question: str
    answer: str
    answer_type: str
    category: str


def _records(path: Path) -> list[tuple[str, Any]]:
    """(where, record) pairs: ``file:line`` for JSONL, ``file[row]`` otherwise."""
    if not path.is_file():
        raise HLEFormatError(f"{path}: no such file")
    if path.suffix == ".jsonl":
        out = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append((f"{path}:{n}", json.loads(line)))
            except json.JSONDecodeError as e:
                raise HLEFormatError(f"{path}:{n}: invalid JSON ({e.msg})") from None
        return out
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise HLEFormatError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(data, list):
            raise HLEFormatError(f"{path}: expected a JSON list of items")
        return [(f"{path}[{i}]", r) for i, r in enumerate(data)]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return [(f"{path}[{i}]", r) for i, r in enumerate(pq.read_table(path).to_pylist())]
    raise HLEFormatError(f"{path}: unknown format; use .json, .jsonl or .parquet")


def read_items(path: str | Path, limit: int | None = None) -> tuple[list[HLEItem], dict[str, int]]:
    """The text-only items of a file, and the skipped ones counted by reason."""
    items, skipped = [], Counter[str]()
    for where, r in _records(Path(path)):
        if not isinstance(r, dict):
            raise HLEFormatError(f"{where}: expected an object, got {type(r).__name__}")
        missing = [k for k in REQUIRED if r.get(k) in (None, "")]
        if missing:
            raise HLEFormatError(f"{where}: missing field {', '.join(map(repr, missing))}")
        if r["answer_type"] not in ANSWER_TYPES:
            raise HLEFormatError(
                f"{where}: field 'answer_type' is {r['answer_type']!r}; expected one of "
                f"{', '.join(ANSWER_TYPES)}"
            )
        if r.get("image"):
            skipped["has an image (the model reads text only)"] += 1
            continue
        items.append(
            HLEItem(
                str(r["id"]),
                str(r["question"]),
                str(r["answer"]),
                r["answer_type"],
                str(r.get("category") or "(none)"),
            )
        )
        if limit is not None and len(items) == limit:
            break
    return items, dict(skipped)


def choice_letters(question: str) -> list[str]:
    """The option letters a multiple-choice question lists, in order of first appearance."""
    return list(dict.fromkeys(_CHOICE.findall(question)))


def normalize(text: str) -> str:
    """Case-folded, spaces collapsed, surrounding spaces and end punctuation removed."""
    return " ".join(text.casefold().split()).strip(" .,;:!?\"'")


def calibration_error(
    confidence: np.ndarray, correct: np.ndarray, beta: int = 100, p: str = "2"
) -> float:
    """Binned calibration error over every bin (see the module docstring); 0 for no items."""
    n = len(confidence)
    if n == 0:
        return 0.0
    order = np.argsort(confidence, kind="stable")
    conf, corr = np.asarray(confidence, float)[order], np.asarray(correct, float)[order]
    edges = [i * beta for i in range(max(n // beta, 1))] + [n]  # the last bin takes the rest
    gaps, weights = [], []
    for lo, hi in itertools.pairwise(edges):
        gaps.append(abs(conf[lo:hi].mean() - corr[lo:hi].mean()))
        weights.append((hi - lo) / n)
    g, w = np.array(gaps), np.array(weights)
    if p == "2":
        return float(math.sqrt(np.sum(w * g**2)))
    if p == "1":
        return float(np.sum(w * g))
    if p == "max":
        return float(g.max())
    raise ValueError(f"p must be '1', '2' or 'max', got {p!r}")


def _newline_ids(scorer: Scorer) -> set[int]:
    vocab = scorer.tokenizer.get_vocab()
    return {i for i in vocab.values() if "\n" in scorer.decode([i])}


def score(
    items: list[HLEItem], scorer: Scorer, prompt: str, max_new_tokens: int
) -> list[dict[str, Any]]:
    """One row per item: prediction, correct, confidence."""
    stops = _newline_ids(scorer)
    rows = []
    for it in items:
        ctx = [scorer.eos_id, *scorer.encode(prompt.format(question=it.question))]
        if it.answer_type == "multipleChoice":
            letters = choice_letters(it.question)
            if len(letters) < 2:
                raise HLEFormatError(f"item {it.id}: multipleChoice but no 'A.'-style choices")
            lls = [
                s.logprob
                for s in scorer.loglikelihood([(ctx, scorer.encode(f" {x}")) for x in letters])
            ]
            probs = np.exp(np.array(lls) - max(lls))
            probs /= probs.sum()
            k = int(np.argmax(probs))
            pred, conf = letters[k], float(probs[k])
            correct = pred == it.answer.strip().strip("().").upper()[:1]
        else:
            new = scorer.greedy(ctx, max_new_tokens, stops)
            pred = scorer.decode(new)
            conf = math.exp(scorer.loglikelihood([(ctx, new)])[0].logprob) if new else 0.0
            correct = bool(new) and normalize(pred) == normalize(it.answer)
        rows.append(
            {
                "id": it.id,
                "category": it.category,
                "answer_type": it.answer_type,
                "prediction": pred,
                "correct": bool(correct),
                "confidence": conf,
            }
        )
    return rows


def summarize(rows: list[dict[str, Any]], beta: int) -> dict[str, Any]:
    """Accuracy (overall with a 95% interval, per category) and calibration error."""
    n = len(rows)
    acc = sum(r["correct"] for r in rows) / n if n else None
    cats: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        cats[r["category"]].append(r["correct"])
    conf = np.array([r["confidence"] for r in rows])
    corr = np.array([r["correct"] for r in rows], dtype=float)
    return {
        "n": n,
        "accuracy": acc,
        # HLE's interval: normal approximation, 1.96 * sqrt(p (1 - p) / n).
        "accuracy_ci95": 1.96 * math.sqrt(acc * (1 - acc) / n) if acc is not None else None,
        "by_category": {
            c: {"n": len(v), "accuracy": sum(v) / len(v)} for c, v in sorted(cats.items())
        },
        "calibration_error": calibration_error(conf, corr, beta),
        "calibration_bins": max(n // beta, 1) if n else 0,
        "mean_confidence": float(conf.mean()) if n else None,
    }
