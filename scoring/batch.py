"""The resumable batch job: score a backlog file block by block, surviving SIGKILL.

How resume stays exact: after each block the output and rejects files are flushed and fsynced, then a
small state file records how many input records are done and the byte length of both files (written
to a temp file and renamed, so it is never half-written). On restart the outputs are cut back to the
recorded lengths (dropping any half-written block) and reading resumes at the next record. A block is
therefore written exactly once: no row lost, none duplicated.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import fcntl
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.artifact import ScoringModel
from rubrics import Rubric
from scoring import faults
from scoring.errors import ScoringError
from scoring.ingest import Record
from scoring.prescore import ScoredSubmission, prescore

Hook = Callable[[list[ScoredSubmission], list[Record]], None]
# A sink records a scored block elsewhere (the store) before the block is written to the files; it gets the
# block's scored items, their records and the block's rejected records, and returns the record numbers it
# refused, with the reason (they then go to the rejects file instead of the output).
Sink = Callable[[list[ScoredSubmission], list[Record], list[Record]], dict[int, str]]


class JobStateError(ScoringError):
    """Outputs exist from a different job (other input or model): refuse rather than mix them."""

    code = "job_state_conflict"


class OutputLocked(JobStateError):
    """Another process is writing this output right now (it holds the lock)."""


@dataclass
class JobSummary:
    records: int
    scored: int
    rejected: int
    resumed_from: int
    seconds: float
    out: Path
    rejects: Path

    @property
    def rate(self) -> float:
        return (self.records - self.resumed_from) / self.seconds if self.seconds > 0 else 0.0


def file_fingerprint(path: Path) -> str:
    """SHA-256 of the whole input, streamed (constant memory).

    Why the whole file: a resume must notice any edit, and an essay changed in the middle keeps the size
    and the first and last bytes. Cost: one sequential read of the input per run (SHA-256 runs at
    several hundred MB/s on one core, so about 1-2 s per GB, usually less than reading the file for scoring).
    """
    if path.is_dir():  # a folder of shards, read as their concatenation in name order
        from scoring.engines.shards import folder_fingerprint

        return folder_fingerprint(path)
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _job_change(recorded: Any, now: dict[str, Any]) -> str:
    """What differs between the job that wrote an output and this one, in words."""
    if not isinstance(recorded, dict):
        return "the progress file records no job"
    what = []
    if recorded.get("input") != now["input"]:
        what.append("the input file's content changed since that run (its SHA-256 differs)")
    if recorded.get("model_version") != now["model_version"]:
        what.append(f"the model changed (that run used {recorded.get('model_version')}, this one "
                    f"{now['model_version']})")
    if recorded.get("tag") != now["tag"]:
        what += _tag_changes(str(recorded.get("tag", "")), str(now["tag"]))
    if recorded.get("columns") != now.get("columns"):
        was, cols = recorded.get("columns") or [], now.get("columns") or []
        what.append(f"the output columns changed (new: {[c for c in cols if c not in was] or 'none'}, "
                    f"gone: {[c for c in was if c not in cols] or 'none'})")
    return "; ".join(what) or "the job description changed"


def job_identity(input_path: Path, model: Any, job_tag: str, fmt: str, extra_cols: list[str]) -> dict[str, Any]:
    """What a resumed run must share with the run that started an output, for both engines.

    A CSV output's columns belong to it (routing adds ``<criterion>.machine_rule``): rows of one layout
    appended under another header would be misread, so a change of columns is a change of job.
    """
    job: dict[str, Any] = {"input": file_fingerprint(input_path), "model_version": model.version, "tag": job_tag}
    if fmt == "csv":
        job["columns"] = csv_header(model.rubric, extra_cols)
    return job


def recorded_job(recorded: Any, job: dict[str, Any], out: Path) -> Any:
    """The job a progress file records, as ``job_identity`` would now describe it.

    A progress file from before outputs recorded their columns: the CSV's own first line stands for them.
    """
    if isinstance(recorded, dict) and "columns" in job and "columns" not in recorded and out.exists() \
            and out.stat().st_size > 0:
        with out.open(encoding="utf-8", newline="") as fh:
            return {**recorded, "columns": next(csv.reader(fh), [])}
    return recorded


_OPTION = {"id": "--id-col", "text": "--text-col", "where": "--where", "format": "--format", "encoding": "--encoding",
           "quoting": "--no-quoting", "max_chars": "SCORING_MAX_TEXT_CHARS"}


def _shown(v: Any) -> str:
    if v in (None, {}, [], ""):
        return "none"
    if isinstance(v, dict):
        return ", ".join(f"{k}={x}" for k, x in v.items())
    return str(v)


def _tag_changes(old: str, new: str) -> list[str]:
    """The job tag's parts (``read=...|policy=...|store=...``) that differ, named as the user set them."""
    def parts(tag: str) -> dict[str, str]:
        return {k: v for k, _, v in (p.partition("=") for p in tag.split("|") if p)}

    a, b = parts(old), parts(new)
    out = []
    if a.get("read") != b.get("read"):
        try:
            ra, rb = json.loads(a.get("read") or "{}"), json.loads(b.get("read") or "{}")
            opts = [f"{_OPTION.get(k, k)}: was {_shown(ra.get(k))}, now {_shown(rb.get(k))}"
                    for k in sorted(set(ra) | set(rb)) if ra.get(k) != rb.get(k)]
        except ValueError:
            opts = []
        out.append("the reading options changed" + (f" ({'; '.join(opts)})" if opts else ""))
    for key, name in (("policy", "routing policy"), ("highlights", "--highlights"), ("store", "store"),
                      ("owner", "owner")):
        if a.get(key) != b.get(key):
            out.append(f"the {name} changed (was {a.get(key) or 'none'}, now {b.get(key) or 'none'})")
    return out


def csv_header(rubric: Rubric, extra_cols: list[str]) -> list[str]:
    cols = ["id"]
    for c in rubric.criteria:
        cols.append(c.id)
        cols += [f"{c.id}.p{lv}" for lv in c.scores]
    for c in rubric.criteria:
        cols += [f"{c.id}.{e}" for e in extra_cols]
    return cols


def _csv_rows(items: list[ScoredSubmission], rubric: Rubric, extra_cols: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for it in items:
        row: list[Any] = [it.id]
        for c in rubric.criteria:
            r = it.criteria[c.id]
            row.append(r.score)
            row += [f"{r.probabilities[lv]:.6f}" for lv in c.scores]
        for c in rubric.criteria:
            ex = it.criteria[c.id].extra
            row += [json.dumps(ex[e]) if isinstance(ex.get(e), (list, dict)) else ex.get(e, "") for e in extra_cols]
        w.writerow(row)
    return buf.getvalue()


def render_items(items: list[ScoredSubmission], fmt: str, rubric: Rubric, extra_cols: list[str]) -> str:
    """Output text of scored items (``jsonl`` or ``csv`` rows), as every engine writes it."""
    if fmt == "jsonl":
        return "".join(json.dumps(it.to_json(), ensure_ascii=False) + "\n" for it in items)
    return _csv_rows(items, rubric, extra_cols)


def render_rejects(bad: list[Record]) -> str:
    """Rejects-file lines of rejected records, as every engine writes them."""
    return "".join(json.dumps({"record": r.number, "id": r.id, "reason": r.reject}, ensure_ascii=False) + "\n"
                   for r in bad)


def _fsync_append(fh: Any, text: str) -> None:
    fh.write(text.encode("utf-8", "surrogateescape"))
    fh.flush()
    os.fsync(fh.fileno())


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``OUT.lock`` while a job writes ``out``.

    Why: two runs appending to one output would each write every row (both resume from the same
    progress file), so the second is refused instead; the OS drops the lock if the process dies.
    """
    lock_path = out.with_name(out.name + ".lock")
    out.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputLocked(f"another job is writing {out} right now (lock {lock_path.name}); "
                                "wait for it to finish or choose another --out") from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def claim_only(state: dict[str, Any]) -> bool:
    """Whether a progress file records a job that scored nothing: no record done, or every record it read
    rejected (its rejects file only says why the rows could not be read, which the next run says again).

    Why: a run that fails before its first block (a wrong ``--id-col``, a typo in ``--where``) leaves its
    claim on the output, and so does one that rejected every row (the wrong ``--encoding``); refusing the
    corrected command as "another job" would ask for ``--overwrite`` where nothing can be lost."""
    if state.get("records_done") == 0 and state.get("out_bytes") == 0 and state.get("rejects_bytes") == 0:
        return True
    return state.get("scored", None) == 0 and state.get("rejected", 0) == state.get("records_done")


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
        if not isinstance(state, dict) or not {"job", "records_done", "out_bytes", "rejects_bytes"} <= set(state):
            raise ValueError("missing fields")
        return state
    except (ValueError, OSError) as exc:
        raise JobStateError(f"progress file {path} is unreadable ({exc}); the outputs cannot be resumed safely: "
                            "pass --overwrite to start again or choose another --out") from None


def _write_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(state))
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _check_outside_input(input_path: Path, out: Path, rejects: Path) -> None:
    """Refuse an output or rejects file inside a backlog folder, before anything is written.

    Why: a folder is read (and fingerprinted) as every data file in it, so a ``.jsonl``/``.csv`` output
    written there would become part of its own input on the next run or resume (shards-folder).
    """
    if not input_path.is_dir():
        return
    folder = input_path.resolve()
    for option, p in (("--out", out), ("--rejects", rejects)):
        if p.resolve().is_relative_to(folder):
            raise ScoringError(f"{option} {p} must be outside the input folder {input_path}: every data file in "
                               "that folder is read as part of the backlog, so the output would become part of "
                               "its own input; choose a path outside the folder")


def run_batch(
    model: ScoringModel,
    records: Iterable[Record],
    input_path: Path,
    out: Path,
    rejects: Path | None = None,
    block_size: int = 1024,
    total: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
    hooks: list[Hook] | None = None,
    extra_csv_cols: list[str] | None = None,
    job_tag: str = "",
    sink: Sink | None = None,
    engine: Any = None,  # e.g. scoring.engines.ray_engine.RayEngine; None = this process
) -> JobSummary:
    """Score ``records`` into ``out`` (``.jsonl`` or ``.csv``), resuming a previous run of the same job.

    ``hooks`` run on each scored block before it is written (routing adds route/reason there) and must
    be deterministic for a given block, so a resumed block is written as it would have been. ``sink``
    (the store) records each block before the files: a block it recorded and the files did not is
    recorded again on resume, which the sink answers from what it holds (it must be idempotent).
    """
    out = Path(out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in {"jsonl", "csv"}:
        raise ScoringError(f"--out must end in .jsonl or .csv, found {out.name!r}")
    if block_size < 1:
        raise ScoringError(f"block size must be at least 1, found {block_size}")
    rejects = Path(rejects) if rejects else out.with_name(out.stem + ".rejects.jsonl")
    if rejects.resolve() == out.resolve() or rejects.resolve() == Path(input_path).resolve() \
            or out.resolve() == Path(input_path).resolve():
        raise ScoringError(f"input {input_path}, output {out} and rejects {rejects} must be three different files")
    _check_outside_input(Path(input_path), out, rejects)
    with _exclusive(out):
        if engine is not None:  # the same job on another engine, under the same lock
            return engine.run(model, records, input_path, out, rejects, fmt, block_size, total, progress, overwrite,
                              hooks or [], extra_csv_cols or [], job_tag, sink)
        return _run_locked(model, records, input_path, out, rejects, fmt, block_size, total, progress, overwrite,
                           hooks, extra_csv_cols, job_tag, sink)


def _run_locked(
    model: ScoringModel,
    records: Iterable[Record],
    input_path: Path,
    out: Path,
    rejects: Path,
    fmt: str,
    block_size: int,
    total: int | None,
    progress: bool,
    overwrite: bool,
    hooks: list[Hook] | None,
    extra_csv_cols: list[str] | None,
    job_tag: str,
    sink: Sink | None = None,
) -> JobSummary:
    state_path = out.with_name(out.name + ".progress.json")
    extra_cols = extra_csv_cols or []
    job = job_identity(input_path, model, job_tag, fmt, extra_cols)
    done = 0
    out_bytes = rej_bytes = 0
    scored = rejected = 0
    if state_path.exists() and not overwrite:
        state = _read_state(state_path)
        before = recorded_job(state.get("job"), job, out)
        if before == job:
            done, out_bytes, rej_bytes = state["records_done"], state["out_bytes"], state["rejects_bytes"]
            scored, rejected = state.get("scored", 0), state.get("rejected", 0)
        elif not claim_only(state):
            raise JobStateError(
                f"{out} was written by another job and cannot be resumed with this one: "
                f"{_job_change(before, job)}. Pass --overwrite to start again or choose another --out"
            )
        # else: a run that stopped before its first block (a wrong column option) claimed the output and
        # wrote nothing: this job starts there, as it would have with --overwrite
    elif out.exists() and out.stat().st_size > 0 and not overwrite:
        raise JobStateError(f"{out} exists and no progress file says which job wrote it; pass --overwrite or another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    for p, n in ((out, out_bytes), (rejects, rej_bytes)):
        with p.open("ab") as fh:
            fh.truncate(n)
    resumed_from = done
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=done, unit="sub", desc="scoring", dynamic_ncols=True, smoothing=0.1)
    if done == 0:  # claim the outputs before the first byte: a kill before the first block's checkpoint
        # then resumes from nothing instead of finding output that no progress file explains
        _write_state(state_path, {"job": job, "records_done": 0, "out_bytes": 0, "rejects_bytes": 0,
                                  "scored": 0, "rejected": 0})
    with out.open("ab") as fo, rejects.open("ab") as fr:
        if fmt == "csv" and out_bytes == 0:
            _fsync_append(fo, ",".join(csv_header(model.rubric, extra_cols)) + "\n")
        block: list[Record] = []
        n_seen = 0

        def flush(block: list[Record]) -> None:
            nonlocal done, scored, rejected
            good = [r for r in block if r.reject is None]
            bad = [r for r in block if r.reject is not None]
            items = prescore(model, [r.id or "" for r in good], [r.evidence for r in good]) if good else []
            for h in hooks or []:
                h(items, good)
            if sink is not None:
                refused = sink(items, good, bad)
                faults.point("batch:after_sink")
                if refused:
                    kept = [(it, r) for it, r in zip(items, good, strict=True) if r.number not in refused]
                    items = [it for it, _ in kept]
                    bad = sorted(bad + [dataclasses.replace(r, reject=refused[r.number]) for r in good
                                        if r.number in refused], key=lambda r: r.number)
            if items:
                _fsync_append(fo, render_items(items, fmt, model.rubric, extra_cols))
                faults.point("batch:after_output")
            if bad:
                _fsync_append(fr, render_rejects(bad))
            done += len(block)
            scored += len(items)
            rejected += len(bad)
            _write_state(
                state_path,
                {
                    "job": job,
                    "records_done": done,
                    "out_bytes": fo.tell(),
                    "rejects_bytes": fr.tell(),
                    "scored": scored,
                    "rejected": rejected,
                },
            )
            faults.point("batch:after_progress")
            if bar is not None:
                bar.update(len(block))
                bar.set_postfix(rejected=rejected, refresh=False)

        for rec in records:
            n_seen += 1
            if n_seen <= resumed_from:
                continue
            block.append(rec)
            if len(block) >= block_size:
                flush(block)
                block = []
        if block:
            flush(block)
    if bar is not None:
        bar.close()
    state = _read_state(state_path) if state_path.exists() else {}
    state["complete"] = True
    if state_path.exists():
        _write_state(state_path, state)
    return JobSummary(done, scored, rejected, resumed_from, time.perf_counter() - t0, out, rejects)
