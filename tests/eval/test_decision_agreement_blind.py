"""Agreement on the credential decision is also measured against people who did not see the machine.

The `final` decision rests on the resolved levels, and an auto-accepted criterion resolves to the
machine's own level: "machine vs final" says how often review changed the machine's decision, not how
often the machine decides as a person would. `machine vs blind human` compares the machine's decision
with the award rule applied to blind human levels (blind first rater, else blind second, else blind
audit) on the submissions where every criterion has one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from eval.decisions import decision_agreement
from rubrics.schema import parse_rubric
from scoring.store import HumanScoreIn, MachineScoreIn, Store
from scoring.store.decisions import decision_in

RUBRIC = {"id": "award", "version": 1, "title": "Award", "evidence": ["text"],
          "criteria": [{"id": c, "title": c, "scale": {"min": 0, "max": 2}} for c in ("a", "b")],
          "award": {"min_total": 3, "floor": 1, "description": "a and b add up to 3 or more, neither at 0"}}
AT = datetime(2026, 5, 1, tzinfo=UTC)


def test_the_machines_decision_is_compared_with_blind_human_levels(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'd.db'}")
    rub = parse_rubric(RUBRIC)
    store.register_rubric(rub)
    subs = store.add_submissions("award", 1, [(f"s{i}", {"text": "t"}, {}) for i in range(40)])
    ms, hs = [], []
    for i, s in enumerate(subs):
        levels = {"a": 2, "b": 1 + i % 2}  # earned (3 or 4)
        ms += [MachineScoreIn(s.id, c, v, None, None, "audit" if i < 20 else "auto", "r", "m-1", "p", AT)
               for c, v in levels.items()]
        if i < 20:  # blind audits of both criteria; on 5 of them the person would not award
            human = {"a": 1, "b": 1} if i < 5 else levels
            hs += [HumanScoreIn(s.id, c, v, "cy", "audit", True, "", AT) for c, v in human.items()]
        with store.write() as tx:  # the machine's decision, and a final one on the auto-accepted levels
            decision_in(tx, s.id, "award", 1, "earned", "machine", levels, model_version="m-1")
            decision_in(tx, s.id, "award", 1, "earned", "final", levels, model_version="m-1")
    store.record_machine_scores(ms)
    store.record_human_scores(hs)
    rows = decision_agreement(store).set_index("pair")
    store.close()
    assert rows.loc["machine vs final", "agreement"] == 1.0  # the machine agrees with itself
    blind = rows.loc["machine vs blind human"]
    assert blind["n"] == 20 and blind["agreement"] == 0.75 and blind["false_award_rate"] == 0.25
