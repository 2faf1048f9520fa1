"""Conversations through the data pipeline: language id, PII masking, exact and near dedup
over whole conversations, rejects with reasons, and chat rows out (data/chat.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from superlab.common import RunDir, StageContext
from superlab.config import Recipe
from superlab.data import stage
from superlab.data.chat.documents import (
    SEP,
    conversation_document,
    conversation_messages,
    has_chat_source,
)

PHOTO = (
    "Photosynthesis is the process by which green plants turn light into chemical energy. "
    "In the chloroplasts, chlorophyll absorbs sunlight, and the plant uses that energy to "
    "split water and to build sugar from carbon dioxide taken from the air. Oxygen is "
    "released as a by-product, which is why forests and the ocean's algae matter so much "
    "for the air that we breathe every day."
)
TRAINS = (
    "Trains were first powered by steam engines that burned coal to boil water. The steam "
    "pushed pistons that turned the wheels, and the railway network grew quickly across "
    "the country during the nineteenth century. Later, diesel and electric locomotives "
    "replaced steam because they were cleaner, faster and much cheaper to run over long "
    "distances, and they are still used by most of the lines that carry people to work."
)
FRENCH = (
    "Le chemin de fer est un syst\u00e8me de transport guid\u00e9 servant au d\u00e9placement "
    "de trains, c'est-\u00e0-dire de convois ferroviaires constitu\u00e9s de mat\u00e9riel "
    "roulant tract\u00e9 par une locomotive, sur une voie ferr\u00e9e. Il est utilis\u00e9 "
    "pour le transport de personnes et de marchandises dans le monde entier depuis longtemps."
)


def conv(cid: str, *turns: tuple[str, str]) -> dict:
    return {"id": cid, "conversations": [{"from": f, "value": v} for f, v in turns]}


def sharegpt_file(path: Path) -> Path:
    ask = "Can you explain how photosynthesis works? Write to jane.doe@mail-host.org with it."
    records = [
        conv("a", ("human", ask), ("gpt", PHOTO), ("human", "Thanks, and why is it green?"),
             ("gpt", "Because chlorophyll reflects green light and absorbs the red and blue.")),
        conv("b", ("human", ask), ("gpt", PHOTO), ("human", "Thanks, and why is it green?"),
             ("gpt", "Because chlorophyll reflects green light and absorbs the red and blue.")),
        conv("c", ("human", "How did trains work in the past and what powers them now?"),
             ("gpt", TRAINS)),
        conv("d", ("human", "How did trains work in the past and what powers them today?"),
             ("gpt", TRAINS)),
        conv("e", ("human", "Parle-moi du chemin de fer, s'il te pla\u00eet."), ("gpt", FRENCH)),
        conv("f", ("human", "Tell me about the moon."), ("gpt", "The moon is")),
    ]  # fmt: skip
    raw = json.dumps(records, indent=2).encode()
    path.write_bytes(raw[: raw.rindex(b'"The moon is"')])  # cut inside the last conversation
    return path


@pytest.fixture
def ctx(tmp_path: Path) -> StageContext:
    src = sharegpt_file(tmp_path / "sharegpt.json")
    recipe = Recipe.model_validate(
        {
            "name": "chat",
            "data": {
                "source": {"kind": "sharegpt", "paths": [str(src)]},
                # dialogue is not web text: C4's line rules would cut turns, FineWeb's
                # short-line rule would drop them; length, language and Gopher stay on
                "filters": {"min_words": 10, "c4_lines": False, "fineweb": False},
                "heldout_fraction": 0.0,
                "workers": 1,
            },
            "tokenizer": {"vocab_size": 300},
        }
    )
    return StageContext(recipe=recipe, run=RunDir(tmp_path / "run"))


def test_conversations_through_the_pipeline_come_out_as_chat_rows(ctx: StageContext) -> None:
    stage.run(ctx)
    rows = [json.loads(line) for line in (ctx.run.data / "chat.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["sharegpt-000000", "sharegpt-000002"]
    first = rows[0]["messages"]
    assert [m["role"] for m in first] == ["user", "assistant", "user", "assistant"]
    # PII masked inside its message; every boundary kept
    assert first[0]["content"].endswith("Write to email@example.com with it.")
    assert first[1]["content"] == PHOTO and rows[1]["messages"][1]["content"] == TRAINS
    assert rows[0]["split"] == "train" and rows[0]["offset"] == 0
    rejects = [
        json.loads(line) for line in (ctx.run.data / "rejects.jsonl").read_text().splitlines()
    ]
    by_offset = {r["offset"]: r["reason"] for r in rejects}
    assert by_offset == {
        1: "dedup:exact",  # the same conversation again
        3: "dedup:near",  # one word changed
        4: "language:fr",
        5: "read:truncated",  # the cut-off tail: counted, not an error
    }
    stats = json.loads(ctx.run.data_stats.read_text())
    # masking runs before dedup: the exact copy was masked too, then removed
    assert stats["removed"]["read:truncated"] == 1 and stats["masked"] == {"pii:email": 2}
    chat = {k: v for k, v in stats["chat"].items() if k != "seconds"}
    assert chat == {"conversations": 2, "assistant_turns": 3, "removed": {}}


def test_boundaries_lost_are_refused_not_mislabelled() -> None:
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    doc = conversation_document("x", msgs, "src", 0)
    assert doc.text == f"hi{SEP}yo" and conversation_messages(doc) == msgs
    doc.text = "hi yo"  # a step that rewrote the text across a boundary
    assert conversation_messages(doc) == "chat:boundaries_lost"


def test_only_chat_sources_add_the_chat_step(ctx: StageContext, tmp_path: Path) -> None:
    assert has_chat_source(ctx.recipe.data)
    plain = Recipe.model_validate(
        {"name": "p", "data": {"source": {"kind": "jsonl", "paths": ["x.jsonl"]}}}
    )
    assert not has_chat_source(plain.data)
