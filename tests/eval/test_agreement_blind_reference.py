"""The machine is compared only with human scores given without seeing it.

On `human`-route items the assessor page shows the machine's level and offers to accept it; a first
rating given there is anchored on the machine. Such a rating is no reference for human-machine
agreement (RSMTool and the ETS framework compare the machine with independent human scores): it is left
out of every human-machine figure, counted in `n_not_blind`, and kept, flagged, in items.csv.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sklearn.metrics import cohen_kappa_score

from eval.agreement import human_machine_table, load_frames
from eval.report import build_report
from rubrics.schema import parse_rubric
from scoring.store import HumanScoreIn, MachineScoreIn, Store

RUBRIC = {"id": "blind", "version": 1, "title": "Blind", "evidence": ["text"],
          "criteria": [{"id": "c", "title": "C", "scale": {"min": 0, "max": 4}}]}
AT = datetime(2026, 4, 1, tzinfo=UTC)


def _store(tmp_path: Path) -> tuple[Store, list[int], list[int]]:
    """60 machine-scored items: 30 first-rated by someone who saw the machine (and accepted its level),
    30 first-rated blind (one level off on every third); 10 of the seen ones also have a blind audit."""
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    store.register_rubric(parse_rubric(RUBRIC))
    subs = store.add_submissions("blind", 1, [(f"s{i}", {"text": "t"}, {}) for i in range(60)])
    ms, hs, blind_h, blind_m = [], [], [], []
    for i, s in enumerate(subs):
        mac = i % 5
        ms.append(MachineScoreIn(s.id, "c", mac, None, None, "human", "r", "m-1", "p", AT))
        if i < 30:
            hs.append(HumanScoreIn(s.id, "c", mac, "ann", "first", False, "", AT))  # accepted the suggestion
            if i < 10:
                audit = (mac + 1) % 5
                hs.append(HumanScoreIn(s.id, "c", audit, "cy", "audit", True, "", AT))
                blind_h.append(audit)
                blind_m.append(mac)
        else:
            h = (mac + 1) % 5 if i % 3 == 0 else mac
            hs.append(HumanScoreIn(s.id, "c", h, "bob", "first", True, "", AT))
            blind_h.append(h)
            blind_m.append(mac)
    store.record_machine_scores(ms)
    store.record_human_scores(hs)
    return store, blind_h, blind_m


def test_a_first_rating_given_with_the_machine_in_view_is_no_reference(tmp_path: Path) -> None:
    store, blind_h, blind_m = _store(tmp_path)
    hm = human_machine_table(load_frames(store))
    store.close()
    row = hm.iloc[0]
    assert row["n"] == 40 and row["n_not_blind"] == 20  # 30 blind firsts + 10 audits; 20 seen-only left out
    assert row["qwk"] == cohen_kappa_score(blind_h, blind_m, weights="quadratic", labels=[0, 1, 2, 3, 4])


def test_the_report_counts_and_flags_what_it_left_out(tmp_path: Path) -> None:
    store, _, _ = _store(tmp_path)
    build_report(store, tmp_path / "r", n_boot=0)
    store.close()
    hm = pd.read_csv(tmp_path / "r" / "human_machine.csv")
    assert hm[["n", "n_not_blind"]].values.tolist() == [[40, 20]]
    items = pd.read_csv(tmp_path / "r" / "items.csv")
    assert len(items) == 60 and items["h1_blind"].value_counts().to_dict() == {False: 30, True: 30}


def test_one_rule_picks_the_reference_for_agreement_tables_and_decision_agreement() -> None:
    """Blind first rater, else blind second rater, else the latest blind audit; never a rating given with
    the machine's score in view."""
    from types import SimpleNamespace

    from eval.agreement import blind_reference
    from eval.decisions import blind_levels

    def h(kind: str, score: int, blind: bool = True) -> SimpleNamespace:
        return SimpleNamespace(criterion="c", kind=kind, score=score, blind=blind)

    cases = [([h("audit", 1), h("second", 2), h("first", 3)], 3),
             ([h("first", 3, blind=False), h("second", 2), h("audit", 1)], 2),  # the seen first rating is skipped
             ([h("second", 2), h("audit", 1)], 2),  # the first rater has not scored yet
             ([h("first", 3, blind=False), h("audit", 1), h("audit", 0)], 0),  # the latest blind audit
             ([h("first", 3, blind=False), h("audit", 1, blind=False)], None)]
    for scores, want in cases:
        pick = blind_reference(scores)
        assert (pick.score if pick is not None else None) == want
        assert blind_levels(scores, ["c"]) == (None if want is None else {"c": want})


def test_a_blind_second_rating_is_the_reference_where_the_first_is_missing_or_was_not_blind(tmp_path: Path) -> None:
    """A second rater never sees the machine's score (second slots are always blind): where the first
    rating is missing or was given with the machine in view, the second is the machine's reference."""
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    store.register_rubric(parse_rubric(RUBRIC))
    a, b, c = store.add_submissions("blind", 1, [(f"s{i}", {"text": "t"}, {}) for i in range(3)])
    store.record_machine_scores([MachineScoreIn(s.id, "c", 2, None, None, "double", "r", "m-1", "p", AT)
                                 for s in (a, b, c)])
    store.record_human_scores([HumanScoreIn(a.id, "c", 3, "dee", "second", True, "", AT),  # first not yet scored
                               HumanScoreIn(b.id, "c", 2, "ann", "first", False, "", AT),
                               HumanScoreIn(b.id, "c", 4, "dee", "second", True, "", AT),
                               HumanScoreIn(c.id, "c", 1, "bob", "first", True, "", AT),
                               HumanScoreIn(c.id, "c", 0, "dee", "second", True, "", AT)])
    m = load_frames(store).machines.set_index("external_id")
    store.close()
    assert m["human"].to_dict() == {"s0": 3.0, "s1": 4.0, "s2": 1.0}
    assert m["h1_not_blind"].to_dict() == {"s0": False, "s1": True, "s2": False}
