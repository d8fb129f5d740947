"""`scoring report --since/--until` applies to the credential decisions too.

A researcher asking for "March" gets March's credential decisions: a submission counts in the `decisions`
table when its standing (latest) decision was recorded in March, so the months add up to the report without
a window. The `decision_agreement` pairs are placed like the agreement tables' pairs: by the machine's
decision (recorded with its machine scores), whatever time the final decision or the blind human scores
came; a human-human pair by the second rater's score. Since inclusive, until exclusive, a bound without a
timezone read as UTC.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

import scoring.store.decisions as store_decisions
import scoring.store.submissions as store_submissions
from eval.report import build_report
from rubrics.schema import parse_rubric
from scoring.store import HumanScoreIn, Store
from scoring.store.clock import to_db_time
from scoring.store.decisions import decision_in

RUBRIC = {"id": "award", "version": 1, "title": "Award", "evidence": ["text"],
          "criteria": [{"id": c, "title": c, "scale": {"min": 0, "max": 2}} for c in ("a", "b")],
          "award": {"min_total": 3, "floor": 1, "description": "a and b add up to 3 or more, neither at 0"}}
EARNED, NOT_YET = {"a": 2, "b": 2}, {"a": 1, "b": 1}
FEB, MARCH, APRIL, MAY = (datetime(2026, m, 1, tzinfo=UTC) for m in (2, 3, 4, 5))


class Clock:
    """The store's clock, set by the test: submissions and decisions are recorded at ``at``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.at = MARCH
        for module in (store_decisions, store_submissions):
            monkeypatch.setattr(module, "_now", lambda: to_db_time(self.at))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'd.db'}")
    s.register_rubric(parse_rubric(RUBRIC))
    yield s
    s.close()


def _submit(store: Store, clock: Clock, ext: str, at: datetime, meta: dict[str, str] | None = None) -> int:
    clock.at = at
    return store.add_submissions("award", 1, [(ext, {"text": ext}, meta or {})])[0].id


def _decide(store: Store, clock: Clock, sid: int, at: datetime, outcome: str, basis: str,
            levels: dict[str, int]) -> None:
    clock.at = at
    with store.write() as tx:
        decision_in(tx, sid, "award", 1, outcome, basis, levels, model_version="m-1")


def _decisions(store: Store, out: Path, since: datetime | None = None,
               until: datetime | None = None) -> tuple[dict[str, int], pd.DataFrame]:
    res = build_report(store, out, since=since, until=until, n_boot=0)
    d = res.tables["decisions"]
    counts = d.iloc[0][["submissions_decided", "earned", "not_yet", "needs_human"]].to_dict() if len(d) else {}
    return {k: int(v) for k, v in counts.items()}, res.tables["decision_agreement"]


def _two_months(store: Store, clock: Clock) -> None:
    """March: 3 earned and 2 not yet, decided by the machine. April: 1 earned and 1 needs a person. One
    decided at exactly midnight on 1 April belongs to April."""
    for i, (at, outcome) in enumerate([(MARCH + timedelta(days=2), "earned")] * 3
                                      + [(MARCH + timedelta(days=20), "not_yet")] * 2
                                      + [(APRIL, "earned"), (APRIL + timedelta(days=9), "needs_human")]):
        sid = _submit(store, clock, f"s{i}", at)
        _decide(store, clock, sid, at, outcome, "machine", EARNED if outcome == "earned" else NOT_YET)


def test_a_months_report_counts_only_the_decisions_recorded_that_month(
        store: Store, clock: Clock, tmp_path: Path) -> None:
    _two_months(store, clock)
    march, _ = _decisions(store, tmp_path / "march", MARCH, APRIL)
    april, _ = _decisions(store, tmp_path / "april", APRIL, MAY)
    assert march == {"submissions_decided": 5, "earned": 3, "not_yet": 2, "needs_human": 0}
    assert april == {"submissions_decided": 2, "earned": 1, "not_yet": 0, "needs_human": 1}
    assert _decisions(store, tmp_path / "feb", FEB, MARCH)[0] == {}  # no decision in February: no row


def test_the_report_without_a_window_counts_every_decision(store: Store, clock: Clock, tmp_path: Path) -> None:
    _two_months(store, clock)
    assert _decisions(store, tmp_path / "all")[0] == {"submissions_decided": 7, "earned": 4, "not_yet": 2,
                                                      "needs_human": 1}


def test_bounds_without_a_timezone_are_read_as_utc(store: Store, clock: Clock, tmp_path: Path) -> None:
    _two_months(store, clock)
    naive = _decisions(store, tmp_path / "naive", datetime(2026, 3, 1), datetime(2026, 4, 1))[0]
    assert naive["submissions_decided"] == 5  # the decision at 00:00 UTC on 1 April is April's


def test_a_decision_reviewed_later_belongs_to_the_month_of_its_latest_decision(
        store: Store, clock: Clock, tmp_path: Path) -> None:
    """The machine sent it to a person in March; the person's review decided it in April: an April
    credential, and March holds no decision for it."""
    sid = _submit(store, clock, "reviewed", MARCH + timedelta(days=5))
    _decide(store, clock, sid, MARCH + timedelta(days=5), "needs_human", "machine", EARNED)
    _decide(store, clock, sid, APRIL + timedelta(days=3), "earned", "final", EARNED)
    assert _decisions(store, tmp_path / "march", MARCH, APRIL)[0] == {}
    assert _decisions(store, tmp_path / "april", APRIL, MAY)[0] == {"submissions_decided": 1, "earned": 1,
                                                                     "not_yet": 0, "needs_human": 0}


def test_a_resubmission_counts_in_the_month_it_was_decided_and_its_chain_whenever(
        store: Store, clock: Clock, tmp_path: Path) -> None:
    """Not yet in March, revised and earned in April: March's not-yet submission was revised (later), and
    April's earned one came through a resubmission, 30 days after the chain's first submission."""
    first = _submit(store, clock, "v1", MARCH + timedelta(days=1))
    _decide(store, clock, first, MARCH + timedelta(days=1), "not_yet", "machine", NOT_YET)
    again = _submit(store, clock, "v2", MARCH + timedelta(days=31), {"revises": "v1"})
    _decide(store, clock, again, MARCH + timedelta(days=31), "earned", "machine", EARNED)
    march = build_report(store, tmp_path / "march", since=MARCH, until=APRIL, n_boot=0).tables["decisions"].iloc[0]
    april = build_report(store, tmp_path / "april", since=APRIL, until=MAY, n_boot=0).tables["decisions"].iloc[0]
    assert (march["submissions_decided"], march["resubmissions"], march["resubmission_rate_after_not_yet"]) == (1, 0, 1.0)
    assert (april["submissions_decided"], april["resubmissions"], april["earned_after_resubmission"]) == (1, 1, 1)
    assert april["median_days_to_earn"] == 30.0


def test_decision_agreement_pairs_belong_to_the_month_of_the_machines_decision(
        store: Store, clock: Clock, tmp_path: Path) -> None:
    """Four submissions the machine decided (earned) in March; in April review made one of them not yet and
    a blind audit of both criteria disagreed on the same one. The March report compares all four; April's,
    where the machine decided nothing, none."""
    for i in range(4):
        sid = _submit(store, clock, f"m{i}", MARCH + timedelta(days=10))
        _decide(store, clock, sid, MARCH + timedelta(days=10), "earned", "machine", EARNED)
        levels = NOT_YET if i == 0 else EARNED
        _decide(store, clock, sid, APRIL + timedelta(days=2), "earned" if i else "not_yet", "final", levels)
        store.record_human_scores([HumanScoreIn(sid, c, v, "cy", "audit", True, "", APRIL + timedelta(days=2))
                                   for c, v in levels.items()])
    march = _decisions(store, tmp_path / "march", MARCH, APRIL)[1].set_index("pair")
    assert march.loc["machine vs final", "n"] == 4 and march.loc["machine vs final", "agreement"] == 0.75
    assert march.loc["machine vs blind human", "n"] == 4 and march.loc["machine vs blind human",
                                                                        "false_award_rate"] == 0.25
    assert _decisions(store, tmp_path / "april", APRIL, MAY)[1].empty


def test_a_human_human_decision_pair_belongs_to_the_month_of_the_second_raters_score(
        store: Store, clock: Clock, tmp_path: Path) -> None:
    """First-rated in February, second-rated in March and (the last criterion) April: an April pair, as in
    the human-human table; it needs no recorded decision."""
    sid = _submit(store, clock, "hh", FEB)
    store.record_human_scores([
        *(HumanScoreIn(sid, c, 2, "ann", "first", True, "", FEB + timedelta(days=3)) for c in ("a", "b")),
        HumanScoreIn(sid, "a", 2, "bob", "second", True, "", MARCH + timedelta(days=30)),
        HumanScoreIn(sid, "b", 1, "bob", "second", True, "", APRIL + timedelta(days=1))])
    assert _decisions(store, tmp_path / "march", MARCH, APRIL)[1].empty
    april = _decisions(store, tmp_path / "april", APRIL, MAY)[1]
    assert april[["pair", "n", "agreement"]].values.tolist() == [["human-human", 1, 1.0]]


def test_provenance_says_the_window_filters_the_decisions(store: Store, clock: Clock, tmp_path: Path) -> None:
    _two_months(store, clock)
    build_report(store, tmp_path / "r", since=MARCH, until=APRIL, n_boot=0)
    filters = json.loads((tmp_path / "r" / "provenance.json").read_text(encoding="utf-8"))["filters"]
    assert filters["not_filtered"] == ["suspensions", "models"]
    assert "latest decision" in filters["decisions_selected_by"]


def test_the_machine_decision_a_review_answered_is_the_latest_before_the_final(
        store: Store, clock: Clock, tmp_path: Path) -> None:
    """A submission decided in February by a first model (not yet), re-decided in March by a retrained model
    before anyone started it (earned), and reviewed in April (earned): the review answered March's decision.
    A machine decision recorded after the final one is not the one reviewed either."""
    sid = _submit(store, clock, "redecided", FEB)
    _decide(store, clock, sid, FEB, "not_yet", "machine", NOT_YET)
    _decide(store, clock, sid, MARCH, "needs_human", "machine", EARNED)
    _decide(store, clock, sid, APRIL, "earned", "final", EARNED)
    _decide(store, clock, sid, APRIL + timedelta(days=1), "needs_human", "machine", NOT_YET)
    _, agreement = _decisions(store, tmp_path / "all")
    row = agreement[agreement["pair"] == "machine vs final"].iloc[0]
    assert (int(row["n"]), float(row["agreement"])) == (1, 1.0)
    assert _decisions(store, tmp_path / "feb", FEB, MARCH)[1].empty  # February's decision was not the one reviewed
