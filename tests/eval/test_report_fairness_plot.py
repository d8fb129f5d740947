"""The fairness plot names the reference group its estimates are differences from.

RSMTool's fairness models estimate each group's difference from a reference group (the largest); the
plot draws only the other groups, so every axis says which group that is, with its n.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from eval import report_plots

EST = pd.DataFrame([
    {"analysis": a, "group": g, "n": n, "estimate": e, "estimate_lo": e - 0.2, "estimate_hi": e + 0.2}
    for a in ("osa", "osd", "csd")
    for g, n, e in (("Intercept (south)", 21, 0.5), ("north", 20, 0.1), ("east", 19, -0.1))
])


def test_every_axis_names_the_reference_group_with_its_n(monkeypatch: pytest.MonkeyPatch) -> None:
    figs: list[Any] = []

    def keep(fig: Any) -> bytes:
        figs.append(fig)
        return b"png"

    monkeypatch.setattr(report_plots, "fig_png", keep)
    report_plots.plot_fairness(EST, "r/c (m) by school, n=60")
    labels = [ax.get_xlabel() for ax in figs[0].axes]
    assert labels == ["difference from reference group south (n=21)"] * 3
    ticks = [t.get_text() for t in figs[0].axes[0].get_yticklabels()]
    assert ticks == ["north (n=20)", "east (n=19)"]
