"""A gate says why it cannot judge in the researcher's terms: a QWK that is undefined because every score is
one level reads "QWK undefined (one level only)", never Python's None, and is never a pass; a missing
human-human reference gives its true cause (undefined on the blind pairs, too few blind pairs, or only pairs
that were not blind), never blames pairs that were not blind when blind ones exist. `scoring drift check`
prints an undefined figure as `n/a`, as the report does, not `nan`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from eval.gates import evaluate_gates, load_policy
from rubrics.schema import parse_rubric
from scoring.cli import app
from scoring.store import HumanScoreIn, MachineScoreIn, Store

NAN = float("nan")


def test_an_undefined_qwk_reads_undefined_one_level_only_and_is_not_a_pass() -> None:
    res = evaluate_gates({"n": 83, "qwk": NAN, "smd": NAN}, load_policy())
    assert res.status == "insufficient"
    assert "QWK undefined (human and machine gave one level only)" in res.summary()
    assert "SMD undefined" in res.summary() and "None" not in res.summary() and "nan" not in res.summary()


def test_a_reference_undefined_on_enough_blind_pairs_is_said_so_not_blamed_on_pairs_that_were_not_blind() -> None:
    res = evaluate_gates({"n": 83, "qwk": NAN, "smd": NAN}, load_policy(), human_human_qwk=None,
                         hh_n_not_blind=30, hh_n=83)
    text = res.summary()
    assert "no human-human reference (human-human QWK undefined on 83 blind pairs: both raters gave one level " \
           "only)" in text, text
    assert "not blind" not in text


def test_an_undefined_reference_alone_does_not_hold_back_a_machine_that_meets_every_threshold() -> None:
    res = evaluate_gates({"n": 100, "qwk": 0.9, "smd": 0.0}, load_policy(), human_human_qwk=NAN,
                         hh_n_not_blind=30, hh_n=83)
    assert res.status == "pass", res.summary()


@pytest.mark.parametrize(("hh_n", "said"), [
    (0, "no human-human reference (30 pairs were not blind)"),
    (10, "no human-human reference (only 10 blind pairs, the reference needs 50; 30 pairs were not blind)"),
])
def test_a_reference_missing_for_want_of_blind_pairs_says_how_many_there_are(hh_n: int, said: str) -> None:
    res = evaluate_gates({"n": 100, "qwk": 0.9, "smd": 0.0}, load_policy(), hh_n_not_blind=30, hh_n=hh_n)
    assert res.status == "insufficient" and said in res.summary(), res.summary()


RUBRIC = parse_rubric({"id": "flat", "version": 1, "title": "Flat", "evidence": ["text"],
                       "criteria": [{"id": "q", "title": "Q", "scale": {"min": 0, "max": 2}}]})


@pytest.fixture
def flat_store(tmp_path: Path) -> str:
    """Every score is level 1: 83 blind first/second pairs, 30 pairs not blind, and 113 machine scores each
    audited blind."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store(url) as st:
        st.register_rubric(RUBRIC)
        subs = st.add_submissions("flat", 1, [(f"x{i}", {"text": f"t{i}"}, {}) for i in range(113)])
        st.record_machine_scores([MachineScoreIn(
            s.id, "q", 1, probabilities={"0": 0.1, "1": 0.8, "2": 0.1}, prediction_set=[1], route="auto",
            reason="", model_version="m", policy_version="p") for s in subs])
        st.record_human_scores(
            [HumanScoreIn(s.id, "q", 1, "a1", "first", i < 83, "") for i, s in enumerate(subs)]
            + [HumanScoreIn(s.id, "q", 1, "a2", "second", True, "") for s in subs]
            + [HumanScoreIn(s.id, "q", 1, "a3", "audit", True, "") for s in subs])
    return url


def test_the_report_gate_detail_of_a_one_level_criterion_names_both_undefined_figures(
        tmp_path: Path, flat_store: str) -> None:
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "rep"), "--db", flat_store, "--bootstrap", "0"])
    assert r.exit_code == 0, r.output
    detail = pd.read_csv(tmp_path / "rep" / "human_machine.csv")["gate_detail"].iloc[0]
    assert detail.startswith("insufficient: QWK undefined (human and machine gave one level only)"), detail
    assert "human-human QWK undefined on 83 blind pairs" in detail and "None" not in detail
    assert "pairs were not blind" not in detail


def test_drift_check_prints_an_undefined_qwk_and_smd_as_n_a(flat_store: str) -> None:
    r = CliRunner().invoke(app, ["drift", "check", "--rubric", "flat", "--dry-run", "--db", flat_store])
    assert r.exit_code == 0, r.output
    assert "QWK=n/a SMD=n/a -> insufficient: QWK undefined" in r.output, r.output
    assert "nan" not in r.output.split("\n")[0]
