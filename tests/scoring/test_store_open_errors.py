"""A store that cannot be opened (no server answers, a schema that does not exist) ends a read command
with one `error:` line naming the URL, its password masked, and exit 2; never a driver traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from scoring.cli import app

NO_SERVER = "postgresql+psycopg://reader:s3cret@127.0.0.1:1/test"  # port 1: refused at once


@pytest.mark.parametrize("args", [["report", "--out", "{tmp}/r"], ["drift", "check", "--rubric", "any"],
                                  ["audit", "verify"]])
def test_a_database_that_does_not_answer_is_one_error_line(tmp_path: Path, args: list[str]) -> None:
    r = CliRunner().invoke(app, [a.format(tmp=tmp_path) for a in args] + ["--db", NO_SERVER])
    assert r.exit_code == 2, r.output
    assert "error: cannot open the store at postgresql+psycopg://reader:***@127.0.0.1:1/test" in r.output
    assert "s3cret" not in r.output and "Traceback" not in r.output
