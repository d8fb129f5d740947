"""Trust in the audit log beyond the database: sign checkpoints, verify against them, prove one entry.

``checkpoint`` signs only a log that verifies against every earlier checkpoint, so a new signature never
blesses a rewritten history. ``prove`` gives an auditor one entry, the sibling hashes and the signed
checkpoint; ``check_proof`` needs nothing else (no database) to confirm the entry is in that log.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from scoring.errors import AuditChainBroken, NotFound
from scoring.store import AuditVerification, Store
from scoring.store.canonical import CanonicalFormError, form_named
from scoring.store.checkpoints import (
    DEFAULT_ORIGIN,
    Checkpoint,
    CheckpointError,
    checkpoint_body,
    load_checkpoints,
    parse_checkpoint,
    sign_checkpoint,
    write_checkpoint,
)
from scoring.store.merkle import leaf_hash, root_from_inclusion


@dataclass(frozen=True)
class CheckpointWritten:
    path: Path | None  # None when the log has not grown since the latest checkpoint
    size: int
    root: str
    latest: str  # the file that now describes the log


def verify(store: Store, directory: Path | None, pub: Ed25519PublicKey | None,
           origin: str = DEFAULT_ORIGIN) -> AuditVerification:
    """The log checked on its own, or (with a folder and key) also against every checkpoint in it; a
    checkpoint file that is unsigned, edited or signed by another key fails verification by itself, and so
    does a folder without any checkpoint (a pass against zero checkpoints proves nothing beyond the chain)."""
    if directory is None:
        return store.verify_audit()
    if pub is None:
        raise CheckpointError("verifying checkpoints needs the audit public key (SCORING_AUDIT_PUBLIC_KEY or "
                              "--public-key)")
    good, bad = load_checkpoints(directory, pub, origin)
    if bad:
        return AuditVerification(False, 0, None, "", None, f"checkpoint {bad[0].name}: {bad[0].problem}",
                                 first_bad_checkpoint=bad[0].name, kind="checkpoint_file")
    if not good:  # `checkpoint --init` always writes one, so an empty folder is a wrong path or a wiped one
        return AuditVerification(False, 0, None, "", None, (
            f"no checkpoint files (checkpoint-*.txt) in {directory}, so nothing outside the database vouches for "
            "the log; point --checkpoints at the folder the signed checkpoints were copied to"),
            kind="checkpoint_file")
    return store.verify_audit(good)


def checkpoint(store: Store, directory: Path, key: Ed25519PrivateKey, origin: str = DEFAULT_ORIGIN,
               now: datetime | None = None, *, init: bool = False) -> CheckpointWritten:
    """Verify the log against the folder's checkpoints, then sign and write a new one for its current size.

    A folder that does not exist is refused unless ``init`` (the first checkpoint): a mistyped path would
    otherwise look like "no earlier checkpoints" and sign whatever the database holds now, rewrites included."""
    exists = Path(directory).is_dir()
    if not exists and not init:
        raise CheckpointError(
            f"checkpoint folder {directory} does not exist, so the log cannot be checked against the earlier "
            "checkpoints before signing; check the path (--out or SCORING_AUDIT_CHECKPOINT_DIR), or pass "
            "--init if this is the log's first checkpoint")
    good, bad = load_checkpoints(directory, key.public_key(), origin) if exists else ([], [])
    if bad:
        rotated = "not signed by the audit key" in bad[0].problem
        raise CheckpointError(f"checkpoint {bad[0].name}: {bad[0].problem}; not signing over it" + (
            ". If the audit key was replaced (rotated, or the old one lost), start a new series in a new folder "
            "with `scoring audit checkpoint --init --out NEW_FOLDER`, and keep this folder with the old public "
            "key: `scoring audit verify --checkpoints` still proves with them the entries they signed" if rotated
            else ""))
    res = store.verify_audit(good, keep_tiles=True)
    if not res.ok:
        raise AuditChainBroken(f"the audit log does not verify, so no checkpoint was signed: {res.problem}")
    if good and good[-1].size == res.entries_checked:
        return CheckpointWritten(None, res.entries_checked, res.merkle_root, good[-1].name)
    when = now or datetime.now(UTC)
    text = sign_checkpoint(checkpoint_body(origin, res.entries_checked, bytes.fromhex(res.merkle_root),
                                           res.head_hash, when, res.canonical_form), key, origin)
    path = write_checkpoint(directory, text, res.entries_checked, when)
    return CheckpointWritten(path, res.entries_checked, res.merkle_root, path.name)


def prove(store: Store, seq: int, directory: Path, pub: Ed25519PublicKey | None,
          origin: str = DEFAULT_ORIGIN) -> dict[str, Any]:
    """An inclusion proof of entry ``seq`` in the latest checkpoint that covers it (a JSON document).

    With ``pub`` only checkpoints it signed are used; without (the API, which holds no key) the auditor
    checks the signature with ``check_proof``: a proof is worth nothing until then anyway."""
    good, _ = load_checkpoints(directory, pub, origin) if Path(directory).is_dir() else ([], [])
    covering = [c for c in good if c.size >= seq]
    if not covering:
        newest = good[-1].size if good else 0
        raise NotFound(f"no checkpoint covers entry {seq} yet (the newest covers {newest} entries); "
                       "run `scoring audit checkpoint` first")
    cp = covering[-1]
    proof = store.inclusion_proof(seq, cp.size, signed_root=cp.root_hex)
    if proof.root != cp.root_hex:
        raise AuditChainBroken(f"the log's first {cp.size} entries no longer hash to the root checkpoint {cp.name} "
                               "signed: it was rewritten; run `scoring audit verify --checkpoints`")
    e = proof.entry
    form = form_named(cp.canonical_form)  # the form the checkpoint signed, which verification held the log to
    return {"entry": {"seq": e.seq, "event": e.event, "payload": e.payload, "prev_hash": e.prev_hash,
                      "entry_hash": e.entry_hash, "canonical_form": form.name,
                      "hashed_text": form.hashed_text(e.seq, e.event, e.payload, e.prev_hash)},
            "leaf_index": e.seq - 1, "tree_size": cp.size, "root": cp.root_hex, "path": proof.path,
            "checkpoint_name": cp.name, "checkpoint": cp.text}


def check_proof(proof: dict[str, Any], pub: Ed25519PublicKey, origin: str = DEFAULT_ORIGIN) -> Checkpoint:
    """Confirm an inclusion proof with the public key only; returns the checkpoint it is anchored in.

    Raises :class:`CheckpointError` saying which step failed: the checkpoint's signature, the entry's
    content against its hash, or the path against the signed root. The entry is hashed in the canonical
    form the signed checkpoint names, never the one the (unsigned) entry claims: a proof cannot pick the
    form that makes an edited entry match."""
    e, path, idx = _read_proof(proof)
    cp = parse_checkpoint(proof["checkpoint"], pub, str(proof.get("checkpoint_name", "<proof>")), origin)
    try:
        form = form_named(cp.canonical_form)
    except CanonicalFormError as exc:
        raise CheckpointError(f"{cp.name}: {exc}") from None
    if e.get("canonical_form", form.name) != form.name:
        raise CheckpointError(f"entry {e['seq']}: the proof says canonical form {e['canonical_form']!r} but "
                              f"checkpoint {cp.name} signed a log hashed with {form.name}: the proof was edited")
    try:
        recomputed = form.entry_hash(int(e["seq"]), e["event"], json.dumps(e["payload"]), e["prev_hash"])
    except ValueError as exc:
        raise CheckpointError(f"entry {e['seq']}: its payload has no {form.name} form ({exc})") from None
    if recomputed != e["entry_hash"]:
        raise CheckpointError(f"entry {e['seq']}: its content does not hash to {str(e['entry_hash'])[:16]}...: "
                              "the entry in the proof was edited")
    _check_hashed_text(e)
    if idx != int(e["seq"]) - 1:
        raise CheckpointError(f"leaf index {idx} does not belong to entry {e['seq']} (expected {int(e['seq']) - 1})")
    root = root_from_inclusion(idx, cp.size, leaf_hash(e["entry_hash"]), path)
    if root != cp.root:
        raise CheckpointError(f"the path does not lead from entry {e['seq']} to the root signed in {cp.name}: "
                              "the entry is not in that log")
    return cp


def _check_hashed_text(e: dict[str, Any]) -> None:
    """``hashed_text`` (proofs carry it for third parties) must hash to the entry and say what it says:
    otherwise a verifier that trusts it could be shown one entry while the proof holds another."""
    text = e.get("hashed_text")
    if text is None:  # a proof from before the field was added
        return
    if not isinstance(text, str) or hashlib.sha256(text.encode("utf-8")).hexdigest() != e["entry_hash"]:
        raise CheckpointError(f"entry {e['seq']}: hashed_text does not hash to {str(e['entry_hash'])[:16]}...: "
                              "the proof was edited")
    said = json.loads(text)
    if said != {"seq": e["seq"], "event": e["event"], "payload": e["payload"], "prev": e["prev_hash"]}:
        raise CheckpointError(f"entry {e['seq']}: hashed_text does not say what the entry says: the proof was edited")


PROOF_FIELDS = ("entry", "path", "leaf_index", "checkpoint")
ENTRY_FIELDS = ("seq", "event", "payload", "prev_hash", "entry_hash")


def _read_proof(proof: dict[str, Any]) -> tuple[dict[str, Any], list[bytes], int]:
    """The entry, sibling hashes and leaf index of a proof, or a :class:`CheckpointError` naming the field
    that is missing or malformed (an auditor edits these files by hand; a Python error would not help)."""
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"not an inclusion proof from `scoring audit prove`: {what}")

    missing = [f for f in PROOF_FIELDS if f not in proof]
    if missing:
        raise bad(f"missing field {', '.join(missing)} (expected {', '.join(PROOF_FIELDS)})")
    e = proof["entry"]
    if not isinstance(e, dict):
        raise bad("entry is not an object (expected the logged entry with seq, event, payload, prev_hash, "
                  "entry_hash)")
    missing = [f for f in ENTRY_FIELDS if f not in e]
    if missing:
        raise bad(f"entry is missing {', '.join(missing)} (expected {', '.join(ENTRY_FIELDS)})")
    if not isinstance(e["seq"], int) or isinstance(e["seq"], bool) or e["seq"] < 1:
        raise bad(f"entry.seq must be a positive whole number, found {json.dumps(e['seq'])}")
    for f in ("event", "prev_hash", "entry_hash"):
        if not isinstance(e[f], str):
            raise bad(f"entry.{f} must be text, found {json.dumps(e[f])}")
    idx = proof["leaf_index"]
    if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
        raise bad(f"leaf_index must be a whole number from 0, found {json.dumps(idx)}")
    if not isinstance(proof["path"], list):
        raise bad("path is not a list (expected the sibling hashes, hex text)")
    path = []
    for i, p in enumerate(proof["path"]):
        try:
            path.append(bytes.fromhex(p) if isinstance(p, str) else b"")
        except ValueError:
            path.append(b"")
        if len(path[-1]) != 32:
            raise bad(f"path[{i}] is not hex (expected 64 hex digits, a SHA-256 hash)")
    if not isinstance(proof["checkpoint"], str):
        raise bad("checkpoint is not text (expected the signed checkpoint from `scoring audit prove`)")
    return e, path, idx


def load_proof(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"proof file {path} not found") from None
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{path} is not JSON; expected the output of `scoring audit prove`") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object from `scoring audit prove`")
    return data
