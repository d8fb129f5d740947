"""The report's gate compares the machine with human-human agreement only where that agreement is measured.

The policy judges a figure only on at least ``min_n`` items; the human-human QWK the degradation check
reads is held to the same bar (as ``scoring drift check`` holds it). A handful of double-scored items, or
a single one, neither fails a machine that meets every threshold nor crashes the report.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from eval.gates import evaluate_gates, load_policy
from eval.report import build_report
from rubrics.schema import parse_rubric
from scoring.store import HumanScoreIn, MachineScoreIn, Store

RUBRIC = {"id": "gate-ref", "version": 1, "title": "Gate reference", "evidence": ["text"],
          "criteria": [{"id": "c", "title": "C", "scale": {"min": 0, "max": 4}}]}
AT = datetime(2026, 5, 1, tzinfo=UTC)


def _store(tmp_path: Path, n: int, n_double: int) -> Store:
    """``n`` items with a first rater and a machine one level off on half of them (QWK about 0.85, SMD
    about -0.08); the first ``n_double`` also have a second rater who agrees with the first."""
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    store.register_rubric(parse_rubric(RUBRIC))
    subs = store.add_submissions("gate-ref", 1, [(f"s{i}", {"text": "t"}, {}) for i in range(n)])
    hs, ms = [], []
    for i, s in enumerate(subs):
        h = i % 5
        m = 2 if i % 5 in (1, 3) else 3 if i % 10 == 4 else h
        ms.append(MachineScoreIn(s.id, "c", m, None, None, "human", "r", "m-1", "p-1", AT))
        hs.append(HumanScoreIn(s.id, "c", h, "ann", "first", True, "", AT))
        if i < n_double:
            hs.append(HumanScoreIn(s.id, "c", h, "bob", "second", True, "", AT))
    store.record_machine_scores(ms)
    store.record_human_scores(hs)
    return store


def test_a_few_double_scored_items_do_not_fail_a_machine_that_meets_every_threshold(tmp_path: Path) -> None:
    store = _store(tmp_path, n=100, n_double=4)  # human-human QWK 1.0 on 4 items
    hm = build_report(store, tmp_path / "r", n_boot=0).tables["human_machine"]
    store.close()
    row = hm.iloc[0]
    assert row["n"] == 100 and row["qwk"] >= 0.80 and abs(row["smd"]) <= 0.15
    assert row["gate"] == "pass", row["gate_detail"]
    assert row["hh_n"] == 4 and pd.isna(row["hh_qwk"])  # its n is shown; too few to be the reference


def test_a_single_double_scored_item_does_not_crash_the_report(tmp_path: Path) -> None:
    store = _store(tmp_path, n=3, n_double=1)
    res = build_report(store, tmp_path / "r", n_boot=20)
    store.close()
    assert res.tables["human_human"]["n"].tolist() == [1]
    assert res.tables["human_machine"]["gate"].tolist() == ["insufficient"]


def test_an_undefined_human_human_qwk_is_no_reference() -> None:
    metrics = {"n": 100, "qwk": 0.9, "smd": 0.0}
    result = evaluate_gates(metrics, load_policy(), human_human_qwk=float("nan"))
    assert result.status == "pass", result.summary()
