"""Concurrent writers lose nothing and never fork the audit chain (SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing as mp
import threading

import pytest

from scoring.errors import AlreadyAdjudicated
from scoring.store import Store

N_PER_WRITER = 40


def _write_scores(url: str, sub_ids: list[int], assessor: str, barrier: threading.Barrier | None) -> None:
    s = Store(url)  # its own engine and connections, like a second process
    try:
        if barrier is not None:
            barrier.wait()
        for i, sid in enumerate(sub_ids):
            s.record_human_score(sid, "questioning", i % 4, assessor=assessor, kind="first")
    finally:
        s.close()


def test_two_threads_writing_human_scores_lose_nothing(store_url: str, store: Store, rubric) -> None:
    subs = store.add_submissions("obs", 1, [(f"s{i}", {"text": str(i)}, {}) for i in range(N_PER_WRITER)])
    ids = [s.id for s in subs]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            _write_scores(store_url, ids, name, barrier)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("ann", "bob")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert errors == []
    scores = store.human_scores()
    assert len(scores) == 2 * N_PER_WRITER
    assert sorted(h.assessor for h in scores).count("ann") == N_PER_WRITER
    res = store.verify_audit()
    assert res.ok and res.entries_checked == 1 + 2 * N_PER_WRITER


def _proc_main(url: str, ids: list[int], name: str) -> None:
    _write_scores(url, ids, name, None)


def test_two_processes_writing_human_scores_lose_nothing(store_url: str, store: Store, rubric) -> None:
    subs = store.add_submissions("obs", 1, [(f"s{i}", {"text": str(i)}, {}) for i in range(N_PER_WRITER)])
    ids = [s.id for s in subs]
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_proc_main, args=(store_url, ids, n)) for n in ("ann", "bob")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    if any(p.exitcode is None for p in procs):
        pytest.fail("a writer process hung")
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(store.human_scores()) == 2 * N_PER_WRITER
    assert store.verify_audit().ok


def test_two_servers_adjudicating_one_pair_at_once_record_exactly_one_resolved_score(store_url: str, store: Store,
                                                                                      rubric) -> None:
    """Each thread opens its own Store (its own engine), as a second API server would."""
    subs = store.add_submissions("obs", 1, [(f"s{i}", {"text": str(i)}, {}) for i in range(10)])
    outcomes: dict[str, list[str]] = {"ann": [], "bob": []}
    barrier = threading.Barrier(2)

    def run(name: str) -> None:
        s = Store(store_url)
        try:
            barrier.wait()
            for sub in subs:
                try:
                    s.record_adjudication(sub.id, "questioning", 2 if name == "ann" else 1, adjudicator=name)
                    outcomes[name].append("ok")
                except AlreadyAdjudicated:
                    outcomes[name].append("refused")
        finally:
            s.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in outcomes]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert all(len(v) == len(subs) for v in outcomes.values()), outcomes  # no thread died on another error
    assert [sorted(pair) for pair in zip(outcomes["ann"], outcomes["bob"], strict=True)] == [["ok", "refused"]] * len(subs)
    adjs = store.adjudications()
    assert sorted(a.submission_id for a in adjs) == sorted(s.id for s in subs)  # one resolved score per pair
    assert store.verify_audit().ok
