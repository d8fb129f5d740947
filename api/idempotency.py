"""``Idempotency-Key`` for requests that create something (a scored submission, a batch job).

A client that retries after a timeout must not create a second job or score twice: the first request with a
key reserves it, its response is stored under the key, and a retry with the same key and the same body
replays that response (header ``Idempotent-Replayed: true``); the same key with another body is 409
``idempotency_key_reused`` (:mod:`scoring.store.jobs` keeps the keys, per API key owner).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from fastapi import Header
from fastapi.responses import JSONResponse

from scoring.store import jobs
from scoring.store.store import Store

KEY_HEADER = Header(None, alias="Idempotency-Key", min_length=1, max_length=200,
                    description="Any unique string per logical request (e.g. a UUID): a retry with it replays "
                    "the first response; with another body it is 409 `idempotency_key_reused`.")


def request_hash(*parts: bytes) -> str:
    """What identifies a request's content under its key (the canonical body, or a file's bytes and fields)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()


def respond_once(store: Store, owner: str, key: str | None, digest: str,
                 make: Callable[[], tuple[int, dict[str, Any]]]) -> JSONResponse:
    """``make()``'s (status, body) as the response; with ``key``, made at most once per key and owner."""
    if key is None:
        status, body = make()
        return JSONResponse(body, status_code=status)
    stored = jobs.reserve_idempotency(store, owner, key, digest)
    if stored is not None:
        return JSONResponse(stored.body, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"})
    try:
        status, body = make()
    except Exception:
        jobs.release_idempotency(store, owner, key)  # a failed first attempt may be retried under the same key
        raise
    jobs.complete_idempotency(store, owner, key, status, body)
    return JSONResponse(body, status_code=status)
