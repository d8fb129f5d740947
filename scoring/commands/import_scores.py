"""``scoring import-scores``: load historical (e.g. double-scored) human scores from a table into the store."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from scoring.commands._store import DB_OPTION, open_store


def register(app: typer.Typer) -> None:
    @app.command("import-scores")
    def import_scores(
        rubric: Path = typer.Option(..., "--rubric", help="Rubric YAML the scores are on (registered if new)."),
        data: Path = typer.Option(..., "--data", help="CSV, TSV or JSONL file."),
        id_col: str = typer.Option(..., "--id-col", help="Column holding the submission's external id."),
        score_col: list[str] = typer.Option(
            ..., "--score-col",
            help="CRITERION=COLUMN\\[@KIND], repeatable. Without @KIND a criterion's 1st column is `first`, its 2nd "
            "`second` (e.g. --score-col holistic=rater1_domain1 --score-col holistic=rater2_domain1).",
        ),
        rater_col: list[str] = typer.Option(
            [], "--rater-col", help="KIND=COLUMN holding assessor ids for that kind (default: FILE:COLUMN)."
        ),
        meta_col: list[str] = typer.Option([], "--meta-col", help="Metadata column to keep (repeatable)."),
        where: list[str] = typer.Option([], "--where", help="COLUMN=VALUE row filter (repeatable, all must hold)."),
        time_col: str | None = typer.Option(None, "--time-col", help="Column of score times (ISO, UTC if no zone)."),
        fmt: str = typer.Option("auto", "--format", help="auto | csv | tsv | jsonl."),
        encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding of a CSV/TSV file (e.g. cp1252)."),
        quoting: str = typer.Option("minimal", "--quoting", help="minimal | none (none: quotes are literal text)."),
        not_blind: bool = typer.Option(False, "--not-blind", help="Raters saw each other's / the machine's score."),
        append: bool = typer.Option(False, "--append", help="Add scores even where that rater slot (submission, "
                                    "criterion, kind) already holds one."),
        policy: Path | None = typer.Option(
            None, "--policy", help="Routing policy whose adjudication gap decides which imported ratings disagree "
            "(default: the policy the store last put into service for the rubric, else more than 1 level apart)."),
        db: str | None = DB_OPTION,
    ) -> None:
        """Import human scores; evidence text is not copied, only ids, scores and the named metadata.

        Ids already in the store (e.g. submissions sent through the API) get the scores attached, e.g. a
        second rater's: `--score-col holistic=rater2@second`. Their queue slots that the imported ratings
        fill are closed, and each one resolved on every criterion gets its final decision."""
        from rubrics.schema import RubricError, load_rubric
        from scoring.errors import ScoringError
        from scoring.usecases.history import ScoreColumn, import_table, read_table

        def pairs(items: list[str], opt: str) -> dict[str, str]:
            out = {}
            for it in items:
                if "=" not in it:
                    raise typer.BadParameter(f"{opt} {it!r}: expected KEY=VALUE")
                k, v = it.split("=", 1)
                out[k.strip()] = v.strip()
            return out

        try:
            cols = ScoreColumn.parse_many(score_col)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        assessors, filters = pairs(rater_col, "--rater-col"), pairs(where, "--where")
        try:
            rub = load_rubric(rubric)
            pol = None
            if policy is not None:
                from scoring.policy import load_policy

                pol = load_policy(policy)
            df = read_table(data, fmt=fmt, quoting=quoting, encoding=encoding)
            store = open_store(db)
            try:
                res = import_table(store, rub, df, id_col=id_col, score_cols=cols, meta_cols=meta_col,
                                   assessor_cols=assessors, source=data.stem, where=filters,
                                   blind=not not_blind, allow_existing=append, time_col=time_col,
                                   policy=pol)
            finally:
                store.close()
        except (ScoringError, RubricError, ValueError) as exc:  # one line, exit 2, like every other command
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        attached = (f" ({res.existing} already in the store: scores attached, stored content kept; "
                    f"{res.queue_slots_closed} queue slot(s) filled and closed, {res.decisions} final decision(s))"
                    if res.existing else "")
        typer.echo(f"{rub.key}: {res.rows_selected}/{res.rows_read} rows -> {res.submissions} submissions{attached}, "
                   f"human scores {res.human_scores}, {res.skipped_missing} empty cells skipped")
        typer.echo(json.dumps(res.__dict__))
