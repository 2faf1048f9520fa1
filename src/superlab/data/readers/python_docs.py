"""Documentation text from Python docstrings: one document per module.

Kind ``python_docs``: for each file that ``python_code`` would read (the standard
library by default, PSF License 2.0), the module's docstring and those of its classes,
functions and methods, each under a heading with its qualified name, in source order.
The code itself is left out, so this is prose about code rather than code. A file that
does not parse (``read:syntax_error``) or has no docstring (``read:no_docstrings``) is
a counted bad record, not a document.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from superlab.config.data import SourceConfig
from superlab.data.document import BadRecord, Document
from superlab.data.readers.python_code import LICENSE, read_files

DefNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def docstrings(source: str, module: str) -> list[tuple[str, str]]:
    """(qualified name, docstring) of the module and every class and function, in order."""
    tree = ast.parse(source)
    out: list[tuple[str, str]] = []
    if doc := ast.get_docstring(tree):
        out.append((module, doc))

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, DefNode):
                name = f"{prefix}.{node.name}"
                if doc := ast.get_docstring(node):
                    out.append((name, doc))
                visit(node.body, name)

    visit(tree.body, module)
    return out


def module_name(rel: str) -> str:
    """``json/decoder.py`` -> ``json.decoder``; ``a/__init__.py`` -> ``a``."""
    parts = rel.removesuffix(".py").split("/")
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def read_python_docs(name: str, cfg: SourceConfig) -> Iterator[Document | BadRecord]:
    """One virtual input of a ``python_docs`` source: a document per module with docstrings."""

    def to_doc(path: Path, rel: str, source: str) -> Document | BadRecord:
        module = module_name(rel)
        try:
            found = docstrings(source, module)
        except (SyntaxError, ValueError) as e:
            return BadRecord(str(path), 0, "read:syntax_error", str(e))
        if not found:
            return BadRecord(str(path), 0, "read:no_docstrings", module)
        text = "\n\n".join(f"{qual}\n\n{doc}" for qual, doc in found)
        meta = {"module": module, "docstrings": len(found)}
        if not cfg.paths:
            meta["license"] = LICENSE
        return Document(f"python_docs:{module}", text, meta, str(path), 0)

    return read_files(name, "python_docs", cfg, to_doc)
