"""Routing: for every submission x criterion, accept the machine score or send it to people.

Routes
  * ``auto``   the machine score is accepted (calibrated confidence and conformal set within the
               criterion's thresholds, the machine's own score inside its conformal set, criterion
               not suspended);
  * ``audit``  accepted like ``auto`` but also sent blind to one human: a random ``audit_rate`` share of
               the auto-accepted items, so machine-human agreement keeps being measured after launch;
  * ``human``  one human scores it (low confidence, set too wide, no tuned threshold, suspended);
  * ``double`` two blind humans score it: a random ``double_rate`` share of ALL items (whatever the
               machine would have done, recorded in the reason), so human-human agreement is measured
               on the same population the machine is judged on.
Two human scores further apart than the policy's gap go to adjudication (:func:`needs_adjudication`).

Randomness is a hash of (policy version, draw kind, submission id, criterion), never a global RNG: the
same item under the same policy always gets the same route, so a resumed batch job writes identical
rows and an auditor can recompute every draw.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from scoring.errors import PolicyError
from scoring.policy import CriterionPolicy, RoutingPolicy

ROUTES = ("auto", "audit", "human", "double")
HUMAN_ROUTES = ("audit", "human", "double")  # everything a person must look at
ACCEPTED_ROUTES = ("auto", "audit")  # the machine's score stands (audit: and a blind human checks it)


class SuspensionSource(Protocol):
    def is_suspended(self, rubric_id: str, criterion: str) -> bool: ...


@dataclass(frozen=True)
class RouteDecision:
    route: str
    rule: str  # which rule decided: confident, low_confidence, set_too_wide, no_threshold, suspended, ...
    reason: str  # one human-readable line with the numbers behind the rule
    confidence: float | None
    prediction_set: list[int] | None
    # what the policy's rule decided before the random double / audit draws: "auto" (the rule accepts the
    # machine score) or "human"; a ``double`` item with machine_rule "auto" is an accepted item two people check
    machine_rule: str | None = None

    def to_extra(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "rule": self.rule,
            "reason": self.reason,
            "confidence": None if self.confidence is None else round(self.confidence, 6),
            "prediction_set": self.prediction_set,
            "machine_rule": self.machine_rule,
        }


def accepted_by_rule(route: str | None, machine_rule: str | None = None, reason: str | None = None) -> bool:
    """Did the policy's rule accept the machine score? ``auto`` / ``audit``, or a ``double`` sample whose
    rule was ``auto``. Reads the structured ``machine_rule`` field of routed output files; where there is
    none (``machine_rule`` None: store rows, which keep the reason but no such column, and files written
    without the field) the reason text decides ("machine rule: auto")."""
    if route in ACCEPTED_ROUTES:
        return True
    if route != "double":
        return False
    if machine_rule is not None:
        return machine_rule == "auto"
    return "machine rule: auto" in str(reason or "")


def uniform_draw(policy_version: str, kind: str, submission_id: str, criterion: str) -> float:
    """A reproducible number in [0, 1) for one item (same inputs, same number, on any machine)."""
    h = hashlib.sha256(f"{policy_version}\x1f{kind}\x1f{submission_id}\x1f{criterion}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def confidence_of(proba: np.ndarray, classes: Sequence[int], scores: np.ndarray, cp: CriterionPolicy) -> np.ndarray:
    """Probability that the human agrees with the decided score (exactly, or within ``tolerance`` levels)."""
    P = np.asarray(proba, float)
    idx = np.searchsorted(np.asarray(classes), np.asarray(scores))
    tol = cp.tolerance if cp.confidence == "within" else 0
    K = P.shape[1]
    cum = np.concatenate([np.zeros((P.shape[0], 1)), np.cumsum(P, axis=1)], axis=1)
    lo = np.clip(idx - tol, 0, K)
    hi = np.clip(idx + tol + 1, 0, K)
    return cum[np.arange(len(idx)), hi] - cum[np.arange(len(idx)), lo]


def decide_routes(
    ids: Sequence[str],
    criterion: str,
    proba: np.ndarray,
    scores: np.ndarray,
    classes: Sequence[int],
    sets: np.ndarray | None,
    policy: RoutingPolicy,
    suspended: bool = False,
) -> list[RouteDecision]:
    """Routes for one criterion over a block of submissions (pure: same inputs, same routes).

    ``sets`` is the boolean (n, K) conformal set matrix, or None when the scorer has no conformal layer.
    """
    cp = policy.criteria.get(criterion)
    classes = list(classes)
    conf = confidence_of(proba, classes, scores, cp) if cp is not None else np.full(len(ids), np.nan)
    out: list[RouteDecision] = []
    for i, sid in enumerate(ids):
        pset = [int(classes[k]) for k in np.flatnonzero(sets[i])] if sets is not None else None
        c = None if np.isnan(conf[i]) else float(conf[i])
        size = len(pset) if pset is not None else None
        if suspended:
            route, rule, why = "human", "suspended", f"automation of {criterion!r} is suspended"
        elif cp is None or not cp.enabled:
            route, rule, why = "human", "no_threshold", f"policy {policy.policy_version} has no enabled thresholds for {criterion!r}"
        elif cp.max_set_size is not None and size is None:
            route, rule, why = "human", "no_conformal", "policy limits the set size but the model has no conformal layer"
        elif pset is not None and int(scores[i]) not in pset:
            route, rule, why = "human", "score_outside_set", f"machine score {int(scores[i])} is not in its conformal set"
        elif cp.max_set_size is not None and size is not None and size > cp.max_set_size:
            route, rule, why = "human", "set_too_wide", f"set size {size} > {cp.max_set_size}"
        elif c is None or c < cp.min_confidence:
            route, rule, why = "human", "low_confidence", f"confidence {c:.3f} < {cp.min_confidence:.3f}"
        else:
            route, rule = "auto", "confident"
            why = f"confidence {c:.3f} >= {cp.min_confidence:.3f}" + (
                f", set size {size} <= {cp.max_set_size}" if cp.max_set_size is not None else ""
            )
        machine_rule = route
        if not suspended and uniform_draw(policy.policy_version, "double", sid, criterion) < policy.double_rate:
            why = f"random double-scoring sample ({policy.double_rate:.0%}); machine rule: {route} ({why})"
            route, rule = "double", "double_sample"
        elif route == "auto" and uniform_draw(policy.policy_version, "audit", sid, criterion) < policy.audit_rate:
            route, rule, why = "audit", "audit_sample", f"random blind audit ({policy.audit_rate:.0%}); {why}"
        if size is not None:
            why += f"; set {pset}"
        out.append(RouteDecision(route, rule, why, c, pset, machine_rule))
    return out


DEFAULT_ADJUDICATION_GAP = 1  # without a policy: ratings more than one level apart are adjudicated


def adjudication_gap(policy: RoutingPolicy | None, criterion: str | None = None) -> int:
    """The largest difference between two human ratings that stands without adjudication."""
    if policy is None:
        return DEFAULT_ADJUDICATION_GAP
    return int(policy.gap_for(criterion)) if criterion is not None else int(policy.adjudication_gap)


def needs_adjudication(scores: Sequence[int | None], policy: RoutingPolicy | None, criterion: str | None = None) -> bool:
    """The one rule: two or more human scores that differ by more than the (criterion's) adjudication gap."""
    vals = [int(s) for s in scores if s is not None]
    return len(vals) >= 2 and max(vals) - min(vals) > adjudication_gap(policy, criterion)


# ----------------------------------------------------------------------------------- batch hook


def routing_hook(model: Any, policy: RoutingPolicy, store: SuspensionSource | None = None) -> Callable[[list[Any], list[Any]], None]:
    """A ``scoring.batch.run_batch`` hook adding route, rule, reason, confidence and prediction_set.

    Deterministic per block (hash draws; suspensions read once when the hook is built, so a job resumed
    mid-way routes with the state it started with).
    """
    policy.check_model(model.version, model.rubric.id)
    suspended = {c.id: bool(store is not None and store.is_suspended(model.rubric.id, c.id)) for c in model.rubric.criteria}

    def hook(items: list[Any], records: list[Any]) -> None:
        if not items:
            return
        ids = [it.id for it in items]
        for crit in model.rubric.criteria:
            scorer = model.scorers[crit.id]
            P = np.array([[it.criteria[crit.id].probabilities[lv] for lv in crit.scores] for it in items])
            scores = np.array([it.criteria[crit.id].score for it in items])
            sets = scorer.prediction_set(P, policy.coverage) if hasattr(scorer, "prediction_set") else None
            for it, d in zip(items, decide_routes(ids, crit.id, P, scores, crit.scores, sets, policy, suspended[crit.id]), strict=True):
                it.criteria[crit.id].extra.update(d.to_extra())
        if model.rubric.award is not None:  # the credential decision, and its deciding criteria to a person
            from scoring.credential import decide_items

            decide_items(model.rubric, policy, items)

    return hook


ROUTE_COLS = ["route", "rule", "reason", "confidence", "prediction_set", "machine_rule"]


def write_queue(out: str | Path, queue: str | Path | None = None, order: str = "uncertain") -> Path:
    """Write the routed (non-auto) items of a scored output file as a priority queue (JSONL).

    Built from the finished output file (not from the hook), so a killed-and-resumed job cannot enqueue
    a block twice. ``uncertain``: lowest confidence first; ``oldest``: input order (the backlog order).
    Ties keep input order.
    """
    out = Path(out)
    queue = Path(queue) if queue is not None else out.with_name(out.stem + ".queue.jsonl")
    if order not in ("uncertain", "oldest"):
        raise PolicyError(f"queue order must be 'uncertain' or 'oldest', found {order!r}")
    entries: list[dict[str, Any]] = []
    for pos, (sid, mv, crit, res) in enumerate(_routed_rows(out)):
        if res.get("route") in HUMAN_ROUTES:
            entries.append(
                {
                    "id": sid,
                    "criterion": crit,
                    "route": res["route"],
                    "rule": res.get("rule"),
                    "reason": res.get("reason"),
                    "confidence": res.get("confidence"),
                    "prediction_set": res.get("prediction_set"),
                    "machine_score": res.get("score"),
                    "model_version": mv,
                    "input_position": pos,
                    "blind": res["route"] in ("audit", "double"),
                }
            )

    def key(e: dict[str, Any]) -> tuple[float, int]:
        if order == "oldest":
            return (0.0, e["input_position"])
        c = e["confidence"]
        return (c if c is not None else -1.0, e["input_position"])

    entries.sort(key=key)
    tmp = queue.with_name(queue.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for rank, e in enumerate(entries, start=1):
            fh.write(json.dumps({"priority": rank, **e}, ensure_ascii=False) + "\n")
    tmp.replace(queue)
    return queue


def _routed_rows(out: Path) -> Any:
    """(id, model_version, criterion, result dict) for every criterion of every output row."""
    if out.suffix.lower() == ".jsonl":
        with out.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    obj = json.loads(line)
                    for crit, res in obj["criteria"].items():
                        yield obj["id"], obj.get("model_version"), crit, res
        return
    with out.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            crits = [k[: -len(".route")] for k in row if k.endswith(".route")]
            for crit in crits:
                fields: dict[str, Any] = {c: row.get(f"{crit}.{c}") or None for c in ROUTE_COLS}
                fields["score"] = int(row[crit]) if row.get(crit) not in (None, "") else None
                fields["confidence"] = float(fields["confidence"]) if fields["confidence"] else None
                fields["prediction_set"] = json.loads(fields["prediction_set"]) if fields["prediction_set"] else None
                yield row["id"], None, crit, fields


# ----------------------------------------------------------------------------------- `scoring score --policy`


def load_policy_for(model: Any, policy_path: str | Path) -> RoutingPolicy:
    """Load a policy and check it was tuned for this model and names only the rubric's criteria (a typo
    would otherwise leave that criterion silently routed to humans)."""
    from scoring.policy import load_policy

    policy = load_policy(policy_path)
    policy.check_model(model.version, model.rubric.id)
    known = [c.id for c in model.rubric.criteria]
    unknown = sorted(set(policy.criteria) - set(known))
    if unknown:
        raise PolicyError(f"policy {policy_path} sets thresholds for {unknown}, which rubric {model.rubric.key} "
                          f"does not have (criteria: {known})")
    return policy
