"""Policy file, categories and verdicts.

Policy YAML (every key optional; categories left out keep the default action)::

    categories:            # S1..S14 -> allow | refuse | log
      S6: log
      S12: allow
    thresholds:            # classifier score needed to flag a category (default: tuned)
      S6: 0.8
    classifier: true       # the n-gram classifier layer (needs scikit-learn)
    log_user_text: false   # refusal logs carry the user's text

``refuse`` blocks the input (or cuts the output); ``log`` lets it through and counts it;
``allow`` ignores the category. Whatever the file says, the minor-safety floor refuses
sexual or romantic content involving a minor (``floor.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml

from superlab.serve.safety import floor

Action = Literal["allow", "refuse", "log"]
ACTIONS = ("allow", "refuse", "log")

# MLCommons AI Safety hazard taxonomy v0.5 as Llama Guard 3 numbers it (Llama Guard 3
# model card, "Hazard Taxonomy and Policy").
CATEGORIES = {
    "S1": "Violent Crimes",
    "S2": "Non-Violent Crimes",
    "S3": "Sex-Related Crimes",
    "S4": "Child Sexual Exploitation",
    "S5": "Defamation",
    "S6": "Specialized Advice",
    "S7": "Privacy",
    "S8": "Intellectual Property",
    "S9": "Indiscriminate Weapons",
    "S10": "Hate",
    "S11": "Suicide & Self-Harm",
    "S12": "Sexual Content",
    "S13": "Elections",
    "S14": "Code Interpreter Abuse",
}
# Specialized advice and IP are counted, not blocked: most such requests are legitimate.
DEFAULT_ACTIONS: dict[str, Action] = {c: "refuse" for c in CATEGORIES} | {
    "S6": "log",
    "S8": "log",
}


@dataclass(frozen=True)
class Flag:
    """A check's finding: a category, a score in [0, 1] and which check found it."""

    category: str
    score: float
    source: str


class Check(Protocol):
    """One layer of checks."""

    name: str

    def flags(self, text: str) -> list[Flag]: ...


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
    """Actions per category over pluggable checks, with the floor applied last."""

    def __init__(
        self,
        actions: dict[str, Action] | None = None,
        checks: list[Check] | None = None,
        log_user_text: bool = False,
    ) -> None:
        self.actions: dict[str, Action] = DEFAULT_ACTIONS | (actions or {})
        self.checks = checks if checks is not None else default_checks()
        self.log_user_text = log_user_text

    @classmethod
    def load(cls, path: str | Path | None) -> Policy:
        """The policy in ``path`` (YAML), or the defaults when None."""
        if path is None:
            return cls()
        data = yaml.safe_load(Path(path).read_text()) or {}
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "policy") -> Policy:
        unknown = set(data) - {"categories", "thresholds", "classifier", "log_user_text"}
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
        return cls(actions, checks, bool(data.get("log_user_text", False)))

    def check(self, text: str, user_texts: list[str] | None = None) -> Verdict:
        """The verdict for ``text``; ``user_texts`` (the conversation) feed the floor."""
        flags = [f for c in self.checks for f in c.flags(text)]
        verdict = self._decide(flags)
        # The floor comes last: a policy that allows S4 or S12 cannot override it.
        if floor.violates(text, user_texts or [], flags):
            return Verdict("refuse", "S4", flags, floor=True)
        return verdict

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
