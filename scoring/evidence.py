"""What each criterion reads from a submission's evidence fields.

A criterion may read several fields (joined with a blank line, in the rubric's order) or narrow a
transcript to a role (``transcript:teacher``): then student turns cannot change its input, by design.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from rubrics import Criterion, Rubric
from scoring.transcripts import field_text, split_spec

_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn"}  # controls, format (zero-width, BOM), surrogates, private, unassigned


def has_text(value: str) -> bool:
    """Whether a string holds anything a reader could see.

    ``str.strip`` keeps zero-width spaces, joiners and byte-order marks, so evidence made only of them would
    otherwise be scored as if it were an answer.
    """
    return any(not ch.isspace() and unicodedata.category(ch) not in _INVISIBLE for ch in value)


def criterion_text(rubric: Rubric, criterion: Criterion, evidence: Mapping[str, Any]) -> str:
    """The exact text a criterion's scorer sees for one submission.

    Raises
    ------
    scoring.errors.TranscriptError
        When a field the criterion narrows to a role is not a parseable transcript.
    """
    parts = []
    for spec in rubric.evidence_for(criterion):
        value = evidence.get(split_spec(spec)[0])
        if value is None or (isinstance(value, str) and not has_text(value)):
            continue
        text = field_text(spec, value)
        if has_text(text):
            parts.append(text)
    return "\n\n".join(parts)
