"""``scoring policy check``: does a routing policy's promise hold on fresh double-scored data?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

policy_app = typer.Typer(help="Routing policies: check their promise on new data, put them in charge of the waiting queue.",
                        no_args_is_help=True)


@policy_app.command("check")
def check(
    policy: Annotated[Path, typer.Option("--policy", help="Routing policy YAML (from `scoring calibrate`).")],
    data: Annotated[Path, typer.Option("--data", help="Routed output of `scoring score --policy` (.jsonl or .csv).")],
    score_col: Annotated[list[str] | None, typer.Option(
        "--score-col", help="CRITERION=COLUMN of the first human score (the rater the machine stands in "
                            "for), repeatable.")] = None,
    second_score_col: Annotated[list[str] | None, typer.Option(
        "--second-score-col", help="CRITERION=COLUMN of an independent second human score (the reference: machine "
                                   "vs it against first vs it), repeatable.")] = None,
    humans: Annotated[Path | None, typer.Option(
        "--humans", help="File holding the two human scores (.csv, .tsv, .jsonl, .parquet; default: --data).")] = None,
    id_col: Annotated[str, typer.Option("--id-col", help="Id column of the human score file.")] = "id",
    min_n: Annotated[int, typer.Option(min=2, help="Fewest double-scored accepted items to judge a criterion.")] = 30,
    n_boot: Annotated[int, typer.Option(min=200, help="Bootstrap resamples for the intervals.")] = 1000,
) -> None:
    """Per criterion: accepted-item agreement vs human-human agreement with 95% intervals; exit 1 on a fail."""
    from scoring.commands.batch import _fail, err, parse_pairs
    from scoring.policy import load_policy
    from scoring.policy_check import check_scored_file

    first = parse_pairs(score_col, "--score-col")
    second = parse_pairs(second_score_col, "--second-score-col")
    if not first:
        raise typer.BadParameter("expected at least one CRITERION=COLUMN naming the first human score, found none",
                                 param_hint="--score-col")
    if set(first) != set(second):
        raise typer.BadParameter(
            f"each criterion needs both human scores: --score-col names {sorted(first)}, --second-score-col names "
            f"{sorted(second)}", param_hint="--second-score-col")
    same = sorted(c for c in first if first[c] == second[c])
    if same:
        raise typer.BadParameter(f"the two human scores of {same} name the same column: two different people are "
                                 "needed", param_hint="--second-score-col")
    try:
        pol = load_policy(policy)
        checks, warnings = check_scored_file(pol, data, humans or data, {c: (first[c], second[c]) for c in first},
                                             id_col=id_col, n_boot=n_boot, min_n=min_n)
    except Exception as exc:  # noqa: BLE001 - every failure reaches the user as one clear line
        _fail(exc)
        return
    for w in warnings:
        err.print(f"[yellow]{w}[/]")
    for c in checks:
        typer.echo(c.line())
    statuses = [c.status for c in checks]
    # a criterion that could not be checked is not a pass: a script gating on the exit code must not deploy it
    overall = "fail" if "fail" in statuses else "insufficient" if "insufficient" in statuses else "pass"
    if overall == "insufficient":
        err.print("[yellow]not every criterion could be checked[/]: too few accepted items with two human scores "
                  "(see INSUFFICIENT above); exit 3")
    typer.echo(json.dumps({"policy": pol.policy_version, "status": overall,
                           "criteria": {c.criterion: c.as_dict() for c in checks}}))
    if overall == "fail":
        raise typer.Exit(1)
    if overall == "insufficient":
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
