"""``scoring credentials``: issuer keys, signed Open Badges 3.0 credentials, their verification, and feedback."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from scoring.commands._store import DB_OPTION, open_store
from scoring.commands.batch import _fail, err

credentials_app = typer.Typer(help="Open Badges 3.0 credentials for earned micro-credentials, and feedback.",
                              no_args_is_help=True)


@credentials_app.command("keygen")
def keygen(directory: Annotated[Path, typer.Argument(help="Folder for the issuer's key pair.")]) -> None:
    """Create the issuer's Ed25519 signing key (private PEM, mode 0600) and its public key."""
    from scoring.badges import keygen as make

    try:
        priv, pub = make(directory)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    typer.echo(f"private key {priv} (keep it secret, outside the database); public key {pub} (give it to verifiers)")


@credentials_app.command("issue")
def issue(
    key: Annotated[Path, typer.Option("--key", help="The issuer's private key (from keygen).")],
    issuer_id: Annotated[str, typer.Option("--issuer-id", help="URL or DID of the issuing organisation.")],
    issuer_name: Annotated[str, typer.Option("--issuer-name", help="Its name as shown on the badge.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for <external id>.jwt and .json files; a valid "
                                      "credential already there for the same decision is kept, not signed again.")],
    submission: Annotated[list[str] | None, typer.Option(
        "--submission", help="The submission's id in your file (or its store id); repeatable.")] = None,
    rubric: Annotated[str | None, typer.Option(
        "--rubric", help="Every earned submission of this rubric (and the rubric of --submission ids).")] = None,
    valid_years: Annotated[int | None, typer.Option(help="Expiry in years (default: none).")] = None,
    reissue: Annotated[bool, typer.Option("--reissue", help="Sign again even where --out already holds the "
                                          "credential of the same decision; the old one is revoked (reason "
                                          "'replaced by <new id>').")] = False,
    despite_revocation: Annotated[str | None, typer.Option(
        "--despite-revocation", help="Sign again where the credential of the same decision was revoked (otherwise "
        "that revocation is final and it is skipped); the reason is logged with the issuance.")] = None,
    db: str | None = DB_OPTION,
) -> None:
    """Sign an OpenBadgeCredential (VC-JWT, Ed25519) for each earned submission; recorded in the audit log. A
    newer credential revokes the submission's older valid one in the same transaction."""
    from scoring import status_list
    from scoring.badges import CredentialError, Issuer
    from scoring.errors import ScoringError
    from scoring.usecases import credentials, revocation

    k = _signing_key(key)
    store = open_store(db, must_exist=True)
    try:
        if not submission and rubric is None:
            _fail(ValueError("name --submission ID (repeatable) or --rubric RUBRIC_ID"))
        if rubric is not None and rubric not in {r.rubric_id for r in store.rubrics()}:
            _fail(ValueError(f"rubric {rubric!r} is not in the store (rubrics: "
                             f"{sorted({r.rubric_id for r in store.rubrics()})})"))
        try:
            ids = [resolve_submission(store, x, rubric) for x in submission or []]
        except ScoringError as exc:
            _fail(exc)
            return
        standing = store.latest_decisions()
        if rubric is not None:  # every earned submission of the rubric, with any named ones
            earned = {sid for sid, d in standing.items() if d.rubric_id == rubric and d.outcome == "earned"}
            ids += sorted(earned - set(ids))
        if not ids:
            typer.echo(f"no submission of rubric {rubric!r} has an 'earned' decision yet: nothing to sign")
            raise typer.Exit(1)
        out.mkdir(parents=True, exist_ok=True)
        done = kept = final = held = 0
        logged: dict[int, list[Any]] = {}  # the log read once: every credential issued, per submission
        for c in revocation.issued(store):
            logged.setdefault(c.submission_id, []).append(c)
        revoked = revocation.revocations(store)
        touched = {status_list.issuer_key(issuer_id)}  # issuers whose lists change
        for sid in ids:
            ext = store.submission(sid).external_id
            stem = credential_stem(ext)
            d = standing.get(sid)
            mine = logged.get(sid, [])
            valid = {c.credential_id for c in mine if d is not None and c.decision_id == d.id
                     and c.credential_id not in revoked}
            if not reissue and _held(out, stem) in valid:
                kept += 1  # the valid credential of this very decision is already in the folder
                continue
            # otherwise a new one is signed; a valid one of the submission it replaces (a revised decision,
            # --reissue, or one logged but never written to the folder) is revoked in the same transaction
            try:
                got = credentials.issue_replacing(store, sid, k, Issuer(issuer_id, issuer_name), actor="cli",
                                                  valid_years=valid_years, prior=mine,
                                                  despite_revocation=despite_revocation)
            except credentials.RevokedBefore as exc:
                final += 1
                typer.echo(f"not signed: {exc}")
                continue
            except credentials.HeldByAnotherAttempt as exc:
                held += 1
                typer.echo(f"not signed: {exc}")
                continue
            except CredentialError as exc:
                err.print(f"[yellow]skipped[/] {sid}: {exc}")
                continue
            _write_whole(out / f"{stem}.jwt", got.token + "\n")
            _write_whole(out / f"{stem}.json", json.dumps(got.credential, indent=1, ensure_ascii=False))
            done += 1
            for old, seq in zip(got.replaced, got.replaced_seqs, strict=True):
                typer.echo(f"revoked {old.credential_id} ({ext}, entry {seq}): replaced by {got.credential['id']}")
                if old.issuer_id:
                    touched.add(status_list.issuer_key(old.issuer_id))
        typer.echo(f"{done} credential(s) signed -> {out}" + (
            f"; {kept} already in {out} for the same decision, kept (--reissue signs them again)" if kept else "")
            + (f"; {final} not signed again: revoked for the same decision (said above)" if final else "")
            + (f"; {held} not signed: the educator holds it from another attempt (said above)" if held else ""))
        # Always: the folder an issuer publishes must never hold a list older than the store's revocations
        # (revoked through the API or `revoke` without --out since the last run), even when nothing is signed.
        for who in sorted(touched):
            write_status_lists(store, who, k, out)
        if done + kept + final + held < len(ids):
            raise typer.Exit(1)  # something asked for was not signed (said above, per submission)
    finally:
        store.close()


def _signing_key(path: Path) -> Any:
    """The issuer's private key, or the command ends with the key file's problem in words (exit 2)."""
    from scoring.badges import CredentialError, load_key

    try:
        return load_key(path, private=True)
    except CredentialError as exc:
        _fail(exc)
        raise  # unreachable: _fail exits


def credential_stem(external_id: str) -> str:
    """The file name (without extension) of a submission's credential.

    An id that is a safe file name is used as it is; any other keeps a short hash of itself, so two ids
    that differ only in characters a file name cannot hold ('cohort 1/ana', 'cohort_1_ana') never share
    a file and overwrite each other's credential."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in external_id)
    if safe == external_id and not safe.startswith("."):
        return safe
    return f"{safe}-{hashlib.sha256(external_id.encode('utf-8')).hexdigest()[:8]}"


def _held(out: Path, stem: str) -> str | None:
    """The id of the credential ``out`` holds under ``stem``; None unless both its files are there (the JSON
    is written last) and readable."""
    if not (out / f"{stem}.jwt").is_file():
        return None
    try:
        vc = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(vc.get("id")) if isinstance(vc, dict) else None


def _write_whole(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (temporary file, fsync, rename): a run killed while writing never
    leaves a truncated credential that looks issued."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_status_lists(store: Any, issuer_id: str, key: Any, out: Path) -> None:
    """Sign every status list of ``issuer_id`` into ``out/status/<n>.jwt`` and say where it goes (a folder of
    its own, so that ``verify out/*.jwt`` reads only the educators' credentials)."""
    from scoring import status_list
    from scoring.usecases import revocation

    (out / "status").mkdir(parents=True, exist_ok=True)
    for n, (token, listed, revoked) in revocation.signed_lists(store, issuer_id, key).items():
        path = out / "status" / f"{n}.jwt"
        _write_whole(path, token + "\n")
        typer.echo(f"status list {status_list.list_url(issuer_id, n)} ({listed} credential(s), {revoked} revoked) "
                   f"-> {path}: publish it at that URL")


@credentials_app.command("verify")
def verify(
    files: Annotated[list[Path], typer.Argument(help="VC-JWT files (.jwt).")],
    key: Annotated[Path, typer.Option("--key", help="The issuer's public key (PEM).")],
    status_lists: Annotated[list[Path] | None, typer.Option(
        "--status-list", help="The issuer's published status list credential (status/<n>.jwt, as fetched from "
        "the credential's statusListCredential URL); repeatable. Without it the revocation status is not "
        "checked.")] = None,
) -> None:
    """Check each credential's signature, dates, structure and (with --status-list) revocation; exit 1 if any
    fails or is revoked."""
    from scoring import status_list
    from scoring.badges import CredentialError, load_key
    from scoring.badges import verify as check

    try:
        k = load_key(key, private=False)
    except CredentialError as exc:
        _fail(exc)
        return
    lists = []
    for f in status_lists or []:
        try:
            lists.append(status_list.read_list(f.read_text(encoding="utf-8"), k))
        except OSError as exc:
            _fail(ValueError(f"cannot read the status list {f}: {exc.strerror or exc}"))
        except CredentialError as exc:
            _fail(CredentialError(f"status list {f}: {exc}"))
    bad = 0
    for f in files:
        try:
            vc = check(f.read_text(encoding="utf-8"), k)
        except (CredentialError, OSError) as exc:
            typer.echo(f"FAIL {f}: {exc}")
            bad += 1
            continue
        levels = {r["resultDescription"].rsplit("/", 1)[-1]: r["achievedLevel"].rsplit("/", 1)[-1]
                  for r in vc["credentialSubject"].get("result", [])}
        st = status_list.check(vc, lists)
        if st.state == "revoked":
            typer.echo(f"REVOKED {f}: {vc['name']} issued by {vc['issuer']['name']} on {vc['validFrom']}; {st.text}")
            bad += 1
            continue
        if st.state == "unknown":
            typer.echo(f"FAIL {f}: {st.text}")
            bad += 1
            continue
        typer.echo(f"ok {f}: {vc['name']} issued by {vc['issuer']['name']} on {vc['validFrom']}, levels {levels}; "
                   f"{st.text}")
    if bad:
        raise typer.Exit(1)


@credentials_app.command("revoke")
def revoke(
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log, shown by audit trace).")],
    by: Annotated[str, typer.Option("--by", help="Who revokes (a name the record keeps).")],
    key: Annotated[Path, typer.Option("--key", help="The issuer's private key: its id is logged, and it signs "
                                      "the refreshed status list with --out.")],
    submission: Annotated[list[str] | None, typer.Option(
        "--submission", help="Revoke this submission's issued credentials: its id in your file (or its store id); "
        "repeatable.")] = None,
    stale: Annotated[bool, typer.Option("--stale", help="Revoke every issued credential whose submission's "
                                        "standing decision is no longer 'earned' (what audit trace warns about).")]
    = False,
    rubric: Annotated[str | None, typer.Option("--rubric", help="When two rubrics share a submission id.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the refreshed status list(s) here to publish.")]
    = None,
    db: str | None = DB_OPTION,
) -> None:
    """Revoke issued credentials: log who, which and why (credential_revoked) and set their status list bits."""
    from scoring import status_list
    from scoring.errors import ScoringError
    from scoring.usecases import revocation

    if bool(submission) == stale:
        _fail(ValueError("name what to revoke: --submission ID (repeatable) or --stale, not both"))
    k = _signing_key(key)
    store = open_store(db, must_exist=True)
    try:
        try:
            if stale:
                todo = revocation.stale(store)
                if not todo:
                    typer.echo("no issued credential is stale (every one still rests on an 'earned' standing "
                               "decision, or was revoked): nothing revoked")
                    return
            else:
                todo = [c for x in submission or []
                        for c in revocation.of_submission(store, resolve_submission(store, x, rubric))]
            done = revocation.revoke(store, todo, reason=reason, by=by, kid=k.thumbprint())
        except ScoringError as exc:
            _fail(exc)
            return
        for r in done:
            ext = store.submission(r.credential.submission_id).external_id
            if r.already:
                typer.echo(f"{r.credential.credential_id} (submission {ext}) already revoked by {r.by} on "
                           f"{r.at[:10]} (entry {r.seq}): {r.reason}; nothing new recorded")
                continue
            where = (f"index {r.credential.status_index} of {r.list_url}" if r.visible else
                     "issued without a status entry: verifiers cannot see this revocation; tell the holder, and "
                     "those who rely on it, yourself")
            typer.echo(f"revoked {r.credential.credential_id} (submission {ext}, entry {r.seq}; {where})")
        new = [r for r in done if not r.already]
        typer.echo(f"{len(new)} credential(s) revoked by {by}: {reason}")
        issuers = sorted({status_list.issuer_key(r.credential.issuer_id) for r in new
                          if r.visible and r.credential.issuer_id})
        if out is not None:
            for issuer_id in issuers:
                write_status_lists(store, issuer_id, k, out)
        elif issuers:
            typer.echo("publish the change: scoring credentials status-list --key KEY --issuer-id "
                       f"{' / '.join(issuers)} --out DIR, then put DIR/status/<n>.jwt at its URL")
    finally:
        store.close()


@credentials_app.command("status-list")
def status_list_cmd(
    key: Annotated[Path, typer.Option("--key", help="The issuer's private key (from keygen).")],
    issuer_id: Annotated[str, typer.Option("--issuer-id", help="URL of the issuing organisation, as given to "
                                           "issue.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for status/<n>.jwt, the list(s) to publish.")],
    db: str | None = DB_OPTION,
) -> None:
    """Sign the issuer's revocation status list(s) (BitstringStatusListCredential, VC-JWT) to publish at
    {issuer-id}/status/<n>, where verifiers fetch them."""

    k = _signing_key(key)
    store = open_store(db, must_exist=True)
    try:
        from scoring import status_list

        known = sorted({status_list.issuer_key(s.issuer_id) for s in store.status_slots()})
        if known and status_list.issuer_key(issuer_id) not in known:
            err.print(f"[yellow]note[/]: no credential was issued with status under {issuer_id!r} (issuers: {known}); "
                      "the list is empty")
        write_status_lists(store, issuer_id, k, out)
    finally:
        store.close()


@credentials_app.command("feedback")
def feedback(
    submission: Annotated[str, typer.Argument(help="A 'not yet' submission: its id in your file (or its store id).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for feedback-<your submission id>.html and .json.")],
    model: Annotated[Path | None, typer.Option("--model", help="Model directory: quote the evidence passages.")] = None,
    db: str | None = DB_OPTION,
) -> None:
    """Write the feedback for a 'not yet' decision as HTML and JSON."""
    from scoring.errors import ScoringError
    from scoring.usecases import credentials

    store = open_store(db, must_exist=True)
    try:
        sid = resolve_submission(store, submission, None)
        m = None
        if model is not None:
            from models.artifact import load_model
            from scoring.settings import get_settings

            s = get_settings()
            m = load_model(model, cache_dir=s.resolved_cache_dir(), precision=s.encoder_precision)
        fb = credentials.feedback(store, sid, m)
        ev = store.submission(sid).evidence
    except ScoringError as exc:
        _fail(exc)
        return
    finally:
        store.close()
    out.mkdir(parents=True, exist_ok=True)
    stem = f"feedback-{credential_stem(str(fb['submission']))}"  # the issuer's id, as credential files are named
    (out / f"{stem}.json").write_text(json.dumps(fb, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / f"{stem}.html").write_text(credentials.feedback_html(fb, ev), encoding="utf-8")
    typer.echo(f"feedback for {fb['submission']}: {len(fb['criteria'])} criteria to strengthen -> {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(credentials_app, name="credentials")


def resolve_submission(store: Any, given: str, rubric: str | None) -> int:
    """The store id of the submission a user named: by the id in their file first (what they know), else
    as a store id. Refused in words when it names none, or submissions of several rubrics."""
    from scoring.errors import InvalidRequest, NotFound

    named = store.submissions_named(given, rubric)
    if len(named) == 1:
        return int(named[0].id)
    if len(named) > 1:
        raise InvalidRequest(f"submission id {given!r} names submissions of rubrics "
                             f"{sorted({s.rubric_id for s in named})}: add --rubric to say which")
    if given.strip().isdigit():
        sub = store.submission(int(given))  # NotFound names it
        if rubric is not None and sub.rubric_id != rubric:  # a number in the user's file, not a store id
            raise NotFound(f"no submission {given!r} for rubric {rubric!r}")
        err.print(f"submission {given} is the store's id of {sub.external_id!r} ({sub.rubric_id})")
        return int(sub.id)
    raise NotFound(f"no submission {given!r} in the store" + (f" for rubric {rubric!r}" if rubric else ""))
