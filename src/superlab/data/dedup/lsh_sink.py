"""The ``duplicates.parquet`` sink: one row per document removed as a near duplicate."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from superlab.common.deps import require
from superlab.data.dedup.lsh import NearDupResult
from superlab.data.dedup.minhash_store import iter_refs


def write_duplicates_parquet(
    result: NearDupResult, signature_files: Sequence[Path], path: Path
) -> int:
    """Write id, cluster, survivor_id, source, offset (and jaccard in verify mode); the row count.

    ``signature_files`` are the ones ``result`` was computed from: their refs files give ids.
    """
    pa = require("pyarrow", "duplicates.parquet")
    pq = require("pyarrow.parquet", "duplicates.parquet")
    wanted = np.union1d(result.removed, result.survivor)
    refs = {g: (i, src, off) for g, i, src, off in iter_refs(list(signature_files), wanted)}
    columns = {
        "id": [refs[g][0] for g in result.removed.tolist()],
        "cluster": pa.array(result.cluster, type=pa.int64()),
        "survivor_id": [refs[g][0] for g in result.survivor.tolist()],
        "source": [refs[g][1] for g in result.removed.tolist()],
        "offset": pa.array([refs[g][2] for g in result.removed.tolist()], type=pa.int64()),
    }
    if result.jaccard is not None:
        columns["jaccard"] = pa.array(result.jaccard, type=pa.float64())
    table = pa.table(columns)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return table.num_rows
