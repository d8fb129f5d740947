"""``scoring bench audit``: append, verify, checkpoint-verify and prove on a million-entry audit log."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    from scoring.commands._bench import bench_app

    @bench_app.command("audit")
    def bench_audit(
        out: Path = typer.Option(Path("bench-out/audit"), "--out", help="Working folder (SQLite store, checkpoints)."),
        events: int = typer.Option(1_000_000, "--events", min=2, help="Audit entries to append."),
        block: int = typer.Option(1000, "--block", min=1, help="Entries per write transaction."),
        proofs: int = typer.Option(50, "--proofs", min=1, help="Inclusion proofs to time."),
        postgres: str = typer.Option("postgresql+psycopg://postgres@127.0.0.1:5432/test", "--postgres",
                                     help="PostgreSQL URL, used when it answers ('' to skip)."),
    ) -> None:
        """Append EVENTS entries on SQLite (then PostgreSQL when reachable), then time verification, verification
        against signed checkpoints and inclusion proofs. Last line: one JSON object; exit 1 when verifying takes
        60 s or more."""
        from eval.bench_audit import run

        res = run(out, events=events, block=block, proofs=proofs, postgres=postgres or None,
                  log=lambda m: typer.echo(m, err=True))
        typer.echo(json.dumps(res))
        if not res["pass"]:
            raise typer.Exit(1)
