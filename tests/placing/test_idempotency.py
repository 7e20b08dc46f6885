"""One idempotency key, one phone call: replays, reuse, in-flight duplicates and concurrency."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from chalice.test import Client

from chalicelib.config.dependencies import Dependencies
from chalicelib.errors import BridgeError, ConfigurationIncomplete
from chalicelib.fuse.callback_urls import callback_token, list_token_subject
from chalicelib.placing.calls import place_call
from chalicelib.placing.idempotency import fingerprint
from chalicelib.placing.ids import contact_call_id, id_for_key
from chalicelib.records import PENDING, CallRecord, Kind
from chalicelib.store import lists as store_lists
from local.fuse_sim import FuseSimulator
from tests.helpers import (
    AUTH,
    CALLBACK_SECRET,
    CONTACTS,
    FUSE_EXAMPLE,
    ID_SECRET,
    PHONE,
    PUBLIC_BASE_URL,
    Aws,
    error_of,
    later,
    post_call,
    post_callback,
    post_list,
    read_call,
)

BODY = {"phone": PHONE, "reference": "lead-1", "variables": {"name": "Ada"}}


def test_same_key_same_body_replays_the_first_answer_without_calling_fuse(
    client: Client, fuse: FuseSimulator
) -> None:
    first = post_call(client, BODY, key="order-1")
    again = post_call(client, dict(reversed(BODY.items())), key="order-1")  # key order is no change
    assert first.status_code == again.status_code == 202
    assert json.loads(again.body) == json.loads(first.body)
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(fuse.queue_requests()) == 1


def test_the_key_may_come_in_the_body_and_the_header_wins(
    client: Client, fuse: FuseSimulator
) -> None:
    in_body = post_call(client, {**BODY, "idempotency_key": "body-key"})
    replay = post_call(client, {**BODY, "idempotency_key": "body-key"})
    assert json.loads(replay.body)["id"] == json.loads(in_body.body)["id"]
    header_wins = post_call(client, {**BODY, "idempotency_key": "body-key"}, key="header-key")
    assert json.loads(header_wins.body)["id"] != json.loads(in_body.body)["id"]
    assert len(fuse.queue_requests()) == 2


def test_same_key_different_body_is_422_reused(client: Client, fuse: FuseSimulator) -> None:
    assert post_call(client, BODY, key="order-2").status_code == 202
    response = post_call(client, {**BODY, "reference": "lead-2"}, key="order-2")
    assert response.status_code == 422
    assert error_of(response)["code"] == "idempotency_key_reused"
    assert len(fuse.queue_requests()) == 1


def test_without_a_key_each_request_is_a_new_call(client: Client, fuse: FuseSimulator) -> None:
    ids = {json.loads(post_call(client, BODY).body)["id"] for _ in range(2)}
    assert len(ids) == 2
    assert len(fuse.queue_requests()) == 2


def test_a_rejected_body_does_not_use_up_its_key(client: Client, fuse: FuseSimulator) -> None:
    assert post_call(client, {"phone": "12"}, key="fix-me").status_code == 422
    assert post_call(client, BODY, key="fix-me").status_code == 202


def test_an_invalid_key_header_names_the_header(client: Client) -> None:
    response = post_call(client, BODY, key="has space")
    assert response.status_code == 422
    assert error_of(response)["details"][0]["field"] == "Idempotency-Key"


def test_a_replay_after_start_at_has_passed_still_gets_the_first_answer(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    now = time.time()
    body = {**BODY, "start_at": int(now) + 60}
    first = post_call(client, body, key="scheduled")
    deps.clock = lambda: now + 23 * 3600  # a day later the start is long past, the key still held
    replay = post_call(client, body, key="scheduled")
    assert replay.status_code == 202
    assert json.loads(replay.body) == json.loads(first.body)
    assert len(fuse.queue_requests()) == 1


def test_keys_live_at_least_24_hours(client: Client, aws: Aws) -> None:
    before = time.time()
    post_call(client, BODY, key="lifetime")
    item = aws.dynamodb.get_item(
        TableName="fuse-bridge-test-calls",
        Key={"pk": {"S": id_for_key(ID_SECRET, "lifetime")}, "sk": {"S": "call"}},
    )["Item"]
    assert int(item["expires_at"]["N"]) >= before + 24 * 3600


def pending_record(deps: Dependencies, key: str, lock_until: float) -> None:
    deps.store.create(
        CallRecord(
            id=id_for_key(ID_SECRET, key),
            status=PENDING,
            request_hash=fingerprint(BODY),
            created_at=int(time.time()),
            lock_until=int(lock_until),
        ),
        expires_at=int(time.time()) + 86400,
        now=int(time.time()),
    )


def test_a_duplicate_while_the_first_is_in_flight_is_409(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    pending_record(deps, "busy", time.time() + 25)
    response = post_call(client, BODY, key="busy")
    assert response.status_code == 409
    assert error_of(response)["code"] == "idempotency_in_progress"
    assert 1 <= int(response.headers["Retry-After"]) <= 26
    assert fuse.queue_requests() == []


def test_a_call_whose_placing_died_is_unknown_and_never_redialled(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    pending_record(deps, "crashed", time.time() - 1)  # its invocation stopped before recording
    first = post_call(client, BODY, key="crashed")
    assert first.status_code == 504
    assert error_of(first)["code"] == "fuse_outcome_unknown"
    assert deps.store.get(id_for_key(ID_SECRET, "crashed")).status == "unknown"
    again = post_call(client, BODY, key="crashed")
    assert again.status_code == 504
    assert json.loads(again.body) == json.loads(first.body)
    assert fuse.queue_requests() == []


@pytest.mark.usefixtures("atomic_dynamodb")
def test_twenty_concurrent_requests_with_one_key_make_one_fuse_call(
    deps: Dependencies, fuse: FuseSimulator
) -> None:
    parameters = deps.parameters.get()  # warm, as a container would be: clients made once
    deps.store.get("warm-up")
    raw = json.dumps(BODY).encode()
    start = threading.Barrier(20)

    def attempt() -> tuple[int, str]:
        start.wait()
        try:
            placed = place_call(raw, "same-key", PUBLIC_BASE_URL, parameters, deps)
        except BridgeError as err:
            return err.status, err.code
        return placed.reply.status, placed.id

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(lambda _: attempt(), range(20)))
    assert len(fuse.queue_requests()) == 1
    statuses = {status for status, _ in outcomes}
    assert statuses <= {202, 409}
    assert 202 in statuses
    assert {detail for status, detail in outcomes if status == 202} == {
        id_for_key(ID_SECRET, "same-key")
    }
    assert {detail for status, detail in outcomes if status == 409} <= {"idempotency_in_progress"}


def test_ids_are_keyed_and_namespaced() -> None:
    """An id cannot be guessed from a guessable key without the id secret, and no key of one
    kind names a record of another: a single call's key shaped like a list contact's
    (`batch:{list}:{phone}`, the old derivation) names nothing of the list's."""
    assert id_for_key(ID_SECRET, "order-1") != id_for_key("another-secret", "order-1")
    assert id_for_key(ID_SECRET, "order-1") != id_for_key(ID_SECRET, "order-1", Kind.LIST)
    list_id = id_for_key(ID_SECRET, "list-1", Kind.LIST)
    contact = contact_call_id(ID_SECRET, list_id, PHONE)
    for shaped in (f"batch:{list_id}:{PHONE}", f"{list_id}:{PHONE}", f"{list_id}\x1f{PHONE}"):
        assert contact not in {id_for_key(ID_SECRET, shaped, kind) for kind in Kind}
    with pytest.raises(ConfigurationIncomplete, match="id_secret"):
        id_for_key("", "order-1")


def test_a_call_key_reused_after_retention_starts_clean(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    """TTL deletes days late: the old result must neither show on the new call nor make the
    same body, delivered again for the new call, count as a duplicate."""
    first = json.loads(post_call(client, BODY, key="yearly").body)
    assert post_callback(client, first["id"], FUSE_EXAMPLE).status_code == 200
    later(deps, deps.settings.retention_days * 86400 + 60)
    new_body = {**BODY, "reference": "lead-2"}  # a different body: no 422, the key is free
    again = post_call(client, new_body, key="yearly")
    assert again.status_code == 202, again.body
    assert json.loads(again.body)["id"] == first["id"]  # the same derived id, a new life
    fresh = read_call(client, first["id"])
    assert (fresh["status"], fresh["result"], fresh["reference"]) == ("queued", None, "lead-2")
    assert json.loads(post_callback(client, first["id"], FUSE_EXAMPLE).body)["status"] == "stored"
    assert read_call(client, first["id"])["status"] == "completed"
    assert len(fuse.queue_requests()) == 2


def test_a_list_key_reused_after_retention_starts_clean(
    client: Client, deps: Dependencies, fuse: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old list's answer parts, its kept results and its contacts must not reach the new
    list: its replay gives its own answer, a kept result is not matched to a new contact."""
    monkeypatch.setattr(store_lists, "REPLY_PART_BYTES", 200)  # answers in many parts
    old = json.loads(post_list(client, {"contacts": CONTACTS}, key="list-key").body)
    token = callback_token(list_token_subject(old["batch_id"]), CALLBACK_SECRET)
    stranger = {**FUSE_EXAMPLE, "phone_number": "'16175550199'"}  # in no contact: kept
    kept = client.http.post(
        f"/fuse/results/batch/{old['batch_id']}?token={token}",
        headers={"Content-Type": "application/json"},
        body=json.dumps(stranger),
    )
    assert json.loads(kept.body)["status"] == "unmatched"
    later(deps, deps.settings.retention_days * 86400 + 60)
    new_list = {"contacts": [{"phone": "+16175550199"}]}  # the phone the kept result names
    first = post_list(client, new_list, key="list-key")
    assert first.status_code == 202, first.body
    replay = post_list(client, new_list, key="list-key")
    assert (replay.status_code, json.loads(replay.body)) == (202, json.loads(first.body))
    batch = json.loads(client.http.get(f"/batches/{old['batch_id']}", headers=AUTH).body)
    assert [c["phone"] for c in batch["contacts"]] == ["+16175550199"]
    assert batch["counts"] == {"queued": 1}  # not `completed` by the old list's result
