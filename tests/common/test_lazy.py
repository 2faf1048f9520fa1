"""Packages export their heavy names lazily: importing them loads no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from superlab.common.lazy import lazy_exports


def test_importing_the_packages_loads_no_torch_until_a_name_is_used() -> None:
    code = (
        "import sys\n"
        "import superlab.model, superlab.train, superlab.ablate, superlab.mix, superlab.eval\n"
        "assert 'torch' not in sys.modules, 'torch imported by a package import'\n"
        "superlab.model.Transformer\n"
        "assert 'torch' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    getattr_ = lazy_exports("pkg", {"dumps": "json"})
    assert getattr_("dumps") is __import__("json").dumps
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'loads'"):
        getattr_("loads")
