"""`scoring train` on day one: no score column builds the cold-start model, and says so; a score column
with no usable cell is an error naming the column; each version's card carries the learning curve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scoring.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()
RUBRIC = Path(__file__).parents[2] / "rubrics" / "bundled" / "checking-for-understanding.yaml"


@pytest.fixture
def backlog(tmp_path: Path, encoder_cache, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    from scoring.demo import make_reflections
    from scoring.settings import get_settings

    monkeypatch.setenv("SCORING_CACHE_DIR", str(encoder_cache))
    get_settings.cache_clear()
    rows = make_reflections(40, seed=5)
    path = tmp_path / "backlog.csv"
    path.write_text("id,reflection,q1\n" + "".join(f"{r['id']},\"{r['reflection']}\",{r['questioning']}\n" for r in rows))
    yield path
    get_settings.cache_clear()


def _card(model_dir: Path) -> dict:  # type: ignore[type-arg]
    version = (model_dir / "LATEST").read_text().strip()
    return json.loads((model_dir / version / "card.json").read_text())


def test_no_score_column_builds_the_cold_start_model_and_says_so(tmp_path: Path, backlog: Path) -> None:
    res = runner.invoke(app, ["train", "--rubric", str(RUBRIC), "--data", str(backlog), "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "cold start" in out and "no human scores are read" in out
    card = _card(tmp_path / "m")
    assert {card["metrics"][c]["scorer"] for c in ("questioning", "adjusting", "self_assessment")} == {"cold-start"}
    assert card["scorers"]["questioning"] == "ColdStartScorer"
    assert card["metrics"]["questioning"]["assumptions"]["n_batch"] == 40
    # the model scores a backlog like any other
    res = runner.invoke(app, ["score", "--model", str(tmp_path / "m"), "--data", str(backlog),
                              "--out", str(tmp_path / "o.jsonl"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 40


def with_last_cell(src: Path, dst: Path, value: str) -> Path:
    """A copy of ``src`` (a CSV whose last column is the score column) with every row's last cell set to ``value``."""
    lines = src.read_text().splitlines()
    dst.write_text("\n".join([lines[0]] + [line.rsplit(",", 1)[0] + "," + value for line in lines[1:]]) + "\n")
    return dst


def test_a_score_column_with_no_usable_cell_is_an_error_naming_it(tmp_path: Path, backlog: Path) -> None:
    bad = with_last_cell(backlog, tmp_path / "bad.csv", "high")
    res = runner.invoke(app, ["train", "--rubric", str(RUBRIC), "--data", str(bad), "--out", str(tmp_path / "m"),
                              "--score-col", "questioning=q1"])
    out = " ".join(res.output.split())
    assert res.exit_code == 2, out
    assert "score column 'q1' (criterion 'questioning') has no usable score" in out
    assert "'high'" in out and "not a number" in out
    assert not (tmp_path / "m").exists(), "nothing may be saved from a failed run"


def test_a_named_but_empty_score_column_is_refused_with_the_way_to_a_cold_start(tmp_path: Path, backlog: Path) -> None:
    empty = with_last_cell(backlog, tmp_path / "empty.csv", "")
    res = runner.invoke(app, ["train", "--rubric", str(RUBRIC), "--data", str(empty), "--out", str(tmp_path / "m"),
                              "--score-col", "questioning=q1"])
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "is empty in all 40 rows" in out and "leave --score-col out" in out


def test_a_scale_that_does_not_fit_the_rubric_is_refused_not_trained_on_its_middle(tmp_path: Path, backlog: Path) -> None:
    """Scores one level higher than the rubric's scale (a 1-3 column against 0-2 levels): the top level's
    cells are not stray typos but a pattern, so training stops and names the values and the way out."""
    lines = backlog.read_text().splitlines()
    shifted = tmp_path / "shifted.csv"
    shifted.write_text("\n".join([lines[0]] + [f"{ln.rsplit(',', 1)[0]},{int(ln.rsplit(',', 1)[1]) + 1}"
                                               for ln in lines[1:]]) + "\n")
    n_top = sum(1 for ln in lines[1:] if ln.rsplit(",", 1)[1] == "2")
    assert n_top >= 5, "the fixture needs a few top-level scores for this test to mean anything"
    res = runner.invoke(app, ["train", "--rubric", str(RUBRIC), "--data", str(shifted), "--out", str(tmp_path / "m"),
                              "--score-col", "questioning=q1"])
    out = " ".join(res.output.split())
    assert res.exit_code == 2, out
    assert f"{n_top} of 40 scores are outside the rubric scale [0, 1, 2]: 3 in {n_top} cell(s)" in out
    assert "Is this the rubric for this data?" in out and not (tmp_path / "m").exists()


def test_one_stray_score_and_na_cells_cost_their_labels_only(tmp_path: Path, backlog: Path) -> None:
    lines = backlog.read_text().splitlines()
    cells = ["7", "N/A", "#N/A", "n/a"]
    edited = [f"{ln.rsplit(',', 1)[0]},{cells[i]}" if i < len(cells) else ln for i, ln in enumerate(lines[1:])]
    path = tmp_path / "stray.csv"
    path.write_text("\n".join([lines[0], *edited]) + "\n")
    res = runner.invoke(app, ["train", "--rubric", str(RUBRIC), "--data", str(path), "--out", str(tmp_path / "m"),
                              "--score-col", "questioning=q1"])
    out = " ".join(res.output.split())
    assert res.exit_code == 0, out
    assert "1 score cell(s) unusable, 3 empty" in out  # the 7 is unusable; the N/A spellings are no score
    assert _card(tmp_path / "m")["metrics"]["questioning"]["n_scored"] == 36


def test_each_retrain_adds_a_point_to_the_learning_curve(tmp_path: Path, backlog: Path) -> None:
    m = tmp_path / "m"
    assert runner.invoke(app, ["train", "--rubric", str(RUBRIC), "--data", str(backlog), "--out", str(m)]).exit_code == 0
    res = runner.invoke(app, ["train", "--rubric", str(RUBRIC), "--data", str(backlog), "--out", str(m),
                              "--score-col", "questioning=q1", "--min-labelled", "30"])
    assert res.exit_code == 0, res.output
    curve = _card(m)["learning_curve"]["questioning"]
    assert [p["n_scored"] for p in curve] == [0, 40]
    assert curve[0]["scorer"] == "cold-start" and curve[1]["scorer"] == "trained"
    assert curve[1]["qwk_kind"] == "cross-validated" and -1 <= curve[1]["qwk"] <= 1


def test_select_writes_a_deterministic_queue_and_never_repeats_excluded_ids(tmp_path: Path, backlog: Path) -> None:
    m = tmp_path / "m"
    assert runner.invoke(app, ["train", "--rubric", str(RUBRIC), "--data", str(backlog), "--out", str(m)]).exit_code == 0
    q1, q2, q3 = tmp_path / "q1.jsonl", tmp_path / "q2.jsonl", tmp_path / "q3.jsonl"
    for q in (q1, q2):
        res = runner.invoke(app, ["select", "--model", str(m), "--data", str(backlog), "--n", "6", "--out", str(q),
                                  "--seed", "3"])
        assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in q1.read_text().splitlines()]
    assert [r["priority"] for r in rows] == [1, 2, 3, 4, 5, 6] and len({r["id"] for r in rows}) == 6
    assert rows[0]["criteria"] == ["questioning", "adjusting", "self_assessment"] and "Sener" in rows[0]["method"]
    assert rows[0]["distance"] is None and all(r["distance"] > 0 for r in rows[1:])  # nothing before the first
    assert q1.read_text() == q2.read_text(), "same backlog, model and seed: the same queue"
    res = runner.invoke(app, ["select", "--model", str(m), "--data", str(backlog), "--n", "6", "--out", str(q3),
                              "--exclude", str(q1)])
    assert res.exit_code == 0, res.output
    assert not {r["id"] for r in rows} & {json.loads(line)["id"] for line in q3.read_text().splitlines()}
    res = runner.invoke(app, ["select", "--model", str(m), "--data", str(backlog), "--n", "100"])
    assert res.exit_code == 2 and "asked for 100 submissions, but the backlog holds only 40" in " ".join(res.output.split())


def test_select_reads_the_sheet_people_filled_in_and_refuses_files_that_would_exclude_nothing_or_everything(
        tmp_path: Path, backlog: Path) -> None:
    m = tmp_path / "m"
    assert runner.invoke(app, ["train", "--rubric", str(RUBRIC), "--data", str(backlog), "--out", str(m)]).exit_code == 0
    ids = [ln.split(",", 1)[0] for ln in backlog.read_text().splitlines()[1:]]
    sheet = tmp_path / "humans.csv"  # the backlog with a score column filled in for six rows
    sheet.write_text("reflection_len,id,q1\n" + "".join(f"10,{i},1\n" for i in ids[:6]))
    base = ["select", "--model", str(m), "--data", str(backlog), "--n", "5", "--out", str(tmp_path / "q.jsonl")]
    res = runner.invoke(app, [*base, "--exclude", str(sheet)])
    out = " ".join(res.output.split())
    assert res.exit_code == 0 and "6 excluded" in out, out
    picked = {json.loads(x)["id"] for x in (tmp_path / "q.jsonl").read_text().splitlines()}
    assert not picked & set(ids[:6])
    bad = {"array.json": json.dumps(ids[:3]), "other.csv": "sid,q1\nx,1\n", "elsewhere.txt": "nobody-1\nnobody-2\n"}
    says = {"array.json": "is a JSON array", "other.csv": "expected a column 'id'",
            "elsewhere.txt": "none of the 2 ids in"}
    for name, content in bad.items():
        (tmp_path / name).write_text(content)
        res = runner.invoke(app, [*base, "--exclude", str(tmp_path / name)])
        assert res.exit_code == 2 and says[name] in " ".join(res.output.split()), (name, res.output)
    for scored in (tmp_path / "scored.jsonl", tmp_path / "scored.csv"):  # a machine run would exclude everything
        assert runner.invoke(app, ["score", "--model", str(m), "--data", str(backlog), "--out", str(scored),
                                   "--no-progress"]).exit_code == 0
        res = runner.invoke(app, [*base, "--exclude", str(scored)])
        assert res.exit_code == 2 and "is the output of `scoring score`" in " ".join(res.output.split()), scored
    listed = tmp_path / "ids.txt"  # one id a line, under a header naming the column
    listed.write_text("id\n" + "\n".join(ids[:3]) + "\n")
    res = runner.invoke(app, [*base, "--exclude", str(listed)])
    assert res.exit_code == 0 and "3 excluded" in " ".join(res.output.split()) and "not in" not in res.output
    res = runner.invoke(app, [*base, "--exclude", str(tmp_path / "nope.txt")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_a_file_with_no_records_saves_no_model(tmp_path: Path, backlog: Path) -> None:
    header_only = tmp_path / "header.csv"
    header_only.write_text("id,reflection,q1\n")
    res = runner.invoke(app, ["train", "--rubric", str(RUBRIC), "--data", str(header_only), "--out", str(tmp_path / "m")])
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "holds no record after its header" in out, out
    assert not (tmp_path / "m").exists()


def test_a_few_scores_are_said_to_be_too_few_not_none(tmp_path: Path, backlog: Path) -> None:
    lines = backlog.read_text().splitlines()
    few = tmp_path / "few.csv"  # 12 scored rows of 40: under the 30 a trained scorer needs
    few.write_text("\n".join([lines[0]] + [ln if i < 12 else ln.rsplit(",", 1)[0] + ","
                                           for i, ln in enumerate(lines[1:])]) + "\n")
    res = runner.invoke(app, ["train", "--rubric", str(RUBRIC), "--data", str(few), "--out", str(tmp_path / "m"),
                              "--score-col", "questioning=q1", "--no-progress"])
    out = " ".join(res.output.split())
    assert res.exit_code == 0, out
    assert "questioning: cold-start, n=12, 12 human score(s), too few to train on" in out and "QWK" in out


def test_a_retrain_that_did_worse_says_so_and_how_to_keep_the_previous_version(tmp_path: Path, backlog: Path) -> None:
    """The new version becomes LATEST, which `score` and `calibrate` use by default: a retraining on scores
    that teach less (here the same answers with their levels shuffled) must not take over silently."""
    import random

    m = tmp_path / "m"
    train = ["train", "--rubric", str(RUBRIC), "--out", str(m), "--score-col", "questioning=q1", "--min-labelled", "30"]
    assert runner.invoke(app, [*train, "--data", str(backlog)]).exit_code == 0
    lines = backlog.read_text().splitlines()
    levels = [ln.rsplit(",", 1)[1] for ln in lines[1:]]
    random.Random(1).shuffle(levels)
    noisy = tmp_path / "noisy.csv"
    noisy.write_text("\n".join([lines[0], *(ln.rsplit(",", 1)[0] + "," + lv for ln, lv in zip(lines[1:], levels,
                                                                                              strict=True))]) + "\n")
    first = (m / "LATEST").read_text().strip()
    res = runner.invoke(app, [*train, "--data", str(noisy)])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    curve = _card(m)["learning_curve"]["questioning"]
    assert curve[-1]["qwk"] < curve[-2]["qwk"]
    assert "note: questioning: cross-validated QWK" in out and "is below the previous version's" in out, out
    assert f"--version {first} to keep the previous one" in out, out


def test_only_a_like_figure_that_fell_is_reported() -> None:
    from scoring.commands.batch import weaker_than_before

    def pt(v: str, q: float | None, kind: str | None = "cross-validated") -> dict:  # type: ignore[type-arg]
        return {"model_version": v, "n_scored": 40, "qwk": q, "qwk_kind": kind}

    assert weaker_than_before({"c": [pt("a", 0.6), pt("b", 0.7)]}) == []  # better
    assert weaker_than_before({"c": [pt("a", 0.6, "on the available scores"), pt("b", 0.5)]}) == []  # unlike
    assert weaker_than_before({"c": [pt("a", None, None), pt("b", 0.5)]}) == []  # cold start before
    assert weaker_than_before({"c": [pt("b", 0.5)]}) == []  # first version
    (line,) = weaker_than_before({"c": [pt("a", 0.6), pt("b", 0.5)], "d": [pt("a", 0.4), pt("b", 0.4)]})
    assert line.startswith("c: cross-validated QWK 0.500 on 40 scores is below the previous version's 0.600")
