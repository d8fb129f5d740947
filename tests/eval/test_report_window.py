"""`scoring report --since/--until` selects pairs of scores, not single scores.

A researcher asking for "March" gets every item the machine scored in March with its human reference,
whenever the person scored it, and every human-human pair whose second score fell in March: the same
pairs the March row of the over-time table counts. Nothing is dropped because its partner score was
recorded in another month.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from eval.agreement import human_human_table, human_machine_table, load_frames
from eval.report import build_report
from rubrics.schema import parse_rubric
from scoring.store import HumanScoreIn, MachineScoreIn, Store

RUBRIC = {"id": "win", "version": 1, "title": "Window", "evidence": ["text"],
          "criteria": [{"id": "c", "title": "C", "scale": {"min": 0, "max": 4}}]}
MARCH, APRIL, MAY = (datetime(2026, m, 1, tzinfo=UTC) for m in (3, 4, 5))


def _store(tmp_path: Path) -> Store:
    """40 items machine-scored in mid-March; each first-rated in mid-April (a month later), 20 of them
    second-rated in mid-April too, 10 of those first-rated already in late February."""
    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    store.register_rubric(parse_rubric(RUBRIC))
    subs = store.add_submissions("win", 1, [(f"s{i}", {"text": f"t{i}"}, {}) for i in range(40)])
    ms, hs = [], []
    for i, s in enumerate(subs):
        score = i % 5
        ms.append(MachineScoreIn(s.id, "c", score, None, None, "human", "r", "m-1", "p-1",
                                 datetime(2026, 3, 15, tzinfo=UTC) + timedelta(minutes=i)))
        first_at = datetime(2026, 2, 25, tzinfo=UTC) if i < 10 else datetime(2026, 4, 15, tzinfo=UTC)
        hs.append(HumanScoreIn(s.id, "c", score if i % 4 else (score + 1) % 5, "ann", "first", True, "", first_at))
        if i < 20:
            hs.append(HumanScoreIn(s.id, "c", score, "bob", "second", True, "",
                                   datetime(2026, 4, 16, tzinfo=UTC)))
    store.record_machine_scores(ms)
    store.record_human_scores(hs)
    return store


def test_a_months_report_keeps_machine_scores_whose_human_score_came_later(tmp_path: Path) -> None:
    store = _store(tmp_path)
    march = human_machine_table(load_frames(store, since=MARCH, until=APRIL))
    assert march["n"].tolist() == [40]  # all 40 March machine scores, each with its April reference
    whole = human_machine_table(load_frames(store))
    assert march["qwk"].tolist() == whole["qwk"].tolist()
    assert human_machine_table(load_frames(store, since=APRIL, until=MAY)).empty  # no machine score in April
    store.close()


def test_a_human_pair_belongs_to_the_window_of_its_second_score(tmp_path: Path) -> None:
    store = _store(tmp_path)
    april = human_human_table(load_frames(store, since=APRIL, until=MAY))
    assert april["n"].tolist() == [20]  # 10 of them first-rated in February: still April pairs
    by_month = human_human_table(load_frames(store), window="M")
    assert by_month[["window", "n"]].values.tolist() == [["2026-04", 20]]
    assert human_human_table(load_frames(store, since=MARCH, until=APRIL)).empty
    store.close()


def test_the_report_for_a_window_agrees_with_that_windows_over_time_row(tmp_path: Path) -> None:
    store = _store(tmp_path)
    res = build_report(store, tmp_path / "march", since=MARCH, until=APRIL, n_boot=0)
    hm = res.tables["human_machine"]
    over = res.tables["over_time"]
    row = over[(over["pair"] == "machine m-1") & (over["window"] == "2026-03")]
    assert hm["n"].tolist() == row["n"].tolist() == [40]
    items = pd.read_csv(tmp_path / "march" / "items.csv")
    assert items["h1"].notna().all() and len(items) == 40  # the reference each figure used is exported
    store.close()


def test_over_time_keeps_rubric_versions_apart(tmp_path: Path) -> None:
    """A revised rubric (version 2) scored in the same month as version 1 gives two rows and two series,
    never one line through both versions' figures."""
    store = Store(f"sqlite:///{tmp_path / 'v.db'}")
    at = datetime(2026, 3, 10, tzinfo=UTC)
    for version in (1, 2):
        store.register_rubric(parse_rubric({**RUBRIC, "version": version, "title": f"Window v{version}"}))
        subs = store.add_submissions("win", version, [(f"v{version}-{i}", {"text": "t"}, {}) for i in range(20)])
        store.record_human_scores([HumanScoreIn(s.id, "c", (i + k * (version - 1)) % 5, who, kind, True, "", at)
                                   for i, s in enumerate(subs)
                                   for k, (who, kind) in enumerate((("ann", "first"), ("bob", "second")))])
    res = build_report(store, tmp_path / "r", n_boot=0)
    store.close()
    over = res.tables["over_time"]
    assert over[["rubric_version", "n"]].values.tolist() == [[1, 20], [2, 20]]
    assert over.set_index("rubric_version")["qwk"][1] == 1.0 and over.set_index("rubric_version")["qwk"][2] < 1.0
    assert list(pd.read_csv(tmp_path / "r" / "over_time.csv").columns)[:3] == ["pair", "rubric_id", "rubric_version"]


def test_a_machine_score_superseded_by_the_same_model_is_in_no_window(tmp_path: Path) -> None:
    """`scoring policy apply` (or a re-score) records a newer row for the same model: the one that stands. The
    superseded March rows of 15 items counted in March would make March + April count them twice and March
    disagree with its over-time row; each item counts once, in the window of the row that stands."""
    store = _store(tmp_path)
    subs = store.submissions("win")[:15]
    store.record_machine_scores([MachineScoreIn(s.id, "c", 0, None, None, "auto", "re-routed", "m-1", "p-2",
                                                datetime(2026, 4, 20, tzinfo=UTC)) for s in subs])
    march = human_machine_table(load_frames(store, since=MARCH, until=APRIL))
    april = human_machine_table(load_frames(store, since=APRIL, until=MAY))
    whole = human_machine_table(load_frames(store))
    assert march["n"].tolist() == [25] and april["n"].tolist() == [15] and whole["n"].tolist() == [40]
    over = build_report(store, tmp_path / "all", n_boot=0).tables["over_time"]
    rows = over[over["pair"] == "machine m-1"].set_index("window")
    assert rows.loc["2026-03", "n"] == 25 and rows.loc["2026-04", "n"] == 15
    assert march["qwk"].iloc[0] == rows.loc["2026-03", "qwk"]
    store.close()
