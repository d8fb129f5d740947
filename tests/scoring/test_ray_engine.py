"""``scoring score --engine ray``: the local engine's files byte for byte, and every row exactly once after a
worker or the driver is killed mid-job.

One local Ray cluster for the module (``ray start --head --block`` with two CPUs, so two scoring actors),
started in its own process group and ended by that group's id. Skip locally with ``-m "not ray"``; CI runs
them (the ``dev`` extra installs ray).

Byte for byte: the encoder gives a window the same bits whatever it is batched with (models.encoder:
Encoder._embed) and the scorers compute in float64 (scoring.train.embed_unique), so Ray's actors, which
score the blocks in another order on another thread count and find other windows already cached, write the
local engine's bytes.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]
ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[dev]' installs it)")

ROOT = Path(__file__).resolve().parents[2]
N_ROWS = 120
BLOCK = "12"


class Cluster(str):
    """The address of the module's Ray head; ``pgid``: the process group of its processes (workers too);
    ``env``: what a driver needs to connect (the cluster's own token: Ray 2.60 clusters use token
    authentication, and a driver given an explicit address must be told so)."""

    pgid: int
    env: dict[str, str]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A two-CPU Ray head on this machine; its address. Ended by process group, never by name."""
    tmp = Path(tempfile.mkdtemp(prefix="rs-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    log = (tmp / "start.log").open("w")
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1", **auth}
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--num-cpus", "2", "--port", "0",
         "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", str(tmp / "ray")],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        address = None
        deadline = time.time() + 180
        while address is None and time.time() < deadline:
            text = (tmp / "start.log").read_text()
            for line in text.splitlines():
                if "ray start --address=" in line:
                    address = line.split("--address=")[1].split()[0].strip("'\"")
            if proc.poll() is not None:
                pytest.fail(f"ray start ended: {text[-3000:]}")
            time.sleep(0.5)
        assert address, (tmp / "start.log").read_text()[-3000:]
        c = Cluster(address)
        c.pgid, c.env = proc.pid, auth
        yield c
    finally:
        with _suppress():
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)  # a graceful stop when it comes quickly; the group is killed after either way
        except subprocess.TimeoutExpired:
            pass
        time.sleep(1)
        with _suppress():
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def backlog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """240 demo reflections as JSONL, plus rows the reader rejects (empty evidence, a duplicate id,
    malformed JSON); the ids that must be scored, in input order."""
    from scoring.demo import make_reflections

    rows = make_reflections(N_ROWS, seed=18)
    lines = [json.dumps({"id": r["id"], "reflection": r["reflection"]}) for r in rows]
    lines.insert(5, json.dumps({"id": "empty-1", "reflection": "   "}))
    lines.insert(40, json.dumps({"id": rows[3]["id"], "reflection": "a later copy of an earlier id"}))
    lines.insert(100, '{"id": "broken", "reflection": ')
    path = tmp_path_factory.mktemp("ray-backlog") / "backlog.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, [r["id"] for r in rows]


def _score(model: Path, data: Path, out: Path, cache: Path, *extra: str, wait: bool = True,
           timeout: float = 400) -> subprocess.Popen[str] | subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCORING_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", "SCORING_BLOCK_SIZE": BLOCK,
           "SCORING_HOME": str(out.parent / ".scoring")}
    if "--address" in extra:
        env.update(extra[extra.index("--address") + 1].env)  # type: ignore[attr-defined]
    cmd = [sys.executable, "-m", "scoring.cli", "score", "--model", str(model), "--data", str(data), "--out", str(out),
           "--no-progress", *extra]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


@pytest.fixture(scope="module")
def local(demo_model_dir: Path, backlog: tuple[Path, list[str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local engine's JSONL and CSV of the backlog (cold cache for the first, same job as the Ray runs)."""
    d = tmp_path_factory.mktemp("local")
    _score(demo_model_dir, backlog[0], d / "scores.jsonl", d / "cache")
    _score(demo_model_dir, backlog[0], d / "scores.csv", d / "cache")
    return d


def _committed(out: Path) -> int:
    parts = out.with_name(out.name + ".ray") / "parts"
    return len(list(parts.glob("*.json"))) if parts.exists() else 0


def _wait_for_blocks(proc: subprocess.Popen[str], out: Path, n: int, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while _committed(out) < n:
        if proc.poll() is not None:
            pytest.fail(f"the job ended before it could be interrupted: {proc.stderr.read()[-3000:] if proc.stderr else ''}")
        assert time.time() < deadline, "no block committed in time"
        time.sleep(0.1)


def _same_bytes(got: Path, want: Path) -> None:
    assert got.read_bytes() == want.read_bytes(), f"{got.name} differs from the local engine's {want.name}"


def _ids(out: Path) -> list[str]:
    return [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()]


def test_ray_writes_the_local_engines_files_byte_for_byte(cluster, demo_model_dir, backlog, local, tmp_path):
    data, ids = backlog
    res = _score(demo_model_dir, data, tmp_path / "scores.jsonl", tmp_path / "cache", "--engine", "ray",
                 "--address", cluster)
    assert f"{N_ROWS} scored, 3 rejected of {N_ROWS + 3} records" in res.stderr
    _same_bytes(tmp_path / "scores.jsonl", local / "scores.jsonl")  # each with its own cold cache
    _same_bytes(tmp_path / "scores.rejects.jsonl", local / "scores.rejects.jsonl")
    assert _ids(tmp_path / "scores.jsonl") == ids
    assert not (tmp_path / "scores.jsonl.ray").exists(), "the job folder is removed once the output is assembled"
    # a finished job run again adds nothing, with either engine
    again = _score(demo_model_dir, data, tmp_path / "scores.jsonl", tmp_path / "cache", "--engine", "ray",
                   "--address", cluster)
    assert f"resumed after {N_ROWS + 3}" in again.stderr
    before = (tmp_path / "scores.jsonl").read_bytes()
    _score(demo_model_dir, data, tmp_path / "scores.jsonl", tmp_path / "cache")
    assert (tmp_path / "scores.jsonl").read_bytes() == before


def test_a_worker_killed_mid_job_is_retried_and_every_row_is_written_once(cluster, demo_model_dir, backlog, local,
                                                                          tmp_path):
    import psutil

    data, ids = backlog
    out = tmp_path / "scores.csv"
    proc = _score(demo_model_dir, data, out, tmp_path / "cache", "--engine", "ray", "--address", cluster, wait=False)
    assert isinstance(proc, subprocess.Popen)
    _wait_for_blocks(proc, out, 1)
    workers = []
    for p in psutil.process_iter(["cmdline"]):  # this cluster's scoring actors only (another may run beside it):
        try:  # Ray's workers inherit the cluster's environment, token included
            if any("MapWorker" in x for x in (p.info["cmdline"] or [])) and \
                    p.environ().get("RAY_AUTH_TOKEN") == cluster.env["RAY_AUTH_TOKEN"]:
                workers.append(p)
        except psutil.Error:
            continue
    assert workers, "no scoring actor process found"
    victim = workers[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    assert _committed(out) < (N_ROWS + 3 + int(BLOCK) - 1) // int(BLOCK), "killed after the job had finished"
    assert proc.wait(400) == 0, proc.stderr.read()[-3000:] if proc.stderr else ""
    _same_bytes(out, local / "scores.csv")
    assert out.with_name("scores.rejects.jsonl").read_bytes() == (local / "scores.rejects.jsonl").read_bytes()
    rows = out.read_text(encoding="utf-8").splitlines()[1:]
    assert [r.split(",", 1)[0] for r in rows] == ids
    assert (tmp_path / "cache" / "embeddings.sqlite").stat().st_size > 0, "the workers filled the shared cache"


def test_a_killed_driver_resumes_from_its_committed_blocks_and_records_nothing_twice(cluster, demo_model_dir, backlog,
                                                                                   local, tmp_path):
    data, ids = backlog
    out = tmp_path / "scores.jsonl"
    store = f"sqlite:///{tmp_path / 'store.db'}"
    args = ("--engine", "ray", "--address", cluster, "--store", store)
    proc = _score(demo_model_dir, data, out, tmp_path / "cache", *args, wait=False)
    assert isinstance(proc, subprocess.Popen)
    _wait_for_blocks(proc, out, 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _committed(out)
    n_blocks = (N_ROWS + 3 + int(BLOCK) - 1) // int(BLOCK)
    assert 2 <= done < n_blocks, "killed mid-job"
    assert not out.exists() or out.stat().st_size == 0, "the output is assembled only at the end"
    res = _score(demo_model_dir, data, out, tmp_path / "cache", *args)
    assert f"resumed after {done * int(BLOCK)}" in res.stderr
    _same_bytes(out, local / "scores.jsonl")
    assert out.with_name("scores.rejects.jsonl").read_bytes() == (local / "scores.rejects.jsonl").read_bytes()
    assert _ids(out) == ids
    from scoring.store import Store

    st = Store(store)
    try:
        subs = st.submissions()
        assert sorted(s.external_id for s in subs) == sorted(ids), "every submission recorded exactly once"
        assert len(st.machine_scores()) == 3 * N_ROWS
        assert st.verify_audit().ok
    finally:
        st.close()
