"""The rubric model: what a micro-credential asks for, criterion by criterion.

A rubric file is the contract between an issuer and the scorer: every level a model may output, and
every evidence field it may read, is declared here, so a score outside the declared scale can be refused
at every door. Files are YAML; errors name the file, the field and the problem.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")


def _check_id(kind: str, v: str) -> str:
    if not _ID.match(v):
        raise ValueError(f"{kind} id {v!r} must be 1-80 letters, digits, '_', '-' or '.'")
    return v


class RubricError(ValueError):
    """A rubric file that cannot be used, with where and why.

    Parameters
    ----------
    source : str
        The file (or "<inline>") the rubric came from.
    field : str
        Dotted path to the offending field, e.g. ``criteria[questioning].levels[2].score``.
    problem : str
        What was expected and what was found.
    """

    def __init__(self, source: str, field: str, problem: str):
        self.source, self.field, self.problem = source, field, problem
        where = f"{source}: {field}: " if field else f"{source}: "
        super().__init__(where + problem)


def _not_bool(v: Any) -> Any:
    """YAML reads ``yes``/``true`` as booleans, which pydantic would quietly take as 1: refuse them."""
    if isinstance(v, bool):
        raise ValueError(f"expected a whole number, found {v!r} (a YAML boolean)")
    return v


Whole = Annotated[int, BeforeValidator(_not_bool)]


class Level(BaseModel):
    """One point of a criterion's ordered scale."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    score: Whole
    label: str = ""
    descriptor: str = ""
    exemplars: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _default_label(self) -> Level:
        if not self.label:
            object.__setattr__(self, "label", str(self.score))
        return self


class Scale(BaseModel):
    """Shorthand for a long numeric scale (e.g. an essay score 10-60) whose points carry no descriptors."""

    model_config = ConfigDict(extra="forbid")

    min: Whole
    max: Whole

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if self.max <= self.min:
            raise ValueError(f"scale.max ({self.max}) must be greater than scale.min ({self.min})")
        if self.max - self.min > 200:
            raise ValueError(f"scale spans {self.max - self.min + 1} points; at most 201 are supported")
        return self


class Criterion(BaseModel):
    """One row of the rubric, scored on its own ordered scale."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str
    description: str = ""
    evidence: tuple[str, ...] = Field(
        default=(),
        description="Evidence fields this criterion reads (default: all of the rubric's). A transcript field "
        "may be narrowed to a role, e.g. `transcript:teacher`.",
    )
    levels: tuple[Level, ...]

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        return _check_id("criterion", v)

    @model_validator(mode="before")
    @classmethod
    def _expand_scale(cls, data: Any) -> Any:
        if isinstance(data, dict) and "scale" in data:
            if "levels" in data:
                raise ValueError("give either `levels` or `scale`, not both")
            data = dict(data)
            try:
                scale = Scale.model_validate(data.pop("scale"))
            except ValidationError as exc:  # name it under `scale`, where the author wrote it
                e = exc.errors()[0]
                where = ".".join(str(x) for x in e["loc"])
                raise ValueError(f"scale{'.' + where if where else ''}: {e['msg'].removeprefix('Value error, ')}") from None
            data["levels"] = [{"score": s} for s in range(scale.min, scale.max + 1)]
        return data

    @field_validator("levels")
    @classmethod
    def _levels_ok(cls, v: tuple[Level, ...]) -> tuple[Level, ...]:
        if len(v) < 2:
            raise ValueError(f"a criterion needs at least 2 levels, found {len(v)}")
        scores = [lv.score for lv in v]
        dup = sorted({s for s in scores if scores.count(s) > 1})
        if dup:
            raise ValueError(f"level scores must be unique, found repeated {dup}")
        return tuple(sorted(v, key=lambda lv: lv.score))

    @property
    def scores(self) -> list[int]:
        """Level scores in ascending order: the column order of every probability matrix."""
        return [lv.score for lv in self.levels]

    def level(self, score: int) -> Level:
        for lv in self.levels:
            if lv.score == score:
                return lv
        raise KeyError(score)

    @property
    def has_descriptors(self) -> bool:
        return all(lv.descriptor or lv.exemplars for lv in self.levels)


class Rubric(BaseModel):
    """A versioned rubric. Once a version has scored anything it is immutable: change means a new version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    version: Whole = Field(ge=1)
    title: str
    description: str = ""
    evidence: tuple[str, ...] = Field(min_length=1)
    criteria: tuple[Criterion, ...] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        return _check_id("rubric", v)

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        ids = [c.id for c in self.criteria]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"criterion ids must be unique, found repeated {dup}")
        for c in self.criteria:
            for ev in c.evidence:
                base = ev.split(":", 1)[0]
                if base not in self.evidence:
                    raise ValueError(
                        f"criterion {c.id!r} reads evidence {ev!r}, but the rubric declares only {list(self.evidence)}"
                    )
        return self

    def criterion(self, criterion_id: str) -> Criterion:
        for c in self.criteria:
            if c.id == criterion_id:
                return c
        raise KeyError(f"rubric {self.id} v{self.version} has no criterion {criterion_id!r}")

    def evidence_for(self, criterion: Criterion) -> tuple[str, ...]:
        return criterion.evidence or self.evidence

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"

    def fingerprint(self) -> str:
        """Content hash: two files with the same id+version but different content are caught by this."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _loc_to_path(loc: tuple[Any, ...], raw: Any) -> str:
    """Turn pydantic's location tuple into ``criteria[questioning].levels[2].score``."""
    parts: list[str] = []
    node = raw
    for item in loc:
        if isinstance(item, int):
            label = str(item)
            if isinstance(node, list) and 0 <= item < len(node) and isinstance(node[item], dict) and "id" in node[item]:
                label = str(node[item]["id"])
            parts[-1:] = [f"{parts[-1]}[{label}]"] if parts else [f"[{label}]"]
            node = node[item] if isinstance(node, list) and 0 <= item < len(node) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)


def parse_rubric(data: Any, source: str = "<inline>") -> Rubric:
    """Validate a rubric already read into Python objects.

    Raises
    ------
    RubricError
        Naming the source, the field and the problem of the first error found.
    """
    if not isinstance(data, dict):
        raise RubricError(source, "", f"expected a mapping at the top level, found {type(data).__name__}")
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = _loc_to_path(tuple(err["loc"]), data)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "extra_forbidden":
            msg = f"unknown field (found {err.get('input')!r}); check the spelling against the rubric schema"
        others = [f"{_loc_to_path(tuple(e['loc']), data)}: {e['msg'].removeprefix('Value error, ')}"
                  for e in exc.errors()[1:4]]
        more = f"; also {'; '.join(others)}" if others else ""
        if len(exc.errors()) > 4:
            more += f" (and {len(exc.errors()) - 4} more)"
        raise RubricError(source, field, msg + more) from None


def load_rubric(path: str | Path) -> Rubric:
    """Read and validate a rubric YAML (or JSON) file."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise RubricError(str(p), "", "file not found") from None
    except UnicodeDecodeError as exc:
        raise RubricError(str(p), "", f"not UTF-8 text (byte {exc.start}): save the file as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise RubricError(str(p), "", f"{where}invalid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_rubric(data, str(p))


BUNDLED_DIR = Path(__file__).parent / "bundled"


def bundled_rubrics() -> dict[str, Path]:
    """Rubric files shipped with the package, by file stem."""
    return {p.stem: p for p in sorted(BUNDLED_DIR.rglob("*.yaml"))}
