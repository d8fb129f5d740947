"""A real ``scoring serve`` process on loopback for benchmarks: one way to start it, wait for it, stop it.

Benchmarks measure the server as users run it (its own process, uvicorn, offline models), so each bench
starts the CLI in a subprocess rather than an in-process app; this module keeps that start/ready/stop
sequence in one place so every bench waits and tears down the same way.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    """A loopback TCP port free right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A started ``scoring serve`` subprocess, its base URL and the file its stderr goes to."""

    process: subprocess.Popen[bytes]
    base: str
    log_path: Path

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Poll ``/readyz`` every 0.1 s until it answers 200; fail fast if the process dies, else at the timeout."""
        for _ in range(int(timeout_s * 10)):
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {self.log_path}")
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout_s:g} s")

    def stop(self) -> None:
        """Terminate the server, killing it if it has not exited within 10 s."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(
    *, db_url: str, model_dir: Path, out: Path, cache_dir: Path, log: Callable[[str], None],
    extra_args: list[str] | None = None,
) -> Server:
    """Start ``scoring serve`` on a free loopback port (offline models, warnings-only logs, stderr to
    ``out/server.log``) without waiting for it; the caller calls ``wait_ready`` then ``stop`` in a ``finally``.

    ``cache_dir`` is the server's own embedding cache, so a rerun must encode its texts again.
    """
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "SCORING_CACHE_DIR": str(cache_dir)}
    cmd = [sys.executable, "-m", "scoring.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--db", db_url,
           "--model", str(model_dir), "--log-level", "warning", *(extra_args or [])]
    log(f"server: {' '.join(cmd)}")
    log_path = out / "server.log"
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(log_path, "wb"))
    return Server(process, f"http://127.0.0.1:{port}", log_path)
