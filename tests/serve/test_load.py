"""A small run of bench/serve_load.py: 16 streaming clients against a ``superlab serve``
subprocess on 127.0.0.1, one low-quota key and one unlimited key."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the server needs the serve extra")

BENCH = Path(__file__).parents[2] / "bench" / "serve_load.py"


def test_streaming_load_has_no_5xx_no_lost_streams_and_the_quota_holds():
    spec = importlib.util.spec_from_file_location("serve_load", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    (r,) = bench.measure([16], seconds=5.0, low_quota=600)
    assert r.five == 0 and r.conn_errors == 0 and r.error_events == 0, r.status
    # Every unlimited client kept one request open (low-quota ones back off after a 429).
    assert r.ok > 0 and bench.pct(r.in_flight_unlimited, 0.5) == 16 - r.low_clients
    assert r.status.get(429, 0) > 0  # the low key ran out ...
    assert 0 < r.low_used <= r.low_quota  # ... and never passed its quota
    assert r.health and r.health_failures == 0
