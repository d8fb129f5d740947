"""`scoring report` names a criterion it holds scores for but cannot compare, instead of leaving it out.

A criterion scored by one person only (no second rater, no machine score) has no row in any agreement
table; the command says so, with what it does hold, so that a missing row is not read as an oversight.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from rubrics.schema import parse_rubric
from scoring.cli import app
from scoring.store import HumanScoreIn, Store

RUBRIC = {"id": "notes", "version": 1, "title": "Notes", "evidence": ["text"],
          "criteria": [{"id": "paired", "title": "P", "scale": {"min": 0, "max": 3}},
                       {"id": "alone", "title": "A", "scale": {"min": 0, "max": 3}}]}


def test_a_criterion_with_one_rater_only_is_named_with_what_it_holds(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'n.db'}"
    store = Store(db)
    store.register_rubric(parse_rubric(RUBRIC))
    subs = store.add_submissions("notes", 1, [(f"s{i}", {"text": "t"}, {}) for i in range(12)])
    at = datetime(2026, 2, 1, tzinfo=UTC)
    store.record_human_scores(
        [HumanScoreIn(s.id, "paired", i % 4, who, kind, True, "", at) for i, s in enumerate(subs)
         for who, kind in (("ann", "first"), ("bob", "second"))]
        + [HumanScoreIn(s.id, "alone", i % 4, "ann", "first", True, "", at) for i, s in enumerate(subs)])
    store.close()
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "r"), "--bootstrap", "0", "--db", db])
    assert r.exit_code == 0, r.output
    assert "human-human notes@1/paired: n=12" in r.output
    assert ("note notes/alone: no pair to compare (12 first-rater, 0 second-rater, 0 audit and 0 machine-scored "
            "item(s))") in r.output
    assert "note notes/paired" not in r.output


def _scored_store(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    store = Store(db)
    store.register_rubric(parse_rubric(RUBRIC))
    subs = store.add_submissions("notes", 1, [(f"s{i}", {"text": "t"}, {}) for i in range(4)])
    store.record_human_scores([HumanScoreIn(s.id, "paired", 1, "ann", "first", True, "",
                                            datetime(2026, 2, 1 + i, 9, 30, tzinfo=UTC)) for i, s in enumerate(subs)])
    store.close()
    return db


def test_a_window_that_catches_no_score_says_when_the_scores_are(tmp_path: Path) -> None:
    db = _scored_store(tmp_path)
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "r"), "--bootstrap", "0", "--db", db,
                                 "--since", "2027-01-01"])
    assert r.exit_code == 0, r.output
    assert ("note: no score in the window [2027-01-01, now); the store's scores run from 2026-02-01 09:30 to "
            "2026-02-04 09:30 UTC") in r.output


def test_since_after_until_is_refused(tmp_path: Path) -> None:
    db = _scored_store(tmp_path)
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "r"), "--db", db,
                                 "--since", "2026-05-01", "--until", "2026-03-01"])
    assert r.exit_code == 2 and "is not before --until" in r.output
    assert not (tmp_path / "r").exists()


def test_automation_lines_name_their_window(tmp_path: Path) -> None:
    """Machine scores in two months give two automation lines per key; each says which month it is."""
    from scoring.store import MachineScoreIn

    db = f"sqlite:///{tmp_path / 'a.db'}"
    store = Store(db)
    store.register_rubric(parse_rubric(RUBRIC))
    subs = store.add_submissions("notes", 1, [(f"s{i}", {"text": "t"}, {}) for i in range(6)])
    store.record_machine_scores([MachineScoreIn(s.id, "paired", 1, None, None, "auto" if i % 3 else "human", "r",
                                                "m-1", "p", datetime(2026, 3 + i % 2, 10, tzinfo=UTC))
                                 for i, s in enumerate(subs)])
    store.close()
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "r"), "--bootstrap", "0", "--db", db])
    assert r.exit_code == 0, r.output
    assert "automation notes@1/paired [m-1] 2026-03: n=3 auto_fraction=0.667" in r.output
    assert "automation notes@1/paired [m-1] 2026-04: n=3 auto_fraction=0.667" in r.output
