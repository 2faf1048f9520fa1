"""Rewards: built-in checks and user functions in TRL's signature, combined with weights.

Every reward is called as TRL calls one: ``fn(prompts, completions, **row) -> list[float]``
where ``row`` holds each other column of the prompt rows as a list (TRL's ``reward_kwargs``),
so a TRL reward function works as it is. ``prompts`` and ``completions`` are strings for
text prompts, and message lists (``[{"role": "assistant", "content": ...}]``) for
conversational ones, as in TRL. Built in (the answer is the text of the last
``<tag>...</tag>``, or the whole completion without a tag):

- ``exact_match``: the answer equals ``row[answer_field]`` (both stripped);
- ``numeric``: both parse as numbers and are equal within 1e-6 (relative);
- ``format``: the completion is exactly one tagged answer, nothing around it.

The group of one prompt is scored in one call, so an error names its prompt id. A reward
that raises, returns NaN/None/a non-number, or the wrong number of values raises
``RewardError``; nothing is ever scored as a silent zero.
"""

from __future__ import annotations

import importlib
import math
import numbers
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from superlab.common import StageError
from superlab.config.rl import RewardSpec

RewardFn = Callable[..., Sequence[Any]]


class RewardError(RuntimeError):
    """A reward failed on one prompt's group; ``prompt_id`` names it."""

    def __init__(self, message: str, prompt_id: str, traceback_text: str = "") -> None:
        super().__init__(message)
        self.prompt_id, self.traceback_text = prompt_id, traceback_text


def _text(x: Any) -> str:
    """A completion's text: a string, or the content of its last message."""
    if isinstance(x, str):
        return x
    return str(x[-1]["content"]) if x else ""


def extract_answer(text: str, tag: str | None) -> str | None:
    """The last ``<tag>...</tag>``'s text, stripped (None without one); the text without a tag."""
    if tag is None:
        return text.strip()
    found = re.findall(rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>", text, flags=re.DOTALL)
    return found[-1].strip() if found else None


def _number(s: str | None) -> float | None:
    try:
        return float(s.replace(",", "")) if s is not None else None
    except ValueError:
        return None


def builtin(name: str, answer_field: str, tag: str | None) -> RewardFn:
    """A built-in reward (see the module docstring) in TRL's signature."""

    def answers(row: dict[str, Any], n: int) -> list[str]:
        if answer_field not in row:
            raise KeyError(f"{name} needs the column {answer_field!r} (rl.answer_field)")
        return [str(a).strip() for a in row[answer_field]][:n]

    def exact_match(prompts: list[Any], completions: list[Any], **row: Any) -> list[float]:
        refs = answers(row, len(completions))
        got = [extract_answer(_text(c), tag) for c in completions]
        return [float(g is not None and g == r) for g, r in zip(got, refs, strict=True)]

    def numeric(prompts: list[Any], completions: list[Any], **row: Any) -> list[float]:
        refs = answers(row, len(completions))
        out = []
        for c, r in zip(completions, refs, strict=True):
            g, want = _number(extract_answer(_text(c), tag)), _number(r)
            ok = g is not None and want is not None and math.isclose(g, want, rel_tol=1e-6)
            out.append(float(ok))
        return out

    def format_(prompts: list[Any], completions: list[Any], **row: Any) -> list[float]:
        if tag is None:
            return [1.0] * len(completions)
        pattern = re.compile(rf"\s*<{re.escape(tag)}>[^<]*</{re.escape(tag)}>\s*", re.DOTALL)
        return [float(pattern.fullmatch(_text(c)) is not None) for c in completions]

    return {"exact_match": exact_match, "numeric": numeric, "format": format_}[name]


def import_reward(path: str, field: str) -> RewardFn:
    """The function ``module:function`` names; a one-line ``StageError`` when it cannot."""
    module, _, attr = path.partition(":")
    importlib.invalidate_caches()  # a module written since the interpreter started
    try:
        fn = getattr(importlib.import_module(module), attr)
    except Exception as e:  # any import-time failure of the user's module
        raise StageError(f"{field}: cannot import {path!r}: {type(e).__name__}: {e}") from None
    if not callable(fn):
        raise StageError(f"{field}: {path!r} is not callable")
    return fn


@dataclass
class Reward:
    """One named, weighted reward function."""

    name: str
    weight: float
    fn: RewardFn


def build_rewards(specs: list[RewardSpec], answer_field: str, tag: str | None) -> list[Reward]:
    """The ``rl.rewards`` list as functions, user paths imported now (fail fast)."""
    out = []
    for i, spec in enumerate(specs):
        if ":" in spec.name:
            fn = import_reward(spec.name, f"rl.rewards[{i}].name")
        else:
            fn = builtin(spec.name, answer_field, tag)
        out.append(Reward(spec.name, spec.weight, fn))
    return out


def score_group(
    rewards: list[Reward],
    prompt_id: str,
    prompts: list[Any],
    completions: list[Any],
    row: dict[str, list[Any]],
) -> list[list[float]]:
    """Each reward's values for one prompt's group: ``[reward][completion]``, all finite."""
    import traceback

    out = []
    for r in rewards:
        try:
            values = list(r.fn(prompts, completions, **row))
        except Exception as e:  # a user function may raise anything: it is reported
            raise RewardError(
                f"reward {r.name!r} raised on prompt {prompt_id!r}: {type(e).__name__}: {e}",
                prompt_id,
                traceback.format_exc(),
            ) from e
        if len(values) != len(completions):
            raise RewardError(
                f"reward {r.name!r} returned {len(values)} values for {len(completions)} "
                f"completions of prompt {prompt_id!r}",
                prompt_id,
            )
        checked = []
        for j, v in enumerate(values):
            ok = isinstance(v, numbers.Real) and math.isfinite(float(v))
            if not ok:
                raise RewardError(
                    f"reward {r.name!r} returned {v!r} for completion {j} of prompt "
                    f"{prompt_id!r}: rewards must be finite numbers",
                    prompt_id,
                )
            checked.append(float(v))
        out.append(checked)
    return out
