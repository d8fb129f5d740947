"""Revoking issued credentials, and the status lists that let verifiers see it.

Why: a blind audit or an adjudication can overturn a criterion after a credential was signed; the record
then no longer supports the credential the educator holds. Revoking logs who revoked which credential,
when and why (``credential_revoked``) and sets its bit in the issuer's status list, which the issuer
publishes for verifiers (``scoring.status_list``). "Stale" is exactly what ``scoring audit trace`` warns
about: a credential not yet revoked whose submission's standing decision is no longer "earned".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scoring import status_list
from scoring.errors import InvalidRequest, NoCredential, NotFound
from scoring.store import Store
from scoring.store.clock import iso, now
from scoring.store.credential_status import mark_revoked, revoked_by, slots_of
from scoring.store.engine import Tx


@dataclass(frozen=True)
class Issued:
    """A credential the log records as issued."""

    credential_id: str
    submission_id: int
    decision_id: int | None
    seq: int  # its credential_issued entry
    issuer_id: str | None  # None: issued before status lists (no slot)
    list_number: int | None
    status_index: int | None

    @property
    def list_url(self) -> str | None:
        """Where its status list is published (None: issued before status lists)."""
        return status_list.list_url(self.issuer_id, self.list_number) if self.issuer_id and self.list_number else None


@dataclass(frozen=True)
class Revocation:
    credential: Issued
    seq: int  # the credential_revoked entry (an earlier one when it was already revoked)
    by: str
    reason: str
    at: str
    already: bool = False  # revoked earlier; nothing new recorded

    @property
    def visible(self) -> bool:
        """Whether verifiers can see it (the credential has a status list slot)."""
        return self.credential.status_index is not None

    @property
    def list_url(self) -> str | None:
        return self.credential.list_url


def issued(store: Store, submission_id: int | None = None) -> list[Issued]:
    """Every credential the log records as issued (of one submission: read through the store's per-submission
    lookup, not by parsing every issuance), in issuance order."""
    entries = (store.audit_entries(event="credential_issued") if submission_id is None
               else store.audit_entries_naming(submission_id, ("credential_issued",)))
    out = []
    for e in entries:
        p = e.payload
        out.append(Issued(str(p.get("credential_id")), int(p["submission_id"]), p.get("decision_id"), e.seq,
                          p.get("issuer_id"), p.get("status_list"), p.get("status_index")))
    return out


def issued_in(tx: Tx, submission_id: int) -> list[Issued]:
    """The credentials of one submission that hold a status list slot, read inside the write transaction
    (so one issued by an overlapping run counts), in issuance order."""
    return [Issued(sl.credential_id, sl.submission_id, sl.decision_id, sl.issued_seq, sl.issuer_id, sl.list_number,
                   sl.status_index) for sl in slots_of(tx.conn, submission_id)]


def revocations(store: Store, submission_id: int | None = None) -> dict[str, tuple[int, dict[str, Any]]]:
    """credential id -> (seq, payload) of the entry that revoked it (of one submission's credentials: read
    through the per-submission lookup, as :func:`issued` does)."""
    entries = (store.audit_entries(event="credential_revoked") if submission_id is None
               else store.audit_entries_naming(submission_id, ("credential_revoked",)))
    return {str(e.payload.get("credential_id")): (e.seq, e.payload) for e in entries}


def stale(store: Store) -> list[Issued]:
    """Unrevoked credentials whose submission's standing decision is no longer "earned"."""
    revoked = revocations(store)
    standing = store.latest_decisions()  # one query, however many credentials
    out = []
    for c in issued(store):
        if c.credential_id in revoked:
            continue
        d = standing.get(c.submission_id)
        if d is not None and d.outcome != "earned":
            out.append(c)
    return out


def revoked_in(tx: Tx, credentials: Sequence[Issued]) -> dict[str, tuple[int, dict[str, Any]]]:
    """credential id -> (seq, payload) of the entry that revoked it, read inside the write transaction."""
    return revoked_by(tx.conn, [c.credential_id for c in credentials if c.status_index is not None],
                      [c.credential_id for c in credentials if c.status_index is None])


def log_revocation(tx: Tx, c: Issued, *, reason: str, by: str, kid: str) -> tuple[int, str]:
    """Log ``c``'s revocation and set its status bit, in the open write transaction; returns (seq, at)."""
    at = iso(now())
    url = c.list_url
    seq = tx.append("credential_revoked", {
        "submission_id": c.submission_id, "credential_id": c.credential_id, "decision_id": c.decision_id,
        "issued_seq": c.seq, "status_list": c.list_number, "status_index": c.status_index,
        "status_list_credential": url, "reason": reason, "by": by, "kid": kid, "at": at})
    if c.status_index is not None:
        mark_revoked(tx, c.credential_id, seq)
    return seq, at


def revoke(store: Store, credentials: list[Issued], *, reason: str, by: str, kid: str) -> list[Revocation]:
    """Revoke each credential; one already revoked (earlier, or by a run that overlapped this one) is reported
    with its earlier entry and nothing new is logged.

    One transaction: whether each is already revoked is read inside it (writers are serialised, so two
    overlapping runs cannot both log a revocation of one credential), and every revocation is logged and its
    slot marked together, so a failure records none."""
    if not reason.strip():
        raise InvalidRequest("say why the credential is revoked (--reason): the record must show it")
    if not by.strip():
        raise InvalidRequest("say who revokes it (--by): the record must show it")
    out: list[Revocation] = []
    with store.write() as tx:
        earlier = revoked_in(tx, credentials)
        for c in credentials:
            if c.credential_id in earlier:
                seq, p = earlier[c.credential_id]
                out.append(Revocation(c, seq, str(p.get("by")), str(p.get("reason")), str(p.get("at")), already=True))
                continue
            seq, at = log_revocation(tx, c, reason=reason.strip(), by=by.strip(), kid=kid)
            earlier[c.credential_id] = (seq, {"by": by.strip(), "reason": reason.strip(), "at": at})
            out.append(Revocation(c, seq, by.strip(), reason.strip(), at))
    return out


def _none_issued(store: Store, submission_id: int, *, store_id: bool = False) -> str:
    """Why a submission has nothing to revoke, naming it by the issuer's own id (``store_id``: and the
    store's, which the API's paths use)."""
    sub = store.submission(submission_id)
    d = store.latest_decision(submission_id)
    state = "no decision yet" if d is None else f"its decision is {d.outcome!r}"
    name = f"{sub.external_id!r}" + (f" (store id {sub.id})" if store_id else "")
    return f"submission {name} has no issued credential ({state}): nothing to revoke"


def of_submission(store: Store, submission_id: int) -> list[Issued]:
    """The credentials issued for a submission; :class:`NotFound` in words when there are none."""
    got = issued(store, submission_id)
    if not got:
        raise NotFound(_none_issued(store, submission_id))
    return got


def revoke_submission(store: Store, submission_id: int, *, reason: str, by: str, kid: str,
                      credential_id: str | None = None) -> list[Revocation]:
    """Revoke a submission's credential ``credential_id``, or every one not yet revoked (all of them revoked:
    each answered with its earlier revocation). :class:`NoCredential` when none was issued and
    :class:`NotFound` for a ``credential_id`` not of it, both naming the submission by the issuer's external
    id and the store's id."""
    got = issued(store, submission_id)
    if not got:
        raise NoCredential(_none_issued(store, submission_id, store_id=True))
    if credential_id is not None:
        todo = [x for x in got if x.credential_id == credential_id]
        if not todo:
            sub = store.submission(submission_id)
            raise NotFound(f"credential {credential_id!r} is not a credential of submission {sub.external_id!r} "
                           f"(store id {sub.id})")
    else:
        done = revocations(store, submission_id)
        todo = [x for x in got if x.credential_id not in done] or got  # all revoked: say when and by whom
    return revoke(store, todo, reason=reason, by=by, kid=kid)


def signed_list(store: Store, issuer_id: str, key: Any, number: int) -> str | None:
    """The signed list credential of the issuer's list ``number`` as it stands now; None when the issuer has no
    such list (list 1 always exists, so it can be published before anything is issued). Reads that list's
    slots only: verifiers fetch it, with no key, at the URL every credential carries."""
    issuer_id = status_list.issuer_key(issuer_id)
    slots = store.status_slots(issuer_id=issuer_id, list_number=number)
    if not slots and number != 1:
        return None
    return _signed(issuer_id, number, slots, key)[0]


def signed_lists(store: Store, issuer_id: str, key: Any) -> dict[int, tuple[str, int, int]]:
    """list number -> (signed list credential, credentials listed, revoked) for every list of the issuer
    (list 1 even before anything was issued, so it can be published in advance)."""
    issuer_id = status_list.issuer_key(issuer_id)  # one issuer however its id was typed (trailing slash)
    slots = store.status_slots(issuer_id=issuer_id)
    return {n: _signed(issuer_id, n, [s for s in slots if s.list_number == n], key)
            for n in sorted({s.list_number for s in slots} | {1})}


def _signed(issuer_id: str, number: int, slots: list[Any], key: Any) -> tuple[str, int, int]:
    """(signed list credential, credentials listed, revoked) of list ``number`` holding ``slots``."""
    revoked = {s.status_index for s in slots if s.revoked}
    return status_list.sign_list(status_list.list_url(issuer_id, number), issuer_id, revoked, key), len(slots), len(revoked)
