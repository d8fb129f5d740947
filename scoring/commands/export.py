"""``scoring export training``: the store's human scores as a file ``scoring train`` and ``calibrate`` read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from scoring.commands._store import DB_OPTION

export_app = typer.Typer(help="Files from the store: the scores people gave, for retraining.", no_args_is_help=True)


@export_app.command("training")
def training(
    out: Annotated[Path, typer.Option("--out", help="File to write (.csv or .jsonl).")],
    db: str | None = DB_OPTION,
    rubric: Annotated[str | None, typer.Option(
        "--rubric", help="RUBRIC_ID or RUBRIC_ID@VERSION (default: the store's only rubric, newest version).")] = None,
    issuer: Annotated[str | None, typer.Option("--issuer", help="Only this issuer's submissions.")] = None,
    include_unscored: Annotated[bool, typer.Option(
        "--include-unscored", help="Also write submissions no person has scored (blank score columns).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")] = False,
) -> None:
    """Write each submission's evidence with the scores people gave it: per criterion the level it stands at
    (train on it), the blind reference and the blind second rater (calibrate with them)."""
    from scoring.commands._store import open_store
    from scoring.commands.batch import _fail, err
    from scoring.usecases.training_export import BLIND_SUFFIX, RATER2_SUFFIX, export_training

    st = open_store(db, must_exist=True)
    try:
        rub = _rubric(st, rubric)
        res = export_training(st, rub, out, issuer=issuer, unscored=include_unscored, overwrite=overwrite)
    except Exception as exc:  # noqa: BLE001 - every failure reaches the user as one clear line
        _fail(exc)
        return
    finally:
        st.close()
    if not res.rows:
        whose = f" from issuer {issuer!r}" if issuer else ""
        err.print(f"[bold red]error:[/] the store holds no submission of {res.rubric}{whose}; nothing written"
                  if not res.submissions else
                  f"[bold red]error:[/] no person has scored any of the {res.submissions} submission(s) of "
                  f"{res.rubric}{whose} yet: nothing to train on, nothing written (--include-unscored writes them all)")
        typer.echo(json.dumps(res.as_dict()))
        raise typer.Exit(1)
    err.print(f"{res.rows} submission(s) of {res.rubric} -> {out}"
              + (f"; {res.unscored} no person has scored left out (--include-unscored keeps them)" if res.unscored else ""))
    for c in rub.criteria:
        err.print(f"  {c.id}: {res.labelled[c.id]} standing level(s) (column {c.id}), {res.blind[c.id]} blind "
                  f"({c.id}{BLIND_SUFFIX}), {res.pairs[c.id]} blind pair(s) ({c.id}{RATER2_SUFFIX})"
                  + (f", {res.disputed[c.id]} awaiting adjudication (no level)" if res.disputed[c.id] else "")
                  + (f", {res.awaiting_second[c.id]} awaiting the second blind rating (no level)"
                     if res.awaiting_second[c.id] else ""))
    typer.echo(json.dumps(res.as_dict()))


def _rubric(store, spec: str | None):  # type: ignore[no-untyped-def]
    """The rubric named ``ID`` or ``ID@VERSION``; with none, the store's only rubric (newest version)."""
    from scoring.errors import InvalidRequest

    if spec is None:
        ids = sorted({r.rubric_id for r in store.rubrics()})
        if len(ids) != 1:
            raise InvalidRequest("the store holds no rubric" if not ids else
                                 f"the store holds rubrics {ids}: name one with --rubric")
        return store.rubric(ids[0])
    rid, _, ver = spec.partition("@")
    if ver and not ver.isdigit():
        raise InvalidRequest(f"--rubric {spec}: expected RUBRIC_ID or RUBRIC_ID@VERSION (a whole number)")
    return store.rubric(rid, int(ver) if ver else None)


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
