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
from typing import Annotated, Any, Literal

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
ROLES: tuple[str, ...] = ("teacher", "student", "other")  # what `transcript:ROLE` narrows a field to (the speakers' roles)


def _check_id(kind: str, v: str) -> str:
    if not _ID.match(v):
        odd = sorted({ch for ch in v if not (ch.isascii() and (ch.isalnum() or ch in "_.-"))})
        found = f"; found {', '.join(repr(ch) for ch in odd)}" if odd else ""
        raise ValueError(f"{kind} id {v!r} must be 1-80 plain ASCII letters (a-z, A-Z), digits, '_', '-' or '.', "
                         f"starting with a letter or digit{found} (titles and labels may use any characters)")
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
        return all(lv.descriptor.strip() or lv.exemplars for lv in self.levels)


PerCriterion = Whole | dict[str, Whole]


class Award(BaseModel):
    """When the micro-credential is earned, from the criterion levels (versioned with the rubric).

    ``min_level``: every criterion (an integer) or each named criterion (a mapping) at or above that level.
    ``min_total``: the sum of the criterion scores (of ``total_of``, default all) at least this, with no
    criterion below ``floor`` (an integer for all, or a mapping). At least one of the two must be given;
    with both, both must hold.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_level: PerCriterion | None = None
    min_total: Whole | None = None
    floor: PerCriterion | None = None
    total_of: tuple[str, ...] = ()
    description: str = Field(default="", description="The rule in the issuer's words (shown in feedback).")

    @model_validator(mode="after")
    def _something(self) -> Award:
        if self.min_level is None and self.min_total is None:
            raise ValueError("give min_level (every criterion at or above a level) or min_total (a minimum sum), or both")
        if self.floor is not None and self.min_total is None:
            raise ValueError("floor only applies with min_total (use min_level for a per-criterion minimum alone)")
        if self.total_of and self.min_total is None:
            raise ValueError("total_of only applies with min_total")
        return self

    def thresholds(self, rubric: Rubric) -> dict[str, int]:
        """The lowest level each criterion may have for the credential to be earned (its scale minimum when
        the rule sets none)."""
        out = {c.id: c.scores[0] for c in rubric.criteria}
        for part in (self.min_level, self.floor):
            if part is None:
                continue
            items = part.items() if isinstance(part, dict) else ((c.id, part) for c in rubric.criteria)
            for cid, lv in items:
                out[cid] = max(out[cid], int(lv))
        return out

    def total_criteria(self, rubric: Rubric) -> tuple[str, ...]:
        return self.total_of or tuple(c.id for c in rubric.criteria)

    def earned(self, rubric: Rubric, levels: dict[str, int]) -> bool:
        """Whether these criterion levels earn the credential."""
        th = self.thresholds(rubric)
        if any(levels[c] < t for c, t in th.items()):
            return False
        return self.min_total is None or sum(levels[c] for c in self.total_criteria(rubric)) >= self.min_total

    def describe(self, rubric: Rubric) -> str:
        """The rule in plain words (the issuer's ``description`` first when given)."""
        if self.description:
            return " ".join(self.description.split())
        parts = []
        if self.min_level is not None:
            if isinstance(self.min_level, dict):
                parts.append(", ".join(f"{rubric.criterion(c).title} at level {rubric.criterion(c).level(v).label} "
                                       f"({v}) or above" for c, v in self.min_level.items()))
            else:
                parts.append(f"every criterion at level {self.min_level} or above")
        if self.min_total is not None:
            names = "the criterion scores" if not self.total_of else " + ".join(self.total_of)
            floor = ""
            if self.floor is not None:
                floor = (f", no criterion below {self.floor}" if not isinstance(self.floor, dict)
                         else ", " + ", ".join(f"{c} at least {v}" for c, v in self.floor.items()))
            parts.append(f"{names} add up to at least {self.min_total}{floor}")
        return "Earned when " + "; and ".join(parts) + "."


class Rubric(BaseModel):
    """A versioned rubric. Once a version has scored anything it is immutable: change means a new version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    version: Whole = Field(ge=1)
    title: str
    description: str = ""
    evidence: tuple[str, ...] = Field(min_length=1)
    criteria: tuple[Criterion, ...] = Field(min_length=1)
    award: Award | None = Field(default=None, description="When the micro-credential is earned (none: criterion "
                                "scores only, no credential decision).")
    rationale: Literal["always", "disagreement", "disagreement_or_lowest", "never"] | None = Field(
        default=None, description="When an assessor must write a rationale (none: the server's setting).")

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        return _check_id("rubric", v)

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        """Every problem across criteria and the award rule at once (one fix-and-retry per file, not per
        problem): a repeated criterion id must not hide an award rule that names a missing one."""
        problems: list[str] = []
        ids = [c.id for c in self.criteria]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            problems.append(f"criterion ids must be unique, found repeated {dup}")
        for c in self.criteria:
            for ev in c.evidence:
                base, colon, role = ev.partition(":")
                if base not in self.evidence:
                    problems.append(f"criterion {c.id!r} reads evidence {ev!r}, but the rubric declares only "
                                    f"{list(self.evidence)}")
                elif colon and role.strip().lower() not in ROLES:
                    problems.append(f"criterion {c.id!r} reads evidence {ev!r}: a transcript field narrows to the "
                                    f"turns of one role, {' / '.join(ROLES)}; found {role.strip()!r}")
        if self.award is not None:
            problems += self._award_problems(self.award)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _award_problems(self, a: Award) -> list[str]:
        out: list[str] = []
        by_id = {c.id: c for c in self.criteria}
        for name, part in (("min_level", a.min_level), ("floor", a.floor)):
            if part is None:
                continue
            items = part.items() if isinstance(part, dict) else ((c, part) for c in by_id)
            for cid, lv in items:
                if cid not in by_id:
                    out.append(f"award.{name} names criterion {cid!r}, which the rubric does not have "
                               f"(criteria: {list(by_id)})")
                elif lv not in by_id[cid].scores:
                    out.append(f"award.{name}: level {lv} is not on the scale of {cid!r} {by_id[cid].scores}")
        unknown = [c for c in a.total_of if c not in by_id]
        if unknown:
            out.append(f"award.total_of names {unknown}, which the rubric does not have (criteria: {list(by_id)})")
        elif a.min_total is not None:
            crits = [by_id[c] for c in a.total_criteria(self)]
            lo, hi = sum(c.scores[0] for c in crits), sum(c.scores[-1] for c in crits)
            if not lo < a.min_total <= hi:
                out.append(f"award.min_total {a.min_total} must lie above {lo} and at most {hi} "
                           "(otherwise every or no submission earns the credential)")
        return out

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
        return body_fingerprint(self.model_dump(mode="json"))


def body_fingerprint(body: dict[str, Any]) -> str:
    """The fingerprint of a rubric's JSON body (``model_dump(mode="json")``, as the store keeps it).

    Why a function of the body and not of a parsed rubric: ``scoring audit verify`` recomputes it from the
    stored body to catch a rubric edited in the database, and must get the value logged at registration
    even if a later release parses rubrics differently."""
    body = dict(body)
    if body.get("award") is None:  # rubrics without an award rule keep the fingerprint they always had
        body.pop("award", None)
    if body.get("rationale") is None:  # likewise rubrics that leave the rationale rule to the server
        body.pop("rationale", None)
    blob = json.dumps(body, sort_keys=True).encode()
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
        raise RubricError(source, "", "expected a mapping of fields (id, version, title, evidence, criteria) at "
                          f"the top level, found {_kind(data)}")
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        # an error inside a list item also fails the list around it ("criteria: at least 1 item"): keep the cause
        errs: list[Any] = []
        for e in exc.errors():
            loc = tuple(e["loc"])
            if not any(tuple(x["loc"])[:len(loc)] == loc for x in errs):
                errs.append(e)
        err = errs[0]
        field = _loc_to_path(tuple(err["loc"]), data)
        msg = _in_words(err)
        others = [f"{_loc_to_path(tuple(e['loc']), data)}: {_in_words(e)}" for e in errs[1:4]]
        more = f"; also {'; '.join(others)}" if others else ""
        if len(errs) > 4:
            more += f" (and {len(errs) - 4} more)"
        raise RubricError(source, field, msg + more) from None


def _kind(value: Any) -> str:
    """What a YAML value is, as an author would say it."""
    if value is None:
        return "nothing (the file or field is empty)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a yes/no value)"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, dict):
        return "a mapping"
    return "a value of another kind"


def _in_words(e: Any) -> str:
    """One pydantic error in the author's words: what was expected and what was found."""
    kind, ctx, found = e["type"], e.get("ctx") or {}, e.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return f"unknown field (found {found!r}); check the spelling against the rubric schema"
    if kind == "too_short":
        return f"expected at least {ctx.get('min_length')} item(s), found {ctx.get('actual_length', 0)}"
    if kind == "too_long":
        return f"expected at most {ctx.get('max_length')} item(s), found {ctx.get('actual_length')}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, found {_kind(found)}"
    if kind in ("string_type",):
        return f"expected text, found {_kind(found)}"
    if kind in ("tuple_type", "list_type"):
        return f"expected a list, found {_kind(found)}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a mapping of fields, found {_kind(found)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, found {_kind(found)}"
    return str(e["msg"]).removeprefix("Value error, ")


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping: PyYAML keeps the last silently, so a
    second ``criteria:`` or ``levels:`` pasted below the first would drop the first without a word."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"field {key!r} is given twice in one mapping (first on line {seen[key] + 1}); "
                    "keep one", key_node.start_mark)
            if isinstance(key, (str, int, float, bool)):
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_rubric(path: str | Path) -> Rubric:
    """Read and validate a rubric YAML (or JSON) file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise RubricError(str(p), "", "file not found") from None
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RubricError(str(p), "", f"line {line}, column {column}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                          "a file saved as Windows-1252 or Latin-1 (curly quotes, dashes, accents) must be "
                          "saved again as UTF-8") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader (refusing repeated keys)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise RubricError(str(p), "", f"{where}invalid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_rubric(data, str(p))


BUNDLED_DIR = Path(__file__).parent / "bundled"


def bundled_rubrics() -> dict[str, Path]:
    """Rubric files shipped with the package, by file stem."""
    return {p.stem: p for p in sorted(BUNDLED_DIR.rglob("*.yaml"))}
