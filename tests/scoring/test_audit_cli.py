"""``scoring audit``: keygen, checkpoint, verify --checkpoints, prove and check-proof, as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from scoring.cli import app
from scoring.store import Store

runner = CliRunner()


def test_an_operator_signs_checkpoints_and_an_auditor_checks_a_proof_offline(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    with Store(db) as st:
        st.suspend_automation("obs", "q", "drift")
        st.lift_suspension("obs", "q", by="ann")
    res = runner.invoke(app, ["audit", "keygen", "--out", str(tmp_path / "keys")])
    assert res.exit_code == 0 and "note verifier key: rubric-scoring/audit+" in res.output
    key, pub, cps = tmp_path / "keys" / "audit-ed25519.pem", tmp_path / "keys" / "audit-ed25519.pub.pem", tmp_path / "cp"
    res = runner.invoke(app, ["audit", "checkpoint", "--db", db, "--key", str(key), "--out", str(cps)])
    assert res.exit_code == 1 and f"checkpoint folder {cps} does not exist" in res.output and "--init" in res.output
    assert not cps.exists()  # a mistyped folder signs nothing
    res = runner.invoke(app, ["audit", "checkpoint", "--db", db, "--key", str(key), "--out", str(cps), "--init"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["audit", "verify", "--db", db, "--checkpoints", str(cps), "--public-key", str(pub)])
    assert res.exit_code == 0 and "extends all 1 checkpoints" in res.output
    res = runner.invoke(app, ["audit", "prove", "2", "--db", db, "--checkpoints", str(cps), "--public-key", str(pub)])
    assert res.exit_code == 0, res.output
    proof = tmp_path / "proof.json"
    proof.write_text(res.stdout)
    res = runner.invoke(app, ["audit", "check-proof", str(proof), "--public-key", str(pub)])
    assert res.exit_code == 0 and "proof OK: entry 2 (automation_resumed)" in res.output
    with Store(db) as st, st.engine.connect().execution_options(store_write=True) as c, c.begin():
        c.execute(sa.text("DELETE FROM audit_log WHERE seq = 2"))  # cut the tail: the lift is gone
    res = runner.invoke(app, ["audit", "verify", "--db", db, "--checkpoints", str(cps), "--public-key", str(pub)])
    assert res.exit_code == 1 and "truncated" in res.output and "first bad checkpoint: checkpoint-" in res.output
    data = json.loads(proof.read_text())
    data["entry"]["payload"]["by"] = "mallory"
    proof.write_text(json.dumps(data))
    res = runner.invoke(app, ["audit", "check-proof", str(proof), "--public-key", str(pub)])
    assert res.exit_code == 1 and "was edited" in res.output


def test_checkpoint_without_a_key_says_how_to_make_one(tmp_path: Path) -> None:
    from scoring.store import Store

    Store(f"sqlite:///{tmp_path / 's.db'}").close()
    res = runner.invoke(app, ["audit", "checkpoint", "--db", f"sqlite:///{tmp_path / 's.db'}",
                              "--out", str(tmp_path / "cp")])
    assert res.exit_code == 1 and "scoring audit keygen" in res.output


def test_bench_audit_runs_end_to_end_small(tmp_path: Path) -> None:
    res = runner.invoke(app, ["bench", "audit", "--events", "3000", "--proofs", "3", "--postgres", "",
                              "--out", str(tmp_path / "bench")])
    assert res.exit_code == 0, res.output
    last = json.loads(res.stdout.strip().splitlines()[-1])
    assert {"append_events_per_s", "verify_events_per_s", "checkpoint_verify_s", "inclusion_proof_ms"} <= set(last)
    assert last["sqlite"]["proof_path_hashes"] == 12 and last["postgresql"] == {"skipped": "PostgreSQL not requested"}
