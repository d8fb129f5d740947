"""Crash safety of ``scoring score --policy --store``: SIGKILL at random points, resume, check the invariants.

The scoring process is a fork of the test process running the same use case the CLI runs (the synthetic
model keeps it fast enough for 50+ kills per database). It kills itself with SIGKILL at the N-th fault
point (``scoring.faults``: inside the store transaction, between the store and the output files, between
the files and the progress file), N drawn at random; the next run resumes. After each backlog completes:
every submission scored exactly once, every routed criterion has its queue slots, every machine score its
audit entry, the audit chain verifies, and the output, rejects and queue files equal an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from routing_fakes import synthetic

from scoring.ingest import ColumnMap, infer_columns, read_records
from scoring.routing import HUMAN_ROUTES
from scoring.store import Store
from scoring.store.queue import ROUTE_SLOTS
from scoring.usecases.backlog import score_backlog

KILLS_PER_BACKEND = 50
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _backlog(path: Path) -> Path:
    d = synthetic(36, seed=11)
    rows = [{"id": i, "essay": t} for i, t in zip(d["ids"], d["texts"], strict=True)]
    rows.insert(7, {"id": "empty-1", "essay": "   "})  # rejected by the reader
    rows.insert(20, {"id": "taken-1", "essay": "quality=0.5 another issuer's id"})  # refused by the store
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _run(model: Any, policy: Any, url: str, data: Path, out: Path, fault_at: int | None) -> int:
    """Run the backlog in a forked process; returns its wait status (0: finished)."""
    pid = os.fork()
    if pid == 0:  # the scoring process
        code = 1
        try:
            from scoring import faults

            faults._passed = 0
            if fault_at is not None:
                os.environ["SCORING_FAULT_AT"] = str(fault_at)
            store = Store(url)
            cols = infer_columns(model.rubric, ColumnMap(id="id"))
            score_backlog(model, read_records(data, model.rubric, cols), data, out, read_tag="t", block_size=4,
                          policy=policy, store=store, owner="issuer-a")
            store.close()
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()  # shows in the test's captured output
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def _seed(url: str, model: Any) -> str:
    """A store where another issuer already holds the id ``taken-1``."""
    from scoring.store import jobs

    with Store(url) as store:
        store.register_rubric(model.rubric)
        sub = store.add_submission(model.rubric.id, model.rubric.version, "taken-1", {"essay": "quality=1 theirs"})
        jobs.set_owner(store, sub.id, "issuer-b")
    return url


def _check_invariants(store: Store, model: Any) -> None:
    ms = store.machine_scores()
    subs = [s for s in store.submissions(model.rubric.id) if s.external_id != "taken-1"]
    per = {}
    for m in ms:
        per[(m.submission_id, m.criterion)] = per.get((m.submission_id, m.criterion), 0) + 1
    assert len(subs) == 36 and set(per.values()) == {1} and len(per) == 36 * len(model.rubric.criteria)
    from scoring.store import queue

    for sub in subs:
        slots = queue.items_for_submission(store, sub.id)
        for m in (x for x in ms if x.submission_id == sub.id):
            want = {k for k, _ in ROUTE_SLOTS[m.route]}  # type: ignore[index]
            have = {q.kind for q in slots if m.criterion in q.criteria}
            assert have == want, (sub.external_id, m.criterion, m.route, have)
        assert all(m.route not in HUMAN_ROUTES for m in ms if m.submission_id == sub.id) or slots
    seqs = {e.seq: e.event for e in store.audit_entries()}
    assert all(seqs.get(m.audit_seq) == "machine_score" for m in ms)
    res = store.verify_audit()
    assert res.ok, res.problem


def _files(out: Path) -> dict[str, bytes]:
    return {p: (out.parent / (out.stem + p)).read_bytes() for p in (".jsonl", ".rejects.jsonl", ".queue.jsonl")}


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_at_random_points_then_resume_keeps_every_invariant(backend, tmp_path, calibrated, request) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated

    def url(name: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / name}.db"
        base = request.getfixturevalue("pg_url")
        schema = base.rsplit("%3D", 1)[1]
        eng = sa.create_engine(base.split("?")[0])
        with eng.begin() as c:
            c.execute(sa.text(f'CREATE SCHEMA "{schema}_{name}"'))
        eng.dispose()
        request.addfinalizer(lambda: _drop(base.split("?")[0], f"{schema}_{name}"))
        return f"{base}_{name}"

    data = _backlog(tmp_path / "backlog.jsonl")
    ref_out = tmp_path / "ref" / "scores.jsonl"
    ref_out.parent.mkdir()
    assert _run(model, policy, _seed(url("reference"), model), data, ref_out, None) == 0
    reference = _files(ref_out)
    reasons = [json.loads(x)["reason"] for x in reference[".rejects.jsonl"].splitlines()]
    assert len(reasons) == 2 and reasons[1].startswith("external_id_taken"), reasons

    rng = random.Random(20261129)
    kills = rounds = 0
    while kills < KILLS_PER_BACKEND:
        rounds += 1
        out = tmp_path / f"round{rounds}" / "scores.jsonl"
        out.parent.mkdir()
        db = _seed(url(f"r{rounds}"), model)
        for _attempt in range(200):
            status = _run(model, policy, db, data, out, rng.randint(1, 24))
            if status == 0:
                break
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
            kills += 1
        else:
            pytest.fail("the backlog never finished")
        with Store(db) as store:
            _check_invariants(store, model)
        assert _files(out) == reference, f"round {rounds}: files differ from the uninterrupted run"
    assert kills >= KILLS_PER_BACKEND


def _drop(admin_url: str, schema: str) -> None:
    eng = sa.create_engine(admin_url)
    with eng.begin() as c:
        c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    eng.dispose()


def test_an_api_batch_job_killed_mid_way_resumes_when_the_server_starts_again(tmp_path, calibrated) -> None:  # type: ignore[no-untyped-def]
    from scoring.store import jobs
    from scoring.usecases import batch_jobs
    from scoring.usecases.intake import NewSubmission

    model, policy = calibrated
    url = f"sqlite:///{tmp_path / 'api.db'}"
    d = synthetic(30, seed=4)
    subs = [NewSubmission(i, {"essay": t}, {"cohort": "2026"}) for i, t in zip(d["ids"], d["texts"], strict=True)]
    subs.insert(5, NewSubmission("blank", {"essay": ""}))
    with Store(url) as store:
        store.register_rubric(model.rubric)
        job = batch_jobs.create_from_list(store, "issuer-a", model.rubric, subs, tmp_path / "jobs", 10_000)

    def run(fault_at: int | None) -> int:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                from scoring import faults

                faults._passed = 0
                if fault_at is not None:
                    os.environ["SCORING_FAULT_AT"] = str(fault_at)
                with Store(url) as st:
                    batch_jobs.run_job(st, lambda _r, _v: model, policy, job.id, max_chars=10_000, block_size=4)
                code = 0
            finally:
                os._exit(code)
        return os.waitpid(pid, 0)[1]

    assert os.WIFSIGNALED(run(9))  # the server dies inside the third block
    with Store(url) as store:
        mid = jobs.job(store, job.id)
        assert mid.status == "running" and 0 < mid.done < 30
        resumed = batch_jobs.resume_unfinished(store, lambda jid: None)
        assert resumed == [job.id]  # what a starting server hands to its job runner
    assert run(None) == 0
    with Store(url) as store:
        j = jobs.job(store, job.id)
        res = jobs.job_results(store, job.id)
        assert (j.status, j.done, j.rejected) == ("done", 30, 1)
        assert [r.position for r in res] == list(range(31)) and res[5].error and "empty" in res[5].error
        assert len(store.submissions()) == 30 and len(store.machine_scores()) == 30 * len(model.rubric.criteria)
        assert store.find_submission(model.rubric.id, d["ids"][0]).metadata == {"cohort": "2026"}
        assert store.verify_audit().ok


def test_a_job_another_server_process_is_running_is_left_to_it_not_marked_failed(tmp_path, calibrated) -> None:  # type: ignore[no-untyped-def]
    import fcntl

    from scoring.store import jobs
    from scoring.usecases import batch_jobs
    from scoring.usecases.intake import NewSubmission

    model, policy = calibrated
    url = f"sqlite:///{tmp_path / 'two.db'}"
    d = synthetic(6, seed=5)
    with Store(url) as store:
        store.register_rubric(model.rubric)
        job = batch_jobs.create_from_list(store, "issuer-a", model.rubric,
                                          [NewSubmission(i, {"essay": t}) for i, t in zip(d["ids"], d["texts"], strict=True)],
                                          tmp_path / "jobs", 10_000)
        lock = Path(job.workdir) / "scores.jsonl.lock"  # type: ignore[arg-type]
        with lock.open("a") as fh:  # the other worker holds the job's output
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            batch_jobs.run_job(store, lambda _r, _v: model, policy, job.id, max_chars=10_000)
            assert jobs.job(store, job.id).status != "failed"
        batch_jobs.run_job(store, lambda _r, _v: model, policy, job.id, max_chars=10_000)
        assert jobs.job(store, job.id).status == "done"
