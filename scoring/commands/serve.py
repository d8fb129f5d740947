"""``scoring serve``: the HTTP API and the assessor page (uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scoring.commands._store import DB_OPTION, open_store, shown_url

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's


def _log_level(value: str) -> str:
    if value.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"{value!r} is not a log level; use one of {', '.join(LOG_LEVELS)}")
    return value.lower()


def app_logging(level: str) -> None:
    """Show the service's own log lines (``api``, ``scoring``: a job cancelled or left to another server, a
    store that stopped answering) beside uvicorn's, at the same level, with a time and a level on each.

    Why: uvicorn configures only its own loggers, so without this the application's INFO lines were dropped
    and its errors printed bare. Idempotent (one handler, however often it is called)."""
    import logging

    lvl = logging.DEBUG if level == "trace" else getattr(logging, level.upper())
    for name in ("api", "scoring"):
        lg = logging.getLogger(name)
        lg.setLevel(lvl)
        if not any(getattr(h, "_rubric_scoring", False) for h in lg.handlers):
            h = logging.StreamHandler()
            h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            h._rubric_scoring = True  # type: ignore[attr-defined]
            lg.addHandler(h)
        lg.propagate = False


def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to bind (0.0.0.0 for all).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    db: str | None = DB_OPTION,
    model: Annotated[Path | None, typer.Option("--model", help="Model directory to score with (its LATEST version).")] = None,
    policy: Annotated[list[Path] | None, typer.Option(
        "--policy", help="Routing policy YAML; repeat for several rubrics (each policy routes the rubric it "
        "names or whose model it was tuned for). Rubrics without one: every criterion to a human.")] = None,
    log_level: Annotated[str, typer.Option("--log-level", callback=_log_level)] = "info",
) -> None:
    """Serve the API (docs at /docs) and the assessor page (/assessor) on SQLite by default, PostgreSQL by --db URL."""
    import uvicorn

    from api.app import create_app
    from models.artifact import ArtifactError
    from scoring.errors import ScoringError
    from scoring.settings import get_settings

    s = get_settings()
    if db:
        s = s.model_copy(update={"database_url": db})
    pol = None
    # What cannot start the server (a policy file, the store, the model directory) ends it with one line, exit 2
    try:
        if policy:
            from scoring.policy import load_policy

            pol = [load_policy(p) for p in policy]
        store = open_store(s.resolved_database_url())
        app = create_app(s, store=store, model_dir=model, policy=pol)
    except (ScoringError, ArtifactError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    import gc

    # Everything loaded so far (torch, the model, pandas) lives as long as the server: move it out of the
    # collector's reach, so full collections scan only request garbage.
    gc.collect()
    gc.freeze()
    typer.echo(f"serving on http://{host}:{port}  (docs /docs, assessor page /assessor, store "
               f"{shown_url(store.url)})", err=True)
    app_logging(log_level)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
