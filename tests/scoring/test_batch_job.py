"""The batch job: stable output contract, rejects file, and exact resume after SIGKILL."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models.artifact import load_model
from scoring.batch import JobStateError, run_batch
from scoring.ingest import ColumnMap, infer_columns, read_records

pytestmark = pytest.mark.slow


def _run(model_dir: Path, data: Path, out: Path, encoder_cache: Path, **kw):
    m = load_model(model_dir, cache_dir=encoder_cache)
    recs = read_records(data, m.rubric, infer_columns(m.rubric, ColumnMap(id="id")))
    return m, run_batch(m, recs, data, out, progress=False, **kw)


def test_jsonl_output_contract_and_rejects(demo_model_dir, demo_files, encoder_cache, tmp_path):
    m, summary = _run(demo_model_dir, demo_files[1], tmp_path / "out.jsonl", encoder_cache)
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert summary.scored == len(lines) == 60 and summary.rejected == 3
    first = lines[0]
    assert set(first) == {"id", "model_version", "criteria"}
    assert first["model_version"] == m.version
    for cid in ("questioning", "adjusting", "self_assessment"):
        c = first["criteria"][cid]
        assert c["score"] in (0, 1, 2)
        assert set(c["probabilities"]) == {"0", "1", "2"}
        assert sum(c["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    rejects = [json.loads(x) for x in summary.rejects.read_text().splitlines()]
    assert sorted(r["id"] for r in rejects) == ["demo-0161", "demo-empty", "demo-latin1"]
    assert all(r["reason"] and r["record"] for r in rejects)


def test_csv_output_has_a_column_per_criterion_and_level(demo_model_dir, demo_files, encoder_cache, tmp_path):
    _run(demo_model_dir, demo_files[1], tmp_path / "out.csv", encoder_cache)
    with (tmp_path / "out.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 60
    assert {"id", "questioning", "questioning.p0", "questioning.p1", "questioning.p2"} <= set(rows[0])
    assert float(rows[0]["questioning.p0"]) + float(rows[0]["questioning.p1"]) + float(rows[0]["questioning.p2"]) == pytest.approx(1, abs=1e-4)


def test_rerun_of_a_finished_job_adds_nothing_and_another_job_is_refused(demo_model_dir, demo_files, encoder_cache, tmp_path):
    out = tmp_path / "out.jsonl"
    _run(demo_model_dir, demo_files[1], out, encoder_cache)
    before = out.read_bytes()
    _, again = _run(demo_model_dir, demo_files[1], out, encoder_cache)
    assert out.read_bytes() == before and again.resumed_from == again.records
    with pytest.raises(JobStateError, match="another job") as refused:
        _run(demo_model_dir, demo_files[0], out, encoder_cache)
    msg = str(refused.value)
    assert "the input file's content changed" in msg and "{" not in msg and "model changed" not in msg


def test_a_csv_output_resumes_only_under_the_columns_it_was_started_with(demo_model_dir, demo_files, encoder_cache,
                                                                         tmp_path):
    out = tmp_path / "out.csv"
    _run(demo_model_dir, demo_files[1], out, encoder_cache)
    state_path = out.with_name("out.csv.progress.json")
    state = json.loads(state_path.read_text())
    header = state["job"]["columns"]
    assert out.read_text().splitlines()[0] == ",".join(header)
    # a progress file written before jobs recorded their columns: the file's own header stands for them
    del state["job"]["columns"]
    state_path.write_text(json.dumps(state))
    before = out.read_bytes()
    _, again = _run(demo_model_dir, demo_files[1], out, encoder_cache)
    assert again.resumed_from == again.records and out.read_bytes() == before
    # ... and where that header is another layout (an older release wrote no machine_rule), nothing is appended
    state = json.loads(state_path.read_text())
    state["job"].pop("columns", None)
    state_path.write_text(json.dumps(state))
    old = before.replace(b"id,questioning,", b"id,questioning_old,", 1)
    out.write_bytes(old)
    with pytest.raises(JobStateError, match=r"output columns changed \(new: \['questioning'\], "
                                            r"gone: \['questioning_old'\]\)"):
        _run(demo_model_dir, demo_files[1], out, encoder_cache)
    assert out.read_bytes() == old


def test_the_resume_check_sees_an_edit_in_the_middle_of_a_large_input(tmp_path):
    from scoring.batch import file_fingerprint

    essay = tmp_path / "backlog.jsonl"
    lines = [json.dumps({"id": f"e{i}", "essay": f"essay {i:06d} " + "word " * 60}) for i in range(12_000)]
    essay.write_text("\n".join(lines) + "\n")
    assert essay.stat().st_size > 3 * (1 << 20)  # larger than the first and last MiB together
    before = file_fingerprint(essay)
    data = bytearray(essay.read_bytes())
    mid = data.index(b"essay 006000")
    data[mid:mid + 12] = b"essay 009999"  # same size, same first and last MiB: only the middle changed
    essay.write_bytes(bytes(data))
    assert file_fingerprint(essay) != before


def test_sigkill_then_rerun_loses_and_duplicates_no_row(demo_model_dir, encoder_cache, tmp_path):
    from scoring.demo import make_reflections

    rows = make_reflections(160, seed=99)  # 10 blocks of 16: killed after 3, with 7 still to do
    data = tmp_path / "backlog.jsonl"
    data.write_text("".join(json.dumps({"id": r["id"], "reflection": r["reflection"]}) + "\n" for r in rows))
    out = tmp_path / "scores.jsonl"
    env = {**os.environ, "SCORING_CACHE_DIR": str(tmp_path / "cache"), "SCORING_BLOCK_SIZE": "16", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "scoring.cli", "score", "--model", str(demo_model_dir), "--data", str(data),
           "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = out.with_name(out.name + ".progress.json")
    deadline = time.time() + 240
    while time.time() < deadline:
        if state.exists() and json.loads(state.read_text())["records_done"] >= 48:
            break
        if proc.poll() is not None:
            pytest.fail(f"job ended before it could be killed: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = json.loads(state.read_text())["records_done"]
    assert 0 < done_at_kill < len(rows)
    # simulate a torn write of the next block, as a kill mid-write would leave
    with out.open("ab") as fh:
        fh.write(b'{"id": "demo-half-writ')
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"resumed after {done_at_kill}" in res.stderr
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert ids == [r["id"] for r in rows], "every row exactly once, in input order"


def test_rerun_of_an_unchanged_backlog_reuses_cached_probabilities_byte_for_byte(demo_model_dir, demo_files, tmp_path):
    cache = tmp_path / "cache"
    m, _ = _run(demo_model_dir, demo_files[1], tmp_path / "cold.jsonl", cache)
    encoded = m.encoder.stats["windows_encoded"]
    hits_before = m.encoder.stats["windows_cached"]
    m2, _ = _run(demo_model_dir, demo_files[1], tmp_path / "warm.jsonl", cache)
    assert m2.encoder is m.encoder
    assert m.encoder.stats["windows_encoded"] == encoded, "nothing re-encoded"
    assert m.encoder.stats["windows_cached"] == hits_before, "not even an embedding lookup: probabilities came from the cache"
    assert (tmp_path / "warm.jsonl").read_bytes() == (tmp_path / "cold.jsonl").read_bytes()


def test_a_second_writer_to_the_same_output_is_refused_while_the_first_runs(demo_model_dir, demo_files, encoder_cache, tmp_path):
    import fcntl

    out = tmp_path / "out.jsonl"
    with (tmp_path / "out.jsonl.lock").open("a") as held:  # what a running job holds
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(JobStateError, match="another job is writing"):
            _run(demo_model_dir, demo_files[1], out, encoder_cache)
        fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    assert not out.exists() or out.stat().st_size == 0
    _, summary = _run(demo_model_dir, demo_files[1], out, encoder_cache)  # once it is free, the job runs
    assert summary.scored == 60


def test_a_corrupt_progress_file_and_clashing_paths_are_clear_errors(demo_model_dir, demo_files, encoder_cache, tmp_path):
    from scoring.errors import ScoringError

    out = tmp_path / "out.jsonl"
    out.write_text("{}\n")
    (tmp_path / "out.jsonl.progress.json").write_text("{not json")
    with pytest.raises(JobStateError, match="progress file .* is unreadable"):
        _run(demo_model_dir, demo_files[1], out, encoder_cache)
    assert out.read_text() == "{}\n"  # nothing touched
    with pytest.raises(ScoringError, match="must be three different files"):
        _run(demo_model_dir, demo_files[1], tmp_path / "o.jsonl", encoder_cache, rejects=tmp_path / "o.jsonl")
    with pytest.raises(ScoringError, match="block size must be at least 1"):
        _run(demo_model_dir, demo_files[1], tmp_path / "o.jsonl", encoder_cache, block_size=0)
