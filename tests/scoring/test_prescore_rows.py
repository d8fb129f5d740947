"""A submission's scores do not depend on what it is scored with: alone (the API), in a block (a Ray
actor) or in a whole batch (the local engine), each with its own cold cache, the probabilities agree to
1e-12 and the written outputs are the same bytes (see ``scoring.train.embed_unique``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.artifact import load_model
from scoring.demo import make_reflections
from scoring.prescore import ScoredSubmission, prescore

pytestmark = pytest.mark.slow


def _scored(model_dir: Path, cache: Path, ids: list[str], evidences: list[dict[str, str]],
            chunk: int) -> list[ScoredSubmission]:
    model = load_model(model_dir, cache_dir=cache)
    out: list[ScoredSubmission] = []
    for a in range(0, len(ids), chunk):
        out += prescore(model, ids[a : a + chunk], evidences[a : a + chunk])
    return out


def test_a_submissions_probabilities_do_not_depend_on_the_rows_scored_with_it(demo_model_dir: Path,
                                                                               tmp_path: Path) -> None:
    rows = make_reflections(36, seed=5)
    ids = [r["id"] for r in rows]
    evidences = [{"reflection": r["reflection"]} for r in rows]
    whole = _scored(demo_model_dir, tmp_path / "whole", ids, evidences, 36)
    for chunk in (12, 1):
        part = _scored(demo_model_dir, tmp_path / f"chunk{chunk}", ids, evidences, chunk)
        for w, p in zip(whole, part, strict=True):
            for cid, r in w.criteria.items():
                got = p.criteria[cid]
                assert got.score == r.score
                np.testing.assert_allclose(list(got.probabilities.values()), list(r.probabilities.values()),
                                           rtol=0, atol=1e-12, err_msg=f"{w.id} {cid} scored in chunks of {chunk}")
        assert [json.dumps(s.to_json()) for s in part] == [json.dumps(s.to_json()) for s in whole]
