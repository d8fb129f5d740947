"""Transcript parsing: formats, offsets into the original text, speaker roles, malformed input."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import srt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.errors import TranscriptError
from scoring.transcripts import (
    RolePatterns,
    detect_format,
    field_text,
    looks_like_transcript,
    parse_transcript,
    render,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "rubrics" / "bundled" / "examples"
EXAMPLE_FILES = {"fractions-lesson.vtt": "vtt", "probability-lesson.srt": "srt", "area-lesson.txt": "plain"}


@pytest.mark.parametrize("name,fmt", sorted(EXAMPLE_FILES.items()))
def test_bundled_examples_parse_with_exact_offsets(name: str, fmt: str) -> None:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    tr = parse_transcript(text)
    assert tr.format == fmt == detect_format(text)
    assert len(tr.turns) >= 10
    for t in tr.turns:
        assert text[t.start : t.end] == t.text
        assert t.text == t.text.strip() and t.text
        assert "-->" not in t.text and not t.text.startswith(t.speaker + ":")
    assert {"teacher", "student"} <= {t.role for t in tr.turns}
    # Turns are in document order and do not overlap.
    assert all(a.end <= b.start for a, b in zip(tr.turns, tr.turns[1:], strict=False))


def test_vtt_voice_tags_multiline_cues_and_times() -> None:
    text = (
        "WEBVTT\n\nNOTE a comment block\n\n"
        "intro\n00:00:01.000 --> 00:00:04.500\n<v Ms. Rivera>What do you notice?</v>\n\n"
        "00:01:05.250 --> 00:01:09.000\n<v Jamal>It grows by three\nevery step.</v>\n"
    )
    tr = parse_transcript(text)
    assert [(t.speaker, t.role) for t in tr.turns] == [("Ms. Rivera", "teacher"), ("Jamal", "student")]
    assert tr.turns[1].text == "It grows by three\nevery step."
    assert tr.turns[1].clean_text == "It grows by three every step."
    assert (tr.turns[0].t_start, tr.turns[0].t_end) == (1.0, 4.5)
    assert (tr.turns[1].t_start, tr.turns[1].t_end) == (65.25, 69.0)


def test_plain_timestamps_continuations_and_colons_in_speech() -> None:
    text = (
        "[00:01:02] T: Okay, look at the board.\n"
        "00:01:10 S1: Is it 12?\n"
        "Teacher: Why do you think it is 12?\n"
        "Look at this: 3/4 of the strip.\n"
        "(00:02:00) Mr. Lee: Who agrees with Maya?\n"
        "Maya: Me.\n"
    )
    tr = parse_transcript(text)
    assert [t.speaker for t in tr.turns] == ["T", "S1", "Teacher", "Mr. Lee", "Maya"]
    assert tr.turns[2].text == "Why do you think it is 12?\nLook at this: 3/4 of the strip."
    assert [t.t_start for t in tr.turns] == [62.0, 70.0, None, 120.0, None]
    assert tr.turns[0].t_end == 70.0  # a timestamped line ends where the next one starts
    assert [t.line for t in tr.turns] == [1, 2, 3, 5, 6]


FORMATS = ["vtt", "srt", "plain"]
_word = st.text(alphabet=string.ascii_letters + "'", min_size=1, max_size=8)
_utterance = (
    st.lists(_word, min_size=1, max_size=12)
    .map(" ".join)
    .flatmap(lambda s: st.sampled_from(["", ".", "?", "!", ", ok."]).map(lambda p: s + p))
)
_speaker = st.sampled_from(["T", "S1", "SS", "Ms. Rivera", "Teacher", "Amy", "Jason C", "Student 2"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fmt=st.sampled_from(FORMATS),
    turns=st.lists(st.tuples(_speaker, _utterance), min_size=1, max_size=12),
)
def test_round_trip_every_format(fmt: str, turns: list[tuple[str, str]]) -> None:
    items = [(spk, txt, 2.0 * i, 2.0 * i + 1.5) for i, (spk, txt) in enumerate(turns)]
    text = render(items, fmt)
    tr = parse_transcript(text)
    assert tr.format == fmt
    assert [(t.speaker, t.text) for t in tr.turns] == [(s, x) for s, x, _, _ in items]
    for t, (_, _, t0, t1) in zip(tr.turns, items, strict=True):
        assert text[t.start : t.end] == t.text
        assert t.t_start == pytest.approx(t0)
        if fmt != "plain":
            assert t.t_end == pytest.approx(t1)


def test_render_srt_agrees_with_the_srt_library() -> None:
    """An independent parser reads our SRT the same way (guards against a self-consistent bug)."""
    items = [("T", "Why is it seven?", 1.0, 3.0), ("S2", "Because six ways.", 3.5, 6.25)]
    text = render(items, "srt")
    subs = list(srt.parse(text))
    ours = parse_transcript(text)
    assert [s.content for s in subs] == [f"{t.speaker}: {t.text}" for t in ours.turns]
    assert [s.start.total_seconds() for s in subs] == [t.t_start for t in ours.turns]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + " :.,-[]()>\n\t<v/", max_size=200))
def test_any_input_parses_with_exact_offsets_or_raises_transcript_error(text: str) -> None:
    try:
        tr = parse_transcript(text)
    except TranscriptError as exc:
        assert exc.line >= 1 and str(exc.line) in str(exc)
        return
    for t in tr.turns:
        assert text[t.start : t.end] == t.text
        assert t.role in ("teacher", "student", "other")


@pytest.mark.parametrize(
    "label,role",
    [
        ("T", "teacher"),
        ("T2", "teacher"),
        ("T 2", "teacher"),
        ("Teacher", "teacher"),
        ("Ms. Carroll", "teacher"),
        ("Ms.Carroll", "teacher"),
        ("Mrs Smith", "teacher"),
        ("Mr. Parker:", "teacher"),
        ("S", "student"),
        ("S1", "student"),
        ("SS", "student"),
        ("Ss", "student"),
        ("SN", "student"),
        ("Students", "student"),
        ("Student 3", "student"),
        ("Class", "student"),
        ("Amy", "student"),
        ("Jason C", "student"),
        ("Video", "other"),
        ("Observer", "other"),
        ("Speaker 2", "other"),
        ("R1", "other"),
    ],
)
def test_default_role_patterns(label: str, role: str) -> None:
    assert RolePatterns().role_of(label) == role


def test_role_overrides_and_custom_patterns() -> None:
    roles = RolePatterns(speakers={"Jeff": "teacher"}, other=(r"coach\s*\w*",))
    assert roles.role_of("jeff") == "teacher"
    assert roles.role_of("Coach Dee") == "other"
    with pytest.raises(ValueError, match="roles must be one of"):
        RolePatterns(speakers={"Jeff": "principal"})


def test_dominant_named_speaker_becomes_teacher_only_without_a_teacher_label() -> None:
    tutor = "Jeff: Let's look at problem four together and think about what the question asks us.\nAmy: Ok.\n"
    tr = parse_transcript(tutor * 3)
    assert tr.speakers == {"Jeff": "teacher", "Amy": "student"}
    with_t = "T: Hello class.\n" + tutor
    assert parse_transcript(with_t).speakers["Jeff"] == "student"
    assert parse_transcript(tutor, roles=RolePatterns(dominant_teacher=False)).speakers["Jeff"] == "student"


@pytest.mark.parametrize(
    "text,line,found",
    [
        ("WEBVTT\n\n00:00:01.000 -> 00:00:02.000\nhi\n", 3, "00:00:01.000 -> 00:00:02.000"),
        ("WEBVTT\n\n00:00:05.000 --> 00:00:02.000\nhi\n", 3, "00:00:05.000 --> 00:00:02.000"),
        ("1\n00:00:01,000 --> 00:00:02,000\nT: hi\n\nx\n00:00:03,000 --> 00:00:04,000\nT: yo\n", 5, "x"),
        ("1\n00:00:01,000 --> 00:00:02,000\nT: hi\n\n2\nT: no timing here\n", 6, "T: no timing here"),
        ("Lesson notes\nT: hi\n", 1, "Lesson notes"),
        ("\n\n   \n", 1, "an empty transcript"),
    ],
)
def test_malformed_input_names_the_line_and_what_was_found(text: str, line: int, found: str) -> None:
    with pytest.raises(TranscriptError) as info:
        parse_transcript(text)
    assert info.value.line == line
    assert info.value.found == found
    assert f"line {line}: expected" in str(info.value)


def test_forced_vtt_without_header_is_refused() -> None:
    with pytest.raises(TranscriptError, match="line 1: expected the header 'WEBVTT'"):
        parse_transcript("00:00:01.000 --> 00:00:02.000\nT: hi\n", format="vtt")


def test_teacher_view_ignores_student_turns() -> None:
    a = "T: Why do you think so?\nS1: Because it is even.\nT: Who agrees with her?\nS2: I do.\n"
    b = "T: Why do you think so?\nS1: No idea, totally different words here.\nT: Who agrees with her?\nS2: Nope.\n"
    assert field_text("transcript:teacher", a) == field_text("transcript:teacher", b)
    assert field_text("transcript:teacher", a) == "Why do you think so?\nWho agrees with her?"
    assert field_text("transcript:student", a) != field_text("transcript:student", b)
    assert field_text("transcript", a) != field_text("transcript", b)


def test_prose_is_not_mistaken_for_a_transcript() -> None:
    prose = "In this lesson I asked many questions.\nNote: next time I will wait longer.\nIt went well."
    assert not looks_like_transcript(prose)
    assert field_text("reflection", prose) == prose
    assert looks_like_transcript((EXAMPLES / "area-lesson.txt").read_text(encoding="utf-8"))


@pytest.mark.parametrize("prose", [
    "I asked many questions today and students answered well.\n\nAlso: next time I will wait longer.",
    "The exit ticket showed most students understood.\nNext steps: reteach equivalent fractions.\nAlso: pairs.",
    "Maya: she explained her thinking.",
])
def test_a_reflection_with_a_labelled_line_is_prose_read_as_written_not_a_refused_transcript(prose: str) -> None:
    """A reflection ending "Next steps: ..." was taken for a plain transcript (half its lines look like turns)
    and refused, 422 invalid_transcript, because its first line is not a turn."""
    assert not looks_like_transcript(prose)
    assert field_text("reflection", prose) == prose


def test_demo_jsonl_matches_the_example_files() -> None:
    import json

    rows = [json.loads(line) for line in (EXAMPLES / "demo.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert row["transcript"] == (EXAMPLES / row["transcript_file"]).read_text(encoding="utf-8")
        assert row["reflection"] == (EXAMPLES / row["reflection_file"]).read_text(encoding="utf-8")
        tr = parse_transcript(row["transcript"])
        assert tr.select("teacher") and tr.select("student")
        assert not looks_like_transcript(row["reflection"])
