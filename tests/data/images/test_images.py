"""The generated shapes task, its reader's rejects, and a split's markers and resume."""

import base64
import io
import json
import pickle
import random

import numpy as np
import pytest

from superlab.data.images import codec, scenes, shards, text

PIL = pytest.importorskip("PIL.Image", reason="pillow is not installed (superlab[vision])")


def test_answers_follow_the_scene():
    scene = [
        scenes.Shape("circle", "red", "big", 0, 0),
        scenes.Shape("square", "blue", "small", 0, 2),
        scenes.Shape("circle", "green", "small", 1, 1),
    ]
    assert scenes._left_of(scene, scene[1]) == "red circle"
    assert scenes._left_of(scene, scene[2]) == "nothing"
    qas = scenes.questions(scene, random.Random(0))
    by_type = {q.type: q for q in qas}
    assert by_type["color"].question == "what color is the square?"
    assert by_type["color"].answer == "blue"  # circles are two: never asked
    assert {q.type for q in qas} == set(scenes.TYPES)
    for q in qas:
        if q.type == "count":
            word = q.question.split()[2].rstrip("?")
            want = sum(s.color == word or f"{s.kind}s" == word for s in scene)
            assert q.answer == str(want)
    img = scenes.draw(scene, 48)
    assert tuple(img[8, 8]) == scenes.COLORS["red"]  # inside the big red circle's cell
    assert tuple(img[40, 40]) == (0, 0, 0)  # an empty cell


def test_splits_from_different_seeds_differ_and_a_seed_repeats():
    a, b = scenes.examples(4, 1, 24), scenes.examples(4, 2, 24)
    again = scenes.examples(4, 1, 24)
    assert all(np.array_equal(x[0], y[0]) and x[1] == y[1] for x, y in zip(a, again, strict=False))
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, b, strict=False))


def _png(side: int = 24) -> str:
    return base64.b64encode(codec.encode_png(np.zeros((side, side, 3), np.uint8))).decode()


def _gif() -> str:
    out = io.BytesIO()
    PIL.new("RGB", (4, 4)).save(out, format="GIF")
    return base64.b64encode(out.getvalue()).decode()


QS = [{"type": "count", "question": "how many circles?", "answer": "0"}]
BAD = [
    ("{not json", "malformed JSON"),
    (json.dumps({"image": _png()}), "no 'questions' list"),
    (json.dumps({"image": _png(), "questions": [{"type": "count"}]}), "a question without"),
    (json.dumps({"questions": QS}), "no 'image' string"),
    (json.dumps({"image": "@@not base64@@", "questions": QS}), "malformed base64"),
    (json.dumps({"image": "data:image/gif;base64,AAAA", "questions": QS}), "unsupported data URL"),
    (json.dumps({"image": _gif(), "questions": QS}), "unsupported image format 'GIF'"),
    (json.dumps({"image": _png()[:40], "questions": QS}), "unreadable image"),
    (json.dumps({"image": _png(1100), "questions": QS}), "over 1024 px a side"),
]


def test_bad_rows_are_rejects_with_reasons_and_lines(tmp_path):
    src = tmp_path / "images" / "train.source.jsonl"
    src.parent.mkdir()
    good = json.dumps({"image": "data:image/png;base64," + _png(30), "questions": QS})
    src.write_text("\n".join([good] + [line for line, _ in BAD]) + "\n")
    stats = shards.write_split(tmp_path, "train", side=24, tokens_per_image=4)
    assert stats == {"split": "train", "images": 1, "questions": 1, "rejected": len(BAD)}
    rejects = [
        json.loads(x) for x in (tmp_path / "images/train.rejects.jsonl").read_text().splitlines()
    ]
    for n, (reject, (_, why)) in enumerate(zip(rejects, BAD, strict=True), start=2):
        assert why in reject["reason"]
        assert reject["location"].startswith(f"{src}:{n}")
    images, rows = shards.read_split(tmp_path, "train")
    assert images.shape == (1, 24, 24, 3)  # resized to the task's side
    assert rows == [{"image": 0, **QS[0]}]


def test_over_the_byte_limit_is_a_reject():
    data = codec.encode_png(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    reject = codec.decode(data, max_bytes=100)
    assert "over the limit of 100" in reject
    assert isinstance(reject, codec.Reject) and reject.code == "image_too_large"


def test_each_reject_carries_its_code_and_pickles_with_it():
    png = base64.b64encode(codec.encode_png(np.zeros((4, 4, 3), np.uint8))).decode()
    assert codec.read(codec.DATA_URL + png, size=8).shape == (8, 8, 3)
    cases = {
        "data:image/jpeg;base64,AAAA": "unsupported_image_format",
        "not base64!": "invalid_base64",
        base64.b64encode(b"GIF89a" + bytes(20)).decode(): "invalid_image",
        png[: len(png) // 2 // 4 * 4]: "invalid_image",  # a truncated PNG
    }
    for given, code in cases.items():
        reject = codec.read(given)
        assert isinstance(reject, codec.Reject) and reject.code == code, (given, reject)
        again = pickle.loads(pickle.dumps(reject))
        assert again == reject and again.code == code


def test_a_finished_split_is_skipped_and_an_unfinished_one_redone(tmp_path, monkeypatch):
    stats = shards.build_split(tmp_path, "heldout", n=5, seed=3, side=24, tokens_per_image=4)
    images, rows = shards.read_split(tmp_path, "heldout")
    assert stats["images"] == 5 == len(images) and stats["rejected"] == 0
    assert len(rows) == stats["questions"] >= 5 * 3
    calls = []
    monkeypatch.setattr(shards, "write_source", lambda *a: calls.append(a))
    assert (
        shards.build_split(tmp_path, "heldout", n=5, seed=3, side=24, tokens_per_image=4) == stats
    )
    assert calls == []  # skipped: the marker and outputs exist
    monkeypatch.undo()
    (tmp_path / "images/heldout.done").unlink()  # interrupted before its marker
    with pytest.raises(FileNotFoundError, match="not finished"):
        shards.read_split(tmp_path, "heldout")
    assert (
        shards.build_split(tmp_path, "heldout", n=5, seed=3, side=24, tokens_per_image=4) == stats
    )
    again, _ = shards.read_split(tmp_path, "heldout")
    assert np.array_equal(again, images)


def test_token_layout_targets_only_the_answer():
    row = {"type": "color", "question": "what color is the square?", "answer": "blue"}
    ids, targets = text.example(row, tokens_per_image=4)
    assert ids[:6] == [text.IMAGE_START, *[text.IMAGE] * 4, text.IMAGE_END]
    kept = [t for t in targets if t != -100]
    assert text.decode(kept) == "blue" and kept[-1] == text.EOS
    assert targets[ids.index(text.EOS) - 1] == text.EOS  # targets are the next token
    control, _ = text.example(row, tokens_per_image=4, image=False)
    assert control == ids[6:]
    x, y = text.batch([row, {**row, "answer": "red"}], 4)
    assert x.shape == y.shape and x[1, -1] == text.PAD and y[1, -1] == -100
    with pytest.raises(ValueError, match="not in the image task's vocabulary"):
        text.encode("what is é?")


def test_tokens_hold_both_layouts_of_every_question(tmp_path):
    shards.build_split(tmp_path, "train", n=3, seed=5, side=24, tokens_per_image=4)
    _, rows = shards.read_split(tmp_path, "train")
    tokens = np.load(tmp_path / "images/train.tokens.npz")
    assert list(tokens["image"]) == [r["image"] for r in rows]
    assert list(tokens["type"]) == [r["type"] for r in rows]
    for q, row in enumerate(rows):
        for key, image in (("", True), ("_text", False)):
            ids, targets = text.example(row, 4, image=image)
            n = len(ids)
            assert tokens[f"x{key}"][q, :n].tolist() == ids
            assert tokens[f"y{key}"][q, :n].tolist() == targets
            assert not tokens[f"x{key}"][q, n:].any()  # padded with PAD = 0
            assert (tokens[f"y{key}"][q, n:] == -100).all()


def test_a_split_made_with_other_settings_is_redone(tmp_path):
    first = shards.build_split(tmp_path, "train", n=3, seed=5, side=24, tokens_per_image=4)
    again = shards.build_split(tmp_path, "train", n=4, seed=5, side=24, tokens_per_image=4)
    assert (first["images"], again["images"]) == (3, 4)
    assert json.loads((tmp_path / "images/train.done").read_text())["settings"]["n"] == 4
    assert not shards.is_done(tmp_path, "train", shards.settings(3, 5, 24, 4))
