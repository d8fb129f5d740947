"""The routing policy file: which machine scores are accepted, and what goes to humans.

A policy is a versioned YAML file written by ``scoring calibrate`` (or by hand) and validated here.
It names the model version it was tuned for, because thresholds tuned on one model's calibrated
probabilities mean nothing for another: loading a policy against a different model is an error.

Example::

    policy_version: asap-aes-set3-v1-20261123T120000-ab12cd34-p1
    model_version: asap-aes-set3-v1-20261123T120000-ab12cd34
    coverage: 0.9            # conformal prediction sets hold the human score this often
    audit_rate: 0.1          # share of auto-accepted items also sent blind to a human
    double_rate: 0.05        # share of all items sent to two blind humans (human-human agreement)
    adjudication_gap: 1      # two human scores further apart than this go to adjudication
    queue_order: uncertain   # or: oldest
    decision_min_confidence: 0.9  # a credential decision is automatic only this sure (rubrics with `award:`)
    award_min_confidence: 0.99    # ...and an award this sure (set by `scoring calibrate`; see scoring.award_bar)
    criteria:
      holistic:
        confidence: within   # exact = p(decided level); within = p(|human - score| <= tolerance)
        tolerance: 0
        min_confidence: 0.62 # below: human
        max_set_size: 2      # conformal set larger than this: human (null: no limit)
        evidence: {...}      # what the optimiser measured when it chose these numbers; evidence.guarantee
                             # holds delta, the selection method, the statistic and the test behind the promise

A criterion missing from ``criteria`` (or with ``enabled: false``) is always routed to humans.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scoring.errors import PolicyError

BUNDLED_POLICY_DIR = Path(__file__).parent / "policies"
DEFAULT_POLICY = BUNDLED_POLICY_DIR / "default.yaml"


class CriterionPolicy(BaseModel):
    """Thresholds for one criterion."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    confidence: Literal["exact", "within"] = "exact"
    tolerance: int = Field(default=0, ge=0, description="levels either side counted as agreeing (confidence=within)")
    min_confidence: float = Field(default=1.0, ge=0.0, le=1.01)
    max_set_size: int | None = Field(default=None, ge=1)
    adjudication_gap: int | None = Field(default=None, ge=0)
    evidence: dict[str, Any] = Field(default_factory=dict)

    def describe(self) -> str:
        """One line for people: the rule, or why there is none and how close the best candidate came."""
        if self.enabled:
            sets = "no set-size limit" if self.max_set_size is None else f"set <= {self.max_set_size}"
            return f"{self.confidence}(tol {self.tolerance}) >= {self.min_confidence:.3f}, {sets}"
        line = "disabled: " + str(self.evidence.get("why", "enabled: false"))
        c = self.evidence.get("closest_rule")
        if c and "p_value" in c:  # learn-then-test: the most promising rule and why it was not certified
            line += (f"; closest: p {c['p_value']:.4f} > level {c['level']:.4f} at auto {c['auto_fraction']:.2f} "
                     f"({c['statistic']} machine {_fmt(c['machine'])} vs human {_fmt(c['human'])})")
        elif c:
            bound = f"margin LCB {c['margin_lcb']:+.3f}" if "margin_lcb" in c else f"QWK LCB {c['qwk_lcb']:.3f} vs {c['target']:.3f}"
            line += (f"; closest: {bound} at auto {c['auto_fraction']:.2f} "
                     f"(QWK {c['qwk']:.3f}, human-human {c['target']:.3f})")
        return line


def _fmt(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.3f}"


class RoutingPolicy(BaseModel):
    """A whole policy file (see the module docstring for an example)."""

    model_config = ConfigDict(extra="forbid")

    policy_version: str = Field(min_length=1)
    model_version: str | None = None
    rubric_id: str | None = None
    coverage: float = Field(default=0.9, gt=0.0, lt=1.0)
    audit_rate: float = Field(default=0.1, ge=0.0, le=1.0)
    double_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    adjudication_gap: int = Field(default=1, ge=0)
    queue_order: Literal["uncertain", "oldest"] = "uncertain"
    decision_min_confidence: float = Field(
        default=0.9, ge=0.5, le=1.0, description="A credential decision is automatic only when its probability "
        "(P(earned) or P(not yet)) reaches this, and every criterion it rests on was auto-accepted.")
    award_min_confidence: float | None = Field(
        default=None, ge=0.5, le=1.0, description="An award (earned) is automatic only when P(earned) reaches this; "
        "None: decision_min_confidence. `scoring calibrate` sets it by a test on held-out decisions "
        "(scoring.award_bar), because a false award costs more than a false 'not yet'.")
    awards_automatic: bool = Field(
        default=True, description="False: every 'earned' decision goes to a person (no award bar passed its test).")
    award_evidence: dict[str, Any] = Field(default_factory=dict)
    criteria: dict[str, CriterionPolicy] = Field(default_factory=dict)
    created: str | None = None
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rates(self) -> RoutingPolicy:
        if self.audit_rate + self.double_rate > 1.0:
            raise ValueError(f"audit_rate + double_rate must be <= 1, found {self.audit_rate + self.double_rate}")
        return self

    def gap_for(self, criterion: str) -> int:
        c = self.criteria.get(criterion)
        return c.adjudication_gap if c is not None and c.adjudication_gap is not None else self.adjudication_gap

    def check_model(self, model_version: str, rubric_id: str | None = None) -> None:
        """Refuse to route a model the policy was not tuned for."""
        if self.model_version is not None and self.model_version != model_version:
            raise PolicyError(
                f"policy {self.policy_version} was tuned for model {self.model_version}, found model {model_version}; "
                f"pass --version {self.model_version} to use the model it was tuned for, or run `scoring calibrate` "
                "for this model to tune a policy for it"
            )
        if self.rubric_id is not None and rubric_id is not None and self.rubric_id != rubric_id:
            raise PolicyError(f"policy {self.policy_version} is for rubric {self.rubric_id}, found rubric {rubric_id}")


def load_policy(path: str | Path | None = None) -> RoutingPolicy:
    """Read and validate a policy file (default: the bundled, route-everything-to-humans policy)."""
    p = Path(path) if path is not None else DEFAULT_POLICY
    if not p.exists():
        raise PolicyError(f"policy file {p} not found")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PolicyError(f"{p}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"{p}: expected a mapping at the top level, found {type(raw).__name__}")
    try:
        return RoutingPolicy.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise PolicyError(f"{p}: {where}: {first['msg']} (found {first.get('input')!r})") from exc


def save_policy(policy: RoutingPolicy, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(
        yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=110), encoding="utf-8"
    )
    return p
