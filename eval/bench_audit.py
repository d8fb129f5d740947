"""Audit log benchmark: append a large log, verify it, verify it against signed checkpoints, prove entries.

For each backend (SQLite in ``out``; then PostgreSQL in a throwaway schema when one answers) it appends
``events`` machine-score entries through the store's own append path (``Tx.append``, blocks of
``block`` entries per transaction, as a batch job writes them), each with the ``machine_scores`` row it
logs (for ``SUBMISSIONS`` submissions, so verification's row checks cover a million rows both ways), signing a checkpoint halfway (the
tamper-evidence an operator would have), then measures:

- ``append_events_per_s``: entries appended per second (chain hashing and the inserts, committed);
- ``verify_events_per_s``: ``Store.verify_audit()`` over the whole log (chain, Merkle root, row checks);
- ``checkpoint_verify_s``: ``scoring audit verify --checkpoints``' work: the same pass proving the log
  extends both checkpoints (halfway and the end), including their signature checks;
- ``inclusion_proof_ms``: median time of one ``scoring audit prove`` (proof built from the tile cache and
  checked against the signed checkpoint with the public key), over ``proofs`` random entries.

The target (``pass``): the whole log verifies in under 60 s on each backend.
"""

from __future__ import annotations

import random
import shutil
import statistics
import time
import uuid
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from scoring.store.engine import unreachable

TARGET_VERIFY_S = 60.0
SUBMISSIONS = 1000
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _evidence(k: int) -> dict[str, Any]:
    return {"text": f"bench evidence {k}: " + "the lesson asked students to explain their reasoning. " * 8}


@cache
def _evidence_hash(k: int) -> str:
    """The content hash the store keeps for bench submission ``k``: every entry pins it, as the service's do."""
    from scoring.store.submissions import content_hash

    return content_hash(_evidence(k), {})


def _payload(i: int) -> dict[str, Any]:
    p = [0.05, 0.15, 0.3, 0.5]
    random.Random(i).shuffle(p)
    sid = i % SUBMISSIONS + 1
    return {"submission_id": sid, "external_id": f"b{sid}", "content_hash": _evidence_hash(sid),
            "criterion": ("questioning", "adjusting", "self_assessment")[i % 3],
            "score": i % 4, "route": "auto" if i % 5 else "human", "model_version": "bench-m-1",
            "policy_version": "bench-p-1", "rubric": "bench@1", "prediction_set": [i % 4],
            "probabilities": {str(k): v for k, v in enumerate(p)}, "reason": None,
            "at": "2026-11-29T21:00:00.000000Z"}


def run_backend(url: str, out: Path, events: int, block: int, proofs: int,
                log: Callable[[str], None]) -> dict[str, Any]:
    from datetime import datetime

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from scoring.store import Store
    from scoring.store import tables as t
    from scoring.usecases import audit_trust

    key = Ed25519PrivateKey.generate()
    cp_dir = out / "checkpoints"
    shutil.rmtree(cp_dir, ignore_errors=True)
    store = Store(url)
    try:
        if store.audit_size():
            raise RuntimeError(f"the bench store {url} already holds an audit log; give an empty one")
        payloads = [_payload(i) for i in range(min(events, 10_000))]
        at = datetime(2026, 11, 29, 21, 0)
        with store.write() as tx:
            tx.conn.execute(t.submissions.insert(), [
                {"id": k + 1, "rubric_id": "bench", "rubric_version": 1, "external_id": f"b{k + 1}",
                 "evidence": _evidence(k + 1), "meta": {}, "content_hash": _evidence_hash(k + 1), "created_at": at} for k in range(SUBMISSIONS)])
        t0 = time.perf_counter()
        append_s = 0.0
        done = 0
        halfway = False
        while done < events:
            n = min(block, events - done)
            with store.write() as tx:
                rows = []
                for i in range(done, done + n):
                    p = payloads[i % len(payloads)]
                    seq = tx.append("machine_score", p)
                    rows.append({"submission_id": p["submission_id"], "criterion": p["criterion"],
                                 "score": p["score"], "route": p["route"], "model_version": p["model_version"],
                                 "policy_version": p["policy_version"], "prediction_set": p["prediction_set"],
                                 "probabilities": p["probabilities"], "reason": p["reason"], "rubric_id": "bench",
                                 "rubric_version": 1, "created_at": at, "audit_seq": seq})
                tx.conn.execute(t.machine_scores.insert(), rows)
            done += n
            if not halfway and done >= events // 2:
                halfway = True
                append_s += time.perf_counter() - t0
                audit_trust.checkpoint(store, cp_dir, key, init=True)
                t0 = time.perf_counter()
            if done % 100_000 == 0:
                log(f"  appended {done:,}")
        append_s += time.perf_counter() - t0
        log(f"  {events:,} appended in {append_s:.1f}s")
        t0 = time.perf_counter()
        res = store.verify_audit()
        verify_s = time.perf_counter() - t0
        assert res.ok and res.entries_checked == events, res.problem
        log(f"  verified in {verify_s:.1f}s")
        t0 = time.perf_counter()
        audit_trust.checkpoint(store, cp_dir, key)
        checkpoint_write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = audit_trust.verify(store, cp_dir, key.public_key())
        checkpoint_verify_s = time.perf_counter() - t0
        assert res.ok and res.checkpoints_checked == 2, res.problem
        log(f"  verified against {res.checkpoints_checked} checkpoints in {checkpoint_verify_s:.1f}s")
        rng = random.Random(7)
        times = []
        for _ in range(proofs):
            seq = rng.randint(1, events)
            t0 = time.perf_counter()
            proof = audit_trust.prove(store, seq, cp_dir, key.public_key())
            audit_trust.check_proof(proof, key.public_key())
            times.append((time.perf_counter() - t0) * 1000)
        return {
            "events": events,
            "append_events_per_s": round(events / append_s),
            "verify_s": round(verify_s, 2),
            "verify_events_per_s": round(events / verify_s),
            "checkpoint_write_s": round(checkpoint_write_s, 2),
            "checkpoint_verify_s": round(checkpoint_verify_s, 2),
            "inclusion_proof_ms": round(statistics.median(times), 2),
            "inclusion_proof_max_ms": round(max(times), 2),
            "proof_path_hashes": len(proof["path"]),
            "pass": verify_s < TARGET_VERIFY_S and checkpoint_verify_s < TARGET_VERIFY_S,
        }
    finally:
        store.close()


def run(out: Path, events: int = 1_000_000, block: int = 1000, proofs: int = 50, postgres: str | None = PG_URL,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "audit-bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    log(f"sqlite: {events:,} events into {db}")
    results: dict[str, Any] = {"sqlite": run_backend(f"sqlite:///{db}", out / "sqlite", events, block, proofs, log)}
    db.unlink(missing_ok=True)
    why = unreachable(postgres) if postgres else "PostgreSQL not requested"
    if why is None and postgres:
        schema = f"bench_audit_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(postgres)
        with admin.begin() as c:
            c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            log(f"postgresql: {events:,} events into schema {schema}")
            sep = "&" if "?" in postgres else "?"
            results["postgresql"] = run_backend(f"{postgres}{sep}options=-csearch_path%3D{schema}",
                                                out / "postgresql", events, block, proofs, log)
        finally:
            with admin.begin() as c:
                c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    else:
        results["postgresql"] = {"skipped": why}
    first = results["sqlite"]
    keys = ("append_events_per_s", "verify_events_per_s", "checkpoint_verify_s", "inclusion_proof_ms")
    return {"events": events, **{k: first[k] for k in keys},
            "pass": all(r.get("pass", True) for r in results.values()), **results}
