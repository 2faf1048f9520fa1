"""The run report's per-source section: shown for a mixture only, every figure in its row."""

from __future__ import annotations

import json

from superlab.common import RunDir
from superlab.report.sources import sources_sections


def test_a_mixture_run_gets_a_sources_section(tmp_path):
    run = RunDir(tmp_path)
    run.data.mkdir(parents=True)
    assert sources_sections(run) == []  # no stats yet
    run.data_stats.write_text(json.dumps({"docs_in": 3}))
    assert sources_sections(run) == []  # a single source
    step = {"docs_in": 10, "docs_out": 7, "removed": {"gopher:min_words": 3},
            "tokens_in": 1000, "tokens_out": 700}  # fmt: skip
    stats = {"sources": {
        "web": {"docs_in": 10, "docs_out": 7, "tokens": {"train": 650, "heldout": 50},
                "natural_share": 0.8125, "steps": {"GopherQualityFilter": step}},
        "code": {"docs_in": 2, "docs_out": 2, "tokens": {"train": 150, "heldout": 9},
                 "natural_share": 0.1875, "steps": {}},
    }}  # fmt: skip
    run.data_stats.write_text(json.dumps(stats))
    run.eval.write_text(json.dumps({
        "mixture": {"web": {"planned_share": 0.25, "realised_share": 0.2734, "epochs": 1.5}},
        "heldout_by_source": {"web": {"loss": 3.25, "bits_per_byte": 1.125}, "code": None},
    }))  # fmt: skip
    (section,) = sources_sections(run)
    assert section.id == "sources" and section.present
    for figure in ("web", "code", "0.8125", "0.25", "0.2734", "1.5", "3.25", "1.125", "650",
                   "gopher:min_words 3", "GopherQualityFilter"):  # fmt: skip
        assert figure in section.body, figure
