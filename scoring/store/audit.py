"""The append-only audit log: canonical JSON, the hash chain, its Merkle tree, and their verification.

Each entry's hash is SHA-256 over the canonical JSON of ``{seq, event, payload, prev}``, where ``prev`` is
the previous entry's hash (64 zeros for the first). Editing any entry breaks its own hash; deleting one
breaks the next entry's ``prev`` link. The chain alone cannot stop someone with write access to the
database who edits an entry and recomputes every later hash: the entries' hashes are also the leaves
of an RFC 6962 Merkle tree (:mod:`scoring.store.merkle`) whose root, signed in checkpoints kept outside
the database (:mod:`scoring.store.checkpoints`), pins the history up to each checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scoring.store.merkle import CompactRange, empty_root

GENESIS = "0" * 64


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace, UTF-8 kept) so that hashes are reproducible."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def hashed_text(seq: int, event: str, payload: Any, prev_hash: str) -> str:
    """The exact text whose SHA-256 (over its UTF-8 bytes) is an entry's hash.

    Why it is handed out with every proof: it is this module's canonical JSON (Python's ``json.dumps``
    with sorted keys and no spaces), which is not RFC 8785 (JCS) for numbers (``0.0`` and ``1e-05`` here,
    ``0`` and ``0.00001`` there). A third party in another language checks the hash of this text and that
    it parses to the entry, instead of having to re-create Python's float spelling."""
    return canonical_json({"seq": seq, "event": event, "payload": payload, "prev": prev_hash})


def entry_hash(seq: int, event: str, payload_json: str, prev_hash: str) -> str:
    """Hash of one entry; ``payload_json`` is parsed back so that only its content, not its spelling, counts."""
    return hashlib.sha256(hashed_text(seq, event, json.loads(payload_json), prev_hash).encode("utf-8")).hexdigest()


def hash_canonical(seq: int, event: str, canonical_payload: str, prev_hash: str) -> str:
    """:func:`entry_hash` for a payload already in canonical JSON: the body is spliced, not re-serialised
    (the same bytes, since canonical JSON of ``{event, payload, prev, seq}`` embeds the payload's text)."""
    ev = json.dumps(event, ensure_ascii=False)
    return hashlib.sha256(f'{{"event":{ev},"payload":{canonical_payload},"prev":"{prev_hash}","seq":{seq}}}'
                          .encode()).hexdigest()


DESCRIBED_FIELDS = (("submission_id", "submission"), ("criterion", "criterion"), ("assessor", "assessor"),
                    ("adjudicator", "adjudicator"), ("score", "score"), ("outcome", "outcome"),
                    ("rubric", "rubric"), ("version", "model"))


def describe(event: str, payload_text: str) -> str:
    """``event (submission 20, criterion adjusting, assessor ana, score 2)``: what an entry says it logged.

    Why: a compliance officer told "entry 244 does not match its hash" must find the score in question;
    this names it from the entry as it now reads (the fields an edit left, or the edit itself)."""
    try:
        p = json.loads(payload_text)
    except (ValueError, TypeError):
        return event
    if not isinstance(p, dict):
        return event
    parts = [f"{label} {p[key]}" for key, label in DESCRIBED_FIELDS if p.get(key) is not None]
    return f"{event} ({', '.join(parts)})" if parts else event


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    event: str
    payload: dict[str, Any]
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True)
class AuditVerification:
    """Result of checking the log: ``first_bad_seq`` names the first entry that fails, if any, and
    ``first_bad_checkpoint`` the first signed checkpoint the log no longer extends."""

    ok: bool
    entries_checked: int
    last_seq: int | None
    head_hash: str
    first_bad_seq: int | None = None
    problem: str = ""
    merkle_root: str = ""
    checkpoints_checked: int = 0
    first_bad_checkpoint: str | None = None
    checkpoints: list[str] = field(default_factory=list)  # the names of the checkpoints that matched
    # where the problem is: "chain" (an entry), "checkpoint" (a signed checkpoint the log no longer
    # extends; the entry is somewhere in ``first_bad_seq``..its size), "tables" (the log is intact; a row
    # disagrees with it), "checkpoint_file" (a checkpoint that fails by itself); "" when ok
    kind: str = ""
    intact_through: int = 0  # entries 1..this passed the checks before the problem (all of them when ok)
    signed_through: int = 0  # entries 1..this are covered by a signed checkpoint the log still extends


class ChainScan:
    """One streaming pass over the log: checks the chain and sequence, folds the Merkle tree, and
    compares the root with every checkpoint as the scan reaches its size.

    Why it is fast: an entry written by :meth:`Tx.append` stores canonical JSON, so its hash input is the
    stored text spliced into a fixed template and hashed once; only when that does not match (a payload
    spelled differently) is the payload parsed and re-serialised. ``collect`` names events whose parsed
    payloads the caller wants back (the suspension cross-check) without a second pass.
    """

    def __init__(self, checkpoints: Sequence[Any] = (), collect: frozenset[str] = frozenset(),
                 on_tile: Any = None):
        self.cps = sorted(checkpoints, key=lambda c: (c.size, c.name))
        self.collect = collect
        self.collected: list[tuple[int, str, dict[str, Any]]] = []
        self.tree = CompactRange(on_tile)
        self.n = 0
        self.prev = GENESIS
        self.matched: list[str] = []
        self.proven = 0  # the size of the largest checkpoint matched so far
        self.failure: AuditVerification | None = None
        self._ci = 0
        self._ev: dict[str, str] = {}
        while self._ci < len(self.cps) and self.cps[self._ci].size == 0:
            self._check_cp(empty_root(), GENESIS)

    def _fail(self, seq: int | None, problem: str, checkpoint: str | None = None) -> None:
        kind, intact = ("checkpoint", self.proven) if checkpoint else ("chain", self.n)
        self.failure = AuditVerification(False, self.n, self.n or None, self.prev, seq, problem,
                                         self.tree.root().hex(), len(self.matched), checkpoint, list(self.matched),
                                         kind, intact, self.proven)

    def _check_cp(self, root: bytes, head: str) -> None:
        cp = self.cps[self._ci]
        self._ci += 1
        if root != cp.root or (cp.chain_head and cp.chain_head != head):
            since = self.matched_size()
            self._fail(since + 1, f"checkpoint {cp.name} signed the first {cp.size} entries with Merkle root "
                       f"{cp.root.hex()[:16]}..., but they now hash to {root.hex()[:16]}...: an entry in "
                       f"{since + 1}..{cp.size} was rewritten, removed or renumbered since it was signed", cp.name)
        else:
            self.matched.append(cp.name)
            self.proven = cp.size

    def matched_size(self) -> int:
        return self.cps[self._ci - 2].size if self._ci >= 2 else 0

    def feed(self, rows: Iterable[Sequence[Any]]) -> bool:
        """Check ``(seq, event, payload, prev_hash, entry_hash)`` rows in seq order; False at the first failure."""
        if self.failure is not None:
            return False
        sha256, push, ev_cache, collect = hashlib.sha256, self.tree.push, self._ev, self.collect
        expected, prev, n = self.n + 1, self.prev, self.n
        cps, ci = self.cps, self._ci
        next_size = cps[ci].size if ci < len(cps) else -1
        for seq, event, payload, prev_hash, stored in rows:
            if seq != expected:
                self.n, self.prev = n, prev
                self._fail(expected, f"entry {expected} is missing (next entry found is {seq}): deleted")
                return False
            if prev_hash != prev:
                self.n, self.prev = n, prev
                self._fail(seq, f"entry {seq}, {describe(event, payload)}, does not follow entry {n}: it links to "
                           f"previous hash {prev_hash[:12]}..., but entry {n} hashes to {prev[:12]}...: entries "
                           "were moved, inserted or removed here")
                return False
            ev = ev_cache.get(event)
            if ev is None:
                ev = ev_cache[event] = json.dumps(event, ensure_ascii=False)
            if sha256(f'{{"event":{ev},"payload":{payload},"prev":"{prev_hash}","seq":{seq}}}'
                      .encode()).hexdigest() != stored:
                try:
                    recomputed = entry_hash(seq, event, payload, prev_hash)
                except (ValueError, TypeError) as exc:
                    self.n, self.prev = n, prev
                    self._fail(seq, f"entry {seq} ({event}) payload is not valid JSON ({exc.__class__.__name__}): "
                               "edited")
                    return False
                if recomputed != stored:
                    self.n, self.prev = n, prev
                    self._fail(seq, f"entry {seq} content does not match its hash (stored {stored[:12]}..., "
                               f"recomputed {recomputed[:12]}...): edited; it now reads {describe(event, payload)}")
                    return False
            if event in collect:
                self.collected.append((seq, event, json.loads(payload)))
            push(sha256(b"\x00" + bytes.fromhex(stored)).digest())
            prev = stored
            n = expected
            expected += 1
            while n == next_size:
                self.n, self.prev = n, prev
                self._check_cp(self.tree.root(), prev)
                if self.failure is not None:
                    return False
                ci = self._ci
                next_size = cps[ci].size if ci < len(cps) else -1
        self.n, self.prev = n, prev
        return True

    def finish(self) -> AuditVerification:
        """The verdict once every row was fed: checkpoints beyond the end of the log mean truncation."""
        if self.failure is not None:
            return self.failure
        if self._ci < len(self.cps):
            cp = self.cps[self._ci]
            self._fail(self.n + 1, f"checkpoint {cp.name} signed a log of {cp.size} entries but the log now has "
                       f"{self.n}: entries {self.n + 1}..{cp.size} were removed (truncated, or the database was "
                       "restored from an older copy)", cp.name)
            return self.failure  # type: ignore[return-value]
        return AuditVerification(True, self.n, self.n or None, self.prev, None, "", self.tree.root().hex(),
                                 len(self.matched), None, list(self.matched), "", self.n, self.proven)


def verify_chain(rows: Iterable[tuple[int, str, str, str, str]]) -> AuditVerification:
    """Walk ``(seq, event, payload, prev_hash, entry_hash)`` rows in seq order and report the first break.

    Sequence numbers must run 1, 2, 3, ... without gaps: a missing number is a deleted entry.
    """
    scan = ChainScan()
    scan.feed(rows)
    return scan.finish()
