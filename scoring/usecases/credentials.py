"""What an educator receives: a signed Open Badges 3.0 credential when earned, feedback when "not yet".

Both read the submission's latest recorded decision (machine, when automatic; final, once people have
scored), so nothing is issued or released that the record does not support, and both are recorded in the
audit log (``credential_issued``, ``feedback_released``). Every credential carries a revocation status
entry (``scoring.status_list``) whose slot is logged with its issuance, so it can be revoked later
(``scoring.usecases.revocation``).
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from scoring import status_list
from scoring.badges import CredentialError, Issuer, build_credential, sign
from scoring.store import Store
from scoring.store.clock import iso, now
from scoring.store.credential_status import StatusSlot, allocate_slot, record_slot
from scoring.store.submissions import first_attempt_in, other_attempts_in, submission_in
from scoring.usecases import revocation
from scoring.usecases.revocation import Issued

RECIPIENT_FIELDS = ("educator_email", "educator_id", "educator")  # metadata that names the educator


def recipient_of(sub: Any, first: Any | None = None) -> str:
    """Who the credential is for: the first educator field of the submission's metadata, else of its
    chain's first attempt (``first``: a resubmission's), else the issuer's external id of that first attempt
    (hashed into the credential either way). So an award after "not yet" names the same educator as the
    first attempt did, not a new person called after the resubmission's id."""
    for s in (sub, first or sub):
        for f in RECIPIENT_FIELDS:
            v = (s.metadata or {}).get(f)
            if v:
                return str(v)
    origin = first or sub
    return f"{origin.rubric_id}:{origin.external_id}"


class HeldByAnotherAttempt(CredentialError):
    """Another attempt of the educator's resubmission chain holds a valid credential of this rubric (an audit
    turned an earlier "not yet" into an award after the resubmission): one educator, one credential. Revoke
    that one first if this attempt's should stand instead."""

    code = "credential_held_by_another_attempt"


class RevokedBefore(CredentialError):
    """The submission's credential of this very decision was revoked: a revocation is final, so it is not
    signed again unless someone says why (``despite_revocation``), and that is logged."""

    code = "credential_revoked_before"

    def __init__(self, message: str, credential_id: str, by: str, at: str, reason: str):
        super().__init__(message)
        self.credential_id, self.by, self.at, self.reason = credential_id, by, at, reason


@dataclass(frozen=True)
class Issuance:
    token: str  # the VC-JWT
    credential: dict[str, Any]
    replaced: list[Issued]  # earlier valid credentials of the submission, revoked in the same transaction
    replaced_seqs: list[int]  # their credential_revoked entries


def _held_by_chain(tx: Any, sub: Any) -> None:
    """:class:`HeldByAnotherAttempt` when another attempt of ``sub``'s chain holds a valid credential."""
    for other in other_attempts_in(tx.conn, sub.id):
        slots = revocation.issued_in(tx, other)
        revoked = revocation.revoked_in(tx, slots)
        valid = [c for c in slots if c.credential_id not in revoked]
        if valid:
            held = submission_in(tx.conn, other)
            ext = held.external_id if held is not None else other
            raise HeldByAnotherAttempt(
                f"submission {sub.external_id!r}: the educator already holds this credential from attempt {ext!r} "
                f"of the same resubmission chain ({valid[-1].credential_id}); one educator holds one, so this "
                f"attempt's is not signed (revoke that one first if this attempt's should stand instead)")


def issue(store: Store, submission_id: int, key: Any, issuer: Issuer, *, actor: str = "system",
          valid_years: int | None = None) -> tuple[str, dict[str, Any]]:
    """Sign the credential of an earned submission and record the issuance; returns (VC-JWT, credential).
    See :func:`issue_replacing` (what it replaces, and what it refuses)."""
    got = issue_replacing(store, submission_id, key, issuer, actor=actor, valid_years=valid_years)
    return got.token, got.credential


def issue_replacing(store: Store, submission_id: int, key: Any, issuer: Issuer, *, actor: str = "system",
                    valid_years: int | None = None, prior: Sequence[Issued] | None = None,
                    despite_revocation: str | None = None) -> Issuance:
    """Sign the credential of an earned submission and record the issuance, in one transaction that also
    revokes every earlier valid credential of the submission (reason "replaced by <new id>"), so a verifier
    never accepts two; refused (:class:`RevokedBefore`) when the credential of this very decision was revoked,
    unless ``despite_revocation`` says why it is signed again (logged with the issuance).

    ``prior``: the credentials the log records for the submission (a bulk run reads the log once);
    credentials with a status slot are read again inside the transaction, so one issued or revoked by an
    overlapping run counts. The issuer id is stored without trailing slashes (one issuer, one list)."""
    sub = store.submission(submission_id)
    rubric = store.rubric(sub.rubric_id, sub.rubric_version)
    d = store.latest_decision(submission_id)
    if d is None or d.outcome != "earned":
        state = "no decision yet" if d is None else f"the decision is {d.outcome!r} ({d.basis})"
        raise CredentialError(f"submission {sub.external_id!r} has not earned {rubric.key}: {state}")
    if despite_revocation is not None and not despite_revocation.strip():
        raise CredentialError("say why a revoked credential is signed again (--despite-revocation): the record "
                              "must show it")
    issuer = Issuer(status_list.issuer_key(issuer.id), issuer.name, issuer.url)
    earlier = list(prior) if prior is not None else revocation.issued(store, submission_id)
    credential_id = f"urn:uuid:{uuid.uuid4()}"
    with store.write() as tx:  # slot, issuance and the replaced credentials' revocations: together or not at all
        known = {c.credential_id: c for c in earlier}
        for c in revocation.issued_in(tx, submission_id):
            known.setdefault(c.credential_id, c)
        _held_by_chain(tx, sub)
        revoked = revocation.revoked_in(tx, list(known.values()))
        valid = [c for c in known.values() if c.credential_id not in revoked]
        final = [c for c in known.values() if c.decision_id == d.id and c.credential_id in revoked]
        override: dict[str, Any] = {}
        if final and not any(c.decision_id == d.id for c in valid):
            if despite_revocation is None:
                c = final[-1]
                seq, p = revoked[c.credential_id]
                by, at, why = str(p.get("by")), str(p.get("at")), str(p.get("reason"))
                raise RevokedBefore(
                    f"submission {sub.external_id!r}: its credential of this decision, {c.credential_id}, was "
                    f"revoked by {by} on {at[:10]} ({why}; entry {seq}); a revocation is final, so it is not "
                    "signed again (--despite-revocation REASON signs it anyway and logs why)",
                    c.credential_id, by, at, why)
            override = {"despite_revocation": {"revoked": [c.credential_id for c in final],
                                               "reason": despite_revocation.strip()}}
        number, index = allocate_slot(tx, issuer.id, status_list.LIST_BITS)
        url = status_list.list_url(issuer.id, number)
        vc = build_credential(rubric, d.levels, recipient_of(sub, first_attempt_in(tx.conn, sub)), issuer,
                              valid_years=valid_years,
                              credential_id=credential_id, status=status_list.entry(url, index))
        token = sign(vc, key)
        seq = tx.append("credential_issued", {
            "submission_id": submission_id, "credential_id": credential_id, "decision_id": d.id,
            "kid": key.thumbprint(), "actor": actor, "at": iso(now()), "issuer_id": issuer.id,
            "status_list": number, "status_index": index, "status_list_credential": url, **override})
        record_slot(tx, StatusSlot(credential_id, submission_id, d.id, issuer.id, number, index, seq, None))
        seqs = [revocation.log_revocation(tx, c, reason=f"replaced by {credential_id}", by=actor,
                                          kid=key.thumbprint())[0] for c in valid]
    return Issuance(token, vc, valid, seqs)


# ------------------------------------------------------------------------------------------- feedback


@dataclass
class CriterionFeedback:
    criterion: str
    title: str
    reached: dict[str, Any]  # {score, label, descriptor}
    needed: dict[str, Any]  # the next level up
    supports: list[dict[str, Any]]  # passages that already show the next level (with offsets)
    counters: list[dict[str, Any]]  # passages that count against it


class _Level(BaseModel):
    model_config = ConfigDict(extra="allow")
    label: str
    descriptor: str = ""


class _CriterionReleased(BaseModel):
    model_config = ConfigDict(extra="allow")
    criterion: str
    title: str
    reached: _Level
    needed: _Level
    note: str | None = None


class _FeedbackReleased(BaseModel):
    """The shape released feedback must keep, however the assessor edited it: pages (the resubmission's
    "feedback given") and the educator read these fields."""

    model_config = ConfigDict(extra="allow")
    submission: str
    criteria: list[_CriterionReleased]


def feedback(store: Store, submission_id: int, model: Any | None = None, *, n_passages: int = 2) -> dict[str, Any]:
    """Feedback an educator can act on, for a ``not_yet`` decision: per criterion below the bar, the level
    reached, the next level's descriptor (quoting the rubric), and with a model the passages of their own
    evidence that support and count against that next level. Never the model's internals."""
    sub = store.submission(submission_id)
    rubric = store.rubric(sub.rubric_id, sub.rubric_version)
    d = store.latest_decision(submission_id)
    if rubric.award is None:
        raise CredentialError(f"rubric {rubric.key} has no award rule: there is no decision to explain")
    if d is None or d.outcome != "not_yet":
        state = "no decision yet" if d is None else f"the decision is {d.outcome!r}"
        raise CredentialError(f"feedback explains a 'not yet' decision; for {sub.external_id!r} {state}")
    th = rubric.award.thresholds(rubric)
    items: list[CriterionFeedback] = []
    for c in rubric.criteria:
        got = d.levels[c.id]
        if got >= th[c.id] and rubric.award.min_total is None:
            continue
        higher = [lv for lv in c.levels if lv.score > got]
        if not higher:
            continue
        nxt = higher[0]
        sup: list[dict[str, Any]] = []
        cnt: list[dict[str, Any]] = []
        if model is not None:
            try:
                from scoring.highlights import level_highlights

                for h in level_highlights(model, c.id, sub.evidence, nxt.score, n_passages):
                    (sup if h.kind == "support" else cnt).append(h.to_dict())
            except Exception:  # noqa: BLE001 - passages help; feedback stands without them
                pass
        lv = c.level(got)
        items.append(CriterionFeedback(c.id, c.title, {"score": got, "label": lv.label, "descriptor": lv.descriptor},
                                       {"score": nxt.score, "label": nxt.label, "descriptor": nxt.descriptor},
                                       sup, cnt))
    return {
        "submission": sub.external_id, "credential": rubric.title, "rubric": rubric.key, "decision": d.outcome,
        "decided": d.basis, "rule": rubric.award.describe(rubric),
        "criteria": [fb.__dict__ for fb in items],
    }


def feedback_html(fb: dict[str, Any], evidence: dict[str, str] | None = None) -> str:
    """A self-contained page of the feedback (quotes the rubric and the educator's own words)."""
    e = html.escape
    rows = []
    for c in fb["criteria"]:
        def quotes(hs: list[dict[str, Any]]) -> str:
            out = []
            for h in hs:
                text = h.get("text") or ((evidence or {}).get(h.get("field", ""), "")[h["start"]:h["end"]])
                out.append(f"<blockquote>{e(text)}</blockquote>")
            return "".join(out) or "<p class='none'>No passage found.</p>"
        rows.append(
            f"<section><h2>{e(c['title'])}</h2>"
            f"<p>You reached <b>{e(c['reached']['label'])}</b>: {e(c['reached']['descriptor'])}</p>"
            f"<p>To reach <b>{e(c['needed']['label'])}</b>: {e(c['needed']['descriptor'])}</p>"
            f"<h3>Where your evidence is closest</h3>{quotes(c['supports'])}"
            f"<h3>What holds it back</h3>{quotes(c['counters'])}</section>")
    return ("<!doctype html><html lang='en'><meta charset='utf-8'><title>Feedback: "
            f"{e(fb['credential'])}</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;"
            "margin:2rem auto;padding:0 1rem}}blockquote{{border-left:4px solid #888;margin:.5rem 0;padding:.2rem "
            ".8rem;background:#f4f4f4}}.none{{color:#666}}</style>"
            f"<h1>{e(fb['credential'])}: not yet</h1><p>{e(fb['rule'])}</p>" + "".join(rows) + "</html>")


def release_feedback(store: Store, submission_id: int, fb: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Record that (possibly edited) feedback was released to the educator; the audit log keeps its text.
    Only a 'not yet' decision has feedback; the body must be the feedback of this submission."""
    from scoring.errors import InvalidRequest

    sub = store.submission(submission_id)
    d = store.latest_decision(submission_id)
    if d is None or d.outcome != "not_yet":
        state = "no decision yet" if d is None else f"the decision is {d.outcome!r}"
        raise CredentialError(f"only a 'not yet' decision has feedback to release; for {sub.external_id!r} {state}")
    if fb.get("submission") != sub.external_id:
        raise InvalidRequest(f"expected the feedback of submission {sub.external_id!r} (its `submission` key), "
                             f"found submission {fb.get('submission')!r}")
    try:
        _FeedbackReleased.model_validate(fb)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise InvalidRequest(f"expected each feedback criterion as GET .../feedback gives it (criterion, title, "
                             f"reached.label, needed.label); at {where}: {first['msg']}") from None
    at = iso(now())
    with store.write() as tx:
        seq = tx.append("feedback_released", {"submission_id": submission_id, "actor": actor, "feedback": fb,
                                              "decision_id": d.id, "at": at})
    return {"submission_id": submission_id, "released_by": actor, "released_at": at, "audit_seq": seq}
