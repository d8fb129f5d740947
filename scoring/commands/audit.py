"""``scoring audit``: verify the append-only audit log, sign checkpoints of it, prove single entries."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from scoring.commands._store import DB_OPTION, open_store

audit_app = typer.Typer(help="The append-only audit log: verify, checkpoint, prove.", no_args_is_help=True)

CHECKPOINTS = typer.Option(None, "--checkpoints", help="Folder of signed checkpoints to verify the log against "
                           "(default for `checkpoint`/`prove`: SCORING_AUDIT_CHECKPOINT_DIR or .scoring/checkpoints).")
T = TypeVar("T")
PUBLIC_KEY = typer.Option(None, "--public-key", help="Audit public key PEM (default: SCORING_AUDIT_PUBLIC_KEY, "
                          "else derived from SCORING_AUDIT_KEY).")


def _fail(exc: Exception, code: int = 2) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code)


def _public_key(path: Path | None) -> Any:
    from scoring.settings import get_settings
    from scoring.store.checkpoints import load_public_key

    s = get_settings()
    src = path or s.audit_public_key or s.audit_key
    return load_public_key(src) if src is not None else None


@audit_app.command("verify")
def verify(db: str | None = DB_OPTION, checkpoints: Path | None = CHECKPOINTS, public_key: Path | None = PUBLIC_KEY,
           as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Recompute the hash chain (and, with --checkpoints, the Merkle root at every signed checkpoint);
    exit 1 naming the first bad entry and the first checkpoint the log no longer extends."""
    from scoring.usecases import audit_trust

    res = _on_store(db, lambda store: audit_trust.verify(store, checkpoints,
                                                          _public_key(public_key) if checkpoints else None))
    if as_json:
        typer.echo(json.dumps(res.__dict__))
    elif res.ok:
        against = f"; extends all {res.checkpoints_checked} checkpoints{_unsigned_tail(res)}" if checkpoints else \
            " (no checkpoints given: a rewrite that recomputes every hash would pass; see --checkpoints)"
        typer.echo(f"audit log OK: {res.entries_checked} entries, head seq {res.last_seq}, Merkle root "
                   f"{res.merkle_root}, hashed as {_form_label(res.canonical_form)}{against}")
    else:
        typer.echo(broken_line(res), err=True)
    raise typer.Exit(0 if res.ok else 1)


def _form_label(name: str) -> str:
    """How the OK line names the store's canonical form: an auditor must know which canonicaliser reproduces
    the entry hashes (any RFC 8785 library, or Python's json.dumps for a log started before)."""
    from scoring.store.canonical import RFC8785

    return "RFC 8785 (rfc8785)" if name == RFC8785 else f"{name} (not RFC 8785: json.dumps, sorted keys)"


def _unsigned_tail(res: Any) -> str:
    """Say which entries no checkpoint covers yet: an insider can append or restore there undetected."""
    if res.entries_checked <= res.signed_through:
        return ""
    return (f"; entries {res.signed_through + 1}..{res.entries_checked} are after the newest checkpoint and "
            "protected only by the chain (sign one with `scoring audit checkpoint`)")


def broken_line(res: Any) -> str:
    """One line for a failed verification that says where the problem is and what still holds.

    Why not "N entries verified before it" for every case: after a checkpoint mismatch no entry of the
    signed range is proven (the rewrite is somewhere in it), and after a table check fails the whole log is
    intact; a compliance officer quoting the line must not overstate or understate either."""
    if res.kind == "checkpoint_file":
        return f"audit log NOT VERIFIED: {res.problem}"
    if res.kind == "checkpoint":
        proven = (f"entries 1..{res.intact_through} are proven by earlier checkpoints" if res.intact_through
                  else "no earlier checkpoint proves any entry")
        return f"audit log BROKEN (first bad checkpoint: {res.first_bad_checkpoint}): {res.problem} ({proven})"
    at = f" at entry {res.first_bad_seq}" if res.first_bad_seq is not None else ""
    if res.kind == "tables":
        return (f"audit log BROKEN{at}: {res.problem} (the log itself is intact, {res.entries_checked} entries; "
                "a table no longer says what it logged)")
    intact = f"entries 1..{res.intact_through} verified" if res.intact_through else "no entry before it"
    return f"audit log BROKEN{at}: {res.problem} ({intact})"


@audit_app.command("keygen")
def keygen(out: Path = typer.Option(..., "--out", help="Folder for audit-ed25519.pem (private) and .pub.pem.")) -> None:
    """Make the Ed25519 key pair that signs checkpoints. Keep the private key off the database server."""
    from scoring.errors import ScoringError
    from scoring.store.checkpoints import DEFAULT_ORIGIN, keygen, load_public_key, verifier_key

    try:
        priv, pub = keygen(out)
    except ScoringError as exc:
        _fail(exc)
        return
    typer.echo(f"private key {priv} (set SCORING_AUDIT_KEY), public key {pub} (SCORING_AUDIT_PUBLIC_KEY)", err=True)
    typer.echo(f"note verifier key: {verifier_key(DEFAULT_ORIGIN, load_public_key(pub))}")


@audit_app.command("checkpoint")
def checkpoint(db: str | None = DB_OPTION, out: Path | None = typer.Option(
        None, "--out", help="Checkpoint folder (default: SCORING_AUDIT_CHECKPOINT_DIR or .scoring/checkpoints)."),
        key: Path | None = typer.Option(None, "--key", help="Private key PEM (default: SCORING_AUDIT_KEY)."),
        init: bool = typer.Option(False, "--init", help="Create the checkpoint folder: the log's first checkpoint "
                                  "(without it, a missing folder is refused).")) -> None:
    """Verify the log against the folder's checkpoints, then sign its size and Merkle root into a new file."""
    from scoring.errors import ScoringError
    from scoring.settings import get_settings
    from scoring.store.checkpoints import CheckpointError, load_private_key
    from scoring.usecases import audit_trust

    s = get_settings()
    store = open_store(db, must_exist=True)
    try:
        src = key or s.audit_key
        if src is None:
            raise CheckpointError("no audit key: pass --key or set SCORING_AUDIT_KEY (make one with "
                                  "`scoring audit keygen --out DIR`)")
        res = audit_trust.checkpoint(store, out or s.resolved_checkpoint_dir(), load_private_key(src), init=init)
    except ScoringError as exc:
        _fail(exc, 1)
        return
    finally:
        store.close()
    if res.path is None:
        typer.echo(f"log unchanged since {res.latest} ({res.size} entries); no new checkpoint", err=True)
    else:
        typer.echo(f"checkpoint {res.path}: {res.size} entries, Merkle root {res.root}; copy it off this server",
                   err=True)
    typer.echo(str(res.path or res.latest))


@audit_app.command("prove")
def prove(seq: int = typer.Argument(..., min=1, help="Sequence number of the entry."), db: str | None = DB_OPTION,
          checkpoints: Path | None = CHECKPOINTS, public_key: Path | None = PUBLIC_KEY) -> None:
    """Print (JSON) an inclusion proof of one entry in the latest checkpoint covering it: the entry, the
    sibling hashes and the signed checkpoint, checkable with `scoring audit check-proof` and the public key."""
    from scoring.errors import ScoringError
    from scoring.settings import get_settings
    from scoring.store.checkpoints import CheckpointError
    from scoring.usecases import audit_trust

    store = open_store(db, must_exist=True)
    try:
        pub = _public_key(public_key)
        if pub is None:
            raise CheckpointError("no audit public key: pass --public-key or set SCORING_AUDIT_PUBLIC_KEY")
        proof = audit_trust.prove(store, seq, checkpoints or get_settings().resolved_checkpoint_dir(), pub)
        audit_trust.check_proof(proof, pub)
    except ScoringError as exc:
        _fail(exc, 1)
        return
    finally:
        store.close()
    typer.echo(json.dumps(proof, ensure_ascii=False))


@audit_app.command("check-proof")
def check_proof(proof: Path = typer.Argument(..., help="A proof from `scoring audit prove` (JSON file)."),
                public_key: Path | None = PUBLIC_KEY) -> None:
    """Check an inclusion proof with the public key alone (no database): exit 1 saying which step failed."""
    from scoring.errors import ScoringError
    from scoring.store.checkpoints import CheckpointError
    from scoring.usecases import audit_trust

    try:
        pub = _public_key(public_key)
        if pub is None:
            raise CheckpointError("no audit public key: pass --public-key or set SCORING_AUDIT_PUBLIC_KEY")
        data = audit_trust.load_proof(proof)
        cp = audit_trust.check_proof(data, pub)
    except ScoringError as exc:
        _fail(exc, 1)
        return
    e = data["entry"]
    typer.echo(f"proof OK: entry {e['seq']} ({e['event']}) is in the log of {cp.size} entries signed in "
               f"{cp.name} at {cp.time}")


@audit_app.command("trace")
def trace(submission: str = typer.Argument(..., help="The submission's id in your file (its store id also works)."),
          rubric: str | None = typer.Option(None, "--rubric", help="The rubric, when two rubrics share the id."),
          db: str | None = DB_OPTION, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every audit entry one submission's credential decision rests on: the rubric, model and policy, each
    machine and human score, adjudications, decisions, credentials and feedback, in log order (prove any of
    them with `scoring audit prove SEQ`), with the evidence hash each score and decision pinned. Warns when
    an issued credential no longer rests on the record, or the evidence no longer has the pinned hash."""
    from scoring.commands.credentials import resolve_submission
    from scoring.usecases.trace import trace as trace_submission

    res = _on_store(db, lambda store: trace_submission(store, resolve_submission(store, submission, rubric)))
    if as_json:
        typer.echo(json.dumps({"submission": res.submission, "submission_id": res.submission_id,
                               "rubric": res.rubric, "evidence_hash": res.evidence_hash, "entries": [line.__dict__ for line in res.lines],
                               "warnings": res.warnings, "attempts": res.attempts}, ensure_ascii=False))
        return
    typer.echo(f"submission {res.submission} (store id {res.submission_id}), rubric {res.rubric}: "
               f"{len(res.lines)} audit entries")
    typer.echo(f"evidence {res.evidence_hash}: {_pinned_by(res)}")
    if len(res.attempts) > 1:
        typer.echo(f"attempt {next(k for k, a in enumerate(res.attempts, 1) if a['this'])} of {len(res.attempts)}: "
                   + " -> ".join(_attempt(a) for a in res.attempts))
    for line in res.lines:
        typer.echo(f"entry {line.seq} {line.event}: {line.text}")
    for w in res.warnings:
        typer.echo(f"WARNING: {w}")


def _attempt(a: dict[str, Any]) -> str:
    """One attempt of a resubmission chain in words: ``T-100 (store id 1, not_yet, entry 25)``."""
    said = "no decision" if a["decision"] is None else f"{a['decision']}, entry {a['decision_entry']}"
    return f"{a['submission']} (store id {a['submission_id']}, {said}{'; this trace' if a['this'] else ''})"


def _on_store(db: str | None, work: Callable[[Any], T]) -> T:
    """``work(store)`` on the existing store at ``db``, closed after; a ScoringError ends the command in words."""
    from scoring.errors import ScoringError

    store = open_store(db, must_exist=True)
    try:
        return work(store)
    except ScoringError as exc:
        _fail(exc)
        raise  # unreachable: _fail exits
    finally:
        store.close()


def _pinned_by(res: Any) -> str:
    """Which entries pinned the evidence as it is stored now: the trace's claim that they scored this text."""
    same = [line.seq for line in res.lines if line.evidence_hash == res.evidence_hash]
    if same:
        return f"SHA-256 of the stored evidence and metadata, pinned by entries {', '.join(map(str, same))}"
    if any(line.evidence_hash for line in res.lines):
        return "SHA-256 of the stored evidence and metadata, which no entry pinned (see the warnings)"
    return "SHA-256 of the stored evidence and metadata; no entry pins it (scored before entries pinned evidence)"


@audit_app.command("tail")
def tail(db: str | None = DB_OPTION, n: int = typer.Option(20, "-n", help="How many entries.")) -> None:
    """Print the last N audit entries as JSON lines."""
    store = open_store(db, must_exist=True)
    try:
        entries = list(store.audit_entries(since_seq=max(0, store.audit_size() - n)))[-n:]
    finally:
        store.close()
    for e in entries:
        typer.echo(json.dumps({"seq": e.seq, "event": e.event, "payload": e.payload, "hash": e.entry_hash}))


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
