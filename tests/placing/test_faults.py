"""Each fault of Fuse, SSM or DynamoDB gets its deliberate answer, and none of them dials twice."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.config.dependencies import Dependencies
from chalicelib.errors import StoreUnavailable
from chalicelib.fuse.client import FuseClient
from chalicelib.results.reconciler import reconcile
from chalicelib.store.calls import CallStore
from local.fuse_sim import FuseSimulator
from tests.helpers import (
    DEVELOPER_KEY,
    PHONE,
    PUBLIC_BASE_URL,
    TABLE,
    broken_client,
    error_of,
    post_call,
)


def test_fuse_400_becomes_422_with_fuses_own_message(client: Client, fuse: FuseSimulator) -> None:
    # The bridge validates first, so a 400 needs a rule only Fuse knows: the simulator is told.
    fuse.fail_with = (400, "Invalid phone number 6175551234 supplied.")
    response = post_call(client, {"phone": PHONE}, key="k-400")
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "fuse_rejected_request"
    assert "Invalid phone number" in error["message"]
    assert "6175551234" not in error["message"]  # Fuse's echo of the number is masked


@pytest.mark.parametrize(
    ("status", "code", "http"),
    [
        (401, "fuse_credentials_rejected", 502),
        (403, "fuse_credentials_rejected", 502),
        (404, "fuse_deployment_not_found", 502),
        (409, "fuse_deployment_not_found", 502),
        (500, "fuse_unavailable", 503),
        (418, "fuse_unexpected_response", 502),
    ],
)
def test_fuse_error_statuses_map_to_stable_codes(
    client: Client, fuse: FuseSimulator, status: int, code: str, http: int
) -> None:
    fuse.fail_with = (status, "no")
    response = post_call(client, {"phone": PHONE}, key=f"k-{status}")
    assert response.status_code == http
    assert error_of(response)["code"] == code
    if http == 503:
        assert response.headers["Retry-After"] == "30"


def test_wrong_fuse_credentials_are_502(client: Client, fuse: FuseSimulator) -> None:
    fuse.developer_key = "regenerated-in-the-fuse-ui"
    try:
        response = post_call(client, {"phone": PHONE})
    finally:
        fuse.developer_key = DEVELOPER_KEY
    assert response.status_code == 502
    assert error_of(response)["code"] == "fuse_credentials_rejected"


def test_unknown_fuse_deployment_is_502(client: Client, fuse: FuseSimulator) -> None:
    response = post_call(client, {"phone": PHONE, "campaign": "retired"})
    assert response.status_code == 502
    assert error_of(response)["code"] == "fuse_deployment_not_found"


def test_fuse_500_frees_the_key_so_a_retry_queues(client: Client, fuse: FuseSimulator) -> None:
    fuse.mode = "error500"
    first = post_call(client, {"phone": PHONE}, key="retry-me")
    assert first.status_code == 503
    assert error_of(first)["code"] == "fuse_unavailable"
    fuse.mode = "normal"
    second = post_call(client, {"phone": PHONE}, key="retry-me")
    assert second.status_code == 202
    assert len(fuse.queue_requests()) == 2  # the refused one and the queued one
    assert len(fuse.queued) == 1


def test_refused_connection_is_503_unavailable(deps: Dependencies, client: Client) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))  # a port nobody listens on
        port = holder.getsockname()[1]
    deps.fuse = FuseClient(f"http://127.0.0.1:{port}/api", 1)
    response = post_call(client, {"phone": PHONE}, key="refused")
    assert response.status_code == 503
    assert error_of(response)["code"] == "fuse_unavailable"
    assert response.headers["Retry-After"] == "30"


def test_dns_failure_is_503_unavailable(deps: Dependencies, client: Client) -> None:
    deps.fuse = FuseClient("http://fuse.invalid/api", 1)  # .invalid never resolves (RFC 2606)
    response = post_call(client, {"phone": PHONE})
    assert response.status_code == 503
    assert error_of(response)["code"] == "fuse_unavailable"


@pytest.mark.parametrize("mode", ["hang", "garbage", "drip"])
def test_unknown_outcome_is_504_kept_and_replayed_without_redialling(
    client: Client, fuse: FuseSimulator, mode: str
) -> None:
    fuse.mode = mode
    first = post_call(client, {"phone": PHONE, "reference": "lead-7"}, key=f"unknown-{mode}")
    assert first.status_code == 504
    body = json.loads(first.body)
    assert body["error"]["code"] == "fuse_outcome_unknown"
    assert body["status"] == "unknown"
    assert first.headers["Location"] == f"{PUBLIC_BASE_URL}/calls/{body['id']}"
    fuse.mode = "normal"
    replay = post_call(client, {"phone": PHONE, "reference": "lead-7"}, key=f"unknown-{mode}")
    assert replay.status_code == 504
    assert json.loads(replay.body) == body
    assert len(fuse.queue_requests()) == 1  # asked once, never again


def test_a_fuse_that_answers_a_byte_at_a_time_is_cut_at_its_total_deadline(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    """Each byte comes well within the read timeout; the whole answer would take over 3 s. The
    request ends at FUSE_TIMEOUT_SECONDS (1 s here), inside the key's lock, so a replay finds
    the first answer, never a lapsed lock that would answer differently."""
    fuse.mode = "drip"
    started = time.monotonic()
    first = post_call(client, {"phone": PHONE}, key="drip")
    elapsed = time.monotonic() - started
    assert first.status_code == 504
    assert error_of(first)["code"] == "fuse_outcome_unknown"
    assert elapsed < deps.settings.fuse_timeout_seconds + 1.5  # the answer alone takes > 3 s
    assert deps.settings.in_flight_seconds > deps.settings.fuse_timeout_seconds  # lock outlives
    again = post_call(client, {"phone": PHONE}, key="drip")
    assert (again.status_code, json.loads(again.body)) == (504, json.loads(first.body))
    assert len(fuse.queue_requests()) == 1


def test_a_fuse_id_that_comes_after_the_deadline_reopens_the_call_for_polling(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    """The answer was `unknown` and stays so for replays; but when Fuse's slow answer does come,
    the call gets its Fuse id and the reconciler can ask Fuse how it ended."""
    fuse.mode = "drip"  # about 3.5 s for the whole answer
    fuse.callback_delay, fuse.lose_callbacks = 0, True
    first = post_call(client, {"phone": PHONE}, key="late")
    call_id = json.loads(first.body)["id"]
    assert first.status_code == 504
    for _ in range(100):  # the abandoned request finishes on its own thread
        if deps.store.get(call_id).fuse_call_id:
            break
        time.sleep(0.1)
    record = deps.store.get(call_id)
    assert (record.status, record.fuse_call_id) == ("unknown", "1001")
    deps.clock = lambda: time.time() + 7200
    report = reconcile(deps, deps.parameters.get(), time_left=lambda: 30.0)
    assert report.settled == 1
    assert deps.store.get(call_id).status == "completed"
    assert post_call(client, {"phone": PHONE}, key="late").status_code == 504  # one key, one answer
    assert len(fuse.queue_requests()) == 1


def test_unreachable_ssm_is_503_secrets_unavailable(
    deps: Dependencies, client: Client, fuse: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    deps.parameters._ssm_client = lambda: broken_client("ssm")
    response = post_call(client, {"phone": PHONE})
    assert response.status_code == 503
    assert error_of(response)["code"] == "secrets_unavailable"
    assert response.headers["Retry-After"] == "30"
    assert fuse.queue_requests() == []


def test_unreachable_dynamodb_is_503_and_nothing_is_dialled(
    deps: Dependencies, client: Client, fuse: FuseSimulator
) -> None:
    deps.store = CallStore(TABLE, lambda: broken_client("dynamodb"))
    response = post_call(client, {"phone": PHONE}, key="no-store")
    assert response.status_code == 503
    assert error_of(response)["code"] == "store_unavailable"
    assert fuse.queue_requests() == []


def test_a_store_fault_after_fuse_queued_still_answers_202_and_never_redials(
    deps: Dependencies, client: Client, fuse: FuseSimulator
) -> None:
    settle = deps.store.settle

    def store_down(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailable("DynamoDB is throttling")

    deps.store.settle = store_down  # type: ignore[method-assign]
    first = post_call(client, {"phone": PHONE}, key="store-down")
    assert first.status_code == 202  # the truth: Fuse queued it
    deps.store.settle = settle  # type: ignore[method-assign]
    again = post_call(client, {"phone": PHONE}, key="store-down")
    assert again.status_code == 409  # still held: never a second dial
    assert len(fuse.queue_requests()) == 1


def test_a_bug_mid_call_is_500_in_the_bridge_shape_and_holds_the_key(
    deps: Dependencies, client: Client, fuse: FuseSimulator
) -> None:
    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom after sending, perhaps")

    deps.fuse.queue_call = crash  # type: ignore[method-assign]
    response = post_call(client, {"phone": PHONE}, key="bug")
    assert response.status_code == 500
    assert error_of(response) == {
        "code": "internal_error",
        "message": "an internal error occurred",
        "details": [],
    }
    assert "boom" not in response.body.decode()
    again = post_call(client, {"phone": PHONE}, key="bug")
    assert again.status_code == 409  # the call may exist: the key is not freed for a redial
