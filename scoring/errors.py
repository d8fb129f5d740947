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


class NoCredential(Conflict):
    """The submission has no issued credential (nothing to revoke)."""

    code = "no_credential"


class ExternalIdTaken(Conflict):
    """Another issuer already sent a submission with this external id for this rubric.

    Why a conflict and not the stored result: ids are per rubric, and answering with the other issuer's
    scores (or comparing content with theirs) would show one issuer another's data.
    """

    code = "external_id_taken"


class SameRater(Conflict):
    """The assessor already rated this submission's criterion: two ratings must come from two people."""

    code = "same_rater"


class AlreadyAdjudicated(Conflict):
    """A submission x criterion already has its resolved score: a second one would leave two "final" scores."""

    code = "already_adjudicated"


class NothingToAdjudicate(Conflict):
    """The ratings of a criterion do not disagree beyond the adjudication gap (or the second is missing):
    a resolved score there would override the raters, not resolve them."""

    code = "nothing_to_adjudicate"


class TooManyHeld(Conflict):
    """An assessor asking for another queue item while holding the most one person may hold at once."""

    code = "too_many_held"


class JobFinished(Conflict):
    """A batch job that has ended (done, failed or cancelled) cannot be cancelled."""

    code = "job_finished"


class LastAdminKey(Conflict):
    """Revoking this key would leave no active admin key: nobody could manage keys over the API."""

    code = "last_admin_key"


class RubricImmutable(Conflict):
    """A rubric id+version is already registered with a different fingerprint: bump the version."""

    code = "rubric_immutable"


class StoreUrlError(ScoringError):
    """A store URL (``--store``, ``--db``, SCORING_DATABASE_URL) that names no database this install can open."""

    code = "invalid_store_url"


class StoreTooNew(ScoringError):
    """A store whose schema a newer release upgraded: this release does not know its tables and rules, so it
    opens nothing there (an older release writing into a newer schema could break what the newer one keeps)."""

    code = "store_too_new"


class NoStore(ScoringError):
    """A database a read-only command was pointed at that holds no store (an empty file, another
    application's tables, a file that is not SQLite). Why an error and not a new store: creating one there
    would alter someone else's file and report on nothing, silently."""

    code = "no_store"


class ScoreOutOfScale(ScoringError):
    """A score that is not one of the criterion's declared levels."""

    code = "score_out_of_scale"


class InvalidScoreKind(ScoringError):
    """A human score kind other than first / second / audit / adjudication."""

    code = "invalid_score_kind"


class AuditChainBroken(ScoringError):
    """The append-only audit log failed verification (an entry was edited, removed or re-ordered)."""

    code = "audit_chain_broken"


# transcripts
class TranscriptError(ScoringError, ValueError):
    """A transcript that cannot be parsed: names the 1-based line, what was expected and what was found."""

    code = "invalid_transcript"

    def __init__(self, line: int, expected: str, found: str, source: str = "transcript", where: str | None = None):
        self.line, self.expected, self.found, self.source, self.where = line, expected, found, source, where
        shown = found if len(found) <= 80 else found[:77] + "..."
        said = f"{source}, line {line}: expected {expected}, found {shown!r}"
        super().__init__(f"{where} is not a readable transcript: {said}" if where else said)

    def at(self, where: str) -> TranscriptError:
        """The same problem, naming the evidence it is in (``field 'transcript'``, ``column 'lesson'``): a
        backlog or an API call holds many texts, and a line number alone does not say which one to fix."""
        return TranscriptError(self.line, self.expected, self.found, self.source, where)


# service API
class Unauthorized(ScoringError):
    """No API key, or one that is unknown, malformed or revoked (HTTP 401)."""

    code = "unauthorized"


class AmbiguousCredentials(ScoringError):
    """Both ``X-API-Key`` and ``Authorization`` were sent: one request names one key (HTTP 400)."""

    code = "ambiguous_credentials"


class Forbidden(ScoringError):
    """A valid key whose role may not do this, or an item/result that belongs to someone else (HTTP 403)."""

    code = "forbidden"


class LeaseExpired(Conflict):
    """A queue item submitted or released after its lease ran out or passed to another assessor."""

    code = "lease_expired"


class AlreadyScored(Conflict):
    """A queue item whose scores were already submitted (a second submit would double-count a rater)."""

    code = "already_scored"


class IdempotencyKeyReused(Conflict):
    """An ``Idempotency-Key`` sent again with a different request body, or while the first is in flight."""

    code = "idempotency_key_reused"


class PayloadTooLarge(ScoringError):
    """A request body over the configured limit (HTTP 413)."""

    code = "payload_too_large"


class InvalidRequest(ScoringError):
    """A well-formed request the domain cannot accept (missing criterion, unknown evidence field...)."""

    code = "invalid_request"


class CredentialsUnconfigured(ScoringError):
    """This server holds no signing key or issuer for Open Badges credentials (HTTP 503)."""

    code = "credentials_unconfigured"


class ModelUnavailable(ScoringError):
    """No scoring model is loaded or registered for the rubric a submission names (HTTP 503)."""

    code = "model_unavailable"


# routing
class PolicyError(ScoringError, ValueError):
    """A routing policy file that is missing, invalid, or tuned for another model/rubric."""

    code = "invalid_policy"


class CalibrationDataError(ScoringError, ValueError):
    """Calibration data that cannot tune a policy (too few scored items, unknown criterion, bad column)."""

    code = "invalid_calibration_data"
