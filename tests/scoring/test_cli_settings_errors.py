"""A bad SCORING_* environment value ends any command with one line naming the variable, what it holds and
what it should be (exit 2), not pydantic's multi-line traceback; a block size below 1 is refused by the option."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from scoring import cli
from scoring.settings import get_settings


def _run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[object, str]:
    """``scoring models --help`` through the real entry point, with the settings read afresh: exit code, stderr."""
    monkeypatch.setattr(sys, "argv", ["scoring", "models", "--help"])
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as stop:
            cli.main()
    finally:
        get_settings.cache_clear()
    return stop.value.code, capsys.readouterr().err


def test_a_setting_that_does_not_parse_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCORING_BLOCK_SIZE", "abc")
    code, err = _run_main(monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: environment setting SCORING_BLOCK_SIZE='abc': Input should be a valid integer")


def test_a_block_size_below_one_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = CliRunner().invoke(cli.app, ["score", "--model", str(tmp_path), "--data", str(tmp_path / "x.csv"),
                                     "--out", str(tmp_path / "o.jsonl"), "--block-size", "0"])
    assert r.exit_code == 2 and "--block-size" in r.output and "Traceback" not in r.output, r.output


def test_a_misspelt_setting_is_named_with_the_setting_it_was_likely_meant_for(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """SCORING_DATABSE_URL was ignored without a word, so the command quietly used the default store."""
    monkeypatch.setenv("SCORING_DATABSE_URL", "postgresql+psycopg://u@db/x")
    monkeypatch.setenv("SCORING_NOT_A_THING", "1")
    code, err = _run_main(monkeypatch, capsys)
    assert code == 0
    assert ("warning: SCORING_DATABSE_URL is not a setting and is ignored; did you mean SCORING_DATABASE_URL?"
            in err.splitlines()), err
    assert "warning: SCORING_NOT_A_THING is not a setting and is ignored" in err.splitlines(), err
