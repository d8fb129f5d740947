"""Load historical scores from a table (CSV / TSV / JSONL) into the store as human scores.

Generic, not tied to one data set: the caller names the id column, one or more score columns per
criterion (each with the kind it represents: first / second / audit / adjudication), optional assessor
columns, metadata columns and a row filter.

An id already in the store (a submission that came in through the API or ``scoring score --store``, or an
earlier import) gets the imported scores attached to it: it is not created again and its stored evidence
and metadata stay as they are (the table's metadata columns apply to new submissions only). That is how a
second rater's scores are added to submissions the service scored. Re-importing a score that is already
there would count it twice, so :func:`import_table` refuses a rater slot (submission, criterion, kind) that
already holds a score unless ``allow_existing`` is set. Everything is written in one transaction: a
refused row (e.g. the same person rating a submission twice) imports nothing.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rubrics.schema import Rubric
from scoring.errors import Conflict, InvalidRequest, NotFound
from scoring.ingest import csv_delimiter, is_missing_score
from scoring.store import queue
from scoring.store.rubrics import register_rubric_in
from scoring.store.scores import human_scores_in
from scoring.store.store import HUMAN_KINDS, HumanScoreIn, Store
from scoring.store.submissions import add_submissions_in
from scoring.usecases.decisions import finalize

_SPEC = re.compile(r"^(?P<crit>[^=]+)=(?P<col>[^@]+?)(?:@(?P<kind>[a-z]+))?$")


@dataclass(frozen=True)
class ScoreColumn:
    """``criterion=column[@kind]``: the column holding one rater's scores for a criterion."""

    criterion: str
    column: str
    kind: str

    @staticmethod
    def parse_many(specs: Sequence[str]) -> list[ScoreColumn]:
        """Parse specs; without ``@kind`` the 1st column of a criterion is ``first``, the 2nd ``second``."""
        out: list[ScoreColumn] = []
        seen: dict[str, int] = {}
        for spec in specs:
            m = _SPEC.match(spec.strip())
            if not m:
                raise ValueError(f"--score-col {spec!r}: expected CRITERION=COLUMN or CRITERION=COLUMN@KIND")
            crit, col = m["crit"].strip(), m["col"].strip()
            k = seen.get(crit, 0)
            kind = m["kind"] or ("first" if k == 0 else "second" if k == 1 else "audit")
            if kind not in HUMAN_KINDS:
                raise ValueError(f"--score-col {spec!r}: kind must be one of {list(HUMAN_KINDS)}, found {kind!r}")
            seen[crit] = k + 1
            out.append(ScoreColumn(crit, col, kind))
        return out


def _first_bad_line(p: Path, encoding: str) -> int | None:
    """The 1-based line of a text file whose bytes ``encoding`` cannot read (a reader's own offset is into a
    buffer, which names nothing a person can find)."""
    with p.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError:
                return n
    return None


def read_table(path: str | Path, *, fmt: str = "auto", quoting: str = "minimal", encoding: str = "utf-8") -> pd.DataFrame:
    """Read CSV, TSV or JSONL as strings. ``quoting='none'`` reads quote characters literally (needed for
    files such as ASAP-AES whose text fields open quotes they never close). A UTF-8 byte-order mark is
    dropped; ``encoding`` names another encoding (a spreadsheet's cp1252)."""
    p = Path(path)
    if fmt == "auto":
        suf = p.suffix.lower()
        fmt = {".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suf, "csv")
    if not p.exists():
        raise NotFound(f"{p} does not exist")
    if p.stat().st_size == 0:
        raise InvalidRequest(f"{p} is empty: expected a header line and scored rows")
    if fmt == "jsonl":
        try:
            return pd.read_json(p, lines=True, dtype=False)
        except ValueError as exc:
            raise InvalidRequest(f"{p} is not JSON lines: {exc}") from None
    if fmt not in ("csv", "tsv"):
        raise ValueError(f"format must be auto, csv, tsv or jsonl, found {fmt!r}")
    q = {"minimal": csv.QUOTE_MINIMAL, "none": csv.QUOTE_NONE}.get(quoting)
    if q is None:
        raise ValueError(f"quoting must be 'minimal' or 'none', found {quoting!r}")
    try:
        enc = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
        df = pd.read_csv(p, sep=csv_delimiter(p, fmt), quoting=q, dtype=str, keep_default_na=False, encoding=enc)
        bom = b"\xef\xbb\xbf".decode(enc, errors="replace")  # UTF-8's mark as another encoding reads it
        if len(df.columns) and str(df.columns[0]).startswith(bom):
            df = df.rename(columns={df.columns[0]: str(df.columns[0])[len(bom):]})
        return df
    except UnicodeDecodeError:
        line = _first_bad_line(p, encoding)
        raise InvalidRequest(f"{p} is not valid {encoding}" + (f" (line {line})" if line else "")
                             + "; re-save it as UTF-8, or pass --encoding (e.g. cp1252)") from None
    except LookupError:
        raise InvalidRequest(f"unknown encoding {encoding!r}: expected e.g. utf-8, cp1252, latin-1") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InvalidRequest(f"{p} cannot be read as {fmt.upper()}: {str(exc).strip().splitlines()[0]}") from None


@dataclass(frozen=True)
class ImportResult:
    rows_read: int
    rows_selected: int
    submissions: int
    human_scores: dict[str, int]  # kind -> count
    skipped_missing: int
    existing: int = 0  # selected ids already in the store: scores attached, submission left as stored
    queue_slots_closed: int = 0  # their queue slots the imported ratings filled
    decisions: int = 0  # of them, submissions now resolved on every criterion: final decision recorded


def _score(v: Any) -> int | None:
    if v is None:
        return None
    if is_missing_score(v):
        return None
    s = str(v).strip()
    try:
        f = float(s)
    except ValueError:
        raise ValueError(f"score {s!r} is not a number") from None
    if not f.is_integer():
        raise ValueError(f"score {s!r} is not an integer")
    return int(f)


def import_table(
    store: Store,
    rubric: Rubric,
    df: pd.DataFrame,
    *,
    id_col: str,
    score_cols: Sequence[ScoreColumn],
    meta_cols: Sequence[str] = (),
    assessor_cols: dict[str, str] | None = None,
    source: str = "import",
    where: dict[str, str] | None = None,
    blind: bool = True,
    allow_existing: bool = False,
    time_col: str | None = None,
    policy: Any | None = None,
) -> ImportResult:
    """Register ``rubric`` and load every selected row as a submission (no evidence text: only metadata)
    with one human score per non-empty score column.

    ``assessor_cols`` maps kind -> column of assessor ids; otherwise assessors are named
    ``{source}:{column}``. ``where`` keeps rows whose column equals the given string. ``time_col`` names
    a column of score times (ISO; UTC when no zone) so that agreement over time follows the history rather
    than the import date.

    Submissions already in the store (a backlog scored by the machine, then rated outside the service) are
    carried on: queue slots the imported ratings fill are closed, and each submission whose criteria are
    now all resolved gets its final decision (``policy``: its adjudication gap; default the policy the store
    last logged for the rubric, else 1 level).
    """
    missing = [c for c in [id_col, *[s.column for s in score_cols], *meta_cols,
                           *(assessor_cols or {}).values(), *(where or {}),
                           *([time_col] if time_col else [])] if c not in df.columns]
    if missing:
        raise NotFound(f"columns {missing} not in the data; it has {list(df.columns)}")
    for sc in score_cols:
        try:
            rubric.criterion(sc.criterion)
        except KeyError:
            raise NotFound(f"rubric {rubric.key} has no criterion {sc.criterion!r}; expected one of "
                           f"{[c.id for c in rubric.criteria]}") from None
    n_read = len(df)
    sel = df
    for col, val in (where or {}).items():
        sel = sel[sel[col].astype(str).str.strip() == str(val)]
    # Everything is checked before anything is written: a bad cell must not leave half an import behind.
    ids = sel[id_col].astype(str).str.strip()
    problems: list[str] = []
    if (ids == "").any():
        problems.append(f"{int((ids == '').sum())} row(s) have an empty {id_col!r}")
    dup = sorted(set(ids[ids.duplicated()]))
    if dup:
        problems.append(f"ids {dup[:5]}{' ...' if len(dup) > 5 else ''} appear more than once (one row per submission)")
    values: dict[tuple[int, str], int | None] = {}
    for k, (_, row) in enumerate(sel.iterrows()):
        for sc in score_cols:
            levels = rubric.criterion(sc.criterion).scores
            try:
                v = _score(row[sc.column])
                if v is not None and v not in levels:
                    raise ValueError(f"score {v} is outside the scale {levels} of {sc.criterion!r}")
            except ValueError as exc:
                problems.append(f"row id {ids.iloc[k]!r}, column {sc.column!r}: {exc}")
                continue
            values[(k, sc.column)] = v
    times = None
    if time_col:
        try:
            times = pd.to_datetime(sel[time_col], utc=True, format="ISO8601")
        except (ValueError, TypeError) as exc:
            problems.append(f"column {time_col!r} holds a time that is not ISO 8601 ({str(exc).splitlines()[0]})")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InvalidRequest("nothing was imported: " + "; ".join(problems[:5]) + more)
    found = store.find_submissions(rubric.id, list(ids))
    wrong = [f"{e!r} (stored under version {r.rubric_version})" for e, r in found.items()
             if r.rubric_version != rubric.version]
    if wrong:
        raise Conflict(f"nothing was imported: submission(s) {', '.join(wrong[:5])} are stored under another version "
                       f"of rubric {rubric.id} than the file's {rubric.key}; import with that version's rubric file")
    if not allow_existing:
        _refuse_filled_slots(store, rubric, score_cols, found, values, ids)
    items: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for k, (_, row) in enumerate(sel.iterrows()):
        if ids.iloc[k] in found:  # stored already (e.g. through the API): attach the scores, keep the submission
            items.append((ids.iloc[k], found[ids.iloc[k]].evidence, found[ids.iloc[k]].metadata))
            continue
        meta = {c: (None if pd.isna(row[c]) else row[c]) for c in meta_cols}
        meta = {k: (v.item() if v is not None and hasattr(v, "item") else v) for k, v in meta.items()}
        items.append((ids.iloc[k], {}, meta))
    with store.write() as tx:  # the rubric too: a refused import (a rater scoring twice) leaves nothing behind
        register_rubric_in(tx, rubric)
        subs = add_submissions_in(store, tx, rubric.id, rubric.version, items) if items else []
        scores, counts, skipped = _scores(sel, subs, score_cols, values, assessor_cols, source, blind, times)
        if scores:
            human_scores_in(store, tx, scores)
        existing = {r.id for r in found.values()}
        rated = sorted({sc.submission_id for sc in scores} & existing)  # stored submissions that got ratings
        closed = queue.close_filled_in(tx, rated)  # queued submissions: the imported ratings fill their slots
    if policy is None and rated:  # the gaps the service applies to this rubric, as its audit log recorded them
        from scoring.store.policy_log import logged_policy

        policy = logged_policy(store, rubric.id)
    decided = 0
    for sid in rated:  # a decision is counted when one is written, not when an earlier one still stands
        before = store.latest_decision(sid)
        after = finalize(store, policy, sid, actor=f"import:{source}")
        decided += after is not None and (before is None or after.id != before.id)
    return ImportResult(n_read, len(sel), len(subs), counts, skipped, existing=len(found), queue_slots_closed=closed,
                        decisions=decided)


def _refuse_filled_slots(store: Store, rubric: Rubric, score_cols: Sequence[ScoreColumn],
                         found: dict[str, Any], values: dict[tuple[int, str], int | None], ids: pd.Series) -> None:
    """A rater slot (submission, criterion, kind) that already holds a score would be counted twice."""
    if not found:
        return
    by_id = {r.id: e for e, r in found.items()}
    filled = {(by_id[h.submission_id], h.criterion, h.kind)
              for crit in {s.criterion for s in score_cols}
              for h in store.human_scores(rubric_id=rubric.id, rubric_version=rubric.version, criterion=crit)
              if h.submission_id in by_id}
    clash = sorted({(ids.iloc[k], sc.criterion, sc.kind) for k in range(len(ids)) for sc in score_cols
                    if values.get((k, sc.column)) is not None and (ids.iloc[k], sc.criterion, sc.kind) in filled})
    if clash:
        shown = ", ".join(f"{e!r} {c} ({kind})" for e, c, kind in clash[:5])
        raise Conflict(f"nothing was imported: {len(clash)} score(s) are already stored, e.g. {shown}; importing "
                       f"again would count them twice (pass --append to add anyway)")


def _scores(sel: pd.DataFrame, subs: Sequence[Any], score_cols: Sequence[ScoreColumn],
            values: dict[tuple[int, str], int | None], assessor_cols: dict[str, str] | None, source: str,
            blind: bool, times: Any) -> tuple[list[HumanScoreIn], dict[str, int], int]:
    scores: list[HumanScoreIn] = []
    skipped = 0
    counts: dict[str, int] = {}
    for k, ((_, row), sub) in enumerate(zip(sel.iterrows(), subs, strict=True)):
        when = times.iloc[k].to_pydatetime() if times is not None and not pd.isna(times.iloc[k]) else None
        for sc in score_cols:
            v = values[(k, sc.column)]
            if v is None:
                skipped += 1
                continue
            assessor = (str(row[assessor_cols[sc.kind]]) if assessor_cols and sc.kind in assessor_cols
                        else f"{source}:{sc.column}")
            scores.append(HumanScoreIn(sub.id, sc.criterion, v, assessor, sc.kind, blind, created_at=when))
            counts[sc.kind] = counts.get(sc.kind, 0) + 1
    return scores, counts, skipped
