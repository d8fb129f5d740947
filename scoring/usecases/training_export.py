"""The store's human scores as a training and calibration file (``scoring export training``).

Why: assessors score through the queue and the store keeps every rating, but ``scoring train`` and
``scoring calibrate`` read files. Without this, retraining on the scores people gave means rebuilding a
sheet by hand from the database. The file this writes trains with no column options (evidence columns
and one column per criterion, named as the rubric names them) and names the columns calibration needs.

Per criterion three columns, because training and calibration need different human scores:

* ``<criterion>``: the level the criterion stands at by people, by the rule credential decisions use
  (:func:`scoring.credential.human_level`: the adjudicated score; else the ratings when they agree within
  the adjudication gap: the first, else the second, else the audit). Ratings further apart than the gap and
  not yet adjudicated, and a double-scored criterion only one rater has scored, give no level (counted).
  This is the training label.
* ``<criterion>_blind``: the reference the report compares the machine with (the blind first rating, else
  the blind second, else the latest blind audit): calibration labels. A first rating given on a
  ``human``-route item, with the machine's level on the page, is anchored on it; calibrating against it
  would let the machine agree with itself and certify rules it should not.
* ``<criterion>_rater2``: the second rater's blind score where the first rating is blind too: the
  human-human bar (``--second-score-col``). Pairs where one rater saw the other's score or the machine's
  are left out, as the report leaves them out.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rubrics.schema import Rubric
from scoring.credential import human_level
from scoring.errors import InvalidRequest
from scoring.routing import adjudication_gap
from scoring.store import Store

BLIND_SUFFIX = "_blind"
RATER2_SUFFIX = "_rater2"


@dataclass
class Exported:
    out: Path
    rubric: str
    rows: int = 0
    submissions: int = 0  # of the rubric version (and issuer)
    unscored: int = 0  # no human level on any criterion: left out (unless asked for)
    labelled: Counter[str] = field(default_factory=Counter)  # criterion -> rows with a standing level
    blind: Counter[str] = field(default_factory=Counter)
    pairs: Counter[str] = field(default_factory=Counter)  # criterion -> blind first + blind second
    disputed: Counter[str] = field(default_factory=Counter)  # ratings beyond the gap, not yet adjudicated
    awaiting_second: Counter[str] = field(default_factory=Counter)  # double-scored, one blind rater so far

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["out"] = str(self.out)
        for k in ("labelled", "blind", "pairs", "disputed", "awaiting_second"):
            d[k] = dict(sorted(d[k].items()))
        return d


def export_training(store: Store, rubric: Rubric, out: Path, *, issuer: str | None = None, unscored: bool = False,
                    overwrite: bool = False) -> Exported:
    """Write the rubric version's submissions with their human scores to ``out`` (.csv or .jsonl), whole or
    not at all (a temporary file renamed into place; nothing when no row qualifies). See the module
    docstring for the columns."""
    from eval.agreement import blind_reference
    from scoring.store import jobs
    from scoring.store.policy_log import logged_policy

    suffix = out.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise InvalidRequest(f"--out {out}: expected a .csv or .jsonl file name")
    if out.exists() and not overwrite:
        raise InvalidRequest(f"--out {out} already exists: choose another name, or pass --overwrite to replace it")
    policy = logged_policy(store, rubric.id)  # the gaps the service applies to this rubric
    subs = [s for s in store.submissions(rubric.id) if s.rubric_version == rubric.version]
    if issuer is not None:
        with store.engine.connect() as conn:
            owners = jobs.owners_of(conn, [s.id for s in subs])
        subs = [s for s in subs if owners.get(s.id) == issuer]
    res = Exported(out, rubric.key, submissions=len(subs))
    humans: dict[tuple[int, str], list[Any]] = {}
    for h in store.human_scores(rubric_id=rubric.id, rubric_version=rubric.version):
        if h.kind in ("first", "second", "audit"):
            humans.setdefault((h.submission_id, h.criterion), []).append(h)
    adjudicated = {(a.submission_id, a.criterion): a.score for a in store.adjudications()}  # latest wins
    routes = {(m.submission_id, m.criterion): m.route  # latest wins: the route the credential rule reads
              for m in store.machine_scores(rubric_id=rubric.id, rubric_version=rubric.version)}
    crits = [c.id for c in rubric.criteria]
    fields = ["id", *rubric.evidence, *crits, *(c + BLIND_SUFFIX for c in crits), *(c + RATER2_SUFFIX for c in crits)]
    meta = meta_columns(subs, set(fields))
    fields += list(meta.values())
    rows: list[dict[str, Any]] = []
    for s in subs:
        row: dict[str, Any] = {"id": s.external_id, **{f: (s.evidence or {}).get(f, "") for f in rubric.evidence}}
        for key, col in meta.items():
            v = (s.metadata or {}).get(key)
            row[col] = v if v is None or isinstance(v, str | int | float | bool) else json.dumps(v, ensure_ascii=False)
        any_level = False
        for c in crits:
            rated = humans.get((s.id, c), [])
            level, waiting = human_level(rated, adjudicated.get((s.id, c)), adjudication_gap(policy, c),
                                         routes.get((s.id, c)))
            ref = blind_reference(rated)
            first = next((h for h in rated if h.kind == "first"), None)
            second = next((h for h in rated if h.kind == "second"), None)
            pair = second is not None and second.blind and first is not None and first.blind
            row[c] = level
            row[c + BLIND_SUFFIX] = None if ref is None else int(ref.score)
            row[c + RATER2_SUFFIX] = int(second.score) if pair and second is not None else None
            res.disputed[c] += waiting == "adjudication"
            res.awaiting_second[c] += waiting == "second rating"
            res.labelled[c] += level is not None
            res.blind[c] += ref is not None
            res.pairs[c] += bool(pair)
            any_level = any_level or level is not None or ref is not None
        if any_level or unscored:
            rows.append(row)
        else:
            res.unscored += 1
    res.rows = len(rows)
    if rows:  # no file for nothing: an empty one would only block the next export to that name
        _write_whole(out, fields, rows, suffix, overwrite)
    return res


def meta_columns(subs: list[Any], taken: set[str]) -> dict[str, str]:
    """Metadata key -> column name for every key the submissions carry (``--meta-col`` at scoring: school,
    cohort, ...), so that a retrained model's subgroup report and a retraining with ``--meta-col`` keep them.
    A key that would collide with an evidence, criterion or id column is written as ``meta_<key>``."""
    keys = sorted({k for s in subs for k in (s.metadata or {}) if isinstance(k, str)})
    out: dict[str, str] = {}
    for k in keys:
        col = k if k not in taken else f"meta_{k}"
        while col in taken:
            col = f"meta_{col}"
        out[k] = col
        taken.add(col)
    return out


def _write_whole(out: Path, fields: list[str], rows: list[dict[str, Any]], suffix: str, overwrite: bool) -> None:
    """Write to a temporary file beside ``out`` and move it into place: a kill leaves the old file or none.
    Without ``overwrite`` the move is a hard link, which fails if ``out`` appeared meanwhile (another run, a
    user's sheet), so nothing is ever replaced silently."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            if suffix == ".csv":
                w = csv.DictWriter(fh, fieldnames=fields)
                w.writeheader()
                w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
            else:
                for r in rows:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        if overwrite:
            os.replace(tmp, out)
        else:
            try:
                os.link(tmp, out)
            except FileExistsError:
                raise InvalidRequest(f"--out {out} was created while the export ran: nothing replaced; choose another "
                                     "name, or pass --overwrite") from None
    finally:
        tmp.unlink(missing_ok=True)
