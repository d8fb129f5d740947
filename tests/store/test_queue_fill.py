"""Ratings that arrive outside the queue (an imported sheet) settle the slots that asked for them: a slot
whose criteria are all rated is closed, one partly rated asks only for the rest, a held slot is left alone."""

from __future__ import annotations

from scoring.store import Store, queue


def _slots(store: Store, sid: int) -> dict[str, tuple[str, list[str]]]:
    return {it.kind: (it.status, list(it.criteria)) for it in queue.items_for_submission(store, sid)}


def test_imported_ratings_close_or_shrink_the_slots_they_fill(store: Store, rubric) -> None:
    sub = store.add_submission("obs", 1, "s1", {"text": "evidence"})
    queue.enqueue(store, sub.id, {"questioning": "human", "feedback": "human"})
    assert _slots(store, sub.id) == {"first": ("open", ["questioning", "feedback"])}
    store.record_human_score(sub.id, "questioning", 1, assessor="sheet:q1", kind="first")
    with store.write() as tx:
        assert queue.close_filled_in(tx, [sub.id]) == 0
    assert _slots(store, sub.id) == {"first": ("open", ["feedback"])}, "nobody is asked again for questioning"
    store.record_human_score(sub.id, "feedback", 2, assessor="sheet:f1", kind="first")
    with store.write() as tx:
        assert queue.close_filled_in(tx, [sub.id]) == 1
    assert _slots(store, sub.id)["first"][0] == "done"


def test_a_slot_someone_holds_is_left_to_them(store: Store, rubric) -> None:
    sub = store.add_submission("obs", 1, "s2", {"text": "evidence"})
    queue.enqueue(store, sub.id, {"questioning": "human"})
    held = queue.claim(store, "ann", 600)
    assert held is not None
    store.record_human_score(sub.id, "questioning", 1, assessor="sheet:q1", kind="first")
    with store.write() as tx:
        assert queue.close_filled_in(tx, [sub.id]) == 0
    assert _slots(store, sub.id)["first"] == ("claimed", ["questioning"])
