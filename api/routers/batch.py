"""Batch jobs: POST a list (JSON) or a backlog file; scoring runs in the background; GET progress.

Jobs run on the same engine as ``scoring score --store`` and resume after a server restart.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path as FsPath
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Path, Query, UploadFile

from api import idempotency, views
from api import schemas as S
from api.context import AppContext
from api.deps import ctx, require
from scoring.errors import InvalidRequest, NotFound
from scoring.store import canonical_json, jobs
from scoring.store.keys import ApiKey
from scoring.usecases import batch_jobs
from scoring.usecases.intake import NewSubmission
from scoring.usecases.registry import resolve_version

UPLOAD_NAME = r"(?i)\.(csv|tsv|jsonl|parquet)$"  # the upload's extension rule, also in the OpenAPI schema
router = APIRouter(prefix="/batch-jobs", tags=["batch jobs"], responses=S.problems(401, 403))


def start(c: AppContext, job_id: int) -> None:
    """Run (or resume) a job on the app's one background worker."""
    c.jobs.submit(batch_jobs.run_job, c.store, c.models.get, c.policy_for(jobs.job(c.store, job_id).rubric_id), job_id,
                  max_chars=c.settings.max_text_chars)


@router.post("", response_model=S.BatchJobOut, status_code=202, responses=S.problems(400, 404, 409, 413, 422, 503),
             summary="Start a batch job from a JSON list")
def create(body: S.BatchIn, c: AppContext = Depends(ctx), key: ApiKey = Depends(require("issuer", "admin")),
           idempotency_key: str | None = idempotency.KEY_HEADER) -> Any:
    def make() -> tuple[int, dict[str, Any]]:
        version = resolve_version(c.store, c.models, body.rubric_id, body.rubric_version)
        model = c.models.get(body.rubric_id, version)  # 503 now rather than a failed job later
        subs = [NewSubmission(s.external_id, dict(s.evidence), dict(s.metadata)) for s in body.submissions]
        j = batch_jobs.create_from_list(c.store, key.name, model.rubric, subs, c.settings.jobs_dir(),
                                        c.settings.max_text_chars)
        start(c, j.id)
        return 202, views.job_out(j).model_dump(mode="json")

    digest = idempotency.request_hash(b"batch-jobs", canonical_json(body.model_dump(mode="json")).encode())
    return idempotency.respond_once(c.store, key.name, idempotency_key, digest, make)


@router.post("/upload", response_model=S.BatchJobOut, status_code=202, responses=S.problems(404, 409, 413, 422, 503),
             summary="Start a batch job from a backlog file (CSV, TSV, JSONL, Parquet)",
             description="Columns: `id` and one per evidence field of the rubric (as `scoring score` reads "
                         "them), unless the form names them as `scoring score`'s options do: `id_col` (the "
                         "submissions' external id), `text_col` (`EVIDENCE=COLUMN`, repeatable, one per evidence "
                         "field) and `meta_col` (a column kept as the submission's metadata, repeatable). A field "
                         "that is malformed, names an evidence field the rubric lacks, or a column the file lacks "
                         "is 422 `invalid_request`, naming it. Unreadable rows are recorded as rejected with their "
                         "reason. The file name must end in `.csv`, `.tsv`, `.jsonl` or `.parquet` (it names the "
                         "format; 422 otherwise).")
def upload(
    file: UploadFile = File(..., description="The backlog file; its name must end in .csv, .tsv, .jsonl or "
                            ".parquet, which names the format.",
                            json_schema_extra={"x-filename-pattern": UPLOAD_NAME}),
    rubric_id: str = Form(..., max_length=80),
    rubric_version: int | None = Form(None, ge=1, le=S.INT32),
    id_col: str | None = Form(None, max_length=batch_jobs.MAX_COLUMN_NAME,
                              description="The column holding each submission's external id (default `id`), "
                              "as `scoring score --id-col`."),
    text_col: list[str] | None = Form(None, description="`EVIDENCE=COLUMN`, repeatable: the column holding an "
                                      "evidence field of the rubric (default: columns named like the fields), as "
                                      "`scoring score --text-col`."),
    meta_col: list[str] | None = Form(None, description="A column kept as the submission's metadata (e.g. a "
                                      "school, for `scoring report --subgroup`), repeatable, as "
                                      "`scoring score --meta-col`."),
    c: AppContext = Depends(ctx),
    key: ApiKey = Depends(require("issuer", "admin")),
    idempotency_key: str | None = idempotency.KEY_HEADER,
) -> Any:
    version = resolve_version(c.store, c.models, rubric_id, rubric_version)
    model = c.models.get(rubric_id, version)
    cols = batch_jobs.upload_columns(model.rubric, id_col, text_col, meta_col)
    suffix = FsPath(file.filename or "upload.csv").suffix.lower()
    if suffix not in {".csv", ".tsv", ".jsonl", ".parquet"}:
        raise InvalidRequest(f"file must be .csv, .tsv, .jsonl or .parquet; found {file.filename!r}")
    jobs_dir = c.settings.jobs_dir()
    jobs_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=jobs_dir) as tmp:
        path = FsPath(tmp) / f"upload{suffix}"
        content = hashlib.sha256()
        with path.open("wb") as fh:
            while chunk := file.file.read(1 << 20):
                fh.write(chunk)
                content.update(chunk)

        def make() -> tuple[int, dict[str, Any]]:
            j = batch_jobs.create_from_file(c.store, key.name, model.rubric, path, file.filename or path.name,
                                            jobs_dir, c.settings.max_text_chars, cols)
            start(c, j.id)
            return 202, views.job_out(j).model_dump(mode="json")

        fields = canonical_json({"rubric_id": rubric_id, "rubric_version": version, "file": file.filename,
                                 "id": cols.id, "text": cols.text, "meta": list(cols.meta)}).encode()
        digest = idempotency.request_hash(b"batch-jobs/upload", content.digest(), fields)
        return idempotency.respond_once(c.store, key.name, idempotency_key, digest, make)


def _own(c: AppContext, key: ApiKey, job_id: int) -> jobs.BatchJob:
    """The job when the caller may see it; another issuer's job answers as an unknown one (404), so job
    ids cannot be probed and no owner is named."""
    try:
        j = jobs.job(c.store, job_id)
    except NotFound:
        raise NotFound(f"batch job {job_id} does not exist") from None
    if key.role != "admin" and j.owner != key.name:
        raise NotFound(f"batch job {job_id} does not exist")
    return j


@router.get("", response_model=list[S.BatchJobOut], summary="Batch jobs, newest first: the caller's own (an admin's: all)")
def listing(status: S.JobStatus | None = Query(None, description="Only jobs in this state"),
            offset: int = Query(0, ge=0, le=10**7), limit: int = Query(100, ge=1, le=1000),
            c: AppContext = Depends(ctx), key: ApiKey = Depends(require("issuer", "admin"))) -> Any:
    owner = None if key.role == "admin" else key.name
    return [views.job_out(j) for j in jobs.list_jobs(c.store, owner, status, offset=offset, limit=limit)]


@router.post("/{job_id:int}/cancel", response_model=S.BatchJobOut, responses=S.problems(404, 409),
             summary="Cancel a queued or running job",
             description="The job stops before it records its next block: the rows it recorded stay recorded "
                         "(scored, routed, queued for assessors; listed in its results), the rest are not read, "
                         "and no server resumes it. To score the rest, start a new job with the same rows: rows "
                         "already recorded are recognised as the same submissions, not recorded twice. 409 "
                         "`job_finished` when the job had already ended.")
def cancel(job_id: int = Path(ge=1, le=2**31 - 1), c: AppContext = Depends(ctx),
           key: ApiKey = Depends(require("issuer", "admin"))) -> Any:
    _own(c, key, job_id)
    return views.job_out(jobs.cancel_job(c.store, job_id, key.name))


@router.get("/{job_id:int}", response_model=S.BatchJobOut, responses=S.problems(404), summary="Progress of a job")
def read(job_id: int = Path(ge=1, le=2**31 - 1), c: AppContext = Depends(ctx),
         key: ApiKey = Depends(require("issuer", "admin"))) -> Any:
    return views.job_out(_own(c, key, job_id))


@router.get("/{job_id:int}/results", response_model=list[S.BatchResultOut], responses=S.problems(404),
            summary="Per-row outcome of a job: the submission id, or why the row was rejected")
def results(job_id: int = Path(ge=1, le=2**31 - 1), offset: int = Query(0, ge=0, le=10**7),
            limit: int = Query(1000, ge=1, le=10_000), c: AppContext = Depends(ctx),
            key: ApiKey = Depends(require("issuer", "admin"))) -> Any:
    _own(c, key, job_id)
    return [S.BatchResultOut(position=r.position, external_id=r.external_id, submission_id=r.submission_id,
                             error=r.error) for r in jobs.job_results(c.store, job_id, offset=offset, limit=limit)]
