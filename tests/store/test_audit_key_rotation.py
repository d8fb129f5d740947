"""The audit key replaced (rotated, or the old one lost): `scoring audit checkpoint` with the new key refuses to
sign over the old key's checkpoints and says how to go on (a new series with --init in a new folder); the new
series and the old one (with the old public key) both verify the log."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from scoring.cli import app
from scoring.store import Store, keys
from scoring.store.checkpoints import keygen


def test_a_new_audit_key_starts_a_new_checkpoint_series_and_the_old_one_still_verifies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store(url) as store:
        keys.create_key(store, "root", "admin")
    old_key, old_pub = keygen(tmp_path / "old")
    new_key, new_pub = keygen(tmp_path / "new")
    run = CliRunner().invoke
    r = run(app, ["audit", "checkpoint", "--init", "--out", str(tmp_path / "cps"), "--key", str(old_key), "--db", url])
    assert r.exit_code == 0, r.output
    with Store(url) as store:
        keys.create_key(store, "lms", "issuer")

    r = run(app, ["audit", "checkpoint", "--out", str(tmp_path / "cps"), "--key", str(new_key), "--db", url])
    assert r.exit_code == 1, r.output
    assert "not signed by the audit key" in r.output and "scoring audit checkpoint --init --out NEW_FOLDER" in r.output
    assert len(list((tmp_path / "cps").glob("checkpoint-*.txt"))) == 1

    r = run(app, ["audit", "checkpoint", "--init", "--out", str(tmp_path / "cps2"), "--key", str(new_key), "--db", url])
    assert r.exit_code == 0, r.output
    for folder, pub in ((tmp_path / "cps", old_pub), (tmp_path / "cps2", new_pub)):
        r = run(app, ["audit", "verify", "--checkpoints", str(folder), "--public-key", str(pub), "--db", url])
        assert r.exit_code == 0 and "audit log OK" in r.output, r.output
