"""A folder of shards as input: one listing read and fingerprinted, outputs kept out of it, clear errors.

Small synthetic CSV shards and the bundled demo rubric; no model, no encoder and no Ray.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from rubrics import load_rubric
from scoring.batch import file_fingerprint, run_batch
from scoring.demo import DEMO_RUBRIC
from scoring.engines.shards import count_backlog, format_of, read_backlog, shard_files
from scoring.errors import ScoringError
from scoring.ingest import ColumnMap, IngestError, infer_columns

runner = CliRunner()


def _shard(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("id,reflection\n" + "".join(f"{i},{t}\n" for i, t in rows), encoding="utf-8")
    return path


def _read(folder: Path, fmt: str | None) -> list[Any]:
    rubric = load_rubric(DEMO_RUBRIC)
    return list(read_backlog(folder, rubric, infer_columns(rubric, ColumnMap(id="id")), fmt=fmt))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "backlog"
    d.mkdir()
    _shard(d / "part-1.csv", [("a1", "I asked students to explain."), ("a2", "Exit tickets showed gaps.")])
    _shard(d / "part-2.csv", [("b1", "Thumbs up at the end.")])
    (d / "README.md").write_text("# Backlog\nid,reflection\nexported 2026-11-30, by hand\n", encoding="utf-8")
    _shard(d / ".hidden.csv", [("h1", "hidden")])
    _shard(d / "_notes.csv", [("n1", "notes")])
    return d


@pytest.mark.parametrize("fmt", [None, "csv"])
def test_a_folder_reads_and_fingerprints_the_same_data_files_whatever_format_is_given(folder, fmt):
    from scoring.usecases.backlog import reading_tag

    # the job's reading options name the shards' format whether or not --format was given
    rubric = load_rubric(DEMO_RUBRIC)
    tag = reading_tag(infer_columns(rubric, ColumnMap(id="id")), folder, fmt, "utf-8", True, 1000)
    assert '"format": "csv"' in tag and format_of(folder, fmt) == "csv"
    assert [p.name for p in shard_files(folder)] == ["part-1.csv", "part-2.csv"]
    records = _read(folder, fmt)
    assert [(r.number, r.id, r.reject) for r in records] == [(1, "a1", None), (2, "a2", None), (3, "b1", None)]
    assert count_backlog(folder, fmt) == 3
    # a file that is not read is not fingerprinted either, and a shard that is read is
    before = file_fingerprint(folder)
    (folder / "README.md").write_text("edited\n", encoding="utf-8")
    assert file_fingerprint(folder) == before
    _shard(folder / "part-2.csv", [("b1", "Thumbs up at the end, edited.")])
    assert file_fingerprint(folder) != before


@pytest.mark.parametrize("fmt", [None, "csv"])
def test_a_folder_without_data_files_is_a_clear_error(tmp_path, fmt):
    d = tmp_path / "empty"
    d.mkdir()
    (d / "README.md").write_text("id,reflection\nx,y\n", encoding="utf-8")
    with pytest.raises(IngestError, match=r"holds no data files to score.*\.csv"):
        format_of(d, fmt)
    with pytest.raises(IngestError, match="holds no data files to score"):
        file_fingerprint(d)


@pytest.mark.parametrize("fmt", [None, "csv"])
def test_a_folder_mixing_formats_stays_a_clear_error(folder, fmt):
    (folder / "part-3.jsonl").write_text('{"id": "c1", "reflection": "x"}\n', encoding="utf-8")
    with pytest.raises(IngestError, match="mixes shard formats"):
        _read(folder, fmt)


def test_a_duplicate_across_shards_names_the_shard_it_was_first_seen_in(folder):
    _shard(folder / "part-3.csv", [("a2", "Again.")])
    last = _read(folder, None)[-1]
    assert last.number == 4 and last.id == "a2"
    assert last.reject == "duplicate id 'a2' (first seen in shard part-1.csv); later copy not scored"


@pytest.mark.parametrize("where", ["out", "rejects", "nested"])
def test_an_output_inside_the_input_folder_is_refused_before_anything_is_written(folder, tmp_path, where):
    outside = tmp_path / "scored.jsonl"
    out, rejects = {
        "out": (folder / "scored.jsonl", None),
        "rejects": (outside, folder / "scored.rejects.jsonl"),
        "nested": (folder / "sub" / "scored.csv", None),
    }[where]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    model = cast(Any, object())  # never reached: the paths are checked first
    with pytest.raises(ScoringError, match="must be outside the input folder") as exc:
        run_batch(model, [], folder, out, rejects=rejects, progress=False)
    assert ("--rejects" if where == "rejects" else "--out") in str(exc.value)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_address_without_the_ray_engine_is_a_clear_error(folder, tmp_path):
    from scoring.cli import app

    out = tmp_path / "scored.jsonl"
    res = runner.invoke(app, ["score", "--model", str(tmp_path / "no-model"), "--data", str(folder),
                              "--out", str(out), "--address", "auto", "--no-progress"])
    assert res.exit_code == 2, res.output
    assert "--address auto is only used with --engine ray" in " ".join(res.output.split())
    assert not out.exists()


def test_a_folder_of_jsonl_shards_reads_as_their_concatenation_rejects_and_all(tmp_path):
    import json

    from scoring.demo import make_reflections
    from scoring.ingest import read_records

    rows = make_reflections(200, seed=18)
    lines = [json.dumps({"id": r["id"], "reflection": r["reflection"]}) + "\n" for r in rows]
    lines.insert(5, json.dumps({"id": "empty-1", "reflection": "   "}) + "\n")
    lines.insert(40, json.dumps({"id": rows[3]["id"], "reflection": "a later copy of an earlier id"}) + "\n")
    lines.insert(100, '{"id": "broken", "reflection": \n')
    data = tmp_path / "backlog.jsonl"
    data.write_text("".join(lines), encoding="utf-8")
    shards = tmp_path / "shards"
    shards.mkdir()
    for i, a in enumerate(range(0, len(lines), 70)):
        (shards / f"part-{i:03d}.jsonl").write_text("".join(lines[a:a + 70]), encoding="utf-8")
    rubric = load_rubric(DEMO_RUBRIC)
    cols = infer_columns(rubric, ColumnMap(id="id"))
    whole = [(r.number, r.id, r.reject) for r in read_records(data, rubric, cols)]
    assert sum(r[2] is not None for r in whole) == 3
    parts = [(r.number, r.id, r.reject) for r in read_backlog(shards, rubric, cols)]
    assert parts == whole
    assert count_backlog(shards) == len(lines)
    # a duplicate across shards is the same reject as within one file
    (shards / "part-999.jsonl").write_text(lines[0], encoding="utf-8")
    last = list(read_backlog(shards, rubric, cols))[-1]
    assert last.number == len(lines) + 1 and last.reject and last.reject.startswith("duplicate id")
