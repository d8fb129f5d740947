"""``scoring bench assessor``: an assessor's shift in Chromium against a server on a fresh store, timed."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    from scoring.commands._bench import bench_app

    @bench_app.command("assessor")
    def bench_assessor(
        model: Path = typer.Option(None, "--model", help="Model directory (default: train the demo model into --out)."),
        out: Path = typer.Option(Path("bench-out/assessor"), "--out", help="Working folder (model, store, server log)."),
        items: int = typer.Option(20, "--items", min=12, max=500, help="Submissions in the shift (reflections and "
                                  "WebVTT/SRT transcripts)."),
        width: int = typer.Option(1366, "--width", min=320, help="Browser window width (390 for a phone)."),
        height: int = typer.Option(768, "--height", min=480, help="Browser window height."),
    ) -> None:
        """Drive a keyboard-only shift (claim, select, accept, next, submit, with a reload, a network drop and an
        expired lease) in Debian Chromium; print milliseconds per action. Last line: one JSON object with
        page_ms_median and page_ms_p95; exit 1 when p95 misses 300 ms."""
        from eval.bench_assessor import run

        res = run(model=model, out=out, items=items, viewport=(width, height), log=lambda m: typer.echo(m, err=True))
        typer.echo(json.dumps(res))
        if not res["pass"]:
            raise typer.Exit(1)
