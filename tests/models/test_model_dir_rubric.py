"""One model directory holds one rubric's models: training another rubric into it is refused before any work.

`scoring score --model DIR` and `scoring serve --model DIR` load DIR's LATEST; a wrong `--rubric` file given to
`scoring train --out DIR` would otherwise repoint LATEST, and every later run would score this credential's
evidence on another rubric's criteria without a word.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.artifact import ArtifactError, check_rubric_home
from scoring.cli import app

BUNDLED = Path(__file__).parents[2] / "rubrics" / "bundled"


def _model_dir(root: Path, rubric_id: str) -> Path:
    (root / "v1").mkdir(parents=True)
    (root / "v1" / "card.json").write_text(json.dumps({"model_version": "v1", "rubric": {"id": rubric_id}}))
    (root / "LATEST").write_text("v1\n")
    return root


def test_a_directory_of_another_rubric_is_refused_naming_both(tmp_path: Path) -> None:
    d = _model_dir(tmp_path / "models", "checking-for-understanding")
    check_rubric_home(d, "checking-for-understanding")  # its own rubric: fine
    check_rubric_home(tmp_path / "new", "anything")  # a new directory: fine
    with pytest.raises(ArtifactError, match="holds models of rubric 'checking-for-understanding'.*not 'reflective-practice'"):
        check_rubric_home(d, "reflective-practice")


def test_scoring_train_refuses_before_reading_or_training(tmp_path: Path) -> None:
    d = _model_dir(tmp_path / "models", "checking-for-understanding")
    data = tmp_path / "scores.csv"
    data.write_text("id,reflection\n1,a plan\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["train", "--rubric", str(BUNDLED / "reflective-practice.yaml"), "--data", str(data),
                                   "--out", str(d), "--no-progress"])
    assert res.exit_code == 2 and "check --rubric" in " ".join(res.output.split())
    assert (d / "LATEST").read_text() == "v1\n" and sorted(p.name for p in d.iterdir()) == ["LATEST", "v1"]
