"""From criterion scores to a credential decision: the award rule, its probability, when it is automatic,
and how it is recorded (machine decision with the scores; final decision once people have scored)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from routing_fakes import RUBRIC, synthetic

from models.artifact import ScoringModel
from rubrics.schema import RubricError, parse_rubric
from scoring.credential import decide, p_earned
from scoring.store import Store, queue
from scoring.usecases import assessment, intake


def rubric_with(award: dict[str, Any]) -> Any:
    return parse_rubric({**RUBRIC, "award": award})


@pytest.mark.parametrize("award", [
    {"min_level": 3},
    {"min_level": {"quality": 2}},
    {"min_total": 5, "floor": 1},
    {"min_level": {"style": 2}, "min_total": 6, "total_of": ["quality", "style"]},
])
def test_p_earned_matches_simulation_of_independent_criteria(award: dict[str, Any]) -> None:
    rubric = rubric_with(award)
    rng = np.random.default_rng(7)
    levels = [0, 1, 2, 3, 4]
    for _ in range(5):
        probs = {c.id: dict(zip(levels, rng.dirichlet(np.ones(5)), strict=True)) for c in rubric.criteria}
        draws = {c: rng.choice(levels, size=40_000, p=list(p.values())) for c, p in probs.items()}
        hits = np.mean([rubric.award.earned(rubric, {c: int(draws[c][i]) for c in draws}) for i in range(40_000)])
        assert p_earned(rubric.award, rubric, probs) == pytest.approx(hits, abs=0.01)


@pytest.mark.parametrize("award, says", [
    ({}, "give min_level"),
    ({"min_level": {"qualty": 2}}, "names criterion 'qualty'"),
    ({"min_level": 7}, "level 7 is not on the scale"),
    ({"min_total": 9}, "must lie above 0 and at most 8"),
    ({"floor": 1, "min_level": 1}, "floor only applies with min_total"),
])
def test_a_bad_award_rule_is_refused_naming_the_field(award: dict[str, Any], says: str) -> None:
    with pytest.raises(RubricError, match="award") as e:
        parse_rubric({**RUBRIC, "award": award}, "r.yaml")
    assert says in str(e.value)


def test_a_decision_is_automatic_only_when_every_criterion_was_accepted_and_it_is_sure_enough() -> None:
    rubric = rubric_with({"min_level": 3})
    sure = {"quality": {2: 0.02, 3: 0.9, 4: 0.08}, "style": {3: 0.5, 4: 0.5}}
    auto = {"quality": "auto", "style": "audit"}
    d = decide(rubric, {"quality": 3, "style": 4}, sure, auto, 0.9)
    assert (d.outcome, d.levels_outcome) == ("earned", "earned") and d.confidence == pytest.approx(0.98)
    close = {"quality": {2: 0.3, 3: 0.7}, "style": {4: 1.0}}
    d = decide(rubric, {"quality": 3, "style": 4}, close, auto, 0.9)
    assert d.outcome == "needs_human" and d.deciding == ["quality"] and "borderline" in d.reason
    d = decide(rubric, {"quality": 1, "style": 4}, {"quality": {1: 1.0}, "style": {4: 1.0}},
               {"quality": "human", "style": "auto"}, 0.9)
    assert d.outcome == "needs_human" and d.levels_outcome == "not_yet" and not d.deciding
    assert decide(rubric, {"quality": 4, "style": 4}, sure, None, None).outcome == "needs_human"  # no policy


@pytest.fixture
def award_model(calibrated: tuple[ScoringModel, Any]) -> tuple[ScoringModel, Any]:
    model, policy = calibrated
    rubric = rubric_with({"min_level": {"quality": 3}})
    return ScoringModel(rubric=rubric, scorers=model.scorers, encoder=model.encoder, version=model.version,
                        card={}), policy


def test_decisions_are_recorded_with_the_scores_and_borderline_ones_go_to_a_person(tmp_path: Path, award_model) -> None:  # type: ignore[no-untyped-def]
    model, policy = award_model
    store = Store(f"sqlite:///{tmp_path / 'd.db'}")
    store.register_rubric(model.rubric)
    d = synthetic(120, seed=9)
    outs = [intake.submit(store, model, "issuer-a", intake.NewSubmission(i, {"essay": t}), policy=policy)
            for i, t in zip(d["ids"], d["texts"], strict=True)]
    recorded = {x.submission_id: x for x in store.decisions()}
    assert len(recorded) == 120 and all(x.basis == "machine" for x in recorded.values())
    outcomes = {x.outcome for x in recorded.values()}
    assert {"earned", "not_yet", "needs_human"} <= outcomes
    for o in outs:
        dec = o.scored.decision  # type: ignore[union-attr]
        routes = {c: r.extra["route"] for c, r in o.scored.criteria.items()}  # type: ignore[union-attr]
        if dec.outcome in ("earned", "not_yet"):
            assert all(r in ("auto", "audit") for r in routes.values()) and dec.confidence >= 0.9
        for c in dec.deciding:  # a borderline decision's deciding criterion waits in the queue for a person
            assert routes[c] == "human" and o.scored.criteria[c].extra["rule"] == "decision_borderline"  # type: ignore[union-attr]
            assert any(c in q.criteria for q in o.slots)
    assert store.verify_audit().ok
    assert sum(e.event == "credential_decision" for e in store.audit_entries()) == 120
    store.close()


def _intake_store(path: Path, model, policy, *, n: int, seed: int) -> Store:  # type: ignore[no-untyped-def]
    """A store where ``n`` synthetic essays came in through intake under ``policy``."""
    store = Store(f"sqlite:///{path}")
    store.register_rubric(model.rubric)
    d = synthetic(n, seed=seed)
    for i, t in zip(d["ids"], d["texts"], strict=True):
        intake.submit(store, model, "issuer-a", intake.NewSubmission(i, {"essay": t}), policy=policy)
    return store


def test_the_final_decision_follows_the_human_scores_once_every_criterion_is_resolved(tmp_path: Path, award_model) -> None:  # type: ignore[no-untyped-def]
    model, policy = award_model
    no_sampling = policy.model_copy(update={"double_rate": 0.0, "audit_rate": 0.0})
    store = _intake_store(tmp_path / "f.db", model, no_sampling, n=60, seed=2)
    waiting = [x for x in store.decisions() if x.outcome == "needs_human"]
    assert waiting
    item = queue.claim(store, "ann", 600)
    assert item is not None
    before = len(store.decisions(submission_id=item.submission_id, basis="final"))
    assessment.submit_item(store, no_sampling, item.id, "ann", item.lease_token,  # type: ignore[arg-type]
                           {c: (4, "clear evidence") for c in item.criteria})
    final = store.decisions(submission_id=item.submission_id, basis="final")
    assert len(final) == before + 1 and final[-1].outcome == "earned" and final[-1].levels["quality"] == 4
    assert store.latest_decision(item.submission_id) == final[-1]
    assert store.verify_audit().ok
    store.close()


def test_a_resubmission_names_an_earlier_submission_of_the_same_issuer_and_the_report_counts_it(tmp_path: Path, award_model) -> None:  # type: ignore[no-untyped-def]
    from eval.decisions import decision_summary
    from scoring.errors import InvalidRequest

    model, policy = award_model
    store = _intake_store(tmp_path / "r.db", model, policy, n=30, seed=9)
    first = next(store.submission(sid).external_id for sid, x in store.latest_decisions().items()
                 if x.outcome == "not_yet")
    d = synthetic(3, seed=4)
    again = intake.NewSubmission("a-2", {"essay": d["texts"][1]}, {"revises": first})
    assert intake.submit(store, model, "issuer-a", again, policy=policy).created
    for who, prev in (("issuer-a", "nope"), ("issuer-b", first)):
        with pytest.raises(InvalidRequest, match="which you have not submitted"):
            intake.submit(store, model, who, intake.NewSubmission(f"x-{who}", {"essay": d["texts"][2]},
                                                                  {"revises": prev}), policy=policy)
    row = decision_summary(store).iloc[0]
    assert (row["submissions_decided"], row["resubmissions"]) == (31, 1)
    store.close()


def test_a_resubmission_revises_the_latest_attempt_and_only_one_whose_decision_is_not_yet(tmp_path: Path, award_model) -> None:  # type: ignore[no-untyped-def]
    """Two open attempts of one educator could both be awarded, and a fork makes the history ambiguous: a
    resubmission names the chain's latest attempt, decided "not yet"; refused rows record nothing."""
    from scoring.errors import DuplicateSubmission, InvalidRequest
    from scoring.prescore import prescore

    model, policy = award_model
    store = _intake_store(tmp_path / "c.db", model, policy, n=40, seed=9)
    by: dict[str, list[str]] = {}
    for sid, x in sorted(store.latest_decisions().items()):
        by.setdefault(x.outcome, []).append(store.submission(sid).external_id)
    texts = synthetic(4, seed=21)["texts"]

    def resubmit(ext: str, prev: str, text: str) -> intake.Outcome:
        return intake.submit(store, model, "issuer-a", intake.NewSubmission(ext, {"essay": text}, {"revises": prev}),
                             policy=policy)

    with pytest.raises(DuplicateSubmission, match=f"a resubmission after 'not yet' goes under a new id naming "
                       f"'{by['not_yet'][0]}' in revises"):  # the same id with the improved text: say how instead
        intake.submit(store, model, "issuer-a", intake.NewSubmission(by["not_yet"][0], {"essay": texts[0]}),
                      policy=policy)
    for outcome, says in (("earned", "which earned the credential"), ("needs_human", "which has no decision yet")):
        with pytest.raises(InvalidRequest, match=says):
            resubmit(f"r-{outcome}", by[outcome][0], texts[0])
    first = by["not_yet"][0]
    assert resubmit("r-1", first, texts[0]).created
    assert not resubmit("r-1", first, texts[0]).created  # a resend is answered as it was recorded
    with pytest.raises(InvalidRequest, match="already resubmitted; a resubmission revises the latest attempt: name 'r-1'"):
        resubmit("r-fork", first, texts[1])
    # a backlog whose two rows revise one attempt: the first is recorded, the second refused
    other = by["not_yet"][1]
    subs = [intake.NewSubmission(f"b-{k}", {"essay": texts[2 + k]}, {"revises": other}) for k in range(2)]
    items = prescore(model, [x.external_id for x in subs], [dict(x.evidence) for x in subs])
    got = intake.record_scored(store, model, "issuer-a", subs, items, intake.route(model, policy, store, items))
    assert got[0].created and "name 'b-0'" in str(got[1].error)
    stored = {store.submission(sid).external_id for sid in store.latest_decisions()}
    assert {"r-1", "b-0"} <= stored and not stored & {"r-earned", "r-needs_human", "r-fork", "b-1"}
    assert store.verify_audit().ok
    store.close()


def test_decision_agreement_matches_sklearn_on_rater_decisions(tmp_path: Path) -> None:
    from sklearn.metrics import cohen_kappa_score

    from eval.decisions import decision_agreement
    from rubrics import load_rubric
    from rubrics.schema import BUNDLED_DIR
    from scoring.store import HumanScoreIn

    rubric = load_rubric(BUNDLED_DIR / "checking-for-understanding.yaml")
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.register_rubric(rubric)
    rng = np.random.default_rng(3)
    subs = store.add_submissions(rubric.id, rubric.version, [(f"s{i}", {"reflection": "x"}, {}) for i in range(80)])
    scores, r1, r2 = [], [], []
    for s in subs:
        a = {c.id: int(rng.integers(0, 3)) for c in rubric.criteria}
        b = {c: int(np.clip(v + rng.choice([-1, 0, 0, 0, 1]), 0, 2)) for c, v in a.items()}
        for c in a:
            scores += [HumanScoreIn(s.id, c, a[c], "ann", "first"), HumanScoreIn(s.id, c, b[c], "bob", "second")]
        r1.append("earned" if rubric.award.earned(rubric, a) else "not_yet")  # type: ignore[union-attr]
        r2.append("earned" if rubric.award.earned(rubric, b) else "not_yet")  # type: ignore[union-attr]
    store.record_human_scores(scores)
    row = decision_agreement(store).query("pair == 'human-human'").iloc[0]
    assert row["n"] == 80 and row["kappa"] == pytest.approx(cohen_kappa_score(r1, r2), abs=1e-12)
    assert row["agreement"] == pytest.approx(np.mean(np.array(r1) == np.array(r2)))
    assert row["false_award_rate"] == pytest.approx(np.mean([(b == "earned") & (a == "not_yet") for a, b in zip(r1, r2, strict=True)]))
    store.close()


def test_a_double_scored_criterion_is_decided_only_once_both_blind_raters_have_scored(tmp_path: Path, award_model) -> None:  # type: ignore[no-untyped-def]
    """The first rating of a double-scored criterion does not decide the credential: the second rater may
    disagree beyond the gap, and a credential signed (or "not yet" released) on the first alone would stand."""
    model, policy = award_model
    everything_double = policy.model_copy(update={"double_rate": 1.0, "audit_rate": 0.0})
    store = _intake_store(tmp_path / "dbl.db", model, everything_double, n=4, seed=5)
    first = queue.claim(store, "ann", 600)
    assert first is not None and first.kind == "first"
    assessment.submit_item(store, everything_double, first.id, "ann", first.lease_token,  # type: ignore[arg-type]
                           {c: (4, "clear evidence") for c in first.criteria})
    sid = first.submission_id
    assert store.decisions(submission_id=sid, basis="final") == []  # the second blind rating is still to come
    second = queue.claim(store, "bob", 600, item_id=next(
        q.id for q in queue.items_for_submission(store, sid) if q.kind == "second"))
    assert second is not None
    assessment.submit_item(store, everything_double, second.id, "bob", second.lease_token,  # type: ignore[arg-type]
                           {c: (0, "no evidence") for c in second.criteria})
    assert store.decisions(submission_id=sid, basis="final") == []  # 4 vs 0: waits for adjudication

    other = queue.claim(store, "ann", 600)  # another submission: both raters agree within the gap
    assert other is not None and other.kind == "first" and other.submission_id != sid
    assessment.submit_item(store, everything_double, other.id, "ann", other.lease_token,  # type: ignore[arg-type]
                           {c: (4, "clear evidence") for c in other.criteria})
    assert store.decisions(submission_id=other.submission_id, basis="final") == []
    paired = queue.claim(store, "bob", 600, item_id=next(
        q.id for q in queue.items_for_submission(store, other.submission_id) if q.kind == "second"))
    assert paired is not None
    assessment.submit_item(store, everything_double, paired.id, "bob", paired.lease_token,  # type: ignore[arg-type]
                           {c: (3, "good evidence") for c in paired.criteria})
    final = store.decisions(submission_id=other.submission_id, basis="final")
    assert len(final) == 1 and final[0].outcome == "earned" and final[0].levels["quality"] == 4  # the first rating
    store.close()
