"""``atomic_write_with``: a streaming writer replaces the file whole, or leaves it alone."""

from __future__ import annotations

import numpy as np
import pytest

from superlab.common.atomic import atomic_write_with


def test_a_writer_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.npy"
    atomic_write_with(path, lambda f: np.save(f, np.arange(3)))
    assert np.load(path).tolist() == [0, 1, 2]

    def half(f):
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_with(path, half)
    assert np.load(path).tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]
