"""Human-human agreement, the bar the machine is held to, counts only pairs where both raters were blind.

Historical double-scored data imported with ``scoring import-scores --not-blind`` (raters saw each other's
scores) is stored with blind=False on the first AND the second rating. Such a second rater agrees more, so
counting those pairs would inflate human-human QWK and raise the bar the gates and the drift monitor compare
the machine with. They are left out and counted: ``n_not_blind`` in the human-human table, ``hh_n_not_blind``
in the human-machine table, and the report line says so. A store holding only such pairs has no
human-human reference, and the gate is "insufficient" rather than a pass or fail measured on a wrong bar.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from eval.agreement import human_human_table, load_frames
from eval.drift import check_drift
from eval.report import build_report
from scoring.cli import app
from scoring.store import HumanScoreIn, MachineScoreIn, Store

RUBRIC = {"id": "hh", "version": 1, "title": "HH", "evidence": ["text"],
          "criteria": [{"id": "c", "title": "C", "scale": {"min": 0, "max": 4}}]}
LEVELS = [0, 1, 2, 3, 4]
N = 60  # at least the bundled policy's min_n (50)
AT = datetime(2026, 3, 1, tzinfo=UTC)


def _blind_pair(i: int) -> tuple[int, int]:
    """Two independent raters: agree on most items, one level apart on some, two apart on a few."""
    a = i % 5
    b = a if i % 3 == 0 else min(a + 1, 4) if i % 3 == 1 else max(a - 1, 0)
    if i % 11 == 0:
        b = min(a + 2, 4)
    return a, b


def _import(tmp_path: Path, db: str, rows: list[tuple[str, int, int]], *, not_blind: bool) -> None:
    rubric = tmp_path / "hh.yaml"
    rubric.write_text(yaml.safe_dump(RUBRIC))
    data = tmp_path / f"hist_{'seen' if not_blind else 'blind'}.csv"
    pd.DataFrame(rows, columns=["id", "rater1", "rater2"]).to_csv(data, index=False)
    args = ["import-scores", "--rubric", str(rubric), "--data", str(data), "--id-col", "id",
            "--score-col", "c=rater1", "--score-col", "c=rater2", "--db", db]
    r = CliRunner().invoke(app, [*args, "--not-blind"] if not_blind else args)
    assert r.exit_code == 0, r.output


def _mixed_store(tmp_path: Path) -> tuple[str, list[int], list[int]]:
    db = f"sqlite:///{tmp_path / 'mixed.db'}"
    pairs = [_blind_pair(i) for i in range(N)]
    _import(tmp_path, db, [(f"b{i}", a, b) for i, (a, b) in enumerate(pairs)], not_blind=False)
    _import(tmp_path, db, [(f"n{i}", i % 5, i % 5) for i in range(N)], not_blind=True)  # agree perfectly
    return db, [a for a, _ in pairs], [b for _, b in pairs]


def test_a_not_blind_import_stores_both_ratings_of_the_pair_as_not_blind(tmp_path: Path) -> None:
    db, _, _ = _mixed_store(tmp_path)
    store = Store(db)
    by_sub = {s.id: s.external_id for s in store.submissions()}
    seen = {(h.kind, h.blind) for h in store.human_scores() if by_sub[h.submission_id].startswith("n")}
    blind = {(h.kind, h.blind) for h in store.human_scores() if by_sub[h.submission_id].startswith("b")}
    store.close()
    assert seen == {("first", False), ("second", False)}
    assert blind == {("first", True), ("second", True)}


def test_human_human_qwk_is_that_of_the_blind_pairs_alone(tmp_path: Path) -> None:
    db, a, b = _mixed_store(tmp_path)
    store = Store(db)
    hh = human_human_table(load_frames(store))
    store.close()
    expected = cohen_kappa_score(a, b, labels=LEVELS, weights="quadratic")
    assert expected < 0.95  # the left-out pairs (QWK 1.0) would have raised it
    assert len(hh) == 1
    row = hh.iloc[0]
    assert row["n"] == N and row["n_not_blind"] == N
    assert row["qwk"] == pytest.approx(expected, abs=1e-12)


def test_the_report_and_its_line_count_the_pairs_left_out(tmp_path: Path) -> None:
    db, a, b = _mixed_store(tmp_path)
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "r"), "--bootstrap", "0", "--db", db])
    assert r.exit_code == 0, r.output
    q = cohen_kappa_score(a, b, labels=LEVELS, weights="quadratic")
    assert f"human-human hh@1/c: n={N} QWK={q:.3f}" in r.output
    assert f"({N} pair(s) left out: a rater was not blind)" in r.output
    exported = pd.read_csv(tmp_path / "r" / "human_human.csv")
    assert exported[["n", "n_not_blind"]].values.tolist() == [[N, N]]


def _only_not_blind_store(tmp_path: Path) -> str:
    """Historical pairs imported --not-blind (agreeing perfectly), plus machine scores checked by blind audits:
    the machine has a reference (the audits), human-human agreement has none."""
    db = f"sqlite:///{tmp_path / 'seen.db'}"
    _import(tmp_path, db, [(f"n{i}", i % 5, i % 5) for i in range(N)], not_blind=True)
    store = Store(db)
    ms, hs = [], []
    for i, s in enumerate(store.submissions()):
        truth = i % 5
        machine = truth if i % 4 else min(truth + 1, 4)  # QWK about 0.9 against the audits
        at = AT + timedelta(minutes=i)
        ms.append(MachineScoreIn(s.id, "c", machine, None, None, "audit", "r", "m-1", "p-1", at))
        hs.append(HumanScoreIn(s.id, "c", truth, "cy", "audit", True, "", at))
    store.record_machine_scores(ms)
    store.record_human_scores(hs)
    store.close()
    return db


def test_only_not_blind_pairs_give_no_reference_and_an_insufficient_gate(tmp_path: Path) -> None:
    db = _only_not_blind_store(tmp_path)
    store = Store(db)
    res = build_report(store, tmp_path / "r", n_boot=0)
    store.close()
    hh = res.tables["human_human"]
    assert hh[["n", "n_not_blind"]].values.tolist() == [[0, N]] and pd.isna(hh.iloc[0]["qwk"])
    hm = res.tables["human_machine"].iloc[0]
    assert hm["n"] == N and hm["qwk"] >= 0.70  # the machine meets the absolute thresholds
    assert pd.isna(hm["hh_qwk"]) and hm["hh_n"] == 0 and hm["hh_n_not_blind"] == N
    assert hm["gate"] == "insufficient"
    assert hm["gate_detail"] == f"insufficient: no human-human reference ({N} pairs were not blind)"
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "r2"), "--bootstrap", "0", "--db", db])
    assert r.exit_code == 0, r.output
    assert f"human-human hh@1/c: no human-human reference ({N} pairs were not blind)" in r.output


def test_the_drift_monitor_does_not_judge_on_pairs_that_were_not_blind(tmp_path: Path) -> None:
    store = Store(_only_not_blind_store(tmp_path))
    res = check_drift(store, "hh", act=False)[0]
    store.close()
    assert res.human_human_qwk is None and res.extra["hh_n_not_blind"] == N
    assert res.gate.status == "insufficient" and not res.suspended_now
