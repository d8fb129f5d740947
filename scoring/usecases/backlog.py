"""Score a backlog file: the one batch engine behind ``scoring score`` and the API's batch jobs.

Files first, as before: scores (JSONL or CSV), rejects and, with a policy, the human queue as JSONL. With a
store, every block is also recorded through :func:`scoring.usecases.intake.record_scored` (submissions,
machine scores with their routes, audit entries and queue slots in one transaction) *before* the block
reaches the files; the resumable job (``scoring.batch.run_batch``) then writes it and checkpoints. A run
killed at any point and resumed records nothing twice and writes files identical to an uninterrupted run's.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.artifact import ScoringModel
from scoring.batch import JobSummary, Sink, run_batch
from scoring.ingest import Record
from scoring.store import Store
from scoring.store.jobs import BatchResult, update_job_in
from scoring.usecases.intake import NewSubmission, Outcome, record_scored


@dataclass
class StoreTally:
    """What the store sink recorded during this process's run (a resumed run counts only its own part)."""

    created: int = 0
    already: int = 0
    kept: dict[str, int] = field(default_factory=dict)  # scored by another model, not waiting: why -> how many
    refused: int = 0
    by_route: dict[str, int] = field(default_factory=dict)

    def add(self, outs: list[Outcome]) -> None:
        for o in outs:
            if o.error is not None:
                self.refused += 1
            elif o.kept:
                self.kept[o.kept] = self.kept.get(o.kept, 0) + 1
            elif o.created:
                self.created += 1
                for r in (o.scored.criteria.values() if o.scored is not None else ()):
                    route = str(r.extra.get("route") or "human")
                    self.by_route[route] = self.by_route.get(route, 0) + 1
            else:
                self.already += 1


def store_sink(
    store: Store,
    model: ScoringModel,
    owner: str,
    policy_version: str | None,
    *,
    queue_order: str = "uncertain",
    metadata_of: Callable[[Record], dict[str, Any]] | None = None,
    job_id: int | None = None,
    tally: StoreTally | None = None,
    describe_reject: Callable[[str], str] = str,
) -> Sink:
    """A ``run_batch`` sink recording each block in the store; with ``job_id`` the block's per-row results
    and the job's counters are written in the same transaction (a resumed block adds none twice)."""
    meta = metadata_of or (lambda r: dict(r.meta))

    def sink(items: list[Any], good: list[Record], bad: list[Record]) -> dict[int, str]:
        subs = [NewSubmission(r.id or f"row-{r.number}", dict(r.evidence), meta(r)) for r in good]

        def bookkeeping(tx: Any, outs: list[Outcome]) -> None:
            if job_id is None:
                return
            res = [BatchResult(r.number - 1, o.external_id, None if o.error else o.submission.id if o.submission else None,
                               f"{o.error.code}: {o.error}" if o.error else None) for r, o in zip(good, outs, strict=True)]
            res += [BatchResult(r.number - 1, r.id or f"row-{r.number}", None, describe_reject(r.reject or "rejected"))
                    for r in bad]
            update_job_in(tx, job_id, results=sorted(res, key=lambda x: x.position))

        outs = record_scored(store, model, owner, subs, items, policy_version, queue_order=queue_order,
                             on_commit=bookkeeping)
        if tally is not None:
            tally.add(outs)
        return {r.number: f"{o.error.code}: {o.error}" for r, o in zip(good, outs, strict=True) if o.error is not None}

    return sink


@dataclass
class BacklogRun:
    summary: JobSummary
    policy_version: str | None = None
    queue_file: Path | None = None
    tally: StoreTally | None = None
    recorded: dict[str, Any] | None = None  # what the store holds for this backlog (with a store)


def reading_tag(cols: Any, data: Path, fmt: str | None, encoding: str, quoting: bool, max_chars: int) -> str:
    """What decides which records are read and how: a resume under other options is refused."""
    from scoring.engines.shards import format_of  # a file's format, or that of a folder's shards

    reading = {"id": cols.id, "text": cols.text, "where": cols.where, "format": format_of(data, fmt),
               "encoding": codecs.lookup(encoding).name, "quoting": quoting, "max_chars": max_chars}
    if getattr(cols, "meta", ()):  # stored with the submissions: a resume must keep the same columns
        reading["meta"] = list(cols.meta)
    return "read=" + json.dumps(reading, sort_keys=True)


def score_backlog(
    model: ScoringModel,
    records: Iterable[Record],
    data: Path,
    out: Path,
    *,
    read_tag: str,
    rejects: Path | None = None,
    block_size: int = 1024,
    total: int | None = None,
    progress: bool = False,
    overwrite: bool = False,
    highlights: int = 0,
    policy: Any | None = None,
    queue_order: str | None = None,
    store: Store | None = None,
    owner: str = "local",
    metadata_of: Callable[[Record], dict[str, Any]] | None = None,
    job_id: int | None = None,
    describe_reject: Callable[[str], str] = str,
    suspensions: Any | None = None,
    engine: Any = None,  # run_batch's engine (scoring.engines.ray_engine.RayEngine); None = local
) -> BacklogRun:
    """Score a backlog into files and, with ``store``, record it (see the module docstring).

    ``policy`` (a loaded :class:`~scoring.policy.RoutingPolicy`) routes every criterion, consulting the
    store's suspensions when there is one (else ``suspensions``, a store read for them only); without a
    policy and with a store every criterion is queued for a human (nothing is automated that no policy allowed).
    """
    hooks: list[Any] = []
    tags = [read_tag]
    extra_cols: list[str] = []
    if highlights:
        from scoring.highlights import highlight_hook

        hooks.append(highlight_hook(model, highlights))
        tags.append(f"highlights={highlights}")
        extra_cols.append("highlights")
    pv: str | None = None
    order = queue_order or (policy.queue_order if policy is not None else "oldest")
    if policy is not None:
        from scoring.routing import ROUTE_COLS, routing_hook

        hooks.append(routing_hook(model, policy, store or suspensions))
        pv = str(policy.policy_version)
        tags.append(f"policy={pv}")
        extra_cols += list(ROUTE_COLS)
    if store is not None:  # a resume must not mix a recorded and an unrecorded run in one output
        store.register_rubric(model.rubric)  # idempotent; refuses another body under the same id+version
        if policy is not None:
            from scoring.store.policy_log import record_policy

            record_policy(store, policy, by=owner, rubric_id=model.rubric.id)  # thresholds in force are an audit event
        tags.append(f"store={_safe_url(store.url)}|owner={owner}")
    tally = StoreTally() if store is not None else None
    sink = None
    if store is not None:
        sink = store_sink(store, model, owner, pv, queue_order=order, metadata_of=metadata_of, job_id=job_id,
                          tally=tally, describe_reject=describe_reject)
    summary = run_batch(model, records, data, out, rejects=rejects, block_size=block_size, total=total,
                        progress=progress, overwrite=overwrite, hooks=hooks, job_tag="|".join(t for t in tags if t),
                        extra_csv_cols=extra_cols, sink=sink, engine=engine)
    queue_file = None
    if policy is not None:
        from scoring.routing import write_queue

        queue_file = write_queue(summary.out, order=order)
    recorded = recorded_totals(store, model, summary.out, tally, pv) if store is not None else None
    return BacklogRun(summary, pv, queue_file, tally, recorded)


def recorded_totals(store: Store, model: ScoringModel, out: Path, tally: StoreTally | None,
                    policy_version: str | None = None) -> dict[str, Any]:
    """What the store now holds for the backlog in ``out``: submissions, the criterion scores that stand for
    them (the latest machine score per submission and criterion, whichever model recorded it) and how many of
    those are this model's, the share the machine's score stands for (routes ``auto`` and ``audit``), the
    queue slots made for them, and how many keep the routes of a run under another policy (or none) than
    ``policy_version``.

    Why from the store and not the output file: a re-run is answered from what the store holds, so under
    another policy (or none) the file's routes are this run's while the store keeps the first run's routes
    and queue; the summary line names the store, so it must report the store's figures. Why every model's:
    after a retrained model re-scored part of a backlog, the rest keeps the earlier model's scores, and
    counting one model's rows beside store-wide submissions and slots would mix two populations."""
    import sqlalchemy as sa

    from scoring.routing import ACCEPTED_ROUTES, _routed_rows
    from scoring.store import queue
    from scoring.store import tables as t

    ids: list[str] = []
    for sid, _mv, _crit, _res in _routed_rows(out):
        if not ids or ids[-1] != sid:
            ids.append(sid)
    subs = store.find_submissions(model.rubric.id, ids)
    keys = [x.id for x in subs.values()]
    slots = queue.count_for_submissions(store, keys)
    done = queue.count_for_submissions(store, keys, status="done")
    c = t.machine_scores.c
    # (submission, criterion) -> (route, policy, model) of the row that stands
    latest: dict[tuple[int, str], tuple[str, str | None, str | None]] = {}
    with store.engine.connect() as conn:
        for i in range(0, len(keys), 500):
            for row in conn.execute(sa.select(c.submission_id, c.criterion, c.route, c.policy_version, c.model_version)
                                    .where(c.submission_id.in_(keys[i:i + 500])).order_by(c.id)):
                latest[(int(row.submission_id), row.criterion)] = (str(row.route or "human"), row.policy_version,
                                                                   row.model_version)
    routes = [r for r, _p, _m in latest.values()]
    mine = {k: v for k, v in latest.items() if v[2] == model.version}
    other = {s for (s, _c), (_r, pv, _m) in mine.items() if pv != policy_version}
    auto = sum(r in ACCEPTED_ROUTES for r in routes)
    return {"store": _safe_url(store.url), "submissions": len(subs), "created_now": tally.created if tally else 0,
            "criterion_scores": len(routes), "by_this_model": len(mine),
            "auto_fraction": auto / len(routes) if routes else 0.0,
            "queued": slots, "queued_done": done, "kept_from_other_policy": len(other), "kept_from_other_model": dict(sorted(tally.kept.items())) if tally else {}}


def _safe_url(url: str) -> str:
    """The store URL without its password (it goes into the progress file)."""
    import sqlalchemy as sa

    return sa.engine.make_url(url).render_as_string(hide_password=True)
