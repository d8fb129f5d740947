"""``POST /submissions`` under a transcript rubric: a transcript that cannot be read, or a criterion left with
nothing to read, is a 422 naming the field (and the line), answered before anything is scored or stored."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from api_support import expect_problem

from rubrics import load_rubric

TALK = load_rubric(Path(__file__).resolve().parents[2] / "rubrics" / "bundled" / "accountable-talk.yaml")
ARROW_VTT = "WEBVTT\n\n1\n00:00:01.000 -> 00:00:02.000\nT: hello\n"


@pytest.fixture
def talk_api(api: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The test API serving the transcript rubric with a model that must never be asked to score."""

    def never(*_: Any) -> Any:
        raise AssertionError("a submission with unusable evidence reached the model")

    model = SimpleNamespace(rubric=TALK, version="talk-test", scorers={}, encoder=None)
    monkeypatch.setattr("api.routers.submissions.resolve_version", lambda *_: TALK.version)
    monkeypatch.setattr(api.app.state.ctx.models, "get", lambda *_: model)
    monkeypatch.setattr(api.app.state.ctx.prescorer, "score", never)
    return api


def _post(api: Any, ext: str, evidence: dict[str, str]) -> Any:
    body = {"rubric_id": TALK.id, "external_id": ext, "evidence": evidence}
    return api.client.post("/submissions", json=body, headers=api.h("issuer"))


def test_a_submission_whose_transcript_cannot_be_read_is_422_naming_the_field_and_line(talk_api: Any) -> None:
    body = expect_problem(_post(talk_api, "bad-vtt", {"transcript": ARROW_VTT, "reflection": "r"}), 422,
                          "invalid_transcript")
    assert body["detail"].startswith("field 'transcript' is not a readable transcript: VTT, line 4: expected a cue "
                                     "timing like '00:00:01.000 --> 00:00:04.000'")


def test_a_submission_with_a_blank_transcript_is_422_naming_the_criteria_that_read_it(talk_api: Any) -> None:
    body = expect_problem(_post(talk_api, "no-tx", {"transcript": "", "reflection": "Only a reflection."}), 422,
                          "invalid_request")
    assert body["detail"].startswith("no evidence for criteria 'pressing_reasoning'")
    assert "field 'transcript' holds no text" in body["detail"]
