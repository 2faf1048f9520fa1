"""The labelled safety sets are what ``make_sets`` builds from ``templates.yaml``."""

import json

from superlab.serve.safety.sets import make_sets, templates


def test_committed_sets_are_what_make_sets_builds_from_the_templates():
    harmful, benign = make_sets.build()
    for name, rows in (("harmful", harmful), ("benign", benign)):
        lines = (make_sets.HERE / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        assert rows == [json.loads(line) for line in lines], f"{name}.jsonl: rerun make_sets"


def test_templates_keep_their_shapes():
    assert list(templates.MINOR_I18N)[:2] == [("es", "heldout"), ("fr", "heldout")]
    assert all(len(t) == 4 for t in templates.OTHER_I18N)
    assert all(isinstance(t, tuple) for t in templates.PROBE_HARMFUL + templates.BENIGN_I18N)
    assert set(templates.MINORS) == {"heldout", "dev"}
