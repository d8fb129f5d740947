"""``scoring bench agreement`` and ``scoring audit asap-check``: the ASAP-AES human-human acceptance.

Imports both raters of every ASAP-AES set into a fresh store, builds the report, and checks its
human-human QWK per set against scikit-learn on the raw file and the published figures (3 decimals).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def _run(data_dir: Path, out: Path, db: str | None, bootstrap: int) -> None:
    from eval.bench_agreement import run

    res = run(data_dir, out, db_url=db, n_boot=bootstrap, log=typer.echo)
    typer.echo(json.dumps({k: v for k, v in res.items() if k != "rows"}))
    if not (res["all_match"] and res["audit_ok"]):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    from scoring.commands._bench import bench_app
    from scoring.commands.audit import audit_app

    data_opt = typer.Option(..., "--data-dir", help="Folder holding training_set_rel3.tsv (ASAP-AES).")
    out_opt = typer.Option(Path("bench-out/agreement"), "--out", help="Output folder (store, rubrics, report).")
    db_opt = typer.Option(None, "--db", help="Store URL (default: a fresh SQLite file in --out).")
    boot_opt = typer.Option(200, "--bootstrap", help="Bootstrap resamples for the QWK intervals.")

    @bench_app.command("agreement")
    def bench_agreement(data_dir: Path = data_opt, out: Path = out_opt, db: str | None = db_opt,
                        bootstrap: int = boot_opt) -> None:
        """Human-human QWK per ASAP-AES set through import -> store -> report; exit 1 on any mismatch."""
        _run(data_dir, out, db, bootstrap)

    @audit_app.command("asap-check")
    def asap_check(data_dir: Path = data_opt, out: Path = out_opt, db: str | None = db_opt,
                   bootstrap: int = boot_opt) -> None:
        """Same as `scoring bench agreement` (kept for installs without the bench group)."""
        _run(data_dir, out, db, bootstrap)
