"""Bad input never stops the run: each bad record is in rejects.jsonl with its file and offset."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from superlab.data.stage import run

from ..helpers import english
from .corpus import context, recipe


def test_bad_records_are_rejected_with_file_and_offset(tmp_path: Path) -> None:
    good = [json.dumps({"id": f"g{i}", "text": english(i)}) for i in range(3)]
    plain = tmp_path / "a.jsonl"
    plain.write_text(
        "\n".join([good[0], "{not json", "[1, 2]", good[1], '{"id": "x"}', good[2]]) + "\n"
    )
    cut = tmp_path / "b.jsonl.gz"  # a gzip cut off mid-stream: its good lines still count
    many = [json.dumps({"id": f"b{i}", "text": english(f"b{i}")}) for i in range(200)]
    whole = gzip.compress(("\n".join(many) + "\n").encode())
    cut.write_bytes(whole[: len(whole) // 2])
    ctx = context(tmp_path / "run", recipe([plain, cut], workers=2, heldout_fraction=0.0))
    summary = run(ctx)

    rejects = [json.loads(line) for line in (ctx.run.data / "rejects.jsonl").open()]
    read = [(r["source"], r["offset"], r["reason"]) for r in rejects if r["step"] == "read"]
    assert read[:3] == [
        (str(plain), 2, "read:invalid_json"),
        (str(plain), 3, "read:not_object"),
        (str(plain), 5, "read:missing_text"),
    ]
    assert len(read) == 4 and read[3][0] == str(cut) and read[3][2] == "read:truncated"
    stats = json.loads(ctx.run.data_stats.read_text())
    from_cut = stats["steps"]["read"]["docs_out"] - 3
    assert 0 < from_cut < 200 and summary["docs_out"] == 3 + from_cut  # nothing else removed
    assert stats["steps"]["read"]["removed"] == {
        "read:invalid_json": 1,
        "read:missing_text": 1,
        "read:not_object": 1,
        "read:truncated": 1,
    }
