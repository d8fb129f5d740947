"""The append-only audit log: canonical JSON, the hash chain and its verification.

Each entry's hash is SHA-256 over the canonical JSON of ``{seq, event, payload, prev}``, where ``prev`` is
the previous entry's hash (64 zeros for the first). Editing any entry breaks its own hash; deleting one
breaks the next entry's ``prev`` link (or, for the last entry, leaves a score row whose ``audit_seq``
points past the end of the log, which :func:`verify_chain`'s caller also checks).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace, UTF-8 kept) so that hashes are reproducible."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_hash(seq: int, event: str, payload_json: str, prev_hash: str) -> str:
    """Hash of one entry; ``payload_json`` is parsed back so that only its content, not its spelling, counts."""
    body = {"seq": seq, "event": event, "payload": json.loads(payload_json), "prev": prev_hash}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    event: str
    payload: dict[str, Any]
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True)
class AuditVerification:
    """Result of checking the chain: ``first_bad_seq`` names the first entry that fails, if any."""

    ok: bool
    entries_checked: int
    last_seq: int | None
    head_hash: str
    first_bad_seq: int | None = None
    problem: str = ""


def verify_chain(rows: Iterable[tuple[int, str, str, str, str]]) -> AuditVerification:
    """Walk ``(seq, event, payload, prev_hash, entry_hash)`` rows in seq order and report the first break.

    Sequence numbers must run 1, 2, 3, ... without gaps: a missing number is a deleted entry.
    """
    expected_seq = 1
    prev = GENESIS
    n = 0
    last: int | None = None
    for seq, event, payload, prev_hash, stored_hash in rows:
        if seq != expected_seq:
            return AuditVerification(False, n, last, prev, expected_seq,
                                     f"entry {expected_seq} is missing (next entry found is {seq}): deleted")
        if prev_hash != prev:
            return AuditVerification(False, n, last, prev, seq,
                                     f"entry {seq} links to previous hash {prev_hash[:12]}..., expected {prev[:12]}...")
        try:
            recomputed = entry_hash(seq, event, payload, prev_hash)
        except (ValueError, TypeError) as exc:
            return AuditVerification(False, n, last, prev, seq, f"entry {seq} payload is not valid JSON: {exc}")
        if recomputed != stored_hash:
            return AuditVerification(False, n, last, prev, seq,
                                     f"entry {seq} content does not match its hash (stored {stored_hash[:12]}..., "
                                     f"recomputed {recomputed[:12]}...): edited")
        prev = stored_hash
        last = seq
        expected_seq += 1
        n += 1
    return AuditVerification(True, n, last, prev)
