"""Evidence as the assessor page shows it: prose as text, transcripts as speaker turns, highlights marked.

Why turns: a classroom transcript arrives as WebVTT, SRT or "Speaker: text" lines; its raw source (cue
numbers, ``00:00:04.000 --> ...`` timings, ``<v Ms. Okafor>`` tags) is unreadable for an assessor. The
parser (``scoring.transcripts``) keeps every turn's offsets into the submitted text, and highlights carry
offsets into the same text, so a highlight is marked inside the turn it belongs to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rubrics.schema import Rubric
from scoring.errors import TranscriptError
from scoring.highlights import is_transcript_field
from scoring.transcripts import Transcript, looks_like_transcript, parse_transcript

_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&nbsp;": " "}


@dataclass
class Block:
    """One turn of a transcript (speaker, role, time) or a whole prose field (no speaker)."""

    segments: list[dict[str, Any]]
    speaker: str | None = None
    role: str | None = None
    time: str | None = None
    marked: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # criterion -> segments with marks


@dataclass
class FieldView:
    name: str
    kind: str  # "text" | "transcript"
    blocks: list[Block]
    format: str | None = None


def transcript_of(rubric: Rubric, name: str, value: Any) -> Transcript | None:
    """The parsed transcript of a field that holds one (by name or by content), else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    if not (is_transcript_field(rubric, name) or looks_like_transcript(value)):
        return None
    try:
        return parse_transcript(value)
    except TranscriptError:
        return None  # shown as text: the assessor still reads what was sent


def _clean(text: str, transcript: bool) -> str:
    if not transcript:
        return text
    text = _TAG.sub("", text)
    for k, v in _ENTITIES.items():
        text = text.replace(k, v)
    return text


def _clock(t: float | None) -> str | None:
    if t is None:
        return None
    s = int(t)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _cut(text: str, start: int, end: int, hls: list[dict[str, Any]], transcript: bool) -> list[dict[str, Any]]:
    """Segments of ``text[start:end]``: plain pieces and highlighted pieces (clipped to the block)."""
    spans = sorted(((max(int(h["start"]), start), min(int(h["end"]), end), h) for h in hls
                    if int(h["end"]) > start and int(h["start"]) < end), key=lambda x: x[0])
    out: list[dict[str, Any]] = []
    pos = start
    for s, e, h in spans:
        if s < pos or e <= s:
            continue
        if s > pos:
            out.append({"text": _clean(text[pos:s], transcript)})
        out.append({"text": _clean(text[s:e], transcript), "kind": h.get("kind"),
                    "strength": float(h.get("strength") or 0.0)})
        pos = e
    if pos < end:
        out.append({"text": _clean(text[pos:end], transcript)})
    return [seg for seg in out if seg["text"]]


def field_views(rubric: Rubric, evidence: dict[str, Any],
                highlights: dict[str, list[dict[str, Any]]] | None = None) -> list[FieldView]:
    """Every evidence field as blocks; ``highlights``: criterion -> its highlights (offsets into fields)."""
    highlights = highlights or {}
    out = []
    for name, value in evidence.items():
        text = value if isinstance(value, str) else str(value)
        tr = transcript_of(rubric, name, text)
        spans: list[tuple[int, int, Any]] = [(t.start, t.end, t) for t in tr.turns] if tr else [(0, len(text), None)]
        blocks = []
        for s, e, turn in spans:
            b = Block(_cut(text, s, e, [], tr is not None))
            if turn is not None:
                b.speaker, b.role, b.time = turn.speaker or "(no speaker)", turn.role, _clock(turn.t_start)
            for cid, hls in highlights.items():
                mine = [h for h in hls if h.get("field", name) in ("", name)]
                b.marked[cid] = _cut(text, s, e, mine, tr is not None)
            blocks.append(b)
        out.append(FieldView(name, "transcript" if tr else "text", blocks, tr.format if tr else None))
    return out
