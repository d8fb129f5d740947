"""Batch jobs for the API: the same engine as ``scoring score --store``, resumable after a restart.

A job keeps its input (the uploaded file, or the posted list written as JSONL), its outputs and its
progress file in a work folder recorded on the job's row. Its blocks are recorded by the backlog engine
(:mod:`scoring.usecases.backlog`), each with the job's per-row results and counters in the same store
transaction. A server that stops mid-job finds the job still ``running`` when it starts again and resumes
it from the progress file: no row is recorded, counted or written twice. A cancelled job stops before it
records its next block; what it recorded stays, and no server resumes it.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rubrics.schema import Rubric
from scoring.batch import OutputLocked
from scoring.errors import InvalidRequest, TranscriptError
from scoring.ingest import ColumnMap, MissingColumns, Record, count_records, infer_columns, read_records
from scoring.store import Store, jobs
from scoring.usecases.backlog import reading_tag, score_backlog
from scoring.usecases.intake import NewSubmission, check_evidence

log = logging.getLogger("scoring")
LIST_INPUT = "input.jsonl"  # the rows of a JSON POST /batch-jobs, with the internal metadata and reject columns
UPLOAD_STEM = "upload"  # an uploaded file, as sent: never named like LIST_INPUT, whatever its format
META_COL = "__metadata__"
REJECT_COL = "__reject__"


COLUMNS_FILE = "columns.json"  # an uploaded file's column map, kept with its input so a resumed job reads it alike
MAX_COLUMN_NAME = 200
MAX_META_COLUMNS = 50


def _columns(rubric: Rubric, listed: bool, work: Path | None = None) -> ColumnMap:
    if listed:
        return infer_columns(rubric, ColumnMap(id="id", text={f: f for f in rubric.evidence}, meta=(META_COL, REJECT_COL)))
    saved = work / COLUMNS_FILE if work is not None else None
    if saved is not None and saved.exists():  # an upload with id_col / text_col / meta_col
        raw = json.loads(saved.read_text(encoding="utf-8"))
        return infer_columns(rubric, ColumnMap(id=raw["id"], text=dict(raw["text"]), meta=tuple(raw["meta"])))
    return infer_columns(rubric, ColumnMap(id="id"))


def _column_name(value: str, field: str) -> str:
    name = value.strip()
    if not name:
        raise InvalidRequest(f"{field} must name a column of the file; found an empty value")
    if len(name) > MAX_COLUMN_NAME:
        raise InvalidRequest(f"{field} must be a column name of at most {MAX_COLUMN_NAME} characters; found "
                             f"{len(name)}")
    return name


def upload_columns(rubric: Rubric, id_col: str | None = None, text_col: Sequence[str] | None = None,
                   meta_col: Sequence[str] | None = None) -> ColumnMap:
    """Which columns of an uploaded file to read, from the upload's form fields, as ``scoring score`` takes
    them from ``--id-col``, ``--text-col`` and ``--meta-col``: ``id_col`` holds the submission's external id
    (default ``id``); each ``text_col`` is ``EVIDENCE=COLUMN`` for one of the rubric's evidence fields (default:
    columns named like the fields); each ``meta_col`` is a column kept as the submission's metadata.
    :class:`InvalidRequest` (422) naming the field, the value and what it should be."""
    fields = list(rubric.evidence)
    text: dict[str, str] = {}
    for pair in text_col or []:
        ev, sep, col = pair.partition("=")
        if not sep or not ev.strip() or not col.strip():
            raise InvalidRequest(f"text_col must be EVIDENCE=COLUMN (e.g. text_col=\"{fields[0]}=Reflection text\"), "
                                 f"one per evidence field of rubric {rubric.key} ({', '.join(fields)}); found {pair!r}")
        ev = ev.strip()
        if ev not in fields:
            raise InvalidRequest(f"text_col {pair!r} names evidence field {ev!r}, but rubric {rubric.key} "
                                 f"declares {fields}")
        if ev in text:
            raise InvalidRequest(f"text_col names evidence field {ev!r} twice ({text[ev]!r} and {col.strip()!r}); "
                                 "send one column per field")
        text[ev] = _column_name(col, f"text_col for {ev!r}")
    meta = [_column_name(m, "meta_col") for m in meta_col or []]
    if len(meta) > MAX_META_COLUMNS:
        raise InvalidRequest(f"meta_col names at most {MAX_META_COLUMNS} columns; found {len(meta)}")
    cols = ColumnMap(id=_column_name(id_col, "id_col") if id_col is not None else "id", text=text,
                     meta=tuple(dict.fromkeys(meta)))
    return infer_columns(rubric, cols)


def _missing_columns(filename: str, exc: MissingColumns, cols: ColumnMap) -> str:
    """A file without the columns the job reads: which ones, what the file has, and the form fields that map it."""
    mapped = ", ".join(f"{ev}={col}" for ev, col in cols.text.items())
    return (f"cannot read {filename!r}: column(s) {exc.missing} not found; the file has {exc.have}. Name the "
            f"file's columns with the upload's form fields: id_col (the submissions' external id, now "
            f"{cols.id!r}), text_col (EVIDENCE=COLUMN, one per evidence field, now {mapped}) and meta_col "
            "(a column kept as metadata, repeatable)")


def _metadata(r: Record) -> dict[str, Any]:
    raw = r.meta.get(META_COL)
    return json.loads(raw) if raw else {}


def api_reject(reason: str) -> str:
    """Reject reasons as an API client should read them (no CLI options)."""
    return reason.replace(" or pass --encoding", "")


def create_from_list(store: Store, owner: str, rubric: Rubric, subs: Sequence[NewSubmission], jobs_dir: Path,
                     max_chars: int) -> jobs.BatchJob:
    """A job over a posted list. A row that fails the evidence check is kept as a rejected row (with why)."""
    ids = [s.external_id for s in subs]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise InvalidRequest(f"external ids must be unique within a batch, found repeated {dup}")
    job = jobs.create_job(store, owner, rubric.id, rubric.version, len(subs))
    work = jobs_dir / f"job-{job.id}-{secrets.token_hex(4)}"  # job ids restart with each store
    work.mkdir(parents=True, exist_ok=True)
    with (work / LIST_INPUT).open("w", encoding="utf-8") as fh:
        for s in subs:
            why = ""
            try:
                check_evidence(rubric, s.evidence, max_chars)
            except (InvalidRequest, TranscriptError) as exc:  # the reader passes the reason on: the row is rejected with it
                why = str(exc)
            ev = {f: s.evidence.get(f, "") for f in rubric.evidence}
            fh.write(json.dumps({"id": s.external_id, **ev, META_COL: json.dumps(s.metadata), REJECT_COL: why},
                                ensure_ascii=False) + "\n")
    jobs.update_job(store, job.id, workdir=str(work))
    return jobs.job(store, job.id)


def create_from_file(store: Store, owner: str, rubric: Rubric, upload: Path, filename: str, jobs_dir: Path,
                     max_chars: int, columns: ColumnMap | None = None) -> jobs.BatchJob:
    """A job over an uploaded backlog file (moved into the job's folder); unreadable files are refused now.
    ``columns``: which columns to read (:func:`upload_columns`); default ``id`` and the rubric's field names."""
    cols = columns if columns is not None else _columns(rubric, listed=False)
    try:
        total = sum(1 for _ in read_records(upload, rubric, cols, max_chars=max_chars))
    except MissingColumns as exc:
        raise InvalidRequest(_missing_columns(filename, exc, cols)) from None
    except ValueError as exc:  # say it about the client's file, never the server's path
        why = str(exc).replace(f"{upload}: ", "").replace(str(upload), "the file")
        raise InvalidRequest(f"cannot read {filename!r}: {why}") from None
    if not total:
        raise InvalidRequest(f"{filename!r} holds no rows")
    job = jobs.create_job(store, owner, rubric.id, rubric.version, total)
    work = jobs_dir / f"job-{job.id}-{secrets.token_hex(4)}"  # job ids restart with each store
    work.mkdir(parents=True, exist_ok=True)
    shutil.move(str(upload), work / f"{UPLOAD_STEM}{upload.suffix.lower()}")
    if columns is not None:
        (work / COLUMNS_FILE).write_text(json.dumps({"id": cols.id, "text": cols.text, "meta": list(cols.meta)}),
                                         encoding="utf-8")
    jobs.update_job(store, job.id, workdir=str(work))
    return jobs.job(store, job.id)


def run_job(store: Store, model_for: Callable[[str, int], Any], policy: Any | None, job_id: int, *,
            max_chars: int, block_size: int = 32) -> None:
    """Run (or resume) a job to the end; a failure marks it ``failed`` with the reason. A job another server
    process runs right now (:func:`jobs.runner`) is left to it, untouched."""
    j = jobs.job(store, job_id)
    with jobs.runner(store, job_id, j.workdir) as mine:
        if not mine:
            log.info("batch job %s is being run by another server process; left to it", job_id)
            return
        _run_job(store, model_for, policy, j, max_chars=max_chars, block_size=block_size)


def _run_job(store: Store, model_for: Callable[[str, int], Any], policy: Any | None, j: jobs.BatchJob, *,
             max_chars: int, block_size: int) -> None:
    job_id = j.id
    try:
        if j.workdir is None:
            raise InvalidRequest(f"batch job {job_id} has no work folder (created by an older server); resubmit it")
        work = Path(j.workdir)
        # input.* : a posted list, or an upload stored by an older server (a JSONL one was misread as a list)
        inputs = sorted(work.glob(f"{UPLOAD_STEM}.*")) + sorted(work.glob("input.*"))
        if not inputs:
            raise InvalidRequest(f"batch job {job_id}'s input is gone from the server; resubmit it")
        data = inputs[0]
        model = model_for(j.rubric_id, j.rubric_version)
        listed = data.name == LIST_INPUT
        cols = _columns(model.rubric, listed, work)
        if not jobs.start_job(store, job_id):  # cancelled while it waited for the worker
            log.info("batch job %s was cancelled before it ran", job_id)
            return
        records = (_list_rejects(r) for r in read_records(data, model.rubric, cols, max_chars=max_chars))
        score_backlog(
            model, records, data, work / "scores.jsonl", read_tag=reading_tag(cols, data, None, "utf-8", True, max_chars),
            block_size=block_size, total=count_records(data, None, True), policy=policy,
            store=store, owner=j.owner, metadata_of=_metadata if listed else None, job_id=job_id,
            describe_reject=api_reject,
        )
        end = jobs.job(store, job_id)
        # finished, yet nothing scored: say so where a client polling the status looks (the CLI exits 1 here)
        none = (f"no row could be scored: all {end.rejected} were rejected (reasons in /batch-jobs/{job_id}/results)"
                if end.done == 0 and end.rejected > 0 else None)
        jobs.end_job(store, job_id, "done", none)
    except jobs.JobCancelled:  # the rows recorded before the cancel stay; the block in hand was rolled back
        log.info("batch job %s stopped: cancelled", job_id)
    except OutputLocked:  # another server process is running this job (both resumed it): it finishes it
        log.info("batch job %s is being run by another process", job_id)
    except Exception as exc:  # noqa: BLE001 - the job's record must say why it stopped
        log.exception("batch job %s failed", job_id)
        why = str(exc)
        if j.workdir:  # the client's words: never the server's paths
            why = why.replace(f"{j.workdir}/", "").replace(j.workdir, "the job's folder")
        jobs.end_job(store, job_id, "failed", f"{getattr(exc, 'code', type(exc).__name__)}: {why}")


def _list_rejects(r: Record) -> Record:
    """A posted row that failed the evidence check carries its reason in a column the reader passes on."""
    why = r.meta.pop(REJECT_COL, None)
    if why:
        r.reject = why
    return r


def resume_unfinished(store: Store, submit: Callable[[int], Any]) -> list[int]:
    """Hand every job a previous server left queued or running to ``submit`` (the job runner)."""
    ids = [j.id for j in jobs.unfinished_jobs(store)]
    for i in ids:
        submit(i)
    return ids
