"""What callers read of their calls: GET /calls/{id}, and GET /calls?reference= in pages
with sealed cursors."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import quote

import pytest
from chalice.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.config.dependencies import Dependencies
from chalicelib.errors import InvalidCursor
from chalicelib.reading.cursors import seal, unseal
from tests.helpers import (
    ADMIN_TOKEN,
    API_TOKEN,
    AUTH,
    CALLBACK_SECRET,
    PHONE,
    A,
    B,
    error_of,
    get,
    post_call,
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


def test_only_cursors_the_bridge_sealed_are_followed(client: Client) -> None:
    for _ in range(3):
        queue(client, reference="paged")
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    first = json.loads(client.http.get("/calls?reference=paged&limit=2", headers=auth).body)
    sealed = first["next"]
    position = base64.urlsafe_b64encode(b'{"pk":{"S":"x"},"sk":{"S":"call"}}').decode()
    flipped = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
    # The store's own kind of position, a changed byte, the cursor of another reference:
    for forged, reference in ((position, "paged"), (flipped, "paged"), (sealed, "x")):
        answer = client.http.get(f"/calls?reference={reference}&cursor={forged}", headers=auth)
        assert answer.status_code == 400
        assert error_of(answer)["code"] == "invalid_cursor"
    follow = client.http.get(f"/calls?reference=paged&limit=2&cursor={sealed}", headers=auth)
    assert len(json.loads(follow.body)["calls"]) == 1


@pytest.mark.usefixtures("crm")
def test_a_cursor_tells_nothing_of_calls_the_caller_may_not_see(client: Client) -> None:
    """Integration A's calls share a reference with B's: DynamoDB's page can end on one of A's,
    which B's filter left out. B's cursor must not carry that call's id or time, and opens
    for B's listing alone."""
    mine = [json.loads(post_call(client, {"phone": PHONE, "reference": "shared"}, token=A).body)]
    post_call(client, {"phone": PHONE, "reference": "shared"}, token=B)
    mine += [json.loads(post_call(client, {"phone": PHONE, "reference": "shared"}, token=A).body)]
    page = json.loads(get(client, "/calls?reference=shared&limit=1", B).body)
    cursors = [page["next"]] if page["next"] else []
    while page["next"]:
        page = json.loads(
            get(client, f"/calls?reference=shared&limit=1&cursor={page['next']}", B).body
        )
        cursors += [page["next"]] if page["next"] else []
    assert cursors  # DynamoDB paged over A's calls too
    for cursor in cursors:
        pieces = [base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in cursor.split(".")]
        for call in mine:
            assert not [p for p in pieces if call["id"].encode() in p]
        assert get(client, f"/calls?reference=shared&cursor={cursor}", A).status_code == 400
        assert (
            get(client, f"/calls?reference=shared&cursor={cursor}", ADMIN_TOKEN).status_code == 400
        )


@settings(max_examples=40, deadline=None, derandomize=True)
@given(data=st.binary(min_size=0, max_size=80), bound=st.text(max_size=20))
def test_only_what_was_sealed_for_a_listing_opens_for_it(data: bytes, bound: str) -> None:
    """Any bytes are refused, and a sealed position opens only for its own listing."""
    forged = base64.urlsafe_b64encode(data).decode().rstrip("=")
    with pytest.raises(InvalidCursor):
        unseal(forged, bound, CALLBACK_SECRET)
    sealed = seal("position", bound, CALLBACK_SECRET)
    assert unseal(sealed, bound, CALLBACK_SECRET) == "position"
    with pytest.raises(InvalidCursor):
        unseal(sealed, bound + "x", CALLBACK_SECRET)


@pytest.mark.parametrize("limit", ["²", "٣", "1" * 5000, "-1", "0", "101", " 5"])
def test_a_bad_page_size_is_refused_by_name(client: Client, limit: str) -> None:
    answer = client.http.get(f"/calls?reference=r&limit={quote(limit)}", headers=AUTH)
    assert answer.status_code == 422
    assert [d["field"] for d in error_of(answer)["details"]] == ["limit"]
