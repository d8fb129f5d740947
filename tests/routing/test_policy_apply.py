"""``scoring policy apply``: a newer routing policy takes charge of the work still waiting for people.

An issuer scores a backlog into the store before any policy exists (every criterion waits for a person),
then calibrates. Applying the policy must leave the store as scoring the backlog under that policy would
have: the same routes, the same queue slots. Work a person has started, items queued to teach the model and
submissions whose machine scores already stand are kept. Nothing is deleted and every change is logged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from routing_fakes import backlog_file, score_into_store

from scoring.store import Store, queue
from scoring.store.service_tables import queue_items
from scoring.usecases.reroute import apply_policy


def _routes(store: Store, version: str) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(external id, criterion) -> (route, policy version) of the latest machine score."""
    ext = {s.id: s.external_id for s in store.submissions()}
    return {(ext[m.submission_id], m.criterion): (str(m.route), m.policy_version)
            for m in store.machine_scores(model_version=version)}


def _open_slots(store: Store) -> dict[tuple[str, str], tuple[list[str], bool]]:
    """(external id, kind) -> (criteria, blind) of the slots waiting for people."""
    ext = {s.id: s.external_id for s in store.submissions()}
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(queue_items).where(queue_items.c.status == "open")).all()
    return {(ext[r.submission_id], r.kind): (sorted(r.criteria), bool(r.blind)) for r in rows}


@pytest.fixture(params=["sqlite", "postgresql"])
def unrouted(request: pytest.FixtureRequest, tmp_path: Path, calibrated) -> tuple[Store, Any, Any, Path]:  # type: ignore[no-untyped-def]
    """A backlog of 24 scored into a store (SQLite, PostgreSQL) with no policy: every criterion waits for a person."""
    model, policy = calibrated
    data = backlog_file(tmp_path / "backlog.jsonl")
    store = Store(f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url"))
    score_into_store(model, None, store, data, tmp_path / "first.jsonl")
    yield store, model, policy, data
    store.close()


def test_applying_a_policy_routes_the_waiting_backlog_as_scoring_under_it_would(tmp_path: Path, unrouted) -> None:  # type: ignore[no-untyped-def]
    store, model, policy, data = unrouted
    assert {r for r, _pv in _routes(store, model.version).values()} == {"human"}
    res = apply_policy(store, model, policy, by="registrar")
    with Store(f"sqlite:///{tmp_path / 'direct.db'}") as direct:  # the same backlog scored under the policy
        score_into_store(model, policy, direct, data, tmp_path / "direct.jsonl")
        assert _routes(store, model.version) == _routes(direct, model.version)
        assert _open_slots(store) == _open_slots(direct)
    assert res.rerouted == 24 and res.unchanged == 0 and res.in_progress == res.settled == res.not_scored == 0
    assert res.routes_before == {"human": 24 * len(model.rubric.criteria)}
    assert res.routes_after["auto"] > 0 and res.slots_withdrawn > 0  # the policy took items off the queue
    with store.engine.connect() as conn:  # nothing deleted: the slots no longer needed are withdrawn, with why
        withdrawn = conn.execute(sa.select(queue_items).where(queue_items.c.status == queue.WITHDRAWN)).all()
    assert len(withdrawn) == res.slots_withdrawn and all("applied by registrar" in r.reason for r in withdrawn)
    assert store.verify_audit().ok
    entries = list(store.audit_entries())
    assert any(e.event == "policy_activated" and e.payload["by"] == "registrar" for e in entries)
    rerouted = [e for e in entries if e.event == "machine_score" and e.payload["policy_version"] == policy.policy_version]
    assert len(rerouted) == 24 * len(model.rubric.criteria)
    assert all("re-routed by registrar" in e.payload["reason"] and "was human under no policy" in e.payload["reason"]
               for e in rerouted)


def test_applying_it_again_changes_nothing(unrouted) -> None:  # type: ignore[no-untyped-def]
    store, model, policy, _data = unrouted
    apply_policy(store, model, policy, by="registrar")
    n = len(list(store.audit_entries()))
    again = apply_policy(store, model, policy, by="registrar")
    assert again.rerouted == 0 and again.slots_withdrawn == again.slots_opened == 0
    assert again.unchanged + again.settled == 24  # all-auto submissions have no slot left: settled
    assert len(list(store.audit_entries())) == n


def test_a_dry_run_says_what_would_change_and_records_nothing(unrouted) -> None:  # type: ignore[no-untyped-def]
    store, model, policy, _data = unrouted
    slots, n = _open_slots(store), len(list(store.audit_entries()))
    dry = apply_policy(store, model, policy, by="registrar", dry_run=True)
    assert dry.rerouted == 24 and dry.routes_after["auto"] > 0
    assert _open_slots(store) == slots and len(list(store.audit_entries())) == n
    real = apply_policy(store, model, policy, by="registrar")
    assert (real.rerouted, real.routes_after) == (dry.rerouted, dry.routes_after)
    assert (real.slots_withdrawn, real.slots_opened) == (dry.slots_withdrawn, dry.slots_opened) != (0, 0)


def test_work_a_person_started_and_items_chosen_to_teach_the_model_are_kept(unrouted) -> None:  # type: ignore[no-untyped-def]
    from scoring.store.records import HumanScoreIn
    from scoring.usecases.selection import SELECTED_PRIORITY

    store, model, policy, _data = unrouted
    subs = store.submissions()
    claimed = queue.claim(store, "alice", 600)
    assert claimed is not None
    rated = next(s for s in subs if s.id != claimed.submission_id)
    store.record_human_scores([HumanScoreIn(rated.id, model.rubric.criteria[0].id, 1, "bob", kind="first")])
    taught = next(s for s in subs if s.id not in (claimed.submission_id, rated.id))
    with store.write() as tx:
        tx.conn.execute(queue_items.update().where(queue_items.c.submission_id == taught.id)
                        .values(priority=SELECTED_PRIORITY))
    before = _routes(store, model.version)
    res = apply_policy(store, model, policy, by="registrar")
    assert (res.in_progress, res.selected, res.rerouted) == (2, 1, 21)
    after = _routes(store, model.version)
    for s in (claimed.submission_id, rated.id, taught.id):
        ext = next(x.external_id for x in subs if x.id == s)
        assert {k: v for k, v in after.items() if k[0] == ext} == {k: v for k, v in before.items() if k[0] == ext}
    held = queue.item(store, claimed.id)
    assert held.status == "claimed" and held.holder == "alice"


def test_an_item_claimed_while_the_block_is_routed_is_kept(unrouted, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The write re-checks the queue: an assessor who claims an item meanwhile keeps it as it was."""
    import scoring.usecases.reroute as reroute

    store, model, policy, _data = unrouted
    real_hook = reroute.routing_hook
    taken: list[Any] = []

    def hook_that_lets_alice_claim_first(*a: Any, **k: Any) -> Any:
        h = real_hook(*a, **k)

        def run(items: list[Any], records: list[Any]) -> None:
            h(items, records)
            if not taken:
                taken.append(queue.claim(store, "alice", 600))

        return run

    monkeypatch.setattr(reroute, "routing_hook", hook_that_lets_alice_claim_first)
    res = apply_policy(store, model, policy, by="registrar")
    assert taken[0] is not None and (res.rerouted, res.in_progress) == (23, 1)
    held = queue.item(store, taken[0].id)
    assert held.status == "claimed" and held.route == "human"
    assert store.verify_audit().ok


def test_a_stricter_policy_does_not_reopen_what_the_machine_settled(unrouted, calibrated) -> None:  # type: ignore[no-untyped-def]
    store, model, policy, _data = unrouted
    apply_policy(store, model, policy, by="registrar")
    strict = policy.model_copy(update={"policy_version": policy.policy_version + "-strict", "criteria": {
        c: cp.model_copy(update={"min_confidence": 1.01}) for c, cp in policy.criteria.items()}})
    before = _routes(store, model.version)
    with store.engine.connect() as conn:
        ext = {s.id: s.external_id for s in store.submissions()}
        settled = {ext[s] for s, (st, _rows) in queue.standings(conn, list(ext)).items() if st == "settled"}
    res = apply_policy(store, model, strict, by="registrar")
    routes = _routes(store, model.version)
    assert res.settled == len(settled) > 0 and res.routes_after.get("auto", 0) == 0  # re-routed ones go to people
    assert {k: v for k, v in routes.items() if k[0] in settled} == {k: v for k, v in before.items() if k[0] in settled}


def test_a_policy_for_another_model_is_refused(unrouted) -> None:  # type: ignore[no-untyped-def]
    from scoring.errors import PolicyError

    store, model, policy, _data = unrouted
    with pytest.raises(PolicyError, match="tuned for model"):
        apply_policy(store, model, policy.model_copy(update={"model_version": "some-other-model"}), by="registrar")


def test_scoring_a_waiting_backlog_with_a_retrained_model_gives_it_the_new_routes_slots(  # type: ignore[no-untyped-def]
    tmp_path: Path, fake_model, calibrated
) -> None:
    """A backlog stored and queued by one model, scored again by a retrained one under its policy: while nobody
    has started a submission, its queue slots become the ones the new routes need, as if the new model had
    scored it first (an open slot the new routes do not need would ask people for work the policy accepts)."""
    model, policy = calibrated
    assert fake_model.version != model.version
    data = backlog_file(tmp_path / "backlog.jsonl")
    with Store(f"sqlite:///{tmp_path / 'store.db'}") as store, Store(f"sqlite:///{tmp_path / 'direct.db'}") as direct:
        score_into_store(fake_model, None, store, data, tmp_path / "old.jsonl")
        score_into_store(model, policy, store, data, tmp_path / "new.jsonl")
        score_into_store(model, policy, direct, data, tmp_path / "direct.jsonl")
        assert _routes(store, model.version) == _routes(direct, model.version)
        assert _open_slots(store) == _open_slots(direct)
        assert store.verify_audit().ok


def test_slots_another_model_left_behind_are_brought_in_line_by_apply(  # type: ignore[no-untyped-def]
    tmp_path: Path, fake_model, calibrated, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store where a retrained model's routes sit beside the first model's open slots (recorded by a release
    that only added slots): `policy apply` finds routes already the policy's and reconciles the slots only."""
    import scoring.usecases.intake as intake

    model, policy = calibrated
    data = backlog_file(tmp_path / "backlog.jsonl")
    with Store(f"sqlite:///{tmp_path / 'store.db'}") as store, Store(f"sqlite:///{tmp_path / 'direct.db'}") as direct:
        score_into_store(fake_model, None, store, data, tmp_path / "old.jsonl")
        with monkeypatch.context() as m:
            m.setattr(intake.queue, "reroute_in", lambda tx, sid, routes, **kw: (  # slots only ever added
                0, queue.enqueue_in(tx, sid, routes, reasons=kw.get("reasons"), rank=kw.get("rank", 0.0))))
            score_into_store(model, policy, store, data, tmp_path / "new.jsonl")
        score_into_store(model, policy, direct, data, tmp_path / "direct.jsonl")
        assert _open_slots(store) != _open_slots(direct)
        n = len([e for e in store.audit_entries() if e.event == "machine_score"])
        res = apply_policy(store, model, policy, by="registrar")
        assert res.rerouted == 0 and res.requeued > 0 and res.slots_withdrawn > 0
        assert _open_slots(store) == _open_slots(direct)
        assert len([e for e in store.audit_entries() if e.event == "machine_score"]) == n  # routes stood: no new rows


def test_a_retrained_model_leaves_work_people_started_and_settled_submissions_as_they_stand(unrouted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Scoring the stored backlog with a retrained model re-routes only the submissions still waiting for a
    person. One a person has started keeps its scores, routes, slots and decisions (a new model must not undo
    people's work), and one whose machine scores stand keeps them (it may back a credential)."""
    import dataclasses

    from scoring.store.records import HumanScoreIn

    store, model, policy, data = unrouted
    apply_policy(store, model, policy, by="registrar")
    subs = {s.id: s for s in store.submissions()}
    with store.engine.connect() as conn:
        where = queue.standings(conn, list(subs))
    settled = {s for s, (st, _rows) in where.items() if st == "settled"}
    started = next(s for s, (st, _rows) in where.items() if st == "waiting")
    store.record_human_scores([HumanScoreIn(started, model.rubric.criteria[0].id, 1, "ann", kind="first", blind=False)])
    assert settled and started not in settled
    retrained = dataclasses.replace(model, version="retrained-v2")
    policy2 = policy.model_copy(update={"model_version": "retrained-v2", "policy_version": "p2"})
    before = {s: [(i.kind, i.status, sorted(i.criteria)) for i in queue.items_for_submission(store, s)] for s in subs}
    run = score_into_store(retrained, policy2, store, data, store_out := Path(str(data) + ".v2.jsonl"))
    rescored = {m.submission_id for m in store.machine_scores(model_version="retrained-v2")}
    assert rescored == set(subs) - settled - {started}
    assert run.recorded["kept_from_other_model"] == {"settled": len(settled), "started": 1}
    n_crit = len(model.rubric.criteria)
    # the summary's figures are the store's for the whole backlog: the kept submissions' scores count too
    assert run.recorded["criterion_scores"] == n_crit * len(subs)
    assert run.recorded["by_this_model"] == n_crit * len(rescored)
    for s in settled | {started}:
        assert [(i.kind, i.status, sorted(i.criteria)) for i in queue.items_for_submission(store, s)] == before[s]
    assert store_out.exists() and store.verify_audit().ok
    from typer.testing import CliRunner

    from scoring.cli import app

    rep = CliRunner().invoke(app, ["report", "--db", store.url, "--out", str(tmp_path / "report"), "--bootstrap", "0"])
    assert rep.exit_code == 0, rep.output
    by_model = json.loads(rep.output.strip().splitlines()[-1])["auto_fraction_by_model"]
    assert set(by_model) == {model.version, "retrained-v2"}  # each model's share, not only the pooled one


def test_applying_an_older_models_policy_after_a_retrained_model_scored_changes_nothing(unrouted) -> None:  # type: ignore[no-untyped-def]
    """The routes in charge are those of the latest model that scored a submission: applying an older model's
    policy must neither revert the submission to that model nor rewrite slots the newer routes need."""
    import dataclasses

    store, model, policy, data = unrouted
    retrained = dataclasses.replace(model, version="retrained-v2")
    policy2 = policy.model_copy(update={"model_version": "retrained-v2", "policy_version": "p2"})
    score_into_store(retrained, policy2, store, data, Path(str(data) + ".v2.jsonl"))
    with store.engine.connect() as conn:
        waiting = sum(st == "waiting" for st, _rows in queue.standings(conn, [s.id for s in store.submissions()]).values())
    slots, n = _open_slots(store), len(list(store.audit_entries()))
    res = apply_policy(store, model, policy, by="registrar")
    assert res.rerouted == res.requeued == 0 and res.newer_model == waiting > 0
    assert _open_slots(store) == slots and len(list(store.audit_entries())) == n


def test_a_submission_whose_machine_scores_stand_keeps_its_audit_slot_and_decision(tmp_path: Path, calibrated) -> None:  # type: ignore[no-untyped-def]
    """All criteria accepted, one sampled for a blind audit, the credential decided by the machine (it may be
    issued before the audit is worked): neither a stricter policy nor a retrained model reopens it, and the
    audit behind the decision stays in the queue."""
    import dataclasses

    from routing_fakes import RUBRIC

    from models.artifact import ScoringModel
    from rubrics.schema import parse_rubric

    model, policy = calibrated
    award = ScoringModel(rubric=parse_rubric({**RUBRIC, "award": {"min_level": {"quality": 3}}}), scorers=model.scorers,
                         encoder=model.encoder, version=model.version, card={})
    audited = policy.model_copy(update={"audit_rate": 1.0, "double_rate": 0.0})
    data = backlog_file(tmp_path / "backlog.jsonl")
    with Store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        score_into_store(award, audited, store, data, tmp_path / "a.jsonl")
        with store.engine.connect() as conn:
            where = queue.standings(conn, [s.id for s in store.submissions()])
        settled = {s for s, (st, rows) in where.items() if st == "settled" and any(r.kind == "audit" for r in rows)}
        decided = {s: store.latest_decision(s) for s in settled}
        assert settled and all(d is not None and d.outcome in ("earned", "not_yet") for d in decided.values())
        strict = audited.model_copy(update={"policy_version": "strict", "criteria": {
            c: cp.model_copy(update={"min_confidence": 1.01}) for c, cp in audited.criteria.items()}})
        res = apply_policy(store, award, strict, by="registrar")
        assert res.settled >= len(settled)
        retrained = dataclasses.replace(award, version="retrained-v2")
        score_into_store(retrained, strict.model_copy(update={"model_version": "retrained-v2"}), store, data, tmp_path / "b.jsonl")
        rescored = {m.submission_id for m in store.machine_scores(model_version="retrained-v2")}
        for s in settled:
            assert store.latest_decision(s) == decided[s] and s not in rescored
            assert [(i.kind, i.status) for i in queue.items_for_submission(store, s)] == [("audit", "open")]
