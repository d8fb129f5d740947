"""``scoring rubric check`` and ``scoring models list``: look before you train or score."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scoring.commands.batch import _fail, err

rubric_app = typer.Typer(help="Rubric files: validate and summarise.", no_args_is_help=True)
models_app = typer.Typer(help="Trained model versions in a model directory.", no_args_is_help=True)


@rubric_app.command("check")
def check(files: Annotated[list[Path], typer.Argument(help="Rubric YAML files.")]) -> None:
    """Validate rubric files; print each criterion's scale, or the file, field and problem."""
    from rich.markup import escape

    from rubrics import load_rubric

    bad = 0
    for f in files:  # every file is checked, so one run lists every problem
        try:
            r = load_rubric(f)
        except Exception as exc:  # noqa: BLE001
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
            bad += 1
            continue
        err.print(f"[green]ok[/] {f}: {r.key} '{r.title}', evidence {list(r.evidence)}")
        for c in r.criteria:
            bare = [lv for lv in c.levels if not (lv.descriptor.strip() or lv.exemplars)]
            if not bare:
                zs = "descriptors for zero-shot"
            elif len(bare) == len(c.levels):
                zs = "no descriptors (needs human scores)"
            else:  # an author who left one out: name it, as the cold start needs every level described
                zs = ("no descriptor for level(s) " + ", ".join(f"{lv.score} ({escape(lv.label)})" for lv in bare)
                      + ": the zero-shot/cold-start scorer needs one on every level, so until then this criterion "
                      "needs human scores")
            scale = (f"{c.scores[0]}..{c.scores[-1]} ({len(c.scores)})" if c.scores[-1] - c.scores[0] + 1 == len(c.scores)
                     else f"{', '.join(map(str, c.scores))} ({len(c.scores)}; none at "
                     f"{', '.join(str(x) for x in range(c.scores[0], c.scores[-1]) if x not in c.scores)})")
            err.print(f"  {c.id}: levels {scale}, reads {list(r.evidence_for(c))}, {zs}")
        if r.award is not None:
            th = r.award.thresholds(r)
            err.print(f"  award: {escape(r.award.describe(r))}")
            err.print("    earned needs: " + ", ".join(f"{c} >= {v}" for c, v in th.items())
                      + (f"; total of {list(r.award.total_criteria(r))} >= {r.award.min_total}"
                         if r.award.min_total is not None else ""))
        else:
            err.print("  award: none (criterion scores only, no credential decision)")
    if bad:
        raise typer.Exit(2)


@models_app.command("list")
def list_models(model_dir: Annotated[Path, typer.Argument(help="Directory given to `scoring train --out`.")]) -> None:
    """Versions with their rubric, creation time and cross-validated agreement; LATEST marked."""
    from models.artifact import ArtifactError, list_versions, read_card
    from scoring.train import criterion_line

    if not model_dir.is_dir():
        _fail(FileNotFoundError(f"{model_dir} does not exist (or is not a folder): expected the folder given to "
                                "`scoring train --out`"))
    latest = (model_dir / "LATEST").read_text().strip() if (model_dir / "LATEST").exists() else None
    versions = list_versions(model_dir)
    if not versions:
        _fail(FileNotFoundError(f"{model_dir} holds no trained model version"))
    for v in versions:
        try:
            card = read_card(model_dir / v)
        except ArtifactError as exc:
            typer.echo(f"{v}  DAMAGED: {exc}")
            continue
        crits = "; ".join(criterion_line(k, m) for k, m in card.get("metrics", {}).items()
                          if not k.startswith("_") and isinstance(m, dict))
        mark = " (LATEST)" if v == latest else ""
        base = f"  calibrated from {card['base_model_version']}" if card.get("base_model_version") else ""
        typer.echo(f"{v}{mark}  rubric {card['rubric']['id']}@{card['rubric']['version']}  created {card['created']}"
                   f"{base}\n    {crits}")


@models_app.command("promote")
def promote(
    version: Annotated[str, typer.Argument(help="A registered model version (see GET /models or `scoring score --store`).")],
    db: Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL of the store (default: settings).")] = None,
    actor: Annotated[str, typer.Option("--actor", help="Who promotes (recorded in the audit log).")] = "cli",
) -> None:
    """Promote a registered version: the rubric's next submissions are scored with it (previous one retired,
    suspensions lifted; audited)."""
    from scoring.commands._store import open_store
    from scoring.errors import ScoringError
    from scoring.usecases.registry import promote_model

    store = open_store(db)
    try:
        rec = promote_model(store, version, actor=actor)
    except ScoringError as exc:
        _fail(exc)
        return
    finally:
        store.close()
    typer.echo(f"{rec.version} promoted for rubric {rec.rubric_id} at {rec.promoted_at:%Y-%m-%d %H:%M:%S} UTC")


def register(app: typer.Typer) -> None:
    app.add_typer(rubric_app, name="rubric")
    app.add_typer(models_app, name="models")
