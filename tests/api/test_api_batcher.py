"""Concurrent submissions are scored together in one model pass, with the same results as one by one."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import numpy as np
from api_support import reflection

from api.batcher import Prescorer
from models.artifact import load_model
from scoring.prescore import prescore


def test_concurrent_requests_are_batched_and_score_like_single_requests(api_model_dir, api_home) -> None:  # type: ignore[no-untyped-def]
    texts = [reflection(i) for i in range(8)]
    solo = load_model(api_model_dir, cache_dir=api_home / "cache-alone")
    alone = [prescore(solo, [f"s{i}"], [{"reflection": t}])[0] for i, t in enumerate(texts)]
    model = load_model(api_model_dir, cache_dir=api_home / "cache-batched")  # its own cache: nothing read back
    p = Prescorer()
    out: dict[int, object] = {}
    go = threading.Barrier(len(texts))

    def worker(i: int) -> None:
        go.wait()
        out[i] = p.score(model, f"s{i}", {"reflection": texts[i]})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert p.items == len(texts) and p.batches < len(texts), f"{p.batches} passes for {p.items} items"
    for i, ref in enumerate(alone):
        got = out[i]
        assert got.id == f"s{i}"  # type: ignore[attr-defined]
        for cid, r in ref.criteria.items():
            g = got.criteria[cid]  # type: ignore[attr-defined]
            assert g.score == r.score
            np.testing.assert_allclose([g.probabilities[k] for k in r.probabilities], list(r.probabilities.values()),
                                       rtol=0, atol=1e-12)


def test_a_failing_request_does_not_fail_the_others_in_its_batch(api_model_dir, api_home) -> None:  # type: ignore[no-untyped-def]
    model = load_model(api_model_dir, cache_dir=api_home / "cache")
    p = Prescorer()
    f1: Future = Future()
    f2: Future = Future()
    p._run([(model, "ok", {"reflection": reflection(1)}, f1), (model, "bad", None, f2)])  # None: not evidence
    assert f1.result().id == "ok"
    assert f2.exception() is not None
