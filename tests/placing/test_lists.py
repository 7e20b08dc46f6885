"""Whole lists: one Fuse bulk_queue request, contacts checked by index, results matched by phone."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.admission.calls import number_key
from chalicelib.config.dependencies import Dependencies
from chalicelib.fuse.callback_urls import callback_token, list_token_subject
from chalicelib.fuse.client import FuseClient
from chalicelib.placing.ids import contact_call_id
from chalicelib.store.callbacks import StoreOutcome
from local.fuse_sim import FuseSimulator
from tests.helpers import (
    AUTH,
    CALLBACK_SECRET,
    CONTACTS,
    FUSE_EXAMPLE,
    ID_SECRET,
    PHONE,
    PUBLIC_BASE_URL,
    emitted,
    error_of,
    later,
    list_requests,
    post_list,
    read_call,
    run_reconciler,
)


def test_a_list_is_one_bulk_queue_request_with_a_safe_csv(
    client: Client, fuse: FuseSimulator
) -> None:
    answer = post_list(
        client, {"contacts": CONTACTS, "attempts": 2, "retry_delay": 300, "dtmf": "9"}
    )
    assert answer.status_code == 202, answer.body
    body = json.loads(answer.body)
    batch_id = body["batch_id"]
    assert body["status"] == "queued"
    assert body["skipped"] == []
    assert [(c["index"], c["phone"]) for c in body["calls"]] == [
        (0, "+16175551234"),
        (1, "+16175551235"),
        (2, "+16175551236"),
    ]
    references = [read_call(client, c["id"])["reference"] for c in body["calls"]]
    assert references == ["lead-1", "lead-2", None]  # on each call, not in the list's answer
    assert [c["id"] for c in body["calls"]] == [
        contact_call_id(ID_SECRET, batch_id, c["phone"]) for c in body["calls"]
    ]
    [sent] = list_requests(fuse)
    assert sent.path == "/api/apps/101/201/bulk_queue"
    assert sent.files == ("csv",)
    rows = list(csv.reader(io.StringIO(sent.uploads["csv"])))
    # Each row its own call's opt-out URL (the Fuse application posts to it on an opt-out).
    numbers = [number_key(ID_SECRET, c["phone"]) for c in body["calls"]]
    opt_outs = [
        f"{PUBLIC_BASE_URL}/fuse/opt-out/{c['id']}?n={n}&"
        f"token={callback_token('opt-out/' + c['id'] + '/' + n, CALLBACK_SECRET)}"
        for c, n in zip(body["calls"], numbers, strict=True)
    ]
    assert rows == [
        ["destination", "name", "opt_out_url", "slot", "vip"],
        ["tel:+16175551234;ani=6175550100;postd=9", 'Zoë, "the" boss', opt_outs[0], "", ""],
        ["tel:+16175551235;ani=6175550100;postd=9", "", opt_outs[1], "10:00\nsharp", ""],
        ["tel:+16175551236;ani=6175550100;postd=9", "Ada", opt_outs[2], "", "true"],
    ]
    token = callback_token(list_token_subject(batch_id), CALLBACK_SECRET)
    assert sent.form == {
        "max_attempts": "2",
        "reattempt_wait": "300",
        "result_url": f"https://bridge.example.test/api/fuse/results/batch/{batch_id}?token={token}",
    }
    first = read_call(client, body["calls"][0]["id"])
    assert first["status"] == "queued"
    assert first["fuse_call_id"] == "1001"  # the simulator lists one id per row
    assert first["request"]["variables"] == {"name": 'Zoë, "the" boss'}


def test_invalid_contacts_are_named_by_index_and_nothing_is_sent(
    client: Client, fuse: FuseSimulator
) -> None:
    contacts = [*CONTACTS, {"phone": "12"}, {"phone": "+16175551234"}, {"fone": "1"}]
    answer = post_list(client, {"contacts": contacts})
    assert answer.status_code == 422
    fields = {d["field"] for d in error_of(answer)["details"]}
    assert fields == {
        "contacts[3].phone",
        "contacts[4].phone",
        "contacts[5].fone",
        "contacts[5].phone",
    }
    assert "first at index 0" in json.dumps(error_of(answer))
    assert list_requests(fuse) == []


def test_skip_invalid_sends_the_rest_and_lists_what_was_skipped(
    client: Client, fuse: FuseSimulator
) -> None:
    contacts = [{"phone": "12"}, *CONTACTS]
    answer = post_list(client, {"contacts": contacts, "skip_invalid": True})
    assert answer.status_code == 202
    body = json.loads(answer.body)
    assert len(body["calls"]) == 3
    assert body["skipped"] == [
        {
            "index": 0,
            "details": [
                {
                    "field": "contacts[0].phone",
                    "message": body["skipped"][0]["details"][0]["message"],
                }
            ],
        }
    ]
    [sent] = list_requests(fuse)
    assert len(list(csv.reader(io.StringIO(sent.uploads["csv"])))) == 4


def test_a_list_must_have_contacts_and_valid_settings(client: Client) -> None:
    assert error_of(post_list(client, {"contacts": []}))["details"][0]["field"] == "contacts"
    found = {
        d["field"]
        for d in error_of(
            post_list(client, {"contacts": CONTACTS, "attempts": 3, "campaign": "x"})
        )["details"]
    }
    assert found == {"retry_delay", "campaign"}
    only_bad = post_list(client, {"contacts": [{"phone": "1"}], "skip_invalid": True})
    assert "no valid contact" in json.dumps(error_of(only_bad))


def test_results_for_the_list_are_matched_to_contacts_by_phone(
    client: Client, fuse: FuseSimulator
) -> None:
    body = json.loads(post_list(client, {"contacts": CONTACTS}).body)
    batch_id = body["batch_id"]
    token = callback_token(list_token_subject(batch_id), CALLBACK_SECRET)
    url = f"/fuse/results/batch/{batch_id}?token={token}"
    result = {**FUSE_EXAMPLE, "phone_number": "'16175551235'"}
    answer = client.http.post(
        url, headers={"Content-Type": "application/json"}, body=json.dumps(result)
    )
    assert answer.status_code == 200
    assert json.loads(answer.body)["id"] == body["calls"][1]["id"]
    assert read_call(client, body["calls"][1]["id"])["status"] == "completed"
    national = {**FUSE_EXAMPLE, "status": "failed", "phone_number": "'6175551236'"}
    client.http.post(url, headers={"Content-Type": "application/json"}, body=json.dumps(national))
    batch = json.loads(client.http.get(f"/batches/{batch_id}", headers=AUTH).body)
    assert batch["counts"] == {"queued": 1, "completed": 1, "failed": 1}
    assert [c["status"] for c in batch["contacts"]] == ["queued", "completed", "failed"]
    stranger = {**FUSE_EXAMPLE, "phone_number": "'6175559999'"}
    kept = client.http.post(
        url, headers={"Content-Type": "application/json"}, body=json.dumps(stranger)
    )
    assert json.loads(kept.body)["status"] == "unmatched"  # kept beside the list, not dropped


def test_a_list_url_needs_the_lists_own_token(client: Client) -> None:
    batch_id = json.loads(post_list(client, {"contacts": CONTACTS}).body)["batch_id"]
    assert client.http.get(f"/fuse/results/batch/{batch_id}").status_code == 200  # a probe
    call_token = callback_token(batch_id, CALLBACK_SECRET)  # a call's token, not the list's
    for token in (call_token, "forged"):
        answer = client.http.post(
            f"/fuse/results/batch/{batch_id}?token={token}",
            headers={"Content-Type": "application/json"},
            body=json.dumps(FUSE_EXAMPLE),
        )
        assert answer.status_code == 403


def test_the_same_list_again_replays_without_a_second_bulk_request(
    client: Client, fuse: FuseSimulator
) -> None:
    first = post_list(client, {"contacts": CONTACTS}, key="list-1")
    again = post_list(client, {"contacts": CONTACTS}, key="list-1")
    assert again.status_code == 202
    assert json.loads(again.body) == json.loads(first.body)
    assert again.headers["Idempotent-Replayed"] == "true"
    reused = post_list(client, {"contacts": CONTACTS[:2]}, key="list-1")
    assert error_of(reused)["code"] == "idempotency_key_reused"
    assert len(list_requests(fuse)) == 1


def test_without_call_ids_from_fuse_the_list_still_works(
    client: Client, fuse: FuseSimulator
) -> None:
    fuse.mode = "link_only"  # 200 with nothing to read: the layout is undocumented
    body = json.loads(post_list(client, {"contacts": CONTACTS}).body)
    assert body["status"] == "queued"
    call = read_call(client, body["calls"][0]["id"])
    assert call["status"] == "queued"
    assert call["fuse_call_id"] is None


def test_fuse_down_frees_the_key_for_a_retry(client: Client, fuse: FuseSimulator) -> None:
    fuse.mode = "error500"
    answer = post_list(client, {"contacts": CONTACTS}, key="list-2")
    assert answer.status_code == 503
    fuse.mode = "normal"
    assert post_list(client, {"contacts": CONTACTS}, key="list-2").status_code == 202


@pytest.mark.slow
@pytest.mark.timeout(240)  # moto writing and reading 10,000 items: 15-50 s here
def test_a_list_of_ten_thousand_is_one_fuse_request(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    deps.fuse = FuseClient(fuse.url, 30)  # the simulator reads 10,000 rows: more than 1 s
    contacts = [{"phone": f"+1617555{i:04d}", "variables": {"n": i}} for i in range(10_000)]
    answer = post_list(client, {"contacts": contacts})
    assert answer.status_code == 202
    assert len(json.loads(answer.body)["calls"]) == 10_000
    assert len(list_requests(fuse)) == 1


def test_a_result_that_comes_before_its_call_is_written_is_matched_after(
    client: Client, deps: Dependencies, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fuse may report a call before the bridge has written the list's calls: the result is
    kept beside the list, which opens it to the reconciler once its placing is over (its
    lock's end); the reconciler's next run puts it on its call."""
    put_contacts = deps.store.lists.put_contacts
    early: list[Any] = []

    def report_first(records: list[Any], expires_at: int) -> None:
        batch_id = records[0].list_id
        token = callback_token(list_token_subject(batch_id), CALLBACK_SECRET)
        result = {**FUSE_EXAMPLE, "status": "failed", "phone_number": "'16175551235'"}
        early.append(
            client.http.post(
                f"/fuse/results/batch/{batch_id}?token={token}",
                headers={"Content-Type": "application/json"},
                body=json.dumps(result),
            )
        )
        put_contacts(records, expires_at)

    deps.store.lists.put_contacts = report_first  # type: ignore[method-assign]
    body = json.loads(post_list(client, {"contacts": CONTACTS}).body)
    assert json.loads(early[0].body)["status"] == "unmatched"  # kept, not dropped
    assert run_reconciler(client)["matched"] == 0  # not before the list's placing is over
    later(deps, deps.settings.in_flight_seconds + 1)
    report = run_reconciler(client)
    assert (report["matched"], report["closed"]) == (1, 1)
    assert read_call(client, body["calls"][1]["id"])["status"] == "failed"  # then matched
    assert run_reconciler(client)["due"] == 0  # and the list is closed
    stored = [m for m in emitted(capsys.readouterr().out) if m["name"] == "CallbacksStored"]
    assert [m["outcome"] for m in stored] == ["failed"]  # counted once, when it found its call


@pytest.mark.slow
@pytest.mark.timeout(240)  # moto writing and reading 10,000 items: 15-50 s here
def test_the_largest_list_answers_well_under_lambdas_6_mb(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    """10,000 contacts, each with a 128-character non-ASCII reference (sent as UTF-8, answered
    as \\u escapes, three times larger): 8.4 MB before, over Lambda's 6 MB limit, after Fuse
    had queued every call."""
    deps.fuse = FuseClient(fuse.url, 30)
    contacts = [
        {"phone": f"+1617555{i:04d}", "reference": "é" * 128, "variables": {"n": i}}
        for i in range(10_000)
    ]
    raw = json.dumps({"contacts": contacts}, ensure_ascii=False).encode()
    answer = client.http.post("/calls/bulk", headers=AUTH, body=raw)
    assert answer.status_code == 202
    assert len(answer.body) < 1_000_000
    batch_id = json.loads(answer.body)["batch_id"]
    view = client.http.get(f"/batches/{batch_id}", headers=AUTH)
    assert view.status_code == 200
    assert len(view.body) < 2_000_000


@pytest.mark.slow
def test_thousands_of_skipped_contacts_are_answered_compactly(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    """~2,500 bad contacts used to put every detail in the list's lock item: over 400 KB, so the
    caller got 503 with Retry-After forever for a permanent condition."""
    deps.fuse = FuseClient(fuse.url, 30)
    bad = {"phone": "12", "k" * 200: 1, "variables": {"x" * 60: "é" * 100}}
    contacts = [{"phone": PHONE}, *([bad] * 5000)]
    answer = post_list(client, {"contacts": contacts, "skip_invalid": True})
    assert answer.status_code == 202, answer.body[:300]
    body = json.loads(answer.body)
    assert len(body["skipped"]) == 5000
    assert [s["index"] for s in body["skipped"][:2]] == [1, 2]
    assert "details" in body["skipped"][0]
    assert "details" not in body["skipped"][-1]  # only the first hundred carry their details
    assert len(answer.body) < 1_000_000
    view = json.loads(client.http.get(f"/batches/{body['batch_id']}", headers=AUTH).body)
    assert view["skipped"] == body["skipped"]


def test_a_result_straddling_the_lists_writes_is_still_matched_at_once(
    client: Client, deps: Dependencies
) -> None:
    """The result's first try finds no call (the list's calls not yet written); the list's
    writes then finish and the list settles before the result is kept beside the list. Without
    a second look it would stay `unmatched` until the reconciler, Fuse having given no per-row
    ids: the settled list tells it its contact now exists."""
    body = json.loads(post_list(client, {"contacts": CONTACTS}).body)  # written, settled
    add_callback = deps.store.callbacks.add
    first_try = [True]

    def not_yet_written(callback: Any, *args: Any) -> Any:
        if first_try[0]:
            first_try[0] = False
            return StoreOutcome.UNKNOWN_CALL  # as if the contact's call did not exist yet
        return add_callback(callback, *args)

    deps.store.callbacks.add = not_yet_written  # type: ignore[method-assign]
    token = callback_token(list_token_subject(body["batch_id"]), CALLBACK_SECRET)
    result = {**FUSE_EXAMPLE, "status": "failed", "phone_number": "'16175551235'"}
    answer = client.http.post(
        f"/fuse/results/batch/{body['batch_id']}?token={token}",
        headers={"Content-Type": "application/json"},
        body=json.dumps(result),
    )
    assert json.loads(answer.body) == {"status": "stored", "id": body["calls"][1]["id"]}
    assert read_call(client, body["calls"][1]["id"])["status"] == "failed"
