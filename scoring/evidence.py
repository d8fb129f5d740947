"""What each criterion reads from a submission's evidence fields, and whether every criterion has something to read.

A criterion may read several fields (joined with a blank line, in the rubric's order) or narrow a
transcript to a role (``transcript:teacher``): then student turns cannot change its input, by design.

Every door a submission comes in by (a backlog row, ``POST /submissions``, a batch job) asks
:func:`evidence_problem` before anything is scored, so a transcript the parser refuses, or a criterion
whose own evidence is empty, is refused there with the row or field named, never found by the model
half-way through a backlog.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

from rubrics import Criterion, Rubric
from scoring.errors import InvalidRequest, ScoringError, TranscriptError
from scoring.transcripts import Transcript, as_transcript, field_text, split_spec

_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn"}  # controls, format (zero-width, BOM), surrogates, private, unassigned
_SPEAKERS_SHOWN = 6


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
    rubric: Rubric, evidence: Mapping[str, Any], label: Callable[[str], str] = field_label, *, partial: bool = False
) -> ScoringError | None:
    """Why a submission cannot be scored on every criterion, or None when it can.

    Two problems, checked in the rubric's order so a rerun finds the same one:

    - a field read as a transcript that the parser refuses: its :class:`TranscriptError`, naming the field
      (through ``label``: a backlog names its column, the API the field) and the line;
    - a criterion whose own evidence is empty (a blank transcript beside a written reflection, or a
      transcript without one turn of the role the criterion reads): an :class:`InvalidRequest` naming the
      criteria and why. A level given on evidence that is not there is not an assessment, and a person
      could not rate it either, so the submission is sent back to be completed rather than half-scored.

    Rows whose evidence is empty altogether are the caller's own check (their reason predates this one).

    ``partial`` (training files): a criterion with nothing to read is a problem only when no criterion has
    anything; the row still teaches the criteria whose evidence is there (:func:`criteria_without_evidence`
    names the others), where scoring it would give a level on nothing.
    """
    texts: dict[str, str] = {}
    for crit in rubric.criteria:
        for spec in rubric.evidence_for(crit):
            if spec in texts:
                continue
            try:
                texts[spec] = spec_text(spec, evidence)
            except TranscriptError as exc:
                return exc.at(label(split_spec(spec)[0]))
    if partial and any(texts.values()):
        return None
    return _empty_criteria(rubric, evidence, texts, label)


def criteria_without_evidence(
    rubric: Rubric, evidence: Mapping[str, Any], label: Callable[[str], str] = field_label
) -> dict[str, str]:
    """Criterion id -> why it has nothing to read in this evidence (none: every criterion has something).

    Raises
    ------
    scoring.errors.TranscriptError
        When a field read as a transcript cannot be parsed.
    """
    return {crit.id: " and ".join(_why_empty(spec, evidence, label) for spec in rubric.evidence_for(crit))
            for crit in rubric.criteria if not criterion_text(rubric, crit, evidence)}


def _empty_criteria(
    rubric: Rubric, evidence: Mapping[str, Any], texts: Mapping[str, str], label: Callable[[str], str]
) -> InvalidRequest | None:
    """The criteria with nothing to read, grouped by why (one reason for six transcript criteria, not six)."""
    groups: dict[str, list[str]] = {}
    for crit in rubric.criteria:
        specs = rubric.evidence_for(crit)
        if any(texts[spec] for spec in specs):
            continue
        why = " and ".join(_why_empty(spec, evidence, label) for spec in specs)
        groups.setdefault(why, []).append(crit.id)
    if not groups:
        return None
    said = "; ".join(f"{_criteria_words(ids)}: {why}" for why, ids in groups.items())
    return InvalidRequest(f"no evidence for {said} (no level is given on evidence that is not there)")


def _criteria_words(ids: list[str]) -> str:
    names = ", ".join(repr(i) for i in ids)
    return f"criterion {names}" if len(ids) == 1 else f"criteria {names}"


def _why_empty(spec: str, evidence: Mapping[str, Any], label: Callable[[str], str]) -> str:
    """Why one spec gave a criterion nothing: the field is blank, or the transcript lacks the role's turns."""
    name, role = split_spec(spec)
    value = evidence.get(name)
    if not _present(value):
        return f"{label(name)} holds no text"
    if role is None:
        return f"{label(name)} holds no readable text"
    speakers = as_transcript(value).speakers
    shown = ", ".join(f"{s or '(no label)'} = {r}" for s, r in list(speakers.items())[:_SPEAKERS_SHOWN])
    more = f", and {len(speakers) - _SPEAKERS_SHOWN} more" if len(speakers) > _SPEAKERS_SHOWN else ""
    return f"the transcript in {label(name)} has no {role} turns (speakers found: {shown}{more})"
