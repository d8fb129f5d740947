"""``scoring bench rsmtool-parity``: the report's agreement figures next to RSMTool's ``rsmeval`` on the same
ASAP-AES fold-0 test scores (RSMTool installed into its own virtual environment on first use)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    from scoring.commands._bench import bench_app

    @bench_app.command("rsmtool-parity")
    def bench_rsmtool_parity(
        data_dir: Path = typer.Option(..., "--data-dir", help="Folder holding training_set_rel3.tsv and fold_*/."),
        fold: int = typer.Option(0, "--fold", min=0, max=4, help="Fold whose test ids are compared."),
        sets: list[int] = typer.Option([], "--set", help="Essay set (repeatable; default all 8)."),
        cache_dir: Path = typer.Option(Path(".scoring/bench-cache"), "--cache-dir", help="Embedding cache."),
        out: Path = typer.Option(Path("bench-out/rsmtool-parity"), "--out", help="Predictions, store, rsmeval runs."),
        venv: Path = typer.Option(Path(".scoring/rsmtool-venv"), "--rsmtool-venv",
                                  help="Virtual environment for RSMTool (created with pip when missing)."),
        fresh: bool = typer.Option(False, "--fresh", help="Retrain instead of reusing saved predictions."),
    ) -> None:
        """Exact agreement, kappa, QWK, SMD, R2, RMSE, PRMSE and DSM from the report's code and from rsmeval;
        last line one JSON object (n_metrics_compared, max_abs_diff, differs); exit 1 when any differs."""
        from eval.bench_rsmtool_parity import run

        try:
            res = run(data_dir, fold=fold, sets=sorted(set(sets)) or None, cache_dir=cache_dir, out_dir=out,
                      venv=venv, fresh=fresh, echo=typer.echo)
        except (FileNotFoundError, RuntimeError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(json.dumps(res))
        if res["differs"]:
            raise typer.Exit(1)
