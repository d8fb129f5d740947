"""``scoring score --engine ray``: the batch job on a Ray cluster, with the local engine's files and guarantees.

How a job runs:
  1. The driver (the ``scoring score`` process) reads the input with the project's reader
     (``scoring.ingest``; a folder of shards through ``scoring.engines.shards``), so every reject and its
     reason are the local engine's, and cuts the records into the local engine's blocks (``--block-size``
     records each, rejects included). Ray's own CSV/JSON readers are not used: they refuse a whole file
     over one malformed row or non-UTF-8 line and cannot see a duplicate id in another block.
  2. Each unfinished block's valid records become one Arrow table in the cluster's object store, and the
     tables one Ray Data dataset (``ray.data.from_arrow``: one Ray Data block per job block). The input is
     taken a window at a time (``window_records``, 50,000 records by default): the driver holds one
     window's records, never the whole backlog, and the actor pool is built again for each window (a few
     seconds of model loading per window, against minutes of scoring).
  3. ``map_batches`` runs the existing pipeline on a fixed pool of actors (``ActorPoolStrategy``, one per
     ``cpus_per_actor`` CPUs of the cluster): each actor builds the encoder once and receives the model and
     the job's hooks (routing with the suspensions read when the job started, highlights) once, pickled
     with the encoder left out, so the cluster needs the package installed but not the model directory.
     An actor scores a whole block with ``scoring.prescore.prescore`` plus the hooks, exactly as the local
     engine's block, and renders its output lines with the same functions (``scoring.batch.render_items``).
  4. The driver takes each finished block as it comes back, records it in the store first when
     ``--store`` is given (the same use case and sink as the local engine, before the files, idempotent on
     a resume), then commits it as part files in the job folder ``OUT.ray/`` (written to a temporary name,
     fsynced, renamed; a block's ``.json`` is renamed in last and is the commit point).
  5. When every block is committed the parts are joined in block order into OUT and the rejects file
     (temporary files renamed into place), the local engine's progress file is written as complete, and
     the job folder is removed. The output is therefore one file in input order with the local engine's
     rows and bytes (same blocks, same code, same rendering, and an encoder whose vectors do not depend on
     what else is encoded, ``models.encoder.Encoder._embed``), and a re-run of a finished job with either
     engine adds nothing.

Resume: a driver killed at any point leaves committed blocks in ``OUT.ray/``; the same command again
re-reads the input, checks that input, model and options are those of the job that wrote them
(``manifest.json``), and sends only the uncommitted blocks. A worker (actor) killed mid-block is
restarted by Ray and its block retried (Ray Data's actor pools restart actors and retry their tasks by
default); the driver commits a block once, whichever attempt finished it, so no row is lost or written
twice.

Embedding cache: the actors use the local engine's content-addressed SQLite cache
(``SCORING_CACHE_DIR/embeddings.sqlite``, WAL mode), at the path the driver resolves. On one machine all
actors and the local engine share that file (WAL allows concurrent readers and writers; keys are
content hashes, so two actors writing the same key write the same bytes), and a re-run of an unchanged
backlog, local or Ray, reads its probabilities instead of encoding. On several machines each node uses the
file at that path on its own disk: SQLite's WAL needs shared memory between its processes and is not
safe on a network file system, so the cache is shared by the workers of a node, not across nodes, and
the store's database is not used for embeddings (one vector per text window would add millions of rows
and a network round trip per block to the store every audit query reads).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoring import faults
from scoring.batch import (
    JobStateError,
    JobSummary,
    Sink,
    _job_change,
    _read_state,
    _write_state,
    claim_only,
    csv_header,
    job_identity,
    recorded_job,
    render_items,
    render_rejects,
)
from scoring.errors import ScoringError
from scoring.ingest import Record

JOB_DIR_SUFFIX = ".ray"
_MAX_PAYLOAD = 512 * 1024 * 1024  # a model + hooks larger than this captured something it should not


class RayNotInstalled(ScoringError):
    code = "ray_not_installed"


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayNotInstalled('the Ray engine needs the ray extra: pip install "rubric-scoring[ray]" '
                              '(or pip install ".[ray]" in a checkout)') from None
    return ray


# -- shipping the model and hooks ---------------------------------------------------------------------

def _pack(model: Any, hooks: list[Any]) -> bytes:
    import cloudpickle

    class P(cloudpickle.Pickler):
        def __init__(self, fh: Any, encoder: Any):
            super().__init__(fh, protocol=5)
            self._encoder = encoder

        def persistent_id(self, obj: Any) -> str | None:
            return "encoder" if obj is self._encoder else None

    buf = io.BytesIO()
    try:
        P(buf, model.encoder).dump((model, hooks))
    except Exception as exc:  # noqa: BLE001 - say which part of the job cannot travel
        raise ScoringError(f"the model or a hook of this job cannot be sent to Ray workers: {exc}") from None
    data = buf.getvalue()
    if len(data) > _MAX_PAYLOAD:
        raise ScoringError(f"the model and hooks pickle to {len(data) >> 20} MiB; a hook captured more than the model")
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, fh: Any, encoder: Any):
        super().__init__(fh)
        self._encoder = encoder

    def persistent_load(self, pid: Any) -> Any:
        if pid == "encoder":
            return self._encoder
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")


@dataclass(frozen=True)
class EncoderSpec:
    """What an actor needs to build the driver's encoder (same weights, precision, windows, cache)."""

    name: str
    precision: str
    batch_size: int
    overlap: int
    cache_dir: str | None
    device: str | None

    @classmethod
    def of(cls, encoder: Any, cache_dir: str | Path | None, device: str | None) -> EncoderSpec:
        cache = getattr(encoder, "cache", None)
        if cache_dir is None and cache is not None:
            cache_dir = Path(cache.path).parent
        return cls(encoder.name, encoder.precision, encoder.batch_size, encoder.overlap,
                   str(Path(cache_dir).absolute()) if cache_dir is not None else None, device)

    def build(self) -> Any:
        from models.encoder import Encoder

        return Encoder(self.name, cache_dir=self.cache_dir, precision=self.precision, batch_size=self.batch_size,
                       overlap=self.overlap, device=self.device)


class BlockScorer:
    """A Ray Data actor: the model, hooks and encoder loaded once, then one job block per call."""

    def __init__(self, payload: Any, spec: EncoderSpec, fmt: str, extra_cols: list[str], keep_items: bool):
        ray = _ray()
        if isinstance(payload, ray.ObjectRef):
            payload = ray.get(payload)
        self.encoder = spec.build()
        self.model, self.hooks = _Unpickler(io.BytesIO(payload), self.encoder).load()
        for scorer in self.model.scorers.values():  # as models.artifact.load_model does: scorers pickle without it
            scorer.encoder = self.encoder
        self.fmt, self.extra_cols, self.keep_items = fmt, extra_cols, keep_items

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from scoring.prescore import prescore

        cols = batch.to_pydict()
        out: dict[str, list[Any]] = {"block": [], "number": [], "line": [], "item": []}
        # a Ray Data batch is one job block (batch_size=None); grouped anyway so a merged batch stays exact
        groups: dict[int, list[int]] = {}
        for i, b in enumerate(cols["block"]):
            groups.setdefault(int(b), []).append(i)
        for b, idx in groups.items():
            recs = [Record(int(cols["number"][i]), cols["id"][i], evidence=json.loads(cols["evidence"][i]),
                           meta=json.loads(cols["meta"][i])) for i in idx]
            items = prescore(self.model, [r.id or "" for r in recs], [r.evidence for r in recs])
            for h in self.hooks:
                h(items, recs)
            for it, r in zip(items, recs, strict=True):
                out["block"].append(b)
                out["number"].append(r.number)
                out["line"].append(render_items([it], self.fmt, self.model.rubric, self.extra_cols)
                                   .encode("utf-8", "surrogateescape"))
                out["item"].append(pickle.dumps((it, r), protocol=5) if self.keep_items else b"")
        return pa.table({"block": pa.array(out["block"], pa.int64()), "number": pa.array(out["number"], pa.int64()),
                         "line": pa.array(out["line"], pa.binary()), "item": pa.array(out["item"], pa.binary())})


# -- the job folder ------------------------------------------------------------------------------------

def _fsync_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class _Block:
    index: int
    records: int = 0
    good: int = 0
    bad: list[Record] | None = None


class JobFolder:
    """``OUT.ray/``: ``manifest.json`` (the job) and ``parts/`` (one committed block = three files)."""

    def __init__(self, out: Path):
        self.root = out.with_name(out.name + JOB_DIR_SUFFIX)
        self.parts = self.root / "parts"
        self.manifest = self.root / "manifest.json"

    def open(self, job: dict[str, Any]) -> dict[int, dict[str, Any]]:
        """Claim or resume the folder for ``job``; the committed blocks by index.

        A folder of another job that committed no block (it failed before its first, e.g. on a wrong column
        option) is claimed for this one: nothing of it can be lost, so the corrected command is not refused."""
        if self.manifest.exists() and not any(self.parts.glob("*.json")):
            shutil.rmtree(self.root, ignore_errors=True)  # an uncommitted claim (and any half-written part)
        if self.manifest.exists():
            try:
                recorded = json.loads(self.manifest.read_text())
            except ValueError as exc:
                raise JobStateError(f"{self.manifest} is unreadable ({exc}); pass --overwrite to start again") from None
            if recorded.get("job") != {k: v for k, v in job.items() if k != "block_size"} or \
                    recorded.get("block_size") != job["block_size"]:
                why = _job_change(recorded.get("job"), job) if recorded.get("job") != {
                    k: v for k, v in job.items() if k != "block_size"} else (
                    f"the block size changed (was {recorded.get('block_size')}, now {job['block_size']})")
                raise JobStateError(f"{self.root} holds blocks of another job that cannot be resumed with this one: "
                                    f"{why}. Pass --overwrite to start again or choose another --out")
        else:
            self.parts.mkdir(parents=True, exist_ok=True)
            _fsync_write(self.manifest, json.dumps({"job": {k: v for k, v in job.items() if k != "block_size"},
                                                    "block_size": job["block_size"], "engine": "ray"}).encode())
        self.parts.mkdir(parents=True, exist_ok=True)
        done: dict[int, dict[str, Any]] = {}
        for p in self.parts.glob("*.json"):
            try:
                meta = json.loads(p.read_text())
                k = int(p.stem)
            except ValueError:
                continue
            if self._part(k, "out").stat().st_size == meta["out_bytes"] and \
                    self._part(k, "rej").stat().st_size == meta["rejects_bytes"]:
                done[k] = meta
        return done

    def _part(self, k: int, kind: str) -> Path:
        return self.parts / f"{k:09d}.{kind}"

    def commit(self, k: int, out_text: bytes, rej_text: bytes, meta: dict[str, Any]) -> None:
        _fsync_write(self._part(k, "out"), out_text)
        _fsync_write(self._part(k, "rej"), rej_text)
        _fsync_write(self._part(k, "json"), json.dumps({**meta, "out_bytes": len(out_text),
                                                        "rejects_bytes": len(rej_text)}).encode())
        _fsync_dir(self.parts)

    def assemble(self, blocks: list[int], out: Path, rejects: Path, head: bytes) -> tuple[int, int]:
        """Join the parts in block order into ``out`` and ``rejects``; their byte lengths."""
        sizes = []
        for target, kind, first in ((out, "out", head), (rejects, "rej", b"")):
            tmp = target.with_name(target.name + ".ray-tmp")
            with tmp.open("wb") as fh:
                fh.write(first)
                for k in blocks:
                    with self._part(k, kind).open("rb") as src:
                        shutil.copyfileobj(src, fh, 1 << 20)
                fh.flush()
                os.fsync(fh.fileno())
                sizes.append(fh.tell())
            os.replace(tmp, target)
        return sizes[0], sizes[1]

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# -- the engine ----------------------------------------------------------------------------------------

@dataclass
class RayEngine:
    """Run ``scoring.batch.run_batch``'s job on Ray (see the module docstring).

    ``address``: a Ray cluster (``host:6379``, ``ray://host:10001``, ``auto`` for the one ``ray start``
    made on this machine); None: ``RAY_ADDRESS`` when set, else a private Ray instance on this machine
    with all its cores, stopped at the end. ``actors``: pool size (default: the cluster's CPUs divided by
    ``cpus_per_actor``). ``device``: the actors' encoder device (default: each actor's own choice, CUDA
    when it sees a GPU). ``cache_dir``: the embedding cache path the actors use (default: the driver's).
    """

    address: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    device: str | None = None
    cache_dir: str | Path | None = None
    window_records: int = 50_000

    def run(self, model: Any, records: Iterable[Record], input_path: Path, out: Path, rejects: Path, fmt: str,
            block_size: int, total: int | None, progress: bool, overwrite: bool, hooks: list[Any],
            extra_cols: list[str], job_tag: str, sink: Sink | None) -> JobSummary:
        t0 = time.perf_counter()
        state_path = out.with_name(out.name + ".progress.json")
        job = job_identity(input_path, model, job_tag, fmt, extra_cols)
        folder = JobFolder(out)
        if not overwrite and state_path.exists() and claim_only(_read_state(state_path)):
            folder.remove()  # a run that scored nothing (its rejects only): nothing to resume or lose
            state_path.unlink()
        if overwrite:
            folder.remove()
            state_path.unlink(missing_ok=True)
        elif state_path.exists():
            state = _read_state(state_path)
            before = recorded_job(state.get("job"), job, out)
            if before != job:
                raise JobStateError(f"{out} was written by another job and cannot be resumed with this one: "
                                    f"{_job_change(before, job)}. Pass --overwrite to start again or "
                                    "choose another --out")
            if not state.get("complete"):
                raise JobStateError(f"{out} was started by the local engine and is not finished: resume it with "
                                    "--engine local, or pass --overwrite to start again with Ray")
            done = state["records_done"]
            return JobSummary(done, state.get("scored", 0), state.get("rejected", 0), done,
                              time.perf_counter() - t0, out, rejects)
        elif out.exists() and out.stat().st_size > 0 and not folder.manifest.exists():
            raise JobStateError(f"{out} exists and no progress file says which job wrote it; pass --overwrite or "
                                "another --out")
        committed = folder.open({**job, "block_size": block_size})
        resumed_from = sum(int(m["records"]) for m in committed.values())
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=resumed_from, unit="sub", desc="scoring (ray)", dynamic_ncols=True,
                       smoothing=0.1)
        try:
            windows = self._windows(records, block_size, committed)
            self._score_on_ray(model, hooks, fmt, extra_cols, sink, folder, windows, committed, bar)
        finally:
            if bar is not None:
                bar.close()
        order = sorted(committed)
        head = (",".join(csv_header(model.rubric, extra_cols)) + "\n").encode() if fmt == "csv" else b""
        out_bytes, rej_bytes = folder.assemble(order, out, rejects, head)
        records_done = sum(int(committed[k]["records"]) for k in order)
        scored = sum(int(committed[k]["scored"]) for k in order)
        rejected = sum(int(committed[k]["rejected"]) for k in order)
        _write_state(state_path, {"job": job, "records_done": records_done, "out_bytes": out_bytes,
                                  "rejects_bytes": rej_bytes, "scored": scored, "rejected": rejected,
                                  "complete": True, "engine": "ray"})
        folder.remove()
        return JobSummary(records_done, scored, rejected, resumed_from, time.perf_counter() - t0, out, rejects)

    # ---------------------------------------------------------------------------------------------
    def _windows(self, records: Iterable[Record], block_size: int, committed: dict[int, dict[str, Any]]
                 ) -> Iterator[tuple[dict[int, _Block], dict[int, Any]]]:
        """Cut the records into the local engine's blocks, a window of ``window_records`` at a time: each
        window's blocks and the Arrow tables of their uncommitted blocks' valid rows."""
        import pyarrow as pa

        per_window = max(1, self.window_records // block_size)
        blocks: dict[int, _Block] = {}
        tables: dict[int, Any] = {}

        def close(k: int, rows: list[Record]) -> None:
            good = [r for r in rows if r.reject is None]
            blocks[k] = _Block(k, len(rows), len(good), [r for r in rows if r.reject is not None])
            if good:
                tables[k] = pa.table({
                    "block": pa.array([k] * len(good), pa.int64()),
                    "number": pa.array([r.number for r in good], pa.int64()),
                    "id": pa.array([r.id for r in good], pa.string()),
                    "evidence": pa.array([json.dumps(r.evidence) for r in good], pa.string()),
                    "meta": pa.array([json.dumps(r.meta) for r in good], pa.string()),
                })

        rows: list[Record] = []
        k = 0
        for pos, rec in enumerate(records):
            if pos // block_size != k:
                if rows:
                    close(k, rows)
                rows, k = [], pos // block_size
                if len(blocks) >= per_window:
                    yield blocks, tables
                    blocks, tables = {}, {}
            if k not in committed:  # a committed block's records are only passed over
                rows.append(rec)
        if rows:
            close(k, rows)
        if blocks:
            yield blocks, tables

    def _commit(self, folder: JobFolder, blk: _Block, results: list[tuple[int, bytes, bytes]], sink: Sink | None,
                fmt: str, model: Any, extra_cols: list[str], bar: Any) -> dict[str, Any]:
        """Record a finished block in the store (with a sink), then commit its part files."""
        import dataclasses

        results.sort(key=lambda x: x[0])
        bad = list(blk.bad or [])
        if sink is not None:
            pairs = [pickle.loads(item) for _n, _line, item in results]
            refused = sink([it for it, _r in pairs], [r for _it, r in pairs], bad)
            faults.point("ray:after_sink")
            if refused:
                bad = sorted(bad + [dataclasses.replace(r, reject=refused[r.number]) for _it, r in pairs
                                    if r.number in refused], key=lambda r: r.number)
                results = [x for x in results if x[0] not in refused]
        meta = {"records": blk.records, "scored": len(results), "rejected": len(bad)}
        folder.commit(blk.index, b"".join(line for _n, line, _item in results),
                      render_rejects(bad).encode("utf-8", "surrogateescape"), meta)
        faults.point("ray:after_commit")
        if bar is not None:
            bar.update(blk.records)
        return meta

    def _score_on_ray(self, model: Any, hooks: list[Any], fmt: str, extra_cols: list[str], sink: Sink | None,
                      folder: JobFolder, windows: Iterator[tuple[dict[int, _Block], dict[int, Any]]],
                      committed: dict[int, dict[str, Any]], bar: Any) -> None:
        """Score the windows' uncommitted blocks on the cluster (connected at the first block that needs it)."""
        with contextlib.ExitStack() as stack:
            ray: Any = None
            payload = spec = None
            for blocks, tables in windows:
                # blocks with no valid record (all rejects) need no worker: commit them here, in any order
                for blk in blocks.values():
                    if blk.good == 0 and blk.index not in committed:
                        committed[blk.index] = self._commit(folder, blk, [], sink, fmt, model, extra_cols, bar)
                pending = {k for k in blocks if k not in committed}
                if not pending:
                    continue
                if ray is None:
                    ray = _ray()
                    stack.enter_context(_connected(ray, self.address))
                    _quiet_ray_data()
                    payload = ray.put(_pack(model, hooks))
                    spec = EncoderSpec.of(model.encoder, self.cache_dir, self.device)
                cpus = float(ray.cluster_resources().get("CPU", 1.0))
                size = self.actors or max(1, int(cpus // self.cpus_per_actor))
                size = max(1, min(size, len(pending)))
                ds = ray.data.from_arrow([tables.pop(k) for k in sorted(pending)])  # each table into the object store
                scored = ds.map_batches(
                    BlockScorer, batch_size=None, batch_format="pyarrow",
                    fn_constructor_args=(payload, spec, fmt, extra_cols, sink is not None),
                    compute=ray.data.ActorPoolStrategy(size=size),
                    num_cpus=self.cpus_per_actor, num_gpus=self.gpus_per_actor or None,
                )
                got: dict[int, dict[int, tuple[int, bytes, bytes]]] = {}
                for batch in scored.iter_batches(batch_size=None, batch_format="pyarrow"):
                    cols = batch.to_pydict()
                    for b, n, line, item in zip(cols["block"], cols["number"], cols["line"], cols["item"], strict=True):
                        got.setdefault(int(b), {})[int(n)] = (int(n), line, item)  # a retried block overwrites, once
                    for b in [b for b in got if b in pending and len(got[b]) == blocks[b].good]:
                        committed[b] = self._commit(folder, blocks[b], list(got.pop(b).values()), sink, fmt, model,
                                                    extra_cols, bar)
                        pending.discard(b)
                if pending:
                    raise ScoringError(f"Ray returned no result for block(s) {sorted(pending)[:10]}; run the same "
                                       "command again to resume")


def _quiet_ray_data() -> None:
    """One progress bar for the job (ours): Ray Data's bars and console lines off (its session log keeps them)."""
    import logging

    import ray.data  # noqa: F401 - makes ray.data an attribute of the module

    for h in logging.getLogger("ray.data").handlers:  # Ray Data's own console lines would break the bar
        if not type(h).__name__.startswith("SessionFile"):  # (its log file under the session keeps them)
            h.setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.execution_options.verbose_progress = False


def auth_hint(error: str, env: Mapping[str, str], home: Path) -> str:
    """What to do about token authentication when a connection failed, or ``""``.

    Ray's own error often says only "Failed to connect" (the cause, InvalidAuthToken, is in warnings the
    user scrolled past): where the error names authentication, or a token lies on this machine while
    ``RAY_AUTH_MODE`` is not ``token``, the likely fix is said with the error."""
    joins = " for this command and for every `ray start --address` that joins the cluster."
    if "uthenticat" in error or "AuthToken" in error:
        return (" The cluster uses token authentication: set RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN, "
                "or ~/.ray/auth_token)" + joins)
    token_here = bool(env.get("RAY_AUTH_TOKEN")) or (home / ".ray" / "auth_token").exists()
    if token_here and env.get("RAY_AUTH_MODE") != "token":
        return (" A Ray token is on this machine (RAY_AUTH_TOKEN or ~/.ray/auth_token) but RAY_AUTH_MODE is not "
                "'token': if the cluster uses token authentication, set RAY_AUTH_MODE=token" + joins)
    return ""


@contextlib.contextmanager
def _connected(ray: Any, address: str | None) -> Iterator[None]:
    """Connected to ``address`` (or a private local instance) for the block; disconnected after."""
    import logging

    if ray.is_initialized():  # the caller's own connection (a notebook, a test): use it, leave it open
        yield
        return
    addr = address or os.environ.get("RAY_ADDRESS") or "local"
    # the workers' output (model loading bars, warnings) stays in Ray's logs: the driver shows one bar;
    # an error in a worker still reaches the driver as the exception that ends the job
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if addr == "local":
        kwargs.update(include_dashboard=False)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from scoring.interrupt import install_sigterm, sigterm_is_ours

    ours = sigterm_is_ours()
    try:
        ray.init(address=addr, **kwargs)
        if ours:  # Ray's native handler would turn SIGTERM into a crash dump: keep stopping as Ctrl-C does
            install_sigterm()
    except Exception as exc:  # noqa: BLE001 - one line the user can act on
        raise ScoringError(f"cannot connect to the Ray cluster at {addr}: {str(exc).splitlines()[0] if str(exc) else exc!r}."
                           + auth_hint(str(exc), os.environ, Path.home())) from None
    try:
        yield
    finally:
        ray.shutdown()
