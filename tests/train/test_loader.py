import numpy as np
import pytest
import torch

from superlab.train.loader import TokenLoader

from .conftest import write_shards


def test_windows_are_exact_slices_of_the_stream_across_shards(tmp_path):
    streams = write_shards(tmp_path, {"train": [50, 30, 41]})
    loader = TokenLoader(tmp_path / "data/shards", "train", batch_size=2, seq_len=8)
    stream = streams["train"].astype(np.int64)
    assert loader.num_tokens == 121
    assert loader.num_windows == (121 - 1) // 8 == 15
    for w in range(loader.num_windows):
        assert np.array_equal(loader.window(w), stream[w * 8 : w * 8 + 9])
    assert np.array_equal(loader.window(6), stream[48:57])  # spans shards 0 and 1


def test_epoch_permutation_covers_every_window_once(tmp_path):
    write_shards(tmp_path, {"train": [81]})
    loader = TokenLoader(tmp_path / "data/shards", "train", batch_size=5, seq_len=8, seed=3)
    starts = []
    for _ in range(2):  # 10 windows per epoch, 2 batches of 5
        x_BT, y_BT = loader.next_batch()
        assert x_BT.dtype == torch.int64 and x_BT.shape == (5, 8)
        assert torch.equal(x_BT[:, 1:], y_BT[:, :-1])
        starts += [_find(loader, row) for row in x_BT]
    assert sorted(starts) == list(range(10))
    assert starts != list(range(10))
    assert loader.state() == {"epoch": 0, "index": 10}
    loader.next_batch()
    assert loader.state() == {"epoch": 1, "index": 5}


def _find(loader: TokenLoader, row: torch.Tensor) -> int:
    matches = [w for w in range(loader.num_windows) if np.array_equal(loader.window(w)[:-1], row)]
    assert len(matches) == 1
    return matches[0]


def test_resume_continues_with_the_exact_next_batch(tmp_path):
    write_shards(tmp_path, {"train": [200]})
    a = TokenLoader(tmp_path / "data/shards", "train", batch_size=3, seq_len=8, seed=1)
    for _ in range(9):  # 27 windows drawn, past the 24-window epoch
        a.next_batch()
    b = TokenLoader(tmp_path / "data/shards", "train", batch_size=3, seq_len=8, seed=1)
    b.load_state(a.state())
    for _ in range(5):
        for ta, tb in zip(a.next_batch(), b.next_batch(), strict=True):
            assert torch.equal(ta, tb)


def test_heldout_is_in_order(tmp_path):
    streams = write_shards(tmp_path, {"train": [100], "heldout": [50]})
    h = TokenLoader(tmp_path / "data/shards", "heldout", batch_size=2, seq_len=8, shuffle=False)
    x_BT, _ = h.next_batch()
    assert torch.equal(x_BT[1], torch.from_numpy(streams["heldout"][8:16].astype(np.int64)))


def test_too_little_data_is_a_clear_error(tmp_path):
    write_shards(tmp_path, {"train": [8]})
    with pytest.raises(ValueError, match="fewer than one window"):
        TokenLoader(tmp_path / "data/shards", "train", batch_size=1, seq_len=8)
