"""Safety policy: every input and every output is checked before it reaches the user.

Shape: a check is an object with ``name`` and ``flags(text) -> list[Flag]`` (a category of
the MLCommons hazard taxonomy as Llama Guard 3 uses it, S1..S14, and a score in [0, 1]).
Checks are pluggable: ``RuleCheck`` (patterns and word lists, ``rules.yaml``) and
``ClassifierCheck`` (char/word n-gram logistic regression trained at first use on the
labelled examples in ``examples.yaml``, thresholds tuned on its benign examples). A
``Policy`` (YAML: an action per category, allow / refuse / log) turns flags into a
``Verdict``; the minor-safety floor (``floor.py``) is applied after the policy and no
setting relaxes it.
"""

from superlab.serve.safety.policy import CATEGORIES, Flag, Policy, Verdict

__all__ = ["CATEGORIES", "Flag", "Policy", "Verdict"]
