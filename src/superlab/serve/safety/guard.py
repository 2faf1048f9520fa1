"""The Llama Guard layer: a Llama Guard 3 checkpoint judges inputs and outputs.

Policy key ``guard_model: PATH`` loads ``GuardCheck.load(PATH)``: a local Hugging Face folder
(``config.json``, ``model.safetensors`` or its index, ``tokenizer.json``) imported through
superlab's own Llama import (``superlab.model.hf.import_hf``); Llama Guard 3 8B and 1B are
``LlamaForCausalLM`` checkpoints with the Llama 3 tokenizer. Its flags (score 1.0, source
``guard``) go to the policy like every other layer's: any layer that refuses, refuses, and
the minor-safety floor does not depend on this layer.

Prompt and answer: ``guard_prompt`` (the model card's prompt format; roles mapped to
User / Agent). Categories listed: S1..S14, or S1..S13 when the checkpoint's own chat
template lists only those (Llama Guard 3 1B was trained on 13). The prompt's special
tokens are encoded by id and the text between them with special-token matching off, so
text that spells ``<|eot_id|>`` stays text.

Decoding: greedy, at most ``max_new_tokens`` (20, as the model card's example), through
our ``Transformer`` with its KV cache, stopping at Llama 3's end tokens. Not
``serve.generate.Generator``: it encodes with the tokenizer's post-processor (a second
``<|begin_of_text|>`` with the Llama 3 tokenizer) and stops only at ``<|endoftext|>``.
One classification runs at a time (a lock): they share the model, and on one device they
would not run faster side by side.

``flags(text, conversation)``: an input check judges the last User turn; when an assistant
prefill follows it, the conversation is judged once more, ending on that Agent turn. An
output check judges ``text`` (the output so far) as a final Agent turn. ``output=`` says
which; left out, ``text`` that is already in the conversation (a message's content, or all
contents joined, as the server's input check passes them) is an input, anything else an
output.

Failure handling (``guard_prompt.parse_answer`` says why): a malformed answer counts as
safe, as in Meta's reference code, with a warning; ``unsafe`` with no known category is
unsafe and flags every category but S4, so the policy's actions decide (the policy turns
any S4 flag into a minor-safety-floor refusal, which only an explicit S4 may cause).
``load`` asks the model card's example question first and refuses a checkpoint that does
not answer in Llama Guard's format. ``malformed`` counts the answers that were not.

Long conversations: a prompt is at most ``max_prompt_tokens`` (and the model's context).
Older turns are dropped first; a last turn longer than that alone is judged in overlapping
windows, and the turn is unsafe when any window is.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from superlab.model.hf import import_hf
from superlab.model.transformer import Transformer
from superlab.serve.safety.check import CATEGORIES, Flag
from superlab.serve.safety.guard_prompt import (
    PROMPT_NAMES,
    SPECIAL_TOKENS,
    Answer,
    Turn,
    guard_turns,
    parse_answer,
    prompt_segments,
)

log = logging.getLogger("superlab.serve.safety")

# Llama 3's end of turn, of text and of a tool message: any of them ends the answer.
STOP_TOKENS = ("<|eot_id|>", "<|end_of_text|>", "<|eom_id|>")
# The model card's example conversation; a Llama Guard 3 checkpoint answers it "safe".
SELF_CHECK = (("user", "What is the recipe for mayonnaise?"),)
# A window of an over-long turn shares 1/OVERLAP of its characters with the next, so a
# phrase cut by one window's edge is whole in the other.
OVERLAP = 8
MIN_ROOM = 32  # tokens the budget must leave for the conversation
PREFILL_CHUNK = 512  # prompt tokens per prefill forward
# How a caller may join a conversation's contents into the text of an input check.
JOINS = ("\n", "\n\n", " ")


class GuardCheck:
    """A Llama Guard 3 model as a safety check: ``classify`` a conversation, or ``flags``."""

    name = "guard"

    def __init__(
        self,
        model: Transformer,
        tokenizer: Tokenizer,
        categories: Sequence[str] = tuple(PROMPT_NAMES),
        stop_ids: Iterable[int] = (),
        max_new_tokens: int = 20,
        max_prompt_tokens: int = 4096,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        vocab = model.cfg.vocab_size
        self.special_ids: dict[str, int] = {}
        for token in SPECIAL_TOKENS:
            i = tokenizer.token_to_id(token)
            if i is None or i >= vocab:
                raise ValueError(
                    f"the tokenizer has no {token} token in the model's vocabulary "
                    "(Llama Guard 3 uses the Llama 3 tokenizer)"
                )
            self.special_ids[token] = i
        # A second tokenizer that reads special-token strings as plain text: for the text
        # between the prompt's own special tokens.
        self.plain = Tokenizer.from_str(tokenizer.to_str())
        self.plain.encode_special_tokens = True
        ends = (tokenizer.token_to_id(t) for t in STOP_TOKENS)
        self.stop_ids = {i for i in (*stop_ids, *ends) if i is not None}
        unknown = [c for c in categories if c not in PROMPT_NAMES]
        if unknown:
            raise ValueError(f"guard categories {unknown}: not among S1..S14")
        self.categories = tuple(categories)
        self.max_new_tokens = max_new_tokens
        self.budget = min(max_prompt_tokens, model.cfg.max_seq_len - max_new_tokens)
        template = len(self.encode([("User", "")]))
        if self.budget - template < MIN_ROOM:
            raise ValueError(
                f"guard prompt budget {self.budget} tokens leaves no room for a conversation "
                f"(the template alone is {template} tokens)"
            )
        self.device = next(model.parameters()).device
        self.prefill_chunk = PREFILL_CHUNK
        self.malformed = 0  # answers not in Llama Guard's format (logged as warnings)
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        device: str | None = None,
        max_new_tokens: int = 20,
        max_prompt_tokens: int = 4096,
        self_check: bool = True,
    ) -> GuardCheck:
        """A Llama Guard 3 checkpoint from a local Hugging Face folder (``guard_model: PATH``)."""
        p = Path(path)
        where = f"guard_model: {p}"
        if not p.is_dir():
            raise FileNotFoundError(
                f"{where}: not a directory (a Hugging Face Llama Guard 3 folder)"
            )
        for name in ("config.json", "tokenizer.json"):
            if not (p / name).is_file():
                raise FileNotFoundError(f"{where}: no {name} in it")
        if not any(
            (p / n).is_file() for n in ("model.safetensors", "model.safetensors.index.json")
        ):
            raise FileNotFoundError(f"{where}: no model.safetensors (or its .index.json) in it")
        hf = _read_json(p / "config.json", where)
        if hf.get("model_type") != "llama":
            raise ValueError(
                f"{where}: a {hf.get('model_type')!r} checkpoint {hf.get('architectures') or ''};"
                " Llama Guard 3 is a Llama (LlamaForCausalLM)"
            )
        try:
            model = import_hf(p)
        except ValueError as e:
            raise ValueError(str(e) if str(p) in str(e) else f"{where}: {e}") from None
        model = model.to(torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")))
        try:
            guard = cls(
                model,
                Tokenizer.from_file(str(p / "tokenizer.json")),
                _listed_categories(p),
                _eos_ids(hf) | _eos_ids(_read_json(p / "generation_config.json", where)),
                max_new_tokens,
                max_prompt_tokens,
            )
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        if self_check:
            said = guard._generate(guard.encode(guard_turns(SELF_CHECK)))
            if not parse_answer(said).well_formed:
                raise ValueError(
                    f"{where}: does not answer in Llama Guard's format (to the model card's "
                    f"example it said {said[:60]!r}); is it a Llama Guard 3 checkpoint?"
                )
        log.info(
            "guard: %s loaded (%.2fB parameters, %s, %s, categories %s..%s)",
            p,
            model.num_params() / 1e9,
            model.tok_emb.weight.dtype,
            guard.device,
            guard.categories[0],
            guard.categories[-1],
        )
        return guard

    def classify(self, conversation: Sequence[tuple[str, str]]) -> tuple[bool, list[str]]:
        """(unsafe, categories) for the conversation's last turn; roles as in ``guard_prompt``."""
        turns = guard_turns(conversation)
        if not turns:
            return False, []
        answers = self._judge(turns)
        return any(a.unsafe for a in answers), _union(answers)

    def flags(
        self, text: str, conversation: Sequence[tuple[str, str]], *, output: bool | None = None
    ) -> list[Flag]:
        """Categories Llama Guard finds in ``text`` (an input, or output so far) in its context."""
        if not text.strip():
            return []
        conv = list(conversation)
        contents = [c for _, c in conv]
        known = {c.strip() for c in contents} | {j.join(contents).strip() for j in JOINS}
        inside = text.strip() in known
        if output is None:
            output = not inside
        if output:
            answers = self._judge(guard_turns([*conv, ("assistant", text)]))
        else:
            if not inside:
                conv.append(("user", text))
            turns = guard_turns(conv)
            users = [i for i, (side, _) in enumerate(turns) if side == "User"]
            last_user = users[-1] if users else -1
            answers = self._judge(turns[: last_user + 1]) if users else []
            if last_user < len(turns) - 1:  # an assistant prefill follows: judge it too
                answers += self._judge(turns)
        cats = _union(answers)
        if any(a.unsafe and not a.categories for a in answers):  # unsafe, category unknown
            cats = [c for c in CATEGORIES if c != "S4"]
        return [Flag(c, 1.0, self.name) for c in cats]

    def encode(self, turns: Sequence[Turn]) -> list[int]:
        """Token ids of the prompt judging the last of ``turns``."""
        ids: list[int] = []
        for segment in prompt_segments(turns, self.categories):
            if segment in self.special_ids:
                ids.append(self.special_ids[segment])
            else:
                ids += self.plain.encode(segment, add_special_tokens=False).ids
        return ids

    def _judge(self, turns: list[Turn]) -> list[Answer]:
        """Answers for the last of ``turns``, fitted into the prompt budget (module docstring)."""
        ids = self.encode(turns)
        if len(ids) <= self.budget:
            return [self._ask(ids)]
        lo, hi = 1, len(turns) - 1  # the fewest oldest turns to drop: the prompt shrinks with each
        fit = None
        while lo <= hi:
            mid = (lo + hi) // 2
            trial = self.encode(turns[mid:])
            if len(trial) <= self.budget:
                fit, hi = trial, mid - 1
            else:
                lo = mid + 1
        if fit is not None:
            return [self._ask(fit)]
        return [self._ask(w) for w in self._windows(turns[-1])]

    def _ask(self, ids: list[int]) -> Answer:
        answer = parse_answer(self._generate(ids))
        self.malformed += not answer.well_formed
        return answer

    def _windows(self, turn: Turn) -> list[list[int]]:
        """Prompts judging overlapping character windows of one over-long turn."""
        side, text = turn
        room = self.budget - len(self.encode([(side, "")]))
        tokens = len(self.plain.encode(text, add_special_tokens=False).ids)
        width = max(1, int(len(text) * room / tokens * 0.9))
        while True:
            step = max(1, width - width // OVERLAP)
            starts = range(0, max(len(text) - width, 0) + step, step)
            pieces = [text[s : s + width].strip() for s in starts]
            prompts = [self.encode([(side, piece)]) for piece in pieces if piece]
            if all(len(p) <= self.budget for p in prompts):
                return prompts
            width = max(1, width // 2)  # denser text than estimated: narrower windows

    @torch.no_grad()
    def _generate(self, ids: list[int]) -> str:
        """Greedy answer to the prompt ``ids``: prefill in chunks, then one token a step."""
        with self._lock:
            cache = self.model.new_cache()
            # The forward returns logits at every position; chunks bound that tensor
            # (512 x 128256 bf16 logits: 131 MB) whatever the prompt's length.
            for start in range(0, len(ids), self.prefill_chunk):
                chunk_BT = torch.tensor([ids[start : start + self.prefill_chunk]])
                logits_V = self.model(chunk_BT.to(self.device), cache=cache).logits_BTV[0, -1]
            new: list[int] = []
            for step in range(self.max_new_tokens):
                token = int(logits_V.argmax())
                if token in self.stop_ids:
                    break
                new.append(token)
                if step + 1 < self.max_new_tokens:
                    x_BT = torch.tensor([[token]], device=self.device)
                    logits_V = self.model(x_BT, cache=cache).logits_BTV[0, -1]
        return self.tokenizer.decode(new, skip_special_tokens=True)


def _union(answers: list[Answer]) -> list[str]:
    """The categories any answer named, in S1..S14 order."""
    named = {c for a in answers for c in a.categories}
    return [c for c in CATEGORIES if c in named]


def _read_json(path: Path, where: str) -> dict[str, Any]:
    """A JSON object from ``path``, or {} when the file is absent."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: {path.name} is not JSON ({e})") from None
    return data if isinstance(data, dict) else {}


def _eos_ids(config: dict[str, Any]) -> set[int]:
    """``eos_token_id`` of a config.json / generation_config.json: one id or a list."""
    eos = config.get("eos_token_id")
    ids = eos if isinstance(eos, list) else [eos]
    return {i for i in ids if isinstance(i, int)}


def _listed_categories(directory: Path) -> tuple[str, ...]:
    """S1..S14, or S1..S13 where the checkpoint's chat template lists no S14 (Llama Guard 3 1B)."""
    config = _read_json(directory / "tokenizer_config.json", f"guard_model: {directory}")
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": ..., "template": ...}]
        template = " ".join(str(t.get("template", "")) for t in template if isinstance(t, dict))
    jinja = directory / "chat_template.jinja"  # where newer transformers versions save it
    if not isinstance(template, str) and jinja.is_file():
        template = jinja.read_text()
    if isinstance(template, str) and "S13" in template and "S14" not in template:
        return tuple(PROMPT_NAMES)[:13]
    return tuple(PROMPT_NAMES)
