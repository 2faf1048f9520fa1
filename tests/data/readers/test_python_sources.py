"""Readers of generated sources: Python code, its docstrings, the plain Wikipedia summaries."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from superlab.config import SourceConfig
from superlab.data.corpus.fetch import MEMBERS
from superlab.data.corpus.wiki_summaries import read_wiki_summaries, summary_inputs
from superlab.data.document import BadRecord, Document
from superlab.data.readers import list_inputs, read_input
from superlab.data.readers.python_code import python_files, stdlib_root
from superlab.data.readers.python_docs import docstrings, module_name

MODULE = '''"""The module."""


class Box:
    """A box."""

    def open(self):
        """Open it."""
        return 1

    def close(self):
        return 0


def helper():
    """Help."""
'''


def tree(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text('"""A package."""\n')
    (root / "pkg" / "box.py").write_text(MODULE)
    (root / "plain.py").write_text("x = 1\n")
    (root / "broken.py").write_text("def f(:\n")
    (root / "latin.py").write_bytes(b"# caf\xe9\n")
    return root


def records(cfg: SourceConfig) -> list[Document | BadRecord]:
    return [r for name in list_inputs(cfg) for r in read_input(name, cfg)]


def test_python_code_reads_every_file_in_order_over_virtual_shards(tmp_path):
    cfg = SourceConfig(kind="python_code", paths=[str(tree(tmp_path))])
    assert list_inputs(cfg) == [f"python_code:{i}/4" for i in range(4)]
    got = records(cfg)
    docs = [r for r in got if isinstance(r, Document)]
    assert [d.id for d in docs] == [
        "python_code:broken.py", "python_code:pkg/__init__.py", "python_code:pkg/box.py",
        "python_code:plain.py",
    ]  # fmt: skip
    assert docs[2].text == MODULE and docs[2].metadata["path"] == "pkg/box.py"
    bad = [r for r in got if isinstance(r, BadRecord)]
    assert [(Path(b.source).name, b.reason) for b in bad] == [("latin.py", "read:bad_utf8")]


def test_python_docs_gives_a_document_per_module_with_docstrings(tmp_path):
    cfg = SourceConfig(kind="python_docs", paths=[str(tree(tmp_path))])
    got = records(cfg)
    docs = {r.id: r for r in got if isinstance(r, Document)}
    assert set(docs) == {"python_docs:pkg", "python_docs:pkg.box"}
    assert docs["python_docs:pkg.box"].text == (
        "pkg.box\n\nThe module.\n\npkg.box.Box\n\nA box.\n\npkg.box.Box.open\n\nOpen it."
        "\n\npkg.box.helper\n\nHelp."
    )
    reasons = {Path(b.source).name: b.reason for b in got if isinstance(b, BadRecord)}
    assert reasons == {
        "broken.py": "read:syntax_error", "plain.py": "read:no_docstrings",
        "latin.py": "read:bad_utf8",
    }  # fmt: skip
    assert docstrings('"""Only."""', "m") == [("m", "Only.")]
    assert module_name("json/decoder.py") == "json.decoder" and module_name("a/__init__.py") == "a"


def test_the_standard_library_is_the_default_without_tests_or_site_packages():
    files = python_files(SourceConfig(kind="python_code", max_docs=100_000))
    names = [rel for _, rel in files]
    assert all(path.is_relative_to(stdlib_root()) for path, _ in files)
    assert "json/decoder.py" in names and "os.py" in names
    assert not any(n.startswith(("test/", "site-packages/")) or "/tests/" in n for n in names)
    assert names == sorted(names)
    assert len(python_files(SourceConfig(kind="python_code", max_docs=5))) == 5


def test_wiki_summaries_reads_each_language_of_the_wheel(tmp_path):
    wheel = tmp_path / "w.whl"
    arts = {lang: {f"t{i}": {"title": f"T{i}", "extract": f"{lang} text {i}"} for i in range(3)}
            for lang in MEMBERS}  # fmt: skip
    arts["fr"]["t1"]["extract"] = "  "
    with zipfile.ZipFile(wheel, "w") as zf:
        for lang, member in MEMBERS.items():
            zf.writestr(member, json.dumps(arts[lang]))
    cfg = SourceConfig(kind="wiki_summaries")
    assert summary_inputs(cfg) == ["wiki_summaries:es", "wiki_summaries:fr"]
    fr = list(read_wiki_summaries("wiki_summaries:fr", cfg, wheel))
    assert [r.id if isinstance(r, Document) else r.reason for r in fr] == [
        "wiki_summaries-fr-000000", "read:empty", "wiki_summaries-fr-000002",
    ]  # fmt: skip
    assert fr[0].metadata == {"lang": "fr", "title": "T0", "license": "CC-BY-SA-3.0"}
    capped = SourceConfig(kind="wiki_summaries", langs=["es"], max_docs=2)
    assert len(list(read_wiki_summaries("wiki_summaries:es", capped, wheel))) == 2
