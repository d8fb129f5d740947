"""Input at the edges of what JSON, URLs and forms can carry: always a specific 4xx, never a 500, nothing stored."""

from __future__ import annotations

import json

import pytest
from api_support import expect_problem, reflection, wait_for_job

RUBRIC = "checking-for-understanding"




def _raw_post(api, path: str, raw_json: str, who: str = "issuer"):  # type: ignore[no-untyped-def]
    """POST a JSON text as written (json= would refuse to encode a lone surrogate)."""
    return api.client.post(path, content=raw_json.encode(), headers={**api.h(who), "Content-Type": "application/json"})


def test_lone_surrogates_anywhere_in_a_body_are_422_naming_where(api) -> None:  # type: ignore[no-untyped-def]
    bodies = {
        "body.evidence.reflection": '{"rubric_id": "%s", "external_id": "s1", "evidence": {"reflection": "ok \\ud800"}}',
        "body.metadata key": '{"rubric_id": "%s", "external_id": "s2", "evidence": {"reflection": "ok"}, "metadata": {"\\udfff": 1}}',
        "body.metadata.tags[1]": '{"rubric_id": "%s", "external_id": "s3", "evidence": {"reflection": "ok"}, "metadata": {"tags": ["a", "\\ud83d"]}}',
    }
    for where, raw in bodies.items():
        p = expect_problem(_raw_post(api, "/submissions", raw % RUBRIC), 422, "validation_error")
        assert where in p["detail"] and "lone surrogate" in p["detail"], p["detail"]
    # a proper surrogate PAIR is an ordinary character (an emoji) and is accepted
    pair = json.dumps({"rubric_id": RUBRIC, "external_id": "s4", "evidence": {"reflection": reflection(1) + " \U0001F600"}})
    assert "\\ud83d\\ude00" in pair  # json.dumps escapes the emoji as a surrogate pair
    ok = _raw_post(api, "/submissions", pair)
    assert ok.status_code == 201, ok.text
    assert [s.external_id for s in api.store.submissions()] == ["s4"]
    rub = '{"id": "mini", "version": 1, "title": "T \\ud800", "evidence": ["text"], "criteria": [{"id": "q", "title": "Q", "scale": {"min": 0, "max": 3}}]}'
    p = expect_problem(_raw_post(api, "/rubrics", rub, who="admin"), 422, "invalid_request")
    assert "body.title" in p["detail"]


def test_nul_characters_are_422_in_bodies_and_urls(api) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps({"rubric_id": RUBRIC, "external_id": "n\u0000", "evidence": {"reflection": "text"}})
    p = expect_problem(_raw_post(api, "/submissions", body), 422, "validation_error")
    assert "NUL" in p["detail"]
    for url in ("/rubrics/a%00b", f"/agreement?rubric_id={RUBRIC}%00", "/submissions/1%00"):
        expect_problem(api.client.get(url, headers=api.h("admin")), 422, "invalid_url")
    assert api.store.submissions() == []


def test_nul_in_a_url_never_reaches_postgresql(api_factory, pg_url) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(url=pg_url)
    expect_problem(api.client.get("/rubrics/a%00b", headers=api.h("admin")), 422, "invalid_url")
    body = json.dumps({"rubric_id": RUBRIC, "external_id": "x", "evidence": {"reflection": "a\u0000b"}})
    expect_problem(_raw_post(api, "/submissions", body), 422, "validation_error")
    assert api.client.get("/rubrics/nope", headers=api.h("admin")).status_code == 404  # the store still answers


def test_evidence_made_only_of_invisible_characters_is_empty(api) -> None:  # type: ignore[no-untyped-def]
    p = expect_problem(api.submit("z-1", "\u200b\u200b\ufeff \u2060"), 422, "invalid_request")
    assert "evidence is empty" in p["detail"]
    assert api.submit("z-2", "\u200b" + reflection(2)).status_code == 201


def test_another_issuers_external_id_is_a_conflict_that_reveals_nothing(api) -> None:  # type: ignore[no-untyped-def]
    text = reflection(5)
    first = api.submit("shared-1", text)
    assert first.status_code == 201
    for other_text in (text, reflection(6)):  # same content or not: the id is taken, nothing is compared
        p = expect_problem(api.submit("shared-1", other_text, who="issuer2"), 409, "external_id_taken")
        assert "another issuer" in p["detail"] and "hash" not in p["detail"]
        assert "criteria" not in p and "submission_id" not in p
    again = api.submit("shared-1", text)  # the owner's resend is still an idempotent 200
    assert again.status_code == 200 and again.json()["submission_id"] == first.json()["submission_id"]
    r = api.client.post("/batch-jobs", headers=api.h("issuer2"),
                        json={"rubric_id": RUBRIC, "submissions": [{"external_id": "shared-1", "evidence": {"reflection": text}}]})
    job = r.json()["id"]
    wait_for_job(api, job, "issuer2")
    res = api.client.get(f"/batch-jobs/{job}/results", headers=api.h("issuer2")).json()
    assert res[0]["submission_id"] is None and res[0]["error"].startswith("external_id_taken")


def test_a_new_rubric_version_without_a_model_does_not_break_submissions_that_name_no_version(api) -> None:  # type: ignore[no-untyped-def]
    first = api.submit("v-1", reflection(7))
    assert first.status_code == 201 and first.json()["rubric_version"] == 2
    body = api.client.get(f"/rubrics/{RUBRIC}", headers=api.h("admin")).json()["body"]
    assert api.client.post("/rubrics", json={**body, "version": 3}, headers=api.h("issuer")).status_code == 201
    again = api.submit("v-1", reflection(7))  # a retry of the same submission
    assert again.status_code == 200 and again.json()["rubric_version"] == 2
    assert api.submit("v-2", reflection(8)).json()["rubric_version"] == 2  # scored by the model that exists
    named = api.client.post("/submissions", headers=api.h("issuer"), json={
        "rubric_id": RUBRIC, "rubric_version": 3, "external_id": "v-3", "evidence": {"reflection": reflection(9)}})
    expect_problem(named, 503, "model_unavailable")  # asking for the new version explicitly still says why


def test_an_unreadable_upload_is_described_by_its_own_name_not_a_server_path(api) -> None:  # type: ignore[no-untyped-def]
    r = api.client.post("/batch-jobs/upload", headers=api.h("issuer"), data={"rubric_id": RUBRIC},
                        files={"file": ("mine.csv", b"ident,reflection\r\nx,hello\r\n", "text/csv")})
    p = expect_problem(r, 422, "invalid_request")
    assert "'mine.csv'" in p["detail"] and "/tmp" not in p["detail"] and "upload.csv" not in p["detail"]
    csv = b"id,reflection\r\nl-1,caf\xe9 au lait\r\nl-2,\"" + reflection(2).encode() + b"\"\r\n"
    r = api.client.post("/batch-jobs/upload", headers=api.h("issuer"), data={"rubric_id": RUBRIC},
                        files={"file": ("latin.csv", csv, "text/csv")})
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    wait_for_job(api, job)
    res = api.client.get(f"/batch-jobs/{job}/results", headers=api.h("issuer")).json()
    bad = [x for x in res if x["error"]]
    assert len(bad) == 1 and "UTF-8" in bad[0]["error"] and "--encoding" not in bad[0]["error"]


@pytest.mark.parametrize("typed", ["²", "--1", "9" * 5000, "٣"])
def test_the_assessor_form_treats_odd_digits_as_a_missing_level(api, typed: str) -> None:  # type: ignore[no-untyped-def]
    from api.deps import COOKIE

    assert api.submit("f-1", reflection(3)).status_code == 201
    view = api.claim("alice").json()
    form = {"lease_token": view["lease_token"]}
    for c in view["criteria"]:
        form[f"score__{c['id']}"] = typed
        form[f"rationale__{c['id']}"] = "read it"
    api.client.cookies.set(COOKIE, api.keys["alice"])
    r = api.client.post(f"/assessor/items/{view['id']}/submit", data=form, follow_redirects=False)
    api.client.cookies.clear()
    assert r.status_code == 422, r.text[:300]
    assert "choose a level" in r.text
    assert api.store.human_scores() == []


def test_an_empty_idempotency_key_and_an_unknown_rubric_in_reports_are_errors(api) -> None:  # type: ignore[no-untyped-def]
    expect_problem(api.submit("e-1", reflection(4), headers={"Idempotency-Key": ""}), 422, "validation_error")
    assert api.store.submissions() == []
    for path in ("/agreement", "/exports/scores"):
        expect_problem(api.client.get(path, params={"rubric_id": "nope"}, headers=api.h("researcher")), 404, "not_found")
        assert api.client.get(path, params={"rubric_id": RUBRIC}, headers=api.h("researcher")).status_code == 200


def test_undecodable_bodies_and_wrong_content_types_say_what_is_wrong(api) -> None:  # type: ignore[no-untyped-def]
    good = json.dumps({"rubric_id": RUBRIC, "external_id": "c-1", "evidence": {"reflection": reflection(1)}}).encode()
    r = api.client.post("/submissions", content=good.replace(b"c-1", b"c-\xff"),
                        headers={**api.h("issuer"), "Content-Type": "application/json"})
    p = expect_problem(r, 400, "malformed_json")
    assert "UTF-8" in p["detail"]
    for ctype in ("text/plain", None):
        headers = {**api.h("issuer"), **({"Content-Type": ctype} if ctype else {})}
        p = expect_problem(api.client.post("/submissions", content=good, headers=headers), 415, "unsupported_media_type")
        assert "application/json" in p["detail"]
    assert api.store.submissions() == []


def test_ownership_is_recorded_when_a_submission_is_stored_not_after_scoring(api) -> None:  # type: ignore[no-untyped-def]
    from scoring.store import jobs

    text = reflection(11)
    # a submission stored without an owner (e.g. by import-scores) and one whose owner was recorded by a
    # concurrent request that has not finished scoring yet
    orphan = api.store.add_submission(RUBRIC, 2, "o-1", {"reflection": text})
    held = api.store.add_submission(RUBRIC, 2, "o-2", {"reflection": text})
    jobs.set_owner(api.store, held.id, "issuer2")
    assert api.submit("o-1", text).status_code == 201  # the first issuer to send it owns it
    assert jobs.owner_of(api.store, orphan.id) == "issuer"
    expect_problem(api.submit("o-1", text, who="issuer2"), 409, "external_id_taken")
    expect_problem(api.submit("o-2", text), 409, "external_id_taken")
    jobs.set_owner(api.store, held.id, "issuer")  # a late writer never takes it over
    assert jobs.owner_of(api.store, held.id) == "issuer2"
    p = expect_problem(api.submit("o-1", reflection(12)), 409, "duplicate_submission")  # own id, other content
    assert "hash" not in p["detail"]
