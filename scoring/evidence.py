"""What each criterion reads from a submission's evidence fields, and whether every criterion has something to read.

A criterion may read several fields (joined with a blank line, in the rubric's order) or narrow a
transcript to a role (``transcript:teacher``): then student turns cannot change its input, by design.

Every door a submission comes in by (a backlog row, ``POST /submissions``, a batch job) asks
:func:`evidence_problem` before anything is scored, so a transcript the parser refuses is refused there
with the row or field named, never found by the model half-way through a backlog.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

from rubrics import Criterion, Rubric
from scoring.errors import ScoringError, TranscriptError
from scoring.transcripts import Transcript, field_text, split_spec

_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn"}  # controls, format (zero-width, BOM), surrogates, private, unassigned


def has_text(value: str) -> bool:
    """Whether a string holds anything a reader could see.

    ``str.strip`` keeps zero-width spaces, joiners and byte-order marks, so evidence made only of them would
    otherwise be scored as if it were an answer.
    """
    return any(not ch.isspace() and unicodedata.category(ch) not in _INVISIBLE for ch in value)


def _present(value: Any) -> TypeGuard[str | Transcript]:
    """Whether an evidence value holds anything to read (a parsed transcript always does)."""
    return value is not None and (not isinstance(value, str) or has_text(value))


def spec_text(spec: str, evidence: Mapping[str, Any]) -> str:
    """What one evidence spec (``reflection``, ``transcript:teacher``) gives a criterion; ``""`` for nothing.

    Raises
    ------
    scoring.errors.TranscriptError
        When the field is read as a transcript and the parser refuses it.
    """
    value = evidence.get(split_spec(spec)[0])
    if not _present(value):
        return ""
    text = field_text(spec, value)
    return text if has_text(text) else ""


def criterion_text(rubric: Rubric, criterion: Criterion, evidence: Mapping[str, Any]) -> str:
    """The exact text a criterion's scorer sees for one submission.

    Raises
    ------
    scoring.errors.TranscriptError
        When a field the criterion reads as a transcript cannot be parsed.
    """
    parts = (spec_text(spec, evidence) for spec in rubric.evidence_for(criterion))
    return "\n\n".join(p for p in parts if p)


def field_label(name: str) -> str:
    """How an API caller knows an evidence field: by its name in the request."""
    return f"field {name!r}"


def evidence_problem(
    rubric: Rubric, evidence: Mapping[str, Any], label: Callable[[str], str] = field_label
) -> ScoringError | None:
    """Why a submission cannot be scored on every criterion, or None when it can.

    A field read as a transcript that the parser refuses gives its :class:`TranscriptError`, naming the
    field (through ``label``: a backlog names its column, the API the field) and the line. Checked in the
    rubric's order, so a rerun finds the same problem.

    Rows whose evidence is empty altogether are the caller's own check (their reason predates this one).
    """
    for crit in rubric.criteria:
        for spec in rubric.evidence_for(crit):
            try:
                spec_text(spec, evidence)
            except TranscriptError as exc:
                return exc.at(label(split_spec(spec)[0]))
    return None
