"""The issuer's commands, as a user types them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scoring.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()


def test_train_then_score_with_column_mapping_on_a_file_never_seen(tmp_path: Path, encoder_cache, monkeypatch):
    """A rubric file and column options are all the CLI needs."""
    from scoring.demo import make_reflections

    monkeypatch.setenv("SCORING_CACHE_DIR", str(encoder_cache))
    from scoring.settings import get_settings

    get_settings.cache_clear()
    rows = make_reflections(120, seed=3)
    train = tmp_path / "scored.tsv"
    train.write_text(
        "submission\tbody\tq_score\ta_score\ts_score\n"
        + "".join(f"{r['id']}\t{r['reflection']}\t{r['questioning']}\t{r['adjusting']}\t{r['self_assessment']}\n" for r in rows)
    )
    rubric = Path(__file__).parents[2] / "rubrics" / "bundled" / "checking-for-understanding.yaml"
    res = runner.invoke(app, ["train", "--rubric", str(rubric), "--data", str(train), "--out", str(tmp_path / "m"),
                              "--id-col", "submission", "--text-col", "reflection=body",
                              "--score-col", "questioning=q_score", "--score-col", "adjusting=a_score",
                              "--score-col", "self_assessment=s_score"])
    assert res.exit_code == 0, res.output
    version = (tmp_path / "m" / "LATEST").read_text().strip()
    card = json.loads((tmp_path / "m" / version / "card.json").read_text())
    assert card["rubric"] == {"id": "checking-for-understanding", "version": 2, "fingerprint": card["rubric"]["fingerprint"]}
    assert len(card["training_data_sha256"]) == 64 and card["created"]
    assert card["metrics"]["questioning"]["scorer"] == "trained" and 0 < card["metrics"]["questioning"]["cv_qwk"] <= 1

    res = runner.invoke(app, ["score", "--model", str(tmp_path / "m"), "--data", str(train), "--out", str(tmp_path / "o.jsonl"),
                              "--id-col", "submission", "--text-col", "reflection=body", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 120
    given = [json.loads(x)["criteria"]["questioning"]["score"] for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    share = {lv: round(100 * given.count(lv) / len(given)) for lv in sorted(set(given))}
    said = " ".join(res.output.split())
    assert "levels given: questioning " + ", ".join(f"{lv} {p}%" for lv, p in share.items()) in said, said
    get_settings.cache_clear()


def test_few_scores_fall_back_to_zero_shot_from_descriptors(tmp_path: Path, encoder_cache, monkeypatch):
    monkeypatch.setenv("SCORING_CACHE_DIR", str(encoder_cache))
    from scoring.settings import get_settings

    get_settings.cache_clear()
    data = tmp_path / "few.csv"
    data.write_text("id,reflection,questioning,adjusting,self_assessment\n1,I asked open questions and probed reasoning.,2,1,0\n")
    rubric = Path(__file__).parents[2] / "rubrics" / "bundled" / "checking-for-understanding.yaml"
    res = runner.invoke(app, ["train", "--rubric", str(rubric), "--data", str(data), "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    version = (tmp_path / "m" / "LATEST").read_text().strip()
    card = json.loads((tmp_path / "m" / version / "card.json").read_text())
    assert {m["scorer"] for k, m in card["metrics"].items() if not k.startswith("_")} == {"zero-shot"}
    get_settings.cache_clear()


def test_errors_are_one_clear_line_and_exit_2(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nversion: 1\ntitle: t\nevidence: [a]\ncriteria: [{id: q, title: Q, levels: [{score: 0}]}]\n")
    res = runner.invoke(app, ["train", "--rubric", str(bad), "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path / "m")])
    assert res.exit_code == 2
    assert "bad.yaml: criteria[q].levels: a criterion needs at least 2 levels" in " ".join(res.output.split())
    res = runner.invoke(app, ["score", "--model", str(tmp_path / "nomodel"), "--data", "x.csv", "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_rubric_check_summarises_a_good_file_and_names_the_problem_in_a_bad_one(tmp_path: Path):
    good = Path(__file__).parents[2] / "rubrics" / "bundled" / "formative-feedback.yaml"
    res = runner.invoke(app, ["rubric", "check", str(good)])
    assert res.exit_code == 0 and "specificity: levels 0..2 (3), reads ['feedback_samples']" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nversion: 1\ntitle: t\nevidence: [a]\ncriteria: [{id: q, title: Q, levels: [{score: 0}, {score: 0}]}]\n")
    res = runner.invoke(app, ["rubric", "check", str(bad)])
    assert res.exit_code == 2 and "criteria[q].levels: level scores must be unique, found repeated [0]" in res.output


def test_models_list_marks_latest(demo_model_dir: Path):
    res = runner.invoke(app, ["models", "list", str(demo_model_dir)])
    assert res.exit_code == 0
    assert "(LATEST)" in res.output and "rubric checking-for-understanding@2" in res.output
    assert "questioning: trained, n=" in res.output and "QWK 0." in res.output and "{" not in res.output


def test_a_resume_under_other_reading_options_is_refused(demo_model_dir: Path, tmp_path: Path, encoder_cache, monkeypatch):
    monkeypatch.setenv("SCORING_CACHE_DIR", str(encoder_cache))
    from scoring.demo import make_reflections
    from scoring.settings import get_settings

    get_settings.cache_clear()
    data = tmp_path / "grp.jsonl"
    data.write_text("".join(json.dumps({"id": r["id"], "reflection": r["reflection"], "grp": "AB"[i % 2]}) + "\n"
                            for i, r in enumerate(make_reflections(12, seed=5))))
    base = ["score", "--model", str(demo_model_dir), "--data", str(data), "--out", str(tmp_path / "o.jsonl"), "--no-progress"]
    assert runner.invoke(app, [*base, "--where", "grp=A"]).exit_code == 0
    res = runner.invoke(app, base)  # same output, the filter dropped: would splice two jobs
    assert res.exit_code == 2 and "reading options changed (--where: was grp=A, now none)" in res.output
    assert "{" not in res.output  # said in words, not as a dictionary
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 6
    get_settings.cache_clear()


def test_a_run_that_scores_nothing_exits_non_zero(demo_model_dir: Path, demo_files, tmp_path: Path, encoder_cache, monkeypatch):
    monkeypatch.setenv("SCORING_CACHE_DIR", str(encoder_cache))
    from scoring.settings import get_settings

    get_settings.cache_clear()
    res = runner.invoke(app, ["score", "--model", str(demo_model_dir), "--data", str(demo_files[1]), "--format", "jsonl",
                              "--out", str(tmp_path / "o.jsonl"), "--no-progress"])  # a CSV read as JSON lines
    assert res.exit_code == 1 and "no record could be scored" in res.output
    get_settings.cache_clear()


def test_a_bad_score_cell_costs_that_label_only(tmp_path: Path, encoder_cache, monkeypatch):
    monkeypatch.setenv("SCORING_CACHE_DIR", str(encoder_cache))
    from scoring.demo import make_reflections
    from scoring.settings import get_settings

    get_settings.cache_clear()
    rows = make_reflections(80, seed=8)
    rows[3]["questioning"] = "9"  # off the 0-2 scale
    rows[5]["adjusting"] = ""  # empty: not an error, but one example fewer, and said so
    rows[6]["self_assessment"] = "1.5"  # on the scale's range but not one of its levels
    data = tmp_path / "scored.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rubric = Path(__file__).parents[2] / "rubrics" / "bundled" / "checking-for-understanding.yaml"
    res = runner.invoke(app, ["train", "--rubric", str(rubric), "--data", str(data), "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "0 record(s) rejected, 2 score cell(s) unusable, 1 empty" in " ".join(res.output.split())
    version = (tmp_path / "m" / "LATEST").read_text().strip()
    card = json.loads((tmp_path / "m" / version / "card.json").read_text())
    assert [card["metrics"][c]["n_scored"] for c in ("questioning", "adjusting", "self_assessment")] == [79, 79, 79]
    lines = [json.loads(x) for x in (tmp_path / "m" / version / "training-rejects.jsonl").read_text().splitlines()]
    why = {(x["id"], x["criterion"]): x["reason"] for x in lines}
    assert "outside the rubric scale" in why[(rows[3]["id"], "questioning")]
    assert "not a whole number" in why[(rows[6]["id"], "self_assessment")]
    assert "empty score cell" in why[(rows[5]["id"], "adjusting")] and len(lines) == 3
    get_settings.cache_clear()


def test_a_row_lacking_one_criterions_evidence_still_trains_the_criteria_whose_evidence_it_has(
        tmp_path: Path, encoder_cache, monkeypatch):
    """A two-field rubric (a reflection, and a lesson plan read by one criterion): ten teachers left the plan
    blank. Their reflections still teach the reflection's criteria; only the plan's criterion skips them, and
    training-rejects.jsonl says so per row. (Scoring such a row is still refused: a level on nothing.)"""
    import yaml

    monkeypatch.setenv("SCORING_CACHE_DIR", str(encoder_cache))
    from scoring.demo import make_reflections
    from scoring.settings import get_settings

    get_settings.cache_clear()
    bundled = yaml.safe_load((Path(__file__).parents[2] / "rubrics" / "bundled" / "checking-for-understanding.yaml")
                             .read_text(encoding="utf-8"))
    bundled.update(id="two-fields", version=1, evidence=["reflection", "plan"])
    bundled.pop("award", None)
    bundled["criteria"][1]["evidence"] = ["plan"]  # adjusting reads the plan, the others the reflection
    bundled["criteria"][0]["evidence"] = bundled["criteria"][2]["evidence"] = ["reflection"]
    rubric = tmp_path / "two-fields.yaml"
    rubric.write_text(yaml.safe_dump(bundled), encoding="utf-8")
    rows = make_reflections(80, seed=8)
    for i, r in enumerate(rows):
        r["plan"] = "" if i < 10 else r["reflection"]
    data = tmp_path / "scored.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = runner.invoke(app, ["train", "--rubric", str(rubric), "--data", str(data), "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "0 record(s) rejected, 0 score cell(s) unusable, 0 empty, 10 criterion evidence empty" \
        in " ".join(res.output.split())
    version = (tmp_path / "m" / "LATEST").read_text().strip()
    card = json.loads((tmp_path / "m" / version / "card.json").read_text())
    assert [card["metrics"][c]["n_scored"] for c in ("questioning", "adjusting", "self_assessment")] == [80, 70, 80]
    lines = [json.loads(x) for x in (tmp_path / "m" / version / "training-rejects.jsonl").read_text().splitlines()]
    assert {(x["id"], x["criterion"]) for x in lines} == {(r["id"], "adjusting") for r in rows[:10]}
    assert lines[0]["reason"] == ("no evidence for criterion 'adjusting': column 'plan' holds no text; its score was "
                                  "not trained on (this row's other criteria were trained on it)")
    get_settings.cache_clear()


def test_csv_output_carries_highlights_per_criterion(demo_model_dir: Path, demo_files, tmp_path: Path, encoder_cache, monkeypatch):
    import csv

    monkeypatch.setenv("SCORING_CACHE_DIR", str(encoder_cache))
    from scoring.settings import get_settings

    get_settings.cache_clear()
    out = tmp_path / "o.csv"
    res = runner.invoke(app, ["score", "--model", str(demo_model_dir), "--data", str(demo_files[1]), "--out", str(out),
                              "--highlights", "2", "--no-progress"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 60 and "questioning.highlights" in rows[0]
    spans = json.loads(rows[0]["questioning.highlights"])
    assert spans and {"start", "end", "text", "kind"} <= set(spans[0])
    get_settings.cache_clear()


def test_rows_in_another_encoding_are_named_with_the_option_that_reads_them(tmp_path: Path, encoder_cache, monkeypatch):
    monkeypatch.setenv("SCORING_CACHE_DIR", str(encoder_cache))
    from scoring.demo import make_reflections
    from scoring.settings import get_settings

    get_settings.cache_clear()
    rows = make_reflections(60, seed=9)
    for r in rows[:5]:
        r["reflection"] = "Students\u2019 answers \u2013 " + r["reflection"]  # curly quote and dash: 0x92 0x96 in cp1252
    data = tmp_path / "scored.csv"
    with data.open("w", encoding="cp1252", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    rubric = Path(__file__).parents[2] / "rubrics" / "bundled" / "checking-for-understanding.yaml"
    res = runner.invoke(app, ["train", "--rubric", str(rubric), "--data", str(data), "--out", str(tmp_path / "m")])
    out = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "5 of 60 record(s) are not valid utf-8" in out and "--encoding cp1252" in out
    res = runner.invoke(app, ["train", "--rubric", str(rubric), "--data", str(data), "--out", str(tmp_path / "m"),
                              "--encoding", "cp1252"])
    assert res.exit_code == 0 and "not valid" not in res.output and "record(s) rejected" not in res.output, res.output
    get_settings.cache_clear()


def test_a_utf8_file_with_a_few_cp1252_rows_is_called_mixed_and_its_bom_never_hides_the_header(
        tmp_path: Path, encoder_cache, monkeypatch):
    """Spreadsheet-saved UTF-8 (with a byte-order mark) whose accented rows read fine and one pasted cp1252
    row does not: another --encoding would garble the good rows, so the hint says to re-save the bad one;
    and reading the file with --encoding cp1252 anyway still finds the first column's name."""
    monkeypatch.setenv("SCORING_CACHE_DIR", str(encoder_cache))
    from scoring.demo import make_reflections
    from scoring.settings import get_settings

    get_settings.cache_clear()
    rows = make_reflections(40, seed=9)
    lines = [f"{r['id']},\"{r['reflection']}\",{r['questioning']}\n".encode() for r in rows]
    lines[3] = f"{rows[3]['id']},\"Mrs L\u00fcsted: {rows[3]['reflection']}\",{rows[3]['questioning']}\n".encode()
    lines[7] = f"{rows[7]['id']},\"Students\u2019 answers {rows[7]['reflection']}\",1\n".encode("cp1252")
    data = tmp_path / "mixed.csv"
    data.write_bytes(b"\xef\xbb\xbfid,reflection,q1\n" + b"".join(lines))
    rubric = Path(__file__).parents[2] / "rubrics" / "bundled" / "checking-for-understanding.yaml"
    args = ["train", "--rubric", str(rubric), "--data", str(data), "--score-col", "questioning=q1"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "m")])
    out = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "1 of 40 record(s) are not valid utf-8 (first: record 8)" in out and "e.g. record 4" in out
    assert "the file mixes encodings" in out and "--encoding cp1252" not in out
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "m2"), "--encoding", "cp1252"])
    assert res.exit_code == 0 and "not found" not in res.output, res.output
    get_settings.cache_clear()


def test_a_semicolon_separated_csv_from_a_european_spreadsheet_is_read(tmp_path: Path, encoder_cache, monkeypatch):
    """Excel in much of Europe saves "CSV" with semicolons (and commas inside the text): the header tells."""
    monkeypatch.setenv("SCORING_CACHE_DIR", str(encoder_cache))
    from scoring.demo import make_reflections
    from scoring.settings import get_settings

    get_settings.cache_clear()
    rows = make_reflections(40, seed=12)
    data = tmp_path / "excel.csv"
    data.write_bytes(b"\xef\xbb\xbfSubmission ID;Teacher Response;Grader A\r\n" + "".join(
        f"{r['id']};\"{r['reflection']}, then more\";{r['questioning']}\r\n" for r in rows).encode())
    rubric = Path(__file__).parents[2] / "rubrics" / "bundled" / "checking-for-understanding.yaml"
    res = runner.invoke(app, ["train", "--rubric", str(rubric), "--data", str(data), "--out", str(tmp_path / "m"),
                              "--id-col", "Submission ID", "--text-col", "reflection=Teacher Response",
                              "--score-col", "questioning=Grader A", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "questioning: " in res.output and "n=40" in " ".join(res.output.split())
    assert "encoding:" not in res.output and "Loading weights" not in res.output  # --no-progress: no bars in a log
    get_settings.cache_clear()


def test_misspelt_options_and_folders_get_an_example_or_a_reason(tmp_path: Path):
    rubric = Path(__file__).parents[2] / "rubrics" / "bundled" / "checking-for-understanding.yaml"
    res = runner.invoke(app, ["train", "--rubric", str(rubric), "--data", str(tmp_path / "x.csv"), "--out",
                              str(tmp_path / "m"), "--text-col", "Teacher Response"])
    out = " ".join(res.output.replace("│", " ").split())
    assert res.exit_code == 2 and 'e.g. --text-col "reflection=Teacher Response"' in out, out
    res = runner.invoke(app, ["models", "list", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "does not exist" in res.output
