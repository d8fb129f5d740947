"""``scoring select``: which submissions of a backlog people should score first (a queue file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scoring.commands.batch import Encoding, Fmt, IdCol, Quoting, TextCol, Where, _columns, _fail, err


def select(
    model: Annotated[Path, typer.Option("--model", help="Model directory (or one version directory), e.g. a cold-start model.")],
    data: Annotated[Path, typer.Option("--data", help="The unscored backlog (CSV, TSV, JSONL, Parquet).")],
    n: Annotated[int, typer.Option("--n", help="How many submissions to pick.")] = 30,
    out: Annotated[Path | None, typer.Option("--out", help="Queue file (JSONL); default: DATA stem + .select.jsonl.")] = None,
    exclude: Annotated[Path | None, typer.Option(
        "--exclude", help="Ids already scored or queued (an earlier selection's queue file, or one id a line): "
        "never picked again, and new picks keep away from them.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the first pick (default: SCORING_SEED).")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Model version (default: LATEST).")] = None,
    id_col: IdCol = "id",
    text_col: TextCol = None,
    where: Where = None,
    fmt: Fmt = None,
    encoding: Encoding = "utf-8",
    quoting: Quoting = True,
) -> None:
    """Pick the N submissions whose human scores teach the model most: diverse and uncertain.

    The first 50 scores (counting those in --exclude): transductive experimental design over the text
    embeddings (Yu, Bi & Tresp 2006), the texts that most reduce a ridge head's predictive variance over
    the whole backlog. After that: uncertainty-weighted greedy k-center (the core-set method of Sener &
    Savarese 2018) over the embeddings and the model's expected scores; unusually isolated texts are set
    aside. Writes a queue file people score in order; then `scoring import-scores` / `scoring train`.
    """
    from models.artifact import load_model
    from scoring.ingest import read_records
    from scoring.selection import DESIGN_N, SelectionError
    from scoring.settings import get_settings
    from scoring.usecases.selection import choose, read_exclusions, write_queue_file

    s = get_settings()
    if n < 1:
        raise typer.BadParameter(f"expected at least 1, found {n}", param_hint="--n")
    try:
        m = load_model(model, version, cache_dir=s.resolved_cache_dir(), precision=s.encoder_precision,
                       batch_size=s.batch_size)
        cols = _columns(m.rubric, id_col, text_col, None, where)
        records = [r for r in read_records(data, m.rubric, cols, fmt=fmt, encoding=encoding, quoting=quoting,
                                           max_chars=s.max_text_chars)]
        usable = [r for r in records if r.reject is None]
        skip = read_exclusions(exclude, id_col) if exclude is not None else []
        known = {r.id for r in usable}
        matched = len(set(skip) & known)
        if skip and not matched:  # a file about another backlog, or the wrong column: excluding nothing
            raise SelectionError(f"none of the {len(set(skip))} ids in {exclude} is in {data}: is it the right "
                                 "file (or --id-col)?")
        if matched < len(set(skip)):
            err.print(f"[yellow]{len(set(skip)) - matched} of the {len(set(skip))} ids in {exclude} are not in "
                      f"{data}[/] (the other {matched} are excluded)")
        picked = choose(m, [r.id or "" for r in usable], [r.evidence for r in usable], n,
                        seed=s.seed if seed is None else seed, exclude=skip)
        path = write_queue_file(out or data.with_name(data.stem + ".select.jsonl"), picked, m,
                                s.seed if seed is None else seed)
    except Exception as exc:  # noqa: BLE001 - every failure reaches the user as one clear line
        _fail(exc)
        return
    rejected = len(records) - len(usable)
    err.print(f"[green]{len(picked)} of {len(usable)} submissions selected[/] "
              f"({rejected} record(s) rejected, {matched} excluded) -> {path}")
    err.print(f"method: experimental design for the first {DESIGN_N} scores (Yu, Bi & Tresp 2006), then "
              "uncertainty-weighted greedy k-center (core-set, Sener & Savarese 2018); score them in the file's order")


def register(app: typer.Typer) -> None:
    app.command("select")(select)
