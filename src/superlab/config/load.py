"""Read a recipe from YAML, apply ``key.path=value`` overrides, validate, explain errors.

Every failure becomes one ``RecipeError`` whose message is a single line:
``FILE[:LINE]: dotted.field.path: what is wrong``.

This module knows sections only through the schema it is given, so it sits below
``superlab.config.recipe`` (whose ``load_recipe`` passes ``Recipe``) and imports nothing
above ``superlab.config.section``.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from superlab.config.section import FieldError

M = TypeVar("M", bound=BaseModel)


class RecipeError(ValueError):
    """A recipe that cannot be used; the message is one line naming file and field."""


def load_yaml(schema: type[M], path: str | Path, overrides: list[str] | None = None) -> M:
    """Load, override and validate the YAML file at ``path`` against ``schema``."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise RecipeError(f"{where}: invalid YAML: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RecipeError(
            f"{path}: a recipe must be a mapping of sections, got {type(raw).__name__}"
        )
    lines = line_index(node)
    for item in overrides or []:
        _apply_override(raw, item, path)
        # An overridden field is blamed on the --set option, not on a line of the file.
        key = tuple(item.partition("=")[0].strip().split("."))
        lines = {loc: n for loc, n in lines.items() if loc[: len(key)] != key}
        lines[key] = f"--set {item}"
    try:
        return schema.model_validate(raw)
    except ValidationError as e:
        raise RecipeError(explain(e, schema, path, lines)) from None


def _apply_override(raw: dict[str, Any], item: str, path: Path) -> None:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"{path}: override '{item}' must look like section.field=value")
    parts = key.strip().split(".")
    cur = raw
    for part in parts[:-1]:
        nxt = cur.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise RecipeError(f"{path}: override '{item}': '{part}' is not a section")
        cur = nxt
    try:
        cur[parts[-1]] = yaml.safe_load(value)
    except yaml.YAMLError:
        cur[parts[-1]] = value


def line_index(
    node: yaml.Node | None, prefix: tuple[str, ...] = ()
) -> dict[tuple[str, ...], int | str]:
    """Map each dotted key path in the YAML document (``yaml.compose``'s node) to its
    1-based line."""
    out: dict[tuple[str, ...], int | str] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            loc = (*prefix, str(key_node.value))
            out[loc] = key_node.start_mark.line + 1
            out.update(line_index(value_node, loc))
    elif isinstance(node, yaml.SequenceNode):
        for i, value_node in enumerate(node.value):
            loc = (*prefix, str(i))
            out[loc] = value_node.start_mark.line + 1
            out.update(line_index(value_node, loc))
    return out


def explain(
    err: ValidationError,
    schema: type[BaseModel],
    path: Path,
    lines: dict[tuple[str, ...], int | str],
) -> str:
    """One line for ``schema``'s validation errors of the file at ``path`` (at most three):
    ``FILE:LINE: dotted.field: what is wrong``, ``lines`` from ``line_index``."""
    parts = []
    for e in err.errors():
        # (a validator's wrapper, e.g. "function-before[...]", is not a field)
        loc = tuple(str(x) for x in e["loc"] if not str(x).startswith("function-"))
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            loc = (*loc, *cause.field.split("."))
        line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
        if isinstance(line, str):
            where = f"{path} ({line})"
        else:
            where = f"{path}:{line}" if line else str(path)
        field = ".".join(loc) or "(top level)"
        parts.append(f"{where}: {field}: {_message(e, schema, loc)}")
    shown = parts[:3]
    more = f" (and {len(parts) - len(shown)} more)" if len(parts) > len(shown) else ""
    return "; ".join(shown) + more


def _message(e: Any, schema: type[BaseModel], loc: tuple[str, ...]) -> str:
    kind = e["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(schema, loc[:-1])
        close = difflib.get_close_matches(loc[-1], allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown key{hint} (allowed: {', '.join(allowed)})" if allowed else "unknown key"
    if kind == "missing":
        return "required field is missing"
    msg = str(e["msg"]).removeprefix("Value error, ")
    if kind != "value_error" and "input" in e and not isinstance(e["input"], dict | list):
        msg += f", got {e['input']!r}"
    return msg


def _allowed_keys(schema: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    """The field names of the section at ``loc`` (for the 'did you mean' hint)."""
    model: type[BaseModel] | None = schema
    keyed = False  # the part is a key of a dict of sections, e.g. training.<run name>
    for part in loc:
        if keyed or part.isdigit():  # or an item of a list section: model.layer_pattern.1
            keyed = False
            continue
        if model is None:
            return []
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = _model_of(field.annotation)
        keyed = get_origin(field.annotation) is dict
    return sorted(model.model_fields) if model is not None else []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
