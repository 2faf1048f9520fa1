from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from superlab.eval.hle import (
    HLEFormatError,
    calibration_error,
    choice_letters,
    normalize,
    read_items,
    score,
    summarize,
)
from superlab.eval.lm import Scorer

from .helpers import OracleLM, tokenizer

PROMPT = "Question: {question}\nAnswer:"
MC = "Which river is north?\nAnswer Choices:\nA. the city\nB. the river\nC. the king"


def records() -> list[dict]:
    return [
        {"id": "m1", "question": MC, "answer": "B", "answer_type": "multipleChoice",
         "category": "Geo"},
        {"id": "e1", "question": "Name the war.", "answer": "north war",
         "answer_type": "exactMatch", "category": "History"},
        {"id": "e2", "question": "Name the team.", "answer": "south team",
         "answer_type": "exactMatch", "category": "History"},
        {"id": "img", "question": "What is shown?", "answer": "x", "answer_type": "exactMatch",
         "category": "Geo", "image": "data:image/png;base64,AAAA"},
    ]  # fmt: skip


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".parquet"])
def test_read_items_from_each_format(tmp_path, suffix):
    path = tmp_path / f"hle{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(records()))
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records()))
    else:
        rows = [{**r, "image": r.get("image", "")} for r in records()]
        pq.write_table(pa.Table.from_pylist(rows), path)
    items, skipped = read_items(path)
    assert [it.id for it in items] == ["m1", "e1", "e2"]
    assert skipped == {"has an image (the model reads text only)": 1}
    assert items[0].category == "Geo" and items[1].answer == "north war"
    assert [it.id for it in read_items(path, limit=2)[0]] == ["m1", "e1"]


def test_malformed_items_name_the_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    rows = records()[:2]
    rows[1] = {k: v for k, v in rows[1].items() if k != "answer"}
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(HLEFormatError, match=r"bad.jsonl:2: missing field 'answer'"):
        read_items(path)
    rows[1] = {**records()[1], "answer_type": "freeForm"}
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(HLEFormatError, match=r"bad.jsonl:2: field 'answer_type' is 'freeForm'"):
        read_items(path)
    path.write_text(json.dumps(records()[0]) + "\n{not json\n")
    with pytest.raises(HLEFormatError, match=r"bad.jsonl:2: invalid JSON"):
        read_items(path)
    (tmp_path / "x.csv").write_text("id,question\n")
    with pytest.raises(HLEFormatError, match=r"x\.csv: unknown format"):
        read_items(tmp_path / "x.csv")
    with pytest.raises(HLEFormatError, match=r"nothere\.json: no such file"):
        read_items(tmp_path / "nothere.json")


def test_choice_letters_and_normalize():
    assert choice_letters(MC) == ["A", "B", "C"]
    assert choice_letters("Pick:\n(A) one\n(B) two\nD) four") == ["A", "B", "D"]
    assert choice_letters("No choices. A is fine.") == []
    assert normalize("  North   War. ") == "north war"


def test_calibration_error_counts_every_bin():
    # 150 items, all answered wrong at confidence 1: the calibration error is 1. The copied
    # calib_err makes one bin of 150 (150 // 100 = 1) and skips it as "the last": 0.
    assert calibration_error(np.ones(150), np.zeros(150), beta=100) == 1.0
    # Fewer items than beta: one bin (the copied version indexes an empty bin list).
    assert calibration_error(np.full(50, 0.8), np.r_[np.ones(25), np.zeros(25)], 100) == (
        pytest.approx(0.3)
    )
    # 250 items, beta 100: bins of 100 and 150 (the remainder joins the last bin).
    conf = np.r_[np.full(100, 0.2), np.full(150, 0.9)]
    corr = np.r_[np.zeros(100), np.ones(75), np.zeros(75)]  # bin accuracies 0 and 0.5
    want = math.sqrt(100 / 250 * 0.2**2 + 150 / 250 * 0.4**2)
    assert calibration_error(conf, corr, 100) == pytest.approx(want)
    assert calibration_error(conf, corr, 100, p="1") == pytest.approx(0.4 * 0.2 + 0.6 * 0.4)
    assert calibration_error(conf, corr, 100, p="max") == pytest.approx(0.4)
    calibrated = np.r_[np.full(100, 0.25), np.full(100, 0.75)]
    right = np.r_[np.ones(25), np.zeros(75), np.ones(75), np.zeros(25)]
    assert calibration_error(calibrated, right, 100) == pytest.approx(0.0)
    assert calibration_error(np.array([]), np.array([]), 100) == 0.0


def test_score_and_summarize_with_an_oracle(tmp_path):
    tok = tokenizer(tmp_path / "tok.json")
    items, _ = read_items(_write(tmp_path))
    eos = tok.token_to_id("<|endoftext|>")

    def enc(text: str) -> list[int]:
        return tok.encode(text, add_special_tokens=False).ids

    def ctx(q: str) -> list[int]:
        return [eos, *enc(PROMPT.format(question=q))]

    newline = enc("\n")
    seqs = [
        ctx(items[0].question) + enc(" B"),
        ctx(items[1].question) + enc(" north war") + newline,
        ctx(items[2].question) + enc(" east city") + newline,  # a wrong answer
    ]
    scorer = Scorer(OracleLM(seqs, tok.get_vocab_size()), tok, 256)
    rows = score(items, scorer, PROMPT, max_new_tokens=8)
    assert [r["prediction"] for r in rows] == ["B", " north war", " east city"]
    assert [r["correct"] for r in rows] == [True, True, False]
    p = math.exp(10) / (math.exp(10) + tok.get_vocab_size() - 1)  # the oracle's token probability
    assert rows[0]["confidence"] == pytest.approx(math.exp(10) / (math.exp(10) + 2), rel=1e-4)
    assert rows[1]["confidence"] == pytest.approx(p ** len(enc(" north war")), rel=1e-4)
    s = summarize(rows, beta=100)
    assert s["n"] == 3 and s["accuracy"] == pytest.approx(2 / 3)
    assert s["by_category"] == {
        "Geo": {"n": 1, "accuracy": 1.0},
        "History": {"n": 2, "accuracy": 0.5},
    }
    assert s["calibration_bins"] == 1
    conf = np.array([r["confidence"] for r in rows])
    assert s["calibration_error"] == pytest.approx(abs(conf.mean() - 2 / 3))


def _write(tmp_path) -> object:
    path = tmp_path / "hle.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records()))
    return path
