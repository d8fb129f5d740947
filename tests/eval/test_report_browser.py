"""The researcher's report in a real browser (headless Debian Chromium through Playwright): at 1366 px and
printed to PDF nothing is clipped (no table container wider than its box, no figure wider than the page),
and every figure says its n. Screenshots (screen, and the print layout) are saved under the test's tmp
dir; set ``SCORING_SCREENSHOT_DIR`` to keep copies.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from browser_support import BROWSER_MARKS
from report_fixture import build

from eval.report import build_report
from scoring.store import Store

pytestmark = BROWSER_MARKS

CLIPPED = """() => {
  const out = [];
  for (const el of document.querySelectorAll('.tablewrap, figure, section, body')) {
    if (el.scrollWidth > el.clientWidth + 1) {
      out.push({what: el.dataset.table || el.tagName + '#' + (el.id || ''), scroll: el.scrollWidth, client: el.clientWidth});
    }
  }
  const page = document.documentElement;
  if (page.scrollWidth > page.clientWidth + 1) out.push({what: 'page', scroll: page.scrollWidth, client: page.clientWidth});
  return out;
}"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    store = Store(f"sqlite:///{tmp / 's.db'}")
    build(store)
    res = build_report(store, tmp / "out", subgroups=["school"], n_boot=100, pseudonym_key="k")
    store.close()
    return res.html


def _keep(path: Path) -> None:
    keep = os.environ.get("SCORING_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


def test_report_fits_1366_px_and_every_figure_states_its_n(browser, report, tmp_path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(report.as_uri())
    html = report.read_text()
    assert "http://" not in html and "https://" not in html  # self-contained: no CDN, no remote image
    assert page.evaluate(CLIPPED) == []
    # the wide human-machine table is split into parts that each fit, with SMD, PRMSE and the gate visible
    hm = page.locator('.tablewrap[data-table="human_machine"]')
    assert hm.count() >= 3
    visible = " ".join(hm.all_inner_texts())
    for col in ("qwk", "smd", "prmse", "gate", "rmse", "r2", "gate_detail"):
        assert re.search(rf"\b{col}\b", visible), col
    captions = page.locator("figcaption").all_inner_texts()
    assert len(captions) >= 10
    assert all(re.search(r"\bn=\d", c) for c in captions), [c for c in captions if not re.search(r"\bn=\d", c)]
    assert page.locator("table.matrix").count() >= 3  # confusion matrices as HTML tables
    shot = tmp_path / "report-1366.png"
    page.screenshot(path=str(shot), full_page=True)
    _keep(shot)
    page.close()


def test_report_prints_to_pdf_without_clipping(browser, report, tmp_path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(report.as_uri())
    page.emulate_media(media="print")
    # A4 landscape less 10 mm margins is about 1046 px wide at 96 dpi: lay the print CSS out at that width
    page.set_viewport_size({"width": 1046, "height": 740})
    assert page.evaluate(CLIPPED) == []
    shot = tmp_path / "report-print.png"
    page.screenshot(path=str(shot), full_page=True)
    _keep(shot)
    pdf = tmp_path / "report.pdf"
    page.pdf(path=str(pdf), format="A4", landscape=True, print_background=True)
    _keep(pdf)
    assert pdf.stat().st_size > 50_000 and pdf.read_bytes()[:5] == b"%PDF-"
    page.close()
