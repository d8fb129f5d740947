"""Drift monitor: the rolling blind-audit sample of each criterion, judged by the gate policy.

Routing sends a random share of auto-scored items to a human who does not see the machine score (a blind
``audit`` human score). For each criterion the monitor takes the most recent ``window`` audit items whose
machine score came from the rubric's currently promoted model (any model if none is promoted), computes
agreement and applies the policy gates. A failing gate suspends automation of that criterion in the store
(logged in the audit chain) until a new model is promoted for the rubric, which lifts the suspension; the
new model's audit sample then starts from empty.

The monitor also re-checks the routing policy's promise with ``scoring.policy_check`` (the check behind
``scoring policy check``): on the recent double-scored items the machine rule had accepted (routed ``double``
with machine rule ``auto``, two blind humans), is machine-human agreement at least human-human agreement?
It judges with the statistic and rater scale the routing policy recorded when it was chosen
(``scoring.policy_check.policy_bar``, the same helper ``scoring policy check`` uses): the policy passed in,
else the ``policy.yaml`` kept beside the promoted model, else the scale's default. Its result is
``DriftResult.extra["policy_check"]``; a ``fail`` (the 95% interval of the difference wholly below 0)
suspends automation like a failing gate.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from eval.agreement import agreement_metrics
from eval.gates import GatePolicy, GateResult, evaluate_gates, load_policy
from rubrics.schema import parse_rubric
from scoring.errors import ScoringError
from scoring.policy import RoutingPolicy
from scoring.policy_check import MIN_N, CriterionCheck, check_criterion, policy_bar
from scoring.routing import accepted_by_rule
from scoring.store import HumanScoreIn, Store

ROUTING_POLICY_FILE = "policy.yaml"  # the routing policy kept beside a model version (scoring.usecases.registry)


@dataclass(frozen=True)
class AuditSample:
    human: list[int]
    machine: list[int]
    model_version: str | None
    models: dict[str, int] = field(default_factory=dict)  # model version -> audit items it scored, in the sample


@dataclass(frozen=True)
class DriftResult:
    rubric_id: str
    criterion: str
    model_version: str | None
    window: int
    metrics: dict[str, Any]
    gate: GateResult
    suspended_now: bool = False
    already_suspended: bool = False
    human_human_qwk: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def audit_sample(store: Store, rubric_id: str, criterion: str, window: int,
                 model_version: str | None = None) -> AuditSample:
    """The most recent ``window`` blind audit scores paired with the machine score they audit."""
    machines: dict[int, Any] = {}
    for m in store.machine_scores(rubric_id=rubric_id, criterion=criterion, model_version=model_version):
        machines[m.submission_id] = m  # latest wins
    audits = [h for h in store.human_scores(rubric_id=rubric_id, criterion=criterion, kind="audit")
              if h.blind and h.submission_id in machines]
    audits.sort(key=lambda h: (h.created_at, h.id))
    recent = audits[-window:] if window > 0 else audits
    models: dict[str, int] = {}
    for h in recent:
        mv = machines[h.submission_id].model_version or "unversioned"
        models[mv] = models.get(mv, 0) + 1
    return AuditSample([h.score for h in recent], [machines[h.submission_id].score for h in recent], model_version,
                       dict(sorted(models.items())))


def _human_human_qwk(store: Store, rubric_id: str, criterion: str, labels: list[int],
                     min_n: int) -> tuple[float | None, int, int]:
    """The human-human reference QWK (None under ``min_n`` pairs) on the pairs where both raters scored blind,
    how many pairs were left out because one did not (eval.agreement.human_human_pairs' rule), and how many
    blind pairs there are (the gate says why a reference is missing from them)."""
    first: dict[int, Any] = {}
    second: dict[int, Any] = {}
    for h in store.human_scores(rubric_id=rubric_id, criterion=criterion):
        if h.kind == "first":
            first.setdefault(h.submission_id, h)
        elif h.kind == "second":
            second.setdefault(h.submission_id, h)
    pairs = [k for k in first if k in second]
    both = [k for k in pairs if first[k].blind and second[k].blind]
    left_out = len(pairs) - len(both)
    if len(both) < min_n:
        return None, left_out, len(both)
    return agreement_metrics([first[k].score for k in both], [second[k].score for k in both],
                             labels).get("qwk"), left_out, len(both)


def accepted_double_scored(store: Store, rubric_id: str, criterion: str, window: int,
                           model_version: str | None = None) -> tuple[list[int], list[int], list[int]]:
    """(machine, first, second) scores of the most recent ``window`` double-scored items the rule accepted."""
    machines: dict[int, Any] = {}
    for m in store.machine_scores(rubric_id=rubric_id, criterion=criterion, model_version=model_version):
        machines[m.submission_id] = m  # latest wins
    accepted = {k: m for k, m in machines.items()
                if accepted_by_rule(m.route, None, m.reason)}  # store rows keep the reason, not machine_rule
    first: dict[int, Any] = {}
    second: dict[int, Any] = {}
    for h in store.human_scores(rubric_id=rubric_id, criterion=criterion):
        if h.submission_id in accepted and h.blind:
            (first if h.kind == "first" else second if h.kind == "second" else {}).setdefault(h.submission_id, h)
    both = sorted((k for k in first if k in second and first[k].assessor != second[k].assessor),
                  key=lambda k: (max(first[k].created_at, second[k].created_at), k))
    recent = both[-window:] if window > 0 else both
    return ([accepted[k].score for k in recent], [first[k].score for k in recent], [second[k].score for k in recent])


def promise_check(store: Store, rubric_id: str, criterion: str, levels: list[int], window: int,
                  model_version: str | None = None, min_n: int = MIN_N,
                  routing_policy: RoutingPolicy | None = None) -> CriterionCheck:
    """The policy check (``scoring policy check``) on the store's recent accepted double-scored items, on the
    bar ``routing_policy`` recorded for the criterion (:func:`scoring.policy_check.policy_bar`)."""
    m, a, b = accepted_double_scored(store, rubric_id, criterion, window, model_version)
    cp = routing_policy.criteria.get(criterion) if routing_policy is not None else None
    stat, mult = policy_bar(cp, len(levels))
    return check_criterion(criterion, np.array(m, float), np.array(a, float), np.array(b, float),
                           statistic=stat, min_n=min_n, rater_multiplier=mult)


def promoted_routing_policy(store: Store, rubric_id: str) -> RoutingPolicy | None:
    """The routing policy kept beside the rubric's promoted model (``<model dir>/policy.yaml``), if any."""
    from scoring.policy import load_policy

    promoted = store.promoted_model(rubric_id)
    if promoted is None or not promoted.path:
        return None
    f = Path(promoted.path) / ROUTING_POLICY_FILE
    if not f.is_file():
        return None
    try:
        return load_policy(f)
    except Exception as exc:  # noqa: BLE001 - any load failure: the bar is unknown, so nothing may be judged
        # Falling back to the scale's default would judge a sum-scale criterion against single raters
        # (a spurious fail that suspends automation) or hide a real one: refuse instead.
        raise ScoringError(f"the routing policy beside the promoted model, {f}, cannot be read ({exc}); "
                           "fix it or pass --routing-policy") from exc


def check_drift(
    store: Store,
    rubric_id: str,
    *,
    policy: GatePolicy | None = None,
    window: int | None = None,
    criteria: list[str] | None = None,
    act: bool = True,
    routing_policy: RoutingPolicy | None = None,
) -> list[DriftResult]:
    """Judge each criterion's rolling audit sample; with ``act`` suspend automation where a gate fails.

    ``routing_policy`` (default: the ``policy.yaml`` beside the promoted model) gives the promise check its bar."""
    policy = policy or load_policy()
    window = window or policy.drift_window
    rubric = store.rubric(rubric_id)
    promoted = store.promoted_model(rubric_id)
    mv = promoted.version if promoted else None
    if routing_policy is None:
        routing_policy = promoted_routing_policy(store, rubric_id)
    out = []
    for crit in rubric.criteria:
        if criteria and crit.id not in criteria:
            continue
        sample = audit_sample(store, rubric_id, crit.id, window, mv)
        metrics = agreement_metrics(sample.human, sample.machine, crit.scores)
        hh, hh_not_blind, hh_blind = _human_human_qwk(store, rubric_id, crit.id, crit.scores, policy.min_n)
        gate = evaluate_gates(metrics, policy, human_human_qwk=hh, hh_n_not_blind=hh_not_blind, hh_n=hh_blind,
                              min_n=policy.drift_min_n)
        promise = promise_check(store, rubric_id, crit.id, crit.scores, window, mv, min_n=policy.drift_min_n,
                                routing_policy=routing_policy)
        already = store.is_suspended(rubric_id, crit.id)
        now = False
        if act and (gate.status == "fail" or promise.status == "fail") and not already:
            why = (f"drift gate failed ({policy.key}, last {metrics['n']} audit items): "
                   + gate.summary().removeprefix("fail: ") if gate.status == "fail" else
                   f"accepted items below the human bar on {promise.n_checked} double-scored items: "
                   f"{promise.statistic} difference {promise.difference}")
            store.suspend_automation(
                rubric_id, crit.id, why,
                details={"policy": policy.key, "model_version": mv, "window": window, "gate": gate.as_dict(),
                         "metrics": {k: v for k, v in metrics.items() if isinstance(v, int | float)},
                         "policy_check": promise.as_dict()},
            )
            now = True
        out.append(DriftResult(rubric_id, crit.id, mv, window, metrics, gate, now, already, hh,
                               extra={"policy_check": promise.as_dict(), "models": sample.models,
                                      "hh_n_not_blind": hh_not_blind}))
    return out


# ------------------------------------------------------------------------------------------ simulation


@dataclass(frozen=True)
class DriftSimulation:
    window: int
    warmup_items: int
    items_to_trip: int | None  # drifted audit items recorded before the gate failed (None: never within limit)
    failing_checks: list[str]
    qwk_before: float
    smd_before: float


def simulate_offset_drift(
    store: Store | None = None,
    *,
    offset: int = 1,
    policy: GatePolicy | None = None,
    seed: int = 13,
    max_drift_items: int | None = None,
    rubric_id: str = "drift-sim",
) -> DriftSimulation:
    """Fill one criterion's audit window with a well-calibrated scorer, then switch to one that adds
    ``offset`` to every score (clipped to the scale) and count the blind audit items until the gate trips.

    Scale 0-4; true scores uniform; each human and the healthy scorer disagree with the truth by one point
    ~25% of the time (human-machine QWK about 0.85, SMD about 0)."""
    policy = policy or load_policy()
    own = store is None
    tmp = tempfile.TemporaryDirectory() if own else None
    if own:
        store = Store(f"sqlite:///{Path(tmp.name) / 'sim.db'}")  # type: ignore[union-attr]
    assert store is not None
    try:
        rub = parse_rubric({"id": rubric_id, "version": 1, "title": "drift simulation", "evidence": ["text"],
                            "criteria": [{"id": "holistic", "title": "Holistic", "scale": {"min": 0, "max": 4}}]})
        store.register_rubric(rub)
        store.register_model("sim-healthy", "/dev/null", rubric_id=rubric_id)
        store.promote_model("sim-healthy")
        rng = np.random.default_rng(seed)
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        counter = iter(range(10**9))

        def noisy(x: int) -> int:
            return int(np.clip(x + rng.choice([-1, 0, 0, 0, 0, 0, 0, 1]), 0, 4))

        def one(shift: int) -> None:
            i = next(counter)
            truth = int(rng.integers(0, 5))
            sub = store.add_submission(rubric_id, 1, f"sim-{i}", {"text": f"item {i}"})
            store.record_machine_score(sub.id, "holistic", int(np.clip(noisy(truth) + shift, 0, 4)),
                                       model_version="sim-healthy", route="auto",
                                       created_at=t0 + timedelta(minutes=i))
            store.record_human_scores([HumanScoreIn(sub.id, "holistic", noisy(truth), "auditor", "audit", True,
                                                    created_at=t0 + timedelta(minutes=i, seconds=30))])

        w = policy.drift_window
        for _ in range(w):
            one(0)
        before = check_drift(store, rubric_id, policy=policy)[0]
        if before.gate.status != "pass":
            raise RuntimeError(f"healthy scorer should pass the gate, got {before.gate.summary()}")
        limit = max_drift_items or 3 * w
        for k in range(1, limit + 1):
            one(offset)
            res = check_drift(store, rubric_id, policy=policy)[0]
            if res.suspended_now:
                return DriftSimulation(w, w, k, [c.name for c in res.gate.failures],
                                       float(before.metrics["qwk"]), float(before.metrics["smd"]))
        return DriftSimulation(w, w, None, [], float(before.metrics["qwk"]), float(before.metrics["smd"]))
    finally:
        if own:
            store.close()
            tmp.cleanup()  # type: ignore[union-attr]
