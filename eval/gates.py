"""Acceptance gates: the ETS evaluation framework as a versioned policy file, applied to agreement metrics.

A gate result is ``pass``, ``fail`` or ``insufficient`` (too few items to judge): the drift monitor acts
only on ``fail``, so a thin audit sample never suspends automation on noise alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

POLICY_DIR = Path(__file__).parent / "policies"
DEFAULT_POLICY = POLICY_DIR / "ets-2012.yaml"


@dataclass(frozen=True)
class GatePolicy:
    id: str
    version: int
    min_qwk: float
    max_qwk_degradation: float
    max_abs_smd: float
    max_abs_dsm: float
    min_n: int
    min_subgroup_n: int
    drift_window: int
    drift_min_n: int
    description: str = ""

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"


def load_policy(path: str | Path | None = None) -> GatePolicy:
    """Read a policy YAML (the bundled ETS policy by default); errors name the file and the missing key."""
    p = Path(path) if path is not None else DEFAULT_POLICY
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:  # a mistyped --policy path: one line naming it, not a traceback
        raise ValueError(f"gate policy {p} cannot be read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"gate policy {p} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{p}: a gate policy is a mapping with id, version and thresholds")
    try:
        th, dr = data["thresholds"], data.get("drift", {})
        return GatePolicy(
            id=str(data["id"]), version=int(data["version"]), min_qwk=float(th["min_qwk"]),
            max_qwk_degradation=float(th["max_qwk_degradation"]), max_abs_smd=float(th["max_abs_smd"]),
            max_abs_dsm=float(th["max_abs_dsm"]), min_n=int(th["min_n"]),
            min_subgroup_n=int(th.get("min_subgroup_n", th["min_n"])), drift_window=int(dr.get("window", 100)),
            drift_min_n=int(dr.get("min_n", th["min_n"])), description=str(data.get("description", "")),
        )
    except KeyError as exc:
        raise ValueError(f"{p}: policy is missing required key {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:  # e.g. min_qwk: high, or thresholds: a list
        raise ValueError(f"{p}: policy has a value of the wrong kind ({exc})") from None


@dataclass(frozen=True)
class GateCheck:
    name: str
    value: float | None
    threshold: float
    passed: bool | None  # None: not applicable (no reference, too few items)
    detail: str


@dataclass(frozen=True)
class GateResult:
    status: str  # pass | fail | insufficient
    n: int
    policy: str
    checks: tuple[GateCheck, ...] = field(default_factory=tuple)

    @property
    def failures(self) -> list[GateCheck]:
        return [c for c in self.checks if c.passed is False]

    def summary(self) -> str:
        if self.status == "insufficient":
            why = [c.detail for c in self.checks if c.passed is None and c.detail]
            return "insufficient: " + ("; ".join(why) if why else f"n={self.n}")
        if not self.failures:
            return f"pass (n={self.n})"
        return "fail: " + "; ".join(c.detail for c in self.failures)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "n": self.n, "policy": self.policy,
                "checks": [c.__dict__ for c in self.checks]}


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def evaluate_gates(
    metrics: dict[str, Any],
    policy: GatePolicy,
    *,
    human_human_qwk: float | None = None,
    hh_n_not_blind: int = 0,
    hh_n: int | None = None,
    subgroups: dict[str, tuple[float, int]] | None = None,
    min_n: int | None = None,
) -> GateResult:
    """Apply the policy to human-machine ``metrics`` (from ``agreement_metrics``).

    ``human_human_qwk`` enables the degradation check. ``hh_n_not_blind``: double-scored pairs left out of
    that reference because a rater was not blind; when leaving them out is what leaves no reference (fewer
    than ``policy.min_n`` blind pairs, ``hh_n``), the degradation check cannot be made although double-scored
    data exist, so the verdict is ``insufficient`` unless another check fails (a pass would rest on a bar that
    was never measured). Enough blind pairs whose QWK is undefined (both raters gave one level) are no
    reference whatever the other pairs: the detail says so rather than blame them. A human-machine QWK or SMD
    that is undefined is never a pass either. ``subgroups`` maps group -> (DSM, n) and enables the fairness
    check for groups with at least ``min_subgroup_n`` items.
    """
    n = int(metrics.get("n", 0))
    need = policy.min_n if min_n is None else min_n
    if n < need:
        return GateResult("insufficient", n, policy.key)
    checks: list[GateCheck] = []
    q = _num(metrics.get("qwk"))
    checks.append(GateCheck("qwk", q, policy.min_qwk, None if q is None else q >= policy.min_qwk,
                            f"QWK {q:.3f} < {policy.min_qwk}" if q is not None
                            else "QWK undefined (human and machine gave one level only)"))
    hhq = _num(human_human_qwk)  # an undefined human-human QWK (NaN) is no reference, not a failed check
    undefined_hh = hhq is None and hh_n is not None and hh_n >= policy.min_n
    if hhq is not None and q is not None:
        deg = hhq - q
        checks.append(GateCheck("qwk_degradation", deg, policy.max_qwk_degradation,
                                deg <= policy.max_qwk_degradation,
                                f"QWK {q:.3f} is {deg:.3f} below human-human {hhq:.3f} "
                                f"(max {policy.max_qwk_degradation})"))
    elif hhq is None and (hh_n_not_blind > 0 or undefined_hh):
        checks.append(GateCheck("qwk_degradation", None, policy.max_qwk_degradation, None,
                                "no human-human reference (" + _why_no_reference(hh_n, hh_n_not_blind, policy.min_n)
                                + ")"))
    s = _num(metrics.get("smd"))
    checks.append(GateCheck("smd", s, policy.max_abs_smd, None if s is None else abs(s) <= policy.max_abs_smd,
                            f"|SMD| {abs(s):.3f} > {policy.max_abs_smd}" if s is not None
                            else "SMD undefined (no spread in the scores)"))
    for grp, (d, gn) in sorted((subgroups or {}).items()):
        dv = _num(d)
        ok = None if (dv is None or gn < policy.min_subgroup_n) else abs(dv) <= policy.max_abs_dsm
        checks.append(GateCheck(f"dsm[{grp}]", dv, policy.max_abs_dsm, ok,
                                f"subgroup {grp}: |DSM| {abs(dv) if dv is not None else float('nan'):.3f} > "
                                f"{policy.max_abs_dsm} (n={gn})"))
    no_reference = hhq is None and hh_n_not_blind > 0 and not undefined_hh
    unmeasured = q is None or s is None  # a pass would rest on a figure that cannot be computed
    status = ("fail" if any(c.passed is False for c in checks) else "insufficient" if no_reference or unmeasured
              else "pass")
    return GateResult(status, n, policy.key, tuple(checks))


def _why_no_reference(hh_n: int | None, hh_n_not_blind: int, min_n: int) -> str:
    """Why no human-human QWK is there to compare the machine with, from the pairs that exist: the words a
    researcher acts on (record blind second ratings, or more of them), never a cause that is not the one."""
    if hh_n is not None and hh_n >= min_n:
        return f"human-human QWK undefined on {hh_n} blind pairs: both raters gave one level only"
    if not hh_n:
        return f"{hh_n_not_blind} pairs were not blind"
    return f"only {hh_n} blind pairs, the reference needs {min_n}; {hh_n_not_blind} pairs were not blind"
