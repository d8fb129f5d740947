"""The store's contract: what it accepts, what it refuses (with which error), and what it returns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scoring.errors import (
    AlreadyAdjudicated,
    Conflict,
    DuplicateSubmission,
    InvalidScoreKind,
    NotFound,
    RubricImmutable,
    ScoreOutOfScale,
    ScoringError,
)
from scoring.store import HumanScoreIn, Store


def test_opening_a_store_migrates_it_to_head_and_reopening_is_harmless(store_url: str) -> None:
    a = Store(store_url)
    a.close()
    b = Store(store_url)  # second open: upgrade to head is a no-op, data intact
    from alembic.script import ScriptDirectory

    from scoring.store.store import MIGRATIONS_DIR, schema_revision

    # the newest shipped migration (issue #4 added 0002_api after 0001), not a hard-coded id
    assert schema_revision(b.engine) == ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    b.close()


def test_registering_the_same_rubric_twice_is_idempotent(store: Store, make_rubric) -> None:
    r = make_rubric()
    first = store.register_rubric(r)
    again = store.register_rubric(r)
    assert first.fingerprint == again.fingerprint == r.fingerprint()
    assert store.rubric("obs", 1) == r
    assert [x.key for x in store.rubrics()] == ["obs@1"]


def test_changed_rubric_under_the_same_version_is_refused(store: Store, make_rubric) -> None:
    store.register_rubric(make_rubric())
    with pytest.raises(RubricImmutable) as exc:
        store.register_rubric(make_rubric(title="Observation, reworded"))
    assert "bump `version`" in str(exc.value)
    assert exc.value.code == "rubric_immutable" and isinstance(exc.value, ScoringError)
    store.register_rubric(make_rubric(version=2, title="Observation, reworded"))  # a new version is fine
    assert store.rubric("obs").version == 2


def test_duplicate_submission_is_idempotent_but_changed_content_is_refused(store: Store, rubric) -> None:
    a = store.add_submission("obs", 1, "ext-1", {"text": "lesson plan"}, {"school": "A"})
    b = store.add_submission("obs", 1, "ext-1", {"text": "lesson plan"}, {"school": "A"})
    assert a.id == b.id and a.content_hash == b.content_hash
    with pytest.raises(DuplicateSubmission) as exc:
        store.add_submission("obs", 1, "ext-1", {"text": "another plan"}, {"school": "A"})
    assert isinstance(exc.value, Conflict)
    assert len(store.submissions("obs")) == 1


def test_submission_for_an_unregistered_rubric_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.add_submission("nope", 1, "x", {"text": "t"})


def test_human_score_outside_the_rubric_scale_is_refused(store: Store, rubric) -> None:
    sub = store.add_submission("obs", 1, "s1", {"text": "t"})
    with pytest.raises(ScoreOutOfScale) as exc:
        store.record_human_score(sub.id, "questioning", 4, assessor="ann")
    assert "expected one of [0, 1, 2, 3]" in str(exc.value)
    with pytest.raises(NotFound):
        store.record_human_score(sub.id, "no_such_criterion", 1, assessor="ann")
    with pytest.raises(InvalidScoreKind):
        store.record_human_score(sub.id, "questioning", 1, assessor="ann", kind="third")
    assert store.human_scores() == []


def test_machine_score_keeps_probabilities_prediction_set_and_provenance(store: Store, rubric) -> None:
    sub = store.add_submission("obs", 1, "s1", {"text": "t"})
    m = store.record_machine_score(
        sub.id, "feedback", 2, probabilities=[0.1, 0.2, 0.6, 0.1], prediction_set=[2, 3], route="auto",
        reason="confident", model_version="m-1", policy_version="p-1",
    )
    assert m.probabilities == {"0": 0.1, "1": 0.2, "2": 0.6, "3": 0.1}
    assert (m.prediction_set, m.route, m.model_version, m.rubric_id, m.rubric_version) == ([2, 3], "auto", "m-1", "obs", 1)
    with pytest.raises(ScoreOutOfScale):
        store.record_machine_score(sub.id, "feedback", 9)
    with pytest.raises(ScoreOutOfScale):
        store.record_machine_score(sub.id, "feedback", 1, probabilities=[0.5, 0.5])
    assert [x.id for x in store.machine_scores(criterion="feedback")] == [m.id]


def test_score_queries_filter_by_time_window(store: Store, rubric) -> None:
    sub = store.add_submission("obs", 1, "s1", {"text": "t"})
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for d in range(5):
        store.record_human_score(sub.id, "questioning", d % 4, assessor=f"rater-{d}", created_at=t0 + timedelta(days=d))
    got = store.human_scores(since=t0 + timedelta(days=1), until=t0 + timedelta(days=3))
    assert [h.created_at for h in got] == [t0 + timedelta(days=1), t0 + timedelta(days=2)]


def test_one_person_rates_a_submissions_criterion_once(store: Store, rubric) -> None:
    from scoring.errors import SameRater

    sub = store.add_submission("obs", 1, "s1", {"text": "t"})
    store.record_human_score(sub.id, "questioning", 1, assessor="ann", kind="first")
    before = len(list(store.audit_entries()))
    for kind in ("second", "audit", "first"):
        with pytest.raises(SameRater, match="different person"):
            store.record_human_score(sub.id, "questioning", 2, assessor="ann", kind=kind)
    with pytest.raises(SameRater):  # within one batch too
        store.record_human_scores([HumanScoreIn(sub.id, "feedback", 1, "bob"), HumanScoreIn(sub.id, "feedback", 2, "bob", "second")])
    assert len(list(store.audit_entries())) == before  # nothing of a refused batch was written
    store.record_human_score(sub.id, "questioning", 3, assessor="bob", kind="second")  # another person may
    store.record_human_score(sub.id, "feedback", 2, assessor="ann", kind="first")  # and ann another criterion


def test_a_second_rating_by_the_same_person_is_refused_naming_the_submission_as_the_issuer_knows_it(
        store: Store, rubric) -> None:
    """The refusal reaches an importer's terminal and the API's 409: it names the issuer's id ('essay-17'),
    not the store's row number, which nobody outside the database knows."""
    from scoring.errors import SameRater

    sub = store.add_submission("obs", 1, "essay-17", {"text": "t"})
    store.record_human_score(sub.id, "questioning", 1, assessor="ann", kind="first")
    with pytest.raises(SameRater, match="'ann' already rated submission 'essay-17' on 'questioning'"):
        store.record_human_score(sub.id, "questioning", 2, assessor="ann", kind="second")
    with pytest.raises(SameRater, match="'ann' already rated submission 'essay-17' as its first rater"):
        store.record_human_score(sub.id, "feedback", 2, assessor="ann", kind="audit")


def test_adjudication_is_recorded_against_the_scores_it_resolves(store: Store, rubric) -> None:
    sub = store.add_submission("obs", 1, "s1", {"text": "t"})
    h1 = store.record_human_score(sub.id, "questioning", 1, assessor="ann", kind="first")
    h2 = store.record_human_score(sub.id, "questioning", 3, assessor="bob", kind="second")
    adj = store.record_adjudication(sub.id, "questioning", 2, adjudicator="cat", human_score_ids=[h1.id, h2.id])
    assert store.adjudications(submission_id=sub.id) == [adj]
    assert adj.human_score_ids == [h1.id, h2.id]


def test_a_second_resolved_score_for_the_same_pair_is_refused_and_nothing_is_written(store: Store, rubric) -> None:
    sub = store.add_submission("obs", 1, "s1", {"text": "t"})
    first = store.record_adjudication(sub.id, "questioning", 2, adjudicator="cat")
    entries = len(list(store.audit_entries()))
    with pytest.raises(AlreadyAdjudicated, match=r"already resolved to 2 by 'cat' \(adjudication \d+\)"):
        store.record_adjudication(sub.id, "questioning", 3, adjudicator="dan")
    assert store.adjudications(submission_id=sub.id) == [first]
    assert len(list(store.audit_entries())) == entries  # the refused write left no audit entry either
    store.record_adjudication(sub.id, "feedback", 1, adjudicator="dan")  # another criterion is its own pair


def test_promoting_a_model_lifts_suspensions_of_its_rubric_only(store: Store, rubric, make_rubric) -> None:
    store.register_rubric(make_rubric("other"))
    store.suspend_automation("obs", "questioning", "QWK below gate")
    store.suspend_automation("other", "feedback", "SMD above gate")
    again = store.suspend_automation("obs", "questioning", "still failing")  # idempotent
    assert again.reason == "QWK below gate"
    assert store.is_suspended("obs", "questioning") and not store.is_suspended("obs", "feedback")
    store.register_model("m-1", "/models/m-1", rubric_id="obs", card={"qwk": 0.8})
    store.register_model("m-2", "/models/m-2", rubric_id="obs")
    store.promote_model("m-1")
    assert not store.is_suspended("obs", "questioning")
    assert store.is_suspended("other", "feedback")
    store.promote_model("m-2")
    assert store.promoted_model("obs").version == "m-2"
    assert store.model("m-1").status == "retired"
    with pytest.raises(Conflict):
        store.register_model("m-1", "/elsewhere", rubric_id="obs")
    with pytest.raises(NotFound):
        store.promote_model("m-404")
    events = [e.event for e in store.audit_entries()]
    assert events.count("automation_suspended") == 2 and events.count("automation_resumed") == 1
    assert events.count("model_promoted") == 2


def test_bulk_machine_scores_are_all_or_nothing(store: Store, rubric) -> None:
    from scoring.store import MachineScoreIn

    subs = store.add_submissions("obs", 1, [(f"s{i}", {"text": str(i)}, {}) for i in range(3)])
    good = [MachineScoreIn(s.id, "questioning", 1, model_version="m") for s in subs]
    with pytest.raises(ScoreOutOfScale):
        store.record_machine_scores([*good, MachineScoreIn(subs[0].id, "questioning", 7)])
    assert store.machine_scores() == [] and store.verify_audit().entries_checked == 1  # only the rubric
    ids = store.record_machine_scores(good)
    assert [m.id for m in store.machine_scores(model_version="m")] == ids


@pytest.mark.parametrize(("url", "said"), [
    ("scores.db", "is not a database URL"),  # a file name where a URL belongs
    ("postgres://postgres@127.0.0.1:5432/test", "no database driver for 'postgres'"),  # the Heroku spelling
    ("mysql://user@host/db", "no database driver for 'mysql'"),
])
def test_a_store_url_the_store_cannot_use_is_refused_with_the_urls_it_takes(url: str, said: str) -> None:
    """`--store` / SCORING_DATABASE_URL mistakes are named in the user's terms, with the two spellings that
    work, instead of SQLAlchemy's 'Can't load plugin: sqlalchemy.dialects:postgres'."""
    from scoring.errors import StoreUrlError

    with pytest.raises(StoreUrlError, match=said) as err:
        Store(url)
    assert "sqlite:///" in str(err.value) and "postgresql+psycopg://" in str(err.value)
