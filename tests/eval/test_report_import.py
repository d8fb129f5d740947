"""Import of historical scores, the report and its exports, and the CLI doors (audit verify exit codes)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from eval.report import DATA_DICTIONARY, build_report
from rubrics.schema import parse_rubric
from scoring.cli import app
from scoring.errors import Conflict
from scoring.store import Store
from scoring.usecases.history import ScoreColumn, import_table, read_table

RUBRIC = {"id": "essay", "version": 1, "title": "Essay", "evidence": ["text"],
          "criteria": [{"id": "holistic", "title": "Holistic", "scale": {"min": 1, "max": 6}}]}


def _history(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Double-scored history: two raters who agree with a latent score most of the time; a school field."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 7, n)
    r1 = np.clip(truth + rng.choice([-1, 0, 0, 0, 1], n), 1, 6)
    r2 = np.clip(truth + rng.choice([-1, 0, 0, 0, 1], n), 1, 6)
    r2 = r2.astype(object)
    r2[::50] = ""  # some essays only scored once
    return pd.DataFrame({"id": [f"e{i}" for i in range(n)], "set": ["1"] * (n - 20) + ["2"] * 20,
                         "rater1": r1.astype(str), "rater2": r2.astype(str),
                         "school": rng.choice(["north", "south"], n), "essay": ["secret text"] * n})


@pytest.fixture
def rubric_file(tmp_path):  # type: ignore[no-untyped-def]
    p = tmp_path / "essay.yaml"
    p.write_text(yaml.safe_dump(RUBRIC))
    return p


def test_score_column_specs_default_to_first_then_second() -> None:
    cols = ScoreColumn.parse_many(["holistic=r1", "holistic=r2", "style=s@audit"])
    assert [(c.criterion, c.column, c.kind) for c in cols] == [("holistic", "r1", "first"),
                                                                ("holistic", "r2", "second"), ("style", "s", "audit")]
    with pytest.raises(ValueError):
        ScoreColumn.parse_many(["holistic"])


def test_import_then_report_reproduces_sklearn_qwk_and_exports_no_text(tmp_path) -> None:  # type: ignore[no-untyped-def]
    df = _history()
    data = tmp_path / "hist.tsv"
    df.to_csv(data, sep="\t", index=False)
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    rub = parse_rubric(RUBRIC)
    res = import_table(store, rub, read_table(data), id_col="id",
                       score_cols=ScoreColumn.parse_many(["holistic=rater1", "holistic=rater2"]),
                       meta_cols=["school"], where={"set": "1"}, source="hist")
    sel = df[df["set"] == "1"]
    assert res.rows_selected == len(sel) == res.submissions
    assert res.human_scores == {"first": len(sel), "second": int((sel["rater2"] != "").sum())}
    with pytest.raises(Conflict):  # a second identical import would double every score
        import_table(store, rub, read_table(data), id_col="id",
                     score_cols=ScoreColumn.parse_many(["holistic=rater1"]), where={"set": "1"})

    # machine scores from a model, with probabilities and routes, for the human-machine half of the report
    rng = np.random.default_rng(1)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    for i, sub in enumerate(store.submissions("essay")):
        h = store.human_scores(submission_id=sub.id, kind="first")[0].score
        pred = int(np.clip(h + rng.choice([-1, 0, 0, 1]), 1, 6))
        p = np.full(6, 0.04)
        p[pred - 1] = 0.8
        store.record_machine_score(sub.id, "holistic", pred, probabilities=list(p / p.sum()), model_version="m1",
                                   route="auto" if i % 3 else "human", created_at=t0 + timedelta(days=i % 60))

    out = tmp_path / "report"
    rep = build_report(store, out, subgroups=["school"], n_boot=200, pseudonym_key="k")
    both = sel[sel["rater2"] != ""]
    expected = cohen_kappa_score(both["rater1"].astype(int), both["rater2"].astype(int), weights="quadratic")
    hh = rep.tables["human_human"]
    assert hh.loc[0, "qwk"] == pytest.approx(expected, abs=1e-9)
    assert hh.loc[0, "n"] == len(both) and hh.loc[0, "qwk_lo"] < expected < hh.loc[0, "qwk_hi"]
    hm = rep.tables["human_machine"]
    assert hm.loc[0, "prmse"] is not None and hm.loc[0, "ece"] >= 0 and hm.loc[0, "gate"] in ("pass", "fail")
    routed = [(m.route == "auto") for m in store.machine_scores()]
    assert hm.loc[0, "auto_fraction"] == pytest.approx(sum(routed) / len(routed))
    auto = rep.tables["automation"]  # per month: the scores span two
    assert auto["n"].sum() == len(routed) and auto["n_accepted"].sum() == sum(routed) and len(auto) >= 2
    assert set(rep.tables["subgroups"]["group"]) == {"north", "south"}
    assert len(rep.tables["over_time"].query("pair == 'machine m1'")) >= 2  # scores span two months
    assert len(rep.figures) >= 4 and all(p.stat().st_size > 1000 for p in rep.figures)

    html = rep.html.read_text()
    assert "data:image/png;base64," in html and "Data dictionary" in html
    for name in DATA_DICTIONARY:
        assert (out / f"{name}.csv").exists() and (out / f"{name}.json").exists(), name
    exported = "".join(p.read_text() for p in out.glob("*.csv")) + "".join(p.read_text() for p in out.glob("*.json"))
    assert "secret text" not in exported and "hist:rater1" not in exported
    items = pd.read_csv(out / "items.csv")
    assert not set(items["submission"]) & set(df["id"])  # pseudonyms, not the external ids
    assert items["submission"].str.fullmatch(r"[0-9a-f]{16}").all()
    # same key -> same pseudonyms (linkable across reports); another key -> different ones
    again = build_report(store, tmp_path / "r2", n_boot=0, pseudonym_key="k").tables["items"]
    other = build_report(store, tmp_path / "r3", n_boot=0, pseudonym_key="other").tables["items"]
    assert set(again["submission"]) == set(items["submission"]) and not set(other["submission"]) & set(items["submission"])
    store.close()


def test_import_keeps_historical_score_times_for_agreement_over_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    df = _history(120)
    df["scored_at"] = ["2025-01-15" if i < 60 else "2025-03-02T10:00:00" for i in range(len(df))]
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    import_table(store, parse_rubric(RUBRIC), df, id_col="id", time_col="scored_at",
                 score_cols=ScoreColumn.parse_many(["holistic=rater1", "holistic=rater2"]))
    hs = store.human_scores(until=datetime(2025, 2, 1, tzinfo=UTC))
    assert len(hs) > 0 and {h.created_at for h in hs} == {datetime(2025, 1, 15, tzinfo=UTC)}
    from eval.agreement import human_human_table, load_frames

    windows = human_human_table(load_frames(store), window="M")["window"].tolist()
    assert windows == ["2025-01", "2025-03"]
    store.close()


def test_cli_import_report_and_audit_verify_exit_codes(tmp_path, rubric_file) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "hist.csv"
    _history(80).to_csv(data, index=False)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    r = runner.invoke(app, ["import-scores", "--rubric", str(rubric_file), "--data", str(data), "--id-col", "id",
                            "--score-col", "holistic=rater1", "--score-col", "holistic=rater2", "--meta-col", "school",
                            "--db", db])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["submissions"] == 80
    r = runner.invoke(app, ["report", "--out", str(tmp_path / "rep"), "--bootstrap", "50", "--db", db])
    assert r.exit_code == 0, r.output
    assert "human-human essay@1/holistic" in r.output and (tmp_path / "rep" / "report.html").exists()
    r = runner.invoke(app, ["audit", "verify", "--db", db])
    assert r.exit_code == 0 and "audit log OK" in r.output
    eng = sa.create_engine(db)
    with eng.begin() as c:
        c.execute(sa.text("UPDATE audit_log SET payload = replace(payload, :a, :b) WHERE seq = 5"),
                  {"a": '"score":', "b": '"score":1'})  # e.g. a score of 3 becomes 13
    eng.dispose()
    r = runner.invoke(app, ["audit", "verify", "--db", db])
    assert r.exit_code == 1 and "BROKEN at entry 5" in r.output
    r = runner.invoke(app, ["drift", "check", "--rubric", "essay", "--db", db])
    assert r.exit_code == 0 and "insufficient" in r.output  # no machine scores yet: nothing to judge


def test_report_gate_fails_when_one_subgroup_is_scored_unfairly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The machine agrees overall but over-scores subgroup `b` by a point: the DSM gate must name it."""
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    rub = parse_rubric(RUBRIC)
    store.register_rubric(rub)
    rng = np.random.default_rng(4)
    subs = store.add_submissions("essay", 1, [(f"e{i}", {}, {"grp": "b" if i % 4 == 0 else "a"}) for i in range(400)])
    for s in subs:
        truth = int(rng.integers(1, 7))
        store.record_human_score(s.id, "holistic", truth, assessor="r1")
        shift = 1 if s.metadata["grp"] == "b" else 0
        store.record_machine_score(s.id, "holistic", int(np.clip(truth + shift, 1, 6)), model_version="m")
    rep = build_report(store, tmp_path / "r", subgroups=["grp"], n_boot=0)
    sg = rep.tables["subgroups"].set_index("group")
    assert sg.loc["b", "dsm"] > 0.10 and sg.loc["b", "gate"] == "fail"
    hm = rep.tables["human_machine"]
    assert hm.loc[0, "gate"] == "fail" and "subgroup grp=b" in hm.loc[0, "gate_detail"]
    store.close()


@pytest.mark.parametrize("bad, expected", [
    ({"rater1": "5.5"}, "row id 'e3', column 'rater1': score '5.5' is not an integer"),
    ({"rater1": "9"}, "row id 'e3', column 'rater1': score 9 is outside the scale [1, 2, 3, 4, 5, 6] of 'holistic'"),
    ({"rater2": "high"}, "score 'high' is not a number"),
    ({"id": "e4"}, "ids ['e4'] appear more than once"),
])
def test_a_bad_cell_imports_nothing_and_says_which_row(tmp_path, rubric_file, bad, expected) -> None:  # type: ignore[no-untyped-def]
    df = _history(30)
    for col, val in bad.items():
        df.loc[3, col] = val
    data = tmp_path / "hist.csv"
    df.to_csv(data, index=False)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    r = CliRunner().invoke(app, ["import-scores", "--rubric", str(rubric_file), "--data", str(data), "--id-col", "id",
                                 "--score-col", "holistic=rater1", "--score-col", "holistic=rater2", "--db", db])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "nothing was imported" in r.output and expected in r.output
    store = Store(db)
    assert store.submissions() == [] and store.human_scores() == []  # not half an import
    store.close()


def test_unreadable_import_files_are_one_line_errors(tmp_path, rubric_file) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    base = ["import-scores", "--rubric", str(rubric_file), "--id-col", "id", "--score-col", "holistic=rater1",
            "--db", f"sqlite:///{tmp_path / 'cli.db'}"]
    r = CliRunner().invoke(app, [*base, "--data", str(empty)])
    assert r.exit_code == 2 and "is empty" in r.output and "Traceback" not in r.output
    data = tmp_path / "hist.csv"
    _history(30).to_csv(data, index=False)
    r = CliRunner().invoke(app, [*base, "--data", str(data), "--time-col", "school"])
    assert r.exit_code == 2 and "not ISO 8601" in r.output
    r = CliRunner().invoke(app, [*base[:5], "--score-col", "nope=rater1", base[-2], base[-1], "--data", str(data)])
    assert r.exit_code == 2 and "no criterion 'nope'" in r.output


def test_report_refuses_an_unknown_rubric_or_window(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from scoring.store import Store

    db = f"sqlite:///{tmp_path / 'r.db'}"
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "rep"), "--db", db])  # a mistyped --db
    assert r.exit_code == 2 and "no store at" in r.output and not (tmp_path / "r.db").exists()
    Store(db).close()
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "rep"), "--rubric", "nope", "--db", db])
    assert r.exit_code == 2 and "rubric 'nope' is not in the store" in r.output
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "rep"), "--window", "X", "--db", db])
    assert r.exit_code == 2 and not (tmp_path / "rep").exists()


def test_a_subgroup_field_missing_from_submissions_is_said_not_reported_as_one_group(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rubrics import load_rubric
    from scoring.demo import DEMO_RUBRIC
    from scoring.store import Store

    rub = load_rubric(DEMO_RUBRIC)
    db = f"sqlite:///{tmp_path / 'r.db'}"
    with Store(db) as st:
        st.register_rubric(rub)
        st.add_submissions(rub.id, rub.version, [("s1", {"reflection": "x"}, {"school": "north"}),
                                                 ("s2", {"reflection": "y"}, {})])
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "rep"), "--db", db, "--subgroup", "school",
                                 "--bootstrap", "0"])
    out = " ".join(r.output.split())
    assert r.exit_code == 0, r.output
    assert "subgroup field 'school' is recorded for 1 of 2 submission(s)" in out and "--meta-col school" in out
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "rep2"), "--db", db, "--subgroup", "school",
                                 "--subgroup", "program", "--bootstrap", "0"])
    assert r.exit_code == 2 and not (tmp_path / "rep2").exists(), r.output  # no report with a '(missing)' group
    assert "error: --subgroup 'program' is recorded for none of the 2 submission(s) (they carry school)" in r.output
    assert "--meta-col program" in r.output and "Traceback" not in r.output


def test_import_scores_reads_a_spreadsheets_bom_and_names_the_line_another_encoding_needs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rubric = tmp_path / "r.yaml"
    rubric.write_text(yaml.safe_dump(RUBRIC))
    data = tmp_path / "scores.csv"
    data.write_bytes(b"\xef\xbb\xbfid,rater1,note\r\ne1,3,fine\r\ne2,4,caf\xe9\r\n")  # cp1252 on line 3
    db = f"sqlite:///{tmp_path / 's.db'}"
    args = ["import-scores", "--rubric", str(rubric), "--data", str(data), "--id-col", "id",
            "--score-col", "holistic=rater1", "--db", db]
    r = CliRunner().invoke(app, args)
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "is not valid utf-8 (line 3)" in out and "--encoding" in out, out
    r = CliRunner().invoke(app, [*args, "--encoding", "cp1252"])
    assert r.exit_code == 0, r.output
    assert "human scores {'first': 2}" in r.output  # the BOM did not hide the 'id' column


def test_an_import_refused_because_one_person_rated_twice_leaves_the_store_as_it_was(tmp_path, rubric_file) -> None:  # type: ignore[no-untyped-def]
    """Row e3 names the same assessor as its first and second rater: refused (two ratings of one submission by
    one person are not independent), and nothing of the import is written, the rubric registration included."""
    df = _history(30)
    df["who1"], df["who2"] = [f"a{i}" for i in range(30)], [f"b{i}" for i in range(30)]
    df.loc[3, "who2"] = "a3"
    data = tmp_path / "hist.csv"
    df.to_csv(data, index=False)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    r = CliRunner().invoke(app, ["import-scores", "--rubric", str(rubric_file), "--data", str(data), "--id-col", "id",
                                 "--score-col", "holistic=rater1", "--score-col", "holistic=rater2",
                                 "--rater-col", "first=who1", "--rater-col", "second=who2", "--db", db])
    assert r.exit_code != 0 and "Traceback" not in r.output, r.output
    store = Store(db)
    assert store.submissions() == [] and store.human_scores() == [] and store.rubrics() == []
    assert list(store.audit_entries()) == []
    store.close()
