"""Valid ranges of the planner's inputs, and one-line errors that name the option.

Every ``superlab plan`` input has a ``Range``. A number must lie in it; a range or
distribution must lie in it over its whole support (``montecarlo.support``): a
uniform ``0.38:0.43`` within its ends, a lognormal anywhere above 0, a normal
anywhere at all. So ``--mfu lognormal:0.3:0.6`` is refused (a lognormal can draw
MFU above 1) and ``--mfu 0.38:0.43`` is not. ``PlanInputError`` carries the option
name (``--mfu``) and a one-line message; the CLI prints it and exits 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from superlab.plan.catalog import UnknownAcceleratorError, get_accelerator
from superlab.plan.montecarlo import Input, parse, support


class PlanInputError(ValueError):
    """An input outside its range or unreadable; ``option`` names it (``--mfu``)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option


@dataclass(frozen=True)
class Range:
    """``low`` < or <= x < or <= ``high``; None = unbounded on that side."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def contains(self, lo: float, hi: float) -> bool:
        """Whether every value in [lo, hi] (the support of an input) is in range."""
        if self.low is not None and (lo <= self.low if self.low_open else lo < self.low):
            return False
        return self.high is None or not (hi >= self.high if self.high_open else hi > self.high)

    def text(self) -> str:
        """``> 0``, ``>= 1``, ``in (0, 1]``, ``an integer in [1, 10,000,000]``."""
        if self.low is not None and self.high is not None:
            span = (
                f"in {'(' if self.low_open else '['}{_fmt(self.low)}, "
                f"{_fmt(self.high)}{')' if self.high_open else ']'}"
            )
        elif self.low is not None:
            span = f"{'>' if self.low_open else '>='} {_fmt(self.low)}"
        elif self.high is not None:
            span = f"{'<' if self.high_open else '<='} {_fmt(self.high)}"
        else:
            span = "a finite number"
        return f"an integer {span}" if self.integer else span


def _fmt(x: float) -> str:
    """1e7 -> 10,000,000; 0.5 -> 0.5."""
    return f"{int(x):,}" if x == int(x) and abs(x) < 1e15 else f"{x:g}"


POSITIVE = Range(low=0, low_open=True)
NONNEGATIVE = Range(low=0)
FRACTION = Range(low=0, high=1, low_open=True)  # (0, 1]: a utilisation or goodput
SHARE = Range(low=0, high=1)  # [0, 1]
SHARE_BELOW_1 = Range(low=0, high=1, high_open=True)  # [0, 1)
AT_LEAST_1 = Range(low=1)
PUE = Range(low=1)  # a facility draws at least its IT load
COUNT = Range(low=1, integer=True)
DRAWS = Range(low=1, high=10_000_000, integer=True)  # memory: 8 bytes x draws per array
SEED = Range(low=0, integer=True)  # numpy's default_rng refuses < 0


def option(name: str) -> str:
    """``prefill_mfu`` -> ``--prefill-mfu``."""
    return "--" + name.replace("_", "-")


def number(text: str | None, name: str, rng: Range) -> Input | None:
    """Parse ``text`` (number, range or distribution) and check it lies in ``rng``."""
    if text is None:
        return None
    opt = option(name)
    try:
        value = parse(text)
    except ValueError as e:
        raise PlanInputError(opt, str(e)) from None
    check(value, opt, rng, text)
    return value


def check(value: Input, opt: str, rng: Range, text: str | None = None) -> None:
    """Raise PlanInputError unless ``value`` (all of its support) is in ``rng``."""
    lo, hi = support(value)
    shown = text if text is not None else f"{lo:g}" if lo == hi else f"{lo:g}:{hi:g}"
    if lo == hi:
        if not rng.contains(lo, hi) or (rng.integer and lo != int(lo)):
            raise PlanInputError(opt, f"must be {rng.text()}, got {shown}")
        return
    if not rng.contains(lo, hi):
        tail = "" if math.isfinite(lo) and math.isfinite(hi) else " (its tail is unbounded)"
        raise PlanInputError(
            opt, f"must be {rng.text()}, but {shown} can draw values outside that{tail}"
        )


def integer(text: str | None, name: str, rng: Range) -> int | None:
    """Parse a whole number (``1024``, ``1e3``) and check it lies in ``rng``."""
    if text is None:
        return None
    opt = option(name)
    try:
        x: float = int(text)
    except ValueError:
        try:
            x = float(text)
        except ValueError:
            raise PlanInputError(opt, f"must be {rng.text()}, got {text!r}") from None
    if not math.isfinite(x) or x != int(x) or not rng.contains(x, x):
        raise PlanInputError(opt, f"must be {rng.text()}, got {text}")
    return int(x)


def choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else a one-line error listing them."""
    if value not in allowed:
        raise PlanInputError(option(name), f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def accelerator_peak(accelerator: str, precision: str) -> float:
    """The catalog's dense peak TFLOP/s; one-line errors for unknown names or precisions."""
    try:
        acc = get_accelerator(accelerator)
    except UnknownAcceleratorError as e:
        raise PlanInputError("--accelerator", str(e)) from None
    choice(precision, "precision", ("bf16", "fp8"))
    try:
        return acc.peak_tflops(precision)  # type: ignore[arg-type]
    except ValueError as e:
        raise PlanInputError("--precision", str(e)) from None
