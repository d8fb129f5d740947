"""``scoring drift``: judge each criterion's rolling blind-audit sample and suspend automation on failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from scoring.commands._store import DB_OPTION, gate_policy, open_store

drift_app = typer.Typer(help="Drift monitor over the rolling audit sample.", no_args_is_help=True)


@drift_app.command("check")
def check(
    rubric: str = typer.Option(..., "--rubric", help="Rubric id."),
    db: str | None = DB_OPTION,
    policy: Path | None = typer.Option(None, "--policy", help="Gate policy YAML (default: bundled ETS policy)."),
    window: int | None = typer.Option(None, "--window", min=1,
                                      help="Most recent N audit items (default: policy/settings)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report only; do not suspend."),
    fail_on_suspend: bool = typer.Option(False, "--fail-on-suspend", help="Exit 2 when a criterion is suspended."),
    routing_policy: Path | None = typer.Option(
        None, "--routing-policy", help="Routing policy YAML whose recorded bar the promise check uses "
                                       "(default: policy.yaml beside the promoted model, else the scale's default)."),
) -> None:
    """Per criterion: n, QWK, SMD, gate status; suspends automation where the gate fails."""
    from eval.drift import check_drift
    from scoring.errors import ScoringError
    from scoring.policy import load_policy as load_routing_policy
    from scoring.settings import get_settings

    try:
        rp = load_routing_policy(routing_policy) if routing_policy is not None else None
    except Exception as exc:  # noqa: BLE001 - a missing or broken file reaches the user as one clear line
        from scoring.commands.batch import _fail

        _fail(exc)
        return
    gates = gate_policy(policy)
    store = open_store(db, must_exist=True)
    try:
        results = check_drift(store, rubric, policy=gates,
                              window=window or get_settings().audit_sample_window, act=not dry_run,
                              routing_policy=rp)
        suspended = {r.criterion: store.is_suspended(rubric, r.criterion) for r in results}
    except ScoringError as exc:  # e.g. an unreadable routing policy beside the promoted model
        from scoring.commands.batch import _fail

        _fail(exc)
        return
    finally:
        store.close()
    for r in results:
        q, s = r.metrics.get("qwk"), r.metrics.get("smd")
        pc = r.extra.get("policy_check", {})
        typer.echo(
            f"{rubric}/{r.criterion}: n={r.metrics['n']} (window {r.window}, {_models(r.model_version, r.extra)}) "
            f"QWK={_figure(q, '.3f')} SMD={_figure(s, '+.3f')} -> {r.gate.summary()}"
            f"; policy promise on {pc.get('n_checked', 0)} accepted double-scored items: {pc.get('status', '-')}"
            + ("  [SUSPENDED NOW]" if r.suspended_now else "  [suspended]" if suspended[r.criterion] else "")
        )
    typer.echo(json.dumps({r.criterion: {"status": r.gate.status, "suspended": suspended[r.criterion],
                                         "policy_check": r.extra.get("policy_check", {}).get("status"),
                                         "n": r.metrics["n"], "model": r.model_version,
                                         "models": r.extra.get("models", {})}
                           for r in results}))
    if fail_on_suspend and any(suspended.values()):
        raise typer.Exit(2)


def _figure(x: float | None, fmt: str) -> str:
    """A figure for the terminal, ``n/a`` where it is undefined (NaN: one level only), as the report prints it."""
    return "n/a" if x is None or x != x else format(x, fmt)


def _models(promoted: str | None, extra: dict[str, Any]) -> str:
    """Which model's scores the audit window judged: the promoted one, or, with none promoted, every model
    version in the window with its item count, so that a figure pooled over two models says so."""
    if promoted:
        return f"model {promoted}"
    counts = extra.get("models") or {}
    if not counts:
        return "no model promoted"
    return "no model promoted; window holds " + ", ".join(f"{mv} ({n})" for mv, n in counts.items())


@drift_app.command("simulate")
def simulate(
    seeds: int = typer.Option(10, help="How many seeds to run."),
    offset: int = typer.Option(1, help="Points the drifted scorer adds to every score."),
    policy: Path | None = typer.Option(None, "--policy", help="Gate policy YAML."),
) -> None:
    """How many drifted audit items it takes to trip the gate (temporary SQLite store per seed)."""
    from statistics import median

    from eval.drift import simulate_offset_drift
    pol = gate_policy(policy)
    counts = []
    for seed in range(seeds):
        sim = simulate_offset_drift(offset=offset, policy=pol, seed=seed)
        counts.append(sim.items_to_trip)
        typer.echo(f"seed {seed}: tripped after {sim.items_to_trip} items ({', '.join(sim.failing_checks)}); "
                   f"healthy QWK {sim.qwk_before:.3f} SMD {sim.smd_before:+.3f}")
    ok = [c for c in counts if c is not None]
    typer.echo(json.dumps({"window": pol.drift_window, "offset": offset, "seeds": seeds, "items_to_trip": counts,
                           "min": min(ok) if ok else None, "median": median(ok) if ok else None,
                           "max": max(ok) if ok else None, "never": counts.count(None)}))


def register(app: typer.Typer) -> None:
    app.add_typer(drift_app, name="drift")
