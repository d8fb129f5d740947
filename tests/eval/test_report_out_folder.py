"""`scoring report --out` names a folder: an existing file there (or in place of a parent folder) is one
`error:` line and exit 2, not a traceback; a folder an earlier report used gets the new report, and the
figures the earlier one left in figures/ (named NNN_what.png, the report's own scheme) are removed, so none
of them reads as part of the new report. Other files in the folder are left alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rubrics.schema import parse_rubric
from scoring.cli import app
from scoring.store import HumanScoreIn, MachineScoreIn, Store

RUBRIC = parse_rubric({"id": "out", "version": 1, "title": "Out", "evidence": ["text"],
                       "criteria": [{"id": "q", "title": "Q", "scale": {"min": 0, "max": 2}}]})


@pytest.fixture
def db(tmp_path: Path) -> str:
    """12 machine-scored items with a blind first rating each."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store(url) as st:
        st.register_rubric(RUBRIC)
        subs = st.add_submissions("out", 1, [(f"x{i}", {"text": f"t{i}"}, {}) for i in range(12)])
        st.record_machine_scores([MachineScoreIn(
            s.id, "q", i % 3, probabilities={str(lv): (0.8 if lv == i % 3 else 0.1) for lv in range(3)},
            prediction_set=[i % 3], route="auto", reason="", model_version="m", policy_version="p")
            for i, s in enumerate(subs)])
        st.record_human_scores([HumanScoreIn(s.id, "q", (i + i // 6) % 3, "ann", "first", True, "")
                                for i, s in enumerate(subs)])
    return url


def _report(out: Path, db: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["report", "--out", str(out), "--db", db, "--bootstrap", "0"])


@pytest.mark.parametrize("where", ["file", "file/sub"])
def test_an_out_that_is_a_file_is_one_error_line_and_the_file_is_left_alone(
        tmp_path: Path, db: str, where: str) -> None:
    (tmp_path / "file").write_text("keep me\n")
    r = _report(tmp_path / where, db)
    assert r.exit_code == 2, r.output
    assert r.output.startswith(f"error: --out {tmp_path / where} is not a folder") and r.output.count("\n") == 1
    assert "Traceback" not in r.output and isinstance(r.exception, SystemExit)
    assert (tmp_path / "file").read_text() == "keep me\n"


def test_a_used_out_folder_loses_the_earlier_reports_figures_and_keeps_other_files(tmp_path: Path, db: str) -> None:
    out = tmp_path / "rep"
    figures = out / "figures"
    figures.mkdir(parents=True)
    (figures / "041_confusion_out_q_machine_old-model.png").write_bytes(b"\x89PNG old")  # an earlier report's
    (figures / "logo.png").write_bytes(b"\x89PNG mine")  # not named like a report figure
    (figures / "notes.txt").write_text("mine")
    (out / "README.txt").write_text("mine")
    r = _report(out, db)
    assert r.exit_code == 0, r.output
    written = {p.name for p in figures.iterdir()} - {"logo.png", "notes.txt"}
    assert "041_confusion_out_q_machine_old-model.png" not in written
    assert written and all(f"figures/{name}" in (out / "report.html").read_text() for name in written)
    assert (figures / "logo.png").read_bytes() == b"\x89PNG mine" and (figures / "notes.txt").read_text() == "mine"
    assert (out / "README.txt").read_text() == "mine"
