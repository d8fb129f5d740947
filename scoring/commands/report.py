"""``scoring report``: the researcher's HTML report with documented, pseudonymised CSV/JSON exports."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from scoring.commands._store import DB_OPTION, gate_policy, open_store


def _when(s: str | None, option: str) -> datetime | None:
    """The UTC time ``option`` (--since / --until) names; refused naming the option, so a user who wrote
    two dates is told which one to fix."""
    if s is None:
        return None
    try:
        d = datetime.fromisoformat(s)
    except ValueError:
        raise typer.BadParameter(f"expected an ISO date or datetime such as 2026-01-31, found {s!r}",
                                 param_hint=option) from None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        out: Path = typer.Option(..., "--out", help="Output folder (created; a used one gets this report, and "
                                 "the figures an earlier report left in figures/ are removed)."),
        rubric: str | None = typer.Option(None, "--rubric", help="Only this rubric id."),
        since: str | None = typer.Option(None, "--since", help="Pairs completed at or after (ISO, UTC): the "
                                         "machine score's (or decision's) time, the second rater's for human-human "
                                         "pairs; a submission's credential decision by its latest decision's time."),
        until: str | None = typer.Option(None, "--until", help="Pairs and decisions before (ISO, UTC); same times."),
        subgroup: list[str] = typer.Option([], "--subgroup", help="Metadata field for DSM by subgroup (repeatable)."),
        window: str = typer.Option("M", "--window", help="pandas period for over-time tables: D, W, M, Q, Y."),
        bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap resamples for intervals (0: none)."),
        policy: Path | None = typer.Option(None, "--policy", help="Gate policy YAML (default: bundled ETS)."),
        db: str | None = DB_OPTION,
    ) -> None:
        """Agreement tables (human-human, human-machine, subgroups, over time), plots, and exports."""
        from eval.report import build_report
        from scoring.settings import get_settings

        settings = get_settings()
        if window not in ("D", "W", "M", "Q", "Y"):
            raise typer.BadParameter(f"expected one of D, W, M, Q, Y, found {window!r}", param_hint="--window")
        lo, hi = _when(since, "--since"), _when(until, "--until")
        if lo is not None and hi is not None and lo >= hi:
            raise typer.BadParameter(f"--since {since} is not before --until {until}: the window is empty",
                                     param_hint="--since/--until")
        gates = gate_policy(policy)
        refuse_unusable_out(out)
        store = open_store(db, must_exist=True)
        span = None
        try:
            if rubric is not None and rubric not in {r.rubric_id for r in store.rubrics()}:
                known = sorted({r.rubric_id for r in store.rubrics()})
                typer.echo(f"error: rubric {rubric!r} is not in the store (rubrics: {known})", err=True)
                raise typer.Exit(2)
            if subgroup:
                check_subgroups(store, rubric, subgroup)
            res = build_report(store, out, rubric_id=rubric, since=lo, until=hi,
                               subgroups=subgroup, window=window, n_boot=bootstrap, seed=settings.seed,
                               policy=gates, pseudonym_key=settings.pseudonym_key)
            if res.tables["items"].empty and (lo is not None or hi is not None):
                span = score_span(store, rubric)
        finally:
            store.close()
        hh = res.tables["human_human"]
        for r in hh.itertuples() if not hh.empty else []:
            typer.echo(_hh_line(r))
        hm = res.tables["human_machine"]
        for r in hm.itertuples() if not hm.empty else []:
            prmse = _prmse(r)
            seen = (f" ({int(r.n_not_blind)} item(s) left out: first rater saw the machine's score)"
                    if r.n_not_blind == r.n_not_blind and r.n_not_blind else "")
            typer.echo(f"human-machine {r.rubric_id}@{r.rubric_version}/{r.criterion} [{r.model_version}]: n={r.n} "
                       f"QWK={_f3(r.qwk)} SMD={_f3(r.smd, '+.3f')}{prmse} gate={r.gate}{seen}")
        au = res.tables["automation"]
        per = au[au["criterion"] != "(all)"] if not au.empty else au
        for r in au.itertuples() if not au.empty else []:
            audited = f", audited {r.n_audited}" + (f" QWK={r.qwk_audited:.3f}" if r.qwk_audited is not None
                                                     and r.qwk_audited == r.qwk_audited else "")
            typer.echo(f"automation {r.rubric_id}@{r.rubric_version}/{r.criterion} [{r.model_version}] "
                       f"{r.window}: n={r.n} "
                       f"auto_fraction={r.auto_fraction:.3f}{audited}")
        pooled = float(per["n_accepted"].sum() / per["n"].sum()) if len(per) and per["n"].sum() else None
        by_model = ({str(mv): float(g["n_accepted"].sum() / g["n"].sum()) for mv, g in per.groupby("model_version")
                     if g["n"].sum()} if len(per) else {})  # a retrained model's share apart from the first's
        for line in uncompared(res.tables):
            typer.echo(line)
        if span is not None:
            held = (f"run from {span[0]:%Y-%m-%d %H:%M} to {span[1]:%Y-%m-%d %H:%M} UTC" if span[0] and span[1]
                    else "are none")
            typer.echo(f"note: no score in the window [{since or 'start'}, {until or 'now'}); the store's scores"
                       f"{' for ' + rubric if rubric else ''} {held}", err=True)
        typer.echo(f"report: {res.html}")
        typer.echo(json.dumps({"html": str(res.html), "figures": len(res.figures), "auto_fraction": pooled,
                               "auto_fraction_by_model": by_model, "tables": {k: len(v) for k, v in res.tables.items()}}))


def check_subgroups(store: Any, rubric_id: str | None, fields: list[str]) -> None:
    """Refuse a --subgroup field no submission carries, naming the fields they do carry; warn about one only
    some carry. Why: the submissions without it form one '(missing)' group, so a mistyped field would be
    reported as a single group whose DSM is 0.0 and whose gate passes, a fairness check never made."""
    subs = [x for x in store.submissions() if rubric_id is None or x.rubric_id == rubric_id]
    for field in fields:
        have = sum(1 for x in subs if (x.metadata or {}).get(field) not in (None, ""))
        how = (f"`scoring score --store --meta-col {field}` (or `scoring import-scores --meta-col {field}` for ids "
               "new to the store)")
        if subs and not have:
            known = sorted({k for x in subs for k, v in (x.metadata or {}).items() if v not in (None, "")})
            carried = f"they carry {', '.join(known)}" if known else "they carry no metadata field"
            typer.echo(f"error: --subgroup {field!r} is recorded for none of the {len(subs)} submission(s) "
                       f"({carried}); record it when submissions are stored: {how}", err=True)
            raise typer.Exit(2)
        if have < len(subs):
            typer.echo(f"warning: subgroup field {field!r} is recorded for {have} of {len(subs)} submission(s); "
                       f"the rest form the group '(missing)'. Record it when submissions are stored: {how}", err=True)


def refuse_unusable_out(out: Path) -> None:
    """End the command with one line, before the store is read, when --out cannot be the report's folder:
    an existing file (or a file where a parent folder should be) would otherwise surface as a
    NotADirectoryError traceback after the whole report was computed."""
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                where = "" if p == out else f" ({p} is a file)"
                typer.echo(f"error: --out {out} is not a folder{where}: name a folder (created if missing) for "
                           "report.html, the exports and figures/", err=True)
                raise typer.Exit(2)
            return


def score_span(store: Any, rubric_id: str | None) -> tuple[datetime | None, datetime | None]:
    """First and last time any machine or human score was recorded (for the rubric): what to tell someone
    whose --since/--until caught nothing, so they can pick a window that holds scores."""
    times = [x.created_at for x in store.machine_scores(rubric_id=rubric_id)]
    times += [x.created_at for x in store.human_scores(rubric_id=rubric_id)]
    return (min(times), max(times)) if times else (None, None)


def uncompared(tables: dict[str, Any]) -> list[str]:
    """One line per rubric x criterion that holds scores but no pair to compare them in: without it a
    criterion scored by one person only, or never by the machine, is simply absent from every table."""
    items = tables["items"]
    if items.empty:
        return []
    paired = {(r.rubric_id, r.criterion) for name in ("human_human", "human_machine")
              for r in tables[name].itertuples()}
    machine_cols = [c for c in items.columns if c.startswith("machine_")]
    out = []
    for (rid, crit), g in items.groupby(["rubric_id", "criterion"], sort=True):
        if (rid, crit) in paired:
            continue
        n_m = int(g[machine_cols].notna().any(axis=1).sum()) if machine_cols else 0
        out.append(f"note {rid}/{crit}: no pair to compare ({int(g['h1'].notna().sum())} first-rater, "
                   f"{int(g['h2'].notna().sum())} second-rater, {int(g['audit'].notna().sum())} audit and {n_m} "
                   "machine-scored item(s)); agreement needs a second rater or a machine score on the same items")
    return out


def _hh_line(r: Any) -> str:
    """One human-human row for the terminal, saying how many pairs were left out because a rater was not
    blind; a criterion whose pairs were all left out reports no reference rather than a figure."""
    key = f"human-human {r.rubric_id}@{r.rubric_version}/{r.criterion}"
    seen = int(r.n_not_blind) if r.n_not_blind == r.n_not_blind and r.n_not_blind else 0
    if not r.n:
        return f"{key}: no human-human reference ({seen} pairs were not blind)"
    left = f" ({seen} pair(s) left out: a rater was not blind)" if seen else ""
    return (f"{key}: n={r.n} QWK={_f3(r.qwk)} exact={100 * r.exact:.1f}% adjacent={100 * r.adjacent:.1f}%{left}")


def _prmse(r: Any) -> str:
    """The PRMSE part of a human-machine line: the figure with its n, or n/a with why (a handful of
    double-scored items or a non-positive true-score variance make it meaningless); nothing where no
    item was double-scored, as before."""
    if r.prmse is not None and r.prmse == r.prmse:
        return f" PRMSE={r.prmse:.3f} (n={r.prmse_n})"
    note = r.prmse_note if isinstance(r.prmse_note, str) else ""
    return "" if not note or note == "no double-scored item" else f" PRMSE=n/a ({note})"


def _f3(x: float | None, fmt: str = ".3f") -> str:
    """A figure for the terminal; ``n/a`` where it is undefined (e.g. kappa when both raters used one level)."""
    return "n/a" if x is None or x != x else format(x, fmt)
