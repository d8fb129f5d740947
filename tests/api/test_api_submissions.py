"""Submissions, rubrics and batch jobs as specifications: each error is its own specific 4xx."""

from __future__ import annotations

from typing import Any

from api_support import expect_problem, reflection, wait_for_job


def test_a_submission_is_scored_routed_and_queued_synchronously(api) -> None:  # type: ignore[no-untyped-def]
    r = api.submit("s-1", reflection(1))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] is True and body["model_version"]
    assert set(body["criteria"]) == {"questioning", "adjusting", "self_assessment"}
    for res in body["criteria"].values():
        assert res["score"] in (0, 1, 2)
        assert abs(sum(res["probabilities"].values()) - 1) < 1e-3
        assert res["route"] == "human" and "no routing policy" in res["reason"]
    assert [(q["kind"], sorted(q["criteria"])) for q in body["queue"]] == [
        ("first", ["adjusting", "questioning", "self_assessment"])]
    ms = api.store.machine_scores(submission_id=body["submission_id"])
    assert len(ms) == 3 and api.store.verify_audit().ok


def test_resending_the_same_submission_is_idempotent_and_changed_content_is_409(api) -> None:  # type: ignore[no-untyped-def]
    first = api.submit("s-2", reflection(2)).json()
    again = api.submit("s-2", reflection(2))
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["criteria"] == first["criteria"]
    assert len(api.store.machine_scores(submission_id=first["submission_id"])) == 3, "not scored twice"
    expect_problem(api.submit("s-2", reflection(3)), 409, "duplicate_submission")


def test_idempotency_key_replays_the_first_response_and_rejects_another_body(api) -> None:  # type: ignore[no-untyped-def]
    hk = {"headers": {"Idempotency-Key": "k-123"}}
    a = api.submit("s-3", reflection(4), **hk)
    b = api.submit("s-3", reflection(4), headers={"Idempotency-Key": "k-123"})
    assert a.status_code == b.status_code == 201
    assert b.json() == a.json() and b.headers.get("idempotent-replayed") == "true"
    expect_problem(api.submit("s-4", reflection(5), headers={"Idempotency-Key": "k-123"}), 409, "idempotency_key_reused")
    assert len(api.store.submissions()) == 1
    # keys are per caller: another issuer may use the same key string
    assert api.submit("s-5", reflection(6), who="issuer2", headers={"Idempotency-Key": "k-123"}).status_code == 201


def test_a_failed_request_frees_its_idempotency_key(api) -> None:  # type: ignore[no-untyped-def]
    bad = {"rubric_id": "checking-for-understanding", "external_id": "s-6", "evidence": {"nope": "x"}}
    h = {**api.h("issuer"), "Idempotency-Key": "k-9"}
    expect_problem(api.client.post("/submissions", json=bad, headers=h), 422, "invalid_request")
    expect_problem(api.client.post("/submissions", json=bad, headers=h), 422, "invalid_request")


def test_each_bad_request_gets_its_specific_4xx(api) -> None:  # type: ignore[no-untyped-def]
    c, h = api.client, api.h("issuer")
    expect_problem(c.post("/submissions", content=b'{"rubric_id": ', headers={**h, "Content-Type": "application/json"}),
             400, "malformed_json")
    p = expect_problem(c.post("/submissions", json={"rubric_id": "checking-for-understanding"}, headers=h),
                 422, "validation_error")
    assert any(e["loc"][-1] == "external_id" for e in p["errors"])
    expect_problem(c.post("/submissions", json={"rubric_id": "nope", "external_id": "x", "evidence": {"reflection": "t"}},
                    headers=h), 404, "not_found")
    expect_problem(c.post("/submissions", json={"rubric_id": "checking-for-understanding", "external_id": "x",
                                          "evidence": {"reflection": "   "}}, headers=h), 422, "invalid_request")
    expect_problem(c.get("/submissions/999999", headers=h), 404, "not_found")
    expect_problem(c.get("/no/such/endpoint", headers=h), 404, "not_found")
    expect_problem(c.delete("/submissions", headers=h), 405, "method_not_allowed")


def test_bodies_over_the_limit_are_413_by_header_and_by_stream(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(max_request_bytes=4096)
    big = {"rubric_id": "checking-for-understanding", "external_id": "big", "evidence": {"reflection": "x" * 10_000}}
    expect_problem(api.client.post("/submissions", json=big, headers=api.h("issuer")), 413, "payload_too_large")

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b" " * 1000  # no Content-Length: chunked transfer

    r = api.client.post("/submissions", content=chunks(), headers={**api.h("issuer"),
                                                                   "Content-Type": "application/json"})
    expect_problem(r, 413, "payload_too_large")


def test_rubric_versions_are_immutable(api) -> None:  # type: ignore[no-untyped-def]
    c, h = api.client, api.h("admin")
    rub = {"id": "mini", "version": 1, "title": "Mini", "evidence": ["text"],
           "criteria": [{"id": "q", "title": "Q", "scale": {"min": 0, "max": 3}}]}
    assert c.post("/rubrics", json=rub, headers=h).status_code == 201
    assert c.post("/rubrics", json=rub, headers=h).status_code == 200
    expect_problem(c.post("/rubrics", json={**rub, "title": "Changed"}, headers=h), 409, "rubric_immutable")
    assert c.post("/rubrics", json={**rub, "version": 2, "title": "Changed"}, headers=api.h("issuer")).status_code == 201
    p = expect_problem(c.post("/rubrics", json={**rub, "version": 3, "criteria": [{"id": "q", "title": "Q"}]}, headers=h),
                 422, "invalid_rubric")
    assert "criteria" in p["detail"]
    assert c.get("/rubrics/mini", headers=api.h("researcher")).json()["version"] == 2
    assert c.get("/rubrics/mini/versions/1", headers=h).json()["title"] == "Mini"
    expect_problem(c.get("/rubrics/mini/versions/9", headers=h), 404, "not_found")
    # a rubric with no model: submitting to it is 503, not a crash
    expect_problem(c.post("/submissions", json={"rubric_id": "mini", "external_id": "m", "evidence": {"text": "hi"}},
                    headers=api.h("issuer")), 503, "model_unavailable")


def test_a_batch_job_scores_in_the_background_and_reports_progress(api) -> None:  # type: ignore[no-untyped-def]
    subs = [{"external_id": f"b-{i}", "evidence": {"reflection": reflection(i)}} for i in range(6)]
    subs.append({"external_id": "b-empty", "evidence": {"reflection": ""}})
    subs.append({"external_id": "b-essay", "evidence": {"essay": reflection(9)}})  # a field the rubric lacks
    r = api.client.post("/batch-jobs", headers=api.h("issuer"),
                        json={"rubric_id": "checking-for-understanding", "submissions": subs})
    assert r.status_code == 202 and r.json()["total"] == 8
    j = wait_for_job(api, r.json()["id"])
    assert (j["status"], j["done"], j["rejected"], j["progress"]) == ("done", 6, 2, 1.0), j
    res = api.client.get(f"/batch-jobs/{j['id']}/results", headers=api.h("issuer")).json()
    assert [x["external_id"] for x in res][-2:] == ["b-empty", "b-essay"] and "empty" in res[-2]["error"]
    assert "found unknown field(s) ['essay']" in res[-1]["error"]  # the same words as POST /submissions
    assert all(x["submission_id"] for x in res[:6])
    assert api.client.get(f"/batch-jobs/{j['id']}", headers=api.h("issuer2")).status_code == 404  # as unknown
    stats = api.client.get("/queue/stats", headers=api.h("alice")).json()
    assert stats["open"] == 6


def test_a_job_that_rejected_every_row_says_so_where_its_status_is_read(api) -> None:  # type: ignore[no-untyped-def]
    csv = b"id,reflection\r\nz-1,\r\nz-2,   \r\n"
    r = api.client.post("/batch-jobs/upload", headers=api.h("issuer"), data={"rubric_id": "checking-for-understanding"},
                        files={"file": ("backlog.csv", csv, "text/csv")})
    assert r.status_code == 202, r.text
    j = wait_for_job(api, r.json()["id"])
    assert (j["status"], j["done"], j["rejected"]) == ("done", 0, 2), j
    assert j["error"] == f"no row could be scored: all 2 were rejected (reasons in /batch-jobs/{j['id']}/results)"


def test_a_batch_retried_under_its_idempotency_key_makes_one_job(api) -> None:  # type: ignore[no-untyped-def]
    """A client that retries a batch after a timeout gets the first job back, not a second one; the same key
    with another list or file is 409. Posted lists and uploads alike."""
    subs = [{"external_id": f"i-{i}", "evidence": {"reflection": reflection(i)}} for i in range(3)]
    body = {"rubric_id": "checking-for-understanding", "submissions": subs}
    first = api.client.post("/batch-jobs", headers={**api.h("issuer"), "Idempotency-Key": "k-1"}, json=body)
    again = api.client.post("/batch-jobs", headers={**api.h("issuer"), "Idempotency-Key": "k-1"}, json=body)
    assert first.status_code == again.status_code == 202 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    other = {**body, "submissions": subs[:2]}
    expect_problem(api.client.post("/batch-jobs", headers={**api.h("issuer"), "Idempotency-Key": "k-1"}, json=other),
                   409, "idempotency_key_reused")
    wait_for_job(api, first.json()["id"])
    csv = ("id,reflection\r\nv-1,\"" + reflection(1) + "\"\r\n").encode()

    def upload(data: bytes) -> Any:
        return api.client.post("/batch-jobs/upload", headers={**api.h("issuer"), "Idempotency-Key": "u-1"},
                               data={"rubric_id": "checking-for-understanding"},
                               files={"file": ("backlog.csv", data, "text/csv")})

    one, two = upload(csv), upload(csv)
    assert one.status_code == two.status_code == 202 and two.json()["id"] == one.json()["id"]
    expect_problem(upload(csv + b"v-2,more\r\n"), 409, "idempotency_key_reused")
    wait_for_job(api, one.json()["id"])
    assert api.client.get(f"/batch-jobs/{one.json()['id'] + 1}", headers=api.h("issuer")).status_code == 404


def test_a_batch_job_from_an_uploaded_csv_reports_rejected_rows(api) -> None:  # type: ignore[no-untyped-def]
    csv = "id,reflection\r\nu-1,\"" + reflection(1) + "\"\r\nu-2,\r\nu-3,\"" + reflection(3) + "\"\r\n"
    r = api.client.post("/batch-jobs/upload", headers=api.h("issuer"),
                        data={"rubric_id": "checking-for-understanding"},
                        files={"file": ("backlog.csv", csv.encode(), "text/csv")})
    assert r.status_code == 202, r.text
    j = wait_for_job(api, r.json()["id"])
    assert (j["done"], j["rejected"]) == (2, 1), j
    r = api.client.post("/batch-jobs/upload", headers=api.h("issuer"), data={"rubric_id": "checking-for-understanding"},
                        files={"file": ("backlog.exe", b"x", "application/octet-stream")})
    expect_problem(r, 422, "invalid_request")


def test_an_upload_names_its_columns_with_id_col_text_col_and_meta_col_as_the_cli_does(api) -> None:  # type: ignore[no-untyped-def]
    csv = ("Teacher ID,Reflection text,School\r\nT-1,\"" + reflection(1) + "\",Elm\r\nT-2,\"" + reflection(2)
           + "\",Oak\r\n").encode()
    url, rubric = "/batch-jobs/upload", "checking-for-understanding"
    bare = expect_problem(api.client.post(url, headers=api.h("issuer"), data={"rubric_id": rubric},
                                          files={"file": ("up.csv", csv, "text/csv")}), 422, "invalid_request")
    assert bare["detail"].startswith("cannot read 'up.csv': column(s) ['id', 'reflection'] not found; the file has "
                                     "['Reflection text', 'School', 'Teacher ID']"), bare["detail"]
    assert all(f in bare["detail"] for f in ("id_col", "text_col (EVIDENCE=COLUMN", "meta_col")), bare["detail"]
    r = api.client.post(url, headers=api.h("issuer"), files={"file": ("up.csv", csv, "text/csv")}, data={
        "rubric_id": rubric, "id_col": "Teacher ID", "text_col": ["reflection=Reflection text"], "meta_col": ["School"]})
    assert r.status_code == 202, r.text
    j = wait_for_job(api, r.json()["id"])  # the job runs (and would resume) under the same column map
    assert (j["done"], j["rejected"]) == (2, 0), j
    got = {s.external_id: (s.evidence["reflection"], s.metadata) for s in api.store.submissions()}
    assert got == {"T-1": (reflection(1), {"School": "Elm"}), "T-2": (reflection(2), {"School": "Oak"})}


def test_a_jsonl_upload_is_scored_like_a_csv_one_with_or_without_a_column_map(api) -> None:  # type: ignore[no-untyped-def]
    """An uploaded JSONL file is the client's file, never the list a JSON POST /batch-jobs stores (which the
    job reads with internal columns): it is scored, plain or with id_col/text_col naming its fields."""
    import json as _json

    plain = "".join(_json.dumps({"id": f"J-{i}", "reflection": reflection(i)}) + "\n" for i in (1, 2)).encode()
    odd = "".join(_json.dumps({"Teacher ID": f"K-{i}", "Journal": reflection(i)}) + "\n" for i in (3, 4)).encode()
    for body, fields in ((plain, {}), (odd, {"id_col": "Teacher ID", "text_col": ["reflection=Journal"]})):
        r = api.client.post("/batch-jobs/upload", headers=api.h("issuer"),
                            files={"file": ("up.jsonl", body, "application/x-ndjson")},
                            data={"rubric_id": "checking-for-understanding", **fields})
        assert r.status_code == 202, r.text
        j = wait_for_job(api, r.json()["id"])
        assert j["status"] == "done" and (j["done"], j["rejected"]) == (2, 0), j
    assert sorted(s.external_id for s in api.store.submissions()) == ["J-1", "J-2", "K-3", "K-4"]


def test_upload_column_fields_that_cannot_be_read_are_422_naming_the_field(api) -> None:  # type: ignore[no-untyped-def]
    csv = ("Teacher ID,Reflection text\r\nT-1,\"" + reflection(1) + "\"\r\n").encode()

    def upload(**fields: object) -> dict[str, object]:
        r = api.client.post("/batch-jobs/upload", headers=api.h("issuer"), files={"file": ("up.csv", csv, "text/csv")},
                            data={"rubric_id": "checking-for-understanding", "id_col": "Teacher ID", **fields})
        return expect_problem(r, 422, "invalid_request")

    assert "text_col must be EVIDENCE=COLUMN" in str(upload(text_col=["Reflection text"])["detail"])
    assert "names evidence field 'journal', but rubric" in str(upload(text_col=["journal=Reflection text"])["detail"])
    assert "names evidence field 'reflection' twice" in str(upload(
        text_col=["reflection=Reflection text", "reflection=Teacher ID"])["detail"])
    assert "id_col must name a column" in str(upload(id_col="  ")["detail"])
    missing = str(upload(text_col=["reflection=Reflection text"], meta_col=["School"])["detail"])
    assert "column(s) ['School'] not found" in missing and "meta_col" in missing
    assert api.store.submissions() == [] and not api.client.get("/batch-jobs/1", headers=api.h("issuer")).is_success


def test_an_abandoned_idempotency_reservation_can_be_taken_over(api) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    import sqlalchemy as sa

    from scoring.store import jobs
    from scoring.store.service_tables import idempotency_keys

    assert jobs.reserve_idempotency(api.store, "issuer", "k-dead", "h1") is None
    _problem_exc = None
    try:
        jobs.reserve_idempotency(api.store, "issuer", "k-dead", "h1")
    except Exception as exc:  # noqa: BLE001
        _problem_exc = exc
    assert getattr(_problem_exc, "code", None) == "idempotency_key_reused", "in flight: refused"
    old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=jobs.STALE_RESERVATION_S + 1)
    with api.store.engine.begin() as conn:
        conn.execute(sa.update(idempotency_keys).values(created_at=old))
    assert jobs.reserve_idempotency(api.store, "issuer", "k-dead", "h1") is None, "abandoned: taken over"


def test_a_job_a_stopped_server_left_running_is_finished_by_the_next_server(api, api_home, api_model_dir) -> None:  # type: ignore[no-untyped-def]
    from api_support import Api
    from fastapi.testclient import TestClient

    from api import create_app
    from scoring.settings import Settings
    from scoring.store import jobs
    from scoring.usecases import batch_jobs
    from scoring.usecases.intake import NewSubmission

    s = api.app.state.ctx.settings
    rubric = api.store.rubric("checking-for-understanding")
    subs = [NewSubmission(f"r-{i}", {"reflection": reflection(i)}) for i in range(4)]
    j = batch_jobs.create_from_list(api.store, "issuer", rubric, subs, s.jobs_dir(), s.max_text_chars)
    jobs.update_job(api.store, j.id, status="running")  # the server died before it ran a block
    app2 = create_app(Settings(home=api_home, database_url=api.store.url, cache_dir=api_home / "cache"),
                      model_dir=api_model_dir)
    second = Api(TestClient(app2, raise_server_exceptions=False), app2, keys=api.keys)
    done = wait_for_job(second, j.id)
    assert (done["status"], done["done"], done["rejected"], done["resumes"]) == ("done", 4, 0, 1)
    assert {r["external_id"] for r in second.client.get(f"/batch-jobs/{j.id}/results", headers=second.h("issuer")).json()} \
        == {f"r-{i}" for i in range(4)}
    second.client.close()
    app2.state.ctx.store.close()


def test_decisions_credentials_and_feedback_through_the_api(api_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from api_support import audit_policy

    from scoring import badges
    from scoring.store.decisions import decision_in

    priv, pub = badges.keygen(tmp_path / "keys")
    bare = api_factory(policy=audit_policy())  # a server with no signing key says so in its own code
    first = bare.submit("nokey-1", reflection(9)).json()["submission_id"]
    expect_problem(bare.client.post(f"/submissions/{first}/credential", headers=bare.h("issuer")), 503,
                   "credentials_unconfigured")
    api = api_factory(policy=audit_policy(), credential_key=priv, credential_issuer_id="https://example.org/d7",
                      credential_issuer_name="District 7")
    subs = [api.submit(f"c-{i}", reflection(i)).json() for i in range(3)]
    assert all(s["decision"]["outcome"] in ("earned", "not_yet", "needs_human") and s["decision"]["basis"] == "machine"
               for s in subs)
    a, b = subs[0]["submission_id"], subs[1]["submission_id"]
    with api.store.write() as tx:  # people have scored: one earned, one not yet
        decision_in(tx, a, subs[0]["rubric_id"], subs[0]["rubric_version"], "earned", "final",
                    {"questioning": 2, "adjusting": 2, "self_assessment": 2})
        decision_in(tx, b, subs[1]["rubric_id"], subs[1]["rubric_version"], "not_yet", "final",
                    {"questioning": 0, "adjusting": 1, "self_assessment": 1})
    assert api.client.get(f"/submissions/{a}", headers=api.h("issuer")).json()["decision"]["outcome"] == "earned"
    r = api.client.post(f"/submissions/{a}/credential", headers=api.h("issuer"))
    assert r.status_code == 201, r.text
    vc = badges.verify(r.json()["jwt"], badges.load_key(pub, private=False))
    assert vc["issuer"]["name"] == "District 7" and len(vc["credentialSubject"]["result"]) == 3
    expect_problem(api.client.post(f"/submissions/{b}/credential", headers=api.h("issuer")), 409, "invalid_credential")
    assert api.client.post(f"/submissions/{a}/credential", headers=api.h("issuer2")).status_code == 404  # as unknown
    fb = api.client.get(f"/submissions/{b}/feedback", headers=api.h("issuer")).json()
    assert fb["decision"] == "not_yet" and {c["criterion"] for c in fb["criteria"]} >= {"questioning"}
    page = api.client.get(f"/submissions/{b}/feedback", params={"format": "html"}, headers=api.h("issuer"))
    assert page.status_code == 200 and "text/html" in page.headers["content-type"] and "not yet" in page.text
    expect_problem(api.client.get(f"/submissions/{a}/feedback", headers=api.h("issuer")), 409, "invalid_credential")
    edited = {**fb, "criteria": [{**fb["criteria"][0], "note": "Try asking why twice."}]}  # an assessor's edit
    # only an assessor who worked on the submission may release its feedback; to anyone else it does not exist
    expect_problem(api.client.post(f"/submissions/{b}/feedback/release", json=edited, headers=api.h("alice")),
                   404, "not_found")
    api.store.record_human_score(b, "questioning", 0, assessor="alice", kind="first")
    r = api.client.post(f"/submissions/{b}/feedback/release", json=edited, headers=api.h("alice"))
    assert r.status_code == 201, r.text
    logged = [e for e in api.store.audit_entries() if e.event == "feedback_released"]
    assert logged[-1].payload["feedback"]["criteria"][0]["note"] == "Try asking why twice."
    assert api.client.post(f"/submissions/{b}/feedback/release", json=edited, headers=api.h("issuer")).status_code == 403
    for broken in ([1, "x"], [{**fb["criteria"][0], "reached": 2}]):  # pages read criteria[].reached.label
        r = api.client.post(f"/submissions/{b}/feedback/release", json={**fb, "criteria": broken}, headers=api.h("alice"))
        expect_problem(r, 422, "invalid_request")
    assert len([e for e in api.store.audit_entries() if e.event == "feedback_released"]) == len(logged)
    agreement = api.client.get("/agreement", headers=api.h("researcher")).json()
    assert {"automation", "decisions", "decision_agreement"} <= set(agreement)
    assert agreement["decisions"][0]["submissions_decided"] == 3
    r = api.client.post("/submissions", headers=api.h("issuer"), json={
        "rubric_id": subs[1]["rubric_id"], "external_id": "c-1-again", "evidence": {"reflection": reflection(9)},
        "revises": "c-1"})
    assert r.status_code == 201, r.text
    r = api.client.post("/submissions", headers=api.h("issuer"), json={
        "rubric_id": subs[1]["rubric_id"], "external_id": "c-x", "evidence": {"reflection": reflection(8)},
        "revises": "nope"})
    expect_problem(r, 422, "invalid_request")


def test_the_assessor_sees_the_previous_decision_and_feedback_beside_a_resubmission(api) -> None:  # type: ignore[no-untyped-def]
    from scoring.store.decisions import decision_in

    first = api.submit("p-1", reflection(21)).json()
    with api.store.write() as tx:
        decision_in(tx, first["submission_id"], first["rubric_id"], first["rubric_version"], "not_yet", "final",
                    {"questioning": 0, "adjusting": 1, "self_assessment": 1})
    fb = api.client.get(f"/submissions/{first['submission_id']}/feedback", headers=api.h("issuer")).json()
    assert api.client.post(f"/submissions/{first['submission_id']}/feedback/release", json=fb,
                           headers=api.h("admin")).status_code == 201
    again = api.client.post("/submissions", headers=api.h("issuer"), json={
        "rubric_id": first["rubric_id"], "external_id": "p-2", "evidence": {"reflection": reflection(22)},
        "revises": "p-1"}).json()
    assert again["revises"] == "p-1"
    found = api.client.get("/submissions/lookup", params={"rubric_id": first["rubric_id"], "external_id": "p-2"},
                           headers=api.h("issuer"))
    assert found.status_code == 200 and (found.json()["submission_id"], found.json()["revises"]) \
        == (again["submission_id"], "p-1"), found.text
    for who, ext in (("issuer2", "p-2"), ("issuer", "p-404")):  # another issuer's id answers as an unknown one
        expect_problem(api.client.get("/submissions/lookup", params={"rubric_id": first["rubric_id"],
                                                                     "external_id": ext}, headers=api.h(who)),
                       404, "not_found")
    views = []
    while (r := api.claim()).status_code == 200:
        views.append(r.json())
    mine = next(v for v in views if v["submission_id"] == again["submission_id"])
    assert not mine["blind"] and mine["previous"]["external_id"] == "p-1"
    assert mine["previous"]["decision"] == "not_yet" and mine["previous"]["feedback"]["criteria"]
    assert next(v for v in views if v["submission_id"] == first["submission_id"])["previous"] is None
    api.client.post("/assessor/login", data={"api_key": api.keys["alice"]})  # the page shows it too
    html = api.client.get(f"/assessor/items/{mine['id']}").text
    assert "Resubmission of p-1" in html and "Previous decision" in html


def test_an_issuer_lists_its_jobs_and_cancels_one_that_waits(api) -> None:  # type: ignore[no-untyped-def]
    import threading

    gate = threading.Event()
    api.app.state.ctx.jobs.submit(gate.wait, 30)  # the one job worker is busy: the next jobs wait in line
    body = {"rubric_id": "checking-for-understanding",
            "submissions": [{"external_id": f"w-{i}", "evidence": {"reflection": reflection(i)}} for i in range(3)]}
    first = api.client.post("/batch-jobs", headers=api.h("issuer"), json=body).json()
    second = api.client.post("/batch-jobs", headers=api.h("issuer"), json=body).json()
    theirs = api.client.post("/batch-jobs", headers=api.h("issuer2"), json=body).json()

    listed = api.client.get("/batch-jobs", headers=api.h("issuer")).json()
    assert [j["id"] for j in listed] == [second["id"], first["id"]]  # newest first, never another issuer's
    assert {j["id"] for j in api.client.get("/batch-jobs", headers=api.h("admin")).json()} >= {theirs["id"], first["id"]}
    expect_problem(api.client.post(f"/batch-jobs/{theirs['id']}/cancel", headers=api.h("issuer")), 404, "not_found")

    r = api.client.post(f"/batch-jobs/{first['id']}/cancel", headers=api.h("issuer"))
    assert r.status_code == 200 and (r.json()["status"], r.json()["cancelled_by"]) == ("cancelled", "issuer"), r.text
    assert [j["id"] for j in api.client.get("/batch-jobs?status=cancelled", headers=api.h("issuer")).json()] \
        == [first["id"]]
    gate.set()
    done = wait_for_job(api, second["id"])
    assert (done["status"], done["done"]) == ("done", 3)
    j = api.client.get(f"/batch-jobs/{first['id']}", headers=api.h("issuer")).json()
    assert (j["status"], j["done"], j["rejected"]) == ("cancelled", 0, 0)  # the worker reached it and left it
    assert api.client.get(f"/batch-jobs/{first['id']}/results", headers=api.h("issuer")).json() == []
    expect_problem(api.client.post(f"/batch-jobs/{second['id']}/cancel", headers=api.h("issuer")), 409,
                   "job_finished")
    wait_for_job(api, theirs["id"], who="issuer2")
