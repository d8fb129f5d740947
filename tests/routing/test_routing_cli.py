"""``scoring calibrate`` then ``scoring score --policy``, as a user types them (real encoder, demo model)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scoring.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()
RUBRIC_FILE = Path(__file__).parents[2] / "rubrics" / "bundled" / "checking-for-understanding.yaml"


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    """A UTF-8 CSV a user would hand the CLI: a header, then one row per submission."""
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def models(tmp_path: Path, demo_model_dir: Path, encoder_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the demo model (calibrate adds a version: keep the session fixture untouched)."""
    from scoring.settings import get_settings

    monkeypatch.setenv("SCORING_CACHE_DIR", str(encoder_cache))
    get_settings.cache_clear()
    copy = tmp_path / "models"
    shutil.copytree(demo_model_dir, copy)
    return copy


def test_calibrate_writes_policy_and_new_version_then_score_routes(  # type: ignore[no-untyped-def]
    tmp_path: Path, models: Path, demo_files
) -> None:
    from scoring.demo import make_reflections

    base_version = (models / "LATEST").read_text().strip()
    rng = random.Random(5)
    rows = make_reflections(160, seed=21)
    cal = tmp_path / "cal.csv"
    cal.write_text(
        "id,reflection,questioning,adjusting,self_assessment,questioning_2\n"
        + "".join(
            f"{r['id']},\"{r['reflection']}\",{r['questioning']},{r['adjusting']},{r['self_assessment']},"
            f"{max(0, min(3, int(r['questioning']) + (rng.choice([-1, 1]) if rng.random() < 0.2 else 0)))}\n"
            for r in rows
        )
    )
    policy = tmp_path / "policy.yaml"
    res = runner.invoke(app, ["calibrate", "--model", str(models), "--data", str(cal), "--out", str(policy),
                              "--second-score-col", "questioning=questioning_2",
                              "--human-qwk", "adjusting=0.7", "--human-qwk", "self_assessment=0.7",
                              "--coverage", "0.85", "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    new_version = (models / "LATEST").read_text().strip()
    assert new_version != base_version
    card = json.loads((models / new_version / "card.json").read_text())
    assert card["base_model_version"] == base_version and "calibration" in card
    pol = policy.read_text()
    assert f"model_version: {new_version}" in pol and "coverage: 0.85" in pol

    out = tmp_path / "scored.jsonl"
    _, backlog = demo_files
    res = runner.invoke(app, ["score", "--model", str(models), "--data", str(backlog), "--out", str(out),
                              "--policy", str(policy), "--no-progress"])
    assert res.exit_code == 0, res.output
    rows_out = [json.loads(x) for x in out.read_text().splitlines()]
    for r in rows_out:
        for v in r["criteria"].values():
            assert v["route"] in ("auto", "audit", "human", "double") and v["reason"]
            assert isinstance(v["prediction_set"], list)
            if v["route"] in ("auto", "audit"):
                assert v["score"] in v["prediction_set"], "an accepted score is one its conformal set allows"
    queue = out.with_name("scored.queue.jsonl")
    q = [json.loads(x) for x in queue.read_text().splitlines()]
    assert len(q) == sum(v["route"] != "auto" for r in rows_out for v in r["criteria"].values())

    # the policy belongs to the calibrated version: scoring the base version with it is refused
    res = runner.invoke(app, ["score", "--model", str(models), "--version", base_version, "--data", str(backlog),
                              "--out", str(tmp_path / "other.jsonl"), "--policy", str(policy), "--no-progress"])
    assert res.exit_code == 2 and "tuned for model" in res.output


def test_a_backlog_scored_into_the_store_reaches_the_queue_the_report_and_the_audit_log(  # type: ignore[no-untyped-def]
    tmp_path: Path, models: Path, demo_files, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The acceptance path of the one scoring core, as an issuer, an assessor and a researcher would walk it."""
    import re

    from fastapi.testclient import TestClient

    from api.app import create_app
    from scoring.cli import optional_values
    from scoring.policy import load_policy
    from scoring.settings import Settings, get_settings
    from scoring.store import Store, keys

    train_file, backlog = demo_files
    policy = tmp_path / "policy.yaml"
    bars = ["--human-qwk", "questioning=0.6", "--human-qwk", "adjusting=0.6", "--human-qwk", "self_assessment=0.6"]
    res = runner.invoke(app, ["calibrate", "--model", str(models), "--data", str(train_file), "--out", str(policy),
                              "--cross-fitted", "--n-boot", "100", *bars])
    assert res.exit_code == 0, res.output
    db = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("SCORING_DATABASE_URL", db)
    get_settings.cache_clear()
    cmd = ["score", "--model", str(models), "--data", str(backlog), "--out", str(tmp_path / "scored.jsonl"),
           "--policy", str(policy), "--store", "--issuer", "district-7", "--no-progress"]
    res = runner.invoke(app, optional_values(cmd))  # a bare --store: the configured database
    assert res.exit_code == 0, res.output
    said = re.search(r"(\d+) submissions recorded \((\d+) by this run\), (\d+) criterion scores, auto_fraction "
                     r"([0-9.]+), (\d+) queue slots", " ".join(res.output.split()))
    assert said, res.output
    n, now, n_scores, auto, slots = int(said[1]), int(said[2]), int(said[3]), float(said[4]), int(said[5])
    rows = [json.loads(x) for x in (tmp_path / "scored.jsonl").read_text().splitlines()]
    routes = [v["route"] for r in rows for v in r["criteria"].values()]
    assert n == now == len(rows) and n_scores == len(routes) and slots > 0
    assert auto == pytest.approx(sum(r in ("auto", "audit") for r in routes) / len(routes), abs=5e-4)
    with Store(db) as st:
        counts = (len(st.submissions()), len(st.machine_scores()), len(list(st.audit_entries())))
    again = runner.invoke(app, optional_values(cmd))  # a re-run records nothing twice
    assert again.exit_code == 0 and "(0 by this run)" in " ".join(again.output.split())
    with Store(db) as st:
        assert (len(st.submissions()), len(st.machine_scores()), len(list(st.audit_entries()))) == counts

    rep = runner.invoke(app, ["report", "--db", db, "--out", str(tmp_path / "report"), "--bootstrap", "0"])
    assert rep.exit_code == 0, rep.output
    assert json.loads(rep.output.strip().splitlines()[-1])["auto_fraction"] == pytest.approx(auto, abs=5e-4)
    ver = runner.invoke(app, ["audit", "verify", "--db", db])
    assert ver.exit_code == 0, ver.output
    version = rows[0]["model_version"]  # registered by the scoring run; promoting it is audited
    pro = runner.invoke(app, ["models", "promote", version, "--db", db, "--actor", "registrar"])
    assert pro.exit_code == 0 and f"{version} promoted" in pro.output, pro.output
    with Store(db) as st:
        assert st.promoted_model("checking-for-understanding").version == version  # type: ignore[union-attr]
        assert any(e.event == "model_promoted" and e.payload["actor"] == "registrar" for e in st.audit_entries())

    # the assessors' queue served by `scoring serve` on that store holds the routed items, least confident first
    store = Store(db)
    _, secret = keys.create_key(store, "alice", "assessor")
    client = TestClient(create_app(Settings(database_url=db, home=tmp_path / "home"), store=store, model_dir=models,
                                   policy=load_policy(policy), resume_jobs=False))
    got = client.post("/queue/claim", headers={"Authorization": f"Bearer {secret}"})
    assert got.status_code == 200, got.text
    item = got.json()
    sub = store.submission(item["submission_id"])
    assert sub.external_id in {r["id"] for r in rows} and item["kind"] in ("first", "second", "audit")
    from scoring.store import jobs

    assert jobs.owner_of(store, sub.id) == "district-7"
    page = client.get("/assessor/login")
    assert page.status_code == 200
    store.close()


def test_ratings_imported_for_a_queued_backlog_close_its_slots_and_decide_it(  # type: ignore[no-untyped-def]
    tmp_path: Path, models: Path, demo_files
) -> None:
    """A backlog scored into the store, then rated outside the service (a spreadsheet of two raters):
    importing the ratings fills the first/second queue slots and records the final decisions, so nobody is
    asked again and the credential flow goes on."""

    import sqlalchemy as sa

    from scoring.demo import SECOND_SUFFIX, split_demo_rows
    from scoring.store import Store
    from scoring.store.service_tables import queue_items

    train_file, backlog = demo_files
    policy = tmp_path / "policy.yaml"
    bars = ["--human-qwk", "questioning=0.6", "--human-qwk", "adjusting=0.6", "--human-qwk", "self_assessment=0.6"]
    assert runner.invoke(app, ["calibrate", "--model", str(models), "--data", str(train_file), "--out", str(policy),
                               "--cross-fitted", "--n-boot", "100", *bars]).exit_code == 0
    db = f"sqlite:///{tmp_path / 'store.db'}"
    res = runner.invoke(app, ["score", "--model", str(models), "--data", str(backlog), "--out",
                              str(tmp_path / "scored.jsonl"), "--policy", str(policy), "--store", db, "--no-progress"])
    assert res.exit_code == 0, res.output
    with Store(db) as st, st.engine.connect() as conn:
        before = conn.execute(sa.select(queue_items.c.kind, queue_items.c.status)).all()
        assert any(k in ("first", "second") and status == "open" for k, status in before)
        decided_before = sum(1 for sub in st.submissions() if (d := st.latest_decision(sub.id)) and d.basis == "final")
    crits = ("questioning", "adjusting", "self_assessment")
    hidden = split_demo_rows(160)[1]
    sheet = write_csv(tmp_path / "ratings.csv", ["id", *crits, *(c + SECOND_SUFFIX for c in crits)],
                      [[r["id"], *(r[c] for c in crits), *(r[c + SECOND_SUFFIX] for c in crits)] for r in hidden])
    cols = [a for c in crits for a in ("--score-col", f"{c}={c}@first", "--score-col", f"{c}={c}{SECOND_SUFFIX}@second")]
    res = runner.invoke(app, ["import-scores", "--rubric", str(RUBRIC_FILE), "--data", str(sheet), "--id-col", "id",
                              *cols, "--policy", str(policy), "--db", db])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    with Store(db) as st, st.engine.connect() as conn:
        after = conn.execute(sa.select(queue_items.c.kind, queue_items.c.status)).all()
        decided = sum(1 for sub in st.submissions() if (d := st.latest_decision(sub.id)) and d.basis == "final")
    assert not [k for k, status in after if k in ("first", "second") and status != "done"], "every rated slot closed"
    assert summary["queue_slots_closed"] == sum(1 for k, st_ in before if k in ("first", "second") and st_ == "open")
    assert 0 < decided - decided_before <= summary["decisions"]  # counted when written
    assert "queue slot(s) filled and closed" in " ".join(res.output.split())


def test_calibrating_an_older_version_keeps_latest_and_says_how_to_use_it(  # type: ignore[no-untyped-def]
    tmp_path: Path, models: Path, demo_files
) -> None:
    """"How good was the cold start?": calibrating an older version must not make plain `scoring score` use
    it from then on; calibrating the latest (or its base again) moves LATEST and says so."""
    import shutil
    import time

    train_file, _backlog = demo_files
    base = (models / "LATEST").read_text().strip()
    newer = base + "-newer"  # a later training run (a copy will do: versions are folders)
    shutil.copytree(models / base, models / newer)
    card = json.loads((models / newer / "card.json").read_text())
    (models / newer / "card.json").write_text(json.dumps({**card, "model_version": newer}))
    (models / "LATEST").write_text(newer + "\n")
    bars = ["--human-qwk", "questioning=0.6", "--human-qwk", "adjusting=0.6", "--human-qwk", "self_assessment=0.6"]
    res = runner.invoke(app, ["calibrate", "--model", str(models), "--version", base, "--data", str(train_file),
                              "--out", str(tmp_path / "p.yaml"), "--cross-fitted", "--n-boot", "100", *bars])
    out = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert f"LATEST stays {newer}" in out and "--version" in out
    assert (models / "LATEST").read_text().strip() == newer
    time.sleep(1.1)  # version names carry the second: the copy calibrates to a name of its own
    res = runner.invoke(app, ["calibrate", "--model", str(models), "--data", str(train_file),
                              "--out", str(tmp_path / "p2.yaml"), "--cross-fitted", "--n-boot", "100", *bars])
    assert res.exit_code == 0 and f"(was {newer})" in " ".join(res.output.split()), res.output
    cal = json.loads(res.output.strip().splitlines()[-1])["model_version"]
    assert (models / "LATEST").read_text().strip() == cal


def test_calibrate_cross_fitted_on_the_training_file_needs_no_held_out_scores(  # type: ignore[no-untyped-def]
    tmp_path: Path, models: Path, demo_files
) -> None:
    train_file, backlog = demo_files
    policy = tmp_path / "policy.yaml"
    bars = ["--human-qwk", "questioning=0.6", "--human-qwk", "adjusting=0.6", "--human-qwk", "self_assessment=0.6"]
    res = runner.invoke(app, ["calibrate", "--model", str(models), "--data", str(train_file), "--out", str(policy),
                              "--cross-fitted", "--n-boot", "100", *bars])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    card = json.loads((models / summary["model_version"] / "card.json").read_text())
    assert card["calibration"]["per_criterion"]["questioning"]["n_cal"] == 160, "every training row calibrates"

    # a file of texts the model never trained on has no out-of-fold probabilities: refused, named
    scored = tmp_path / "scored.csv"
    scored.write_text("id,reflection,questioning\nnew-1,A reflection the model never saw.,1\n"
                      "new-2,Another unseen reflection.,2\n")
    res = runner.invoke(app, ["calibrate", "--model", str(models), "--data", str(scored), "--out", str(policy),
                              "--cross-fitted", "--score-col", "questioning=questioning", "--human-qwk", "questioning=0.6"])
    assert res.exit_code != 0
    assert "2 of 2 scored rows for 'questioning' are not texts model" in res.output and "new-1" in res.output

    # a few rows the training left out (in an export: ratings awaiting adjudication) are left out and named
    import csv

    with train_file.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0])
    unseen = [{**{k: "" for k in header}, "id": "new-1", "reflection": "A reflection the model never saw.",
               "questioning": "1"}]
    mixed = write_csv(tmp_path / "mixed.csv", header, [[r[k] for k in header] for r in rows + unseen])
    res = runner.invoke(app, ["calibrate", "--model", str(models), "--data", str(mixed), "--out", str(policy),
                              "--cross-fitted", "--n-boot", "100", *bars])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "questioning: 1 of 161 scored row(s) are texts model" in said and "'new-1'" in said

    # too few scores in the column named: said per criterion and column, before any fitting
    sparse = write_csv(tmp_path / "sparse.csv", [*header, "sparse"],
                       [[r[k] for k in header] + [r["questioning"] if n < 5 else ""] for n, r in enumerate(rows)])
    res = runner.invoke(app, ["calibrate", "--model", str(models), "--data", str(sparse), "--out", str(policy),
                              "--cross-fitted", "--score-col", "questioning=sparse", "--human-qwk", "questioning=0.6"])
    assert res.exit_code == 2
    assert "'questioning': 5 usable row(s) with a score in column 'sparse'" in " ".join(res.output.split())


def test_calibrating_on_texts_the_model_trained_on_is_refused_or_left_out(  # type: ignore[no-untyped-def]
    tmp_path: Path, models: Path, demo_files
) -> None:
    """Probabilities on training texts are over-confident: a policy chosen on them would auto-accept far
    more than on new texts. The training file alone is refused (pointing at --cross-fitted); training rows
    mixed into a held-out file are left out and counted."""
    import csv

    from scoring.demo import make_reflections

    train_file, _backlog = demo_files
    policy = tmp_path / "policy.yaml"
    bar = ["--score-col", "questioning=questioning", "--human-qwk", "questioning=0.6", "--n-boot", "100"]
    res = runner.invoke(app, ["calibrate", "--model", str(models), "--data", str(train_file), "--out", str(policy),
                              *bar])
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "are texts model" in out and "--cross-fitted" in out, res.output
    assert not policy.exists()

    trained = list(csv.DictReader(train_file.open(encoding="utf-8")))[:40]
    known = {r["reflection"] for r in csv.DictReader(train_file.open(encoding="utf-8"))}
    fresh = [r for r in make_reflections(400, seed=31) if r["reflection"] not in known][:120]
    mixed = write_csv(tmp_path / "mixed.csv", ["id", "reflection", "questioning"],
                      [[f"new-{r['id']}", r["reflection"], r["questioning"]] for r in fresh]
                      + [[r["id"], r["reflection"], r["questioning"]] for r in trained])
    res = runner.invoke(app, ["calibrate", "--model", str(models), "--data", str(mixed), "--out", str(policy), *bar])
    out = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "questioning: 40 of 160 scored row(s) are texts the model trained on, left out" in out
    summary = json.loads(res.output.strip().splitlines()[-1])
    card = json.loads((models / summary["model_version"] / "card.json").read_text())
    assert card["calibration"]["per_criterion"]["questioning"]["n_cal"] == 120


@pytest.mark.parametrize("args, says", [
    (["--human-qwk", "questioning=1.7"], "a QWK lies in [-1, 1]"),
    (["--human-qwk", "questioning=0.7", "--human-qwk", "nope=0.5"], "criteria ['nope'] are not in rubric"),
    (["--human-qwk", "questioning=0.7", "--second-score-col", "nope=q2"], "criteria ['nope'] are not in rubric"),
    (["--score-col", "nope=questioning", "--human-qwk", "nope=0.7"], "criteria ['nope'] are not in rubric"),
    (["--human-qwk", "questioning=0.7", "--audit-rate", "0.8", "--double-rate", "0.5"], "must be at most 1, found 1.3"),
    (["--second-score-col", "questioning=questioning", "--bar", "criterion", "--statistic", "exact"],
     "--bar criterion compares with the raters' QWK"),
])
def test_calibrate_refuses_impossible_options_before_any_work(tmp_path: Path, models: Path, demo_files, args, says) -> None:  # type: ignore[no-untyped-def]
    before = sorted(p.name for p in models.iterdir())
    res = runner.invoke(app, ["calibrate", "--model", str(models), "--data", str(demo_files[0]),
                              "--out", str(tmp_path / "p.yaml"), "--score-col", "questioning=questioning", *args])
    assert res.exit_code == 2, res.output
    assert says in " ".join(res.output.split()), res.output  # rich wraps long lines
    assert sorted(p.name for p in models.iterdir()) == before and not (tmp_path / "p.yaml").exists()


def test_damaged_model_versions_are_named_not_tracebacks(tmp_path: Path, models: Path, demo_files) -> None:  # type: ignore[no-untyped-def]
    version = (models / "LATEST").read_text().strip()
    blob = (models / version / "scorers.joblib").read_bytes()
    (models / version / "scorers.joblib").write_bytes(blob[: len(blob) // 3])
    res = runner.invoke(app, ["score", "--model", str(models), "--data", str(demo_files[1]),
                              "--out", str(tmp_path / "o.jsonl"), "--no-progress"])
    assert res.exit_code == 2 and "scorers.joblib cannot be loaded" in " ".join(res.output.split())
    (models / version / "card.json").write_text("")
    res = runner.invoke(app, ["models", "list", str(models)])
    assert res.exit_code == 0 and "DAMAGED" in res.output and "card.json" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["score", "--model", str(models), "--data", str(demo_files[1]),
                              "--out", str(tmp_path / "o2.jsonl"), "--no-progress"])
    assert res.exit_code == 2 and "is unreadable" in " ".join(res.output.split())


def test_a_policy_naming_a_criterion_the_rubric_lacks_is_refused(tmp_path: Path, models: Path, demo_files) -> None:  # type: ignore[no-untyped-def]
    import yaml

    version = (models / "LATEST").read_text().strip()
    pol = tmp_path / "p.yaml"
    pol.write_text(yaml.safe_dump({"policy_version": "p1", "model_version": version,
                                   "criteria": {"questionning": {"min_confidence": 0.5}}}))
    res = runner.invoke(app, ["score", "--model", str(models), "--data", str(demo_files[1]), "--policy", str(pol),
                              "--out", str(tmp_path / "o.jsonl"), "--no-progress"])
    assert res.exit_code == 2 and "['questionning']" in res.output and not (tmp_path / "o.jsonl").exists()


def test_a_bar_for_a_criterion_without_scores_is_refused(tmp_path: Path, models: Path, demo_files) -> None:  # type: ignore[no-untyped-def]
    res = runner.invoke(app, ["calibrate", "--model", str(models), "--data", str(demo_files[0]), "--out",
                              str(tmp_path / "p.yaml"), "--score-col", "questioning=questioning",
                              "--human-qwk", "questioning=0.7", "--human-qwk", "adjusting=0.7"])
    text = " ".join(res.output.replace("│", " ").split())  # typer draws errors in a box
    assert res.exit_code == 2 and "['adjusting'] have a human-human bar but no --score-col" in text


def test_calibration_rows_that_cannot_be_read_are_counted_not_silently_dropped(  # type: ignore[no-untyped-def]
    tmp_path: Path, models: Path
) -> None:
    from scoring.demo import make_reflections

    rows = make_reflections(120, seed=22)
    cal = tmp_path / "cal.csv"
    with cal.open("w", encoding="cp1252", newline="") as fh:
        fh.write("id,reflection,questioning,questioning_2\n")
        for i, r in enumerate(rows):
            text = ("Students\u2019 answers: " if i < 3 else "") + r["reflection"]  # three rows in cp1252 bytes
            fh.write(f"{r['id']},\"{text}\",{r['questioning']},{r['questioning']}\n")
        fh.write(",\"a row without an id\",1,1\n")
    res = runner.invoke(app, ["calibrate", "--model", str(models), "--data", str(cal), "--out",
                              str(tmp_path / "policy.yaml"), "--score-col", "questioning=questioning",
                              "--second-score-col", "questioning=questioning_2", "--n-boot", "100"])
    out = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "4 of 121 record(s) rejected and left out (first: record 1" in out
    assert "3 of 121 record(s) are not valid utf-8" in out and "calibrate again with --encoding cp1252" in out


def test_score_keeps_named_columns_as_metadata_in_the_store_for_subgroup_reports(  # type: ignore[no-untyped-def]
    tmp_path: Path, models: Path
) -> None:

    from scoring.demo import make_reflections
    from scoring.store import Store

    rows = make_reflections(12, seed=41)
    data = write_csv(tmp_path / "backlog.csv", ["id", "reflection", "School"],
                     [[r["id"], r["reflection"], "North" if i % 2 else "South"] for i, r in enumerate(rows)])
    db = f"sqlite:///{tmp_path / 's.db'}"
    base = ["score", "--model", str(models), "--data", str(data), "--no-progress", "--meta-col", "School"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "add --store" in " ".join(res.output.split())
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "o.jsonl"), "--store", db])
    assert res.exit_code == 0, res.output
    with Store(db) as st:
        schools = {s.external_id: s.metadata.get("School") for s in st.submissions()}
    assert schools == {r["id"]: ("North" if i % 2 else "South") for i, r in enumerate(rows)}
    res = runner.invoke(app, ["score", "--model", str(models), "--data", str(data), "--no-progress",
                              "--out", str(tmp_path / "o.jsonl"), "--store", db])  # resumed without the column
    assert res.exit_code != 0 and "meta" in res.output


def test_a_policy_applied_to_a_backlog_stored_without_one_routes_it_as_scoring_under_it_would(  # type: ignore[no-untyped-def]
    tmp_path: Path, models: Path, demo_files
) -> None:
    """Day one: the backlog goes into the store with no policy, so every criterion waits for a person. After
    calibration, `scoring policy apply` leaves the store as if the backlog had been scored under the policy:
    the same routes, queue slots and machine credential decisions, logged and verifiable."""
    import sqlalchemy as sa

    from scoring.store import Store
    from scoring.store.service_tables import queue_items

    train_file, backlog = demo_files
    policy = tmp_path / "policy.yaml"
    bars = ["--human-qwk", "questioning=0.6", "--human-qwk", "adjusting=0.6", "--human-qwk", "self_assessment=0.6"]
    assert runner.invoke(app, ["calibrate", "--model", str(models), "--data", str(train_file), "--out", str(policy),
                               "--cross-fitted", "--n-boot", "100", *bars]).exit_code == 0
    day_one, direct = f"sqlite:///{tmp_path / 'day1.db'}", f"sqlite:///{tmp_path / 'direct.db'}"
    for db, pol in ((day_one, []), (direct, ["--policy", str(policy)])):
        res = runner.invoke(app, ["score", "--model", str(models), "--data", str(backlog), "--out",
                                  str(tmp_path / f"{len(pol)}.jsonl"), "--store", db, "--no-progress", *pol])
        assert res.exit_code == 0, res.output

    def state(db: str) -> tuple[dict[Any, Any], dict[Any, Any], dict[Any, Any]]:
        with Store(db) as st, st.engine.connect() as conn:
            ext = {s.id: s.external_id for s in st.submissions()}
            routes = {(ext[m.submission_id], m.criterion): m.route for m in st.machine_scores()}
            slots = {(ext[r.submission_id], r.kind): (sorted(r.criteria), r.blind) for r in conn.execute(
                sa.select(queue_items).where(queue_items.c.status == "open"))}
            decided = {ext[i]: (d.outcome, d.levels) for i in ext if (d := st.latest_decision(i)) is not None}
        return routes, slots, decided

    before = state(day_one)
    assert set(before[0].values()) == {"human"}
    cmd = ["policy", "apply", "--model", str(models), "--policy", str(policy), "--db", day_one, "--by", "registrar"]
    dry = runner.invoke(app, [*cmd, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would be re-routed" in " ".join(dry.output.split()) and state(day_one) == before
    res = runner.invoke(app, cmd)
    assert res.exit_code == 0, res.output
    said = json.loads(res.output.strip().splitlines()[-1])
    assert said["rerouted"] == len({e for e, _c in before[0]}) and said["slots_withdrawn"] > 0
    would = json.loads(dry.output.strip().splitlines()[-1])
    assert {k: said[k] for k in ("routes_after", "slots_withdrawn", "slots_opened", "decisions")} == {
        k: would[k] for k in ("routes_after", "slots_withdrawn", "slots_opened", "decisions")}
    assert said["decisions"] == said["rerouted"]  # the demo rubric has an award rule: one decision each
    assert state(day_one) == state(direct)
    assert runner.invoke(app, ["audit", "verify", "--db", day_one]).exit_code == 0
    again = runner.invoke(app, cmd)  # finished: nothing left to change
    assert again.exit_code == 0 and json.loads(again.output.strip().splitlines()[-1])["rerouted"] == 0

    missing = runner.invoke(app, ["policy", "apply", "--model", str(models), "--policy", str(tmp_path / "nope.yaml"),
                                  "--db", day_one])
    assert missing.exit_code == 2 and "nope.yaml does not exist" in " ".join(missing.output.split())


def test_a_rerun_under_another_issuer_name_is_told_to_pass_the_name_it_used(  # type: ignore[no-untyped-def]
    tmp_path: Path, models: Path, demo_files
) -> None:
    _, backlog = demo_files
    db = f"sqlite:///{tmp_path / 'store.db'}"
    cmd = ["score", "--model", str(models), "--data", str(backlog), "--store", db, "--no-progress"]
    assert runner.invoke(app, [*cmd, "--out", str(tmp_path / "a.jsonl"), "--issuer", "district-7"]).exit_code == 0
    res = runner.invoke(app, [*cmd, "--out", str(tmp_path / "b.jsonl")])  # SCORING_ISSUER's default name
    said = " ".join(res.output.split())
    assert res.exit_code == 1 and "run again with --issuer set to the name you used (this run: 'local')" in said
