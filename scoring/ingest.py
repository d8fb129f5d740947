"""Reading submissions from a backlog file: CSV, TSV, JSONL or Parquet, streamed, with column mapping.

Why per-row validation instead of failing the file: a backlog of thousands from a real issuer always has
a few broken rows (empty evidence, a legacy encoding, a missing id). Each becomes a reject with a reason
and the record number, and the job goes on; nothing is silently dropped.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from rubrics import Rubric
from scoring.evidence import evidence_problem, has_text
from scoring.transcripts import split_spec

FORMATS = ("csv", "tsv", "jsonl", "parquet")


class IngestError(ValueError):
    """The file as a whole cannot be read with the given options (wrong format, unknown column)."""


class MissingColumns(IngestError):
    """Mapped columns the file does not have (``missing``), with the columns it does have (``have``), so a
    caller can say how to map them in its own words (CLI options, API form fields)."""

    def __init__(self, path: Path, missing: list[str], have: list[str]):
        self.path, self.missing, self.have = path, missing, have
        super().__init__(f"{path}: column(s) {missing} not found; the file has {have}")


@dataclass(frozen=True)
class ColumnMap:
    """Which column holds what. ``text`` maps evidence field -> column; ``scores`` criterion -> column."""

    id: str = "id"
    text: dict[str, str] = field(default_factory=dict)
    scores: dict[str, str] = field(default_factory=dict)
    meta: tuple[str, ...] = ()
    where: dict[str, str] = field(default_factory=dict)  # keep only rows whose column equals the value


MISSING_SCORES = frozenset({"", "nan", "na", "n/a", "#n/a", "none", "null"})  # lower-cased spellings of "no score"


def is_missing_score(raw: object) -> bool:
    """A score cell that holds no score (blank, NaN, NA, N/A, #N/A, None, null): the criterion is unscored on
    that row, not wrongly scored. One list for every reader of human scores (train, calibrate, import)."""
    return raw is None or (isinstance(raw, float) and raw != raw) or str(raw).strip().lower() in MISSING_SCORES


@dataclass
class Record:
    """One input record: either a usable submission or a reject with its reason."""

    number: int  # 1-based record number in the file (header excluded)
    id: str | None
    evidence: dict[str, str] = field(default_factory=dict)
    scores: dict[str, int | None] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    reject: str | None = None
    score_problems: dict[str, str] = field(default_factory=dict)  # criterion -> why its score cell is unusable
    undecodable: bool = False  # rejected because its bytes are not valid in the file's --encoding
    off_scale: dict[str, int] = field(default_factory=dict)  # criterion -> a whole-number score not on its scale
    holds_id: bool = False  # rejected after its id was taken: a later row with that id is a duplicate of it


def _not_valid(encoding: str, exc: UnicodeDecodeError, what: str = "") -> str:
    """The reject reason of bytes the --encoding cannot read (one wording for every reader)."""
    return f"{what}not valid {encoding} (byte {exc.start}); re-save as UTF-8 or pass --encoding"


class _Undecodable(str):
    """A raw row's problem that is a decoding failure (``Record.undecodable``), still read as its text."""


def detect_format(path: str | Path, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise IngestError(f"format must be one of {', '.join(FORMATS)}, found {fmt!r}")
        return fmt
    suffix = Path(path).suffix.lower().lstrip(".")
    aliases = {"csv": "csv", "tsv": "tsv", "tab": "tsv", "jsonl": "jsonl", "ndjson": "jsonl", "parquet": "parquet", "pq": "parquet"}
    if suffix in ("xlsx", "xls", "xlsm", "ods", "numbers"):
        raise IngestError(f"{path} is a spreadsheet workbook: save the sheet as CSV (UTF-8) and pass that file")
    if suffix not in aliases:
        raise IngestError(f"cannot tell the format of {path} from its extension; pass --format ({', '.join(FORMATS)})")
    return aliases[suffix]


def _raw_rows(
    path: Path, fmt: str, encoding: str, quoting: bool, header: list[str] | None = None
) -> Iterator[tuple[dict[str, Any], str | None, int]]:
    """Yield (row dict, problem, record number) per record in file order; values are str, bytes or None.

    The record number counts data records from 1 (a CSV header is not one; a quoted newline does not
    start one), so a reject names the row a person would find in the file.
    """
    if fmt == "parquet":
        pf = pq.ParquetFile(path)
        n = 0
        for batch in pf.iter_batches(batch_size=4096):
            for r in batch.to_pylist():
                n += 1
                yield r, None, n
        return
    if fmt == "jsonl":
        n = 0
        with path.open("rb") as fh:
            for raw in fh:
                if not raw.strip():
                    continue
                n += 1
                if n == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark before the first object
                    raw = raw[3:]
                try:
                    text = raw.decode(encoding)
                except UnicodeDecodeError as exc:
                    yield {}, _Undecodable(f"line is not valid {encoding} (byte {exc.start}); re-save the file as UTF-8 "
                                           "or pass --encoding"), n
                    continue
                try:
                    obj = json.loads(text.rstrip("\r\n"))  # positions within the line, not on the next one
                except json.JSONDecodeError as exc:
                    yield {}, _json_problem(exc), n
                    continue
                if not isinstance(obj, dict):
                    yield {}, f"expected a JSON object per line, found {type(obj).__name__}", n
                    continue
                yield obj, None, n
        return
    delimiter = csv_delimiter(path, fmt)
    header = header if header is not None else csv_header(path, fmt, encoding)
    bad_rows: list[tuple[int, str]] = []

    def on_invalid(row: Any) -> str:
        number = row.number - 1 if isinstance(row.number, int) and row.number > 1 else -1  # header is row 1
        bad_rows.append((number, f"expected {row.expected_columns} columns, found {row.actual_columns}"))
        return "skip"

    reader = pacsv.open_csv(
        path,
        # Latin-1 reads every byte, so a row with bytes the file's encoding cannot read AND a wrong field count
        # still reaches ``on_invalid`` (with UTF-8 here, pyarrow failed to build that row's text and ended the
        # whole file); cells are turned back into the file's own bytes below and decoded with --encoding later.
        # The header was read above (in --encoding, byte-order mark dropped): pyarrow skips it and names the
        # columns by position, so its latin-1 view of the names never matters.
        read_options=pacsv.ReadOptions(block_size=1 << 22, encoding="latin1", use_threads=False,  # numbered rows
                                       skip_rows=1, column_names=[f"c{i}" for i in range(len(header))]),
        parse_options=pacsv.ParseOptions(
            delimiter=delimiter,
            quote_char='"' if quoting else False,
            newlines_in_values=quoting,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={f"c{i}": pa.binary() for i in range(len(header))}, strings_can_be_null=False,
            check_utf8=False
        ),
    )
    # Skipped rows carry their record number; good rows fill the numbers in between, in order. The reader
    # parses a block ahead, so skipped rows may arrive before the batch they sit in: they wait in ``pending``
    # until the numbering reaches them.
    pending: dict[int, str] = {}
    no = 1
    for batch in reader:
        for n_bad, why in bad_rows:
            if n_bad > 0:
                pending[n_bad] = why
            else:  # unnumbered (not expected without threads): report it where the reader is now
                yield {}, why, no
                no += 1
        bad_rows.clear()
        for r in batch.to_pylist():
            while no in pending:
                yield {}, pending.pop(no), no
                no += 1
            yield {header[int(k[1:])]: _file_bytes(v) for k, v in r.items()}, None, no
            no += 1
    for n_bad, why in bad_rows:
        if n_bad > 0:
            pending[n_bad] = why
        else:
            pending[max([no - 1, *pending]) + 1] = why
    for n_bad in sorted(pending):  # skipped rows after the last good one
        yield {}, pending[n_bad], n_bad


def _file_bytes(v: Any) -> Any:
    """A cell read through pyarrow's latin-1 transcoding, back as the file's own bytes (latin-1 maps each
    byte to one code point, so this is exact)."""
    return v.decode("utf-8").encode("latin-1") if isinstance(v, bytes) else v


def csv_delimiter(path: Path, fmt: str) -> str:
    """The field separator: a tab for TSV; for CSV a comma, or a semicolon when the first non-blank line holds
    more semicolons than commas outside double quotes (spreadsheets in much of Europe save "CSV" with
    semicolons, and a column name may hold a comma: `id;"Reflection, in full";score`)."""
    if fmt == "tsv":
        return "\t"
    try:
        with Path(path).open("rb") as fh:
            head = next((ln for ln in fh if ln.strip()), b"")
    except OSError:
        return ","
    outside = {",": 0, ";": 0}  # separators outside double quotes on the header line
    quoted = False
    for ch in head.decode("latin-1"):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in outside:
            outside[ch] += 1
    return ";" if outside[";"] > outside[","] else ","


def csv_header(path: Path, fmt: str, encoding: str) -> list[str]:
    """Column names of a CSV/TSV file (byte-order mark and line ending removed)."""
    with path.open("rb") as fh:
        header_line = fh.readline().removeprefix(b"\xef\xbb\xbf")  # UTF-8's mark, whatever --encoding says
    if not header_line.strip():
        raise IngestError(f"{path} is empty or starts with a blank line: expected a header line naming the columns")
    try:
        return next(csv.reader([header_line.decode(encoding).lstrip("\ufeff").rstrip("\r\n")],
                               delimiter=csv_delimiter(path, fmt)))
    except (UnicodeDecodeError, StopIteration) as exc:
        raise IngestError(f"{path}: cannot read the header line: {exc}") from None


_WIDE_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff", b"\xff\xfe", b"\xfe\xff")


def _utf8_copy(path: Path, encoding: str) -> tuple[Path, str] | None:
    """A UTF-8 copy of a UTF-16/32 file (and the encoding to read it with), or None when not needed.

    Why: the readers split lines on the byte ``\\n``, which a two- or four-byte encoding does not have;
    a file with a UTF-16/32 byte-order mark is recognised even when ``--encoding`` was left at UTF-8.
    """
    import codecs
    import tempfile

    with path.open("rb") as fh:
        head = fh.read(4)
    name = codecs.lookup(encoding).name
    wide = name.startswith(("utf-16", "utf-32"))
    if not wide and head.startswith(_WIDE_BOMS):
        name = "utf-32" if head.startswith(_WIDE_BOMS[:2]) else "utf-16"
        wide = True
    if not wide:
        return None
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, prefix="utf8-")
    try:
        with path.open("r", encoding=name, newline="") as src, os.fdopen(fd, "w", encoding="utf-8", newline="") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    except UnicodeError as exc:  # a decode error, or "UTF-16 stream does not start with BOM"
        Path(tmp).unlink(missing_ok=True)
        why = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise IngestError(f"{path} is not valid {name} ({why}); re-save it as UTF-8 or pass the right --encoding") from None
    except BaseException:  # disk full, interrupted...: never leave the copy behind
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp), "utf-8"


class NotText(ValueError):
    """A JSON object or list where text (or a number) was expected."""


def _decode(v: Any, encoding: str, column: str = "", json_ok: bool = False) -> str | None:
    """Text of a cell; an object or list is NotText unless ``json_ok`` (metadata keeps it as JSON text)."""
    if v is None:
        return None
    if isinstance(v, (dict, list)):
        if json_ok:
            return json.dumps(v, ensure_ascii=False)
        raise NotText(f"column {column!r} holds a JSON {'object' if isinstance(v, dict) else 'list'}, not text")
    if isinstance(v, bytes):
        return v.decode(encoding)
    return str(v)


def infer_columns(rubric: Rubric, columns: ColumnMap) -> ColumnMap:
    """Fill unmapped evidence fields with same-named columns, so the simple case needs no options."""
    text = dict(columns.text) or {ev: ev for ev in rubric.evidence}
    return ColumnMap(id=columns.id, text=text, scores=dict(columns.scores), meta=columns.meta, where=dict(columns.where))


def _json_problem(exc: json.JSONDecodeError) -> str:
    """Where a JSONL line stops being JSON, in the user's words: the column within the line, and whether the line
    simply ended first (a truncated record). json's own ``msg`` may end in "at" ("Invalid control character
    at"), which would read "at at column"."""
    msg = exc.msg.removesuffix(" at")
    if exc.pos >= len(exc.doc.rstrip()):
        return f"malformed JSON: the line ends before its JSON object does ({msg})"
    return f"malformed JSON: {msg} at column {exc.colno}"


def read_records(
    path: str | Path,
    rubric: Rubric,
    columns: ColumnMap,
    fmt: str | None = None,
    encoding: str = "utf-8",
    quoting: bool = True,
    max_chars: int = 500_000,
    partial_evidence: bool = False,
) -> Iterator[Record]:
    """Stream records with per-row validation against the rubric.

    ``partial_evidence`` (training files): a row whose evidence is empty for some criteria only is kept
    (those criteria skip it); by default such a row is rejected, since it cannot be scored on every criterion.

    Raises
    ------
    IngestError
        When the file cannot be opened or a mapped column does not exist (every row would fail).
    """
    p = Path(path)
    if not p.exists():
        raise IngestError(f"{p} does not exist")
    if p.is_dir():  # `scoring score` reads a folder of shards itself (scoring.engines.shards); this reads one file
        raise IngestError(f"{p} is a folder: expected one data file (CSV, TSV, JSONL or Parquet)")
    fmt = detect_format(p, fmt)
    for ev in columns.text:
        if ev not in rubric.evidence:
            raise IngestError(f"--text-col names evidence {ev!r}, but rubric {rubric.key} declares {list(rubric.evidence)}")
    for crit in columns.scores:
        if crit not in {c.id for c in rubric.criteria}:
            raise IngestError(f"--score-col names criterion {crit!r}, not in rubric {rubric.key}: {[c.id for c in rubric.criteria]}")
    unmapped = unmapped_evidence(rubric, columns)
    if unmapped:  # every row would be refused for it: say so once, before the first row
        raise IngestError(
            f"no column is mapped to evidence field(s) {unmapped}, which criteria read "
            f"(mapped: {columns.text}); map each to a column (--text-col FIELD=COLUMN, or text_col over the API)")
    copy = _utf8_copy(p, encoding) if fmt != "parquet" else None
    if copy is None:
        yield from _read(p, rubric, columns, fmt, encoding, quoting, max_chars, partial_evidence)
        return
    try:
        yield from _read(copy[0], rubric, columns, fmt, copy[1], quoting, max_chars, partial_evidence)
    except MissingColumns as exc:  # name the user's file, not the temporary copy
        raise MissingColumns(p, exc.missing, exc.have) from None
    except IngestError as exc:
        raise IngestError(str(exc).replace(str(copy[0]), str(p))) from None
    finally:
        copy[0].unlink(missing_ok=True)


def unmapped_evidence(rubric: Rubric, columns: ColumnMap) -> list[str]:
    """Evidence fields a criterion reads that no column is mapped to (a partial ``--text-col``): each row
    would have nothing for those criteria, and a level on nothing is refused (``scoring.evidence``)."""
    read = {split_spec(spec)[0] for c in rubric.criteria for spec in rubric.evidence_for(c)}
    return sorted(f for f in read if f not in columns.text)


def _wanted(columns: ColumnMap) -> list[str]:
    """Every column a job reads."""
    return [columns.id, *columns.text.values(), *columns.scores.values(), *columns.meta, *columns.where]


def _check_columns(p: Path, columns: ColumnMap, have: Iterable[str]) -> None:
    """Every mapped column must exist: otherwise every row would fail, so the whole file is refused."""
    names = set(have)
    missing = [c for c in _wanted(columns) if c not in names]
    if missing:
        raise MissingColumns(p, missing, sorted(names))


def _read(
    p: Path, rubric: Rubric, columns: ColumnMap, fmt: str, encoding: str, quoting: bool, max_chars: int,
    partial_evidence: bool = False,
) -> Iterator[Record]:
    # CSV/TSV: the header says up front whether every mapped column is there, once (also with no data row).
    header = csv_header(p, fmt, encoding) if fmt in ("csv", "tsv") else None
    if header is not None:
        wanted = set(_wanted(columns))
        dups = sorted({h for h in header if h in wanted and header.count(h) > 1})
        if dups:  # a column the job reads must be one column, not two with the same name
            raise IngestError(f"{p}: the header names column(s) {dups} more than once; rename them so the column "
                              "to read can be told apart")
        _check_columns(p, columns, header)
    seen: dict[str, tuple[int, bytes]] = {}  # id -> (record number, digest of its text) of its first copy
    checked_columns = header is not None
    for row, problem, n in _raw_rows(p, fmt, encoding, quoting, header):
        if problem:
            yield Record(n, None, reject=problem, undecodable=isinstance(problem, _Undecodable))
            continue
        if not checked_columns:  # JSONL/Parquet: the first row shows the columns
            _check_columns(p, columns, row)
            checked_columns = True
        if columns.where:
            try:
                if any((_decode(row.get(k), encoding, k) or "").strip() != v for k, v in columns.where.items()):
                    continue
            except NotText:
                continue  # an object or list never equals the value asked for
            except UnicodeDecodeError:
                pass  # undecidable: let the row be rejected below with its reason
        try:
            rid = _decode(row.get(columns.id), encoding)
        except UnicodeDecodeError as exc:
            yield Record(n, None, reject=_not_valid(encoding, exc, "id is "), undecodable=True)
            continue
        except NotText as exc:
            yield Record(n, None, reject=f"id column {columns.id!r} {exc}")
            continue
        try:
            evidence = {ev: _decode(row.get(col), encoding, col) or "" for ev, col in columns.text.items()}
            meta = {m: _decode(row.get(m), encoding, m, json_ok=True) or "" for m in columns.meta}
            raw_scores = {c: _decode(row.get(col), encoding, col) for c, col in columns.scores.items()}
        except UnicodeDecodeError as exc:
            yield Record(n, (rid or "").strip() or None, reject=_not_valid(encoding, exc), undecodable=True)
            continue
        except NotText as exc:
            yield Record(n, (rid or "").strip() or None, reject=str(exc))
            continue
        rid = (rid or "").strip()
        if not rid:
            yield Record(n, None, reject=f"missing id (column {columns.id!r} is empty)")
            continue
        digest = hashlib.blake2b(json.dumps(evidence, sort_keys=True).encode(), digest_size=16).digest()
        if rid in seen:
            first, text = seen[rid]
            # a copy of the same text is a repeat; other text under one id is two submissions sharing it
            what = ("the same text" if text == digest else
                    "OTHER text: two submissions share this id, give the later one its own")
            yield Record(n, rid, reject=f"duplicate id {rid!r} (first seen at record {first}, {what}); "
                         "later copy not scored")
            continue
        seen[rid] = (n, digest)
        # rejects below keep the row's metadata: a caller may carry a more specific reason in it (batch jobs)
        unusable = _unusable_evidence(rubric, columns, evidence, max_chars, partial_evidence)
        if unusable:
            yield Record(n, rid, reject=unusable, meta=meta, holds_id=True)
            continue
        scores: dict[str, int | None] = {}
        # A bad score cell spoils that criterion's label only: the row's text and its other labels stay usable.
        problems: dict[str, str] = {}
        off_scale: dict[str, int] = {}
        for crit, raw in raw_scores.items():
            scores[crit] = None
            if raw is None or is_missing_score(raw):
                continue
            try:
                f = float(raw)
            except ValueError:
                problems[crit] = f"score {raw!r} for criterion {crit!r} is not a number"
                continue
            levels = rubric.criterion(crit).scores
            if not f.is_integer():
                problems[crit] = (f"score {raw!r} for criterion {crit!r} is not a whole number; the rubric's "
                                  f"levels are {levels}")
                continue
            if int(f) not in levels:
                problems[crit] = f"score {raw!r} for criterion {crit!r} is outside the rubric scale {levels}"
                off_scale[crit] = int(f)
                continue
            scores[crit] = int(f)
        yield Record(n, rid, evidence=evidence, scores=scores, meta=meta, score_problems=problems, off_scale=off_scale)


def _unusable_evidence(rubric: Rubric, columns: ColumnMap, evidence: dict[str, str], max_chars: int,
                       partial: bool = False) -> str | None:
    """Why a row's evidence cannot be scored (the reject reason), or None.

    Checked here, where a row can still be rejected on its own, rather than when the model reads it: a
    transcript the parser refuses once stopped the whole backlog with a line number and no row, and a
    criterion whose own field was blank was given a level on nothing (see ``scoring.evidence``).
    """
    if not any(has_text(t) for t in evidence.values()):
        return f"empty evidence: columns {list(columns.text.values())} hold no text"
    too_long = {ev: len(t) for ev, t in evidence.items() if len(t) > max_chars}
    if too_long:
        return f"evidence too long: {too_long} characters > limit {max_chars} (raise SCORING_MAX_TEXT_CHARS)"
    problem = evidence_problem(rubric, evidence, lambda name: column_label(columns, name), partial=partial)
    return None if problem is None else str(problem)


def column_label(columns: ColumnMap, name: str) -> str:
    """An evidence field as the backlog's reader knows it: the column it is read from."""
    col = columns.text.get(name)
    return f"column {col!r}" if col is not None else f"evidence {name!r} (no column is mapped to it)"


def count_records(path: str | Path, fmt: str | None = None, quoting: bool = True) -> int | None:
    """Cheap record count for progress bars (None when it would cost a full parse)."""
    p = Path(path)
    fmt = detect_format(p, fmt)
    if fmt == "parquet":
        return pq.ParquetFile(p).metadata.num_rows
    if fmt == "jsonl":
        with p.open("rb") as fh:
            return sum(1 for line in fh if line.strip())
    # CSV/TSV: one fast C++ pass over the first column only (quoted newlines handled like the reader).
    try:
        table = pacsv.read_csv(
            p,
            parse_options=pacsv.ParseOptions(
                delimiter=csv_delimiter(p, fmt),
                quote_char='"' if quoting else False,
                newlines_in_values=quoting,
                invalid_row_handler=lambda row: "skip",
            ),
            convert_options=pacsv.ConvertOptions(include_columns=[], check_utf8=False),
            read_options=pacsv.ReadOptions(encoding="latin1"),  # every byte reads: see _raw_rows
        )
    except (pa.ArrowInvalid, OSError):
        return None
    return table.num_rows
