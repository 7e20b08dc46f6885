"""The simulator holds to the documented Fuse contract, or the tests built on it prove nothing."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from local.fuse_sim import FuseSimulator, SimCall
from tests.helpers import DEVELOPER_KEY, FUSE_EMAIL

AUTH = (FUSE_EMAIL, DEVELOPER_KEY)


def queue(fuse: FuseSimulator, fields: dict[str, str], **kwargs: Any) -> requests.Response:
    kwargs.setdefault("auth", AUTH)
    kwargs.setdefault("files", {k: (None, v) for k, v in fields.items()})
    return requests.post(f"{fuse.url}/apps/101/201/queue", timeout=5, **kwargs)


def test_success_has_a_call_id_and_a_status_link(fuse: FuseSimulator) -> None:
    answer = queue(fuse, {"phone_number": "tel:+16175551234;ani=6175550100;postd=1#"})
    assert answer.status_code == 200
    call_id = answer.json()["call_id"]
    assert answer.headers["Link"] == f"<{fuse.url}/outbound/{call_id}>"
    status = requests.get(f"{fuse.url}/outbound/{call_id}", auth=AUTH, timeout=5).json()
    assert status["call_details"]["phone_number"] == "'16175551234'"  # quoted, as documented


def test_wrong_credentials_are_401(fuse: FuseSimulator) -> None:
    answer = queue(fuse, {"phone_number": "6175551234"}, auth=(FUSE_EMAIL, "wrong"))
    assert answer.status_code == 401
    assert answer.json()["error"]


def test_unknown_deployment_is_404(fuse: FuseSimulator) -> None:
    answer = requests.post(
        f"{fuse.url}/apps/1/2/queue", files={"phone_number": (None, "1")}, auth=AUTH, timeout=5
    )
    assert answer.status_code == 404
    assert "No deployment" in answer.json()["error"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "phone_number is required"),
        ({"phone_number": "call me"}, "phone_number is invalid"),
        ({"phone_number": "6175551234;ext=2"}, "invalid parameter"),
        ({"phone_number": "6175551234", "max_attempts": "3"}, "reattempt_wait is required"),
        ({"phone_number": "6175551234", "max_attempts": "11", "reattempt_wait": "60"}, "1 to 10"),
        ({"phone_number": "6175551234", "max_attempts": "2", "reattempt_wait": "59"}, "60 and"),
        ({"phone_number": "6175551234", "start_timestamp": "soon"}, "Unix timestamp"),
        ({"phone_number": "6175551234", "metadata": "[1]"}, "JSON object"),
        ({"phone_number": "6175551234", "is_pci": "2"}, "is_pci"),
    ],
)
def test_documented_field_rules_are_400_with_an_error(
    fuse: FuseSimulator, fields: dict[str, str], message: str
) -> None:
    answer = queue(fuse, fields) if fields else queue(fuse, {}, files={"x": (None, "")})
    assert answer.status_code == 400
    assert message in answer.json()["error"]


def test_only_multipart_is_accepted(fuse: FuseSimulator) -> None:
    answer = queue(fuse, {}, files=None, data={"phone_number": "6175551234"})
    assert answer.status_code == 400
    assert "multipart" in answer.json()["error"]


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/x-www-form-urlencoded", "text/plain", None]
)
def test_the_control_api_reads_json_whatever_the_content_type(
    fuse: FuseSimulator, content_type: str | None
) -> None:
    """`curl -d '{"mode": "hang"}'` sends a form Content-Type: the setting must still apply."""
    headers = {"Content-Type": content_type} if content_type else {}
    root = fuse.url.removesuffix("/api")
    answer = requests.post(
        f"{root}/_sim/config", data=b'{"mode": "garbage"}', headers=headers, timeout=5
    )
    assert answer.status_code == 200
    assert answer.json()["mode"] == "garbage"
    assert fuse.mode == "garbage"


@pytest.mark.parametrize("body", [b"mode=hang", b"[1]", b'{"mode": "sideways"}', b'{"colour": 1}'])
def test_the_control_api_refuses_what_it_cannot_apply(fuse: FuseSimulator, body: bytes) -> None:
    answer = requests.post(f"{fuse.url.removesuffix('/api')}/_sim/config", data=body, timeout=5)
    assert answer.status_code == 400
    assert fuse.mode == "normal"


def test_simulated_results_follow_the_documented_shape() -> None:
    call = SimCall(
        deployment=("101", "201"),
        form={"phone_number": "tel:+16175551234;ani=6175550100"},
        queued_at=100,
        completes_at=200,
        outcome="completed",
        encoding="json",
        calls_back=True,
        copies=1,
    )
    details = call.details(200)
    assert details["phone_number"] == "'16175551234'"
    assert details["attempts"] == "1"
    assert details["start_timestamp"] == ""
    assert isinstance(details["events"][0]["timestamp"], int)
    assert call.details(150)["status"] == "queued"


def test_the_simulator_wants_a_destination_column(fuse: FuseSimulator) -> None:
    auth = (FUSE_EMAIL, DEVELOPER_KEY)
    files = {"csv": ("c.csv", b"phone\r\n6175551234\r\n", "text/csv")}
    answer = requests.post(f"{fuse.url}/apps/101/201/bulk_queue", files=files, auth=auth, timeout=5)
    assert answer.status_code == 400
    assert "destination" in answer.json()["error"]
