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


READ_COMMANDS = [["report", "--out", "{tmp}/r"], ["drift", "check", "--rubric", "any"], ["audit", "verify"],
                 ["audit", "trace", "s1"], ["credentials", "feedback", "s1", "--out", "{tmp}/f"]]


@pytest.mark.parametrize("args", READ_COMMANDS)
@pytest.mark.parametrize(("url", "said"), [
    ("postgres://reader:s3cret@db.example:5432/scores", "no database driver for 'postgres'"),  # the Heroku spelling
    ("store.db", "'store.db' is not a database URL"),  # a file name, not a URL
])
def test_a_url_no_store_can_be_opened_at_is_one_error_line_saying_what_to_write(
        tmp_path: Path, args: list[str], url: str, said: str) -> None:
    r = CliRunner().invoke(app, [a.format(tmp=tmp_path) for a in args] + ["--db", url])
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: store ") and said in r.output, r.output
    assert "write sqlite:///path/to/store.db (a file) or postgresql+psycopg://" in r.output
    assert isinstance(r.exception, SystemExit) and "s3cret" not in r.output and "Traceback" not in r.output
