"""Llama Guard 3's conversation prompt and its answer, as text (no model, no torch).

The prompt is the one the Llama Guard 3 model card publishes ("Prompt format"; the chat
template in the checkpoints' ``tokenizer_config.json`` renders the same text, except that
the 8B's puts a space before ``<|begin_of_text|>``, which the card's format has not), written
here from that description. The lines marked ``>`` are folded here and are one line each::

    <|begin_of_text|><|start_header_id|>user<|end_header_id|>

    Task: Check if there is unsafe content in '{ROLE}' messages in conversations
    >  according our safety policy with the below categories.

    <BEGIN UNSAFE CONTENT CATEGORIES>
    S1: Violent Crimes.
    ...
    S14: Code Interpreter Abuse.
    <END UNSAFE CONTENT CATEGORIES>

    <BEGIN CONVERSATION>

    User: {turn 1}

    Agent: {turn 2}

    <END CONVERSATION>

    Provide your safety assessment for ONLY THE LAST {ROLE} message in the above conversation:
     - First line must read 'safe' or 'unsafe'.
     - If unsafe, a second line must include a comma-separated list of violated categories.
    >  <|eot_id|><|start_header_id|>assistant<|end_header_id|>

``{ROLE}`` is the role of the last turn, the one assessed. The model answers ``safe``, or
``unsafe`` and on the next line the violated categories (``S1,S10``), then ``<|eot_id|>``;
the 8B card's example answer starts with a blank line (``"\\n\\nsafe"``).

Roles: Llama Guard knows only User and Agent turns, alternating (its chat template raises
on anything else). ``assistant`` is the Agent. Every other role (system, developer, tool,
user) is text that comes into the model from outside it, written by the caller or fetched
by a tool, so it is a User turn: an age stated in a system message or an instruction
hidden in a tool result is judged as user input. Consecutive turns of one side are joined
(blank line between) so the turns alternate as in training; empty messages are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from superlab.serve.safety.check import CATEGORIES

log = logging.getLogger("superlab.serve.safety")

# The names Llama Guard 3's prompt uses (model card, "Prompt format"; the checkpoints' chat
# template): the hazard taxonomy's names in check.CATEGORIES, but three are shorter ("Sex
# Crimes" there is "Sex-Related Crimes"): the model was fine-tuned on these.
PROMPT_NAMES = {
    **CATEGORIES,
    "S3": "Sex Crimes",
    "S4": "Child Exploitation",
    "S11": "Self-Harm",
}
# Llama 3's special tokens around the prompt: each must be one token of the tokenizer.
BEGIN, HEADER, END_HEADER, EOT = (
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)
SPECIAL_TOKENS = (BEGIN, HEADER, END_HEADER, EOT)

Turn = tuple[str, str]  # (Llama Guard role "User" | "Agent", text)


def guard_role(role: str) -> str:
    """Llama Guard's side of a chat role: ``assistant`` is the Agent, every other role a User."""
    return "Agent" if role == "assistant" else "User"


def guard_turns(conversation: Sequence[tuple[str, str]]) -> list[Turn]:
    """Chat messages ``(role, content)`` as alternating User / Agent turns (module docstring)."""
    turns: list[Turn] = []
    for role, content in conversation:
        text = content.strip()  # the chat template strips each message
        if not text:
            continue
        side = guard_role(role)
        if turns and turns[-1][0] == side:
            turns[-1] = (side, f"{turns[-1][1]}\n\n{text}")
        else:
            turns.append((side, text))
    return turns


def prompt_segments(turns: Sequence[Turn], categories: Sequence[str]) -> list[str]:
    """The prompt assessing the last turn, split so each special token is its own segment.

    The text segments never contain a special token of ours, so an encoder can turn the
    specials into their ids and encode the text with special-token matching off: a user who
    writes ``<|eot_id|>`` cannot end the prompt early.
    """
    if not turns:
        raise ValueError("a Llama Guard prompt needs at least one turn")
    role = turns[-1][0]
    listed = "\n".join(f"{c}: {PROMPT_NAMES[c]}." for c in categories)
    conversation = "".join(f"{side}: {text}\n\n" for side, text in turns)
    body = (
        # "according our" (sic) is the published wording; the model was trained on it.
        f"\n\nTask: Check if there is unsafe content in '{role}' messages in conversations "
        "according our safety policy with the below categories.\n\n"
        f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{listed}\n<END UNSAFE CONTENT CATEGORIES>\n\n"
        f"<BEGIN CONVERSATION>\n\n{conversation}<END CONVERSATION>\n\n"
        f"Provide your safety assessment for ONLY THE LAST {role} message in the above "
        "conversation:\n"
        " - First line must read 'safe' or 'unsafe'.\n"
        " - If unsafe, a second line must include a comma-separated list of violated categories."
    )
    return [BEGIN, HEADER, "user", END_HEADER, body, EOT, HEADER, "assistant", END_HEADER]


def build_prompt(turns: Sequence[Turn], categories: Sequence[str] = tuple(PROMPT_NAMES)) -> str:
    """The prompt as one string (what the checkpoint's chat template renders)."""
    return "".join(prompt_segments(turns, categories))


@dataclass(frozen=True)
class Answer:
    """A parsed answer: unsafe or not, the known categories named, and whether it was well formed.

    Not well formed: a first line that is neither ``safe`` nor ``unsafe`` (counted as safe),
    or ``unsafe`` with no known category (unsafe, no category). See ``parse_answer``.
    """

    unsafe: bool
    categories: list[str] = field(default_factory=list)
    well_formed: bool = True


def parse_answer(text: str) -> Answer:
    """Llama Guard's answer: ``safe``, or ``unsafe`` and a line of categories (``S1,S10``).

    As in Meta's reference code, an answer is unsafe when its first line is ``unsafe`` and
    safe otherwise. So a malformed answer fails open, with a warning: a text written to
    steer the guard would make it say ``safe``, which no parser can tell from a real one,
    so failing closed on garbage would stop no attack, only refuse requests when the model
    glitches; ``GuardCheck.load`` refuses a checkpoint that does not answer in this format,
    and the other layers and the floor still apply. Unknown category codes are ignored with
    a warning; ``unsafe`` with no known category stays unsafe (``GuardCheck.flags``).
    """
    lines = [line.strip() for line in text.strip().splitlines()]
    first = lines[0].lower() if lines else ""
    if first == "safe":
        return Answer(False)
    if first != "unsafe":
        log.warning("guard: malformed answer %r, counted as safe", text[:80])
        return Answer(False, [], well_formed=False)
    found: list[str] = []
    for code in (lines[1] if len(lines) > 1 else "").split(","):
        code = code.strip().upper()
        if code in CATEGORIES:
            if code not in found:
                found.append(code)
        elif code:
            log.warning("guard: unknown category %r in answer %r, ignored", code, text[:80])
    if not found:
        log.warning("guard: 'unsafe' without a known category in %r", text[:80])
    return Answer(True, found, well_formed=bool(found))
