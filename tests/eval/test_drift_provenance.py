"""`scoring drift check` says whose machine scores its audit window judged.

With a promoted model the window holds only that model's scores. With none promoted it holds whatever
each audited item was last scored by; a figure pooled over two model versions must say so, with the
items of each, on the line and in the JSON a script reads.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from rubrics.schema import parse_rubric
from scoring.cli import app
from scoring.store import HumanScoreIn, MachineScoreIn, Store

RUBRIC = {"id": "drift-prov", "version": 1, "title": "Drift provenance", "evidence": ["text"],
          "criteria": [{"id": "c", "title": "C", "scale": {"min": 0, "max": 4}}]}


def _store(path: Path) -> str:
    """30 audited items scored by m-1, then 20 by m-2; no model promoted."""
    url = f"sqlite:///{path}"
    store = Store(url)
    store.register_rubric(parse_rubric(RUBRIC))
    subs = store.add_submissions("drift-prov", 1, [(f"s{i}", {"text": "t"}, {}) for i in range(50)])
    t0 = datetime(2026, 6, 1, tzinfo=UTC)
    store.record_machine_scores([MachineScoreIn(s.id, "c", i % 5, None, None, "audit", "r", "m-1" if i < 30 else "m-2",
                                                "p", t0 + timedelta(minutes=i)) for i, s in enumerate(subs)])
    store.record_human_scores([HumanScoreIn(s.id, "c", i % 5, "ann", "audit", True, "", t0 + timedelta(hours=1, minutes=i))
                               for i, s in enumerate(subs)])
    store.close()
    return url


def test_a_window_pooled_over_model_versions_names_each_with_its_items(tmp_path: Path) -> None:
    db = _store(tmp_path / "d.db")
    r = CliRunner().invoke(app, ["drift", "check", "--rubric", "drift-prov", "--db", db, "--dry-run"])
    assert r.exit_code == 0, r.output
    line, last = r.output.strip().splitlines()[0], r.output.strip().splitlines()[-1]
    assert "no model promoted; window holds m-1 (30), m-2 (20)" in line
    assert json.loads(last)["c"] == {"status": "pass", "suspended": False, "policy_check": "insufficient",
                                          "n": 50, "model": None, "models": {"m-1": 30, "m-2": 20}}


def test_with_a_promoted_model_the_window_holds_only_its_scores(tmp_path: Path) -> None:
    db = _store(tmp_path / "d.db")
    store = Store(db)
    store.register_model("m-2", tmp_path / "m-2", rubric_id="drift-prov")
    store.promote_model("m-2")
    store.close()
    r = CliRunner().invoke(app, ["drift", "check", "--rubric", "drift-prov", "--db", db, "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "n=20 (window 100, model m-2)" in r.output
    assert json.loads(r.output.strip().splitlines()[-1])["c"]["models"] == {"m-2": 20}


def test_a_window_below_one_item_is_refused(tmp_path: Path) -> None:
    """`--window -5` used to judge every audit item ever recorded, silently."""
    db = _store(tmp_path / "d.db")
    for bad in ("0", "-5"):
        r = CliRunner().invoke(app, ["drift", "check", "--rubric", "drift-prov", "--db", db, "--dry-run",
                                     "--window", bad])
        assert r.exit_code == 2 and "--window" in r.output, r.output
