"""The Ray engine's parts that need no cluster: its install hint and its job folder's identity checks.

They run wherever the tests run, Ray installed or not (the cluster tests are in test_ray_engine.py).
"""

from __future__ import annotations

import pytest


def test_without_ray_the_engine_says_how_to_install_it(monkeypatch):
    import builtins

    from scoring.engines.ray_engine import RayNotInstalled, _ray

    real = builtins.__import__

    def no_ray(name, *a, **k):  # type: ignore[no-untyped-def]
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(RayNotInstalled, match=r"\[ray\]"):
        _ray()


def test_a_ray_job_folder_of_another_job_is_refused(tmp_path):
    from scoring.batch import JobStateError
    from scoring.engines.ray_engine import JobFolder

    out = tmp_path / "scores.jsonl"
    job = {"input": "a" * 64, "model_version": "m1", "tag": "read={}", "block_size": 16}
    assert JobFolder(out).open(job) == {}
    JobFolder(out).commit(0, b'{"id": "x"}\n', b"", {"records": 16, "scored": 1, "rejected": 0})
    assert set(JobFolder(out).open(job)) == {0}
    with pytest.raises(JobStateError, match="model changed"):
        JobFolder(out).open({**job, "model_version": "m2"})
    with pytest.raises(JobStateError, match="block size changed"):
        JobFolder(out).open({**job, "block_size": 32})
    with pytest.raises(JobStateError, match=r"output columns changed \(new: \['id', 'a', 'a.machine_rule'\]"):
        JobFolder(out).open({**job, "columns": ["id", "a", "a.machine_rule"]})


def test_the_driver_holds_one_window_of_the_input_at_a_time_and_skips_committed_blocks():
    from scoring.engines.ray_engine import RayEngine
    from scoring.ingest import Record

    def records():  # 23 records in blocks of 4 (the last one short), record 3 a reject
        for n in range(1, 24):
            yield Record(n, f"r{n}", evidence={"answer": f"text {n}"}, reject="empty" if n == 3 else None)
            seen.append(n)

    seen: list[int] = []
    windows = RayEngine(window_records=8)._windows(records(), 4, committed={1: {"records": 4}})
    first_blocks, first_tables = next(windows)
    # two blocks a window (8 records / 4); block 1 is committed, so it is read past and not planned
    assert sorted(first_blocks) == [0, 2] and max(seen) <= 13, "the second window is not read yet"
    assert first_tables[2].column("number").to_pylist() == [9, 10, 11, 12]
    rest = list(windows)
    assert [sorted(b) for b, _t in rest] == [[3, 4], [5]]
    assert rest[-1][0][5].records == 3
    assert first_blocks[0].good == 3 and [r.number for r in first_blocks[0].bad or []] == [3]
    assert first_tables[0].column("number").to_pylist() == [1, 2, 4]


def test_a_ray_job_folder_that_committed_nothing_is_claimed_by_the_corrected_command(tmp_path):
    """A run that failed before its first block (a wrong --id-col, a typo in --where) leaves only its claim:
    nothing of it can be lost, so the corrected command starts there instead of being refused."""
    from scoring.engines.ray_engine import JobFolder

    out = tmp_path / "scores.jsonl"
    job = {"input": "a" * 64, "model_version": "m1", "tag": 'read={"id": "submission_id"}', "block_size": 16}
    assert JobFolder(out).open(job) == {}
    fixed = {**job, "tag": 'read={"id": "id"}'}
    assert JobFolder(out).open(fixed) == {}
    assert '"id\\": \\"id\\"' in JobFolder(out).manifest.read_text()  # the folder now belongs to the fixed job
