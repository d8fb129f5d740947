"""The over-time plot keeps series that share a window apart.

With several criteria and pairs in one month (every new deployment's first report), their QWKs are
close: drawn on one spot they hid each other and their n labels. Each series sits at its own offset
within the window, and a perfect window's marker stays inside the axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from eval import report_plots

ROWS = pd.DataFrame([
    {"pair": pair, "rubric_id": "r", "rubric_version": 1, "criterion": crit, "window": "2026-11", "n": 20,
     "qwk": 0.9, "exact": 0.8}
    for pair in ("human-human", "machine m-1") for crit in ("a", "b", "c")
])


def _figure(monkeypatch: pytest.MonkeyPatch, rows: pd.DataFrame) -> Any:
    figs: list[Any] = []

    def keep(fig: Any) -> bytes:
        figs.append(fig)
        return b"png"

    monkeypatch.setattr(report_plots, "fig_png", keep)
    report_plots.plot_over_time(rows, "r: QWK per M window", 0.7)
    return figs[0]


def test_series_in_one_window_are_drawn_side_by_side(monkeypatch: pytest.MonkeyPatch) -> None:
    ax = _figure(monkeypatch, ROWS).axes[0]
    xs = [float(c.get_offsets()[0][0]) for c in ax.collections]
    assert len(xs) == 6 and len(set(np.round(xs, 6))) == 6  # six points, six places
    assert all(-0.5 < x < 0.5 for x in xs)  # all within their window's slot


def test_a_perfect_window_is_drawn_inside_the_axes(monkeypatch: pytest.MonkeyPatch) -> None:
    ax = _figure(monkeypatch, ROWS.assign(qwk=1.0)).axes[0]
    assert ax.get_ylim()[1] > 1.0 and max(ax.get_yticks()) <= 1.0 + 1e-9  # QWK ticks end at 1
