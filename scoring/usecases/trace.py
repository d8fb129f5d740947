"""Trace one submission's credential decision through the audit log: every entry it rests on, in order.

Why: an issuer defending a decision (an appeal, a regulator) must show which evidence was scored, by which
model and routing policy, which people scored it, which decisions followed and what was issued, each as a
log entry whose inclusion ``scoring audit prove SEQ`` can prove. The store's tables answer the same
questions, but the log is what checkpoints sign, so the trace reads the log.

It also says when the record no longer supports what was issued: a credential signed on an "earned"
decision that a later decision (an audit that overturned an auto-accepted score, an adjudication) replaced,
until that credential is revoked (``scoring.usecases.revocation.stale`` finds the same ones); and evidence
that no longer hashes to what the score and decision entries pinned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scoring.store import Store
from scoring.store.audit import AuditEntry
from scoring.store.submissions import content_hash

SUBMISSION_EVENTS = ("machine_score", "human_score", "adjudication", "credential_decision", "credential_issued",
                     "credential_revoked", "feedback_released")


@dataclass(frozen=True)
class TraceLine:
    seq: int
    event: str
    text: str  # the entry in words
    entry_hash: str
    evidence_hash: str | None = None  # the submission's content hash the entry pinned (None: it pins none)


@dataclass(frozen=True)
class Trace:
    submission: str  # the id in the issuer's file
    submission_id: int  # the store's id (what log entries name)
    rubric: str
    evidence_hash: str = ""  # what the stored evidence and metadata hash to now (as the store computes it)
    lines: list[TraceLine] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)  # the resubmission chain, first to last (one: none)


def _text(e: AuditEntry) -> str:
    p: dict[str, Any] = e.payload
    g = p.get
    if e.event == "rubric_registered":
        return f"rubric {g('rubric')} registered, fingerprint {g('fingerprint')}"
    if e.event == "model_registered":
        return f"model {g('version')} registered ({g('path')})"
    if e.event == "model_promoted":
        return f"model {g('version')} promoted by {g('actor')}"
    if e.event == "policy_activated":
        return (f"routing policy {g('policy_version')} put into service for model {g('model_version')}, "
                f"fingerprint {str(g('fingerprint'))[:16]}")
    if e.event == "machine_score":
        return (f"machine score {g('criterion')} = {g('score')}, route {g('route')} ({g('reason')}); "
                f"model {g('model_version')}, policy {g('policy_version')}")
    if e.event == "human_score":
        return (f"{g('kind')} human score {g('criterion')} = {g('score')} by {g('assessor')}"
                f"{' (blind)' if g('blind') else ' (saw the machine score)' if g('blind') is False else ''}")
    if e.event == "adjudication":
        return (f"adjudication {g('criterion')} = {g('score')} by {g('adjudicator')} (resolving human scores "
                f"{g('human_score_ids')})")
    if e.event == "credential_decision":
        pe = g("p_earned")
        return (f"decision {g('outcome')} ({g('basis')}), levels {g('levels')}"
                f"{f', P(earned) {pe}' if pe is not None else ''}; model {g('model_version')}, policy "
                f"{g('policy_version')}: {g('reason')}")
    if e.event == "credential_issued":
        slot = f", status list {g('status_list_credential')} index {g('status_index')}" if g("status_index") is not None else ""
        return f"credential {g('credential_id')} issued by {g('actor')} on decision {g('decision_id')}{slot}"
    if e.event == "credential_revoked":
        seen = (f"index {g('status_index')} of {g('status_list_credential')}" if g("status_index") is not None
                else "no status entry: verifiers cannot see it")
        return f"credential {g('credential_id')} revoked by {g('by')}: {g('reason')} ({seen})"
    if e.event == "feedback_released":
        return f"feedback released by {g('actor')}"
    return str(p)


def trace(store: Store, submission_id: int) -> Trace:
    """Every log entry about the submission, and the rubric, model and policy entries its scores name.

    Reads the entries that name the submission (found by the database, so a long log is not parsed
    entry by entry), then those of the rubric, models and policies they name."""
    sub = store.submission(submission_id)
    rubric = f"{sub.rubric_id}@{sub.rubric_version}"
    mine = store.audit_entries_naming(submission_id, SUBMISSION_EVENTS)
    models = {str(v) for e in mine if (v := e.payload.get("model_version")) is not None}
    policies = {str(v) for e in mine if (v := e.payload.get("policy_version")) is not None}
    context = [e for e in store.audit_entries(event="rubric_registered") if e.payload.get("rubric") == rubric]
    context += [e for ev in ("model_registered", "model_promoted") for e in store.audit_entries(event=ev)
                if e.payload.get("version") in models]
    context += [e for e in store.audit_entries(event="policy_activated")
                if e.payload.get("policy_version") in policies]
    entries = sorted(mine + context, key=lambda e: e.seq)
    out = Trace(sub.external_id, submission_id, rubric, content_hash(sub.evidence, sub.metadata),
                [_line(e) for e in entries])
    out.attempts.extend(_attempts(store, sub))
    out.warnings.extend(_evidence_changed(out))
    out.warnings.extend(_issued_against_the_record(store, submission_id, entries))
    logged_policies = {e.payload.get("policy_version") for e in context if e.event == "policy_activated"}
    for pv in sorted(policies - logged_policies):
        out.warnings.append(f"routing policy {pv} is named by this submission's scores but no policy_activated "
                            "entry logs its thresholds: the routing cannot be re-checked from the log")
    return out


def _attempts(store: Store, sub: Any) -> list[dict[str, Any]]:
    """The attempts of the submission's resubmission chain (metadata ``revises``), first to last, each with its
    store id and standing decision; this submission is ``this``."""
    from scoring.usecases.intake import attempts

    with store.engine.connect() as conn:
        chain = attempts(conn, sub.rubric_id, sub.external_id)
    out = []
    for ext in chain:
        rec = sub if ext == sub.external_id else store.find_submission(sub.rubric_id, ext)
        d = store.latest_decision(rec.id)
        out.append({"submission": ext, "submission_id": rec.id, "decision": None if d is None else d.outcome,
                    "decision_entry": None if d is None else d.audit_seq, "this": ext == sub.external_id})
    return out


def _line(e: AuditEntry) -> TraceLine:
    """One entry in words, ending with the evidence hash it pinned (the first 16 hex digits; all 64 in JSON)."""
    pinned = e.payload.get("content_hash")
    text = _text(e) + (f"; evidence {str(pinned)[:16]}" if pinned else "")
    return TraceLine(e.seq, e.event, text, e.entry_hash, str(pinned) if pinned else None)


def _evidence_changed(tr: Trace) -> list[str]:
    """One warning per pinned hash the stored evidence no longer has, naming the first entry that pinned it."""
    out, seen = [], set()
    for line in tr.lines:
        h = line.evidence_hash
        if h is None or h == tr.evidence_hash or h in seen:
            continue
        seen.add(h)
        out.append(f"entry {line.seq} pinned evidence {h[:16]}, but submission {tr.submission}'s stored evidence "
                   f"and metadata now hash to {tr.evidence_hash[:16]}: the evidence was changed after that entry; "
                   "this decision does not rest on the evidence as stored (`scoring audit verify` names the change)")
    return out


def _issued_against_the_record(store: Store, submission_id: int, entries: list[AuditEntry]) -> list[str]:
    """Credentials signed on a decision that a later decision replaced with another outcome."""
    decisions = [e for e in entries if e.event == "credential_decision"]
    if not decisions:
        return []
    standing = decisions[-1]
    by_id = {d.id: d for d in store.decisions(submission_id=submission_id)}
    revoked = {e.payload.get("credential_id") for e in entries if e.event == "credential_revoked"}
    out = []
    for e in entries:
        if (e.event != "credential_issued" or standing.payload.get("outcome") == "earned"
                or e.payload.get("credential_id") in revoked):
            continue
        d = by_id.get(e.payload.get("decision_id"))  # type: ignore[arg-type]
        on = f"decision {d.id} ({d.outcome}, {d.basis}, entry {d.audit_seq})" if d else "a decision"
        out.append(f"credential {e.payload.get('credential_id')} (entry {e.seq}) was issued on {on}, but the "
                   f"standing decision is {standing.payload.get('outcome')} ({standing.payload.get('basis')}, entry "
                   f"{standing.seq}): the credential no longer rests on the record; revoke it (`scoring credentials "
                   "revoke --stale`), or record why it stands")
    return out
