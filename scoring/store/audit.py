"""The append-only audit log: canonical JSON, the hash chain, its Merkle tree, and their verification.

Each entry's hash is SHA-256 over the canonical JSON of ``{seq, event, payload, prev}``, in the one
canonical form its store records (:mod:`scoring.store.canonical`: RFC 8785 for stores created now), where
``prev`` is the previous entry's hash (for the first, the form's genesis value). Editing any entry breaks its own hash; deleting one
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
from typing import Any, NamedTuple

from scoring.store.canonical import PYTHON_JSON_FORM, CanonicalForm
from scoring.store.merkle import CompactRange, empty_root


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace, UTF-8 kept) for the service's own content hashes
    (idempotency keys, duplicate submissions, stored rubric bodies) that no third party recomputes.

    Audit entries are hashed with their store's :class:`~scoring.store.canonical.CanonicalForm` instead."""
    return PYTHON_JSON_FORM.dumps(obj)


def entry_hash(seq: int, event: str, payload_json: str, prev_hash: str, form: CanonicalForm) -> str:
    """Hash of one entry of a store of ``form`` (:meth:`Store.canonical_form`; there is no default, since
    the other form gives a different hash for the same entry); ``payload_json`` is parsed back so that only
    its content, not its spelling, counts."""
    return form.entry_hash(seq, event, payload_json, prev_hash)


DESCRIBED_FIELDS = (("submission_id", "submission"), ("criterion", "criterion"), ("assessor", "assessor"),
                    ("adjudicator", "adjudicator"), ("score", "score"), ("outcome", "outcome"),
                    ("rubric", "rubric"), ("version", "model"))


def submission_name(payload: dict[str, Any]) -> Any:
    """How messages name the submission an entry is about: the issuer's external id where the entry pinned
    it (entries written before pins existed name only the store id)."""
    return payload.get("external_id") or payload.get("submission_id")


_KINDS = ((bool, "a boolean"), (int, "a number"), (float, "a number"), (str, "a string"), (list, "an array"))


def payload_fault(payload_text: Any) -> str | None:
    """What makes an entry's payload one the service never logs, in words ("is a number (5), not a JSON
    object"); None when it is a JSON object.

    Why it matters: the service logs every entry as a JSON object of its fields (:meth:`Tx.append`), so an
    entry whose payload is anything else was written outside it. Its hash still matches when whoever wrote
    it recomputed the hashes from it (and a payload that is not JSON at all matches when the hash was
    computed over the text as it stands): only the checks that read the payload can name it."""
    text = payload_text.decode(errors="replace") if isinstance(payload_text, bytes) else str(payload_text)
    shown = " ".join(text.split())
    shown = shown if len(shown) <= 40 else shown[:40] + "..."
    try:
        value = json.loads(payload_text)
    except RecursionError:
        return "is nested too deeply to read"
    except (ValueError, TypeError):
        return f"is not valid JSON (it reads {shown})"
    if isinstance(value, dict):
        return None
    if value is None:
        return "is null, not a JSON object"
    kind = next(k for cls, k in _KINDS if isinstance(value, cls))
    return f"is {kind} ({shown}), not a JSON object"


class Finding(NamedTuple):
    """A problem one of the table checks found: the entry it is about (None when it is about no entry), what
    is wrong in words, and where (``AuditVerification.kind``): "tables" when a row no longer says what its
    entry logged, "chain" when the entry itself is one the service never wrote."""

    seq: int | None
    problem: str
    kind: str = "tables"


def rewritten(seq: int, problem: str) -> Finding:
    """A finding about entry ``seq`` itself: rewritten outside the service, its hash recomputed to match."""
    return Finding(seq, problem, "chain")


def describe(event: str, payload_text: str) -> str:
    """``event (submission T-042, criterion adjusting, assessor ana, score 2)``: what an entry says it logged.

    Why: a compliance officer told "entry 244 does not match its hash" must find the score in question;
    this names it from the entry as it now reads (the fields an edit left, or the edit itself), by the
    submission's external id when the entry has it."""
    try:
        p = json.loads(payload_text)
    except (ValueError, TypeError, RecursionError):
        return event
    if not isinstance(p, dict):
        return event
    p = dict(p, submission_id=submission_name(p))
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
    canonical_form: str = ""  # the canonical JSON form every entry was hashed with (the store's; "" if unknown)


class ChainScan:
    """One streaming pass over the log: checks the chain and sequence, folds the Merkle tree, and
    compares the root with every checkpoint as the scan reaches its size.

    Every entry is hashed with ``form``, the store's one canonical form, and every checkpoint must name
    that form: a checkpoint's signature is what stops the store's recorded form being switched.

    Why it is fast: an entry written by :meth:`Tx.append` stores canonical JSON, so its hash input is the
    stored text spliced into a fixed template and hashed once; only when that does not match (a payload
    spelled differently) is the payload parsed and re-serialised. ``collect`` names events whose parsed
    payloads the caller wants back (the suspension cross-check) without a second pass.
    """

    def __init__(self, form: CanonicalForm, checkpoints: Sequence[Any] = (), collect: frozenset[str] = frozenset(),
                 on_tile: Any = None):
        self.form = form
        self.cps = sorted(checkpoints, key=lambda c: (c.size, c.name))
        self.collect = collect
        self.collected: list[tuple[int, str, dict[str, Any]]] = []
        self.tree = CompactRange(on_tile)
        self.n = 0
        self.prev = form.genesis
        self.matched: list[str] = []
        self.proven = 0  # the size of the largest checkpoint matched so far
        self.failure: AuditVerification | None = None
        self._ci = 0
        self._ev: dict[str, str] = {}
        while self._ci < len(self.cps) and self.cps[self._ci].size == 0:
            self._check_cp(empty_root(), form.genesis)

    def _fail(self, seq: int | None, problem: str, checkpoint: str | None = None) -> None:
        kind, intact = ("checkpoint", self.proven) if checkpoint else ("chain", self.n)
        self.failure = AuditVerification(False, self.n, self.n or None, self.prev, seq, problem,
                                         self.tree.root().hex(), len(self.matched), checkpoint, list(self.matched),
                                         kind, intact, self.proven, self.form.name)

    def _check_cp(self, root: bytes, head: str) -> None:
        cp = self.cps[self._ci]
        self._ci += 1
        if cp.canonical_form != self.form.name:
            self._fail(self.matched_size() + 1, f"checkpoint {cp.name} signed a log hashed with canonical form "
                       f"{cp.canonical_form}, but the store now says its log uses {self.form.name}: the store's "
                       "canonical_form setting was changed outside the service", cp.name)
        elif root != cp.root or (cp.chain_head and cp.chain_head != head):
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
        sha256, push, ev_cache, collect, form = hashlib.sha256, self.tree.push, self._ev, self.collect, self.form
        expected, prev, n = self.n + 1, self.prev, self.n
        cps, ci = self.cps, self._ci
        next_size = cps[ci].size if ci < len(cps) else -1
        for seq, event, payload, prev_hash, stored in rows:
            if seq != expected:
                self.n, self.prev = n, prev
                self._fail(expected, f"entry {expected} is missing (next entry found is {seq}): deleted")
                return False
            if prev_hash != prev and n == 0:
                self.n, self.prev = n, prev
                self._fail(seq, f"entry 1, {describe(event, payload)}, links to previous hash {prev_hash[:12]}..., "
                           f"but a log hashed with canonical form {form.name} starts from {prev[:12]}...: entry 1 "
                           "was edited, or the store's canonical_form setting was changed, outside the service")
                return False
            if prev_hash != prev:
                self.n, self.prev = n, prev
                self._fail(seq, f"entry {seq}, {describe(event, payload)}, does not follow entry {n}: it links to "
                           f"previous hash {prev_hash[:12]}..., but entry {n} hashes to {prev[:12]}...: entries "
                           "were moved, inserted or removed here")
                return False
            ev = ev_cache.get(event)
            if ev is None:
                if type(event) is not str:  # SQLite keeps a BLOB in a text column as it is
                    self.n, self.prev = n, prev
                    self._fail(seq, f"entry {seq}'s event column holds {event!r}, not text: edited")
                    return False
                ev = ev_cache[event] = form.dumps(event)
            if sha256(f'{{"event":{ev},"payload":{payload},"prev":"{prev_hash}","seq":{seq}}}'
                      .encode()).hexdigest() != stored:
                try:
                    recomputed = form.entry_hash(seq, event, payload, prev_hash)
                except (ValueError, TypeError, RecursionError) as exc:
                    self.n, self.prev = n, prev
                    what = ("is nested too deeply to read" if isinstance(exc, RecursionError)
                            else f"is not valid JSON ({exc.__class__.__name__})")
                    self._fail(seq, f"entry {seq} ({event}) payload {what}: edited")
                    return False
                if recomputed != stored:
                    self.n, self.prev = n, prev
                    self._fail(seq, f"entry {seq} content does not match its hash (stored {stored[:12]}..., "
                               f"recomputed {recomputed[:12]}...): edited; it now reads {describe(event, payload)}")
                    return False
            if event in collect:
                try:
                    value = form.loads(payload)
                except (ValueError, TypeError, RecursionError):
                    value = None
                if type(value) is not dict:
                    self.n, self.prev = n, prev
                    self._fail(seq, f"entry {seq} ({event}) payload {payload_fault(payload) or 'cannot be read'}: "
                               "the service logs every entry as a JSON object, so it was rewritten outside the "
                               "service and its hash recomputed to match")
                    return False
                self.collected.append((seq, event, value))
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
                                 len(self.matched), None, list(self.matched), "", self.n, self.proven, self.form.name)
