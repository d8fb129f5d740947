"""The report's audit line names a broken log in the same words as `scoring audit verify`.

A problem that is not at one entry (a rubric inserted by hand has no entry) must not print "at seq None".
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from eval.report import build_report
from rubrics.schema import parse_rubric
from scoring.store import Store

RUBRIC = {"id": "obs", "version": 1, "title": "Observation", "evidence": ["text"],
          "criteria": [{"id": "questioning", "title": "Questioning", "scale": {"min": 0, "max": 3}}]}


def test_a_rubric_added_outside_the_service_reads_as_broken_without_an_entry(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        store.register_rubric(parse_rubric(RUBRIC))
        sub = store.add_submission("obs", 1, "s0", {"text": "t"})
        store.record_human_score(sub.id, "questioning", 2, assessor="ann")
        with store.engine.connect().execution_options(store_write=True) as c, c.begin():
            c.execute(sa.text("INSERT INTO rubrics (rubric_id, version, title, fingerprint, body, registered_at) "
                              "SELECT rubric_id, 2, title, fingerprint, body, registered_at FROM rubrics"))
        html = build_report(store, tmp_path / "r", n_boot=0).html.read_text(encoding="utf-8")
    assert "BROKEN: rubric obs@2 is in the rubrics table but no rubric_registered entry logs it" in html
    assert "None" not in html.split("BROKEN", 1)[1][:40]
