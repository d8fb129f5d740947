"""Named fault-injection points for the crash-safety tests (inert unless a test arms them).

``SCORING_FAULT_AT=N`` makes the process SIGKILL itself at the N-th point it passes (counting every call
of :func:`point` in the process, whatever its name), exactly as an operator's ``kill -9`` or a power cut
would stop it there. The points sit between the steps a crash could separate: inside the store's write
transaction, between the store commit and the output files, between the files and the progress file.
Unset (always, outside tests) a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_passed = 0


def point(name: str) -> None:
    """Pass a fault point; ``name`` says where in the code it is (it shows in a traceback, nowhere else)."""
    global _passed
    at = os.environ.get("SCORING_FAULT_AT")
    if not at:
        return
    _passed += 1
    if _passed == int(at):
        os.kill(os.getpid(), signal.SIGKILL)
