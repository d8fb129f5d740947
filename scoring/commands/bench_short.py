"""``scoring bench short``: short answers (ASAP-AES sets 3-6, CEReD sentences) through train-then-score, next to a peer."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add ``short`` to the shared ``bench`` group."""
    from scoring.commands._bench import bench_app

    @bench_app.command("short")
    def short(
        data_dir: Path = typer.Option(..., "--data-dir", help="The folder holding asap_aes/ and cered_reflections/ "
                                      "(e.g. ../shared/data)."),
        fold: int = typer.Option(0, help="ASAP-AES fold of the standard 5-fold split."),
        sets: str = typer.Option("3,4,5,6", help="Comma-separated ASAP-AES essay sets (short-answer sets: 3-6)."),
        cered: bool = typer.Option(True, "--cered/--no-cered", help="Also the CEReD reflection sentences."),
        cache_dir: Path = typer.Option(Path(".scoring/bench-cache"), help="Embedding cache (kept between runs)."),
        out: Path = typer.Option(Path("bench-out/short"), "--out", help="Work folder: data files, models, scores."),
        select: bool = typer.Option(True, "--select/--no-select", help="Per-criterion model selection (as scoring "
                                    "train); --no-select: the fixed ensemble, for comparison."),
    ) -> None:
        """Train with `scoring train` and score with `scoring score` (subprocesses) on each short-answer set;
        QWK / macro-F1 next to a TF-IDF + logistic-regression peer, and training time per criterion."""
        from eval.bench_short import run

        try:
            set_list = [int(x) for x in sets.split(",") if x.strip()]
        except ValueError:
            raise typer.BadParameter(f"expected essay set numbers like 3,4, found {sets!r}", param_hint="--sets") from None
        typer.echo(f"# reproduce: scoring bench short --data-dir {data_dir} --fold {fold} --sets {sets}"
                   + ("" if cered else " --no-cered") + ("" if select else " --no-select"))
        summary = run(data_dir, cache_dir=cache_dir.resolve(), out_dir=out, sets=set_list, fold=fold, cered=cered,
                      echo=typer.echo, select=select)
        typer.echo(json.dumps(summary))
