"""PRMSE is given only where it means something: with fewer than 10 double-scored items, or where the
estimated true-score variance is not positive, RSMTool's formula still returns a number (-29.333 on 4
items) that measures nothing; the report leaves PRMSE empty (n/a) and says why, in `prmse_note` and on the
command's line. Where it is defined the value is still RSMTool's `prmse_true`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from eval.agreement import PRMSE_MIN_DOUBLE, prmse_items, prmse_true, true_score_variance
from rubrics.schema import parse_rubric
from scoring.cli import app
from scoring.store import HumanScoreIn, MachineScoreIn, Store


def test_a_handful_of_double_scored_items_gives_no_prmse_but_says_how_many() -> None:
    h1, h2, m = [0, 2, 1, 2], [1, 1, 2, 2], [2, 0, 0, 1]
    assert prmse_true(np.array(m, float), np.column_stack([h1, h2]).astype(float)) < -1  # the formula's figure
    out = prmse_items(h1, h2, m)
    assert out["prmse"] is None and out["prmse_n_double"] == 4
    assert out["prmse_note"] == f"only 4 double-scored item(s), fewer than {PRMSE_MIN_DOUBLE}"


def test_a_non_positive_true_score_variance_gives_no_prmse_and_says_so() -> None:
    h1 = [0, 2] * 10  # raters who disagree on every item as much as the items differ
    h2 = [2, 0] * 10
    assert true_score_variance(np.column_stack([h1, h2]).astype(float)) <= 0
    out = prmse_items(h1, h2, [1] * 20)
    assert out["prmse"] is None and "true-score variance estimate" in out["prmse_note"]
    assert "is not positive" in out["prmse_note"]


def test_a_defined_prmse_is_still_rsmtools_prmse_true() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 5, 60).astype(float)
    h1, h2 = np.clip(truth + rng.choice([-1, 0, 1], 60), 0, 4), np.clip(truth + rng.choice([-1, 0, 1], 60), 0, 4)
    m = np.clip(truth + rng.choice([-1, 0, 0, 1], 60), 0, 4)
    out = prmse_items(h1, h2, m)
    assert out["prmse_note"] is None
    assert out["prmse"] == pytest.approx(prmse_true(m, np.column_stack([h1, h2])), abs=1e-15)


RUBRIC = parse_rubric({"id": "few", "version": 1, "title": "Few", "evidence": ["text"],
                       "criteria": [{"id": "q", "title": "Q", "scale": {"min": 0, "max": 2}}]})


def test_the_report_prints_prmse_on_four_double_scored_items_as_n_a_with_the_reason(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    h1, h2, m = [0, 2, 1, 2], [1, 1, 2, 2], [2, 0, 0, 1]
    with Store(url) as st:
        st.register_rubric(RUBRIC)
        subs = st.add_submissions("few", 1, [(f"x{i}", {"text": f"t{i}"}, {}) for i in range(4)])
        st.record_machine_scores([MachineScoreIn(s.id, "q", m[i], route="auto", model_version="m")
                                  for i, s in enumerate(subs)])
        st.record_human_scores([HumanScoreIn(s.id, "q", h1[i], "a1", "first", True, "") for i, s in enumerate(subs)]
                               + [HumanScoreIn(s.id, "q", h2[i], "a2", "second", True, "")
                                  for i, s in enumerate(subs)])
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "rep"), "--db", url, "--bootstrap", "0"])
    assert r.exit_code == 0, r.output
    assert "PRMSE=n/a (only 4 double-scored item(s), fewer than 10)" in r.output and "PRMSE=-" not in r.output
    hm = pd.read_csv(tmp_path / "rep" / "human_machine.csv")
    assert hm["prmse"].isna().all() and hm["prmse_note"].tolist() == ["only 4 double-scored item(s), fewer than 10"]
