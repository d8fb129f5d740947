"""GET /agreement and GET /exports/scores take the report's window (`since`, `until`): a researcher's March
over the API is the March of `scoring report --since --until`. The export carries the blind flags, so the
report's human-human pairs (both raters blind) can be rebuilt from it alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api_support import expect_problem

from eval.agreement import human_machine_table, load_frames
from rubrics.schema import parse_rubric
from scoring.store import HumanScoreIn, MachineScoreIn

RUBRIC = {"id": "win", "version": 1, "title": "Window", "evidence": ["text"],
          "criteria": [{"id": "c", "title": "C", "scale": {"min": 0, "max": 4}}]}
MARCH, APRIL = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)


def _fill(store) -> None:  # type: ignore[no-untyped-def]
    """30 items machine-scored in February, 30 in March; each rated blind by ann, half of them by bob too
    (blind), and 5 March items first-rated by cy with the machine's level in view."""
    store.register_rubric(parse_rubric(RUBRIC))
    subs = store.add_submissions("win", 1, [(f"s{i}", {"text": f"t{i}"}, {}) for i in range(60)])
    ms, hs = [], []
    for i, s in enumerate(subs):
        at = datetime(2026, 2 if i < 30 else 3, 10, tzinfo=UTC) + timedelta(minutes=i)
        ms.append(MachineScoreIn(s.id, "c", i % 5, None, None, "human", "r", "m-1", "p-1", at))
        if i >= 55:
            hs.append(HumanScoreIn(s.id, "c", i % 5, "cy", "first", False, "", at + timedelta(days=1)))
            continue
        hs.append(HumanScoreIn(s.id, "c", (i + (i % 3 == 0)) % 5, "ann", "first", True, "", at + timedelta(days=1)))
        if i % 2:
            hs.append(HumanScoreIn(s.id, "c", i % 5, "bob", "second", True, "", at + timedelta(days=2)))
    store.record_machine_scores(ms)
    store.record_human_scores(hs)


def test_the_agreement_of_a_window_is_the_reports_for_that_window(api) -> None:  # type: ignore[no-untyped-def]
    _fill(api.store)
    q = {"rubric_id": "win", "since": "2026-03-01", "until": "2026-04-01T00:00:00Z"}
    got = api.client.get("/agreement", params=q, headers=api.h("researcher"))
    assert got.status_code == 200, got.text
    march = human_machine_table(load_frames(api.store, rubric_id="win", since=MARCH, until=APRIL))
    (row,) = got.json()["human_machine"]
    assert row["n"] == int(march["n"].iloc[0]) == 25  # March's 30, less the 5 first rated with the machine in view
    assert row["qwk"] == float(march["qwk"].iloc[0])
    whole = api.client.get("/agreement", params={"rubric_id": "win"}, headers=api.h("researcher")).json()
    assert whole["human_machine"][0]["n"] == 55
    assert {r["n"] for r in got.json()["human_human"]} == {12}  # bob's March pairs (odd i in 30..54)


def test_a_window_that_ends_before_it_starts_is_refused(api) -> None:  # type: ignore[no-untyped-def]
    for path in ("/agreement", "/exports/scores"):
        p = expect_problem(api.client.get(path, params={"since": "2026-04-01", "until": "2026-03-01"},
                                          headers=api.h("researcher")), 422, "invalid_request")
        assert "must be after since" in p["detail"]


def test_the_export_rebuilds_the_reports_human_human_pairs(api) -> None:  # type: ignore[no-untyped-def]
    _fill(api.store)
    rows = api.client.get("/exports/scores", params={"rubric_id": "win"}, headers=api.h("researcher")).json()
    assert len(rows) == 60
    pairs = [r for r in rows if r["h1"] is not None and r["h2"] is not None and r["h1_blind"] and r["h2_blind"]]
    hh = api.client.get("/agreement", params={"rubric_id": "win"}, headers=api.h("researcher")).json()["human_human"]
    assert len(pairs) == sum(r["n"] for r in hh) == 27
    assert sum(1 for r in rows if r["h1_blind"] is False) == 5
    march = api.client.get("/exports/scores", params={"rubric_id": "win", "since": "2026-03-01"},
                           headers=api.h("researcher")).json()
    assert len(march) == 30


def test_a_window_bound_that_is_not_an_iso_time_is_refused_not_read_as_a_unix_time(api) -> None:  # type: ignore[no-untyped-def]
    for bad in ("0.5", "03/01/2026"):
        r = api.client.get("/agreement", params={"until": bad}, headers=api.h("researcher"))
        assert r.status_code == 422, r.text
    p = expect_problem(api.client.get("/agreement", params={"since": "2026-02-30"}, headers=api.h("researcher")),
                       422, "invalid_request")
    assert "since '2026-02-30' is not a time" in p["detail"]
