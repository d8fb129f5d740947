"""An assessor's criterion filter is part of the claim's SQL: the right item comes back on SQLite and
PostgreSQL, ids match exactly (case, LIKE wildcards), and the pick is one LIMIT-ed query, not a scan of
every open item inside the writer lock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from scoring.store import Store, queue


def _sub(store: Store, ext: str, routes: dict[str, str]) -> int:
    sub = store.add_submission("obs", 1, ext, {"text": f"evidence {ext}"})
    queue.enqueue(store, sub.id, routes)
    return sub.id


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def grab(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", grab)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", grab)


def test_a_criterion_filter_claims_the_first_item_holding_that_criterion(store: Store, rubric) -> None:
    for i in range(5):  # ahead in the queue (double: priority 20), but on the other criterion
        _sub(store, f"q{i}", {"questioning": "double"})
    want = _sub(store, "f1", {"feedback": "human"})
    _sub(store, "f2", {"feedback": "human"})
    only_feedback = queue.QueueFilter(criterion="feedback")
    listed = queue.available(store, "ann", only_feedback, limit=1)
    assert [(it.submission_id, it.criteria) for it in listed] == [(want, ["feedback"])]
    got = queue.claim(store, "ann", 600, where=only_feedback)
    assert got is not None and got.submission_id == want and got.criteria == ["feedback"]
    assert all("feedback" in it.criteria for it in queue.available(store, "bob", only_feedback))
    assert len(queue.available(store, "bob", queue.QueueFilter(criterion="questioning"))) == 10


def test_a_criterion_filter_matches_whole_ids_only(store: Store, rubric) -> None:
    _sub(store, "s1", {"questioning": "human", "feedback": "human"})
    for near in ("Feedback", "feed", "%", "_eedback", 'feedback"', "questioning feedback"):
        assert queue.available(store, "ann", queue.QueueFilter(criterion=near)) == [], near
        assert queue.claim(store, "ann", 600, where=queue.QueueFilter(criterion=near)) is None, near
    assert queue.claim(store, "ann", 600, where=queue.QueueFilter(criterion="feedback")) is not None


def test_a_filtered_claim_reads_one_row_under_a_limit(store: Store, rubric) -> None:
    for i in range(3):
        _sub(store, f"q{i}", {"questioning": "human"})
    _sub(store, "f1", {"feedback": "human"})
    with _statements(store) as seen:
        assert queue.claim(store, "ann", 600, where=queue.QueueFilter(criterion="feedback")) is not None
    picks = [s for s in seen if s.lstrip().upper().startswith("SELECT") and "queue_items" in s]
    assert picks and all("LIMIT" in s.upper() for s in picks), picks
