"""What people score first: pick a backlog's most informative submissions and queue them.

Two doors share this: ``scoring select`` (a backlog file -> a queue file) and ``POST /selection`` (the
stored, not yet scored submissions of a rubric -> the assessors' queue). The method is in
``scoring.selection``; here a model's criteria become one selection space: the submission's embedding
(mean over its criteria's evidence, also the experimental design's space), every criterion's expected
score, and the mean uncertainty.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from models.artifact import ScoringModel
from models.contract import uses_embeddings
from scoring.errors import InvalidRequest
from scoring.evidence import criterion_text
from scoring.selection import (
    DESIGN_N,
    SelectionError,
    design_space,
    features,
    ordinal_uncertainty,
    select_rows,
)
from scoring.store import Store, queue
from scoring.store import tables as t
from scoring.store.service_tables import queue_items, submission_owners
from scoring.usecases.assessment import queue_reasons

METHOD = (f"transductive experimental design over the embeddings for the first {DESIGN_N} scores (Yu, Bi & Tresp 2006), "
          "then uncertainty-weighted greedy k-center over embeddings and expected scores "
          "(core-set, Sener & Savarese 2018), outliers set aside")
SELECTED_PRIORITY = queue.SELECTED_PRIORITY  # above ordinary human items (10), below double-scored ones (20)


@dataclass(frozen=True)
class Selected:
    """One submission to score first."""

    id: str
    rank: int
    uncertainty: float
    distance: float | None  # to the nearest text chosen before it; None for the first pick (nothing before it)
    machine_scores: dict[str, int]
    position: int  # its row among the candidates (backlog order)


def choose(model: ScoringModel, ids: Sequence[str], evidences: Sequence[Mapping[str, str]], n: int, seed: int = 13,
           exclude: Sequence[str] = ()) -> list[Selected]:
    """The ``n`` submissions (of ``ids``) whose human scores should teach ``model`` most, in order."""
    if len(ids) != len(evidences):
        raise SelectionError(f"expected one evidence per id, found {len(ids)} ids and {len(evidences)} evidences")
    if not ids:
        raise SelectionError("the backlog holds no submission to select from")
    from scoring.train import embed_unique

    rubric = model.rubric
    embs, scores, unc, decided = [], [], [], {}
    for c in rubric.criteria:
        texts = [criterion_text(rubric, c, dict(ev)) for ev in evidences]
        scorer = model.scorers[c.id]
        emb = embed_unique(model.encoder, texts)
        P = scorer.predict_proba(texts, embeddings=emb) if uses_embeddings(scorer) else scorer.predict_proba(texts)
        cls = np.asarray(scorer.classes_, float)
        embs.append(emb)
        scores.append((P @ cls - cls.min()) / ((cls.max() - cls.min()) or 1.0))
        unc.append(ordinal_uncertainty(P, cls))
        decided[c.id] = scorer.decide(P)
    E = np.mean(embs, axis=0)
    E /= np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    X = features(E, np.column_stack(scores))
    skip = set(exclude)
    mask = np.array([i in skip for i in ids], bool)
    picks = select_rows(X, np.mean(unc, axis=0), n, seed=seed, exclude=mask, design=design_space(E))
    return [Selected(id=str(ids[p.row]), rank=p.rank, uncertainty=p.uncertainty,
                     distance=round(p.distance, 4) if np.isfinite(p.distance) else None,
                     machine_scores={c: int(v[p.row]) for c, v in decided.items()}, position=p.row)
            for p in picks]


def write_queue_file(path: Path, selected: Sequence[Selected], model: ScoringModel, seed: int) -> Path:
    """One JSON line per chosen submission, in the order people should score them (atomic write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    crits = [c.id for c in model.rubric.criteria]
    with tmp.open("w", encoding="utf-8") as fh:
        for s in selected:
            row: dict[str, Any] = {"priority": s.rank, "id": s.id, "criteria": crits, "route": "human",
                                   "reason": "selected to teach the model", **asdict(s), "model_version": model.version,
                                   "method": METHOD, "seed": seed}
            row.pop("rank")
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def read_exclusions(path: Path, id_col: str = "id") -> list[str]:
    """Ids already scored or queued, from: a queue file (JSON lines with ``id``: an earlier selection or a
    scoring run's ``.queue.jsonl``), a CSV/TSV with an ``id_col`` column (the sheet people filled in), or one
    id a line (a first line equal to ``id_col`` is a header).

    Refused in words: a missing file, a JSON array, a CSV without the id column, and a scoring run's output
    (``scored.jsonl``: every submission the MACHINE scored, which would exclude the whole backlog)."""
    import csv

    from scoring.ingest import csv_delimiter

    if not path.is_file():
        raise SelectionError(f"--exclude {path} does not exist (or is not a file)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SelectionError(f"--exclude {path} is not UTF-8 (byte {exc.start}): re-save it as UTF-8") from None
    lines = [(n, ln.strip()) for n, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    if not lines:
        return []
    first = lines[0][1]
    if first.startswith("["):
        raise SelectionError(f"{path} is a JSON array: expected JSON lines (one object with an \"id\" a line), "
                             "a CSV with an id column, or one id a line")
    if first.startswith("{"):
        out = []
        for n, s in lines:
            try:
                obj = json.loads(s)
                out.append(str(obj["id"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise SelectionError(f"{path} line {n}: expected a JSON object with an \"id\", found {s[:60]}") from None
            if n == lines[0][0] and isinstance(obj.get("criteria"), dict) and "priority" not in obj:
                raise SelectionError(f"{path} is the output of `scoring score` (every submission the machine "
                                     "scored): expected ids people scored or were given, e.g. a queue file from "
                                     "`scoring select` or the sheet of human scores")
        return out
    delim = csv_delimiter(path, "tsv" if path.suffix.lower() in (".tsv", ".tab") else "csv")
    header = next(csv.reader([first], delimiter=delim))
    if len(header) > 1:  # a table: the id column, unless it is a scoring run's output (every machine score)
        if any(h.endswith(".route") or h.endswith(".p0") or h.endswith(".p1") for h in header):
            raise SelectionError(f"{path} is the output of `scoring score` (every submission the machine scored): "
                                 "expected ids people scored or were given")
        if id_col not in header:
            raise SelectionError(f"{path}: expected a column {id_col!r} (--id-col) holding the ids, found {header}")
        rows = csv.DictReader(text.splitlines()[lines[0][0] - 1:], delimiter=delim)
        return [str(r[id_col]).strip() for r in rows if str(r.get(id_col) or "").strip()]
    ids = [s for _n, s in lines]  # one id a line, with or without a header naming the id column
    return ids[1:] if ids[0] == id_col else ids


@dataclass(frozen=True)
class Filled:
    """What ``fill_queue`` did: the submissions queued, in order, and the slots created."""

    selected: list[dict[str, Any]]
    candidates: int
    slots_created: int
    method: str = METHOD
    slots_moved: int = 0


def fill_queue(store: Store, model: ScoringModel, n: int, seed: int = 13, owner: str | None = None) -> Filled:
    """Queue the ``n`` most informative stored submissions of the model's rubric for people to score.

    Candidates: submissions of the rubric version the model scores that no person has scored or started:
    ones with no queue item yet, and ones routing queued that are still waiting untouched (a day-one
    backlog scored without a policy queues every submission; without these the selection could not order
    that queue). An unqueued one becomes a ``human`` item for every criterion; a waiting one keeps its
    slots and routes, moved up (:func:`_move_up_in`). Either way it goes ahead of ordinary routed items, in
    selection order, and a second call picks among the rest. With ``owner`` (an issuer's key name) only that
    issuer's submissions are candidates: the answer names external ids and machine scores, and an issuer
    may neither read nor queue another issuer's submissions (``None``: every submission, for admins).
    """
    rubric = model.rubric
    q = (sa.select(t.submissions.c.id, t.submissions.c.external_id, t.submissions.c.evidence)
         .where(t.submissions.c.rubric_id == rubric.id, t.submissions.c.rubric_version == rubric.version)
         .order_by(t.submissions.c.id))
    if owner is not None:
        q = q.join(submission_owners, submission_owners.c.submission_id == t.submissions.c.id) \
             .where(submission_owners.c.owner == owner)
    with store.engine.connect() as conn:
        subs = conn.execute(q).all()
        scored = {r[0] for r in conn.execute(sa.select(t.human_scores.c.submission_id).distinct())}
        queued = {r[0] for r in conn.execute(sa.select(queue_items.c.submission_id).distinct())}
        waiting = {sid for sid, (st, _rows) in queue.standings(
            conn, [int(s.id) for s in subs if s.id in queued and s.id not in scored]).items() if st == "waiting"}
    cands = [s for s in subs if s.id not in scored and (s.id not in queued or s.id in waiting)]
    if not cands:
        whose = "" if owner is None else f" of issuer {owner}"
        raise InvalidRequest(f"rubric {rubric.key} has no stored submission{whose} that nobody has scored or "
                             "started and that is not already selected")
    try:
        chosen = choose(model, [str(s.id) for s in cands], [s.evidence or {} for s in cands], min(n, len(cands)), seed)
    except SelectionError as exc:
        raise InvalidRequest(str(exc)) from None
    made = moved = 0
    with store.write() as tx:
        still = queue.waiting_in(tx, [int(s.id) for s in chosen if int(s.id) in waiting])
        for s in chosen:
            why = f"selected to teach the model (rank {s.rank}, uncertainty {s.uncertainty:.2f})"
            if int(s.id) in waiting:  # queued by routing: its slots move up (a person took it meanwhile: left alone)
                moved += _move_up_in(tx, int(s.id), why, float(s.rank)) if int(s.id) in still else 0
                continue
            routes = {c.id: "human" for c in rubric.criteria}
            reasons = {c.id: why for c in rubric.criteria}
            made += queue.enqueue_in(tx, int(s.id), routes, reasons=reasons, priority=SELECTED_PRIORITY,
                                     rank=float(s.rank))
    by_id = {str(s.id): s for s in cands}
    return Filled(selected=[{"submission_id": int(s.id), "external_id": by_id[s.id].external_id, "rank": s.rank,
                             "uncertainty": s.uncertainty, "machine_scores": s.machine_scores} for s in chosen],
                  candidates=len(cands), slots_created=made, slots_moved=moved)


def _move_up_in(tx: Any, submission_id: int, why: str, rank: float) -> int:
    """Put a WAITING submission's open ``first``/``second`` slots ahead of ordinary routed items, at ``rank``
    among the selected (never lowering a slot already above them, such as a double-scored one), each
    criterion's reason now the selection's (its route kept, so a blind slot stays blind). Returns how many
    slots moved."""
    q = queue_items.c
    rows = tx.conn.execute(sa.select(queue_items).where(
        q.submission_id == submission_id, q.status == "open", q.kind.in_(queue.PEOPLE_KINDS))).all()
    for r in rows:
        crits = list(r.criteria)
        was = queue_reasons(r.reason or "", crits)
        reason = "; ".join(f"{c}: {was.get(c, (r.route, ''))[0] or r.route} ({why}"
                           + (f"; routed: {was[c][1]})" if was.get(c, ("", ""))[1] else ")") for c in crits)
        tx.conn.execute(queue_items.update().where(q.id == r.id).values(
            priority=max(int(r.priority), SELECTED_PRIORITY), rank=rank, reason=reason[:4000]))
    return len(rows)
