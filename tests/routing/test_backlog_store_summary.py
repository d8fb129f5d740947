"""The ``store ...`` line of ``scoring score --store`` describes what the store holds, not what the files say.

A re-run of a backlog the store already holds (another ``--out``, another policy or none) is answered from the
store: its machine scores, routes and queue stay those of the run that recorded them. The summary then
reports the store's routes, and says that this run's routes live in its files only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from routing_fakes import synthetic

from scoring.ingest import ColumnMap, infer_columns, read_records
from scoring.routing import ACCEPTED_ROUTES
from scoring.store import Store
from scoring.usecases.backlog import score_backlog


def _backlog(path: Path) -> Path:
    d = synthetic(24, seed=3)
    path.write_text("".join(json.dumps({"id": i, "essay": t}) + "\n" for i, t in zip(d["ids"], d["texts"], strict=True)),
                    encoding="utf-8")
    return path


def _score(model: Any, policy: Any, store: Store, data: Path, out: Path) -> Any:
    cols = infer_columns(model.rubric, ColumnMap(id="id"))
    return score_backlog(model, read_records(data, model.rubric, cols), data, out, read_tag="t", block_size=5,
                         policy=policy, store=store, owner="issuer-a")


def test_a_rerun_without_the_policy_reports_the_routes_the_store_keeps(tmp_path: Path, calibrated) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated
    data = _backlog(tmp_path / "backlog.jsonl")
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        first = _score(model, policy, store, data, tmp_path / "a.jsonl").recorded
        stored = [m.route for m in store.machine_scores(model_version=model.version)]
        share = sum(r in ACCEPTED_ROUTES for r in stored) / len(stored)
        assert first["auto_fraction"] == share and 0 < share < 1  # the policy automated some, not all
        again = _score(model, None, store, data, tmp_path / "b.jsonl").recorded  # no policy: the file says human
    assert again["created_now"] == 0
    assert again["criterion_scores"] == len(stored) and again["auto_fraction"] == share  # the store's, not 0.0
    assert again["queued"] == first["queued"]
    assert again["kept_from_other_policy"] == 24  # every submission keeps the first run's routes
    assert first["kept_from_other_policy"] == 0
