"""A ``scoring score`` that fails before scoring anything (a wrong column option) leaves nothing that blocks
the corrected command: the user fixes the option and runs again, without ``--overwrite``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from routing_fakes import synthetic, write_jsonl
from typer.testing import CliRunner

from scoring.cli import app


@pytest.fixture
def cli_model(fake_model: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`scoring score --model ANY` loads the synthetic model (no encoder download, no training)."""
    import models.artifact

    monkeypatch.setattr(models.artifact, "load_model", lambda *a, **k: fake_model)
    return fake_model


def test_a_typo_in_id_col_then_the_corrected_command_scores_without_overwrite(tmp_path: Path, cli_model: Any) -> None:
    d = synthetic(10, seed=2)
    data = write_jsonl(tmp_path / "backlog.jsonl", d["ids"], d["texts"])
    out = tmp_path / "scores.jsonl"
    cmd = ["score", "--model", "unused", "--data", str(data), "--out", str(out), "--block-size", "4", "--no-progress"]
    wrong = CliRunner().invoke(app, [*cmd, "--id-col", "submission_id"])
    assert wrong.exit_code == 2 and "submission_id" in wrong.output, wrong.output
    fixed = CliRunner().invoke(app, cmd)
    assert fixed.exit_code == 0, fixed.output
    assert len(out.read_text().splitlines()) == 10


def test_a_job_that_scored_blocks_is_still_refused_under_other_options(tmp_path: Path, cli_model: Any) -> None:
    d = synthetic(10, seed=2)
    data = write_jsonl(tmp_path / "backlog.jsonl", d["ids"], d["texts"])
    out = tmp_path / "scores.jsonl"
    cmd = ["score", "--model", "unused", "--data", str(data), "--out", str(out), "--block-size", "4", "--no-progress"]
    assert CliRunner().invoke(app, cmd).exit_code == 0
    other = CliRunner().invoke(app, [*cmd, "--where", "essay=x"])
    assert other.exit_code == 2 and "written by another job" in " ".join(other.output.split())


def test_a_where_that_matches_no_row_is_an_error_not_an_empty_success(tmp_path: Path, cli_model: Any) -> None:
    """`--where school=Nrth` (a typo) used to end with exit 0 and '0 scored, 0 rejected of 0 records': a
    scheduled job would report success having scored nothing."""
    import json

    d = synthetic(6, seed=2)
    data = tmp_path / "backlog.jsonl"
    data.write_text("".join(json.dumps({"id": i, "essay": t, "school": "North"}) + "\n"
                            for i, t in zip(d["ids"], d["texts"], strict=True)), encoding="utf-8")
    out = tmp_path / "scores.jsonl"
    res = CliRunner().invoke(app, ["score", "--model", "unused", "--data", str(data), "--out", str(out),
                                   "--where", "school=Nrth", "--no-progress"])
    said = " ".join(res.output.split())
    assert res.exit_code == 1 and "no record matched --where school=Nrth" in said, res.output
    fixed = CliRunner().invoke(app, ["score", "--model", "unused", "--data", str(data), "--out", str(out),
                                     "--where", "school=North", "--no-progress"])
    assert fixed.exit_code == 0 and len(out.read_text().splitlines()) == 6, fixed.output


def test_a_data_file_that_does_not_exist_is_named_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A typo in --data used to load the model first (a minute on a small machine) and then print the
    operating system's '[Errno 2] No such file or directory'."""
    import models.artifact

    def never(*a: Any, **k: Any) -> Any:
        raise AssertionError("the model was loaded for a file that does not exist")

    monkeypatch.setattr(models.artifact, "load_model", never)
    res = CliRunner().invoke(app, ["score", "--model", "unused", "--data", str(tmp_path / "nope.csv"),
                                   "--out", str(tmp_path / "o.jsonl"), "--no-progress"])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "nope.csv does not exist" in said and "Errno" not in said, res.output
    assert not (tmp_path / "o.jsonl").exists()


def test_a_run_that_rejected_every_row_lets_the_corrected_encoding_start(tmp_path: Path, cli_model: Any) -> None:
    """A cp1252 file read as UTF-8: every row is rejected ('not valid utf-8') and nothing is scored. The
    corrected command (`--encoding cp1252`) starts without --overwrite; its rejects file is written anew."""
    d = synthetic(6, seed=2)
    data = tmp_path / "backlog.csv"
    data.write_bytes(("id,essay\n" + "".join(f"{i},caf\u00e9 {t}\n" for i, t in zip(d["ids"], d["texts"],
                                                                                   strict=True))).encode("cp1252"))
    out = tmp_path / "scores.jsonl"
    cmd = ["score", "--model", "unused", "--data", str(data), "--out", str(out), "--block-size", "4", "--no-progress"]
    first = CliRunner().invoke(app, cmd)
    assert first.exit_code == 1, first.output
    rejects = tmp_path / "scores.rejects.jsonl"
    assert len(rejects.read_text().splitlines()) == 6
    fixed = CliRunner().invoke(app, [*cmd, "--encoding", "cp1252"])
    assert fixed.exit_code == 0, fixed.output
    assert len(out.read_text().splitlines()) == 6 and rejects.read_text() == ""
