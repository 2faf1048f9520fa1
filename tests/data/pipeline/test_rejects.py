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


def test_every_kind_of_bad_input_is_skipped_counted_and_listed(tmp_path: Path) -> None:
    import zstandard

    goods = {f"g{i}": english(f"good{i}") for i in range(6)}

    def line(doc_id: str) -> bytes:
        return json.dumps({"id": doc_id, "text": goods[doc_id]}).encode() + b"\n"

    mixed = tmp_path / "a.jsonl"  # non-UTF-8 bytes, an empty text, a giant record
    mixed.write_bytes(
        line("g0")
        + b'{"id": "latin1", "text": "caf\xe9 au lait"}\n'
        + line("g1")
        + b'{"id": "empty", "text": "   "}\n'
        + json.dumps({"id": "giant", "text": "word " * 3000}).encode()
        + b"\n"
        + line("g2")
    )
    zst = tmp_path / "b.jsonl.zst"  # good records, then a stream that stops decoding
    ok = zstandard.ZstdCompressor().compress(line("g3") + line("g4"))
    zst.write_bytes(ok + b"\x28\xb5\x2f\xfd" + bytes(range(200)))
    gz = tmp_path / "c.jsonl.gz"  # a gzip whose deflate data is damaged
    body = bytearray(gzip.compress(b"".join(line("g5") for _ in range(1)) + b"x" * 5000))
    body[len(body) // 2 : len(body) // 2 + 16] = b"\xff" * 16
    gz.write_bytes(bytes(body))

    rec = recipe([mixed, zst, gz], workers=2, heldout_fraction=0.0)
    rec["data"]["source"]["max_doc_bytes"] = 10_000
    ctx = context(tmp_path / "run", rec)
    run(ctx)

    clean = {json.loads(x)["id"] for x in (ctx.run.data / "clean.jsonl").open()}
    assert {"g0", "g1", "g2", "g3", "g4"} <= clean  # every good record before any damage
    rejects = [json.loads(x) for x in (ctx.run.data / "rejects.jsonl").open()]
    by_source: dict[str, set[str]] = {}
    for r in rejects:
        if r["step"] == "read":
            by_source.setdefault(r["source"], set()).add(r["reason"])
    assert by_source[str(mixed)] == {"read:bad_utf8", "read:empty", "read:giant"}
    assert by_source[str(zst)] & {"read:corrupt_zstd", "read:truncated"}
    assert by_source[str(gz)] & {"read:corrupt_gzip", "read:invalid_json", "read:truncated"}
    offsets = sorted(r["offset"] for r in rejects if r["source"] == str(mixed))
    assert offsets == [2, 4, 5]  # line numbers in the file


def test_malformed_warc_files_never_stop_the_run(tmp_path: Path, shared_data: Path) -> None:
    good = shared_data / "warc" / "cc-2020-34-excerpt.warc.gz"
    bad = sorted((shared_data / "warc" / "malformed").iterdir())
    rec = recipe([good, *bad], workers=2, heldout_fraction=0.0)
    rec["data"]["source"]["kind"] = "warc"
    rec["data"]["filters"] = {
        "min_words": 1,
        "min_stop_words": 0,
        "c4_lines": False,
        "fineweb": False,
    }
    ctx = context(tmp_path / "run", rec)
    run(ctx)
    rejects = [json.loads(x) for x in (ctx.run.data / "rejects.jsonl").open()]
    bad_sources = {r["source"] for r in rejects if r["step"] == "read"}
    assert bad_sources & {str(p) for p in bad}  # malformed files were read, and reported
    stats = json.loads(ctx.run.data_stats.read_text())
    assert stats["steps"]["read"]["docs_out"] > 0  # the good file's pages came through
