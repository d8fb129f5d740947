"""``scoring demo``: the whole flow on bundled synthetic data, in one command, from training to badges."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scoring.commands.batch import err, score, train

N_TRAIN = 800  # enough double-scored calibration items for the policy's tests to certify a rule at delta 0.05


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's data, model, store and outputs.")] = Path("demo-out"),
) -> None:
    """Train on 800 synthetic double-scored reflections, calibrate a routing policy, pre-score a 60-row backlog
    (with broken rows) into a store, let three synthetic assessors work the human queue, then write feedback
    for each 'not yet' and sign one Open Badges 3.0 credential per earned submission, and verify them."""
    import json

    from scoring.commands.calibrate import calibrate
    from scoring.demo import DEMO_RUBRIC, SECOND_SUFFIX, write_demo

    train_csv, backlog_csv = write_demo(out, n_train=N_TRAIN)
    err.print(f"[bold]1/6 train[/] {DEMO_RUBRIC.name} on {train_csv}")
    train(rubric=DEMO_RUBRIC, data=train_csv, out=out / "model", score_col=None, text_col=None, where=None,
          id_col="id", fmt=None, encoding="utf-8", quoting=True, min_labelled=None)
    err.print("[bold]2/6 calibrate[/] on the training file's out-of-fold probabilities")
    calibrate(model=out / "model", data=train_csv, out=out / "policy.yaml", cross_fitted=True, n_boot=200,
              second_score_col=[f"{c}={c}{SECOND_SUFFIX}" for c in ("questioning", "adjusting", "self_assessment")])
    err.print(f"[bold]3/6 score[/] {backlog_csv} into the demo store {out / 'demo.db'}")
    db = f"sqlite:///{(out / 'demo.db').as_posix()}"
    (out / "demo.db").unlink(missing_ok=True)
    score(model=out / "model", data=backlog_csv, out=out / "scores.jsonl", version=None, id_col="id", text_col=None,
          where=None, fmt=None, encoding="utf-8", quoting=True, rejects=None, block_size=None, overwrite=True,
          progress=True, policy=out / "policy.yaml", store=db, issuer="demo-district")
    first = (out / "scores.jsonl").read_text(encoding="utf-8").splitlines()[0]
    err.print("first output line:")
    typer.echo(json.dumps(json.loads(first), indent=1))
    _assessors(out, db, N_TRAIN)
    _decisions(out, db)


ASSESSORS = ("demo-assessor-ana", "demo-assessor-ben", "demo-assessor-dev")  # three different people
ADJUDICATOR = "demo-lead-cho"


def _assessors(out: Path, db: str, n_train: int) -> None:
    """4/6: synthetic assessors work the human queue (levels from the demo's hidden human scores: Ana gives
    the first rater's, Ben the second's, Dev the third's); a lead who rated none of them resolves
    disagreements beyond the policy's gap. Each submit records the final credential decision once every
    criterion is resolved.

    Why a third person: nobody gets two slots of one submission, and a submission can need three (a
    double-scored criterion's two blind slots, and a blind audit of another criterion's automatic score).
    Dev works after Ana and Ben, so Dev takes only what neither of them may take."""
    from scoring.demo import SECOND_SUFFIX, THIRD_SUFFIX, split_demo_rows
    from scoring.policy import load_policy
    from scoring.store import Store, queue
    from scoring.usecases import assessment

    hidden = {r["id"]: r for r in split_demo_rows(n_train)[1]}  # the backlog's human scores, never written
    policy = load_policy(out / "policy.yaml")
    store = Store(db)
    done = {a: 0 for a in ASSESSORS}
    try:
        for who, suffix in zip(ASSESSORS, ("", SECOND_SUFFIX, THIRD_SUFFIX), strict=True):
            while (it := queue.claim(store, who, 600)) is not None:
                ext = store.submission(it.submission_id).external_id
                scores = {c: (int(hidden[ext][f"{c}{suffix}"]), f"{who}: the evidence reads as this level")
                          for c in it.criteria}
                assessment.submit_item(store, policy, it.id, who, str(it.lease_token), scores)
                done[who] += 1
        pending = assessment.pending_adjudications(store, policy)
        for p in pending:
            ext = store.submission(p.submission_id).external_id
            assessment.adjudicate(store, p.submission_id, p.criterion, int(hidden[ext][p.criterion]),
                                  adjudicator=ADJUDICATOR, rationale="lead's reading of the evidence", policy=policy)
        left = queue.counts(store).open
    finally:
        store.close()
    err.print(f"[bold]4/6 assessors[/]: {', '.join(f'{a} scored {n} item(s)' for a, n in done.items())}; "
              f"{len(pending)} disagreement(s) adjudicated by {ADJUDICATOR}"
              + (f"; {left} slot(s) left open" if left else ""))


def _decisions(out: Path, db: str) -> None:
    """5/6 feedback for every 'not yet'; 5/5 a signed credential per earned submission, verified."""
    import json
    import shutil
    from collections import Counter

    from models.artifact import load_model
    from scoring.badges import Issuer, keygen, load_key, verify
    from scoring.settings import get_settings
    from scoring.store import Store
    from scoring.usecases import credentials

    s = get_settings()
    store = Store(db)
    try:
        latest = {sub.id: store.latest_decision(sub.id) for sub in store.submissions()}
        counts = Counter(d.outcome for d in latest.values() if d is not None)
        err.print(f"[bold]decisions[/]: {dict(counts)} (needs_human: a criterion went to a person, or the "
                  "decision was not sure enough)")
        model = load_model(out / "model", cache_dir=s.resolved_cache_dir(), precision=s.encoder_precision)
        fb_dir = out / "feedback"
        shutil.rmtree(fb_dir, ignore_errors=True)
        fb_dir.mkdir()
        not_yet = [sid for sid, d in latest.items() if d is not None and d.outcome == "not_yet"]
        for sid in not_yet:
            fb = credentials.feedback(store, sid, model)
            (fb_dir / f"{fb['submission']}.json").write_text(json.dumps(fb, indent=1), encoding="utf-8")
            (fb_dir / f"{fb['submission']}.html").write_text(
                credentials.feedback_html(fb, store.submission(sid).evidence), encoding="utf-8")
        err.print(f"[bold]5/6 feedback[/] for {len(not_yet)} 'not yet' submission(s) -> {fb_dir}")
        keys = out / "keys"
        shutil.rmtree(keys, ignore_errors=True)
        priv, pub = keygen(keys)
        key, issuer = load_key(priv, private=True), Issuer("https://example.org/demo-district", "Demo District")
        cred_dir = out / "credentials"
        shutil.rmtree(cred_dir, ignore_errors=True)
        cred_dir.mkdir()
        earned = [sid for sid, d in latest.items() if d is not None and d.outcome == "earned"]
        for sid in earned:
            token, _vc = credentials.issue(store, sid, key, issuer, actor="demo")
            (cred_dir / f"{store.submission(sid).external_id}.jwt").write_text(token + "\n", encoding="utf-8")
        verified = sum(1 for f in cred_dir.glob("*.jwt") if verify(f.read_text(), load_key(pub, private=False)))
        err.print(f"[bold]6/6 credentials[/]: {len(earned)} signed Open Badges 3.0 credential(s) -> {cred_dir}, "
                  f"{verified} verified with {pub}")
        err.print(f"audit log verified: {store.verify_audit().ok}")
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
