"""Domain errors shared by every door (CLI, API, batch job).

Keep this a flat list: each class derives from :class:`ScoringError` and carries a stable ``code`` the
API can return and a client can switch on. Messages say what was expected and what was found.
"""

from __future__ import annotations


class ScoringError(Exception):
    """Base of every domain error; ``code`` is a stable machine-readable identifier."""

    code: str = "scoring_error"


class NotFound(ScoringError):
    """A rubric, submission, criterion, model or score that the caller named does not exist."""

    code = "not_found"


class Conflict(ScoringError):
    """The request contradicts something already stored."""

    code = "conflict"


class DuplicateSubmission(Conflict):
    """The same external id was submitted again for the same rubric with different content."""

    code = "duplicate_submission"


class RubricImmutable(Conflict):
    """A rubric id+version is already registered with a different fingerprint: bump the version."""

    code = "rubric_immutable"


class ScoreOutOfScale(ScoringError):
    """A score that is not one of the criterion's declared levels."""

    code = "score_out_of_scale"


class InvalidScoreKind(ScoringError):
    """A human score kind other than first / second / audit / adjudication."""

    code = "invalid_score_kind"


class AuditChainBroken(ScoringError):
    """The append-only audit log failed verification (an entry was edited, removed or re-ordered)."""

    code = "audit_chain_broken"


# --- issue #5 (transcripts): begin ---------------------------------------------------------------
class TranscriptError(ScoringError, ValueError):
    """A transcript that cannot be parsed: names the 1-based line, what was expected and what was found."""

    code = "invalid_transcript"

    def __init__(self, line: int, expected: str, found: str, source: str = "transcript"):
        self.line, self.expected, self.found, self.source = line, expected, found, source
        shown = found if len(found) <= 80 else found[:77] + "..."
        super().__init__(f"{source}, line {line}: expected {expected}, found {shown!r}")


# --- issue #5 (transcripts): end -----------------------------------------------------------------
