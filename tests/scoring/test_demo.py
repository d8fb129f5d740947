"""`scoring demo`, as a new user runs it: the whole loop from training to verified credentials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scoring.cli import app
from scoring.store import Store

pytestmark = pytest.mark.slow


def store_queue_items(store: Store) -> list[Any]:
    import sqlalchemy as sa

    from scoring.store.service_tables import queue_items
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(queue_items)))


def test_the_demo_ends_with_decisions_feedback_and_one_verified_credential_per_earned_submission(
        tmp_path: Path, encoder_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scoring.settings import get_settings

    monkeypatch.setenv("SCORING_CACHE_DIR", str(encoder_cache))
    monkeypatch.setenv("SCORING_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    out = tmp_path / "demo-out"
    res = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert res.exit_code == 0, res.output
    for step in ("1/6 train", "2/6 calibrate", "3/6 score", "4/6 assessors", "5/6 feedback", "6/6 credentials"):
        assert step in res.output
    assert "audit log verified: True" in res.output

    store = Store(f"sqlite:///{out / 'demo.db'}")
    try:
        latest = {s.external_id: store.latest_decision(s.id) for s in store.submissions()}
        raters = {(h.submission_id, h.assessor) for h in store.human_scores()}
        slots = [(i.submission_id, i.holder, i.status) for i in store_queue_items(store)]
    finally:
        store.close()
    outcomes = {ext: d.outcome for ext, d in latest.items() if d is not None}
    assert len(outcomes) == 60 and "needs_human" not in outcomes.values()  # the assessors resolved every one
    earned = sorted(e for e, o in outcomes.items() if o == "earned")
    not_yet = sorted(e for e, o in outcomes.items() if o == "not_yet")
    assert earned and not_yet and raters  # people scored, and both outcomes occur
    assert slots and all(status == "done" for _s, _h, status in slots)  # the demo's assessors finish the queue
    assert len({(sub, who) for sub, who, _st in slots}) == len(slots)  # nobody held two slots of one submission
    assert sorted(f.stem for f in (out / "credentials").glob("*.jwt")) == earned
    assert sorted(f.stem for f in (out / "feedback").glob("*.json")) == not_yet
    fb = json.loads((out / "feedback" / f"{not_yet[0]}.json").read_text())
    assert fb["decision"] == "not_yet" and fb["criteria"] and "probabilities" not in json.dumps(fb)

    jwts = [str(p) for p in sorted((out / "credentials").glob("*.jwt"))]
    ok = CliRunner().invoke(app, ["credentials", "verify", *jwts, "--key", str(out / "keys" / "issuer-ed25519.pub.pem")])
    assert ok.exit_code == 0, ok.output
    policy = (out / "policy.yaml").read_text()
    assert "award_evidence" in policy and "learn-then-test" in policy
