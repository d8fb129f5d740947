"""Headless Debian Chromium for the browser tests: where it lives, how it is launched, when tests skip.

The report and assessor-page tests drive the same browser the same way; one definition keeps their launch
flags and skip reason from drifting apart. The ``browser`` fixture itself is in ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eval.assessor_shift import CHROMIUM
from eval.assessor_shift import CHROMIUM_ARGS as ARGS

# ``pytestmark`` for a browser test module: marked ``browser``, skipped with the reason when Chromium is absent.
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


def launch_chromium() -> Iterator[Any]:
    """Yield a launched Chromium (skipping the test when Playwright is not installed), closed afterwards."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()
