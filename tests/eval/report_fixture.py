"""A store shaped like the researcher's case: two double-scored essay sets (one on a 1-6 scale, one on a
0-30 scale), a policy batch whose machine scores went through the one recording path
(``scoring.usecases.intake.record_scored``) with routes auto / audit / human / double, blind audits of some
auto-accepted items (audit-only items), a school field with a tiny group, and many small monthly windows.

Synthetic and seeded: the figures only have to exercise every table and plot, not be realistic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np

from rubrics.schema import parse_rubric
from scoring.prescore import CriterionResult, ScoredSubmission
from scoring.store import HumanScoreIn, Store
from scoring.usecases import intake

ESSAY = {"id": "essay-set1", "version": 1, "title": "Essay set 1", "evidence": ["essay"],
         "criteria": [{"id": "holistic", "title": "Holistic", "scale": {"min": 1, "max": 6}},
                      {"id": "style", "title": "Style", "scale": {"min": 1, "max": 6}}]}
LONG = {"id": "essay-set8", "version": 1, "title": "Essay set 8", "evidence": ["essay"],
        "criteria": [{"id": "holistic", "title": "Holistic", "scale": {"min": 0, "max": 30}}]}
MODEL = "essay-set1-v1-20260301T000000-0123abcd"
ROUTES = ["auto"] * 5 + ["audit", "human", "human", "double", "auto"]  # about 60% of the machine's scores stand


def _probs(score: int, labels: list[int], conf: float) -> dict[str, float]:
    rest = (1 - conf) / (len(labels) - 1)
    return {str(lv): (conf if lv == score else rest) for lv in labels}


def build(store: Store, n: int = 240, seed: int = 7) -> dict[str, Any]:
    """Fill ``store``; returns what was recorded (counts the tests check the report against)."""
    rng = np.random.default_rng(seed)
    rub, long_rub = parse_rubric(ESSAY), parse_rubric(LONG)
    store.register_rubric(rub)
    store.register_rubric(long_rub)
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    schools = ["north", "south", "east"]
    subs, items, truth = [], [], {}
    for i in range(n):
        school = "west" if i in (6, 7) else schools[i % 3]  # a group of two (both routed to people)
        subs.append(intake.NewSubmission(f"e{i}", {"essay": f"essay number {i}"}, {"school": school}))
        t = int(rng.integers(1, 7))
        truth[f"e{i}"] = t
        crit = {}
        for cid in ("holistic", "style"):
            if cid == "style":
                score = 3  # a degenerate scorer: one level for everyone (its DSM cannot be computed)
            else:
                score = int(np.clip(t + rng.choice([-1, 0, 0, 0, 1]) + (1 if school == "south" else 0), 1, 6))
            route = ROUTES[i % len(ROUTES)]
            conf = float(rng.uniform(0.35, 0.98))
            crit[cid] = CriterionResult(score, {lv: p for lv, p in zip(range(1, 7), _probs(score, list(range(1, 7)),
                                                                                           conf).values(), strict=True)},
                                        {"route": route, "reason": f"test route {route}", "confidence": conf})
        items.append(ScoredSubmission(f"e{i}", MODEL, crit))
    model = SimpleNamespace(rubric=rub, version=MODEL)
    outs = intake.record_scored(store, model, "issuer-a", subs, items, "policy-1")  # type: ignore[arg-type]
    human: list[HumanScoreIn] = []
    n_audit_only = 0
    for k, o in enumerate(outs):
        sid = o.submission.id  # type: ignore[union-attr]
        t = truth[o.external_id]
        when = t0 + timedelta(days=7 * (k % 30))  # weekly times, many small monthly windows
        for cid in ("holistic", "style"):
            route = ROUTES[k % len(ROUTES)]
            if route in ("human", "double"):
                human.append(HumanScoreIn(sid, cid, int(np.clip(t + rng.choice([-1, 0, 0, 1]), 1, 6)), "rater-a",
                                          "first", True, created_at=when))
            if route == "double":
                human.append(HumanScoreIn(sid, cid, int(np.clip(t + rng.choice([-1, 0, 0, 1]), 1, 6)), "rater-b",
                                          "second", True, created_at=when + timedelta(hours=1)))
            if route == "audit":
                human.append(HumanScoreIn(sid, cid, int(np.clip(t + rng.choice([-1, 0, 0, 1]), 1, 6)), "auditor",
                                          "audit", True, created_at=when))
                n_audit_only += 1
    store.record_human_scores(human)
    # the long scale: double-scored history (0-30) with a machine that is close, imported as machine scores
    long_subs = store.add_submissions("essay-set8", 1, [(f"l{i}", {}, {"school": schools[i % 3]}) for i in range(90)])
    lh: list[HumanScoreIn] = []
    for k, s in enumerate(long_subs):
        t = int(rng.integers(8, 28))
        a = int(np.clip(t + rng.integers(-3, 4), 0, 30))
        b = int(np.clip(t + rng.integers(-3, 4), 0, 30))
        lh += [HumanScoreIn(s.id, "holistic", a, "r1", "first", True, created_at=t0 + timedelta(days=k)),
               HumanScoreIn(s.id, "holistic", b, "r2", "second", True, created_at=t0 + timedelta(days=k, hours=1))]
        store.record_machine_score(s.id, "holistic", int(np.clip(t + rng.integers(-2, 3), 0, 30)),
                                   model_version="essay-set8-m1", route="human", reason="long scale",
                                   created_at=t0 + timedelta(days=k))
    store.record_human_scores(lh)
    accepted = sum(r in ("auto", "audit") for r in (ROUTES[k % len(ROUTES)] for k in range(n)))
    return {"n": n, "accepted": accepted, "audit_only_per_criterion": n_audit_only // 2}
