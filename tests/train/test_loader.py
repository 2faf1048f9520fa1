import json

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
        x_BT, y_BT, _ = loader.next_batch()
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
    kw = dict(batch_size=3, seq_len=8, seed=1, documents=True)
    a = TokenLoader(tmp_path / "data/shards", "train", **kw)
    for _ in range(9):  # 27 windows drawn, past the 24-window epoch
        a.next_batch()
    b = TokenLoader(tmp_path / "data/shards", "train", **kw)
    b.load_state(a.state())
    for _ in range(5):
        for ta, tb in zip(a.next_batch(), b.next_batch(), strict=True):
            assert torch.equal(ta, tb)


def test_heldout_is_in_order(tmp_path):
    streams = write_shards(tmp_path, {"train": [100], "heldout": [50]})
    h = TokenLoader(tmp_path / "data/shards", "heldout", batch_size=2, seq_len=8, shuffle=False)
    x_BT, _, _ = h.next_batch()
    assert torch.equal(x_BT[1], torch.from_numpy(streams["heldout"][8:16].astype(np.int64)))


def test_too_little_data_is_a_clear_error(tmp_path):
    write_shards(tmp_path, {"train": [8]})
    with pytest.raises(ValueError, match="fewer than one window"):
        TokenLoader(tmp_path / "data/shards", "train", batch_size=1, seq_len=8)


def test_document_ids_follow_the_shards_doc_offsets(tmp_path):
    # Documents start every 10 tokens in each shard (conftest); shard 1 starts at 45.
    write_shards(tmp_path, {"train": [45, 40]})
    loader = TokenLoader(tmp_path / "data/shards", "train", batch_size=1, seq_len=8, documents=True)
    starts = [0, 10, 20, 30, 40, 45, 55, 65, 75]
    for w in range(loader.num_windows):
        pos = np.arange(w * 8, w * 8 + 8)
        doc = np.searchsorted(starts, pos, side="right") - 1
        assert np.array_equal(loader.doc_ids(w), doc - doc[0]), w
    # Window 5 holds tokens 40..47: 40-44 end shard 0's last document, 45-47 begin shard 1's.
    assert loader.doc_ids(5).tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    batch = loader.next_batch()
    assert batch.doc_ids_BT.dtype == torch.int64 and batch.doc_ids_BT.shape == (1, 8)
    plain = TokenLoader(tmp_path / "data/shards", "train", batch_size=1, seq_len=8)
    assert plain.next_batch().doc_ids_BT is None


def test_missing_docs_file_names_the_field(tmp_path):

    write_shards(tmp_path, {"train": [50]})
    index_path = tmp_path / "data/shards/index.json"
    index = json.loads(index_path.read_text())
    del index["splits"]["train"][0]["docs_file"]
    index_path.write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"train\.document_mask"):
        TokenLoader(tmp_path / "data/shards", "train", batch_size=1, seq_len=8, documents=True)


def test_ranks_split_each_global_batch_in_order(tmp_path):
    write_shards(tmp_path, {"train": [300]})
    kw = dict(batch_size=4, seq_len=8, seed=5, documents=True)
    whole = TokenLoader(tmp_path / "data/shards", "train", **kw)
    ranks = [
        TokenLoader(tmp_path / "data/shards", "train", **kw, rank=r, world_size=2) for r in (0, 1)
    ]
    for _ in range(12):  # 37 windows: crosses an epoch boundary
        full = whole.next_batch()
        parts = [r.next_batch() for r in ranks]
        for i in range(3):
            assert torch.equal(full[i], torch.cat([parts[0][i], parts[1][i]]))
        assert ranks[0].state() == ranks[1].state() == whole.state()
    with pytest.raises(ValueError, match=r"train.batch_size \(4\) must be a multiple"):
        TokenLoader(tmp_path / "data/shards", "train", batch_size=4, seq_len=8, world_size=3)
