"""Run schemathesis' engine (every phase and every check, as ``schemathesis run`` does) against an ASGI app.

Why the engine and not its pytest plugin: the plugin does not load under pytest 9, and the engine is
what the CLI runs, so "reports nothing" here means what it means on the command line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ContractRun:
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    operations: set[str] = field(default_factory=set)
    phases: set[str] = field(default_factory=set)
    stop_reason: str = ""


# Statuses a check accepts beyond schemathesis' defaults, and why they are part of the contract:
CHECKS = {
    # a schema-valid body can still break a domain rule the schema cannot state (a criterion the rubric does
    # not have, a score off that criterion's scale, a file whose rows do not parse): 422 with a `code`
    # (and 503 below)
    "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422", "503"]},
    # 503 `model_unavailable` is documented: the service has no model for the rubric a request names
    "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]},
}


def run_contract(app: Any, headers: dict[str, str], *, max_examples: int = 10, max_steps: int = 10,
                 max_time: float = 60.0, seed: int = 7) -> ContractRun:
    import schemathesis
    from schemathesis.config import SchemathesisConfig
    from schemathesis.engine import Status, events, from_schema

    config = SchemathesisConfig.from_dict({
        "seed": seed, "max-time": max_time, "headers": headers,
        "generation": {"mode": "all", "max-examples": max_examples, "deterministic": True, "database": "none",
                       "with-security-parameters": False},
        "checks": CHECKS,
        "phases": {"stateful": {"max-steps": max_steps}},
    })
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    out = ContractRun()
    for ev in from_schema(schema).execute():
        if isinstance(ev, events.ScenarioFinished | events.FuzzScenarioFinished):
            rec = ev.recorder
            out.phases.add(str(getattr(ev, "phase", "fuzzing")))
            for case_id, checks in rec.checks.items():
                for chk in checks:
                    if chk.status == Status.FAILURE and chk.failure_info is not None:
                        inter = rec.interactions.get(case_id)
                        req = f"{inter.request.method} {inter.request.uri}" if inter is not None else rec.label
                        fail = chk.failure_info.failure
                        out.failures.append(f"[{chk.name}] {req}: {fail.title}: {str(fail.message)[:300]}\n"
                                            f"  reproduce: {chk.failure_info.code_sample}")
            for inter in rec.interactions.values():
                if inter.response is not None:
                    out.statuses[inter.response.status_code] += 1
                    out.operations.add(rec.label)
        elif isinstance(ev, events.NonFatalError):
            out.errors.append(f"{ev.label}: {ev.info.title}: {ev.info.message}"[:400])
        elif isinstance(ev, events.FatalError):
            out.errors.append(f"fatal: {ev.exception!r}")
        elif isinstance(ev, events.EngineFinished):
            out.stop_reason = str(ev.stop_reason)
    return out
