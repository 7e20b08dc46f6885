"""Bursts (issue 20): single queues within the budget, the rest waiting and sent in bulks.

Classes of input, not examples: the grouping is a property over any mix of settings and phones,
the budget is taken by many threads as many containers would, and Fuse fails mid-burst. Every
test counts what reached the simulator: each call at Fuse exactly once, none lost.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from chalice.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.admission.calls import number_key
from chalicelib.config.dependencies import Dependencies, build_dependencies, set_dependencies
from chalicelib.config.settings import load_settings
from chalicelib.errors import FuseRejectedRequest, StoreUnavailable
from chalicelib.fuse.bulk_form import bulk_csv
from chalicelib.fuse.callback_urls import bulk_token_subject, callback_token
from chalicelib.fuse.form import fuse_phone_number, schedule_fields
from chalicelib.placing.bulk_requests import MAX_SPLIT_REQUESTS, seconds_for_a_bulk
from chalicelib.placing.bulks import bulk_key, plan_bulks, shared_settings
from chalicelib.placing.calls import place_call
from chalicelib.placing.dispatch import Waiting, dispatch, dispatch_batch
from chalicelib.queues import NotQueued
from chalicelib.records import WAITING, CallRecord
from chalicelib.store.budget import Budget
from chalicelib.store.table import Table
from infra.parameters import put_parameters
from local.aws_setup import create_delivery_queue, create_dispatch_queue
from local.fuse_sim import FuseSimulator
from local.receiver import DemoReceiver
from tests.helpers import (
    AUTH,
    CALLBACK_SECRET,
    FUSE_EXAMPLE,
    ID_SECRET,
    PREFIX,
    PUBLIC_BASE_URL,
    TABLE,
    Aws,
    Clock,
    bridge_environment,
    calls_by_phone,
    consume,
    error_of,
    list_requests,
    post_call,
    read_call,
    run_batch,
    run_reconciler,
    stop_clock,
)

DISPATCH = "fuse-bridge-test-dispatch"
DELIVERIES = "fuse-bridge-test-deliveries"
SECRET = "whsec_" + "cmVzdWx0cy1yZWNlaXZlci1zZWNyZXQtZm9yLXRlc3Rz"
T0 = 1_900_000_000  # a fixed second: every request of a burst lands in it


def phone(n: int) -> str:
    return f"+1617555{n:04d}"


@pytest.fixture
def receiver() -> Iterator[DemoReceiver]:
    with DemoReceiver(SECRET) as server:
        yield server


@pytest.fixture
def deps(aws: Aws, fuse: FuseSimulator, receiver: DemoReceiver) -> Iterator[Dependencies]:
    """The bridge paced as deployed (a dispatch queue, 2 single queues a second), its default
    integration delivering outcomes to the receiver, its clock stopped at T0."""
    put_parameters(
        aws.ssm,
        PREFIX,
        {
            "integrations/default/results_url": receiver.url,
            "integrations/default/results_secret": SECRET,
        },
    )
    sqs = boto3.client("sqs")
    create_dispatch_queue(sqs, DISPATCH)
    create_delivery_queue(sqs, DELIVERIES, max_attempts=3)
    environment = bridge_environment(
        fuse.url,
        DISPATCH_QUEUE=DISPATCH,
        FUSE_QUEUE_RATE="2",
        DELIVERY_QUEUE=DELIVERIES,
        DELIVERY_PRIVATE_ADDRESSES="true",
    )
    dependencies = build_dependencies(load_settings(environment))
    stop_clock(dependencies, T0 + 0.5)
    set_dependencies(dependencies)
    yield dependencies
    set_dependencies(None)


def at(deps: Dependencies, second: float) -> None:
    assert isinstance(deps.clock, Clock)
    deps.clock.now = second


def dispatch_all() -> int:
    """The dispatcher over everything waiting, as its event source hands it over."""
    return consume(DISPATCH, "dispatch_calls", batch_size=100)


def bulk_rows(request: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(request.uploads["csv"])))


def post_bulk_result(client: Client, bulk_id: str, result: dict[str, Any]) -> Any:
    token = callback_token(bulk_token_subject(bulk_id), CALLBACK_SECRET)
    return client.http.post(
        f"/fuse/results/bulk/{bulk_id}?token={token}",
        headers={"Content-Type": "application/json"},
        body=json.dumps(result),
    )


# --- grouping, as a property ----------------------------------------------------------------

SETTINGS = st.fixed_dictionaries(
    {
        "campaign": st.sampled_from(["default", "reminders"]),
        "caller_id": st.sampled_from(["+16175550100", "+16175550199"]),
        "start_at": st.one_of(st.none(), st.just(T0 - 60), st.integers(T0 + 1, T0 + 7200)),
        "end_at": st.one_of(st.none(), st.integers(T0 + 7201, T0 + 9000)),
        "attempts": st.sampled_from([1, 3]),
        "retry_delay": st.sampled_from([None, 600]),
        "pci": st.sampled_from([None, True, False]),
        "dtmf": st.sampled_from([None, "1234#"]),
        "variables": st.dictionaries(
            st.sampled_from(["name", "slot", "vip"]),
            st.one_of(st.text(max_size=12), st.integers(), st.booleans(), st.none()),
            max_size=3,
        ),
    }
)


@settings(max_examples=150, deadline=None)
@given(
    calls=st.lists(
        st.tuples(st.integers(0, 6), SETTINGS, st.sampled_from(["default", "crm-a"])),
        max_size=60,
    ),
    max_size=st.integers(1, 8),
)
def test_every_call_goes_in_exactly_one_bulk_of_its_own_settings(
    calls: list[tuple[int, dict[str, Any], str]], max_size: int
) -> None:
    records = [
        CallRecord(
            id=f"c{n}",
            status=WAITING,
            request_hash="",
            created_at=T0,
            lock_until=0,
            request={"phone": phone(p), **fields},
            campaign=fields["campaign"],
            integration=integration,
        )
        for n, (p, fields, integration) in enumerate(calls)
    ]
    bulks = plan_bulks(records, max_size, T0)
    placed = [c.id for bulk in bulks for c in bulk]
    assert sorted(placed) == sorted(r.id for r in records)  # each exactly once
    url = "https://bridge.example.test/api/fuse/results/bulk/b"
    for bulk in bulks:
        assert 1 <= len(bulk) <= max_size
        phones = [c.request["phone"] for c in bulk]
        assert len(set(phones)) == len(phones)  # never one phone twice in a request
        # What the request applies to the whole list is each of its calls' own.
        shared = schedule_fields(shared_settings(bulk[0], T0), url)
        assert all(schedule_fields(shared_settings(c, T0), url) == shared for c in bulk)
        assert len({c.campaign for c in bulk}) == 1
        assert len({c.integration for c in bulk}) == 1  # one CRM's calls, never another's
        # Its window is within each call's own: never starting before, nor ending after.
        start, end = shared_settings(bulk[0], T0).start_at, shared_settings(bulk[0], T0).end_at
        for call in bulk:
            asked_start, asked_end = call.request["start_at"], call.request["end_at"]
            if asked_start is not None and asked_start > T0:
                assert start is not None
                assert asked_start <= start
            if asked_end is not None:
                assert end is not None
                assert end <= asked_end
                assert end > (start or T0)
        # And each row keeps its own caller id, DTMF and variables, through the CSV.
        rows = [
            (
                fuse_phone_number(c.request["phone"], c.request["caller_id"], c.request["dtmf"]),
                c.request["variables"],
            )
            for c in bulk
        ]
        read = list(csv.DictReader(io.StringIO(bulk_csv(rows).decode())))
        for row, call in zip(read, bulk, strict=True):
            assert row["destination"] == fuse_phone_number(
                call.request["phone"], call.request["caller_id"], call.request["dtmf"]
            )
            for name, value in call.request["variables"].items():
                expected = {None: "", True: "true", False: "false"}.get(value, str(value))
                if isinstance(value, bool) or value is None:
                    assert row[name] == expected
                else:
                    assert row[name] == str(value)
    # No more bulks than needed: a group needs as many as its size or its most repeated phone
    # make it, and first fit opens at most that many.
    groups = Counter(bulk_key(r, T0) for r in records)
    for group, size in groups.items():
        in_group = [b for b in bulks if bulk_key(b[0], T0) == group]
        repeats = Counter(c.request["phone"] for b in in_group for c in b).most_common(1)
        assert len(in_group) <= size // max_size + repeats[0][1]


# --- the budget, across containers ----------------------------------------------------------


@pytest.mark.usefixtures("atomic_dynamodb")
def test_the_budget_never_gives_more_than_the_rate_across_containers(aws: Aws) -> None:
    """Sixteen threads, each with its own client as a container has, ask for the budget at the
    same moments, every 100 ms for four seconds: each slot goes to exactly one of them, slots
    are 1/rate apart, and no second of the clock holds more than the rate."""
    rate, threads, steps = 3, 16, 40
    moments = [T0 + step / 10 for step in range(steps)]
    start = threading.Barrier(threads)
    granted: list[float] = []
    lock = threading.Lock()

    def container() -> None:
        client = boto3.client("dynamodb")
        budget = Budget(Table(TABLE, lambda: client))
        for moment in moments:
            start.wait()  # all at the same moment, as containers of a burst are
            if budget.take("fuse@example.com", moment, rate):
                with lock:
                    granted.append(moment)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda _: container(), range(threads)))
    expected, next_slot = [], 0.0
    for moment in moments:  # the rule, played alone: a slot is taken when it has come
        if moment >= next_slot - 1e-9:
            expected.append(moment)
            next_slot = moment + 1 / rate
    assert sorted(granted) == expected  # one container each, never two
    assert max(Counter(int(m) for m in granted).values()) <= rate


def test_a_shut_budget_gives_nothing_until_its_time(aws: Aws) -> None:
    budget = Budget(Table(TABLE, lambda: aws.dynamodb))
    assert budget.take("a", T0, 2)
    assert not budget.take("a", T0 + 0.4, 2)  # the next slot is half a second on
    assert budget.take("a", T0 + 0.5, 2)
    budget.shut("a", T0 + 30)
    budget.shut("a", T0 + 10)  # an earlier end never shortens the pause
    assert budget.shut_until("a") == T0 + 30
    assert not any(budget.take("a", T0 + s, 2) for s in (0, 1, 29))
    assert budget.take("b", T0 + 1, 2)  # another Fuse account has its own
    assert budget.take("a", T0 + 30, 2)  # then the probe goes, at the rate
    assert not budget.take("a", T0 + 30, 0)  # a rate of 0: never alone


# --- a burst, end to end --------------------------------------------------------------------


def test_a_burst_waits_and_goes_in_one_bulk_each_call_its_own(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    fuse.queue_rate_limit = 2
    answers = [post_call(client, {"phone": phone(n)}, key=f"burst-{n}") for n in range(30)]
    assert {a.status_code for a in answers} == {202}  # every caller accepted, first try
    bodies = [json.loads(a.body) for a in answers]
    statuses = Counter(b["status"] for b in bodies)
    assert statuses == {"queued": 1, "waiting": 29}  # one slot in the half second: the rest wait
    assert len(fuse.queue_requests()) == 1
    waiting = [(n, b) for n, b in enumerate(bodies) if b["status"] == "waiting"]
    n, first = waiting[0]
    assert answers[n].headers["Location"].endswith(f"/calls/{first['id']}")
    assert read_call(client, first["id"])["status"] == "waiting"
    again = post_call(client, {"phone": phone(n)}, key=f"burst-{n}")
    assert again.status_code == 202
    assert json.loads(again.body)["status"] == "waiting"
    assert again.headers["Idempotent-Replayed"] == "true"

    assert dispatch_all() == 29
    [bulk] = list_requests(fuse)
    rows = bulk_rows(bulk)
    assert len(rows) == 29
    assert "/fuse/results/bulk/" in bulk.form["result_url"]
    assert calls_by_phone(fuse) == Counter({fuse_phone(n): 1 for n in range(30)})
    assert fuse.stats()["single_queues_refused"] == 0
    seen = read_call(client, first["id"])
    assert seen["status"] == "queued"
    assert seen["fuse_call_id"]
    bulk_id = seen["bulk_id"]
    replay = json.loads(post_call(client, {"phone": phone(n)}, key=f"burst-{n}").body)
    assert (replay["status"], replay["bulk_id"]) == ("queued", bulk_id)
    assert dispatch_all() == 0  # nothing left, nothing sent twice
    assert len(list_requests(fuse)) == 1

    # Fuse reports each call of the bulk to the bulk's URL, naming its phone: each is its own.
    for m, body in waiting[:3]:
        result = {**FUSE_EXAMPLE, "phone_number": f"'{phone(m)[2:]}'", "duration": m}
        answer = post_bulk_result(client, bulk_id, result)
        assert json.loads(answer.body) == {"status": "stored", "id": body["id"]}
        assert read_call(client, body["id"])["result"]["duration"] == m
    assert read_call(client, waiting[3][1]["id"])["result"] is None


def fuse_has(fuse: FuseSimulator, calls: int, within: float = 10) -> None:
    """Waits (bounded) until the simulator holds `calls` calls: a hung answer queues late."""
    deadline = time.monotonic() + within
    while len(fuse.queued) < calls:
        assert time.monotonic() < deadline, f"{len(fuse.queued)} of {calls} calls at Fuse"
        time.sleep(0.05)


def fuse_phone(n: int) -> str:
    """The phone as Fuse has it in its form or its CSV row (tel:, before ;ani=)."""
    return f"tel:{phone(n)}"


def test_a_batch_of_queue_messages_goes_in_bulks_not_single_queues(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    messages = [(f"m-{n}", {"phone": phone(n), "campaign": "default"}) for n in range(12)]
    reminders = {"campaign": "reminders", "caller_id": "+16175550199"}
    messages += [(f"r-{n}", {"phone": phone(n), **reminders}) for n in range(3)]
    assert run_batch(client, messages) == []
    assert fuse.queue_requests() == []
    assert dispatch_all() == 15
    sizes = sorted(len(bulk_rows(r)) for r in list_requests(fuse))
    assert sizes == [3, 12]  # one bulk per campaign
    assert sum(calls_by_phone(fuse).values()) == 15
    # A batch of one is a call alone, within the budget, as POST /calls is.
    assert run_batch(client, [("m-alone", {"phone": phone(99)})]) == []
    assert len(fuse.queue_requests()) == 1


def test_the_same_phone_twice_goes_in_two_bulks(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    messages = [(f"m-{n}", {"phone": phone(7), "reference": f"r{n}"}) for n in range(3)]
    messages.append(("m-other", {"phone": phone(8)}))
    assert run_batch(client, messages) == []
    dispatch_all()
    bulks = list_requests(fuse)
    assert len(bulks) == 3
    for request in bulks:
        phones = [r["destination"] for r in bulk_rows(request)]
        assert len(set(phones)) == len(phones)
    assert calls_by_phone(fuse)[fuse_phone(7)] == 3


# --- backpressure ---------------------------------------------------------------------------


def test_fuse_failing_opens_the_breaker_and_callers_still_get_202(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    fuse.mode = "error500"
    first = post_call(client, {"phone": phone(1)}, key="b-1")
    assert first.status_code == 202  # not 503: the call can wait
    assert json.loads(first.body)["status"] == "waiting"
    fuse.mode = "normal"
    at(deps, T0 + 5)  # a later second, budget to spare, but the breaker is open
    second = post_call(client, {"phone": phone(2)}, key="b-2")
    assert json.loads(second.body)["status"] == "waiting"
    assert len(fuse.queue_requests()) == 1  # only the request that failed
    waiting = [
        Waiting(f"m{n}", "r", json.loads(a.body)["id"], 1) for n, a in enumerate((first, second))
    ]
    retry = dispatch(waiting, deps, time_left=lambda: 30.0)
    assert set(retry) == {w.call_id for w in waiting}
    assert min(retry.values()) >= 25  # they wait out the breaker (30 s from T0)
    assert list_requests(fuse) == []
    at(deps, T0 + 31)  # closed again: the probe is the bulk, and it goes
    assert dispatch(waiting, deps, time_left=lambda: 30.0) == {}
    assert len(list_requests(fuse)) == 1
    assert {read_call(client, w.call_id)["status"] for w in waiting} == {"queued"}


def test_fuse_failing_mid_burst_loses_none_and_sends_none_twice(
    client: Client, deps: Dependencies, fuse: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three groups' bulks (pci unset, on, off): the first goes, Fuse fails the second (500),
    and the third is not even tried while the breaker is open; after it, the two left go. Each
    call reaches Fuse once."""
    pci = [None, True, False]
    ids = [
        json.loads(post_call(client, {"phone": phone(n), "pci": pci[n % 3]}).body)["id"]
        for n in range(20)
    ]
    waiting = [Waiting(f"m{n}", "r", call_id, 1) for n, call_id in enumerate(ids[1:])]
    answers = iter(["normal", "error500"])
    real = deps.fuse.bulk_queue

    def failing_second(*args: Any, **kwargs: Any) -> Any:
        fuse.mode = next(answers, "normal")
        return real(*args, **kwargs)

    monkeypatch.setattr(deps.fuse, "bulk_queue", failing_second)
    retry = dispatch(waiting, deps, time_left=lambda: 30.0)
    assert len(list_requests(fuse)) == 2
    statuses = Counter(read_call(client, i)["status"] for i in ids[1:])
    assert statuses == {"queued": 7, "waiting": 12}
    assert set(retry) == {i for i in ids[1:] if read_call(client, i)["status"] == "waiting"}
    at(deps, T0 + 60)
    assert dispatch(waiting, deps, time_left=lambda: 30.0) == {}
    assert calls_by_phone(fuse) == Counter({fuse_phone(n): 1 for n in range(20)})
    assert {read_call(client, i)["status"] for i in ids} == {"queued"}


def test_a_bulk_whose_answer_is_lost_is_never_sent_again(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    ids = [json.loads(post_call(client, {"phone": phone(n)}).body)["id"] for n in range(6)]
    fuse.mode = "hang"  # Fuse queues the bulk and answers after the bridge gave up
    waiting = [Waiting(f"m{n}", "r", call_id, 1) for n, call_id in enumerate(ids[1:])]
    assert dispatch(waiting, deps, time_left=lambda: 30.0) == {}
    fuse.mode = "normal"
    statuses = {read_call(client, i)["status"] for i in ids[1:]}
    assert statuses == {"unknown"}
    fuse_has(fuse, 6)  # it answers late, but it has them
    bulk_id = read_call(client, ids[1])["bulk_id"]
    at(deps, T0 + 3600)
    assert dispatch(waiting, deps, time_left=lambda: 30.0) == {}  # redelivered: nothing sent
    assert len(list_requests(fuse)) == 1
    assert calls_by_phone(fuse) == Counter({fuse_phone(n): 1 for n in range(6)})
    # Its results still find each call, by phone, within the bulk.
    result = {**FUSE_EXAMPLE, "phone_number": f"'{phone(3)[2:]}'"}
    assert json.loads(post_bulk_result(client, bulk_id, result).body)["id"] == ids[3]
    assert read_call(client, ids[3])["status"] == "completed"


def test_a_dispatcher_dying_after_fuse_took_the_bulk_sends_nothing_again(
    client: Client, deps: Dependencies, fuse: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [json.loads(post_call(client, {"phone": phone(n)}).body)["id"] for n in range(5)]
    waiting = [Waiting(f"m{n}", "r", call_id, 1) for n, call_id in enumerate(ids[1:])]

    def store_down(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailable("the bridge cannot reach its call store; retry later")

    monkeypatch.setattr(deps.store.dispatch, "settle", store_down)
    with pytest.raises(StoreUnavailable):
        dispatch(waiting, deps, time_left=lambda: 30.0)
    monkeypatch.undo()
    assert len(list_requests(fuse)) == 1
    assert dispatch(waiting, deps, time_left=lambda: 30.0)  # its claim still holds: later
    at(deps, T0 + 3600)  # the claim lapsed: its bulk says it went, so the calls did
    assert dispatch(waiting, deps, time_left=lambda: 30.0) == {}
    assert len(list_requests(fuse)) == 1
    assert {read_call(client, i)["status"] for i in ids[1:]} == {"queued"}
    # With the Fuse ids its bulk's answer gave, so the reconciler can still poll them.
    assert all(read_call(client, i)["fuse_call_id"] for i in ids[1:])


# --- expiry ---------------------------------------------------------------------------------


def test_a_call_that_cannot_ring_before_its_end_expires_and_is_delivered(
    client: Client, deps: Dependencies, fuse: FuseSimulator, receiver: DemoReceiver
) -> None:
    post_call(client, {"phone": phone(0)})  # the moment's slot, taken
    end = T0 + 600
    answer = json.loads(post_call(client, {"phone": phone(5), "end_at": end}).body)
    assert answer["status"] == "waiting"
    at(deps, end - 30)  # too close to its end to ring
    assert dispatch_all() == 1
    seen = read_call(client, answer["id"])
    assert seen["status"] == "expired"
    assert seen["error"]["code"] == "call_expired"
    assert "end_at" in seen["error"]["message"]
    consume(DELIVERIES, "deliver_results")
    expired = [r.json for r in receiver.received if r.json["type"] == "call.expired"]
    assert [e["data"]["id"] for e in expired] == [answer["id"]]
    assert calls_by_phone(fuse)[fuse_phone(5)] == 0


def test_a_number_suppressed_while_its_call_waits_is_not_called(
    client: Client, deps: Dependencies, fuse: FuseSimulator, receiver: DemoReceiver
) -> None:
    """The do-not-call list is checked again as a waiting call goes: its number suppressed
    meanwhile, it is rejected, its count given back, and delivered; the others go."""
    post_call(client, {"phone": phone(0)})  # the moment's slot, taken
    waiting = [json.loads(post_call(client, {"phone": phone(n)}).body) for n in (1, 2)]
    assert [w["status"] for w in waiting] == ["waiting", "waiting"]
    put = client.http.put(
        f"/suppressions/{phone(1)}", headers=AUTH, body=json.dumps({"reason": "said stop"})
    )
    assert put.status_code == 200, put.body
    at(deps, T0 + 10)
    assert dispatch_all() == 2
    seen = read_call(client, waiting[0]["id"])
    assert (seen["status"], seen["error"]["code"]) == ("rejected", "phone_suppressed")
    assert read_call(client, waiting[1]["id"])["status"] == "queued"
    assert calls_by_phone(fuse)[fuse_phone(1)] == 0
    assert calls_by_phone(fuse)[fuse_phone(2)] == 1
    consume(DELIVERIES, "deliver_results")
    rejected = [r.json for r in receiver.received if r.json["type"] == "call.rejected"]
    assert [r["data"]["id"] for r in rejected] == [waiting[0]["id"]]


def test_a_wait_sqs_did_not_take_is_handed_over_by_the_reconciler(
    client: Client, deps: Dependencies, fuse: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    post_call(client, {"phone": phone(0)})  # the moment's slot, taken

    def refused(*args: Any, **kwargs: Any) -> None:
        raise NotQueued

    monkeypatch.setattr(deps.dispatch, "send", refused)
    answer = post_call(client, {"phone": phone(4)})
    assert (answer.status_code, json.loads(answer.body)["status"]) == (202, "waiting")
    call_id = json.loads(answer.body)["id"]
    monkeypatch.undo()
    assert dispatch_all() == 0  # no message: only the reconciler knows
    at(deps, T0 + 90)
    assert run_reconciler(client)["requeued"] == 1
    assert dispatch_all() == 1
    assert read_call(client, call_id)["status"] == "queued"
    assert calls_by_phone(fuse)[fuse_phone(4)] == 1


def test_a_waiting_call_whose_message_is_lost_expires_when_it_can_no_longer_go(
    client: Client, deps: Dependencies, fuse: FuseSimulator, receiver: DemoReceiver
) -> None:
    """Its message (taken by SQS, then lost, or dead-lettered after a hundred receipts) is the
    only way it goes; the reconciler's index holds it from when it can no longer go: it is
    expired then, and its integration told, never left waiting."""
    post_call(client, {"phone": phone(0)})
    call_id = json.loads(post_call(client, {"phone": phone(4), "end_at": T0 + 3600}).body)["id"]
    sqs = boto3.client("sqs")
    sqs.purge_queue(QueueUrl=sqs.get_queue_url(QueueName=DISPATCH)["QueueUrl"])  # lost
    at(deps, T0 + 1800)
    run_reconciler(client)
    assert read_call(client, call_id)["status"] == "waiting"  # not the reconciler's yet
    at(deps, T0 + 3600)
    run_reconciler(client)
    assert read_call(client, call_id)["status"] == "expired"
    consume(DELIVERIES, "deliver_results")
    assert [r.json["type"] for r in receiver.received].count("call.expired") == 1
    assert calls_by_phone(fuse)[fuse_phone(4)] == 0


def test_a_call_waiting_longer_than_the_most_expires(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    post_call(client, {"phone": phone(0)})  # the moment's slot, taken
    call_id = json.loads(post_call(client, {"phone": phone(4)}).body)["id"]
    at(deps, T0 + deps.settings.dispatch_max_wait_seconds + 60)
    run_reconciler(client)
    seen = read_call(client, call_id)
    assert seen["status"] == "expired"
    assert "DISPATCH_MAX_WAIT_SECONDS" in seen["error"]["message"]
    assert dispatch_all() == 1  # its message, still queued, finds it settled: nothing sent
    assert calls_by_phone(fuse)[fuse_phone(4)] == 0


# --- the simulator's rate limit, and the bridge under it -----------------------------------


def test_the_simulator_refuses_single_queues_past_its_rate(
    client: Client, fuse: FuseSimulator, aws: Aws
) -> None:
    """Without pacing (no dispatch queue) a loop of single queues trips it, as Plum warns."""
    environment = bridge_environment(fuse.url)
    set_dependencies(build_dependencies(load_settings(environment)))
    fuse.queue_rate_limit = 2
    time.sleep(1 - time.time() % 1)  # the start of a second: the loop fits in it
    codes = [post_call(client, {"phone": phone(n)}).status_code for n in range(5)]
    assert codes.count(503) == 3
    assert fuse.stats()["single_queues_refused"] == 3


def test_a_paced_bridge_never_trips_the_rate(
    deps: Dependencies, fuse: FuseSimulator, atomic_dynamodb: None
) -> None:
    """Real time: forty callers from eight threads at once (as eight containers: placing
    itself, since one Chalice app serves one request at a time), against a Fuse that fails
    single queues past three a second. None is refused, every caller gets 202, each call
    reaches Fuse once."""
    deps.clock, deps.sleep = time.time, time.sleep
    fuse.queue_rate_limit = 3  # Fuse's limit, above FUSE_QUEUE_RATE (2), as configured
    parameters = deps.parameters.get()

    def caller(n: int) -> int:
        raw = json.dumps({"phone": phone(n)}).encode()
        return place_call(raw, f"k-{n}", PUBLIC_BASE_URL, parameters, deps).reply.status

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(caller, range(40)))
    assert set(codes) == {202}
    while dispatch_all():
        pass
    stats = fuse.stats()
    assert stats["single_queues_refused"] == 0
    assert 1 <= stats["most_single_queues_in_a_second"] <= 2
    assert calls_by_phone(fuse) == Counter({fuse_phone(n): 1 for n in range(40)})


# --- what review found (issue 20's adversarial pass) ----------------------------------------


def test_a_store_failure_among_the_claims_frees_them_and_they_go_later(
    client: Client, deps: Dependencies, fuse: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB throttles the third claim: nothing went to Fuse, so the two claimed are freed
    (not left to turn `unknown` when their claim lapses), and all go with the next try."""
    post_call(client, {"phone": phone(900)})
    ids = [json.loads(post_call(client, {"phone": phone(n)}).body)["id"] for n in range(5)]
    waiting = [Waiting(f"m{n}", "r", c, 1) for n, c in enumerate(ids)]
    real, claims = deps.store.dispatch.claim, []

    def throttled_third(*args: Any, **kwargs: Any) -> bool:
        claims.append(1)
        if len(claims) == 3:
            raise StoreUnavailable("the bridge cannot reach its call store; retry later")
        return real(*args, **kwargs)

    monkeypatch.setattr(deps.store.dispatch, "claim", throttled_third)
    with pytest.raises(StoreUnavailable):
        dispatch(waiting, deps, time_left=lambda: 30.0)
    monkeypatch.undo()
    assert list_requests(fuse) == []
    assert {read_call(client, i)["status"] for i in ids} == {"waiting"}
    assert dispatch(waiting, deps, time_left=lambda: 30.0) == {}
    assert {read_call(client, i)["status"] for i in ids} == {"queued"}
    assert calls_by_phone(fuse) == Counter({fuse_phone(n): 1 for n in [*range(5), 900]})


def test_a_claim_left_by_a_crash_before_the_request_is_freed_not_unknown(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    post_call(client, {"phone": phone(900)})
    call_id = json.loads(post_call(client, {"phone": phone(1)}).body)["id"]
    assert deps.store.dispatch.claim(call_id, "bulk-of-a-dead-dispatcher", T0 + 30)  # then died
    waiting = [Waiting("m", "r", call_id, 1)]
    assert dispatch(waiting, deps, time_left=lambda: 30.0) == {call_id: 30}  # its claim holds
    at(deps, T0 + 60)
    assert dispatch(waiting, deps, time_left=lambda: 30.0) == {call_id: 0}  # freed: no bulk
    assert dispatch(waiting, deps, time_left=lambda: 30.0) == {}
    assert read_call(client, call_id)["status"] == "queued"
    assert calls_by_phone(fuse)[fuse_phone(1)] == 1


def test_a_budget_the_store_cannot_give_makes_the_call_wait_not_fail(
    client: Client, deps: Dependencies, fuse: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def throttled(*args: Any, **kwargs: Any) -> bool:
        raise StoreUnavailable("the bridge cannot reach its call store; retry later")

    monkeypatch.setattr(deps.store.budget, "take", throttled)
    answer = post_call(client, {"phone": phone(1)}, key="k-1")
    assert (answer.status_code, json.loads(answer.body)["status"]) == (202, "waiting")
    monkeypatch.undo()
    # And a wait that cannot be recorded frees the key: the caller's retry places the call.
    monkeypatch.setattr(deps.store.budget, "take", lambda *args, **kwargs: False)
    monkeypatch.setattr(deps.store, "settle", throttled)
    failed = post_call(client, {"phone": phone(2)}, key="k-2")
    assert (failed.status_code, error_of(failed)["code"]) == (503, "store_unavailable")
    monkeypatch.undo()
    at(deps, T0 + 5)
    again = post_call(client, {"phone": phone(2)}, key="k-2")
    assert (again.status_code, json.loads(again.body)["status"]) == (202, "queued")
    assert fuse.queue_requests()[-1].form["phone_number"].startswith(fuse_phone(2))


def test_no_call_variable_may_take_the_csvs_phone_column(
    client: Client, deps: Dependencies
) -> None:
    """A call that waits goes in a bulk's CSV, whose `destination` column is the phone: a
    variable of that name would be dialled (or refused) instead."""
    for name in ("destination", "Destination", "DESTINATION"):
        answer = post_call(client, {"phone": phone(1), "variables": {name: "+16175559999"}})
        assert answer.status_code == 422
        [detail] = error_of(answer)["details"]
        assert detail["field"] == f"variables.{name}"


def test_calls_asked_seconds_apart_share_a_bulk_and_bulks_are_paced(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    """ "Two hours from enrolment", enrolled over a burst: the same minute is one bulk; five
    minutes are five bulks, one a second (FUSE_BULK_RATE), however fast Fuse answers."""
    post_call(client, {"phone": phone(900)})
    end = (T0 // 60 + 120) * 60  # the start of a minute, two hours on
    for n in range(20):
        post_call(client, {"phone": phone(n), "end_at": end + n})  # one minute
    for n in range(20, 25):
        post_call(client, {"phone": phone(n), "end_at": end + 60 * (n - 19)})  # five more
    started = deps.clock()
    assert dispatch_all() == 25
    bulks = list_requests(fuse)
    assert sorted(len(bulk_rows(b)) for b in bulks) == [1, 1, 1, 1, 1, 20]
    assert {b.form["end_timestamp"] for b in bulks} == {str(end + 60 * k) for k in range(6)}
    assert deps.clock() - started >= 5  # six bulks, a slot a second: five pauses
    answers = sorted(at for path, at, _ in fuse.answers if path.endswith("/bulk_queue"))
    assert len(answers) == 6


@pytest.mark.parametrize(
    "case",
    [
        ({6}, 10),  # one bad row: found alone, the rest go
        ({0, 5}, 8),  # one in each half: neither half taken for the request's fault
        ({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, 16),  # the request itself
    ],
)
def test_a_bulk_fuse_refuses_is_split_until_each_bad_call_stands_alone(
    client: Client,
    deps: Dependencies,
    fuse: FuseSimulator,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[set[int], int],
) -> None:
    """Only the calls Fuse refuses alone are rejected, never a good one for sharing a half
    with a bad one; an invocation sends a bounded number of halves, the rest come back."""
    bad, calls = case
    post_call(client, {"phone": phone(900)})
    ids = [json.loads(post_call(client, {"phone": phone(n)}).body)["id"] for n in range(calls)]
    waiting = [Waiting(f"m{n}", "r", c, 1) for n, c in enumerate(ids)]
    real, sent = deps.fuse.bulk_queue, []

    def refuses_bad_rows(*args: Any, csv_file: bytes, **kwargs: Any) -> Any:
        sent.append(1)
        if any(phone(n).encode() in csv_file for n in bad):
            raise FuseRejectedRequest("Fuse refused the request: an invalid number")
        return real(*args, csv_file=csv_file, **kwargs)

    monkeypatch.setattr(deps.fuse, "bulk_queue", refuses_bad_rows)
    for _ in range(10):  # invocations of the dispatcher, at most
        before = len(sent)
        retry = dispatch(waiting, deps, time_left=lambda: 30.0)
        assert len(sent) - before <= 1 + MAX_SPLIT_REQUESTS
        if not retry:
            break
        at(deps, deps.clock() + max(retry.values()))
    else:
        pytest.fail("the refused bulk was never settled")
    statuses = {n: read_call(client, ids[n])["status"] for n in range(calls)}
    assert statuses == {n: "rejected" if n in bad else "queued" for n in range(calls)}
    assert calls_by_phone(fuse) == Counter(
        {fuse_phone(n): 1 for n in [*range(calls), 900] if n not in bad}
    )
    for n in range(calls):  # a rejected call's count is given back; a queued one's is kept
        key = {"pk": {"S": f"number#{number_key(ID_SECRET, phone(n))}"}, "sk": {"S": "calls"}}
        counted = deps.store.client.get_item(TableName=TABLE, Key=key).get("Item", {})
        assert (ids[n] in json.dumps(counted)) == (n not in bad)


def test_keys_dynamodb_leaves_unprocessed_bring_the_batch_back(
    client: Client, deps: Dependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    post_call(client, {"phone": phone(900)})
    ids = [json.loads(post_call(client, {"phone": phone(n)}).body)["id"] for n in range(3)]
    table = deps.store.dispatch._table
    real = table.request

    def throttled(operation: str, **kwargs: Any) -> Any:
        if operation == "batch_get_item":
            return {"Responses": {table.name: []}, "UnprocessedKeys": kwargs["RequestItems"]}
        return real(operation, **kwargs)

    monkeypatch.setattr(table, "request", throttled)
    records = [
        {"messageId": f"m{n}", "receiptHandle": "r", "body": json.dumps({"call_id": c})}
        for n, c in enumerate(ids)
    ]
    outcomes = dispatch_batch(records, deps, time_left=lambda: 30.0)
    assert {o.decision for o in outcomes} == {"retry"}  # none taken for gone


# --- what the second review found ----------------------------------------------------------


def test_missing_fuse_credentials_leave_the_calls_waiting_not_unknown(
    aws: Aws, client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    """Everything a bulk's request needs is made before a call is claimed: credentials gone
    from SSM (a rotation half done) fail the batch, and its calls still wait, unclaimed."""
    post_call(client, {"phone": phone(900)})
    ids = [json.loads(post_call(client, {"phone": phone(n)}).body)["id"] for n in range(3)]
    aws.ssm.delete_parameter(Name=f"{PREFIX}/fuse/developer_key")
    deps.parameters._fetched_at = -3600.0  # the cache's time is up: it reads SSM again
    records = [
        {"messageId": f"m{n}", "receiptHandle": "r", "body": json.dumps({"call_id": c})}
        for n, c in enumerate(ids)
    ]
    assert {o.decision for o in dispatch_batch(records, deps, time_left=lambda: 30.0)} == {"retry"}
    assert list_requests(fuse) == []
    at(deps, T0 + 3600)  # long past any claim's time
    assert {read_call(client, i)["status"] for i in ids} == {"waiting"}
    assert all(read_call(client, i).get("bulk_id") is None for i in ids)


def test_a_bulk_holds_only_what_fits_in_the_time_left(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    post_call(client, {"phone": phone(900)})
    ids = [json.loads(post_call(client, {"phone": phone(n)}).body)["id"] for n in range(50)]
    waiting = [Waiting(f"m{n}", "r", c, 1) for n, c in enumerate(ids)]
    room = seconds_for_a_bulk(20, deps)  # a bulk of twenty, no more, and no time for another
    retry = dispatch(waiting, deps, time_left=lambda: room)
    assert [len(bulk_rows(b)) for b in list_requests(fuse)] == [20]
    assert len(retry) == 30  # untouched: the next invocations send them


def test_claims_too_slow_to_outlast_fuses_answer_send_nothing(
    client: Client, deps: Dependencies, fuse: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim must hold until Fuse has answered, or another dispatcher could take the call
    and send it again: claims that took that long (DynamoDB throttling) are undone, unsent."""
    post_call(client, {"phone": phone(900)})
    ids = [json.loads(post_call(client, {"phone": phone(n)}).body)["id"] for n in range(3)]
    waiting = [Waiting(f"m{n}", "r", c, 1) for n, c in enumerate(ids)]
    real = deps.store.dispatch.claim

    def slow(*args: Any, **kwargs: Any) -> bool:
        deps.sleep(10)  # each claim, ten seconds
        return real(*args, **kwargs)

    monkeypatch.setattr(deps.store.dispatch, "claim", slow)
    assert set(dispatch(waiting, deps, time_left=lambda: 60.0)) == set(ids)
    monkeypatch.undo()
    assert list_requests(fuse) == []
    assert dispatch(waiting, deps, time_left=lambda: 30.0) == {}
    assert calls_by_phone(fuse) == Counter({fuse_phone(n): 1 for n in [0, 1, 2, 900]})


def test_a_bulk_starts_when_its_plan_said_however_long_it_waited_for_its_slot(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    """Two calls starting 2 and 19 s on share the minute's bulk (20 s on): waiting for the
    bulk's slot past the first one's start must not send the bulk "now", early for the other."""
    minute = -(-T0 // 60) * 60  # the next minute's start
    post_call(client, {"phone": phone(900)})
    for n, offset in enumerate((2, 19)):
        post_call(client, {"phone": phone(n), "start_at": minute - 20 + offset})
    at(deps, minute - 19)
    parameters = deps.parameters.get()
    assert deps.store.budget.take(parameters.fuse_email, deps.clock(), 1, bulk=True)
    at(deps, minute - 18.5)  # the next bulk slot is half a second away, then the first start
    deps.store.budget.take(parameters.fuse_email, minute - 18.0, 0.4, bulk=True)  # 2.5 s on
    dispatch_all()
    [bulk] = list_requests(fuse)
    assert bulk.form["start_timestamp"] == str(minute)
