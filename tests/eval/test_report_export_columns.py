"""The report's CSV exports have the columns the data dictionary names, whatever the store holds.

A researcher's script written against one report must read the next: a store without machine scores
still gives a human_machine.csv with its header, `--bootstrap 0` leaves the interval columns in place
(empty), and every column of every export is described in data_dictionary.json.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from report_fixture import build

from eval.report import EXPORT_COLUMNS, build_report
from rubrics.schema import parse_rubric
from scoring.store import HumanScoreIn, Store

RUBRIC = {"id": "hh-only", "version": 1, "title": "Human only", "evidence": ["text"],
          "criteria": [{"id": "c", "title": "C", "scale": {"min": 1, "max": 4}}]}


def _documented(entry: dict[str, str]) -> set[str]:
    """Column names a dictionary entry describes ("a, b / c (+ _lo/_hi)" names a, b and c)."""
    names: set[str] = set()
    for key in entry:
        for part in re.split(r",\s*|\s*/\s*", key.replace("(+ _lo/_hi)", "")):
            if part.strip():
                names.add(part.strip())
    return names


def _undocumented(out: Path) -> dict[str, list[str]]:
    dictionary = json.loads((out / "data_dictionary.json").read_text(encoding="utf-8"))
    missing = {}
    for name, spec in dictionary.items():
        cols = pd.read_csv(out / f"{name}.csv", nrows=0).columns
        doc = _documented(spec["columns"])
        bad = [c for c in cols if c not in doc and not re.search(r"_(lo|hi)$", c)
               and not c.startswith(("machine_", "meta_"))]
        if bad:
            missing[name] = bad
    return missing


def test_a_store_without_machine_scores_still_exports_readable_tables_with_their_columns(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    store.register_rubric(parse_rubric(RUBRIC))
    subs = store.add_submissions("hh-only", 1, [(f"s{i}", {"text": "t"}, {"school": "a"}) for i in range(12)])
    at = datetime(2026, 2, 1, tzinfo=UTC)
    store.record_human_scores([HumanScoreIn(s.id, "c", 1 + i % 4, who, kind, True, "", at)
                               for i, s in enumerate(subs) for who, kind in (("ann", "first"), ("bob", "second"))])
    build_report(store, tmp_path / "r", n_boot=0, subgroups=["school"])
    store.close()
    for name, cols in EXPORT_COLUMNS.items():
        assert list(pd.read_csv(tmp_path / "r" / f"{name}.csv").columns) == cols, name
    assert pd.read_csv(tmp_path / "r" / "human_machine.csv").empty
    assert pd.read_csv(tmp_path / "r" / "human_human.csv")["qwk_lo"].isna().all()  # --bootstrap 0: empty, present


def test_every_exported_column_is_in_the_data_dictionary(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'f.db'}")
    build(store, n=80)
    build_report(store, tmp_path / "r", n_boot=20, subgroups=["school"])
    store.close()
    assert _undocumented(tmp_path / "r") == {}


def test_items_export_writes_scores_and_versions_as_whole_numbers(tmp_path: Path) -> None:
    """Machine-only rows (no human score yet) must not turn every score into 3.0 and every version into 1.0."""
    store = Store(f"sqlite:///{tmp_path / 'i.db'}")
    build(store, n=40)
    build_report(store, tmp_path / "r", n_boot=0)
    store.close()
    items = pd.read_csv(tmp_path / "r" / "items.csv", dtype=str)
    scores = [c for c in items.columns if c in ("rubric_version", "h1", "h2", "audit") or c.startswith("machine_")]
    assert len(scores) >= 5
    for c in scores:
        assert items[c].dropna().str.fullmatch(r"\d+").all(), (c, items[c].dropna().head(3).tolist())


def test_json_exports_write_a_missing_time_as_null(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'j.db'}")
    build(store, n=40)
    build_report(store, tmp_path / "r", n_boot=0)
    store.close()
    rows = json.loads((tmp_path / "r" / "items.json").read_text(encoding="utf-8"))
    times = [r[k] for r in rows for k in ("h1_at", "h2_at", "audit_at")]
    assert None in times and "NaT" not in times and not any(isinstance(t, str) and "NA" in t for t in times)


def test_provenance_pins_what_the_figures_rest_on(tmp_path: Path) -> None:
    """provenance.json: the audit log head the report read, the filters (and the tables they do not
    filter), the gate policy's thresholds, the bootstrap, the model versions and rows per export."""
    store = Store(f"sqlite:///{tmp_path / 'p.db'}")
    build(store, n=40)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    res = build_report(store, tmp_path / "r", n_boot=10, seed=5, since=since, subgroups=["school"])
    head = store.verify_audit()
    store.close()
    p = json.loads((tmp_path / "r" / "provenance.json").read_text(encoding="utf-8"))
    assert p["store"]["database"] == "sqlite" and "p.db" not in json.dumps(p)  # the kind, never the URL
    assert p["store"]["audit_log"] == {"verified": True, "entries": head.entries_checked,
                                       "head_seq": head.last_seq, "head_hash": head.head_hash}
    assert p["filters"]["since"] == "2026-01-01T00:00:00+00:00" and p["filters"]["until"] is None
    assert p["filters"]["not_filtered"] == ["suspensions", "models"]  # the store's state, whatever the window
    assert p["gate_policy"]["id"] and p["gate_policy"]["min_qwk"] == 0.70 and p["gate_policy"]["min_n"] == 50
    assert p["bootstrap"] == {"resamples": 10, "seed": 5, "level": 0.95}
    assert p["model_versions"] == sorted(set(res.tables["human_machine"]["model_version"]))
    assert p["rows"] == {name: len(df) for name, df in res.tables.items()}
