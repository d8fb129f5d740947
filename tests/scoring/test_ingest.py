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
        b"half,Half a level,1.5\n"
    )
    recs = list(read_records(p, RUBRIC, _cols(scores={"questioning": "q"})))
    reasons = {r.number: r.reject for r in recs}
    assert reasons[1] is None and reasons[8] is None
    assert "missing id" in reasons[2]
    assert "empty evidence" in reasons[3]
    assert "duplicate id 'ok1' (first seen at record 1, OTHER text: two submissions share this id" in reasons[4]
    assert "not valid utf-8" in reasons[5]
    # a bad score cell spoils that label only: the row (its text, its other labels) is still read
    assert reasons[6] is None and reasons[7] is None
    assert recs[5].scores["questioning"] is None and "outside the rubric scale [0, 1, 2]" in recs[5].score_problems["questioning"]
    assert recs[6].scores["questioning"] is None and "is not a number" in recs[6].score_problems["questioning"]
    assert recs[0].score_problems == {}
    assert recs[7].scores["questioning"] is None  # missing score: usable, just unlabelled
    assert "is not a whole number" in recs[8].score_problems["questioning"]
    assert "outside" not in recs[8].score_problems["questioning"]


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


def test_a_row_with_foreign_bytes_and_a_wrong_field_count_is_one_reject_not_the_end_of_the_file(tmp_path: Path):
    """Both faults in one row: it is rejected for its field count and every other row is read, accented
    column names and text included."""
    p = tmp_path / "in.csv"
    p.write_bytes("sid,text,n\u00f3te\na,caf\u00e9 fine,1\n".encode() + b"b,caf\xe9,x,2\n" + b"c,\"two\nlines\",3\n")
    recs = list(read_records(p, RUBRIC, _cols(meta=("n\u00f3te",))))
    assert [(r.id, r.reject is None) for r in recs] == [("a", True), (None, False), ("c", True)]
    assert recs[0].evidence["reflection"] == "caf\u00e9 fine" and recs[0].meta["n\u00f3te"] == "1"
    assert "expected 3 columns, found 4" in (recs[1].reject or "") and recs[1].number == 2
    assert recs[2].evidence["reflection"] == "two\nlines" and recs[2].number == 3


def test_a_semicolon_header_means_semicolon_fields(tmp_path: Path):
    p = tmp_path / "excel.csv"
    p.write_bytes(b"\xef\xbb\xbfsid;text\r\nx;one, two and three\r\n")
    (rec,) = read_records(p, RUBRIC, _cols())
    assert rec.reject is None and rec.id == "x" and rec.evidence["reflection"] == "one, two and three"
    q = tmp_path / "named.csv"  # a column name with a comma in it: still a semicolon file
    q.write_bytes(b'sid;"text, in full"\r\ny;"four, five"\r\n')
    (rec,) = read_records(q, RUBRIC, infer_columns(RUBRIC, ColumnMap(id="sid", text={"reflection": "text, in full"})))
    assert rec.reject is None and rec.evidence["reflection"] == "four, five"


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


def test_reject_numbers_name_the_record_in_the_file_even_around_quoted_newlines(tmp_path: Path):
    p = tmp_path / "in.csv"
    p.write_bytes(b'sid,text\nr1,"two\nlines"\nr2,too,many\nr3,fine\nr4\nr5,fine too\n')
    recs = list(read_records(p, RUBRIC, _cols()))
    assert [(r.number, r.id, r.reject is None) for r in recs] == [
        (1, "r1", True), (2, None, False), (3, "r3", True), (4, None, False), (5, "r5", True)]
    assert "expected 2 columns, found 3" in recs[1].reject


def test_a_header_that_names_a_column_twice_is_refused(tmp_path: Path):
    p = tmp_path / "in.csv"
    p.write_text("sid,text,text\nx,first,second\n")
    with pytest.raises(IngestError, match=r"names column\(s\) \['text'\] more than once"):
        list(read_records(p, RUBRIC, _cols()))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_utf16_and_utf32_files_are_read_named_or_recognised_by_their_bom(tmp_path: Path, encoding: str, fmt: str,
                                                                          monkeypatch):
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the UTF-8 copy goes
    text = "sid,text\nu1,Café crème\nu2,数学の授業\n" if fmt == "csv" else \
        "".join(json.dumps({"sid": r, "text": t}, ensure_ascii=False) + "\n" for r, t in (("u1", "Café crème"), ("u2", "数学の授業")))
    p = tmp_path / f"in.{fmt}"
    data = text.encode(encoding)
    p.write_bytes(data)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        recs = list(read_records(p, RUBRIC, _cols()))  # left at UTF-8: the BOM says otherwise
    else:  # -le/-be codecs write no BOM: name the encoding
        recs = list(read_records(p, RUBRIC, _cols(), encoding=encoding))
    assert [(r.id, r.evidence["reflection"], r.reject) for r in recs] == [
        ("u1", "Café crème", None), ("u2", "数学の授業", None)]
    assert list(scratch.iterdir()) == []  # the UTF-8 copy is gone once the records are read


def test_a_utf8_bom_before_the_first_json_line_is_ignored(tmp_path: Path):
    p = tmp_path / "in.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps({"sid": "b1", "text": "hello"}).encode() + b"\n")
    assert [(r.id, r.reject) for r in read_records(p, RUBRIC, _cols())] == [("b1", None)]


def test_json_objects_and_lists_where_text_belongs_are_rejected(tmp_path: Path):
    p = tmp_path / "in.jsonl"
    rows = [{"sid": "j1", "text": {"a": 1}}, {"sid": "j2", "text": ["x"]}, {"sid": "j3", "text": "real text"},
            {"sid": {"x": 1}, "text": "t"}]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recs = list(read_records(p, RUBRIC, _cols()))
    assert "column 'text' holds a JSON object, not text" in recs[0].reject
    assert "holds a JSON list" in recs[1].reject
    assert recs[2].reject is None
    assert "id column 'sid'" in recs[3].reject


def test_a_header_only_file_still_reports_a_missing_column(tmp_path: Path):
    p = tmp_path / "in.csv"
    p.write_text("sid,text\n")
    with pytest.raises(IngestError, match=r"column\(s\) \['nope'\] not found"):
        list(read_records(p, RUBRIC, _cols(scores={"questioning": "nope"})))
    assert list(read_records(p, RUBRIC, _cols())) == []


def test_an_empty_csv_is_named_in_the_error(tmp_path: Path):
    p = tmp_path / "blank.csv"
    p.write_text("")
    with pytest.raises(IngestError, match=r"blank\.csv is empty"):
        list(read_records(p, RUBRIC, _cols()))


def test_record_numbers_stay_exact_across_reader_blocks(tmp_path: Path):
    """The CSV reader parses 4 MiB blocks one ahead: skipped rows must still land at their own numbers."""
    p = tmp_path / "big.csv"
    bad_at = {700, 7000, 7001, 13500, 19999}
    lines = ["sid,text"]
    for i in range(1, 20001):
        lines.append(f"r{i},too,many" if i in bad_at else f'r{i},"{"x" * 650} line one\nline two"')
    p.write_text("\n".join(lines) + "\n")
    assert p.stat().st_size > 3 * (1 << 22)
    recs = list(read_records(p, RUBRIC, _cols()))
    assert [r.number for r in recs] == list(range(1, 20001))
    assert {r.number for r in recs if r.reject} == bad_at
    assert all(r.id == f"r{r.number}" for r in recs if not r.reject)


def test_unused_repeated_header_names_are_fine(tmp_path: Path):
    p = tmp_path / "excel.csv"
    p.write_text("sid,text,,\nx,hello,,\n")
    assert [(r.id, r.reject) for r in read_records(p, RUBRIC, _cols())] == [("x", None)]


def test_json_values_in_filter_and_metadata_columns(tmp_path: Path):
    p = tmp_path / "in.jsonl"
    rows = [{"sid": "a", "text": "t1", "grp": {"x": 1}, "m": {"k": [1, 2]}}, {"sid": "b", "text": "t2", "grp": "A", "m": "plain"}]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cols = infer_columns(RUBRIC, ColumnMap(id="sid", text={"reflection": "text"}, meta=("m",), where={"grp": "A"}))
    assert [(r.id, r.meta) for r in read_records(p, RUBRIC, cols)] == [("b", {"m": "plain"})]
    cols = infer_columns(RUBRIC, ColumnMap(id="sid", text={"reflection": "text"}, meta=("m",)))
    assert [r.meta["m"] for r in read_records(p, RUBRIC, cols)] == ['{"k": [1, 2]}', "plain"]


def test_a_folder_a_workbook_and_a_utf16_file_without_its_mark_are_named_in_words(tmp_path: Path):
    with pytest.raises(IngestError, match="is a folder: expected one data file"):
        list(read_records(tmp_path, RUBRIC, _cols(), fmt="csv"))
    book = tmp_path / "scores.xlsx"
    book.write_bytes(b"PK\x03\x04")
    with pytest.raises(IngestError, match="spreadsheet workbook: save the sheet as CSV"):
        list(read_records(book, RUBRIC, _cols()))
    p = tmp_path / "in.csv"
    p.write_text("sid,text\na,one\n")
    with pytest.raises(IngestError, match=r"in\.csv is not valid utf-16 \(UTF-16 stream does not start with BOM\)"):
        list(read_records(p, RUBRIC, _cols(), encoding="utf-16"))


def test_a_repeated_row_is_told_apart_from_two_submissions_sharing_an_id(tmp_path: Path) -> None:
    p = tmp_path / "b.csv"
    p.write_text("sid,text,q\nok1,Fine text,1\nok1,Fine text,2\nok1,Other text,1\n")
    reasons = {r.number: r.reject for r in read_records(p, RUBRIC, _cols(scores={"questioning": "q"}))}
    assert reasons[2] == "duplicate id 'ok1' (first seen at record 1, the same text); later copy not scored"
    assert reasons[3] is not None and "OTHER text: two submissions share this id" in reasons[3]


def test_a_malformed_jsonl_line_says_where_within_the_line(tmp_path: Path) -> None:
    p = tmp_path / "in.jsonl"
    p.write_text('{"sid": "a", "text": 1\n{"sid": "b", "text": "tab\there"}\r\n{"sid": "c", : 2}\n')
    reasons = [r.reject for r in read_records(p, RUBRIC, _cols())]
    assert reasons[0] == "malformed JSON: the line ends before its JSON object does (Expecting ',' delimiter)"
    assert reasons[1] == "malformed JSON: Invalid control character at column 26"
    assert reasons[2] == "malformed JSON: Expecting property name enclosed in double quotes at column 14"


def test_mapping_only_some_evidence_fields_is_refused_once_naming_the_unmapped_ones(tmp_path: Path) -> None:
    """A rubric whose criteria read two fields, and a --text-col for one: every row would have nothing for the
    other's criteria, so the file is refused before the first row rather than every row rejected."""
    from rubrics.schema import parse_rubric
    from scoring.ingest import IngestError

    two = parse_rubric({"id": "two", "version": 1, "title": "Two", "evidence": ["reflection", "plan"],
                        "criteria": [{"id": "r", "title": "R", "scale": {"min": 0, "max": 2}, "evidence": ["reflection"]},
                                     {"id": "p", "title": "P", "scale": {"min": 0, "max": 2}, "evidence": ["plan"]}]})
    p = tmp_path / "b.csv"
    p.write_text("sid,Reflection\na,some text\n")
    with pytest.raises(IngestError, match=r"no column is mapped to evidence field\(s\) \['plan'\], which criteria read"):
        list(read_records(p, two, ColumnMap(id="sid", text={"reflection": "Reflection"})))
