"""Rewards: the built-ins, a function in TRL's signature, and every error path."""

from __future__ import annotations

import pytest

from superlab.common import StageError
from superlab.config.rl import RewardSpec
from superlab.post.rewards import RewardError, build_rewards, extract_answer, score_group

from .rl_helpers import reward_module


def _build(*names: str, tag: str | None = "answer"):
    return build_rewards([RewardSpec(name=n) for n in names], "answer", tag)


def test_builtins():
    rewards = _build("exact_match", "numeric", "format")
    completions = ["<answer>12</answer>", " <answer> 12.0 </answer>", "12", "x<answer>13</answer>"]
    got = score_group(rewards, "p0", ["q"] * 4, completions, {"answer": ["12"] * 4})
    assert got == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]]
    assert extract_answer("<answer>1</answer> then <answer>2</answer>", "answer") == "2"
    assert extract_answer(" 7 ", None) == "7"
    # conversational completions, as TRL passes them
    msgs = [[{"role": "assistant", "content": "<answer>5</answer>"}]]
    assert score_group(rewards[:1], "p", [[]], msgs, {"answer": ["5"]}) == [[1.0]]


def test_a_trl_signature_function(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(reward_module(tmp_path)))
    (fn,) = _build("rl_test_rewards:by_length")
    got = score_group([fn], "p", ["q", "q"], ["ab", "abcd"], {"answer": ["1", "1"]})
    assert got == [[2.0, 1.0]]


def test_import_failure_is_one_line_naming_the_path():
    with pytest.raises(StageError) as e:
        _build("no_such_module_xyz:fn")
    msg = str(e.value)
    assert "\n" not in msg and "'no_such_module_xyz:fn'" in msg and "rl.rewards[0].name" in msg


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("boom", "raised on prompt 'p7': ZeroDivisionError: no sevens"),
        ("nan", "returned nan for completion 0 of prompt 'p7'"),
        ("none", "returned None for completion 0 of prompt 'p7'"),
        ("short", "returned 1 values for 2 completions of prompt 'p7'"),
    ],
)
def test_every_error_path_names_the_prompt(tmp_path, monkeypatch, name, says):
    monkeypatch.syspath_prepend(str(reward_module(tmp_path)))
    rewards = _build(f"rl_test_rewards:{name}")
    with pytest.raises(RewardError) as e:
        score_group(rewards, "p7", ["What is 7 + 1?"] * 2, ["a", "b"], {"answer": ["8", "8"]})
    assert says in str(e.value) and e.value.prompt_id == "p7"
    if name == "boom":
        assert "ZeroDivisionError" in e.value.traceback_text


def test_unknown_builtin_is_refused_by_the_recipe():
    with pytest.raises(ValueError, match="not one of exact_match"):
        RewardSpec(name="exactmatch")
