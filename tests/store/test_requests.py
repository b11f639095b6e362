"""Requests and their outbox in the store, on a SQLite file and on PostgreSQL: stored whole or
not at all, claimed by one worker at a time (leases, dead workers' heartbeats), settled only
by the worker holding the lease, status changes that one owner wins, and the purge."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from alembic import command
from dbfixtures import db_url, postgres_url, sqlite_url, store
from sqlalchemy import func, inspect, select

from bot.store.database import Store
from bot.store.migrate import alembic_config
from bot.store.requests import NewItem, NewRequest, RequestBook
from bot.store.tables import OfferingRequest, OutboxItem, utcnow

__all__ = ["db_url", "postgres_url", "sqlite_url", "store"]

LEASE = timedelta(seconds=90)
STALE = timedelta(seconds=20)


@pytest.fixture
def book(store: Store) -> RequestBook:
    return RequestBook(store)


def new_request(key: str = "V0VIEW1", user: str = "U0ALICE") -> NewRequest:
    return NewRequest(submission_key=key, offering_id="laptop", requester_id=user,
                      requester_name="alice", team_id="T0TEAM",
                      details={"answers": [{"id": "model", "value": "T14 <b>"}]})


ITEMS = [NewItem("channel", "C0REQUESTS", "request"), NewItem("webhook", "servicedesk",
                                                               "request"),
         NewItem("dm", "U0ALICE", "receipt")]


def claim(book: RequestBook, me: str, **kw: object) -> list[int]:
    args: dict[str, object] = {"lease": LEASE, "stale_after": STALE, "limit": 100} | kw
    return [p.item.id for p in book.claim(me, **args)]  # type: ignore[arg-type]


def counts(store: Store) -> tuple[int, int]:
    with store.engine.connect() as conn:
        return (int(conn.scalar(select(func.count()).select_from(OfferingRequest)) or 0),
                int(conn.scalar(select(func.count()).select_from(OutboxItem)) or 0))


def test_a_request_is_stored_with_its_items_and_a_second_submit_finds_it(
        book: RequestBook, store: Store) -> None:
    first = book.submit(new_request(), ITEMS)
    assert first.created and first.request.status == "open"
    assert first.request.details == {"answers": [{"id": "model", "value": "T14 <b>"}]}
    assert [(i.kind, i.target, i.purpose, i.state, i.attempts) for i in first.items] == [
        ("channel", "C0REQUESTS", "request", "pending", 0),
        ("webhook", "servicedesk", "request", "pending", 0),
        ("dm", "U0ALICE", "receipt", "pending", 0)]
    assert len({i.idempotency_key for i in first.items}) == 3

    again = book.submit(new_request(), ITEMS)
    assert not again.created and again.request.id == first.request.id
    assert again.items == first.items
    assert counts(store) == (1, 3)


def test_items_are_claimed_oldest_first_and_only_once(book: RequestBook) -> None:
    one = book.submit(new_request("V1"), ITEMS).request.id
    two = book.submit(new_request("V2"), ITEMS[:1]).request.id
    assert claim(book, "w1", request_id=two) != []
    mine = book.claim("w2", lease=LEASE, stale_after=STALE, limit=2)
    assert [(p.request.id, p.item.target) for p in mine] == [(one, "C0REQUESTS"),
                                                            (one, "servicedesk")]
    assert claim(book, "w3") != [] and claim(book, "w3") == []


def test_many_workers_at_once_claim_each_item_exactly_once(book: RequestBook) -> None:
    for n in range(20):
        book.submit(new_request(f"V{n}"), ITEMS)
    won: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def worker(name: str) -> None:
        start.wait()
        for _ in range(10):
            got = claim(book, name, limit=7)
            with lock:
                won.extend(got)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == sorted(set(won)) and len(won) == 60


def test_a_lease_is_freed_when_it_expires_or_its_worker_is_dead(book: RequestBook,
                                                                store: Store) -> None:
    now = utcnow()
    request = book.submit(new_request(), ITEMS[:1], at=now).request
    store.heartbeat("alive", at=now)
    assert claim(book, "alive", now=now) != []
    # A live worker's lease holds until it expires.
    store.heartbeat("alive", at=now + STALE * 2)
    assert claim(book, "other", now=now + STALE * 2) == []
    assert claim(book, "other", now=now + LEASE + timedelta(seconds=1)) != []
    # Now "other" holds it without ever having written a heartbeat: its own claim shows it
    # alive for `stale_after`, then it counts as dead.
    later = now + LEASE + timedelta(seconds=1)
    assert claim(book, "third", now=later + STALE - timedelta(seconds=1)) == []
    assert claim(book, "third", now=later + STALE + timedelta(seconds=1)) != []
    store.heartbeat("third", at=later + STALE * 3)  # alive again, just in time
    assert claim(book, "fourth", now=later + STALE * 3) == []
    found = book.get(request.id)
    assert found is not None and found.items[0].lease_owner == "third"


def test_only_the_lease_holder_settles_an_item(book: RequestBook) -> None:
    submitted = book.submit(new_request(), ITEMS)
    channel, webhook, receipt = (i.id for i in submitted.items)
    assert claim(book, "w1") == [channel, webhook, receipt]
    assert not book.delivered(channel, "w2")
    assert book.delivered(channel, "w1", message_channel="C0REQUESTS", message_ts="1.2")
    assert not book.delivered(channel, "w1")  # already settled
    later = utcnow() + timedelta(minutes=5)
    assert book.postpone(webhook, "w1", until=later, error="HTTP 503")
    assert claim(book, "w2") == []  # not due yet; the receipt is still leased
    # By then w1's lease on the receipt has run out (and w1 never wrote a heartbeat).
    assert claim(book, "w2", now=later + timedelta(seconds=1)) == [webhook, receipt]
    assert book.fail(webhook, "w2", error="HTTP 410", notices=[
        NewItem("dm", "U0ALICE", "failure", {"what": "webhook servicedesk"}),
        NewItem("dm", "U0ADMIN", "alert", {"what": "webhook servicedesk"})])
    assert not book.fail(webhook, "w2", error="again", notices=[NewItem("dm", "U0X", "alert")])
    found = book.get(submitted.request.id)
    assert found is not None
    assert [(i.purpose, i.state, i.attempts, i.last_error) for i in found.items] == [
        ("request", "delivered", 1, None), ("request", "failed", 2, "HTTP 410"),
        ("receipt", "pending", 0, None), ("failure", "pending", 0, None),
        ("alert", "pending", 0, None)]
    assert (found.items[0].message_channel, found.items[0].message_ts) == ("C0REQUESTS", "1.2")
    assert found.items[3].payload == {"what": "webhook servicedesk"}


def test_one_status_change_wins_and_brings_its_notice(book: RequestBook) -> None:
    request = book.submit(new_request(), ITEMS[:1]).request
    notice = [NewItem("dm", "U0ALICE", "status", {"status": "taken"})]
    taken = book.change_status(request.id, to="taken", allowed_from=("open",), by="U0OWNER",
                               notices=notice)
    assert taken is not None and (taken.status, taken.status_by) == ("taken", "U0OWNER")
    assert book.change_status(request.id, to="taken", allowed_from=("open",), by="U0OTHER",
                              notices=notice) is None
    declined = book.change_status(request.id, to="declined", allowed_from=("open", "taken"),
                                  by="U0OWNER", reason="no budget", notices=notice)
    assert declined is not None and declined.status_reason == "no budget"
    assert book.change_status(404, to="done", allowed_from=("open",), by="U0OWNER") is None
    found = book.get(request.id)
    assert found is not None and Counter(i.purpose for i in found.items) == {
        "request": 1, "status": 2}


def test_the_purge_deletes_old_requests_unless_a_delivery_still_waits(
        book: RequestBook, store: Store) -> None:
    old = utcnow() - timedelta(days=100)
    done = book.submit(new_request("Vdone"), ITEMS[:1], at=old)
    waiting = book.submit(new_request("Vwaiting"), ITEMS[:1], at=old)
    fresh = book.submit(new_request("Vfresh"), ITEMS[:1])
    assert claim(book, "w", request_id=done.request.id) == [done.items[0].id]
    assert book.delivered(done.items[0].id, "w")
    purged = store.purge(timedelta(days=90))
    assert purged.requests == 1
    assert book.get(done.request.id) is None
    assert book.get(waiting.request.id) is not None and book.get(fresh.request.id) is not None
    assert counts(store) == (2, 2)


def test_requests_of_a_period_come_with_their_items(book: RequestBook) -> None:
    now = utcnow()
    book.submit(new_request("Vold"), ITEMS, at=now - timedelta(days=40))
    recent = book.submit(new_request("Vnew"), ITEMS, at=now - timedelta(days=1))
    found = book.between(now - timedelta(days=30), now)
    assert [(r.request.id, len(r.items)) for r in found] == [(recent.request.id, 3)]


def test_revision_0003_downgrades_and_upgrades_again(store: Store) -> None:
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0002")
    with store.engine.connect() as conn:
        assert not {"requests", "request_outbox"} & set(inspect(conn).get_table_names())
    assert "0003" in store.upgrade()
    indexes = {i["name"] for i in inspect(store.engine).get_indexes("request_outbox")}
    assert "ix_request_outbox_due" in indexes
    assert RequestBook(store).submit(new_request(), ITEMS).created
