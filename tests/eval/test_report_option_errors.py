"""`scoring report` refuses a value it cannot use before reading the store, naming the option: a date that
is not ISO says whether it is --since or --until, and a negative --bootstrap is refused rather than run."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from scoring.cli import app
from scoring.store import Store


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 's.db'}"
    Store(url).close()
    return url


@pytest.mark.parametrize("option", ["--since", "--until"])
def test_a_date_that_is_not_iso_is_refused_naming_its_option(tmp_path: Path, db: str, option: str) -> None:
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "rep"), "--db", db, option, "01/03/2026"])
    out = " ".join(r.output.replace("│", " ").split())
    assert r.exit_code == 2, r.output
    assert f"Invalid value for {option}: expected an ISO date or datetime such as 2026-01-31" in out, out
    assert not (tmp_path / "rep").exists()


def test_a_negative_bootstrap_is_refused(tmp_path: Path, db: str) -> None:
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "rep"), "--db", db, "--bootstrap", "-5"])
    out = " ".join(r.output.replace("│", " ").split())
    assert r.exit_code == 2 and "--bootstrap" in out and "greater than or equal to 0" in out, out
    assert not (tmp_path / "rep").exists()
