"""The credential decision once people have scored: recorded when every criterion is resolved.

The machine's decision is recorded with its scores (``intake.record_scored``). After each human score or
adjudication, :func:`finalize` looks at the submission again: when every criterion stands at a resolved
level (``scoring.credential.resolved_levels``) it appends a ``final`` decision, unless the latest final
decision already says the same. An audit rating that overturns an auto-accepted criterion therefore
changes the decision, visibly and on the record.
"""

from __future__ import annotations

from typing import Any

from scoring.credential import resolved_levels
from scoring.routing import adjudication_gap
from scoring.store import Store
from scoring.store.decisions import DecisionRecord, decision_in


def finalize(store: Store, policy: Any | None, submission_id: int, *, actor: str = "system") -> DecisionRecord | None:
    """Record the final decision of a submission whose criteria are all resolved; None while any is not
    (or when its rubric has no award rule)."""
    sub = store.submission(submission_id)
    rubric = store.rubric(sub.rubric_id, sub.rubric_version)
    if rubric.award is None:
        return None
    machine = {}
    for m in store.machine_scores(submission_id=submission_id):
        machine[m.criterion] = m
    adjudicated = {a.criterion: a.score for a in store.adjudications(submission_id=submission_id)}
    levels = resolved_levels(rubric, machine, store.human_scores(submission_id=submission_id), adjudicated,
                             lambda c: adjudication_gap(policy, c))
    if levels is None:
        return None
    outcome = "earned" if rubric.award.earned(rubric, levels) else "not_yet"
    with store.write() as tx:  # re-read inside the writer lock: two finalizers record one decision
        finals = [d for d in store.decisions(submission_id=submission_id, basis="final")]
        if finals and finals[-1].outcome == outcome and finals[-1].levels == levels:
            return finals[-1]
        latest = next(iter(machine.values()), None)
        decision_in(tx, submission_id, rubric.id, rubric.version, outcome, "final", levels,
                    reason=f"every criterion resolved ({actor}): {levels}",
                    model_version=latest.model_version if latest else None,
                    policy_version=latest.policy_version if latest else None)
    return store.latest_decision(submission_id)
