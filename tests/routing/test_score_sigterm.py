"""``scoring score`` stopped with SIGTERM (``kill PID``, ``timeout``, a service manager or a cluster scheduler
stopping it) ends as Ctrl-C does: every finished block kept, a line saying to run the same command again,
exit status 143, and the re-run finishes the job with the files an uninterrupted run writes."""

from __future__ import annotations

import os
import signal
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


def _score(data: Path, out: Path) -> Any:
    return CliRunner().invoke(app, ["score", "--model", "unused", "--data", str(data), "--out", str(out),
                                    "--block-size", "4", "--no-progress"])


def test_sigterm_mid_job_keeps_finished_blocks_says_how_to_resume_and_the_rerun_completes(
        tmp_path: Path, cli_model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import scoring.batch

    d = synthetic(20, seed=4)
    data = write_jsonl(tmp_path / "backlog.jsonl", d["ids"], d["texts"])
    whole = _score(data, tmp_path / "whole.jsonl")
    assert whole.exit_code == 0, whole.output

    real, calls = scoring.batch.prescore, []

    def stopped_during_the_third_block(*a: Any, **k: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while the block is being scored
        return real(*a, **k)

    monkeypatch.setattr(scoring.batch, "prescore", stopped_during_the_third_block)
    out = tmp_path / "scores.jsonl"
    res = _score(data, out)
    assert res.exit_code == 143, res.output
    said = " ".join(res.output.split())
    assert "stopped (SIGTERM)" in said and "run the same command again to resume" in said
    assert len(out.read_text().splitlines()) == 8  # the two finished blocks, whole

    monkeypatch.setattr(scoring.batch, "prescore", real)
    again = _score(data, out)
    assert again.exit_code == 0 and "(resumed after 8)" in " ".join(again.output.split()), again.output
    assert out.read_bytes() == (tmp_path / "whole.jsonl").read_bytes()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the command leaves the process as it found it
