"""Batch jobs: POST a list (JSON) or a backlog file; scoring runs in the background; GET progress."""

from __future__ import annotations

import tempfile
from pathlib import Path as FsPath
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Path, Query, UploadFile

from api import schemas as S
from api import service
from api.context import AppContext
from api.deps import ctx, require
from scoring.errors import Forbidden, InvalidRequest
from scoring.store import jobs
from scoring.store.keys import ApiKey

router = APIRouter(prefix="/batch-jobs", tags=["batch jobs"], responses=S.problems(401, 403))


def _start(c: AppContext, key: ApiKey, rubric_id: str, version: int, rows: list[Any]) -> S.BatchJobOut:
    c.models.get(rubric_id, version)  # 503 now rather than a failed job later
    j = jobs.create_job(c.store, key.name, rubric_id, version, len(rows))
    c.jobs.submit(service.run_batch_job, c, j.id, key.name, rubric_id, version, rows)
    return service.job_out(j)


@router.post("", response_model=S.BatchJobOut, status_code=202, responses=S.problems(400, 404, 413, 422, 503),
             summary="Start a batch job from a JSON list")
def create(body: S.BatchIn, c: AppContext = Depends(ctx), key: ApiKey = Depends(require("issuer", "admin"))) -> Any:
    version = service.resolve_version(c, body.rubric_id, body.rubric_version)
    ids = [s.external_id for s in body.submissions]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise InvalidRequest(f"external ids must be unique within a batch, found repeated {dup}")
    rows = [(s.external_id, dict(s.evidence), dict(s.metadata), None) for s in body.submissions]
    return _start(c, key, body.rubric_id, version, rows)


@router.post("/upload", response_model=S.BatchJobOut, status_code=202, responses=S.problems(404, 413, 422, 503),
             summary="Start a batch job from a backlog file (CSV, TSV, JSONL, Parquet)",
             description="Columns: `id` and one per evidence field of the rubric (as `scoring score` reads "
                         "them). Unreadable rows are recorded as rejected with their reason.")
def upload(
    file: UploadFile = File(..., description="The backlog file; its extension names the format."),
    rubric_id: str = Form(..., max_length=80),
    rubric_version: int | None = Form(None, ge=1, le=S.INT32),
    c: AppContext = Depends(ctx),
    key: ApiKey = Depends(require("issuer", "admin")),
) -> Any:
    version = service.resolve_version(c, rubric_id, rubric_version)
    rubric = c.store.rubric(rubric_id, version)
    suffix = FsPath(file.filename or "upload.csv").suffix.lower()
    if suffix not in {".csv", ".tsv", ".jsonl", ".parquet"}:
        raise InvalidRequest(f"file must be .csv, .tsv, .jsonl or .parquet; found {file.filename!r}")
    with tempfile.TemporaryDirectory() as tmp:
        path = FsPath(tmp) / f"upload{suffix}"
        with path.open("wb") as fh:
            while chunk := file.file.read(1 << 20):
                fh.write(chunk)
        try:
            rows = service.rows_from_file(c, rubric, path)
        except ValueError as exc:  # say it about the client's file, never the server's temporary path
            why = str(exc).replace(f"{path}: ", "").replace(str(path), "the file")
            raise InvalidRequest(f"cannot read {file.filename!r}: {why}") from None
    if not rows:
        raise InvalidRequest(f"{file.filename!r} holds no rows")
    return _start(c, key, rubric_id, version, rows)


def _own(c: AppContext, key: ApiKey, job_id: int) -> jobs.BatchJob:
    j = jobs.job(c.store, job_id)
    if key.role != "admin" and j.owner != key.name:
        raise Forbidden(f"batch job {job_id} belongs to {j.owner!r}, not {key.name!r}")
    return j


@router.get("/{job_id}", response_model=S.BatchJobOut, responses=S.problems(404), summary="Progress of a job")
def read(job_id: int = Path(ge=1, le=2**31 - 1), c: AppContext = Depends(ctx),
         key: ApiKey = Depends(require("issuer", "admin"))) -> Any:
    return service.job_out(_own(c, key, job_id))


@router.get("/{job_id}/results", response_model=list[S.BatchResultOut], responses=S.problems(404),
            summary="Per-row outcome of a job: the submission id, or why the row was rejected")
def results(job_id: int = Path(ge=1, le=2**31 - 1), offset: int = Query(0, ge=0, le=10**7),
            limit: int = Query(1000, ge=1, le=10_000), c: AppContext = Depends(ctx),
            key: ApiKey = Depends(require("issuer", "admin"))) -> Any:
    _own(c, key, job_id)
    return [S.BatchResultOut(position=r.position, external_id=r.external_id, submission_id=r.submission_id,
                             error=r.error) for r in jobs.job_results(c.store, job_id, offset=offset, limit=limit)]
