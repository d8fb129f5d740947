"""`scoring export training`: the scores people gave in the store, as a file to retrain and recalibrate on.

Per criterion the file carries the level the criterion stands at by people (the training label), the blind
reference (calibration labels: no rating given with the machine's level in view) and the blind second rater
where the first was blind too (the human-human bar). `scoring train` reads it with no column options.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rubrics.schema import parse_rubric
from scoring.cli import app
from scoring.ingest import ColumnMap, infer_columns, read_records
from scoring.store import HumanScoreIn, MachineScoreIn, Store

RUBRIC = {"id": "reflect", "version": 1, "title": "Reflect", "evidence": ["reflection"],
          "criteria": [{"id": c, "title": c, "scale": {"min": 0, "max": 3}} for c in ("a", "b")]}
runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    """A store where people scored five submissions in every way the service records, and one nobody scored."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store(url) as st:
        st.register_rubric(parse_rubric(RUBRIC))
        ids = {s.external_id: s.id for s in st.add_submissions("reflect", 1, [
            (e, {"reflection": f"what I changed after the exit ticket ({e})"},
             {"school": "Süd", "a": "not the criterion"} if e == "double" else {"school": "Nord"} if e == "audited"
             else {}) for e in
            ("anchored", "double", "disputed", "adjudicated", "audited", "half-double", "unscored")])}

        def rate(ext: str, crit: str, score: int, who: str, kind: str, blind: bool) -> int:
            return st.record_human_scores([HumanScoreIn(ids[ext], crit, score, who, kind=kind, blind=blind)])[0]

        rate("anchored", "a", 2, "ana", "first", blind=False)  # saw the machine's level: label, not a reference
        rate("double", "a", 1, "ana", "first", blind=True)
        rate("double", "a", 2, "ben", "second", blind=True)  # within the gap of 1: the first rating stands
        rate("disputed", "a", 0, "ana", "first", blind=True)
        rate("disputed", "a", 3, "ben", "second", blind=True)  # 3 apart, not adjudicated: no level yet
        h1 = rate("adjudicated", "a", 0, "ana", "first", blind=True)
        h2 = rate("adjudicated", "a", 3, "ben", "second", blind=True)
        st.record_adjudication(ids["adjudicated"], "a", 2, adjudicator="cho", human_score_ids=[h1, h2])
        rate("audited", "b", 3, "dev", "audit", blind=True)
        st.record_machine_scores([MachineScoreIn(ids["half-double"], "a", 2, probabilities={"2": 1.0}, route="double")])
        rate("half-double", "a", 3, "ana", "first", blind=True)  # the second blind rater has not scored yet
    yield url


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


def test_each_criterion_gets_its_standing_level_its_blind_reference_and_its_blind_pair(db: str, tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    res = runner.invoke(app, ["export", "training", "--db", db, "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = _rows(out)
    assert set(rows) == {"anchored", "double", "disputed", "adjudicated", "audited", "half-double"}  # not "unscored"
    want = {  # id: (a, a_blind, a_rater2, b, b_blind)
        "anchored": ("2", "", "", "", ""),
        "double": ("1", "1", "2", "", ""),
        "disputed": ("", "0", "3", "", ""),
        "adjudicated": ("2", "0", "3", "", ""),
        "audited": ("", "", "", "3", "3"),
        "half-double": ("", "3", "", "", ""),  # as the credential rule: no level until the second rater scores
    }
    got = {k: (r["a"], r["a_blind"], r["a_rater2"], r["b"], r["b_blind"]) for k, r in rows.items()}
    assert got == want
    assert rows["double"]["reflection"] == "what I changed after the exit ticket (double)"
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert summary["disputed"] == {"a": 1, "b": 0} and summary["pairs"] == {"a": 3, "b": 0}
    assert summary["unscored"] == 1 and "1 awaiting adjudication" in res.output
    assert summary["awaiting_second"] == {"a": 1, "b": 0} and "1 awaiting the second blind rating" in res.output


def test_scoring_train_reads_the_file_with_no_column_options(db: str, tmp_path: Path) -> None:
    """The evidence and criterion columns are named as the rubric names them (what `scoring train` reads with no
    --text-col or --score-col); blank cells are no score."""
    out = tmp_path / "scores.jsonl"
    assert runner.invoke(app, ["export", "training", "--db", db, "--out", str(out)]).exit_code == 0
    rubric = parse_rubric(RUBRIC)
    cols = infer_columns(rubric, ColumnMap(id="id", scores={c.id: c.id for c in rubric.criteria}))  # as train does
    assert list(cols.text) == ["reflection"]
    recs = {r.id: r for r in read_records(out, rubric, cols)}
    assert recs["adjudicated"].scores == {"a": 2, "b": None} and recs["anchored"].scores == {"a": 2, "b": None}
    assert recs["audited"].scores == {"a": None, "b": 3} and all(r.reject is None for r in recs.values())


def test_nothing_is_overwritten_and_a_store_of_several_rubrics_needs_one_named(db: str, tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    out.write_text("my own sheet\n", encoding="utf-8")
    res = runner.invoke(app, ["export", "training", "--db", db, "--out", str(out)])
    assert res.exit_code == 2 and "already exists" in res.output and out.read_text() == "my own sheet\n"
    with Store(db) as st:
        st.register_rubric(parse_rubric({**RUBRIC, "id": "other"}))
    res = runner.invoke(app, ["export", "training", "--db", db, "--out", str(tmp_path / "b.csv")])
    assert res.exit_code == 2 and "name one with --rubric" in res.output
    res = runner.invoke(app, ["export", "training", "--db", db, "--out", str(tmp_path / "b.csv"), "--rubric", "reflect@1"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["export", "training", "--db", db, "--out", str(tmp_path / "c.csv"), "--rubric", "other"])
    assert res.exit_code == 1 and "holds no submission of other@1" in " ".join(res.output.split())
    res = runner.invoke(app, ["export", "training", "--db", db, "--out", str(tmp_path / "c.csv"), "--rubric", "reflect",
                              "--issuer", "district-9"])
    assert res.exit_code == 1 and "no submission of reflect@1 from issuer 'district-9'" in " ".join(res.output.split())
    assert not (tmp_path / "c.csv").exists()  # a failed export leaves no file to block the next one


def test_a_store_where_nobody_has_scored_yet_writes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with Store(url) as st:
        st.register_rubric(parse_rubric(RUBRIC))
        st.add_submissions("reflect", 1, [("t-1", {"reflection": "a plan"}, {})])
    res = runner.invoke(app, ["export", "training", "--db", url, "--out", str(tmp_path / "x.csv")])
    assert res.exit_code == 1 and "no person has scored any of the 1 submission(s)" in " ".join(res.output.split())
    assert not (tmp_path / "x.csv").exists()


def test_the_submissions_metadata_comes_along_for_subgroups_and_meta_col(db: str, tmp_path: Path) -> None:
    """What `--meta-col` recorded at scoring (school, cohort) is exported, so a subgroup report of the retrained
    model and `scoring train --meta-col` keep it; a key named like another column is prefixed, never mixed in."""
    out = tmp_path / "scores.csv"
    assert runner.invoke(app, ["export", "training", "--db", db, "--out", str(out)]).exit_code == 0
    rows = _rows(out)
    assert rows["double"]["school"] == "Süd" and rows["audited"]["school"] == "Nord" and rows["anchored"]["school"] == ""
    assert rows["double"]["meta_a"] == "not the criterion" and rows["double"]["a"] == "1"
