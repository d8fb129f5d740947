"""The ``store ...`` line of ``scoring score --store`` describes what the store holds, not what the files say.

A re-run of a backlog the store already holds (another ``--out``, another policy or none) is answered from the
store: its machine scores, routes and queue stay those of the run that recorded them. The summary then
reports the store's routes, and says that this run's routes live in its files only.
"""

from __future__ import annotations

from pathlib import Path

from routing_fakes import backlog_file, score_into_store

from scoring.routing import ACCEPTED_ROUTES
from scoring.store import Store


def test_a_rerun_without_the_policy_reports_the_routes_the_store_keeps(tmp_path: Path, calibrated) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated
    data = backlog_file(tmp_path / "backlog.jsonl")
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        first = score_into_store(model, policy, store, data, tmp_path / "a.jsonl").recorded
        stored = [m.route for m in store.machine_scores(model_version=model.version)]
        share = sum(r in ACCEPTED_ROUTES for r in stored) / len(stored)
        assert first["auto_fraction"] == share and 0 < share < 1  # the policy automated some, not all
        again = score_into_store(model, None, store, data, tmp_path / "b.jsonl").recorded  # no policy: the file says human
    assert again["created_now"] == 0
    assert again["criterion_scores"] == len(stored) and again["auto_fraction"] == share  # the store's, not 0.0
    assert again["queued"] == first["queued"]
    assert again["kept_from_other_policy"] == 24  # every submission keeps the first run's routes
    assert first["kept_from_other_policy"] == 0


def test_the_store_line_counts_the_queue_slots_people_have_already_scored(tmp_path: Path, calibrated) -> None:  # type: ignore[no-untyped-def]
    """After assessors worked part of the queue, a re-run (e.g. with a retrained model) must not read as if every
    slot still waited: the summary counts the slots people scored apart."""
    from scoring.store import queue

    model, _policy = calibrated
    data = backlog_file(tmp_path / "backlog.jsonl")
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        first = score_into_store(model, None, store, data, tmp_path / "a.jsonl").recorded
        assert first["queued"] == 24 and first["queued_done"] == 0  # no policy: one slot per submission
        for who in ("ana", "ben"):
            item = queue.claim(store, who, 600)
            assert item is not None and item.lease_token
            queue.submit(store, item.id, who, item.lease_token,
                         {c: (model.rubric.criterion(c).scores[0], "lowest") for c in item.criteria})
        again = score_into_store(model, None, store, data, tmp_path / "b.jsonl").recorded
    assert again["queued"] == 24 and again["queued_done"] == 2
