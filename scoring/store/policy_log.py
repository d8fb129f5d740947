"""Routing policies put into service are audit events (``policy_activated``).

Why: a policy decides which scores are accepted without a person, so "which thresholds were in force
when this score was auto-accepted?" must be answerable from the log. The policy lives in a YAML file,
not in the database, so the event records its version, the thresholds and a fingerprint of the whole
file whenever a store starts using a policy that differs from the last one logged for that rubric.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa

from scoring.store import tables as t
from scoring.store.canonical import NEW_STORE_FORM, CanonicalForm
from scoring.store.clock import iso, now
from scoring.store.engine import StoreBase

EVENT = "policy_activated"


def policy_fingerprint(policy: Any, form: CanonicalForm = NEW_STORE_FORM) -> str:
    """SHA-256 of the policy in the store's canonical form: an auditor holding the policy file recomputes
    the logged fingerprint with an RFC 8785 library (a store started before keeps its python-json form, so
    an unchanged policy is still recognised as the one already logged)."""
    return hashlib.sha256(form.dumps(policy.model_dump(mode="json")).encode()).hexdigest()


def record_policy(store: StoreBase, policy: Any, *, by: str, rubric_id: str | None = None) -> int | None:
    """Log ``policy`` (a :class:`~scoring.policy.RoutingPolicy`) unless it is already the latest logged for
    its rubric (``rubric_id``, default the policy's own); returns the new entry's seq, or None when nothing
    changed."""
    body = policy.model_dump(mode="json")
    rubric_id = rubric_id if rubric_id is not None else body.get("rubric_id")
    a = t.audit_log.c
    with store.write() as tx:
        fp = policy_fingerprint(policy, tx.form)
        for (payload,) in tx.conn.execute(sa.select(a.payload).where(a.event == EVENT).order_by(a.seq.desc())):
            last = json.loads(payload)
            if last.get("rubric_id") == rubric_id:
                if last.get("fingerprint") == fp:
                    return None
                break
        criteria = {cid: {k: v for k, v in c.items() if k != "evidence"} for cid, c in body.get("criteria", {}).items()}
        return tx.append(EVENT, {
            "policy_version": body.get("policy_version"), "model_version": body.get("model_version"),
            "rubric_id": rubric_id, "fingerprint": fp, "criteria": criteria,
            "settings": {k: v for k, v in body.items() if k not in ("criteria", "policy_version", "model_version",
                                                                      "rubric_id") and not isinstance(v, dict)},
            "by": by, "at": iso(now()),
        })


def logged_policy(store: StoreBase, rubric_id: str) -> Any | None:
    """The routing policy last put into service for ``rubric_id``, rebuilt from its ``policy_activated`` entry
    (thresholds and settings; evidence is not logged), or None when the store logged none. Why: work that
    reaches the store outside the service (an imported sheet of ratings) must be judged by the gaps the
    service itself applies."""
    from scoring.policy import RoutingPolicy

    a = t.audit_log.c
    with store.engine.connect() as conn:
        for (payload,) in conn.execute(sa.select(a.payload).where(a.event == EVENT).order_by(a.seq.desc())):
            body = json.loads(payload)
            if body.get("rubric_id") != rubric_id:
                continue
            try:
                return RoutingPolicy.model_validate({
                    **(body.get("settings") or {}), "policy_version": body.get("policy_version") or "logged",
                    "model_version": body.get("model_version"), "rubric_id": rubric_id,
                    "criteria": body.get("criteria") or {}})
            except ValueError:
                return None  # an entry from an older policy schema: the caller's default applies
    return None
