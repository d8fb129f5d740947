"""The CLI doors of the service: `scoring keys` and `scoring serve` (a real process on a free port)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from scoring.cli import app


def test_keys_create_prints_the_key_once_and_list_never_does(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    r = CliRunner().invoke(app, ["keys", "create", "--role", "assessor", "--name", "alice", "--db", db])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[-1]
    assert key.startswith("rsk_")
    listed = CliRunner().invoke(app, ["keys", "list", "--db", db])
    assert "alice\tassessor" in listed.stdout and key not in listed.stdout
    bad = CliRunner().invoke(app, ["keys", "create", "--role", "boss", "--name", "bob", "--db", db])
    assert bad.exit_code == 2 and "role must be one of" in bad.output
    assert CliRunner().invoke(app, ["keys", "revoke", "alice", "--db", db]).exit_code == 0


def test_scoring_serve_starts_uvicorn_on_the_given_store(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SCORING_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "scoring.cli", "serve", "--port", str(port), "--db",
                             f"sqlite:///{tmp_path / 's.db'}", "--log-level", "warning"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                time.sleep(0.1)
        else:
            raise AssertionError("scoring serve did not answer in 30 s")
        assert r.status_code == 200 and r.json()["database"] == "sqlite"
        docs = httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()
        assert "/submissions" in docs["paths"] and "/queue/claim" in docs["paths"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_shows_the_services_own_log_lines_with_time_and_level(capsys) -> None:  # type: ignore[no-untyped-def]
    """uvicorn configures only its own loggers: a batch job cancelled, or left to another server, was logged
    by the service at INFO and never shown."""
    import logging

    from scoring.commands.serve import app_logging

    saved = {n: (logging.getLogger(n).level, logging.getLogger(n).propagate, list(logging.getLogger(n).handlers))
             for n in ("api", "scoring")}
    try:
        app_logging("info")
        app_logging("info")  # once more: still one line per message
        logging.getLogger("scoring").info("batch job 7 stopped: cancelled")
        logging.getLogger("api").debug("not at info")
        err = capsys.readouterr().err
        assert err.count("batch job 7 stopped: cancelled") == 1 and " INFO scoring: " in err, err
        assert "not at info" not in err
    finally:
        for n, (level, propagate, handlers) in saved.items():
            lg = logging.getLogger(n)
            lg.setLevel(level)
            lg.propagate = propagate
            lg.handlers[:] = handlers
