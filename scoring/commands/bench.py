"""``scoring bench ...``: benchmarks on real scored data (never run in CI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from models.encoder import DEFAULT_BATCH_SIZE
from scoring.commands._bench import bench_app


@bench_app.command("asap-aes")
def asap_aes(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="The asap_aes folder (e.g. ../shared/data/asap_aes).")],
    fold: Annotated[int, typer.Option(help="Benchmark fold of the standard 5-fold split.")] = 0,
    cache_dir: Annotated[Path, typer.Option(help="Embedding cache for training (kept between runs).")] = Path(".scoring/bench-cache"),
    out: Annotated[Path, typer.Option("--out", help="Where per-criterion tables and plots go.")] = Path("bench-out/asap-aes"),
    sets: Annotated[str, typer.Option(help="Comma-separated essay sets.")] = "1,2,3,4,5,6,7,8",
    throughput: Annotated[bool, typer.Option("--throughput/--no-throughput")] = True,
    route: Annotated[bool, typer.Option("--route", help="Also calibrate, build conformal sets and route.")] = False,
    calibration: Annotated[str, typer.Option(
        help="With --route: cross-fit = train on all training ids and calibrate on their out-of-fold probabilities; "
             "split = carve 20% of the training ids out as a calibration split.")] = "cross-fit",
    bar: Annotated[str, typer.Option(help="With --route: same-items | criterion (see scoring calibrate --bar).")] = "same-items",
    method: Annotated[str, typer.Option(
        help="With --route: calibration method, auto | temperature | isotonic | none (see scoring calibrate --method).")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Encoder batch size for both pipeline and bare encode.")] = DEFAULT_BATCH_SIZE,
    scorer: Annotated[str, typer.Option(
        help="ensemble | finetuned (fine-tune the encoder per criterion where a set has >= SCORING_FINETUNE_MIN_SCORES "
             "scores; slow on a CPU; with --route it needs --calibration split).")] = "ensemble",
    select: Annotated[bool, typer.Option("--select/--no-select", help="Per-criterion model selection (as scoring "
                                         "train); --no-select: the fixed ensemble, for comparison.")] = True,
) -> None:
    """Train on fold F's training ids, report QWK vs humans and the baseline, and throughput."""
    from eval.bench_asap import run
    from models.calibration import METHODS
    from scoring.settings import get_settings
    from scoring.train import fine_tuning_for

    cmd = (f"scoring bench asap-aes --data-dir {data_dir} --fold {fold} --sets {sets} --scorer {scorer}"
           + (f" --route --calibration {calibration} --bar {bar} --method {method}" if route else "")
           + ("" if select else " --no-select"))
    if calibration not in ("cross-fit", "split"):
        raise typer.BadParameter(f"expected cross-fit or split, found {calibration!r}", param_hint="--calibration")
    if method not in ("auto", *METHODS):
        raise typer.BadParameter(f"expected one of auto, {', '.join(METHODS)}, found {method!r}", param_hint="--method")
    try:
        finetune = fine_tuning_for(scorer, get_settings())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scorer") from None
    if finetune is not None and route and calibration == "cross-fit":
        raise typer.BadParameter("a fine-tuned scorer keeps no cross-fitted probabilities: use --calibration split",
                                 param_hint="--calibration")
    typer.echo(f"# reproduce: {cmd}")
    summary = run(
        data_dir, fold=fold, cache_dir=cache_dir, out_dir=out, sets=[int(x) for x in sets.split(",")],
        do_throughput=throughput, route=route, calibration=calibration, bar=bar, method=method, batch_size=batch_size, echo=typer.echo,
        finetune=finetune, select=select,
    )
    summary.pop("per_criterion", None)
    typer.echo(json.dumps(summary))


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")


@bench_app.command("backlog")
def backlog(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="The asap_aes folder (e.g. ../shared/data/asap_aes).")],
    fold: Annotated[int, typer.Option(help="Benchmark fold of the standard 5-fold split.")] = 0,
    sets: Annotated[str, typer.Option(help="Comma-separated essay sets.")] = "1,2,3,4,5,6,7,8",
    cache_dir: Annotated[Path, typer.Option(help="Embedding cache for training (kept between runs).")] = Path(".scoring/bench-cache"),
    out: Annotated[Path, typer.Option("--out", help="Where the summary goes.")] = Path("bench-out/backlog"),
    batch_size: Annotated[int, typer.Option(help="Encoder batch size.")] = DEFAULT_BATCH_SIZE,
) -> None:
    """Score fold F's test essays with a calibrated policy: files only vs into a store (SQLite, PostgreSQL)."""
    from eval.bench_backlog import run

    typer.echo(f"# reproduce: scoring bench backlog --data-dir {data_dir} --fold {fold} --sets {sets}")
    summary = run(data_dir, fold=fold, sets=[int(x) for x in sets.split(",")], cache_dir=cache_dir, out_dir=out,
                  batch_size=batch_size, echo=typer.echo)
    typer.echo(json.dumps(summary))


@bench_app.command("credential")
def credential(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="The asap_aes folder (e.g. ../shared/data/asap_aes).")],
    fold: Annotated[int, typer.Option(help="Benchmark fold of the standard 5-fold split.")] = 0,
    sets: Annotated[str, typer.Option(help="Comma-separated essay sets.")] = "1,2,3,4,5,6,7,8",
    cache_dir: Annotated[Path, typer.Option(help="Embedding cache for training (kept between runs).")] = Path(".scoring/bench-cache"),
    out: Annotated[Path, typer.Option("--out", help="Where decisions.csv and the summary go.")] = Path("bench-out/credential"),
) -> None:
    """Credential decisions (eval/policies/asap_awards.yaml) vs the raters' decisions on fold F's test ids."""
    from eval.bench_credential import run

    typer.echo(f"# reproduce: scoring bench credential --data-dir {data_dir} --fold {fold} --sets {sets}")
    summary = run(data_dir, fold=fold, sets=[int(x) for x in sets.split(",")], cache_dir=cache_dir, out_dir=out,
                  echo=typer.echo)
    typer.echo(json.dumps(summary))
