"""An operator's upgrades and downgrades: opening a store an older release made upgrades it and says so in one
line (from which revision to which); a store a NEWER release upgraded is refused in one line naming both
revisions, before anything is written; `scoring serve` refuses what cannot start it (the store, a policy
file, the model directory, a log level) in one line, exit 2, not a traceback."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from scoring.cli import app
from scoring.store import Store
from scoring.store.engine import MIGRATIONS_DIR, make_engine, schema_revision, upgrade_schema

HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def _run(args: list[str]):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, args)


def _store_of_a_newer_release(url: str) -> None:
    Store(url).close()
    engine = make_engine(url)
    with engine.begin() as conn:  # what a later release's migration leaves: a revision this one never shipped
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    engine.dispose()


def test_opening_an_older_store_upgrades_it_and_says_from_which_revision_to_which(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade_schema(engine, "0002_api")
    engine.dispose()
    r = _run(["audit", "verify", "--db", url])
    assert r.exit_code == 0, r.output
    assert f"upgraded the store at {url} from schema revision 0002_api to {HEAD}" in r.output
    r = _run(["audit", "verify", "--db", url])  # once upgraded, nothing more to say
    assert r.exit_code == 0 and "upgraded" not in r.output


def test_a_store_upgraded_by_a_newer_release_is_refused_in_one_line_and_left_unchanged(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    _store_of_a_newer_release(url)
    before = (tmp_path / "new.db").read_bytes()
    for args in (["audit", "verify"], ["keys", "create", "--role", "admin", "--name", "x"]):
        r = _run([*args, "--db", url])
        assert r.exit_code == 2, r.output
        assert "Traceback" not in r.output and isinstance(r.exception, SystemExit)
        assert f"error: cannot open the store at {url}: its schema is at revision '0099_from_the_future'" in r.output
        assert f"its newest is '{HEAD}'" in r.output and "newer release" in r.output
    engine = make_engine(url)
    assert schema_revision(engine) == "0099_from_the_future"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM api_keys")).scalar() == 0
    engine.dispose()
    assert (tmp_path / "new.db").read_bytes() == before


def test_serve_refuses_a_store_of_a_newer_release_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    _store_of_a_newer_release(url)
    r = _run(["serve", "--db", url, "--port", "8799"])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "its schema is at revision '0099_from_the_future'" in r.output


def test_serve_start_up_errors_are_one_line_not_a_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    (tmp_path / "bad.yaml").write_text("rubric_id: x\n")
    cases = [
        (["--db", "postgresql+psycopg://nobody@127.0.0.1:1/none"], "error: cannot open the store at "),
        (["--db", "postgres://nobody@127.0.0.1/none"], "no database driver for 'postgres'"),
        (["--db", url, "--model", str(tmp_path / "no-model")], "error: model directory "),
        (["--db", url, "--policy", str(tmp_path / "bad.yaml")], "policy_version: Field required"),
        (["--db", url, "--policy", str(tmp_path / "missing.yaml")], "not found"),
        (["--db", url, "--log-level", "chatty"], "'chatty' is not a log level"),
    ]
    for args, words in cases:
        r = _run(["serve", "--port", "8799", *args])
        assert r.exit_code == 2, (args, r.output)
        assert words in r.output, (args, r.output)
        assert "Traceback" not in r.output and isinstance(r.exception, SystemExit), (args, r.output)
