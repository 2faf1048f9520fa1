"""``require``: the one message for a missing optional package, and where it is used."""

from __future__ import annotations

import sys

import pytest

from superlab.common import StageError
from superlab.common.deps import require
from superlab.data.errors import DataError


def test_require_returns_the_module_or_names_package_extra_and_way_round(monkeypatch):
    assert require("json.decoder", "anything").__name__ == "json.decoder"
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if not installed
    with pytest.raises(StageError) as e:
        require("sklearn", "the thing", "serve", instead="x: false", error=StageError,
                package="scikit-learn")  # fmt: skip
    assert str(e.value) == (
        "the thing needs the 'scikit-learn' package "
        "(pip install scikit-learn, or the superlab[serve] extra; or set x: false)"
    )


@pytest.mark.parametrize(
    ("hide", "call", "error", "message"),
    [
        ("zstandard", lambda: _zst(), DataError, r"a\.zst: reading \.zst needs the 'zstandard'"),
        ("warcio", lambda: _warc(), DataError, r"reading WARC needs the 'warcio' .*\[web\]"),
        ("ray", lambda: _ray(), StageError, r"set data\.executor: local"),
        ("resiliparse", lambda: _resiliparse(), DataError, r"superlab\[resiliparse\] extra"),
    ],
)
def test_each_optional_path_says_what_to_install(monkeypatch, hide, call, error, message):
    for name in list(sys.modules):
        if name == hide or name.startswith(hide + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, hide, None)
    with pytest.raises(error, match=message):
        call()


def _zst():
    from pathlib import Path

    from superlab.data.readers.zstd import open_zst

    open_zst(Path("a.zst"))


def _warc():
    from superlab.data.readers.warc import _warcio

    _warcio()


def _ray():
    from superlab.data.executors.ray import RayExecutor

    RayExecutor()


def _resiliparse():
    from superlab.data.extract.html import require_extractor

    require_extractor("resiliparse")
