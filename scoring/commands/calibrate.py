"""``scoring calibrate``: calibrate a model on held-out human scores and write a tuned routing policy."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Annotated

import typer

from scoring.commands.batch import (
    Encoding,
    Fmt,
    IdCol,
    Quoting,
    TextCol,
    Where,
    _columns,
    _fail,
    encoding_hint,
    err,
    parse_pairs,
)
from scoring.settings import get_settings


def _int_or_nan(v: str | None) -> float:
    try:
        return float(int(float(v))) if v not in (None, "") else math.nan  # type: ignore[arg-type]
    except ValueError:
        return math.nan


def _base_of(root: Path, version: str | None) -> str | None:
    """The version a calibrated version was calibrated from (its card's ``base_model_version``), if any."""
    from models.artifact import ArtifactError, read_card

    try:
        return read_card(root / str(version)).get("base_model_version")
    except ArtifactError:
        return None


def calibrate(
    model: Annotated[Path, typer.Option("--model", help="Model directory (or one version directory).")],
    data: Annotated[Path, typer.Option("--data", help="Human-scored CALIBRATION submissions the model never trained on "
                                       "(with --cross-fitted: the file the model was trained on).")],
    out: Annotated[Path, typer.Option("--out", help="Policy YAML to write.")],
    version: Annotated[str | None, typer.Option("--version", help="Model version (default: LATEST).")] = None,
    id_col: IdCol = "id",
    text_col: TextCol = None,
    score_col: Annotated[list[str] | None, typer.Option(
        "--score-col", help="CRITERION=COLUMN of the first human score, repeatable; default: columns named like "
                            "the criteria.")] = None,
    where: Where = None,
    fmt: Fmt = None,
    encoding: Encoding = "utf-8",
    quoting: Quoting = True,
    second_score_col: Annotated[
        list[str] | None,
        typer.Option("--second-score-col", help="CRITERION=COLUMN of an independent second rater (human-human bar)."),
    ] = None,
    human_qwk: Annotated[
        list[str] | None, typer.Option("--human-qwk", help="CRITERION=QWK: human-human agreement when no second rater.")
    ] = None,
    coverage: Annotated[float, typer.Option(min=0.5, max=0.999, help="Conformal coverage of prediction sets.")] = 0.9,
    audit_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of auto-accepted items audited blind.")] = 0.1,
    double_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of items double-scored blind.")] = 0.05,
    adjudication_gap: Annotated[int, typer.Option(min=0, help="Human scores further apart than this: adjudication.")] = 1,
    queue_order: Annotated[str, typer.Option(help="uncertain | oldest: order of the human queue.")] = "uncertain",
    method: Annotated[str, typer.Option(help="auto | temperature | isotonic | none (auto: lowest CV ECE, log-loss within 5%).")] = "auto",
    mondrian: Annotated[str, typer.Option(help="none | label: class-conditional conformal sets when data allow.")] = "none",
    n_boot: Annotated[int, typer.Option(min=50, help="Bootstrap resamples behind each p-value and interval.")] = 1000,
    delta: Annotated[float, typer.Option(
        min=0.001, max=0.5, help="Allowed probability that a criterion's chosen rule is below the human bar "
                                 "(Learn then Test over all thresholds tried).")] = 0.05,
    statistic: Annotated[str, typer.Option(
        help="auto | qwk | exact: the agreement the bar compares (auto: exact agreement on scales of 2-3 levels, "
             "QWK otherwise; a bar given as one figure, --human-qwk or --bar criterion, is always QWK).")] = "auto",
    bar: Annotated[str, typer.Option(
        help="With --second-score-col, the human-human QWK to match: same-items = the two raters on exactly the "
             "items the rule accepts (paired bootstrap; accepted items are the easy ones); criterion = the two "
             "raters over all calibration items of the criterion.")] = "same-items",
    cross_fitted: Annotated[bool, typer.Option(
        "--cross-fitted", help="DATA is the training file: calibrate on the out-of-fold probabilities the model kept "
                               "for each training text instead of scoring held-out items (no human scores held back).")] = False,
) -> None:
    """Fit calibrators + conformal sets, choose thresholds at human-level agreement, save a new model version."""
    import numpy as np

    from models.artifact import load_model, save_model
    from models.calibration import MIN_CALIBRATION_ITEMS
    from scoring.award_bar import with_award_bar
    from scoring.errors import CalibrationDataError
    from scoring.ingest import read_records
    from scoring.optimise import (
        CriterionCalibrationData,
        base_scorer,
        calibrate_model,
        cross_fitted_probabilities,
        trained_on,
    )
    from scoring.policy import save_policy
    from scoring.prescore import criterion_probabilities

    s = get_settings()
    if statistic not in ("auto", "qwk", "exact"):
        raise typer.BadParameter(f"expected auto, qwk or exact, found {statistic!r}", param_hint="--statistic")
    if statistic == "exact" and bar == "criterion":  # one QWK figure per criterion can only be compared with a QWK
        raise typer.BadParameter("--bar criterion compares with the raters' QWK over all items, so the statistic is "
                                 "QWK; use --bar same-items for exact agreement", param_hint="--statistic")
    if audit_rate + double_rate > 1.0:  # checked before the (long) calibration, not after it
        raise typer.BadParameter(f"--audit-rate + --double-rate must be at most 1, found {audit_rate + double_rate:g}",
                                 param_hint="--audit-rate/--double-rate")
    try:
        m = load_model(model, version, cache_dir=s.resolved_cache_dir(), precision=s.encoder_precision, batch_size=s.batch_size)
        cols = _columns(m.rubric, id_col, text_col, score_col, where)
        if not cols.scores:
            cols = dataclasses.replace(cols, scores={c.id: c.id for c in m.rubric.criteria})
        second = parse_pairs(second_score_col, "--second-score-col")
        hh: dict[str, float] = {}
        for k, v in parse_pairs(human_qwk, "--human-qwk").items():
            try:
                hh[k] = float(v)
            except ValueError:
                raise typer.BadParameter(f"expected a number for {k}, found {v!r}", param_hint="--human-qwk") from None
            if not -1.0 <= hh[k] <= 1.0:
                raise typer.BadParameter(f"a QWK lies in [-1, 1]; found {k}={v}", param_hint="--human-qwk")
        known = [c.id for c in m.rubric.criteria]
        for option, names in (("--score-col", cols.scores), ("--second-score-col", second), ("--human-qwk", hh)):
            unknown = sorted(set(names) - set(known))
            if unknown:
                raise typer.BadParameter(f"criteria {unknown} are not in rubric {m.rubric.key} (criteria: {known})",
                                         param_hint=option)
        unscored = sorted((set(second) | set(hh)) - set(cols.scores))
        if unscored:  # a bar for a criterion that is not calibrated would be silently ignored
            raise typer.BadParameter(f"criteria {unscored} have a human-human bar but no --score-col: name the "
                                     "column of their human scores too", param_hint="--score-col")
        missing = [c for c in cols.scores if c not in second and c not in hh]
        if missing:
            raise CalibrationDataError(
                f"criteria {missing} need a human-human bar: expected --second-score-col CRITERION=COLUMN or "
                "--human-qwk CRITERION=QWK, found neither"
            )
        cols = dataclasses.replace(cols, meta=tuple(dict.fromkeys(second.values())))
        read = list(read_records(data, m.rubric, cols, fmt=fmt, encoding=encoding, quoting=quoting,
                                 max_chars=s.max_text_chars))
        records = [r for r in read if r.reject is None]
        rejected = [r for r in read if r.reject is not None]
        if rejected:  # left out of the calibration: say how many and why, never silently
            err.print(f"[yellow]{len(rejected)} of {len(read)} record(s) rejected and left out[/] (first: record "
                      f"{rejected[0].number}, id {rejected[0].id!r}: {rejected[0].reject})")
            encoding_hint(read, encoding, "calibrate again")
        bad_cells = [(r, c, why) for r in records for c, why in r.score_problems.items()]
        if bad_cells:
            r0, c0, why0 = bad_cells[0]
            err.print(f"[yellow]{len(bad_cells)} score cell(s) unusable and left out[/] (first: record {r0.number}, "
                      f"id {r0.id!r}: {why0})")
        base = dataclasses.replace(m, scorers={k: base_scorer(v) for k, v in m.scorers.items()})
        evidences = [r.evidence for r in records]
        if cross_fitted:
            P = {cid: cross_fitted_probabilities(base, cid, evidences) for cid in cols.scores}
        else:
            P = criterion_probabilities(base, evidences)
        cal_data = {}
        for cid in cols.scores:
            keep = [i for i, r in enumerate(records) if r.scores.get(cid) is not None]
            if not cross_fitted:
                seen = trained_on(base, cid, [records[i].evidence for i in keep])
                if seen.all() and len(keep):
                    raise CalibrationDataError(
                        f"all {len(keep)} scored rows for {cid!r} are texts model {m.version} trained on: its "
                        "probabilities on them are over-confident, so a policy chosen on them would auto-accept "
                        "far more than it should. Calibrate on held-out rows, or pass --cross-fitted to use the "
                        "out-of-fold probabilities the model kept for its training file")
                if seen.any():
                    first = records[keep[int(np.argmax(seen))]].id
                    err.print(f"[yellow]{cid}: {int(seen.sum())} of {len(keep)} scored row(s) are texts the model "
                              f"trained on, left out[/] (first id: {first!r}): calibration needs texts it never saw")
                    keep = [i for i, s_ in zip(keep, seen, strict=True) if not s_]
            unseen = [i for i in keep if np.isnan(P[cid][i]).any()] if cross_fitted else []
            if unseen and 2 * len(unseen) > len(keep):  # most rows unseen: not the file the model trained on
                raise CalibrationDataError(
                    f"--cross-fitted: {len(unseen)} of {len(keep)} scored rows for {cid!r} are not texts model "
                    f"{m.version} trained on (first id: {records[unseen[0]].id!r}); pass the training file, or "
                    "calibrate on held-out data without --cross-fitted"
                )
            if unseen:  # a few rows the model has no out-of-fold probabilities for
                err.print(f"[yellow]{cid}: {len(unseen)} of {len(keep)} scored row(s) are texts model {m.version} "
                          f"did not train on, left out[/] (first id: {records[unseen[0]].id!r}): rows added to the "
                          "file after training, or rows training skipped for want of a usable score in its column "
                          "(in `scoring export training`: ratings awaiting adjudication or a second rater)")
                skip = set(unseen)
                keep = [i for i in keep if i not in skip]
            if len(keep) < MIN_CALIBRATION_ITEMS:  # said per criterion and column, before any fitting
                raise CalibrationDataError(
                    f"{cid!r}: {len(keep)} usable row(s) with a score in column {cols.scores[cid]!r} of {data} "
                    f"(after the rows left out above); calibration needs at least {MIN_CALIBRATION_ITEMS}: rows with an "
                    "empty cell in that column are not counted, so check --score-col")
            sec = None
            if cid in second:
                sec = np.array([_int_or_nan(records[i].meta.get(second[cid])) for i in keep])
            cal_data[cid] = CriterionCalibrationData(
                proba_raw=P[cid][keep], y=np.array([records[i].scores[cid] for i in keep], dtype=int),
                ids=[records[i].id or "" for i in keep], second=sec, human_qwk=hh.get(cid),
            )
        res = calibrate_model(m, cal_data, coverage=coverage, audit_rate=audit_rate, double_rate=double_rate,
                              adjudication_gap=adjudication_gap, queue_order=queue_order, method=method,
                              mondrian=mondrian, n_boot=n_boot, seed=s.seed, bar=bar, delta=delta,
                              statistic=statistic)
        policy = with_award_bar(res.model, res.policy, cal_data)  # the award bar: a test on these decisions
        root = model.parent if (model / "card.json").exists() else model
        latest_before = (root / "LATEST").read_text().strip() if (root / "LATEST").exists() else None
        # calibrating an older version (how good was the cold start?) must not make scoring use it from now on
        make_latest = latest_before in (None, m.version) or _base_of(root, latest_before) == m.version
        if "learning_curve" in m.card:
            res.model.card.setdefault("learning_curve", m.card["learning_curve"])
        path = save_model(res.model, root, m.card.get("metrics", {}), res.model.card["calibration"]["data_sha256"],
                          make_latest=make_latest)
        save_policy(policy, out)
    except Exception as exc:  # noqa: BLE001 - every failure reaches the user as one clear line
        if isinstance(exc, (typer.Exit, typer.BadParameter)):
            raise
        _fail(exc)
        return
    err.print(f"[green]calibrated model {res.model.version}[/] saved to {path}; policy -> {out}")
    if make_latest:
        err.print(f"LATEST -> {res.model.version}" + (f" (was {latest_before})" if latest_before else ""))
    else:
        err.print(f"[yellow]LATEST stays {latest_before}[/]: {m.version} (calibrated here) is not the latest model; "
                  f"score with this calibration by --version {res.model.version}")
    for cid, cp in res.policy.criteria.items():
        ev = cp.evidence
        cal = ev.get("calibration", {})
        err.print(
            f"  {cid}: {cal.get('method')} ECE {cal.get('ece_before')} -> {cal.get('ece_after_cv')} (cv); "
            f"coverage {ev.get('coverage_cal_cv')} @ {coverage}; auto {ev.get('auto_fraction_cal', 0)} | {cp.describe()}"
        )
    if policy.award_evidence:
        ev = policy.award_evidence
        err.print(f"  award bar: {ev.get('chosen')}" + (f" ({ev['why']})" if "why" in ev else
                  f" (P(earned) bar tested strictest first on {ev.get('n_items')} calibration decisions, "
                  f"delta {ev.get('delta')})"))
    typer.echo(json.dumps({"model_version": res.model.version, "policy": str(out),
                           "auto_fraction_cal": {c: p.evidence.get("auto_fraction_cal", 0.0) for c, p in res.policy.criteria.items()}}))


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate)
