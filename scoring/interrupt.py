"""SIGTERM handled as Ctrl-C is, for long commands that resume.

Why: a batch job is stopped with SIGTERM far more often than with Ctrl-C (``kill PID``, ``timeout``, a
service manager or a cluster scheduler stopping it). Python's default for SIGTERM ends the process at once,
without the line that says the job can be resumed, and with Ray connected its native handler prints a crash
dump instead. Raised as an interrupt, it unwinds like Ctrl-C: open store transactions roll back, the Ray
instance is shut down, and the command says how to resume. The batch job is built to be stopped at any
point (its progress file is the commit point), so where the exception lands loses nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM (exit status 143 by convention: 128 + 15)."""


def _raise(_signum: int, _frame: FrameType | None) -> None:
    raise Terminated()


def install_sigterm() -> None:
    """Make SIGTERM raise :class:`Terminated` (again: a library such as Ray may have put its own handler in)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Terminated`; the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    install_sigterm()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def sigterm_is_ours() -> bool:
    """Whether SIGTERM currently raises :class:`Terminated` (set by :func:`sigterm_as_interrupt`)."""
    return signal.getsignal(signal.SIGTERM) is _raise
