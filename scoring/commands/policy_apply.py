"""``scoring policy apply``: put a routing policy in charge of the work still waiting for people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from scoring.commands._store import DB_OPTION


def apply(
    model: Annotated[Path, typer.Option("--model", help="Model directory (or one version directory) the policy was "
                                        "tuned for: its conformal sets decide the set-size rules.")],
    policy: Annotated[Path, typer.Option("--policy", help="Routing policy YAML (from `scoring calibrate`).")],
    version: Annotated[str | None, typer.Option("--version", help="Model version (default: LATEST).")] = None,
    db: str | None = DB_OPTION,
    issuer: Annotated[str | None, typer.Option(
        "--issuer", help="Only this issuer's submissions (default: every issuer's in the store).")] = None,
    by: Annotated[str | None, typer.Option(
        "--by", help="Who puts the policy into service, as the audit log records it (default: SCORING_ISSUER).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; record nothing.")] = False,
) -> None:
    """Re-route the stored submissions still waiting for people under POLICY: items it accepts leave the
    assessors' queue, items it sends to people join it. Work a person has started, and submissions whose
    machine scores already stand, are kept. Re-run it after a kill: it finishes the rest."""
    from models.artifact import load_model
    from scoring.commands._store import open_store
    from scoring.commands.batch import _fail, err, quiet_loading
    from scoring.routing import load_policy_for
    from scoring.settings import get_settings
    from scoring.usecases.reroute import apply_policy

    s = get_settings()
    if not policy.exists():  # said before the model loads
        _fail(FileNotFoundError(f"--policy {policy} does not exist: expected a policy YAML from `scoring calibrate`"))
    st = open_store(db, must_exist=True)
    try:
        quiet_loading()
        m = load_model(model, version, cache_dir=s.resolved_cache_dir(), precision=s.encoder_precision,
                       batch_size=s.batch_size)
        pol = load_policy_for(m, policy)
        res = apply_policy(st, m, pol, by=by or s.issuer, issuer=issuer, dry_run=dry_run)
    except Exception as exc:  # noqa: BLE001 - every failure reaches the user as one clear line
        _fail(exc)
        return
    finally:
        st.close()
    would = "would be " if dry_run else ""
    if not res.submissions:
        err.print(f"[bold red]error:[/] the store holds no submission of rubric {res.rubric}"
                  + (f" from issuer {issuer!r}" if issuer else "") + "; nothing to route")
        typer.echo(json.dumps(res.as_dict()))
        raise typer.Exit(1)
    moved = ", ".join(f"{k} {res.routes_before.get(k, 0)} -> {res.routes_after.get(k, 0)}"
                      for k in ("auto", "audit", "human", "double") if res.routes_before.get(k) or res.routes_after.get(k))
    err.print(f"policy {res.policy_version} on rubric {res.rubric}: {res.rerouted} submission(s) {would}re-routed"
              + (f" (criterion routes {moved})" if moved else "")
              + (f", {res.requeued} whose queue slots {would}brought in line with their routes" if res.requeued else "")
              + f", {res.unchanged} already routed by it"
              + f"; queue: {res.slots_withdrawn} slot(s) {would}withdrawn, {res.slots_opened} {would}opened")
    kept = [(res.in_progress, "a person has started them"), (res.settled, "no first or second slot open: their machine scores stand"),
            (res.selected, "queued by `scoring select` to teach the model"),
            (res.not_scored, f"not scored by model {res.model_version} (score them with `scoring score --store`)"),
            (res.newer_model, f"scored by another model after {res.model_version}: that model's routes are in charge")]
    for n, why in kept:
        if n:
            err.print(f"kept {n}: {why}")
    typer.echo(json.dumps(res.as_dict()))


def register(app: typer.Typer) -> None:
    from scoring.commands.policy_check import policy_app

    policy_app.command("apply")(apply)
