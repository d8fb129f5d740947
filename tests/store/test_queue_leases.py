"""A lease is renewed only by its holder's own token: a renewal never claims an open item out of queue
order, and a stale token (another tab claimed the item again) is refused in words instead of silently
getting a fresh token that would cut off the current tab. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from scoring.errors import Forbidden, LeaseExpired
from scoring.store import Store, queue
from scoring.store.clock import now
from scoring.store.service_tables import queue_items


def _sub(store: Store, ext: str, routes: dict[str, str]) -> int:
    sub = store.add_submission("obs", 1, ext, {"text": f"evidence {ext}"})
    queue.enqueue(store, sub.id, routes)
    return sub.id


def _expire_all(store: Store) -> None:
    with store.write() as tx:
        tx.conn.execute(sa.update(queue_items).values(lease_expires=now() - timedelta(seconds=1)))


def test_renewing_an_open_item_does_not_claim_it(store: Store, rubric) -> None:
    _sub(store, "first", {"questioning": "human"})
    behind = _sub(store, "second", {"questioning": "human"})
    item = queue.items_for_submission(store, behind)[0]
    for token in ("", "guess", "0" * 32):
        with pytest.raises(Forbidden, match="not held by 'ann'"):  # never claimed by ann
            queue.renew(store, item.id, "ann", token, 600)
    held = queue.claim(store, "ann", 600, item_id=item.id)
    assert held is not None
    queue.release(store, item.id, "ann", str(held.lease_token))
    for token in ("", "guess", str(held.lease_token)):
        with pytest.raises(LeaseExpired, match="given back to the queue"):  # hers once, given back since
            queue.renew(store, item.id, "ann", token, 600)
    after = queue.item(store, item.id)
    assert (after.status, after.holder, after.lease_token) == ("open", None, None)


def test_someone_who_never_claimed_an_item_is_forbidden_to_renew_submit_or_release_it(store: Store, rubric) -> None:
    _sub(store, "s1", {"questioning": "human"})
    ann = queue.claim(store, "ann", 600)
    assert ann is not None
    said = f"queue item {ann.id} is not held by 'bob'; assessors see only items they claimed"
    for attempt in (lambda: queue.renew(store, ann.id, "bob", str(ann.lease_token), 600),
                    lambda: queue.submit(store, ann.id, "bob", str(ann.lease_token), {"questioning": (1, "")}),
                    lambda: queue.release(store, ann.id, "bob", str(ann.lease_token)),
                    lambda: queue.check_lease(store, ann.id, "bob", "guess")):
        with pytest.raises(Forbidden) as err:
            attempt()
        assert str(err.value) == said
    assert queue.item(store, ann.id).lease_token == ann.lease_token and not store.human_scores()


def test_a_stale_token_from_another_tab_is_refused_and_the_current_lease_kept(store: Store, rubric) -> None:
    _sub(store, "s1", {"questioning": "human"})
    tab1 = queue.claim(store, "ann", 600)
    assert tab1 is not None
    _expire_all(store)
    tab2 = queue.claim(store, "ann", 600)  # nobody else took it: the second tab claims it again
    assert tab2 is not None and tab2.id == tab1.id and tab2.lease_token != tab1.lease_token
    with pytest.raises(LeaseExpired, match="another tab or window"):
        queue.renew(store, tab1.id, "ann", str(tab1.lease_token), 600)
    assert queue.item(store, tab1.id).lease_token == tab2.lease_token, "the current tab keeps its lease"
    again = queue.renew(store, tab2.id, "ann", str(tab2.lease_token), 600)
    assert again.lease_token == tab2.lease_token


def test_the_holder_renews_even_after_expiry_and_keeps_the_token(store: Store, rubric) -> None:
    _sub(store, "s1", {"questioning": "human"})
    it = queue.claim(store, "ann", 600)
    assert it is not None
    _expire_all(store)
    again = queue.renew(store, it.id, "ann", str(it.lease_token), 600)
    assert again.holder == "ann" and again.lease_token == it.lease_token
    assert again.lease_expires is not None and again.lease_expires > it.created_at + timedelta(seconds=500)


def test_a_lease_taken_over_is_not_renewed_even_after_the_new_holder_lets_it_expire(store: Store, rubric) -> None:
    _sub(store, "s1", {"questioning": "human"})
    ann = queue.claim(store, "ann", 600)
    assert ann is not None
    _expire_all(store)
    bob = queue.claim(store, "bob", 600)
    assert bob is not None and bob.id == ann.id
    with pytest.raises(LeaseExpired, match="held by bob"):
        queue.renew(store, ann.id, "ann", str(ann.lease_token), 600)
    _expire_all(store)
    with pytest.raises(LeaseExpired, match="took it over"):
        queue.renew(store, ann.id, "ann", str(ann.lease_token), 600)
    assert queue.item(store, ann.id).holder == "bob"
