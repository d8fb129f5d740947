"""``scoring bench api``: load-test the HTTP API (submissions under concurrency, claim races)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    from scoring.commands._bench import bench_app

    @bench_app.command("api")
    def bench_api(
        model: Path = typer.Option(None, "--model", help="Model directory (default: train the demo model into --out)."),
        out: Path = typer.Option(Path("bench-out/api"), "--out", help="Working folder (model, store, server log)."),
        duration: float = typer.Option(60.0, "--duration", min=1.0, help="Seconds of submission load."),
        clients: int = typer.Option(10, "--clients", min=1, help="Concurrent submitting clients."),
        claims: int = typer.Option(500, "--claims", min=1, help="Claims per assessor (2 assessors)."),
        claim_workers: int = typer.Option(5, "--claim-workers", min=1, help="Concurrent connections per assessor."),
    ) -> None:
        """10 clients x 60 s of POST /submissions (req/s, p50/p99, errors), then 2 assessors x 500 concurrent
        claims (zero double-claims). Last line: one JSON object; exit 1 when a target is missed."""
        from eval.bench_api import run

        res = run(model=model, out=out, duration=duration, clients=clients, claims=claims,
                  claim_workers=claim_workers, log=lambda m: typer.echo(m, err=True))
        typer.echo(json.dumps(res))
        if not res["pass"]:
            raise typer.Exit(1)
