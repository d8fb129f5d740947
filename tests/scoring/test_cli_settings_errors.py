"""A bad SCORING_* environment value ends any command with one line naming the variable, what it holds and
what it should be (exit 2), not pydantic's multi-line traceback; a block size below 1 is refused by the option."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from scoring import cli
from scoring.settings import get_settings


def test_a_setting_that_does_not_parse_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCORING_BLOCK_SIZE", "abc")
    monkeypatch.setattr(sys, "argv", ["scoring", "models", "--help"])
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as stop:
            cli.main()
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: environment setting SCORING_BLOCK_SIZE='abc': Input should be a valid integer")


def test_a_block_size_below_one_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = CliRunner().invoke(cli.app, ["score", "--model", str(tmp_path), "--data", str(tmp_path / "x.csv"),
                                     "--out", str(tmp_path / "o.jsonl"), "--block-size", "0"])
    assert r.exit_code == 2 and "--block-size" in r.output and "Traceback" not in r.output, r.output
