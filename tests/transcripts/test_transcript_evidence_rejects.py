"""A transcript that cannot be read, or a criterion with nothing to read, is one refused row, never a stopped job.

Found by a user scoring a backlog under the transcript rubric: a single WebVTT cue timing written with
``->`` ended ``scoring score`` (and a whole API batch job) with ``VTT, line 4: ...`` and no row named;
and a row with a blank transcript beside its reflection was given levels on the transcript criteria.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.artifact import ScoringModel
from rubrics import load_rubric
from scoring.batch import run_batch
from scoring.engines.shards import read_backlog
from scoring.errors import InvalidRequest, TranscriptError
from scoring.ingest import ColumnMap, infer_columns, read_records

EXAMPLES = Path(__file__).resolve().parents[2] / "rubrics" / "bundled" / "examples"
RUBRIC = load_rubric(Path(__file__).resolve().parents[2] / "rubrics" / "bundled" / "accountable-talk.yaml")
TRANSCRIPT_CRITERIA = ["pressing_reasoning", "relating", "revoicing", "pressing_accuracy", "keeping_together",
                       "student_reasoning"]
GOOD = json.loads((EXAMPLES / "demo.jsonl").read_text(encoding="utf-8").splitlines()[0])
ARROW_VTT = "WEBVTT\n\n1\n00:00:01.000 -> 00:00:02.000\nT: hello\n"
NOTES = "Lesson notes\nnothing here"
ONLY_TEACHER = "Ms. Rivera: Today we compare fractions.\nMs. Rivera: Which is bigger, and why?\n"


def _row(sid: str, transcript: str, reflection: str = "I pressed for reasons.") -> dict[str, str]:
    return {"submission_id": sid, "lesson": transcript, "reflection": reflection}


def _backlog(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _cols() -> ColumnMap:
    return infer_columns(RUBRIC, ColumnMap(id="submission_id", text={"transcript": "lesson", "reflection": "reflection"}))


def _mixed(tmp_path: Path) -> Path:
    return _backlog(tmp_path / "backlog.jsonl", [
        _row("good-1", GOOD["transcript"]),
        _row("bad-vtt", ARROW_VTT),
        _row("bad-plain", NOTES),
        _row("no-tx", "", "Only a reflection, transcript left blank."),
        _row("good-2", GOOD["transcript"]),
    ])


class _Encoder:
    """A stand-in encoder: text length as a one-number embedding (these tests are about which rows reach it)."""

    name, version, dim = "fake", "fake:1", 1

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return np.array([[float(len(t))] for t in texts], dtype=np.float32)


class _Scorer:
    """Even odds on every level; refuses an empty text, as a level on nothing must never be asked for."""

    def __init__(self, levels: list[int]) -> None:
        self.classes_ = np.asarray(levels)

    def predict_proba(self, texts: list[str], embeddings: Any = None) -> np.ndarray:
        assert all(t.strip() for t in texts), "a criterion was scored on empty evidence"
        return np.full((len(texts), len(self.classes_)), 1.0 / len(self.classes_))

    def decide(self, proba: np.ndarray) -> np.ndarray:
        return self.classes_[proba.argmax(axis=1)]


def _model() -> ScoringModel:
    scorers = {c.id: _Scorer(list(c.scores)) for c in RUBRIC.criteria}
    return ScoringModel(rubric=RUBRIC, scorers=scorers, encoder=_Encoder(), version="", card={})  # type: ignore[arg-type]


def _rejects(path: Path) -> dict[str, str]:
    return {r["id"]: r["reason"] for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


# -- reading a backlog ------------------------------------------------------------------------------


def test_an_unreadable_transcript_is_a_reject_naming_its_column_and_line(tmp_path: Path) -> None:
    recs = {r.id: r for r in read_records(_mixed(tmp_path), RUBRIC, _cols())}
    assert recs["bad-vtt"].reject == (
        "column 'lesson' is not a readable transcript: VTT, line 4: expected a cue timing like "
        "'00:00:01.000 --> 00:00:04.000', found '00:00:01.000 -> 00:00:02.000'")
    assert recs["bad-plain"].reject is not None
    assert recs["bad-plain"].reject.startswith("column 'lesson' is not a readable transcript: plain transcript, line 1")
    assert recs["good-1"].reject is None and recs["good-2"].reject is None


def test_a_blank_transcript_beside_a_reflection_is_rejected_naming_the_criteria_that_read_it(tmp_path: Path) -> None:
    reason = {r.id: r.reject for r in read_records(_mixed(tmp_path), RUBRIC, _cols())}["no-tx"]
    assert reason is not None and reason.startswith("no evidence for criteria ")
    assert all(repr(c) in reason for c in TRANSCRIPT_CRITERIA) and "'reflection_depth'" not in reason
    assert "column 'lesson' holds no text" in reason


def test_a_transcript_without_a_role_the_rubric_reads_is_rejected_naming_the_speakers_found(tmp_path: Path) -> None:
    data = _backlog(tmp_path / "b.jsonl", [_row("monologue", ONLY_TEACHER)])
    (rec,) = read_records(data, RUBRIC, _cols())
    assert rec.reject == ("no evidence for criterion 'student_reasoning': the transcript in column 'lesson' has no "
                          "student turns (speakers found: Ms. Rivera = teacher) (no level is given on evidence that "
                          "is not there)")


def test_a_transcript_reject_is_the_same_on_every_reading(tmp_path: Path) -> None:
    data = _mixed(tmp_path)
    first = [(r.number, r.id, r.reject) for r in read_records(data, RUBRIC, _cols())]
    assert [reject is not None for _, _, reject in first] == [False, True, True, True, False]
    assert first == [(r.number, r.id, r.reject) for r in read_records(data, RUBRIC, _cols())]


def test_a_row_refused_for_its_transcript_still_holds_its_id_across_shards(tmp_path: Path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    _backlog(folder / "a.jsonl", [_row("s-1", ARROW_VTT)])
    _backlog(folder / "b.jsonl", [_row("s-1", GOOD["transcript"])])
    first, later = read_backlog(folder, RUBRIC, _cols())
    assert first.reject is not None and "not a readable transcript" in first.reject
    assert later.reject is not None and later.reject.startswith("duplicate id 's-1' (first seen in shard a.jsonl)")


# -- scoring a backlog ------------------------------------------------------------------------------


def test_a_backlog_with_broken_or_blank_transcripts_scores_every_other_row_and_rejects_those(tmp_path: Path) -> None:
    data = _mixed(tmp_path)
    out = tmp_path / "scored.jsonl"
    summary = run_batch(_model(), read_records(data, RUBRIC, _cols()), data, out, block_size=1, progress=False)
    scored = [json.loads(x)["id"] for x in out.read_text(encoding="utf-8").splitlines()]
    assert scored == ["good-1", "good-2"] and (summary.scored, summary.rejected) == (2, 3)
    rejects = _rejects(summary.rejects)
    assert set(rejects) == {"bad-vtt", "bad-plain", "no-tx"}
    assert "line 4" in rejects["bad-vtt"] and "line 1" in rejects["bad-plain"]


# -- the API's doors --------------------------------------------------------------------------------


def test_a_submission_with_an_unreadable_transcript_is_refused_before_scoring_naming_field_and_line() -> None:
    from scoring.usecases.intake import NewSubmission, submit

    def never(*_: Any) -> Any:
        raise AssertionError("scored a submission whose transcript cannot be read")

    sub = NewSubmission("bad-vtt", {"transcript": ARROW_VTT, "reflection": "r"})
    with pytest.raises(TranscriptError) as err:
        submit(None, _model(), "issuer", sub, score=never)  # type: ignore[arg-type]
    assert err.value.code == "invalid_transcript" and err.value.line == 4
    assert str(err.value).startswith("field 'transcript' is not a readable transcript: VTT, line 4: expected")


def test_a_submission_with_a_blank_transcript_is_refused_naming_the_criteria_and_field() -> None:
    from scoring.usecases.intake import check_evidence

    with pytest.raises(InvalidRequest) as err:
        check_evidence(RUBRIC, {"transcript": " \u200b", "reflection": "A reflection only."}, 10_000)
    assert str(err.value).startswith("no evidence for criteria 'pressing_reasoning'")
    assert "field 'transcript' holds no text" in str(err.value)


def test_a_posted_batch_job_rejects_rows_with_a_broken_or_blank_transcript_and_keeps_the_rest(tmp_path: Path) -> None:
    from scoring.store import Store
    from scoring.usecases import batch_jobs
    from scoring.usecases.intake import NewSubmission

    subs = [NewSubmission("good-1", {"transcript": GOOD["transcript"], "reflection": "r"}),
            NewSubmission("bad-vtt", {"transcript": ARROW_VTT, "reflection": "r"}),
            NewSubmission("no-tx", {"transcript": "", "reflection": "r"})]
    with Store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        store.register_rubric(RUBRIC)
        job = batch_jobs.create_from_list(store, "issuer", RUBRIC, subs, tmp_path / "jobs", 10_000)
    assert job.workdir is not None
    data = Path(job.workdir) / batch_jobs.LIST_INPUT
    cols = batch_jobs._columns(RUBRIC, True, Path(job.workdir))
    recs = {r.id: batch_jobs._list_rejects(r).reject for r in read_records(data, RUBRIC, cols)}
    assert recs["good-1"] is None
    assert recs["bad-vtt"] is not None and recs["bad-vtt"].startswith(
        "field 'transcript' is not a readable transcript: VTT, line 4")
    assert recs["no-tx"] is not None and "field 'transcript' holds no text" in recs["no-tx"]
