"""``scoring train`` and ``scoring score``: the issuer's batch door."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from scoring.settings import get_settings

err = Console(stderr=True, soft_wrap=True)


def parse_pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """``["reflection=text_col", ...]`` -> ``{"reflection": "text_col"}`` with a clear error."""
    out: dict[str, str] = {}
    for v in values or []:
        key, sep, col = v.partition("=")
        if not sep or not key.strip() or not col.strip():
            example = {"--text-col": "reflection=Teacher Response", "--score-col": "questioning=Grader A",
                       "--second-score-col": "questioning=Grader B"}.get(option, "name=column")
            raise typer.BadParameter(f"expected NAME=COLUMN (e.g. {option} \"{example}\"), found {v!r}",
                                     param_hint=option)
        out[key.strip()] = col.strip()
    return out


IdCol = Annotated[str, typer.Option("--id-col", help="Column holding the submission id.")]
TextCol = Annotated[
    list[str] | None,
    typer.Option("--text-col", help="EVIDENCE=COLUMN, repeatable; default: columns named like the rubric's evidence fields."),
]
ScoreCol = Annotated[list[str] | None, typer.Option("--score-col", help="CRITERION=COLUMN of human scores, repeatable; "
                     "default: columns named like the criteria, and with none of those the cold-start model (no scores).")]
Where = Annotated[list[str] | None, typer.Option("--where", help="COLUMN=VALUE: keep only matching rows, repeatable.")]
Fmt = Annotated[str | None, typer.Option("--format", help="csv | tsv | jsonl | parquet (default: from the extension).")]
Encoding = Annotated[str, typer.Option("--encoding", help="Text encoding of CSV/TSV/JSONL input.")]
Quoting = Annotated[
    bool, typer.Option("--quoting/--no-quoting", help="Honour double quotes in CSV/TSV (off for files like ASAP-AES).")
]


def _columns(rubric, id_col, text_col, score_col, where):  # type: ignore[no-untyped-def]
    from scoring.ingest import ColumnMap, infer_columns

    return infer_columns(
        rubric,
        ColumnMap(
            id=id_col,
            text=parse_pairs(text_col, "--text-col"),
            scores=parse_pairs(score_col, "--score-col"),
            where=parse_pairs(where, "--where"),
        ),
    )


def encoding_hint(records: list[Any], encoding: str, again: str) -> None:
    """Say how many rows the ``--encoding`` could not read, and what would read them.

    Why: undecodable rows are usually the whole file's encoding (a spreadsheet's cp1252), not a few broken
    rows, and a model trained or calibrated without them silently lacks part of the data. But where other
    rows read fine AND hold non-ASCII characters, the file is mixed: another ``--encoding`` would re-read
    every row and garble those characters (UTF-8's ``ü`` read as cp1252 is ``Ã¼``), so the hint says to
    re-save the bad rows instead."""
    undecodable = [r for r in records if r.reject is not None and r.undecodable]
    if not undecodable:
        return
    mixed = next((r for r in records if r.reject is None
                  and any(not v.isascii() for v in r.evidence.values())), None)
    head = f"[yellow]{len(undecodable)} of {len(records)} record(s) are not valid {encoding}[/]"
    if mixed is not None:
        err.print(f"{head} (first: record {undecodable[0].number}), while other rows hold non-ASCII text that is "
                  f"valid {encoding} (e.g. record {mixed.number}): the file mixes encodings. Re-save those rows as "
                  f"{encoding} and {again}; another --encoding would re-read every row and garble the rest")
        return
    other = "latin-1" if encoding.lower().replace("_", "-") in ("cp1252", "windows-1252") else "cp1252"
    err.print(f"{head}: a file saved by a spreadsheet is often cp1252 or latin-1; if so, {again} with "
              f"--encoding {other} so those rows count too")


def quiet_loading() -> None:
    """--no-progress also silences the encoder library's own "Loading weights" bar (a log is not a terminal)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _fail(exc: Exception) -> None:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(str(exc))}")
    raise typer.Exit(2)


def train(
    rubric: Annotated[Path, typer.Option("--rubric", help="Rubric YAML file.")],
    data: Annotated[Path, typer.Option("--data", help="Human-scored submissions (CSV, TSV, JSONL, Parquet).")],
    out: Annotated[Path, typer.Option("--out", help="Model directory; each run adds a new version inside it.")],
    id_col: IdCol = "id",
    text_col: TextCol = None,
    score_col: ScoreCol = None,
    where: Where = None,
    fmt: Fmt = None,
    encoding: Encoding = "utf-8",
    quoting: Quoting = True,
    min_labelled: Annotated[int | None, typer.Option(help="Fewer human scores than this: zero-shot scorer.")] = None,
    scorer: Annotated[
        str | None,
        typer.Option(help="ensemble (default) | finetuned: fine-tune the encoder per criterion with at least "
                     "SCORING_FINETUNE_MIN_SCORES human scores (300; slow on a CPU, the rest keep the ensemble)."),
    ] = None,
    select: Annotated[bool, typer.Option(
        "--select/--no-select", help="Choose views and head per criterion by nested cross-validation (criteria "
        "with at least 150 scores); --no-select: the fixed ensemble everywhere (for comparison).")] = True,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bars (off for logs).")] = True,
) -> None:
    """Train one scorer per rubric criterion from human scores and save a versioned model with its card.

    With no score column at all it builds the cold-start model (descriptors + the file's texts) and says so."""
    from models.artifact import check_rubric_home, new_version, save_model
    from models.encoder import get_encoder
    from rubrics import load_rubric
    from scoring.ingest import read_records
    from scoring.train import (
        TrainingError,
        check_label_columns,
        criterion_line,
        fine_tuning_for,
        learning_curve,
        train_model,
    )

    s = get_settings()
    try:
        finetune = fine_tuning_for(scorer or s.scorer, s)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scorer") from None
    try:
        rb = load_rubric(rubric)
        check_rubric_home(out, rb.id)  # before minutes of training, not after
        cols = _columns(rb, id_col, text_col, score_col, where)
        cold_note = None
        if not cols.scores:  # no --score-col: columns named like the criteria, where the file has them
            have = _columns_in(data, fmt, encoding, quoting)
            named = {c.id: c.id for c in rb.criteria if have is None or c.id in have}
            cols = type(cols)(id=cols.id, text=cols.text, scores=named, where=cols.where)
            if not named:
                cold_note = ("no --score-col and no column named like a criterion "
                             f"({', '.join(c.id for c in rb.criteria)}): building the cold-start model from the "
                             "rubric's level descriptors and the file's texts; no human scores are read")
        records = list(read_records(data, rb, cols, fmt=fmt, encoding=encoding, quoting=quoting,
                                    max_chars=s.max_text_chars, partial_evidence=True))
        if not any(r.reject is None for r in records):  # nothing to learn from: never save a model of no data
            raise TrainingError(f"{data} holds no usable record ({len(records)} read, all rejected)" if records else
                                f"{data} holds no record after its header: expected one submission per row")
        check_label_columns(records, cols.scores, explicit=bool(score_col),
                            levels={c.id: list(c.scores) for c in rb.criteria})
        if cold_note:
            err.print(f"[yellow]cold start[/]: {cold_note}")
        rejected = [r for r in records if r.reject]
        encoding_hint(records, encoding, "train again")  # before training: it may fail for want of rows
        if not progress:
            quiet_loading()
        enc = get_encoder(s.encoder, s.resolved_cache_dir(), s.encoder_precision, s.batch_size, s.chunk_overlap_tokens)
        res = train_model(rb, records, enc, min_labelled=min_labelled or s.min_labelled_per_criterion, show_progress=progress,
                          seed=s.seed, finetune=finetune, select=select)
        res.metrics["_data"] = {"records": len(records), "rejected": len(rejected), "file": data.name}
        res.model.version = new_version(rb, res.data_hash)
        previous = _previous_card(out)
        res.model.card["learning_curve"] = learning_curve(previous, res.metrics, res.model.version)
        path = save_model(res.model, out, res.metrics, res.data_hash)
    except Exception as exc:  # noqa: BLE001 - every failure reaches the user as one clear line
        if isinstance(exc, typer.Exit):
            raise
        _fail(exc)
        return
    bad_cells = [(r, c, why) for r in records if r.reject is None for c, why in r.score_problems.items()]
    # an empty score cell is not an error (a criterion may be unscored), but it is one example fewer: say so
    no_text = _criteria_without_text(rb, cols, records)
    empty = [(r, c, f"empty score cell: criterion {c!r} of this row was not trained on") for r in records
             if r.reject is None for c in cols.scores
             if r.scores.get(c) is None and c not in r.score_problems and (r.number, c) not in no_text]
    if rejected or bad_cells or empty or no_text:
        rej_path = path / "training-rejects.jsonl"
        rej_path.write_text(
            "".join(json.dumps({"record": r.number, "id": r.id, "reason": r.reject}) + "\n" for r in rejected)
            + "".join(json.dumps({"record": r.number, "id": r.id, "criterion": c, "reason": why}) + "\n"
                      for r, c, why in bad_cells + empty + list(no_text.values())))
        err.print(f"[yellow]{len(rejected)} record(s) rejected, {len(bad_cells)} score cell(s) unusable, "
                  f"{len(empty)} empty, {len(no_text)} criterion evidence empty[/] (the rest of those rows "
                  f"was used), reasons in {rej_path}")
    err.print(f"[green]model {res.model.version}[/] saved to {path}")
    for cid, m in res.metrics.items():
        if not cid.startswith("_"):
            err.print(f"  {criterion_line(cid, m)}")
    for line in weaker_than_before(res.model.card["learning_curve"]):
        err.print(f"[yellow]note[/]: {line}")


def _criteria_without_text(rubric: Any, cols: Any, records: list[Any]) -> dict[tuple[int, str], tuple[Any, str, str]]:
    """(record number, criterion) -> the training-rejects line of a kept row that gives that criterion
    nothing to read (its other criteria were trained on it); a human score there is not trained on."""
    from scoring.evidence import criteria_without_evidence
    from scoring.ingest import column_label

    out: dict[tuple[int, str], tuple[Any, str, str]] = {}
    for r in records:
        if r.reject is not None:
            continue
        for crit, why in criteria_without_evidence(rubric, r.evidence, lambda n: column_label(cols, n)).items():
            score = "; its score was not trained on" if r.scores.get(crit) is not None else ""
            out[(r.number, crit)] = (r, crit, f"no evidence for criterion {crit!r}: {why}{score} (this row's other "
                                              "criteria were trained on it)")
    return out


def weaker_than_before(curve: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Per criterion whose figure fell, a line saying so: the new version becomes LATEST, and with it what
    `scoring score` and `calibrate` use by default, so a retraining that did worse (fewer or noisier scores)
    must not pass silently. Only like figures are compared (cross-validated with cross-validated)."""
    out: list[str] = []
    for cid, points in curve.items():
        if len(points) < 2:
            continue
        old, new = points[-2], points[-1]
        if (old.get("qwk") is None or new.get("qwk") is None or old.get("qwk_kind") != new.get("qwk_kind")
                or new["qwk"] >= old["qwk"]):
            continue
        out.append(f"{cid}: {new['qwk_kind']} QWK {new['qwk']:.3f} on {new.get('n_scored', 0)} scores is below "
                   f"the previous version's {old['qwk']:.3f} on {old.get('n_scored', 0)} "
                   f"({old.get('model_version')}); this version is now LATEST: score with "
                   f"--version {old.get('model_version')} to keep the previous one")
    return out


def _columns_in(path: Path, fmt: str | None, encoding: str, quoting: bool) -> set[str] | None:
    """The file's column names (CSV/TSV header, first JSONL/Parquet record); None when they cannot be read here
    (the reader then names the problem)."""
    from scoring.ingest import _raw_rows, csv_header, detect_format

    try:
        f = detect_format(path, fmt)
        if f in ("csv", "tsv"):
            return set(csv_header(path, f, encoding))
        for row, problem, _n in _raw_rows(path, f, encoding, quoting):
            if not problem:
                return set(row)
        return set()
    except Exception:  # noqa: BLE001 - unreadable here: read_records reports it in the user's terms
        return None


def _previous_card(out: Path) -> dict[str, Any] | None:
    """The LATEST version's card in the model directory, if any (its learning curve is carried forward)."""
    from models.artifact import read_card, resolve_version_dir

    try:
        return read_card(resolve_version_dir(out))
    except Exception:  # noqa: BLE001 - no previous version, or a damaged one: the curve starts here
        return None


def score(
    model: Annotated[Path, typer.Option("--model", help="Model directory (or one version directory).")],
    data: Annotated[Path, typer.Option("--data", help="Submissions to score (CSV, TSV, JSONL, Parquet), or a "
                                       "folder of shards of one format (read in name order).")],
    out: Annotated[Path, typer.Option("--out", help="Output .jsonl or .csv; re-running resumes it.")],
    version: Annotated[str | None, typer.Option("--version", help="Model version (default: LATEST).")] = None,
    id_col: IdCol = "id",
    text_col: TextCol = None,
    where: Where = None,
    fmt: Fmt = None,
    encoding: Encoding = "utf-8",
    quoting: Quoting = True,
    rejects: Annotated[Path | None, typer.Option(help="Rejects file (default: OUT stem + .rejects.jsonl).")] = None,
    block_size: Annotated[int | None, typer.Option(help="Submissions per checkpointed block.", min=1)] = None,
    overwrite: Annotated[bool, typer.Option(help="Start again instead of resuming an earlier run into OUT.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    highlights: Annotated[
        int,
        typer.Option(
            "--highlights",
            min=0,
            help="Add up to N supporting and N counter highlights (sentences/turns with offsets) per criterion.",
        ),
    ] = 0,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Routing policy YAML (from `scoring calibrate`): adds route/reason/prediction_set "
                     "per criterion and writes OUT stem + .queue.jsonl of items for humans."),
    ] = None,
    queue_order: Annotated[
        str | None, typer.Option("--queue-order", help="uncertain | oldest (default: the policy's queue_order).")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", metavar="[URL]",
                     help="Record every scored submission in the store (bare --store: the configured database, "
                     "SCORING_DATABASE_URL): machine scores with routes in the audit log, routed items in the "
                     "assessors' queue. Re-runs and resumes record nothing twice."),
    ] = None,
    issuer: Annotated[
        str | None, typer.Option("--issuer", help="Owner recorded for stored submissions (default: SCORING_ISSUER).")
    ] = None,
    meta_col: Annotated[
        list[str] | None, typer.Option("--meta-col", help="With --store: a column kept as the submission's metadata "
                                       "(repeatable), e.g. a school or program for `scoring report --subgroup`.")
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="local (this process) | ray (a Ray cluster, pip install '.\\[ray]'): "
                          "the same output files either way.")
    ] = "local",
    address: Annotated[
        str | None, typer.Option("--address", help="With --engine ray: the cluster's head (host:port, or auto "
                                 "on a cluster machine); default RAY_ADDRESS, else a Ray instance on this machine.")
    ] = None,
) -> None:
    """Pre-score every criterion of a backlog; killed or crashed runs resume where they stopped."""
    from models.artifact import load_model
    from scoring.engines.shards import count_backlog as count_records  # a file or a folder
    from scoring.engines.shards import read_backlog as read_records
    from scoring.store import Store
    from scoring.usecases.backlog import reading_tag, score_backlog

    s = get_settings()
    st = susp = None
    if engine not in ("local", "ray"):
        raise typer.BadParameter(f"expected local or ray, found {engine!r}", param_hint="--engine")
    if address is not None and engine != "ray":  # --address only means something to the Ray engine
        _fail(ValueError(f"--address {address} is only used with --engine ray (this run uses --engine {engine}); "
                         "add --engine ray to run on that cluster, or drop --address"))
    if meta_col and store is None:  # the output rows carry scores only: metadata would be read and dropped
        raise typer.BadParameter("--meta-col keeps columns with the submissions in the store: add --store",
                                 param_hint="--meta-col")
    if not data.exists():  # said before the model loads (a minute on a small machine), in the user's words
        _fail(FileNotFoundError(f"--data {data} does not exist: expected a CSV, TSV, JSONL or Parquet file, or a "
                                "folder of such files"))
    run_on = None
    if engine == "ray":
        from scoring.engines.ray_engine import RayEngine

        run_on = RayEngine(address=address)
    from contextlib import ExitStack

    from scoring.interrupt import Terminated, sigterm_as_interrupt

    stopping = ExitStack()
    stopping.enter_context(sigterm_as_interrupt())  # `kill PID`, `timeout`, a scheduler: stopped as Ctrl-C stops it
    try:
        if not progress:
            quiet_loading()
        m = load_model(model, version, cache_dir=s.resolved_cache_dir(), precision=s.encoder_precision, batch_size=s.batch_size)
        cols = _columns(m.rubric, id_col, text_col, None, where)
        if meta_col:
            cols = dataclasses.replace(cols, meta=tuple(dict.fromkeys(meta_col)))
        records = read_records(data, m.rubric, cols, fmt=fmt, encoding=encoding, quoting=quoting, max_chars=s.max_text_chars)
        total = None if where else count_records(data, fmt, quoting)
        pol = None
        if policy is not None:
            from scoring.routing import load_policy_for

            pol = load_policy_for(m, policy)
        if store is not None:
            st = Store(s.resolved_database_url() if store == STORE_DEFAULT else store)
            _register_model(st, m, model)
        elif pol is not None and s.database_url:
            susp = Store(s.database_url)  # consulted for suspended criteria only
        run = score_backlog(
            m, records, data, out, read_tag=reading_tag(cols, data, fmt, encoding, quoting, s.max_text_chars),
            rejects=rejects, block_size=block_size or s.block_size, total=total, progress=progress,
            overwrite=overwrite, highlights=highlights, policy=pol, queue_order=queue_order, store=st,
            owner=issuer or s.issuer, suspensions=susp, engine=run_on,
        )
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated)
        how = "stopped (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        err.print(f"[yellow]{how}[/]: every finished block is saved; run the same command again to resume {out}")
        raise typer.Exit(143 if isinstance(exc, Terminated) else 130) from None
    except Exception as exc:  # noqa: BLE001
        if isinstance(exc, typer.Exit):
            raise
        _fail(exc)
        return
    finally:
        for opened in (st, susp):
            if opened is not None:
                opened.close()
        stopping.close()
    _report(run, where, owner=issuer or s.issuer)


STORE_DEFAULT = "default"  # what a bare `--store` becomes (see scoring.cli.optional_values)


def _register_model(store: Any, m: Any, model_dir: Path) -> None:
    """Make the scoring model known to the registry (as a candidate), so reports and the API can name it."""
    from models.artifact import resolve_version_dir

    if m.version not in {r.version for r in store.models()}:
        try:
            path = resolve_version_dir(model_dir, m.version)
        except Exception:  # noqa: BLE001 - a model directory named directly is its own version directory
            path = model_dir
        store.register_model(m.version, path, card={"model_version": m.version}, rubric_id=m.rubric.id)


def _level_shares(out: Path) -> dict[str, dict[int, int]]:
    """Per criterion, how many submissions of the output file got each level (empty when it cannot be read)."""
    import csv as _csv

    counts: dict[str, dict[int, int]] = {}
    try:
        with out.open(encoding="utf-8", newline="") as fh:
            if out.suffix.lower() == ".csv":
                reader = _csv.DictReader(fh)
                crits = [c for c in (reader.fieldnames or []) if c != "id" and "." not in c]
                for row in reader:
                    for c in crits:
                        if row.get(c) not in (None, ""):
                            cnt = counts.setdefault(c, {})
                            cnt[int(float(row[c]))] = cnt.get(int(float(row[c])), 0) + 1
            else:
                for line in fh:
                    for c, res in json.loads(line).get("criteria", {}).items():
                        if isinstance(res, dict) and res.get("score") is not None:
                            cnt = counts.setdefault(c, {})
                            cnt[int(res["score"])] = cnt.get(int(res["score"]), 0) + 1
    except (OSError, ValueError, TypeError):
        return {}
    return counts


def _report(run: Any, where: list[str] | None = None, owner: str | None = None) -> None:
    summary = run.summary
    if run.queue_file is not None:
        err.print(f"routing: policy {run.policy_version}; human queue -> {run.queue_file}")
    resumed = f" (resumed after {summary.resumed_from})" if summary.resumed_from else ""
    err.print(
        f"[green]{summary.scored} scored[/], {summary.rejected} rejected of {summary.records} records{resumed} "
        f"in {summary.seconds:.1f}s -> {summary.out}"
        + (f"; rejects in {summary.rejects}" if summary.rejected else "")
    )
    shares = _level_shares(Path(summary.out))
    if shares:  # what the model gave, at a glance: a cold start piling into the top levels shows here
        err.print("levels given: " + "; ".join(
            f"{cid} " + ", ".join(f"{lv} {100 * k / sum(cnt.values()):.0f}%" for lv, k in sorted(cnt.items()))
            for cid, cnt in shares.items()))
    if run.recorded is not None:
        r = run.recorded
        err.print(f"store {r['store']}: {r['submissions']} submissions recorded ({r['created_now']} by this run), "
                  f"{r['criterion_scores']} criterion scores"
                  + (f" ({r['by_this_model']} by this model)" if r["by_this_model"] != r["criterion_scores"] else "")
                  + f", auto_fraction {r['auto_fraction']:.3f}, "
                  f"{r['queued']} queue slots for assessors"
                  + (f" ({r['queued_done']} scored by people, {r['queued'] - r['queued_done']} not yet)"
                     if r.get("queued_done") else ""))
        if r.get("kept_from_other_policy"):  # a re-run under another policy is answered from the store
            err.print(f"[yellow]{r['kept_from_other_policy']} submission(s) were recorded earlier under another "
                      f"routing policy ({'none' if run.policy_version is None else run.policy_version} in this run)[/]: "
                      "the store keeps that run's routes and assessor queue, and the figures above are the store's; "
                      "this run's routes are in its files only; `scoring policy apply` puts a policy in charge of the items "
                      "still waiting for people")
        if kept := r.get("kept_from_other_model"):  # a retrained model over a backlog people are working on
            why = {"started": "a person has started them", "settled": "their machine scores stand (they may back a "
                   "credential)", "selected": "`scoring select` queued them to teach the model"}
            err.print(f"[yellow]{sum(kept.values())} submission(s) scored earlier by another model were kept as they "
                      "stand[/] (" + "; ".join(f"{n}: {why.get(k, k)}" for k, n in kept.items())
                      + "); this model's scores for them are in its files only")
    if not summary.records:  # nothing read: a scheduled job must not report success for an empty selection
        what = (f"no record matched --where {' --where '.join(where)} (a row is kept when its value equals yours "
                "exactly, case included)" if where else "the input holds no record")
        err.print(f"[bold red]error:[/] {what}; nothing was scored")
        raise typer.Exit(1)
    if summary.records and not summary.scored:  # every record rejected: almost always wrong options, not data
        err.print(f"[bold red]error:[/] no record could be scored; the reasons are in {summary.rejects}")
        if "already used by another issuer" in _first_reject(Path(summary.rejects)):  # a re-run under another name
            err.print(f"the first id belongs to another issuer in the store: if you recorded this backlog, run again "
                      f"with --issuer set to the name you used (this run: {owner!r})")
        raise typer.Exit(1)


def _first_reject(path: Path) -> str:
    """The reason of the first line of a rejects file ('' when there is none or it cannot be read)."""
    try:
        with path.open(encoding="utf-8") as fh:
            return str(json.loads(fh.readline() or "{}").get("reason", ""))
    except (OSError, ValueError):
        return ""


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("score")(score)
