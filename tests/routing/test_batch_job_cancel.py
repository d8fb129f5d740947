"""Cancelling an API batch job: it stops before its next block, keeps what it recorded, and is never resumed.

The job runs the same use case the API's worker runs (``batch_jobs.run_job``) on the synthetic model. The
cancel arrives between two blocks, exactly when an issuer's ``POST /batch-jobs/{id}/cancel`` lands while
the worker scores: the block in hand is rolled back with its transaction, nothing after it is recorded.
"""

from __future__ import annotations

from typing import Any

import pytest
from routing_fakes import synthetic

from scoring.errors import JobFinished
from scoring.store import Store, jobs
from scoring.usecases import backlog, batch_jobs
from scoring.usecases.intake import NewSubmission


def _job(store: Store, model: Any, tmp_path: Any, n: int) -> tuple[jobs.BatchJob, list[NewSubmission]]:
    d = synthetic(n, seed=21)
    subs = [NewSubmission(i, {"essay": t}) for i, t in zip(d["ids"], d["texts"], strict=True)]
    store.register_rubric(model.rubric)
    return batch_jobs.create_from_list(store, "issuer-a", model.rubric, subs, tmp_path / "jobs", 10_000), subs


def test_a_job_cancelled_between_blocks_keeps_the_blocks_it_recorded_and_records_nothing_after(
        tmp_path, calibrated, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated
    with Store(f"sqlite:///{tmp_path / 'c.db'}") as store:
        job, subs = _job(store, model, tmp_path, 12)
        real = backlog.record_scored
        calls = 0

        def record_then_cancel(*a: Any, **kw: Any) -> Any:
            nonlocal calls
            out = real(*a, **kw)
            calls += 1
            if calls == 1:  # the first block is committed; the issuer cancels now
                jobs.cancel_job(store, job.id, "issuer-a")
            return out

        monkeypatch.setattr(backlog, "record_scored", record_then_cancel)
        batch_jobs.run_job(store, lambda _r, _v: model, policy, job.id, max_chars=10_000, block_size=4)

        j = jobs.job(store, job.id)
        assert (j.status, j.done, j.rejected, j.cancelled_by) == ("cancelled", 4, 0, "issuer-a")
        assert j.cancelled_at is not None and j.error is None
        assert [r.position for r in jobs.job_results(store, job.id)] == [0, 1, 2, 3]
        assert sorted(s.external_id for s in store.submissions()) == sorted(s.external_id for s in subs[:4])
        assert len(store.machine_scores()) == 4 * len(model.rubric.criteria)
        assert store.verify_audit().ok
        assert batch_jobs.resume_unfinished(store, lambda _i: None) == []  # a starting server leaves it alone
        with pytest.raises(JobFinished, match="already cancelled .*4 scored, 0 rejected of 12"):
            jobs.cancel_job(store, job.id, "issuer-a")

        # the rest: a new job over the same rows records the eight it never reached, and the first four once
        monkeypatch.setattr(backlog, "record_scored", real)
        again = batch_jobs.create_from_list(store, "issuer-a", model.rubric, subs, tmp_path / "jobs", 10_000)
        batch_jobs.run_job(store, lambda _r, _v: model, policy, again.id, max_chars=10_000, block_size=4)
        assert jobs.job(store, again.id).status == "done"
        assert len(store.submissions()) == 12 and len(store.machine_scores()) == 12 * len(model.rubric.criteria)
        assert all(r.submission_id and not r.error for r in jobs.job_results(store, again.id))


def test_a_job_cancelled_while_queued_never_runs_and_a_finished_job_cannot_be_cancelled(
        tmp_path, calibrated) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated
    with Store(f"sqlite:///{tmp_path / 'q.db'}") as store:
        job, _ = _job(store, model, tmp_path, 6)
        assert jobs.cancel_job(store, job.id, "issuer-a").status == "cancelled"
        batch_jobs.run_job(store, lambda _r, _v: model, policy, job.id, max_chars=10_000)  # the worker reaches it
        j = jobs.job(store, job.id)
        assert (j.status, j.done, store.submissions()) == ("cancelled", 0, [])

        other, _ = _job(store, model, tmp_path, 6)
        batch_jobs.run_job(store, lambda _r, _v: model, policy, other.id, max_chars=10_000)
        with pytest.raises(JobFinished, match=f"batch job {other.id} has finished \\(6 scored"):
            jobs.cancel_job(store, other.id, "issuer-a")
        assert jobs.job(store, other.id).status == "done"


def test_a_job_a_restart_interrupted_counts_its_resumes(tmp_path, calibrated) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated
    with Store(f"sqlite:///{tmp_path / 'r.db'}") as store:
        job, _ = _job(store, model, tmp_path, 4)
        jobs.update_job(store, job.id, status="running")  # the server stopped while it ran the job
        batch_jobs.run_job(store, lambda _r, _v: model, policy, job.id, max_chars=10_000)
        j = jobs.job(store, job.id)
        assert (j.status, j.done, j.resumes) == ("done", 4, 1)
        fresh, _ = _job(store, model, tmp_path, 4)
        batch_jobs.run_job(store, lambda _r, _v: model, policy, fresh.id, max_chars=10_000)
        assert jobs.job(store, fresh.id).resumes == 0
