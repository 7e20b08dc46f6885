"""The store on its own, at its conditional writes: each is what keeps a phone from ringing twice
or a result from being lost, so each is tried from both sides of its condition."""

from __future__ import annotations

import time

import pytest

from chalicelib.errors import InvalidCursor
from chalicelib.records import PENDING, QUEUED, UNKNOWN, Callback, CallRecord, Kind, Reply
from chalicelib.store.callbacks import StoreOutcome
from chalicelib.store.calls import CallStore, RecordExists
from tests.helpers import TABLE, Aws

NOW = int(time.time())
LATER = NOW + 90 * 86400
OUTCOME = {"status": "completed", "attempts": 1}


@pytest.fixture
def store(aws: Aws) -> CallStore:
    return CallStore(TABLE, lambda: aws.dynamodb)


def pending(record_id: str = "call-1", kind: Kind = Kind.CALL, **fields: object) -> CallRecord:
    values: dict = {"request_hash": "h1", "created_at": NOW, "lock_until": NOW + 30, **fields}
    return CallRecord(id=record_id, status=PENDING, kind=kind, **values)


def callback(call_id: str = "call-1", body: bytes = b'{"status": "completed"}') -> Callback:
    return Callback(call_id, "callback", NOW, "application/json", body, len(body), body.hex())


def test_create_holds_an_id_once_and_the_loser_gets_the_holder(store: CallStore) -> None:
    store.create(pending(request_hash="first"), LATER, NOW)
    with pytest.raises(RecordExists) as lost:
        store.create(pending(request_hash="second"), LATER, NOW)
    assert lost.value.record.request_hash == "first"
    assert store.get("call-1").request_hash == "first"


def test_a_call_and_a_list_with_one_id_are_two_records(store: CallStore) -> None:
    store.create(pending("same"), LATER, NOW)
    store.create(pending("same", Kind.LIST), LATER, NOW)
    assert store.get("same", Kind.LIST).kind == Kind.LIST
    assert store.get("same").kind == Kind.CALL


def test_an_expired_holder_counts_as_free(store: CallStore) -> None:
    store.create(pending(request_hash="old"), NOW - 1, NOW - 100)
    store.create(pending(request_hash="new"), LATER, NOW)  # TTL had not deleted it yet
    assert store.get("call-1").request_hash == "new"


def test_settle_sets_the_status_only_of_a_pending_record(store: CallStore) -> None:
    store.create(pending(), LATER, NOW)
    reply = Reply(202, {"id": "call-1"})
    store.settle("call-1", QUEUED, reply, now=NOW, fuse_call_id="f-1", check_after=NOW + 60)
    assert store.get("call-1").status == QUEUED
    assert [r.id for r in store.due_for_check(NOW + 60, 10)] == ["call-1"]
    # A second answer keeps the status and the first reply (one key, one answer), but
    # records what it learnt.
    store.settle("call-1", UNKNOWN, Reply(504, {}), now=NOW + 1, fuse_call_id="f-2")
    record = store.get("call-1")
    assert (record.status, record.fuse_call_id, record.reply.status) == (QUEUED, "f-2", 202)


def test_a_fuse_id_learnt_after_a_stale_replay_reopens_the_call(store: CallStore) -> None:
    store.create(pending(lock_until=NOW), LATER, NOW)
    assert store.settle_stale(store.get("call-1"), UNKNOWN, Reply(504, {"first": 1}), NOW + 1)
    store.settle("call-1", QUEUED, Reply(202, {}), now=NOW + 2, fuse_call_id="f-9", check_after=NOW)
    record = store.get("call-1")
    assert (record.status, record.fuse_call_id) == (UNKNOWN, "f-9")
    assert record.reply == Reply(504, {"first": 1})  # the answer replays already got
    assert [r.id for r in store.due_for_check(NOW + 2, 10)] == ["call-1"]  # polled after all


def test_a_result_before_fuses_answer_keeps_the_result_and_takes_the_answer(
    store: CallStore,
) -> None:
    store.create(pending(), LATER, NOW)
    store.callbacks.add(callback(), OUTCOME, NOW, LATER)  # Fuse's callback raced ahead
    store.settle("call-1", QUEUED, Reply(202, {"id": "call-1"}), now=NOW, fuse_call_id="f-1")
    record = store.get("call-1")
    assert (record.status, record.fuse_call_id) == ("completed", "f-1")
    assert record.reply == Reply(202, {"id": "call-1"})  # replays need a first answer


def test_settle_stale_needs_a_lapsed_lock(store: CallStore) -> None:
    store.create(pending(lock_until=NOW + 30), LATER, NOW)
    record = store.get("call-1")
    assert store.settle_stale(record, UNKNOWN, Reply(504, {}), NOW) is False
    assert store.get("call-1").status == PENDING
    assert store.settle_stale(record, UNKNOWN, Reply(504, {}), NOW + 31) is True
    assert store.get("call-1").status == UNKNOWN


def test_release_frees_only_a_pending_record(store: CallStore) -> None:
    store.create(pending("free-me"), LATER, NOW)
    store.release("free-me")
    assert store.get("free-me") is None
    store.create(pending("keep-me"), LATER, NOW)
    store.settle("keep-me", QUEUED, None, now=NOW)
    store.release("keep-me")  # queued meanwhile: no longer the releaser's to free
    assert store.get("keep-me").status == QUEUED


def test_a_callback_is_stored_once_and_only_for_a_known_call(store: CallStore) -> None:
    assert store.callbacks.add(callback("nobody"), OUTCOME, NOW, LATER) == (
        StoreOutcome.UNKNOWN_CALL
    )
    store.create(pending(), LATER, NOW)
    store.settle("call-1", QUEUED, None, now=NOW, check_after=NOW)
    assert store.callbacks.add(callback(), OUTCOME, NOW, LATER) == StoreOutcome.STORED
    assert store.callbacks.add(callback(), OUTCOME, NOW, LATER) == StoreOutcome.DUPLICATE
    record = store.get("call-1")
    assert record.status == "completed"
    assert record.result == OUTCOME
    assert store.due_for_check(NOW + 1, 10) == []  # an outcome closes it for the reconciler


def test_a_callback_without_an_outcome_leaves_the_status(store: CallStore) -> None:
    store.create(pending(), LATER, NOW)
    unreadable = callback(body=b"<html>")
    assert store.callbacks.add(unreadable, None, NOW, LATER) == StoreOutcome.STORED
    assert store.get("call-1").status == PENDING


def test_a_kept_callback_is_kept_once(store: CallStore) -> None:
    assert store.callbacks.keep_unmatched(callback("list-1"), LATER) == StoreOutcome.STORED
    assert store.callbacks.keep_unmatched(callback("list-1"), LATER) == StoreOutcome.DUPLICATE
    [(body, content_type, received_at)] = store.callbacks.unmatched("list-1")
    assert (body, content_type, received_at) == (callback().body, "application/json", NOW)


def test_a_large_answer_is_kept_in_parts_and_joined(store: CallStore) -> None:
    store.create(pending("list-2", Kind.LIST), LATER, NOW)
    answer = Reply(202, {"calls": ["x" * 1000] * 700}, {"Location": "/batches/list-2"})
    store.lists.save_reply("list-2", answer, LATER)  # 700 KB: three items of at most 300 KB
    assert store.first_reply(store.get("list-2", Kind.LIST)) == answer


def test_a_cursor_is_refused_for_another_reference(store: CallStore) -> None:
    for number in range(3):
        store.create(pending(f"c{number}", reference="lead-1", created_at=NOW + number), LATER, NOW)
    page, cursor = store.by_reference("lead-1", 2, None)
    assert [r.id for r in page] == ["c2", "c1"]
    assert cursor is not None
    assert [r.id for r in store.by_reference("lead-1", 2, cursor)[0]] == ["c0"]
    with pytest.raises(InvalidCursor):
        store.by_reference("lead-2", 2, cursor)
