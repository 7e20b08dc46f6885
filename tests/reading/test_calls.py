"""What callers read of their calls: GET /calls/{id}, and GET /calls?reference= in pages
with signed cursors."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest
from chalice.test import Client

from chalicelib.config.dependencies import Dependencies
from tests.helpers import (
    API_TOKEN,
    AUTH,
    PHONE,
    error_of,
    queue,
    read_call,
)


def test_reading_a_call_needs_the_token_and_an_existing_id(client: Client) -> None:
    call_id = queue(client, attempts=2, retry_delay=120, variables={"name": "Ada"})
    assert client.http.get(f"/calls/{call_id}").status_code == 401
    missing = client.http.get("/calls/nope", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert missing.status_code == 404
    call = read_call(client, call_id)
    assert call["request"]["phone"] == PHONE  # in full, to the caller who gave it
    assert call["request"]["variables"] == {"name": "Ada"}
    assert call["status"] == "queued"
    assert call["result"] is None
    assert call["fuse_call_id"] == "1001"
    assert call["created_at"].endswith("Z")


def test_calls_by_reference_newest_first_in_pages(client: Client, deps: Dependencies) -> None:
    start = time.time()
    ids = []
    for second in range(5):
        deps.clock = lambda second=second: start + second
        ids.append(queue(client, reference="crm-7"))
    queue(client, reference="crm-8")
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    operations: list[str] = []
    deps.store.client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: operations.append(model.name)
    )
    seen, cursor = [], None
    while True:
        query = "/calls?reference=crm-7&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = json.loads(client.http.get(query, headers=auth).body)
        seen += [c["id"] for c in page["calls"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert "Query" in operations  # an index, never a scan
    assert "Scan" not in operations


def test_listing_refuses_bad_queries(client: Client) -> None:
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    assert client.http.get("/calls?reference=x").status_code == 401
    missing = client.http.get("/calls", headers=auth)
    assert missing.status_code == 422
    assert error_of(missing)["details"][0]["field"] == "reference"
    assert client.http.get("/calls?reference=x&limit=0", headers=auth).status_code == 422
    forged = client.http.get("/calls?reference=x&cursor=bm9wZQ", headers=auth)
    assert forged.status_code == 400
    assert error_of(forged)["code"] == "invalid_cursor"


def test_only_cursors_the_bridge_signed_are_followed(client: Client) -> None:
    for _ in range(3):
        queue(client, reference="paged")
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    first = json.loads(client.http.get("/calls?reference=paged&limit=2", headers=auth).body)
    page, _, mac = first["next"].rpartition(".")
    # The store's own cursor of the right shape, a changed signature, another list's cursor:
    for forged, reference in (
        (page, "paged"),
        (f"{page}.{mac[::-1]}", "paged"),
        (first["next"], "x"),
    ):
        answer = client.http.get(f"/calls?reference={reference}&cursor={forged}", headers=auth)
        assert answer.status_code == 400
        assert error_of(answer)["code"] == "invalid_cursor"
    follow = client.http.get(f"/calls?reference=paged&limit=2&cursor={first['next']}", headers=auth)
    assert len(json.loads(follow.body)["calls"]) == 1


@pytest.mark.parametrize("limit", ["²", "٣", "1" * 5000, "-1", "0", "101", " 5"])
def test_a_bad_page_size_is_refused_by_name(client: Client, limit: str) -> None:
    answer = client.http.get(f"/calls?reference=r&limit={quote(limit)}", headers=AUTH)
    assert answer.status_code == 422
    assert [d["field"] for d in error_of(answer)["details"]] == ["limit"]
