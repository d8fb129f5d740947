"""An interval at the edge of its scale never stops the report: a reliability bin where the machine agreed
with the person on every item (or none) has a Wilson interval whose bound is the point itself, which floating
point rounds just past it; the report is written, its bars are clamped at zero length and the exported
bounds hold the bin's accuracy."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from eval.report_plots import error_bar, plot_group_bars, wilson
from rubrics.schema import parse_rubric
from scoring.cli import app
from scoring.store import HumanScoreIn, MachineScoreIn, Store

RUBRIC = parse_rubric({"id": "edge", "version": 1, "title": "Edge", "evidence": ["text"],
                       "criteria": [{"id": "q", "title": "Q", "scale": {"min": 0, "max": 2}}]})


def _store_where_the_machine_is_always_right(url: str, n: int) -> None:
    """n items, each machine score 96% sure and equal to the blind first rater's: one bin, accuracy 1."""
    with Store(url) as st:
        st.register_rubric(RUBRIC)
        subs = st.add_submissions("edge", 1, [(f"x{i}", {"text": f"t{i}"}, {}) for i in range(n)])
        st.record_machine_scores([MachineScoreIn(
            s.id, "q", i % 3, probabilities={str(lv): (0.96 if lv == i % 3 else 0.02) for lv in range(3)},
            prediction_set=[i % 3], route="auto", reason="", model_version="m", policy_version="p")
            for i, s in enumerate(subs)])
        st.record_human_scores([HumanScoreIn(s.id, "q", i % 3, "ann", "first", True, "")
                                for i, s in enumerate(subs)])


@pytest.mark.parametrize("n", [21, 20])  # 21 of 21 rounds the Wilson upper bound to 0.9999999999999999
def test_a_report_is_written_when_a_reliability_bin_is_all_correct(tmp_path: Path, n: int) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    _store_where_the_machine_is_always_right(url, n)
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "rep"), "--db", url, "--bootstrap", "0"])
    assert r.exit_code == 0, r.output
    rel = pd.read_csv(tmp_path / "rep" / "reliability.csv")
    assert list(rel["n"]) == [n] and list(rel["accuracy"]) == [1.0]
    assert (rel["accuracy_lo"] <= rel["accuracy"]).all() and (rel["accuracy_hi"] >= rel["accuracy"]).all()
    assert [p.name for p in (tmp_path / "rep" / "figures").glob("*_probabilities_edge_q_m.png")]


def test_a_wilson_interval_always_holds_its_proportion_at_zero_and_one() -> None:
    for n in range(1, 301):
        assert wilson(n, n)[1] == 1.0 and wilson(0, n)[0] == 0.0, n
        assert wilson(n, n)[0] < 1.0 and wilson(0, n)[1] > 0.0, n


def test_an_error_bar_past_its_point_is_drawn_with_zero_length_not_refused() -> None:
    assert error_bar(1.0, 0.8, 0.9999999999999999) == [[pytest.approx(0.2)], [0.0]]
    assert error_bar(0.0, 2.7755575615628914e-17, 0.3) == [[0.0], [0.3]]
    # a bootstrap percentile interval may not hold the DSM it surrounds: the bar chart is still drawn
    png = plot_group_bars(["a", "b"], [0.05, -0.02], [0.06, -0.04], [0.09, 0.01], [40, 40], small=[False, False],
                          fail=[False, False], xlabel="DSM", title="t")
    assert png.startswith(b"\x89PNG")
