"""Credential decisions in the report: outcomes, resubmissions and time to earn, and agreement on the
decision itself (not only on criteria): human-human and machine vs final, with false-award and false-deny
rates. Computed from the store's recorded decisions and scores, like every other table.

``since`` (inclusive) and ``until`` (exclusive) place each row by the time of what it reports or judges, as
the agreement tables place a pair by its machine score (or second rater's score) and count the other score
whenever it was recorded: :func:`decision_summary` a submission by its standing (latest) decision,
:func:`decision_agreement` a pair by the machine's decision (human-human: by the second rater's scores).
A bound without a timezone is read as UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score

from eval.agreement import blind_reference
from scoring.store import Store
from scoring.usecases.intake import REVISES  # the metadata key of a resubmission


def decision_kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's kappa on earned / not yet; None where it is undefined (fewer than two items or one class)."""
    if len(a) < 2 or len(set(a) | set(b)) < 2:
        return None
    k = cohen_kappa_score(a, b, labels=["earned", "not_yet"])
    return None if np.isnan(k) else float(k)


def in_window(at: datetime, since: datetime | None, until: datetime | None) -> bool:
    """Whether ``at`` lies in [since, until); a naive bound (or time) is read as UTC."""

    def utc(t: datetime) -> datetime:
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t

    return (since is None or utc(at) >= utc(since)) and (until is None or utc(at) < utc(until))


def decision_summary(store: Store, rubric_id: str | None = None, *, since: datetime | None = None,
                     until: datetime | None = None) -> pd.DataFrame:
    """Per rubric: latest decision counts, resubmissions and their rate, median days from first submission
    to an earned decision along a resubmission chain.

    With ``since``/``until``, a submission counts when its standing (latest) decision, the one the row
    reports, was recorded in the window: a March report counts the credentials decided in March as they
    stand now, and a submission the machine sent to a person in March and that was finally decided in April
    is an April decision. Each decided submission so falls in one window (the decision counts of
    consecutive windows add up to those of the report without one). Every column is computed over those
    submissions (``resubmissions``: the ones among them that revise an earlier submission; without a window,
    every submission of the rubric that does); the rest of a resubmission chain (the earlier submission, a
    later revision, the first submission's time) counts whenever it was recorded."""
    windowed = since is not None or until is not None
    cols = ["rubric_id", "submissions_decided", "earned", "not_yet", "needs_human", "resubmissions",
            "resubmission_rate_after_not_yet", "earned_after_resubmission", "median_days_to_earn"]
    subs = {s.id: s for s in store.submissions(rubric_id)}
    latest: dict[int, Any] = {}
    for d in store.decisions(rubric_id=rubric_id):
        latest[d.submission_id] = d
    if windowed:
        latest = {sid: d for sid, d in latest.items() if in_window(d.created_at, since, until)}
    rows = []
    for rid in sorted({s.rubric_id for s in subs.values()}):
        mine = {sid: s for sid, s in subs.items() if s.rubric_id == rid}
        by_ext = {s.external_id: s for s in mine.values()}
        dec = {sid: latest[sid] for sid in mine if sid in latest}
        if not dec:
            continue
        revised = {str(s.metadata.get(REVISES)) for s in mine.values() if s.metadata.get(REVISES)}
        resubs = [s for s in mine.values() if s.metadata.get(REVISES) and (not windowed or s.id in dec)]
        not_yet = [sid for sid, d in dec.items() if d.outcome == "not_yet"]
        days = []
        earned_after = 0
        for sid, d in dec.items():
            if d.outcome != "earned":
                continue
            first, seen = mine[sid], set()
            while first.metadata.get(REVISES) and str(first.metadata[REVISES]) in by_ext and first.id not in seen:
                seen.add(first.id)
                first = by_ext[str(first.metadata[REVISES])]
            if first.id != sid:
                earned_after += 1
            days.append((d.created_at - first.created_at).total_seconds() / 86400)
        rows.append({
            "rubric_id": rid, "submissions_decided": len(dec),
            **{o: sum(d.outcome == o for d in dec.values()) for o in ("earned", "not_yet", "needs_human")},
            "resubmissions": len(resubs),
            "resubmission_rate_after_not_yet": (sum(mine[s].external_id in revised for s in not_yet) / len(not_yet)
                                                if not_yet else None),
            "earned_after_resubmission": earned_after,
            "median_days_to_earn": float(np.median(days)) if days else None,
        })
    return pd.DataFrame(rows, columns=cols)


def blind_levels(scores: list[Any], criteria: list[str]) -> dict[str, int] | None:
    """Each criterion's level from a person who did not see the machine's score (:func:`blind_reference`,
    the reference of the agreement tables too); None unless every criterion has one.

    The ``final`` decision cannot serve here: an auto-accepted criterion resolves to the machine's own level,
    so "machine vs final" partly compares the machine with itself."""
    out: dict[str, int] = {}
    for c in criteria:
        pick = blind_reference([h for h in scores if h.criterion == c])
        if pick is None:
            return None
        out[c] = pick.score
    return out


def decision_agreement(store: Store, rubric_id: str | None = None, *, since: datetime | None = None,
                       until: datetime | None = None) -> pd.DataFrame:
    """Agreement on the credential decision, per rubric version.

    ``human-human``: where a first and a second rater scored every criterion, each rater's levels through
    the award rule. ``machine vs final``: the machine's decision on its own levels against the final
    decision (every criterion resolved): how often review changed it, since auto-accepted criteria resolve
    to the machine's levels. ``machine vs blind human``: the machine's decision against the award rule on
    blind human levels (:func:`blind_levels`), where every criterion has one: how often it decides as an
    independent person would. False award: the other says earned where the reference says not yet; false
    deny the reverse; both as shares of the compared submissions.

    With ``since``/``until``, a pair is in the window when the decision it judges was made there, as in the
    agreement tables: the machine's decision (recorded with its machine scores, so the submissions of the
    window's human-machine pairs) for ``machine vs final`` and ``machine vs blind human``, whatever time the
    final decision or the blind human scores were recorded; for ``human-human``, the second rater's score
    that completed the pair (the latest of the second rater's scores it uses, one per criterion). A
    submission decided by the machine in March and reviewed in April is in the March figures. The machine's
    decision is the latest recorded before the first final decision: a policy applied, or a retrained model,
    may re-decide a submission nobody had started, and the review answered that decision.
    """
    cols = ["rubric_id", "rubric_version", "pair", "n", "agreement", "kappa", "false_award_rate", "false_deny_rate"]
    rows: list[dict[str, Any]] = []
    subs = {s.id: s for s in store.submissions(rubric_id)}
    keyed: dict[tuple[str, int], list[int]] = {}
    for sid, s in subs.items():
        keyed.setdefault((s.rubric_id, s.rubric_version), []).append(sid)
    decisions: dict[int, list[Any]] = {}
    for d in store.decisions(rubric_id=rubric_id):
        decisions.setdefault(d.submission_id, []).append(d)
    humans: dict[int, list[Any]] = {}
    for h in store.human_scores(rubric_id=rubric_id):
        humans.setdefault(h.submission_id, []).append(h)
    for (rid, ver), sids in sorted(keyed.items()):
        rubric = store.rubric(rid, ver)
        if rubric.award is None:
            continue
        crit = [c.id for c in rubric.criteria]
        pairs: dict[str, tuple[list[str], list[str]]] = {"human-human": ([], []), "machine vs final": ([], []),
                                                         "machine vs blind human": ([], [])}
        for sid in sids:
            hs = humans.get(sid, [])
            # both raters blind, as in the human-human agreement table: one who saw the other's score agrees more
            first = {h.criterion: h.score for h in hs if h.kind == "first" and h.blind}
            second = {h.criterion: h.score for h in hs if h.kind == "second" and h.blind}
            second_at = {h.criterion: h.created_at for h in hs if h.kind == "second" and h.blind}
            if all(c in first and c in second for c in crit) and (
                    not crit or in_window(max(second_at[c] for c in crit), since, until)):
                for lv, lst in ((first, pairs["human-human"][0]), (second, pairs["human-human"][1])):
                    lst.append("earned" if rubric.award.earned(rubric, lv) else "not_yet")
            ds = decisions.get(sid, [])
            # the machine decision the review started from: the latest one recorded before the first final
            # decision (a later policy or retrained model may have re-decided a submission nobody had started)
            first_final = next((d.id for d in ds if d.basis == "final"), None)
            machine = next((d for d in reversed(ds) if d.basis == "machine"
                            and (first_final is None or d.id < first_final)), None)
            if machine is not None and not in_window(machine.created_at, since, until):
                machine = None  # decided outside the window: neither machine pair counts it
            final = [d for d in ds if d.basis == "final"]
            said = None if machine is None else "earned" if rubric.award.earned(rubric, machine.levels) else "not_yet"
            if said is not None and final:
                pairs["machine vs final"][0].append(said)
                pairs["machine vs final"][1].append(final[-1].outcome)
            blind = blind_levels(hs, crit)
            if said is not None and blind is not None:
                pairs["machine vs blind human"][0].append(said)
                pairs["machine vs blind human"][1].append("earned" if rubric.award.earned(rubric, blind) else "not_yet")
        for name, (other, ref) in pairs.items():
            if name == "human-human":
                other, ref = ref, other  # first rater is the reference
            n = len(ref)
            if not n:
                continue
            rows.append({
                "rubric_id": rid, "rubric_version": ver, "pair": name, "n": n,
                "agreement": float(np.mean([a == b for a, b in zip(other, ref, strict=True)])),
                "kappa": decision_kappa(ref, other),
                "false_award_rate": float(np.mean([o == "earned" and r == "not_yet" for o, r in zip(other, ref, strict=True)])),
                "false_deny_rate": float(np.mean([o == "not_yet" and r == "earned" for o, r in zip(other, ref, strict=True)])),
            })
    return pd.DataFrame(rows, columns=cols)
