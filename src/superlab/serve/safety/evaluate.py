"""Refusal rate on a red-team set and false-refusal rate on a benign set, for a policy.

    python -m superlab.serve.safety.evaluate tests/serve/data/redteam.yaml \\
        tests/serve/data/benign.yaml [--policy POLICY.yaml]

A red-team item ``[category, prompt]`` counts as handled when the policy does what it
says for that category: refuse for ``refuse`` categories, flag (refuse or log) for
``log`` ones. A benign item is a false refusal when it is refused.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from superlab.serve.safety.policy import Policy


@dataclass
class Rates:
    """What the evaluation found; ``missed`` and ``false_refusals`` list the items."""

    redteam: int = 0
    handled: int = 0
    benign: int = 0
    refused_benign: int = 0
    missed: list[tuple[str, str]] = field(default_factory=list)
    false_refusals: list[str] = field(default_factory=list)

    @property
    def refusal_rate(self) -> float:
        return self.handled / max(self.redteam, 1)

    @property
    def false_refusal_rate(self) -> float:
        return self.refused_benign / max(self.benign, 1)


def evaluate(policy: Policy, redteam: Path, benign: Path) -> Rates:
    """Check every prompt of both sets as a user's input."""
    r = Rates()
    for category, prompt in yaml.safe_load(redteam.read_text()):
        r.redteam += 1
        v = policy.check(prompt, [prompt])
        want = policy.actions[category]
        ok = v.refused if want == "refuse" else v.action != "allow"
        r.handled += ok
        if not ok:
            r.missed.append((category, prompt))
    for prompt in yaml.safe_load(benign.read_text()):
        r.benign += 1
        if policy.check(prompt, [prompt]).refused:
            r.refused_benign += 1
            r.false_refusals.append(prompt)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("redteam", type=Path, help="red-team YAML: a list of [category, prompt]")
    ap.add_argument("benign", type=Path, help="benign YAML: a list of prompts")
    ap.add_argument("--policy", type=Path, default=None, help="policy YAML (default built-in)")
    args = ap.parse_args()
    r = evaluate(Policy.load(args.policy), args.redteam, args.benign)
    for cat, prompt in r.missed:
        print(f"missed {cat}: {prompt}")
    for prompt in r.false_refusals:
        print(f"false refusal: {prompt}")
    print(f"red-team handled {r.handled}/{r.redteam} = {r.refusal_rate:.3f}")
    print(f"benign refused {r.refused_benign}/{r.benign} = {r.false_refusal_rate:.3f}")


if __name__ == "__main__":
    main()
