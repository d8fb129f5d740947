"""Highlights for a trained scoring model: the door-level API the CLI and the assessor page call.

``models.highlights`` holds the math over abstract units; this module turns submitted evidence into
units (reflection sentences, transcript turns of the role a criterion reads) with offsets into the
text as submitted, and the criterion's whole-evidence probabilities into the target level.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from models.highlights import Highlight, Unit, accepts_embeddings, highlight_units, scorer_proba
from models.sentences import encode_pooled, split_sentences
from rubrics.schema import Criterion, Rubric
from scoring.evidence import criterion_text as pipeline_criterion_text
from scoring.transcripts import (
    RolePatterns,
    Transcript,
    as_transcript,
    looks_like_transcript,
    split_spec,
)

Evidence = Mapping[str, "str | Transcript"]


def is_transcript_field(rubric: Rubric, name: str) -> bool:
    """A field holds transcripts if its name says so or some criterion narrows it to a role."""
    if name.lower().startswith("transcript"):
        return True
    return any(spec.startswith(f"{name}:") for c in rubric.criteria for spec in c.evidence)


def as_evidence(rubric: Rubric, criterion: Criterion, value: str | Transcript | Evidence) -> dict[str, Any]:
    """Map what a caller passed (one text, one transcript, or a dict of fields) onto evidence fields.

    A lone text goes to the criterion's transcript field if it is (or looks like) a transcript,
    otherwise to its first prose field.
    """
    if isinstance(value, Mapping):
        return dict(value)
    bases = list(dict.fromkeys(split_spec(s)[0] for s in rubric.evidence_for(criterion)))
    trans = [b for b in bases if is_transcript_field(rubric, b)]
    prose = [b for b in bases if b not in trans]
    if isinstance(value, Transcript) or (trans and (not prose or looks_like_transcript(value))):
        return {(trans or bases)[0]: value}
    return {(prose or bases)[0]: value}


def criterion_units(
    rubric: Rubric, criterion: Criterion, evidence: Mapping[str, Any], roles: RolePatterns | None = None
) -> list[Unit]:
    """The units a criterion's highlights are chosen from, in reading order.

    Transcript fields give turns (only the narrowed role's, e.g. teacher turns for
    ``transcript:teacher``); prose fields give sentences. Offsets index the submitted field.
    """
    units: list[Unit] = []
    for spec in rubric.evidence_for(criterion):
        base, role = split_spec(spec)
        value = evidence.get(base)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if (
            role is not None
            or isinstance(value, Transcript)
            or (is_transcript_field(rubric, base) and looks_like_transcript(value, roles))
        ):
            tr = as_transcript(value, roles)
            units += [Unit(t.start, t.end, t.text, base, t.speaker, t.clean_text) for t in tr.select(role)]
        else:
            units += [Unit(a, b, value[a:b], base) for a, b in split_sentences(value)]
    return units


def criterion_text(
    rubric: Rubric, criterion: Criterion, evidence: Mapping[str, Any], roles: RolePatterns | None = None
) -> str:
    """The text a criterion's scorer reads: the pipeline's own ``scoring.evidence.criterion_text``.

    ``roles`` is accepted for symmetry with ``criterion_units``; the pipeline uses the default patterns.
    """
    return pipeline_criterion_text(rubric, criterion, {k: _raw(v) for k, v in evidence.items()})


def _raw(v: Any) -> Any:
    return v.original if isinstance(v, Transcript) else v


def document_proba(model: Any, criterion_id: str, text: str) -> np.ndarray:
    """Whole-evidence level probabilities, embedding long texts by whole lines (turns) per window."""
    scorer = model.scorers[criterion_id]
    encoder = getattr(model, "encoder", None)
    emb = None
    if encoder is not None and hasattr(encoder, "encode_windows") and accepts_embeddings(scorer):
        emb = encode_pooled(encoder, [[ln for ln in text.split("\n") if ln.strip()]])
    return scorer_proba(scorer, [text], emb)[0]


def highlights_for(
    model: Any,
    criterion_id: str,
    text_or_transcript: str | Transcript | Evidence,
    k: int = 3,
    level: int | None = None,
    roles: RolePatterns | None = None,
) -> list[Highlight]:
    """Top ``k`` supporting and top ``k`` counter units for one criterion of a trained model.

    Parameters
    ----------
    model
        Anything with ``rubric`` and ``scorers[criterion_id].predict_proba(texts)`` (a ``ScoringModel``).
    text_or_transcript
        One text, one parsed transcript, or a dict of evidence fields.
    level
        Score level to explain; default the level predicted for the whole evidence.
    """
    return explain(model, criterion_id, text_or_transcript, k, level, roles)["highlights"]


def explain(
    model: Any,
    criterion_id: str,
    text_or_transcript: str | Transcript | Evidence,
    k: int = 3,
    level: int | None = None,
    roles: RolePatterns | None = None,
) -> dict[str, Any]:
    """Score one criterion and highlight its evidence: ``{"score", "probabilities", "highlights"}``.

    ``score`` is the most probable level; highlights explain ``level`` when given, else that score.
    """
    rubric: Rubric = model.rubric
    crit = rubric.criterion(criterion_id)
    evidence = _parsed_evidence(rubric, crit, text_or_transcript, roles)
    doc = document_proba(model, criterion_id, criterion_text(rubric, crit, evidence, roles))
    scores = crit.scores
    best = scores[int(np.argmax(doc))]
    return {
        "score": best,
        "probabilities": {str(s): round(float(p), 4) for s, p in zip(scores, doc, strict=True)},
        "highlights": level_highlights(
            model, criterion_id, evidence, best if level is None else level, k, roles
        ),
    }


def level_highlights(
    model: Any,
    criterion_id: str,
    text_or_transcript: str | Transcript | Evidence,
    level: int,
    k: int = 3,
    roles: RolePatterns | None = None,
) -> list[Highlight]:
    """Highlights toward a known level (e.g. the score the batch job already decided): no document pass."""
    rubric: Rubric = model.rubric
    crit = rubric.criterion(criterion_id)
    if level not in crit.scores:
        raise ValueError(f"criterion {criterion_id!r} has levels {crit.scores}, found level {level}")
    evidence = _parsed_evidence(rubric, crit, text_or_transcript, roles)
    units = criterion_units(rubric, crit, evidence, roles)
    hl, _ = highlight_units(model.scorers[criterion_id], units, k=k, target=crit.scores.index(level))
    return hl


def highlight_hook(
    model: Any, k: int, roles: RolePatterns | None = None
) -> Callable[[list[Any], list[Any]], None]:
    """A ``scoring.batch.run_batch`` hook adding ``"highlights"`` to every criterion of every item.

    Highlights explain the score the batch job decided, so they always agree with the output row.
    Deterministic for a given block (a resumed block is written identically).
    """

    def hook(items: list[Any], records: list[Any]) -> None:
        for item, rec in zip(items, records, strict=True):
            for crit in model.rubric.criteria:
                res = item.criteria[crit.id]
                hl = level_highlights(model, crit.id, rec.evidence, res.score, k, roles)
                res.extra["highlights"] = [h.to_dict() for h in hl]

    return hook


def _parsed_evidence(
    rubric: Rubric, crit: Criterion, value: str | Transcript | Evidence, roles: RolePatterns | None
) -> dict[str, Any]:
    """Evidence fields with transcripts parsed once (every later step reuses the same turns)."""
    evidence = as_evidence(rubric, crit, value)
    return {
        name: (as_transcript(v, roles) if _is_transcript_value(rubric, name, v, roles) else v)
        for name, v in evidence.items()
    }


def _is_transcript_value(rubric: Rubric, name: str, v: Any, roles: RolePatterns | None) -> bool:
    if isinstance(v, Transcript):
        return False  # already parsed
    return isinstance(v, str) and is_transcript_field(rubric, name) and looks_like_transcript(v, roles)
