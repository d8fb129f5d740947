"""``scoring demo``: the whole batch flow on bundled synthetic data, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scoring.commands.batch import err, score, train


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's data, model and outputs.")] = Path("demo-out"),
) -> None:
    """Train on 160 synthetic human-scored reflections, then pre-score a 60-row backlog (with broken rows)."""
    import json

    from scoring.demo import DEMO_RUBRIC, write_demo

    train_csv, backlog_csv = write_demo(out)
    err.print(f"[bold]1/2 train[/] {DEMO_RUBRIC.name} on {train_csv}")
    train(rubric=DEMO_RUBRIC, data=train_csv, out=out / "model", score_col=None, text_col=None, where=None,
          id_col="id", fmt=None, encoding="utf-8", quoting=True, min_labelled=None)
    err.print(f"[bold]2/2 score[/] {backlog_csv}")
    score(model=out / "model", data=backlog_csv, out=out / "scores.jsonl", version=None, id_col="id", text_col=None,
          where=None, fmt=None, encoding="utf-8", quoting=True, rejects=None, block_size=None, overwrite=True, progress=True)
    first = (out / "scores.jsonl").read_text(encoding="utf-8").splitlines()[0]
    err.print("first output line:")
    typer.echo(json.dumps(json.loads(first), indent=1))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
