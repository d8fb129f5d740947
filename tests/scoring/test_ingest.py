"""Reading a backlog: every format, column mapping, and a reject with a reason for every bad row."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rubrics import load_rubric
from scoring.demo import DEMO_RUBRIC
from scoring.ingest import ColumnMap, IngestError, infer_columns, read_records

RUBRIC = load_rubric(DEMO_RUBRIC)
ROWS = [
    {"sid": "a1", "text": "I asked open questions.", "q": "2"},
    {"sid": "a2", "text": "We copied notes, then\nmore notes.", "q": "0"},
]


def _cols(**kw):
    return infer_columns(RUBRIC, ColumnMap(id="sid", text={"reflection": "text"}, **kw))


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_each_format_reads_the_same_records(tmp_path: Path, fmt: str):
    p = tmp_path / f"in.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(ROWS), p)
    elif fmt == "jsonl":
        p.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    else:
        import csv

        with p.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(ROWS[0]), delimiter="\t" if fmt == "tsv" else ",")
            w.writeheader()
            w.writerows(ROWS)
    recs = list(read_records(p, RUBRIC, _cols(scores={"questioning": "q"})))
    assert [(r.id, r.evidence["reflection"], r.scores["questioning"]) for r in recs] == [
        ("a1", "I asked open questions.", 2),
        ("a2", "We copied notes, then\nmore notes.", 0),
    ]


def test_bad_rows_become_rejects_with_reasons_and_the_rest_is_read(tmp_path: Path):
    p = tmp_path / "in.csv"
    p.write_bytes(
        b"sid,text,q\n"
        b"ok1,Fine text,1\n"
        b",No id here,1\n"
        b"empty,,1\n"
        b"ok1,Same id again,1\n"
        b"latin,Caf\xe9 au lait,1\n"
        b"off,Score off the scale,5\n"
        b"nan,Score not a number,high\n"
        b"ok2,Another fine text,\n"
    )
    recs = list(read_records(p, RUBRIC, _cols(scores={"questioning": "q"})))
    reasons = {r.number: r.reject for r in recs}
    assert reasons[1] is None and reasons[8] is None
    assert "missing id" in reasons[2]
    assert "empty evidence" in reasons[3]
    assert "duplicate id 'ok1'" in reasons[4]
    assert "not valid utf-8" in reasons[5]
    assert "outside the rubric scale [0, 1, 2]" in reasons[6]
    assert "is not a number" in reasons[7]
    assert recs[7].scores["questioning"] is None  # missing score: usable, just unlabelled


def test_legacy_encoding_can_be_named(tmp_path: Path):
    p = tmp_path / "in.csv"
    p.write_bytes(b"sid,text\nx,Caf\xe9 au lait\n")
    (rec,) = read_records(p, RUBRIC, _cols(), encoding="latin-1")
    assert rec.reject is None and rec.evidence["reflection"] == "Café au lait"


def test_huge_evidence_is_rejected_not_truncated(tmp_path: Path):
    p = tmp_path / "in.jsonl"
    p.write_text(json.dumps({"sid": "big", "text": "word " * 1000}) + "\n")
    (rec,) = read_records(p, RUBRIC, _cols(), max_chars=1000)
    assert "too long" in rec.reject


def test_malformed_jsonl_lines_are_rejected_individually(tmp_path: Path):
    p = tmp_path / "in.jsonl"
    p.write_text('{"sid": "a", "text": "ok"}\n{"sid": "b", "text": \n["not", "an object"]\n')
    recs = list(read_records(p, RUBRIC, _cols()))
    assert recs[0].reject is None
    assert "malformed JSON" in recs[1].reject
    assert "expected a JSON object" in recs[2].reject


def test_a_csv_row_with_too_many_fields_is_rejected(tmp_path: Path):
    p = tmp_path / "in.csv"
    p.write_text("sid,text\na,fine\nb,one,two\nc,also fine\n")
    recs = list(read_records(p, RUBRIC, _cols()))
    assert [r.id for r in recs if r.reject is None] == ["a", "c"]
    assert any(r.reject and "expected 2 columns, found 3" in r.reject for r in recs)


def test_unknown_columns_fail_the_whole_file_with_the_columns_listed(tmp_path: Path):
    p = tmp_path / "in.csv"
    p.write_text("id,body\n1,text\n")
    with pytest.raises(IngestError, match=r"column\(s\) \['sid', 'text'\] not found; the file has \['body', 'id'\]"):
        list(read_records(p, RUBRIC, _cols()))
    with pytest.raises(IngestError, match="not in rubric"):
        list(read_records(p, RUBRIC, _cols(scores={"nope": "x"})))


def test_where_filters_rows(tmp_path: Path):
    p = tmp_path / "in.csv"
    p.write_text("sid,text,set\na,one,1\nb,two,2\n")
    recs = list(read_records(p, RUBRIC, _cols(where={"set": "2"})))
    assert [r.id for r in recs] == ["b"]


def test_a_spreadsheet_export_with_a_byte_order_mark_reads_normally(tmp_path: Path):
    p = tmp_path / "excel.csv"
    p.write_bytes("\ufeffsid,text\r\nx,Caf\u00e9 au lait\r\n".encode("utf-8") + b"caf\xe9,mis-encoded id\r\n")
    good, bad = read_records(p, RUBRIC, _cols())
    assert good.reject is None and good.id == "x" and good.evidence["reflection"] == "Caf\u00e9 au lait"
    assert "id is not valid utf-8" in bad.reject, "the BOM column must still be read as raw bytes, row by row"
