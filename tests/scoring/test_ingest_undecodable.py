"""A row the --encoding cannot read is marked as such, in every format's reader (not told apart by its wording)."""

from __future__ import annotations

from pathlib import Path

from rubrics import BUNDLED_DIR, load_rubric
from scoring.ingest import ColumnMap, read_records


def test_rows_in_another_encoding_are_marked_undecodable_and_others_are_not(tmp_path: Path) -> None:
    rubric = load_rubric(BUNDLED_DIR / "checking-for-understanding.yaml")
    cols = ColumnMap(id="id", text={"reflection": "reflection"}, scores={})
    csv_file = tmp_path / "r.csv"
    csv_file.write_bytes("id,reflection\na,fine text\nb,caf\u00e9 \u2019\n,no id here\n".encode("cp1252"))
    recs = list(read_records(csv_file, rubric, cols))
    assert [(r.id, r.undecodable) for r in recs if r.reject] == [("b", True), (None, False)]
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_bytes(b'{"id": "a", "reflection": "fine"}\n' + '{"id": "b", "reflection": "caf\u00e9"}\n'.encode("cp1252"))
    bad = [r for r in read_records(jsonl, rubric, cols) if r.reject]
    assert len(bad) == 1 and bad[0].undecodable and bad[0].reject.startswith("line is not valid utf-8")
