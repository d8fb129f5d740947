"""Two API servers on one database: a server that starts while another runs a batch job leaves the job to it.

Every server resumes, when it starts, the jobs it finds queued or running. A job found ``running`` may still
be running in the other server: the starting server must not count a resume, run it a second time, or mark
it failed because the job's folder is on the other server's machine. A job whose server died (its runner
lock went with the process) is resumed as before. The first server is its worker (``batch_jobs.run_job``) in
a thread, held inside a block; the second is another store connection to the same database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from routing_fakes import synthetic

from scoring.store import Store, jobs
from scoring.usecases import backlog, batch_jobs
from scoring.usecases.intake import NewSubmission


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    return str(request.getfixturevalue("pg_url"))


def _job(store: Store, model: Any, tmp_path: Path, n: int = 8) -> jobs.BatchJob:
    d = synthetic(n, seed=5)
    subs = [NewSubmission(i, {"essay": t}) for i, t in zip(d["ids"], d["texts"], strict=True)]
    store.register_rubric(model.rubric)
    return batch_jobs.create_from_list(store, "issuer-a", model.rubric, subs, tmp_path / "jobs", 10_000)


@contextmanager
def _first_server_running(store: Store, model: Any, policy: Any, job_id: int, monkeypatch: Any) -> Iterator[None]:
    """The first server's worker runs the job and is inside its second block until the block exits."""
    started, go = threading.Event(), threading.Event()
    real, calls = backlog.record_scored, 0

    def slow_block(*a: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            started.set()
            go.wait(60)
        return real(*a, **kw)

    monkeypatch.setattr(backlog, "record_scored", slow_block)
    worker = threading.Thread(target=batch_jobs.run_job, args=(store, lambda _r, _v: model, policy, job_id),
                              kwargs={"max_chars": 10_000, "block_size": 4})
    worker.start()
    assert started.wait(60)
    try:
        yield
    finally:
        go.set()
        worker.join(60)
        monkeypatch.setattr(backlog, "record_scored", real)


def test_a_server_that_starts_while_another_runs_a_job_leaves_the_job_to_it(
        url: str, tmp_path: Path, calibrated: Any, monkeypatch: Any) -> None:
    model, policy = calibrated
    with Store(url) as first, Store(url) as second:
        job = _job(first, model, tmp_path)
        with _first_server_running(first, model, policy, job.id, monkeypatch):
            assert batch_jobs.resume_unfinished(second, lambda i: batch_jobs.run_job(
                second, lambda _r, _v: model, policy, i, max_chars=10_000, block_size=4)) == [job.id]
            j = jobs.job(second, job.id)
            assert (j.status, j.resumes, j.done, j.error) == ("running", 0, 4, None)
        j = jobs.job(second, job.id)
        assert (j.status, j.resumes, j.done, j.error) == ("done", 0, 8, None)
        assert len(second.submissions()) == 8 and second.verify_audit().ok


def test_a_job_whose_folder_is_on_another_servers_machine_is_not_marked_failed_while_that_server_runs_it(
        pg_url: str, tmp_path: Path, calibrated: Any, monkeypatch: Any) -> None:
    model, policy = calibrated
    with Store(pg_url) as first, Store(pg_url) as second:
        job = _job(first, model, tmp_path)
        with _first_server_running(first, model, policy, job.id, monkeypatch):
            # as the second server sees it: the job's folder is on the first server's machine, not on its own
            jobs.update_job(first, job.id, workdir=str(tmp_path / "on-the-first-machine" / "job-1"))
            batch_jobs.run_job(second, lambda _r, _v: model, policy, job.id, max_chars=10_000)
            j = jobs.job(second, job.id)
            assert (j.status, j.resumes, j.error) == ("running", 0, None)
        j = jobs.job(second, job.id)
        assert (j.status, j.done, j.error) == ("done", 8, None)


def test_a_job_whose_server_died_is_resumed_once_by_the_next_server(url: str, tmp_path: Path,
                                                                    calibrated: Any) -> None:
    model, policy = calibrated
    with Store(url) as store:
        job = _job(store, model, tmp_path)
        assert jobs.start_job(store, job.id)  # its worker took it, then the server died (its lock went with it)
        assert batch_jobs.resume_unfinished(store, lambda i: batch_jobs.run_job(
            store, lambda _r, _v: model, policy, i, max_chars=10_000, block_size=4)) == [job.id]
        j = jobs.job(store, job.id)
        assert (j.status, j.resumes, j.done, j.error) == ("done", 1, 8, None)
