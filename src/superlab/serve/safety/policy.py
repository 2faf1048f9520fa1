"""Policy file, an action per category, and verdicts (categories and flags: ``check.py``).

Policy YAML (every key optional; categories left out keep the default action)::

    categories:            # S1..S14 -> allow | refuse | log
      S6: log
      S12: allow
    thresholds:            # classifier score needed to flag a category (default: tuned)
      S6: 0.8
    classifier: true       # the n-gram classifier layer (needs scikit-learn)
    guard_model: PATH      # a Llama Guard 3 checkpoint (local Hugging Face folder), ``guard.py``
    log_user_text: false   # refusal logs carry the user's text

``refuse`` blocks the input (or cuts the output); ``log`` lets it through and counts it;
``allow`` ignores the category. Whatever the file says, the minor-safety floor refuses
sexual or romantic content involving a minor (``floor.py``): it is a check of its own,
run outside ``checks``, and any S4 flag of any check is refused with it.

``Policy.check(text, conversation)`` reads the whole conversation: each message a plain
string (a user's) or a ``(role, content)`` tuple, every role included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from superlab.serve.safety.check import CATEGORIES, Check, Flag, Message

Action = Literal["allow", "refuse", "log"]
ACTIONS = ("allow", "refuse", "log")

# Specialized advice and IP are counted, not blocked: most such requests are legitimate.
DEFAULT_ACTIONS: dict[str, Action] = {c: "refuse" for c in CATEGORIES} | {
    "S6": "log",
    "S8": "log",
}


def messages(conversation: Sequence[str | Message] | None) -> list[Message]:
    """The conversation as (role, content) tuples; a plain string is a user's message."""
    out: list[Message] = []
    for i, m in enumerate(conversation or ()):
        if isinstance(m, str):
            out.append(("user", m))
        elif isinstance(m, tuple | list) and len(m) == 2 and all(isinstance(x, str) for x in m):
            out.append((m[0], m[1]))
        else:
            raise TypeError(f"conversation[{i}]: not a string or a (role, content) pair")
    return out


@dataclass
class Verdict:
    """What the policy decided for one text."""

    action: Action
    category: str | None = None  # the category that decided a refuse / log
    flags: list[Flag] = field(default_factory=list)
    floor: bool = False  # refused by the minor-safety floor

    @property
    def refused(self) -> bool:
        return self.action == "refuse"


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the field."""


class Policy:
    """Actions per category over pluggable checks, and the minor-safety floor beside them."""

    def __init__(
        self,
        actions: dict[str, Action] | None = None,
        checks: list[Check] | None = None,
        log_user_text: bool = False,
    ) -> None:
        # The layers load here, not at import: the floor compiles its patterns (~0.25 s).
        from superlab.serve.safety.floor import FloorCheck

        self.actions: dict[str, Action] = DEFAULT_ACTIONS | (actions or {})
        self.checks = checks if checks is not None else default_checks()
        self.log_user_text = log_user_text
        self.floor = FloorCheck()  # not in ``checks``: nothing configurable reaches it

    @classmethod
    def load(cls, path: str | Path | None) -> Policy:
        """The policy in ``path`` (YAML), or the defaults when None."""
        if path is None:
            return cls()
        data = yaml.safe_load(Path(path).read_text()) or {}
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "policy") -> Policy:
        if not isinstance(data, dict):
            raise PolicyError(f"{source}: not a mapping of policy fields")
        known = {"categories", "thresholds", "classifier", "guard_model", "log_user_text"}
        unknown = set(data) - known
        if unknown:
            raise PolicyError(f"{source}: unknown field(s) {sorted(unknown)}")
        actions: dict[str, Action] = {}
        for cat, act in (data.get("categories") or {}).items():
            if cat not in CATEGORIES:
                raise PolicyError(f"{source}: categories.{cat}: not one of S1..S14")
            if act not in ACTIONS:
                raise PolicyError(f"{source}: categories.{cat}: {act!r} is not allow/refuse/log")
            actions[cat] = act
        thresholds = data.get("thresholds") or {}
        for cat, t in thresholds.items():
            if cat not in CATEGORIES:
                raise PolicyError(f"{source}: thresholds.{cat}: not one of S1..S14")
            if not isinstance(t, int | float) or not 0 < t <= 1:
                raise PolicyError(f"{source}: thresholds.{cat}: {t!r} is not in (0, 1]")
        use_classifier = data.get("classifier", True)
        if not isinstance(use_classifier, bool):
            raise PolicyError(f"{source}: classifier: {use_classifier!r} is not true/false")
        checks = default_checks(use_classifier, {c: float(t) for c, t in thresholds.items()})
        guard = data.get("guard_model")
        if guard is not None:
            if not isinstance(guard, str) or not Path(guard).is_dir():
                raise PolicyError(f"{source}: guard_model: {guard!r} is not a folder")
            try:  # torch and the model: only when asked for
                from superlab.serve.safety.guard import GuardCheck

                checks.append(GuardCheck.load(guard))
            except (ImportError, OSError, ValueError) as e:
                raise PolicyError(f"{source}: guard_model: {e}") from None
        return cls(actions, checks, bool(data.get("log_user_text", False)))

    def check(self, text: str, conversation: Sequence[str | Message] | None = None) -> Verdict:
        """The verdict for ``text`` (an input, or output so far) within ``conversation``."""
        conv = messages(conversation)
        flags = [f for c in self.checks for f in c.flags(text, conv)]
        floor_flags = self.floor.flags(text, conv)
        # The floor comes first and any S4 flag joins it: no action, threshold or layer
        # setting of the policy file can let S4 through.
        if floor_flags or any(f.category == "S4" for f in flags):
            return Verdict("refuse", "S4", flags + floor_flags, floor=True)
        return self._decide(flags)

    def _decide(self, flags: list[Flag]) -> Verdict:
        logged = None
        for f in sorted(flags, key=lambda f: -f.score):
            act = self.actions[f.category]
            if act == "refuse":
                return Verdict("refuse", f.category, flags)
            if act == "log" and logged is None:
                logged = f.category
        return Verdict("log", logged, flags) if logged else Verdict("allow", None, flags)


def default_checks(classifier: bool = True, thresholds: dict[str, float] | None = None) -> list:
    """The rule layer, and the classifier layer unless turned off."""
    from superlab.serve.safety.rules import RuleCheck

    checks: list[Check] = [RuleCheck.default()]
    if classifier:
        from superlab.serve.safety.classifier import ClassifierCheck

        checks.append(ClassifierCheck(thresholds or {}))
    return checks
