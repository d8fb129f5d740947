"""The report's RSMTool-parity figures on a store shaped like the researcher's case (tests/eval/report_fixture.py):
PRMSE with audit-only items, automation from the recorded routes, RMSE / R2, score distributions, DSM with
intervals and a DSM that cannot be computed, human-human by subgroup, fairness; and a second rater's scores
imported onto submissions that came in through the service's intake (the API's recording path).

Each hand-written formula is checked against an independent computation (numpy / scikit-learn / group
means), never against its own output."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from report_fixture import ESSAY, MODEL, ROUTES, build
from sklearn.metrics import mean_squared_error, r2_score
from typer.testing import CliRunner

from eval.agreement import load_frames, prmse_true
from eval.report import build_report
from rubrics.schema import parse_rubric
from scoring.cli import app
from scoring.errors import Conflict, SameRater
from scoring.prescore import CriterionResult, ScoredSubmission
from scoring.store import Store
from scoring.usecases import intake
from scoring.usecases.history import ScoreColumn, import_table


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("figures")
    store = Store(f"sqlite:///{tmp / 's.db'}")
    info = build(store)
    rep = build_report(store, tmp / "out", subgroups=["school"], n_boot=200, pseudonym_key="k")
    frames = load_frames(store)
    yield rep, info, frames
    store.close()


def _row(df: pd.DataFrame, rubric: str, crit: str) -> pd.Series:
    return df[(df["rubric_id"] == rubric) & (df["criterion"] == crit)].iloc[0]


def test_prmse_is_computed_when_some_items_hold_only_an_audit_score(report) -> None:  # type: ignore[no-untyped-def]
    rep, info, frames = report
    m = frames.machines
    g = m[(m["rubric_id"] == "essay-set1") & (m["criterion"] == "holistic") & m["human"].notna()]
    audit_only = g["h1"].isna() & g["h2"].isna()
    assert audit_only.sum() == info["audit_only_per_criterion"] > 0  # the case that used to blank PRMSE
    # the old computation over every human-scored item is NaN: the audit-only rows hold no rater score
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        old = prmse_true(g["machine"].to_numpy(float), np.column_stack([g["h1"], g["h2"]]).astype(float))
    assert old is None or np.isnan(old)
    # independent computation on the rater-scored items only (RSMTool's formula for 1-2 ratings per item)
    r = g[~audit_only]
    h = np.column_stack([r["h1"], r["h2"]]).astype(float)
    k = (~np.isnan(h)).sum(axis=1)
    double = k == 2
    ve = np.mean((h[double, 0] - h[double, 1]) ** 2) / 2  # within-item variance of two scores, pooled
    mean_h = np.nanmean(h, axis=1)
    n_tot = k.sum()
    vt = ((k * (mean_h - np.nanmean(h)) ** 2).sum() - (len(h) - 1) * ve) / (n_tot - (k**2).sum() / n_tot)
    mse_t = ((k * (mean_h - r["machine"].to_numpy(float)) ** 2).sum() - len(h) * ve) / n_tot
    hm = _row(rep.tables["human_machine"], "essay-set1", "holistic")
    assert hm["prmse"] == pytest.approx(1 - mse_t / vt, abs=1e-9)
    assert hm["prmse_n"] == len(r) and hm["prmse_n_double"] == int(double.sum())
    assert hm["prmse_lo"] < hm["prmse"] < hm["prmse_hi"]
    html = rep.html.read_text()
    assert f"{hm['prmse']:.3f} [{hm['prmse_lo']:.3f}, {hm['prmse_hi']:.3f}]" in html


def test_automation_reads_the_routes_recorded_with_every_machine_score(report) -> None:  # type: ignore[no-untyped-def]
    rep, info, _ = report
    au = rep.tables["automation"]
    pooled = au[(au["rubric_id"] == "essay-set1") & (au["criterion"] == "(all)")]
    assert int(pooled["n"].sum()) == 2 * info["n"]
    assert int(pooled["n_accepted"].sum()) == 2 * info["accepted"]
    share = sum(r in ("auto", "audit") for r in ROUTES) / len(ROUTES)
    assert float(pooled["auto_fraction"].iloc[0]) == pytest.approx(share)
    hm = _row(rep.tables["human_machine"], "essay-set1", "holistic")
    assert hm["auto_fraction"] == pytest.approx(share)
    # the recorded routing is drawn on the automation curve, and said in its caption with its n
    assert f"recorded routing over n={info['n']} machine scores" in rep.html.read_text()


def test_rmse_r2_and_score_distribution_match_scikit_learn_and_counts(report) -> None:  # type: ignore[no-untyped-def]
    rep, _, frames = report
    m = frames.machines
    g = m[(m["rubric_id"] == "essay-set8") & m["human"].notna()]
    hm = _row(rep.tables["human_machine"], "essay-set8", "holistic")
    h, y = g["human"].to_numpy(float), g["machine"].to_numpy(float)
    assert hm["rmse"] == pytest.approx(np.sqrt(mean_squared_error(h, y)), abs=1e-12)
    assert hm["r2"] == pytest.approx(r2_score(h, y), abs=1e-12)
    assert hm["smd_unpooled"] == pytest.approx((y.mean() - h.mean()) / h.std(ddof=1), abs=1e-12)
    assert hm["rmse_lo"] < hm["rmse"] < hm["rmse_hi"]
    dist = rep.tables["score_distribution"]
    d8 = dist[dist["rubric_id"] == "essay-set8"]
    assert list(d8["level"]) == list(range(31))  # every level of the 0-30 scale, also the unused ones
    assert d8["n_human"].sum() == d8["n_machine"].sum() == len(g)
    assert d8["pct_human"].sum() == pytest.approx(100) and (d8["pct_difference"].sum()) == pytest.approx(0, abs=1e-9)
    assert int(d8.set_index("level").loc[15, "n_human"]) == int((h == 15).sum())


def test_long_scale_confusion_is_binned_and_counted(report) -> None:  # type: ignore[no-untyped-def]
    rep, _, _ = report
    html = rep.html.read_text()
    assert "levels binned into 8 ranges, full matrix in confusion.csv" in html
    conf = rep.tables["confusion"]
    hh8 = conf[(conf["rubric_id"] == "essay-set8") & (conf["pair"] == "human-human")]
    assert hh8["count"].sum() == 90 and hh8["reference"].max() <= 30  # the export keeps every level


def test_subgroups_carry_intervals_mark_small_groups_and_never_show_a_missing_dsm_as_zero(report) -> None:  # type: ignore[no-untyped-def]
    rep, _, frames = report
    sg = rep.tables["subgroups"]
    hol = sg[(sg["rubric_id"] == "essay-set1") & (sg["criterion"] == "holistic")].set_index("group")
    assert hol.loc["west", "n"] == 2 and hol.loc["west", "gate"] == "small"
    south = hol.loc["south"]
    assert south["dsm_lo"] < south["dsm"] < south["dsm_hi"] and south["dsm"] > 0.1  # the machine's +1 for south
    style = sg[(sg["rubric_id"] == "essay-set1") & (sg["criterion"] == "style")]  # machine SD 0: no DSM
    assert style["dsm"].isna().all() and set(style["gate"]) <= {"n/a", "small"}
    # DSM against an independent z-score computation
    m = frames.machines
    g = m[(m["rubric_id"] == "essay-set1") & (m["criterion"] == "holistic") & m["human"].notna()]
    zh = (g["human"] - g["human"].mean()) / g["human"].std(ddof=1)
    zm = (g["machine"] - g["machine"].mean()) / g["machine"].std(ddof=1)
    south_rows = [d["school"] == "south" for d in g["meta"]]
    assert south["dsm"] == pytest.approx(float((zm[south_rows] - zh[south_rows]).mean()), abs=1e-12)
    shh = rep.tables["subgroups_human"]
    assert {"qwk_lo", "qwk_hi"} <= set(shh.columns) and (shh["n"] > 0).all()


def test_fairness_matches_rsmtools_definitions(report) -> None:  # type: ignore[no-untyped-def]
    rep, _, frames = report
    fair = rep.tables["fairness"]
    est = rep.tables["fairness_estimates"]
    m = frames.machines
    g = m[(m["rubric_id"] == "essay-set8") & m["human"].notna()]
    err = g["machine"].astype(float) - g["human"].astype(float)
    school = pd.Series([d["school"] for d in g["meta"]], index=g.index)
    # osd: error ~ group. Its coefficients are differences of group mean errors from the reference group
    e8 = est[(est["rubric_id"] == "essay-set8") & (est["analysis"] == "osd")].set_index("group")
    base = fair[(fair["rubric_id"] == "essay-set8")]["base_group"].iloc[0]
    for grp in ("north", "south"):
        want = err[school == grp].mean() - err[school == base].mean()
        assert e8.loc[grp, "estimate"] == pytest.approx(want, abs=1e-9)
        assert e8.loc[grp, "estimate_lo"] < e8.loc[grp, "estimate"] < e8.loc[grp, "estimate_hi"]
    # and its adjusted R2 is the between-group share of the error variance, adjusted for the groups
    ss_tot = ((err - err.mean()) ** 2).sum()
    ss_res = sum(((err[school == s] - err[school == s].mean()) ** 2).sum() for s in school.unique())
    n, k = len(err), school.nunique() - 1
    r2_adj = 1 - (ss_res / (n - k - 1)) / (ss_tot / (n - 1))
    osd = fair[(fair["rubric_id"] == "essay-set8") & (fair["analysis"] == "osd")].iloc[0]
    assert osd["r2_adj"] == pytest.approx(r2_adj, abs=1e-9)
    assert set(fair["analysis"]) == {"osa", "osd", "csd"}


def test_exports_are_documented(report) -> None:  # type: ignore[no-untyped-def]
    rep, _, _ = report
    dictionary = json.loads((rep.out_dir / "data_dictionary.json").read_text())
    for name in ("score_distribution", "subgroups_human", "fairness", "fairness_estimates"):
        assert (rep.out_dir / f"{name}.csv").exists() and name in dictionary
    documented = " ".join(dictionary["human_machine"]["columns"])
    for col in ("smd_unpooled", "r2", "rmse", "prmse_n"):
        assert col in documented


# ------------------------------------------------------------------------- a second rater on API submissions


def _intake(store: Store, n: int) -> list[intake.Outcome]:
    """Submissions with evidence and metadata recorded by intake.record_scored: the path POST /submissions
    and batch jobs take (scores, routes, queue slots and audit entries in one transaction)."""
    rub = parse_rubric(ESSAY)
    store.register_rubric(rub)
    subs = [intake.NewSubmission(f"api-{i}", {"essay": f"an essay sent through the API {i}"}, {"school": "north"})
            for i in range(n)]
    items = [ScoredSubmission(s.external_id, MODEL, {c: CriterionResult(3, {lv: 1 / 6 for lv in range(1, 7)},
                                                                       {"route": "double", "reason": "sample"})
                                                     for c in ("holistic", "style")}) for s in subs]
    model = SimpleNamespace(rubric=rub, version=MODEL)
    return intake.record_scored(store, model, "district-7", subs, items, "policy-1")  # type: ignore[arg-type]


def test_import_adds_a_second_raters_scores_to_submissions_sent_through_the_api(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    outs = _intake(store, 20)
    before = {o.external_id: o.submission for o in outs}
    # the first rater scored through the queue; the second rater's scores arrive later in a spreadsheet
    from scoring.store import HumanScoreIn

    store.record_human_scores([HumanScoreIn(o.submission.id, "holistic", 3 + (k % 2), "queue-alice", "first")  # type: ignore[union-attr]
                               for k, o in enumerate(outs)])
    sheet = pd.DataFrame({"id": [f"api-{i}" for i in range(20)] + ["hist-1"],
                          "r2": [str(3 + (i % 3 == 0)) for i in range(20)] + ["5"],
                          "school": ["ignored for stored ones"] * 20 + ["south"]})
    res = import_table(store, parse_rubric(ESSAY), sheet, id_col="id",
                       score_cols=ScoreColumn.parse_many(["holistic=r2@second"]), meta_cols=["school"], source="sheet")
    assert res.existing == 20 and res.submissions == 21 and res.human_scores == {"second": 21}
    for ext, sub in before.items():  # the API's submissions are untouched: same row, evidence and metadata
        again = store.find_submission("essay-set1", ext)
        assert (again.id, again.evidence, again.metadata, again.content_hash) == (
            sub.id, sub.evidence, sub.metadata, sub.content_hash)  # type: ignore[union-attr]
    assert store.find_submission("essay-set1", "hist-1").metadata == {"school": "south"}
    hh = build_report(store, tmp_path / "r", n_boot=0).tables["human_human"]
    assert int(hh[hh["criterion"] == "holistic"]["n"].iloc[0]) == 20
    assert store.verify_audit().ok
    # the same sheet again would count the second rater twice: refused, nothing written
    n_scores = len(store.human_scores())
    with pytest.raises(Conflict, match="already stored"):
        import_table(store, parse_rubric(ESSAY), sheet, id_col="id", score_cols=ScoreColumn.parse_many(
            ["holistic=r2@second"]))
    # the first rater cannot also be the second: refused for the whole file, nothing written
    same = sheet.assign(who="queue-alice")
    with pytest.raises(SameRater):
        import_table(store, parse_rubric(ESSAY), same, id_col="id", assessor_cols={"second": "who"},
                     score_cols=ScoreColumn.parse_many(["style=r2@second", "holistic=r2@audit"]))
    assert len(store.human_scores()) == n_scores
    store.close()


def test_cli_import_scores_onto_api_submissions(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(db)
    _intake(store, 5)
    store.close()
    rubric = tmp_path / "essay.yaml"
    rubric.write_text(yaml.safe_dump(ESSAY))
    data = tmp_path / "second.csv"
    pd.DataFrame({"id": [f"api-{i}" for i in range(5)], "rater2": ["4"] * 5}).to_csv(data, index=False)
    r = CliRunner().invoke(app, ["import-scores", "--rubric", str(rubric), "--data", str(data), "--id-col", "id",
                                 "--score-col", "holistic=rater2@second", "--db", db])
    assert r.exit_code == 0, r.output
    assert "5 already in the store: scores attached" in r.output
    r = CliRunner().invoke(app, ["import-scores", "--rubric", str(rubric), "--data", str(data), "--id-col", "id",
                                 "--score-col", "holistic=rater2@second", "--db", db])
    assert r.exit_code == 2 and "already stored" in r.output and "Traceback" not in r.output


def test_cli_report_prints_the_recorded_automation_and_prmse(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(db)
    info = build(store, n=60)
    store.close()
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "rep"), "--bootstrap", "20", "--db", db])
    assert r.exit_code == 0, r.output
    share = info["accepted"] / info["n"]
    assert re.search(rf"automation essay-set1@1/\(all\) \[{MODEL}\] \d{{4}}-\d\d: n={2 * info['n']} "
                     rf"auto_fraction={share:.3f}", r.output), r.output  # the month the fixture recorded them
    assert "PRMSE=" in r.output and json.loads(r.output.strip().splitlines()[-1])["auto_fraction"] > 0


def test_a_handful_of_items_is_labelled_as_such_not_drawn_like_a_large_sample(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.register_rubric(parse_rubric(ESSAY))
    subs = store.add_submissions("essay-set1", 1, [(f"t{i}", {}, {}) for i in range(6)])
    for k, s in enumerate(subs):
        store.record_human_score(s.id, "holistic", 2 + k % 3, assessor="r1")
        p = {str(lv): (0.5 if lv == 2 + k % 2 else 0.1) for lv in range(1, 7)}
        store.record_machine_score(s.id, "holistic", 2 + k % 2, probabilities=p, model_version="m", route="auto")
    rep = build_report(store, tmp_path / "r", n_boot=50)
    rel = rep.tables["reliability"]
    assert rel["small"].all() and rel["n"].sum() == 6
    assert rep.tables["automation_curve"].empty  # no threshold keeps 10 items: no curve point is drawn
    html = rep.html.read_text()
    assert "Reliability diagram (n=6 human-scored items" in html
    assert "No subgroup field named" in html
    store.close()
