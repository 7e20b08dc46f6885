"""What callers read of a list: GET /batches/{id}."""

from __future__ import annotations

from chalice.test import Client

from tests.helpers import (
    AUTH,
)


def test_reading_a_batch_needs_the_token_and_an_existing_id(client: Client) -> None:
    assert client.http.get("/batches/nope").status_code == 401
    assert client.http.get("/batches/nope", headers=AUTH).status_code == 404
