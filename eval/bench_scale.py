"""``scoring bench scale``: the local engine against Ray on a local two-node cluster, on the ASAP-AES essays.

What it does, so the printed figures can be traced:
  1. Trains one model on essay set S's training ids of fold F (``eval.bench_asap.train_set``; embedding
     cache ``--cache-dir``, warm allowed: training is not what is timed) and writes the essays to score,
     all 12,978 of the eight sets in essay-id order (the first ``--limit`` with one), as a JSONL backlog.
     Every essay is scored with that one model: throughput depends on the texts' lengths, not on which
     rubric reads them.
  2. Runs ``scoring score`` on the backlog as a user would, each engine in its own process with a COLD
     embedding cache (an empty ``SCORING_CACHE_DIR``): ``--engine local``, then ``--engine ray --address``
     a cluster of two ``ray start`` processes on this machine (a head and a second node, each offered half
     the cores, so the Ray job has the local engine's cores), started before and torn down after (by
     their process group, nothing else). A run's time is the wall time of its ``scoring score`` process,
     start-up included (the local engine's model load; Ray's connection and its actors' model loads).
  3. Prints ``n``, ``local_texts_per_s``, ``ray_texts_per_s``, ``ray_overhead`` (1 - ray / local at equal
     cores; target <= 0.15), ``identical`` (the two engines' output and rejects files are equal bytes),
     ``texts_per_s_per_core`` (the Ray run's rate over its cores) and ``projected_hours_1m`` for 1, 8 and 64
     nodes of this machine's size under the assumption stated in ``projection_assumption``, plus the load
     average before and after (the figures are only comparable at a similar load).
``--engines local`` times the local engine alone (a GPU machine without Ray: ``--device cuda``).
The last printed line is one JSON object.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BACKLOG_SIZE = 1_000_000
NODES = (1, 8, 64)


# The bench cluster's own token (Ray 2.60 clusters use token authentication; a driver given an explicit
# address must be told so): the ray start processes and the scoring processes share it, nothing else does.
_AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


def _env(cache: Path | None, device: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0", **_AUTH}
    if cache is not None:
        env["SCORING_CACHE_DIR"] = str(cache)
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the encoder picks CUDA whenever it sees a GPU
    return env


def _ray_exe() -> str:
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.exists() else "ray"


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("w") as fh:
        return subprocess.Popen([_ray_exe(), "start", "--block", "--disable-usage-stats", *args], stdout=fh,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _wait_for(log: Path, proc: subprocess.Popen[bytes], pattern: str, timeout: float = 300) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = log.read_text(errors="replace")
        m = re.search(pattern, text)
        if m:
            return m.group(1) if m.groups() else m.group(0)
        if proc.poll() is not None:
            raise RuntimeError(f"ray start ended: {text[-2000:]}")
        time.sleep(0.5)
    raise RuntimeError(f"ray start did not answer in {timeout:.0f} s: {log.read_text(errors='replace')[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End one ``ray start --block`` and the processes it started: its own process group, by id."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)


@contextmanager
def local_cluster(nodes: int, cpus_per_node: int, env: dict[str, str], gpus_per_node: int = 0) -> Iterator[str]:
    """A Ray cluster of ``nodes`` ``ray start`` processes on this machine (a head, then workers); its address."""
    tmp = Path(tempfile.mkdtemp(prefix="rsb-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    procs: list[subprocess.Popen[bytes]] = []
    res = ["--num-cpus", str(cpus_per_node), "--num-gpus", str(gpus_per_node)]
    try:
        head = _start(["--head", "--port", "0", "--include-dashboard", "false", "--temp-dir", str(tmp / "ray"), *res],
                      tmp / "head.log", env)
        procs.append(head)
        address = _wait_for(tmp / "head.log", head, r"ray start --address='?([0-9.:]+)")
        for i in range(1, nodes):
            p = _start(["--address", address, *res], tmp / f"node{i}.log", env)
            procs.append(p)
            _wait_for(tmp / f"node{i}.log", p, r"Ray runtime started")
        yield address
    finally:
        for p in reversed(procs):
            _stop(p)
        shutil.rmtree(tmp, ignore_errors=True)


def _score(model: Path, backlog: Path, out: Path, cache: Path, device: str, block_size: int,
           extra: list[str]) -> dict[str, Any]:
    """One ``scoring score`` process with a cold cache; its wall time and its own summary line."""
    shutil.rmtree(cache, ignore_errors=True)
    cmd = [sys.executable, "-m", "scoring.cli", "score", "--model", str(model), "--data", str(backlog),
           "--out", str(out), "--no-progress", "--block-size", str(block_size), *extra]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=_env(cache, device), capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {res.stderr[-3000:]}")
    line = next((x for x in res.stderr.splitlines() if " scored, " in x), "")
    return {"seconds": seconds, "summary": line.strip()}


def _same(a: Path, b: Path) -> bool:
    ra, rb = a.with_name(a.stem + ".rejects.jsonl"), b.with_name(b.stem + ".rejects.jsonl")
    return a.read_bytes() == b.read_bytes() and (ra.read_bytes() if ra.exists() else b"") == (
        rb.read_bytes() if rb.exists() else b"")


def prepare(data_dir: Path, fold: int, train_set_id: int, limit: int | None, cache_dir: Path, work: Path,
            echo: Any) -> tuple[Path, Path, int, dict[str, Any]]:
    """Train the model and write the backlog; (model dir, backlog file, number of essays, the encoder's
    precision and whether its passes go without filler rows on this machine: ``Encoder.rows_free``)."""
    from eval.asap import fold_split, load_asap
    from eval.bench_asap import train_set
    from models.artifact import save_model

    df = load_asap(data_dir)
    split = fold_split(df, data_dir, fold)
    tr = split.train[split.train.essay_set == train_set_id].reset_index(drop=True)
    t0 = time.perf_counter()
    model, _ = train_set(train_set_id, tr, cache_dir)
    model_dir = work / "model"
    save_model(model, model_dir, {}, "bench-scale")
    echo(f"trained on set {train_set_id}'s {len(tr)} training essays of fold {fold} [{time.perf_counter() - t0:.0f}s]")
    essays = df.sort_values("essay_id")
    if limit is not None:
        essays = essays.head(limit)
    backlog = work / "backlog.jsonl"
    with backlog.open("w", encoding="utf-8") as fh:
        for r in essays.itertuples(index=False):
            fh.write(json.dumps({"id": str(r.essay_id), "essay": r.essay}, ensure_ascii=False) + "\n")
    enc = model.encoder
    return model_dir, backlog, len(essays), {"precision": enc.precision, "rows_free": enc.rows_free()}


def projection(per_core: float, cores: int) -> dict[str, float]:
    """Hours for a 1,000,000-submission backlog on N nodes of ``cores`` cores at ``per_core`` texts/s each."""
    return {f"nodes_{n}": round(BACKLOG_SIZE / (per_core * cores * n) / 3600, 2) for n in NODES} if per_core else {}


def run(data_dir: Path, limit: int | None = None, fold: int = 0, train_set_id: int = 1,
        cache_dir: Path = Path(".scoring/bench-cache"), out_dir: Path = Path("bench-out/scale"),
        engines: tuple[str, ...] = ("local", "ray"), device: str = "cpu", block_size: int = 256, nodes: int = 2,
        echo: Any = print) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda: torch sees no CUDA device on this machine")
    out_dir.mkdir(parents=True, exist_ok=True)
    load_start = [round(x, 2) for x in os.getloadavg()]
    summary: dict[str, Any] = {"benchmark": "scale", "device": device, "cores": cores, "engines": list(engines),
                               "loadavg_start": load_start}
    with tempfile.TemporaryDirectory(prefix="scale-", dir=out_dir) as tmp:
        work = Path(tmp)
        model, backlog, n, summary["encoder"] = prepare(data_dir, fold, train_set_id, limit, cache_dir, work, echo)
        summary["n"] = n
        echo(f"# {n} essays, block size {block_size}, cold cache per engine, {cores} cores, load {load_start}")
        runs: dict[str, dict[str, Any]] = {}
        if "local" in engines:
            runs["local"] = _score(model, backlog, work / "local.jsonl", work / "cache-local", device, block_size, [])
            echo(f"local: {n / runs['local']['seconds']:.2f} texts/s ({runs['local']['seconds']:.1f} s): "
                 f"{runs['local']['summary']}")
        if "ray" in engines:
            per_node = max(1, cores // nodes)
            t0 = time.perf_counter()
            with local_cluster(nodes, per_node, _env(None, device)) as address:
                echo(f"ray: {nodes} nodes x {per_node} CPU up at {address} [{time.perf_counter() - t0:.0f}s]")
                runs["ray"] = _score(model, backlog, work / "ray.jsonl", work / "cache-ray", device, block_size,
                                     ["--engine", "ray", "--address", address])
            echo(f"ray: {n / runs['ray']['seconds']:.2f} texts/s ({runs['ray']['seconds']:.1f} s): "
                 f"{runs['ray']['summary']}")
            summary["ray_cluster"] = f"{nodes} ray start processes x {per_node} CPU on this machine"
        for name, r in runs.items():
            summary[f"{name}_texts_per_s"] = round(n / r["seconds"], 3)
            summary[f"{name}_seconds"] = round(r["seconds"], 1)
        if "local" in runs and "ray" in runs:
            summary["ray_overhead"] = round(1 - summary["ray_texts_per_s"] / summary["local_texts_per_s"], 4)
            summary["identical"] = _same(work / "local.jsonl", work / "ray.jsonl")
        measured = "ray" if "ray" in runs else "local"
        used = (max(1, cores // nodes) * nodes) if measured == "ray" else cores
        per_core = summary.get(f"{measured}_texts_per_s", 0.0) / used
        summary["texts_per_s_per_core"] = round(per_core, 4)
        summary["projected_hours_1m"] = projection(per_core, cores)
        summary["projection_assumption"] = (
            f"{BACKLOG_SIZE:,} submissions like these essays (same length mix), cold cache, each node a machine of "
            f"{cores} cores scoring at the {measured} run's measured {per_core:.3f} texts/s per core "
            + ("(one Ray actor per core, start-up and Ray overhead included), " if measured == "ray" else "")
            + "throughput growing linearly with nodes (actors share nothing but the driver, which only reads the "
            "input and writes the files, far faster than the encoders) and no node lost")
        summary["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
