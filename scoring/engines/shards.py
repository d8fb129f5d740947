"""A folder of shards as one backlog: its files read in name order, as if concatenated.

Why one numbering and one id check over all shards: a backlog exported in parts is still one backlog,
so a submission id repeated in another shard is the same duplicate a single file would reject, and a
reject's record number counts data records across the shards in name order (each CSV/TSV shard has its
own header line, which is not a record). Each shard goes through the project's reader
(:func:`scoring.ingest.read_records`), so the per-row validation and the reasons are the same as for a
file.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

from rubrics import Rubric
from scoring.ingest import ColumnMap, IngestError, Record, count_records, detect_format, read_records

_SUFFIXES = {".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".parquet", ".pq"}


def shard_files(folder: str | Path) -> list[Path]:
    """The folder's data files in name order: the one listing that is both read and fingerprinted.

    Only files whose extension names a format the reader knows count (hidden and ``_``-prefixed files are
    left out too), whatever ``--format`` says: a README or a notes file beside the shards is neither read
    as data nor part of the resume check, and the two always see the same files.
    """
    root = Path(folder)
    files = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith((".", "_"))
                   and p.suffix.lower() in _SUFFIXES)
    if not files:
        raise IngestError(f"the folder {root} holds no data files to score: a backlog folder needs shard files "
                          f"ending in {', '.join(sorted(_SUFFIXES))} (hidden and _-prefixed files are skipped)")
    kinds = {detect_format(p) for p in files}
    if len(kinds) > 1:
        raise IngestError(f"{root} mixes shard formats {sorted(kinds)}; one backlog folder holds one format")
    return files


def format_of(path: str | Path, fmt: str | None = None) -> str:
    """The format of a file, or of a folder's shards."""
    p = Path(path)
    return detect_format(shard_files(p)[0], fmt) if p.is_dir() else detect_format(p, fmt)


def folder_fingerprint(folder: str | Path) -> str:
    """SHA-256 over the shards' names and contents in name order (a renamed, added or edited shard shows)."""
    h = hashlib.sha256()
    for p in shard_files(folder):
        h.update(p.name.encode("utf-8", "surrogateescape") + b"\x00")
        with p.open("rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


def read_backlog(
    path: str | Path,
    rubric: Rubric,
    columns: ColumnMap,
    fmt: str | None = None,
    encoding: str = "utf-8",
    quoting: bool = True,
    max_chars: int = 500_000,
) -> Iterator[Record]:
    """``read_records`` for a file or a folder of shards (see the module docstring)."""
    p = Path(path)
    if not p.is_dir():
        yield from read_records(p, rubric, columns, fmt=fmt, encoding=encoding, quoting=quoting, max_chars=max_chars)
        return
    offset = 0
    seen: dict[str, str] = {}  # id -> the shard it was first seen in
    for shard in shard_files(p):
        last = 0
        for r in read_records(shard, rubric, columns, fmt=fmt, encoding=encoding, quoting=quoting, max_chars=max_chars):
            last = max(last, r.number)
            r = dataclasses.replace(r, number=r.number + offset)
            rid = r.id
            if rid is not None and (r.reject is None or r.holds_id):
                if rid in seen:
                    r = dataclasses.replace(r, evidence={}, scores={}, meta={}, score_problems={},
                                            reject=f"duplicate id {rid!r} (first seen in shard {seen[rid]}); "
                                            "later copy not scored")
                else:
                    seen[rid] = shard.name
            yield r
        # only a --where filter drops records (every other one is yielded, rejects too); the dropped ones still
        # count: number the next shard after this one's last record, which then needs a count of its own
        offset += max(last, count_records(shard, fmt, quoting) or 0) if columns.where else last


def count_backlog(path: str | Path, fmt: str | None = None, quoting: bool = True) -> int | None:
    """``count_records`` for a file or a folder of shards."""
    p = Path(path)
    if not p.is_dir():
        return count_records(p, fmt, quoting)
    total = 0
    for shard in shard_files(p):
        n = count_records(shard, fmt, quoting)
        if n is None:
            return None
        total += n
    return total
