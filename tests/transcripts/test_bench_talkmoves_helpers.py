"""The TalkMoves benchmark's data handling, on a small synthetic file (never the real data)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eval.bench_talkmoves import (
    _p_at_k,
    load_lessons,
    long_transcript,
    normalise_tag,
    split_lessons,
    turn_labels,
)
from scoring.transcripts import parse_transcript


@pytest.mark.parametrize(
    "tag,code",
    [
        ("8 - press for  accuracy", 8),
        ("8 - Press for Accuracy", 8),
        ("8 - PreStudents for Accuracy", 8),
        ("3 - gettingSSto relate", 3),
        ("7\\", 7),
        ("1", 1),
        ("128", None),
        ("\\", None),
        ("", None),
    ],
)
def test_tag_spellings_normalise_to_the_move_number(tag: str, code: int | None) -> None:
    assert normalise_tag(tag) == code


def _csv(tmp_path: Path) -> Path:
    rows = [
        # file, TimeStamp, Turn, Speaker, Sentence, Teacher Tag, Student Tag
        ("a.xlsx", "00:00:05", "1", "T", "Okay, look at the board.", "2 - Keeping Everyone Together", ""),
        ("a.xlsx", "", "1", "T", "Why do you think so?", "9 - press for reasoning", ""),
        ("a.xlsx", "00:00:20", "2", "S", "Because it is even.", "", "1 - None"),
        ("a.xlsx", "", "3", " Teacher", "Who agrees with her?", "3 - Getting SS to Relate", ""),
        ("a.xlsx", "", "3", " Teacher", "", "1 - None", ""),  # empty sentence: skipped
        ("b.xlsx", "", "1", "Jeff", "Let's look at problem four and what the question asks.", "1 - none", ""),
        ("b.xlsx", "", "2", "Amy", "Ok.", "", "1 - None"),
        ("b.xlsx", "", "3", "Jeff", "What exactly is the denominator here?", "8 - press for  accuracy", ""),
    ]
    df = pd.DataFrame(
        rows, columns=["file", "TimeStamp", "Turn", "Speaker", "Sentence", "Teacher Tag", "Student Tag"]
    ).assign(subset="Subset 1")
    path = tmp_path / "talkmoves_transcripts.csv"
    df.to_csv(path, index=False)
    return tmp_path


@pytest.mark.parametrize("unit,n_lines", [("utterance", [4, 3]), ("turn", [3, 3])])
def test_lessons_become_parseable_transcripts_with_codes_per_line(
    tmp_path: Path, unit: str, n_lines: list[int]
) -> None:
    lessons = load_lessons(_csv(tmp_path), unit=unit)
    assert [le.file for le in lessons] == ["a.xlsx", "b.xlsx"]
    assert [len(le.codes) for le in lessons] == n_lines
    for le in lessons:
        le.transcript = parse_transcript(le.text, format="plain")
        lines, codes, coded = turn_labels(le)
        assert len(lines) == len(le.transcript.turns) == len(codes) == len(coded)
    a, b = lessons
    assert a.text.startswith("[00:00:05] T: Okay, look at the board.")
    teacher = [c for t, c in zip(a.transcript.turns, turn_labels(a)[1], strict=True) if t.role == "teacher"]
    all_codes = set().union(*teacher)
    assert {2, 9, 3} <= all_codes
    # Jeff has no teacher-like label but talks most: inferred teacher; the role agrees with the coding.
    assert b.transcript.speakers == {"Jeff": "teacher", "Amy": "student"}
    assert [t.role == "teacher" for t in b.transcript.turns] == turn_labels(b)[2]


def test_split_is_by_lesson_and_reproducible(tmp_path: Path) -> None:
    base = load_lessons(_csv(tmp_path))
    lessons = [replace(le, file=f"{i}-{le.file}") for i in range(5) for le in base]
    tr1, te1 = split_lessons(lessons, 13, 0.2)
    tr2, te2 = split_lessons(lessons, 13, 0.2)
    assert [x.file for x in te1] == [x.file for x in te2] and len(te1) == 2 and len(tr1) == 8
    assert not {x.file for x in tr1} & {x.file for x in te1}
    assert [x.file for x in split_lessons(lessons, 14, 0.2)[1]] != [x.file for x in te1] or len(lessons) < 3


def test_precision_at_k_and_long_transcript(tmp_path: Path) -> None:
    assert _p_at_k(np.array([0.9, 0.1, 0.8, 0.7]), np.array([1, 1, 0, 1]), 2) == 0.5
    lessons = load_lessons(_csv(tmp_path))
    text = long_transcript(lessons, words=10)
    assert len(text.split()) >= 10 and parse_transcript(text).turns
