"""Schemathesis against the app's own OpenAPI document: no generated request may cause a 5xx.

Every operation gets a bounded number of schema-valid (positive) and schema-violating (negative)
requests, so it stays a CI test. The admin key is sent so requests reach the handlers (unauthenticated
requests are covered in test_api_auth.py). Drives schemathesis' strategies with Hypothesis directly:
its pytest plugin (``from_fixture``) does not load under pytest 9.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from api_support import make_api, reflection
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode


@pytest.fixture(scope="module")
def fuzz_api(tmp_path_factory: pytest.TempPathFactory, api_home: Path, api_model_dir: Path) -> Any:
    from scoring.badges import keygen

    priv, _ = keygen(tmp_path_factory.mktemp("issuer-key"))  # the credential endpoint is configured, as in service
    a = make_api(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'api.db'}", api_home, api_model_dir,
                 credential_key=priv, credential_issuer_id="https://example.org/issuer")
    a.submit("fuzz-seed", reflection(1))  # something for small ids to find
    yield a
    a.store.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_no_generated_request_causes_a_server_error(fuzz_api: Any, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_api.app)
    auth = {**fuzz_api.h("admin"), "X-API-Key": fuzz_api.keys["admin"]}  # both schemes, or a generated one wins
    failures: list[str] = []
    seen: list[int] = []
    ops = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if op.method.upper() == "DELETE":  # revoking the fuzzer's own key would only test 401s
            continue
        ops += 1

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def run(case: Any) -> None:
            # generated X-API-Key / Authorization values would only test 401s (test_api_auth does)
            gen = {k: v for k, v in (case.headers or {}).items() if k.lower() not in ("x-api-key", "authorization")}
            resp = case.call(headers={**gen, **auth})
            seen.append(resp.status_code)
            if resp.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {resp.status_code}: {resp.text[:300]}\n"
                                f"  reproduce: {case.as_curl_command()}")

        try:
            run()
        except Unsatisfiable:  # negative mode: an operation with nothing to violate (no params, no body)
            assert mode is GenerationMode.NEGATIVE, f"{op.method} {op.path}: no valid request can be generated"
    assert ops >= 20, f"expected the whole API in the schema, found {ops} operations"
    assert len(seen) >= 3 * ops, f"only {len(seen)} requests were generated for {ops} operations"
    counts = Counter(seen)
    assert counts[401] == 0, f"requests should get past auth, found {counts}"
    assert not failures, "\n".join(failures[:10])
