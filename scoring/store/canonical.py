"""The canonical JSON forms an audit log can be hashed with, and the one fixed per store.

Why two: an entry's hash is SHA-256 over the canonical JSON of ``{seq, event, payload, prev}``, and a
third party must be able to recompute it. Stores created now use RFC 8785, the JSON Canonicalization
Scheme (``rfc8785``), which any JCS library reproduces. Stores whose log was started before use
``python-json``: Python's ``json.dumps`` with sorted keys, no spaces and UTF-8 kept, which spells some
numbers differently (``0.0``, ``1e-05``) and orders keys outside the Basic Multilingual Plane differently.
Their hashes cannot change without breaking every signed checkpoint, so they keep that form.

Why the form is fixed per store and never guessed per entry: a verifier that accepted an entry when
*either* form reproduced its hash would let whoever edits the database pick the form that suits a
forged entry. The store records its form once (``store_settings``, written by the migration that
introduced it: ``python-json`` for a log that already had entries, ``rfc8785`` otherwise), every signed
checkpoint names it, and verification uses that one form for every entry. The chain itself commits to
it too: the first entry's ``prev`` is the form's genesis value (64 zeros for ``python-json``, as it always
was; SHA-256 of ``rubric-scoring/audit canonical-form rfc8785`` for ``rfc8785``), so switching a store's
recorded form breaks the link of entry 1 unless the whole log is rehashed, which checkpoints catch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import rfc8785

from scoring.errors import ScoringError

RFC8785 = "rfc8785"
PYTHON_JSON = "python-json"
SETTING = "canonical_form"  # the store_settings key that holds a store's form
SAFE_INT = 2**53 - 1  # the largest integer an IEEE double (so RFC 8785) holds exactly


class CanonicalFormError(ScoringError):
    """A store whose canonical form is missing or unknown: its log cannot be hashed or verified."""

    code = "unknown_canonical_form"


def _python_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _jcs(obj: Any) -> str:
    """RFC 8785 text; a non-finite float or an integer beyond 2**53 (no JSON number for it) is a ValueError."""
    return rfc8785.dumps(obj).decode("utf-8")


def _jcs_int(text: str) -> int | float:
    """RFC 8785 writes a large whole float (``1e20``) as digits; reading those back as a float keeps the
    number it was, so it canonicalises to the same text again instead of being refused as an unsafe int."""
    n = int(text)
    return n if -SAFE_INT <= n <= SAFE_INT else float(n)


@dataclass(frozen=True)
class CanonicalForm:
    """One way of spelling JSON canonically: ``dumps`` makes the text that is hashed, ``loads`` reads a
    stored payload back so that ``dumps(loads(text)) == text``."""

    name: str

    @property
    def genesis(self) -> str:
        """The ``prev`` of entry 1: what makes the chain say which form hashed it."""
        if self.name == PYTHON_JSON:
            return "0" * 64
        return hashlib.sha256(f"rubric-scoring/audit canonical-form {self.name}".encode()).hexdigest()

    def dumps(self, obj: Any) -> str:
        return _jcs(obj) if self.name == RFC8785 else _python_json(obj)

    def loads(self, text: str) -> Any:
        return json.loads(text, parse_int=_jcs_int) if self.name == RFC8785 else json.loads(text)

    def hashed_text(self, seq: int, event: str, payload: Any, prev_hash: str) -> str:
        """The exact text whose SHA-256 (over its UTF-8 bytes) is an entry's hash.

        Why it is handed out with every proof: a third party can check it hashes to the entry and parses to
        it without a canonicaliser at all; with one for this form (any RFC 8785 library for ``rfc8785``)
        they can also rebuild it from the entry."""
        return self.dumps({"seq": seq, "event": event, "payload": payload, "prev": prev_hash})

    def entry_hash(self, seq: int, event: str, payload_json: str, prev_hash: str) -> str:
        """Hash of one entry; ``payload_json`` is parsed back so that only its content, not its spelling, counts."""
        text = self.hashed_text(seq, event, self.loads(payload_json), prev_hash)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def spliced_hash(self, seq: int, event_literal: str, canonical_payload: str, prev_hash: str) -> str:
        """:meth:`entry_hash` for a payload already in this form: the text is spliced, not re-serialised.

        Both forms order the four ASCII keys the same way and write the payload's canonical text inside
        the entry's unchanged, so the splice is byte-for-byte :meth:`hashed_text`."""
        return hashlib.sha256(f'{{"event":{event_literal},"payload":{canonical_payload},"prev":"{prev_hash}",'
                              f'"seq":{seq}}}'.encode()).hexdigest()


JCS_FORM = CanonicalForm(RFC8785)
PYTHON_JSON_FORM = CanonicalForm(PYTHON_JSON)
FORMS = {f.name: f for f in (JCS_FORM, PYTHON_JSON_FORM)}
NEW_STORE_FORM = JCS_FORM


def form_named(name: str | None) -> CanonicalForm:
    """The form a store or checkpoint names; :class:`CanonicalFormError` for none or one this release lacks."""
    if name is None:
        raise CanonicalFormError("the store records no canonical form (store_settings has no canonical_form row), "
                                 "so its audit log cannot be hashed or verified; it was deleted outside the service")
    form = FORMS.get(name)
    if form is None:
        raise CanonicalFormError(f"the store's canonical form {name!r} is not one this release knows "
                                 f"({', '.join(sorted(FORMS))})")
    return form
