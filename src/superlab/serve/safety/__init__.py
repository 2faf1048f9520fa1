"""Safety policy: every input and every output is checked before it reaches the user.

Shape: a check is an object with ``name`` and ``flags(text, conversation) -> list[Flag]``
(``conversation``: the request's messages as (role, content) pairs, every role; a Flag is
a category of the MLCommons hazard taxonomy as Llama Guard 3 uses it, S1..S14, and a
score in [0, 1]; ``check.py``, which imports nothing from the package). Checks read text
through ``normalize.views`` (folded, leetspeak, spacing, homoglyphs, rot13 and encoded
runs undone). Pluggable layers: ``RuleCheck`` (``rules.yaml``), ``ClassifierCheck``
(char/word n-gram logistic regression trained at first use on ``examples.yaml``) and
``GuardCheck`` (Llama Guard 3, ``guard_model``). A
``Policy`` (YAML: an action per category, allow / refuse / log) turns flags into a
``Verdict``; the minor-safety floor (``floor.py``, ``FloorCheck``) is a check of its own
that no policy setting reaches. Labelled sets: ``sets/``; ``superlab safety eval``.
"""

from superlab.serve.safety.check import CATEGORIES, Flag
from superlab.serve.safety.policy import Policy, Verdict

__all__ = ["CATEGORIES", "Flag", "Policy", "Verdict"]
