"""Every planner input has a range: nonsense is refused in one line naming the option, exit 2.

Issue 15, items 1 and 2: before, ``--params=-70e9`` printed negative GPU-hours with
exit 0, ``--gpus 0`` NaN days, ``--mfu 0.5:0.3`` Typer's box with pydantic text, and
``--accelerator nope``, ``--precision fp8`` on an A100 and ``--draws 0`` tracebacks.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from superlab.cli_plan import SERVE_INPUTS, TRAIN_INPUTS, plan_app

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = str(ROOT / "scenarios" / "meta-2025.yaml")
runner = CliRunner()
TRAIN = ["train", "--params", "70e9", "--tokens", "2e12", "--draws", "200"]
SERVE = ["serve", "--draws", "200"]


def one_line_error(args: list[str], option: str) -> str:
    """Run ``superlab plan ARGS``: exit 2, stdout empty, one stderr line naming ``option``."""
    res = runner.invoke(plan_app, args)
    assert res.exit_code == 2, res.output
    assert isinstance(res.exception, SystemExit), res.exception  # not a traceback
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert res.stdout == "", res.stdout
    assert lines[0].startswith(f"error: {option}"), lines[0]
    for box in ("╭", "│", "Traceback", "pydantic", "validation error"):
        assert box not in res.stderr, res.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "option", "says"),
    [
        (
            ["train", "--params=-70e9", "--tokens", "2e12", "--accelerator", "a100"],
            "--params",
            "> 0",
        ),
        (["train", "--params", "0", "--tokens", "2e12"], "--params", "> 0"),
        (["train", "--params", "70e9", "--tokens", "0"], "--tokens", "> 0"),
        ([*TRAIN, "--active-params", "80e9"], "--active-params", "cannot exceed --params"),
        ([*TRAIN, "--gpus", "0"], "--gpus", "an integer >= 1"),
        ([*TRAIN, "--gpus", "2.5"], "--gpus", "an integer >= 1"),
        ([*TRAIN, "--gpus", "abc"], "--gpus", "an integer >= 1"),
        ([*TRAIN, "--mfu", "1.5"], "--mfu", "in (0, 1]"),
        ([*TRAIN, "--mfu", "0"], "--mfu", "in (0, 1]"),
        ([*TRAIN, "--mfu", "0.5:0.3"], "--mfu", "low (0.5) must be <= high (0.3)"),
        ([*TRAIN, "--mfu", "0.3:1.2"], "--mfu", "can draw values outside"),
        ([*TRAIN, "--mfu", "lognormal:0.3:0.5"], "--mfu", "its tail is unbounded"),
        ([*TRAIN, "--mfu", "nan"], "--mfu", "not a finite number"),
        ([*TRAIN, "--mfu", "0.4", "--tflops", "300"], "--tflops", "not both"),
        ([*TRAIN, "--tflops", "2000"], "--tflops", "in (0, 989]"),
        ([*TRAIN, "--goodput", "1.5"], "--goodput", "in (0, 1]"),
        ([*TRAIN, "--goodput", "0"], "--goodput", "in (0, 1]"),
        ([*TRAIN, "--pue", "0.9"], "--pue", ">= 1"),
        ([*TRAIN, "--price=-1"], "--price", ">= 0"),
        ([*TRAIN, "--capex-per-gpu=-1"], "--capex-per-gpu", ">= 0"),
        ([*TRAIN, "--life-years", "0"], "--life-years", "> 0"),
        ([*TRAIN, "--price-per-mwh=-80"], "--price-per-mwh", ">= 0"),
        ([*TRAIN, "--attn-flops=-1"], "--attn-flops", ">= 0"),
        ([*TRAIN, "--seq-len", "0"], "--seq-len", "an integer >= 1"),
        ([*TRAIN, "--layers", "0"], "--layers", "an integer >= 1"),
        ([*TRAIN, "--tp", "3"], "--gpus", "multiple of --tp x --pp"),
        ([*TRAIN, "--pp", "0"], "--pp", "an integer >= 1"),
        ([*TRAIN, "--ep", "3"], "--ep", "must divide"),
        ([*TRAIN, "--zero", "4"], "--zero", "in [0, 3]"),
        ([*TRAIN, "--micro-batch", "0"], "--micro-batch", "an integer >= 1"),
        ([*TRAIN, "--recompute", "some"], "--recompute", "none, selective, full"),
        ([*TRAIN, "--expert-params", "90e9"], "--expert-params", "cannot exceed --params"),
        (["train", "--tokens", "2e12"], "--params", "give RECIPE"),
        ([*SERVE, "--gpus-per-replica", "0"], "--gpus-per-replica", "an integer >= 1"),
        ([*SERVE, "--gpus-per-replica", "2.5"], "--gpus-per-replica", "an integer >= 1"),
        ([*SERVE, "--daily-users=-5"], "--daily-users", "> 0"),
        ([*SERVE, "--daily-users", "0.5:0.3"], "--daily-users", "low (0.5) must be <= high"),
        ([*SERVE, "--queries", "0"], "--queries", "> 0"),
        ([*SERVE, "--input-tokens=-1"], "--input-tokens", ">= 0"),
        ([*SERVE, "--output-tokens", "0"], "--output-tokens", "> 0"),
        ([*SERVE, "--peak-to-average", "0.5"], "--peak-to-average", ">= 1"),
        ([*SERVE, "--params", "0"], "--params", "> 0"),
        ([*SERVE, "--active-params", "80e9"], "--active-params", "cannot exceed --params"),
        ([*SERVE, "--layers", "0"], "--layers", ">= 1"),
        ([*SERVE, "--kv-heads", "0"], "--kv-heads", ">= 1"),
        ([*SERVE, "--head-dim", "0"], "--head-dim", ">= 1"),
        ([*SERVE, "--prefill-mfu", "1.5"], "--prefill-mfu", "in (0, 1]"),
        ([*SERVE, "--decode-mbu", "2"], "--decode-mbu", "in (0, 1]"),
        ([*SERVE, "--prefill-tok-s", "0"], "--prefill-tok-s", "> 0"),
        ([*SERVE, "--decode-tok-s-per-node", "0"], "--decode-tok-s-per-node", "> 0"),
        ([*SERVE, "--cache-hit-rate", "1.5"], "--cache-hit-rate", "in [0, 1]"),
        (
            [*SERVE, "--prefill-tok-s", "5e3", "--prefill-measured-hit-rate", "1"],
            "--prefill-measured-hit-rate",
            "in [0, 1)",
        ),
        ([*SERVE, "--prefill-measured-hit-rate", "0.5"], "--prefill-measured-hit-rate", "give one"),
        ([*SERVE, "--prefill-mfu", "0.4", "--prefill-tok-s", "5e3"], "--prefill-tok-s", "not both"),
        ([*SERVE, "--input-tokens-per-day", "1e9"], "--output-tokens-per-day", "give both"),
        (
            [*SERVE, "--decode-gpus-per-replica", "16"],
            "--decode-gpus-per-replica",
            "--disaggregated",
        ),
        ([*SERVE, "--gpus-per-node", "0"], "--gpus-per-node", "an integer >= 1"),
        ([*SERVE, "--price=-2"], "--price", ">= 0"),
        ([*SERVE, "--pue", "0.5"], "--pue", ">= 1"),
        ([*TRAIN[:5], "--draws", "20000000"], "--draws", "in [1, 10,000,000]"),
        ([*TRAIN, "--seed=-1"], "--seed", ">= 0"),
    ],
)
def test_out_of_range_input_is_one_line_exit_2(args: list[str], option: str, says: str) -> None:
    line = one_line_error(args, option)
    assert says in line, line


@pytest.mark.parametrize(
    ("args", "option", "says"),
    [
        ([*TRAIN, "--accelerator", "nope"], "--accelerator", "known accelerators: a100"),
        ([*SERVE, "--accelerator", "nope"], "--accelerator", "unknown accelerator 'nope'"),
        ([*TRAIN, "--accelerator", "a100", "--precision", "fp8"], "--precision", "no 'fp8'"),
        ([*SERVE, "--accelerator", "a100", "--precision", "fp8"], "--precision", "no 'fp8'"),
        ([*TRAIN, "--precision", "fp4"], "--precision", "one of bf16, fp8"),
        ([*TRAIN[:5], "--draws", "0"], "--draws", "an integer in [1, 10,000,000]"),
        (["serve", "--draws", "0"], "--draws", "an integer in [1, 10,000,000]"),
        (["fleet", SCENARIO, "--draws", "0"], "--draws", "an integer in [1, 10,000,000]"),
        (["validate", "--draws", "0"], "--draws", "an integer in [1, 10,000,000]"),
        (["train", str(ROOT / "nope.yaml"), "--tokens", "1e9"], "RECIPE", "not found"),
        ([*TRAIN, "--layers", "32", "--d-model", "4096", "--heads", "5"], "--heads", "divide"),
        ([*TRAIN, "--svg", "/proc/no/such/dir/t.svg"], "--svg", "cannot write"),
    ],
)
def test_no_tracebacks(args: list[str], option: str, says: str) -> None:
    assert says in one_line_error(args, option)


def test_through_the_superlab_command_too() -> None:
    """The root ``superlab`` app: the same one line, no traceback, exit 2."""
    res = subprocess.run(
        [sys.executable, "-m", "superlab", "plan", *TRAIN, "--accelerator", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert res.stderr.startswith("error: --accelerator: unknown accelerator 'nope'")
    assert "Traceback" not in res.stderr


def test_valid_ranges_still_run() -> None:
    """The bounds themselves are valid: MFU 1, goodput 1, PUE 1, price 0, a lognormal > 0."""
    args = [*TRAIN, "--mfu", "1", "--goodput", "0.9:1", "--pue", "1", "--price", "0"]
    res = runner.invoke(plan_app, [*args, "--tokens", "lognormal:1e12:3e12", "--json"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(plan_app, [*SERVE, "--cache-hit-rate", "1", "--daily-users", "1e6:2e6"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(("command", "inputs"), [("serve", SERVE_INPUTS), ("train", TRAIN_INPUTS)])
def test_every_numeric_option_has_a_range(command: str, inputs: dict) -> None:
    """An ``N`` option given no range is read nowhere; only --tflops (checked against the
    accelerator's peak) may go without."""
    options = typer.main.get_command(plan_app).commands[command].params
    numbers = {p.name for p in options if "lognormal:p10:p90" in (getattr(p, "help", "") or "")}
    assert numbers - set(inputs) == ({"tflops"} if command == "train" else set())
