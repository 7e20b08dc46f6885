"""A list's results name a phone, written by Fuse without its `+`: each goes to the one contact of
the list that phone can be, under every reading, and is kept beside the list (never guessed)
when none or more than one is."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import phonenumbers
import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.config.dependencies import Dependencies
from chalicelib.fuse.callback_urls import callback_token, list_token_subject
from chalicelib.validation.phones import DialPolicy
from tests.helpers import CALLBACK_SECRET, FUSE_EXAMPLE, post_list, read_call

ICELAND, CANADA = "+3546111234", "+13546111234"  # Fuse writes both as 3546111234


@pytest.fixture
def everywhere(deps: Dependencies) -> Dependencies:
    """A bridge that may call Iceland, Canada and the US."""
    policy = DialPolicy(countries=frozenset({"US", "CA", "IS"}))
    deps.settings = replace(deps.settings, dial_policy=policy)
    return deps


def list_of(client: Client, phones: list[str]) -> dict[str, Any]:
    answer = post_list(client, {"contacts": [{"phone": p} for p in phones]})
    assert answer.status_code == 202, answer.body
    return json.loads(answer.body)


def fuse_reports(client: Client, batch_id: str, written: str, status: str = "failed") -> Any:
    token = callback_token(list_token_subject(batch_id), CALLBACK_SECRET)
    result = {**FUSE_EXAMPLE, "status": status, "phone_number": f"'{written}'"}
    return client.http.post(
        f"/fuse/results/batch/{batch_id}?token={token}",
        headers={"Content-Type": "application/json"},
        body=json.dumps(result),
    )


@pytest.mark.usefixtures("everywhere")
def test_digits_of_a_foreign_number_find_its_contact(client: Client) -> None:
    """Read in the default region first, 3546111234 is a Canadian number the list does not
    have: the result used to be matched to nothing."""
    listed = list_of(client, [ICELAND, "+16175551234"])
    answer = fuse_reports(client, listed["batch_id"], "3546111234")
    iceland = listed["calls"][0]["id"]
    assert json.loads(answer.body) == {"status": "stored", "id": iceland}
    assert read_call(client, iceland)["status"] == "failed"


@pytest.mark.usefixtures("everywhere")
def test_digits_two_contacts_could_be_are_kept_not_guessed(client: Client) -> None:
    """Both readings are contacts of the list: the result is kept beside it, and neither call
    takes it (it used to go to the Canadian contact, read in the default region first)."""
    listed = list_of(client, [CANADA, ICELAND])
    answer = fuse_reports(client, listed["batch_id"], "3546111234")
    assert json.loads(answer.body)["status"] == "unmatched"
    assert [read_call(client, c["id"])["status"] for c in listed["calls"]] == ["queued"] * 2


US_NUMBERS = st.integers(min_value=2_000_000, max_value=9_999_999).map(lambda n: f"+1617{n:07d}")


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    phones=st.lists(
        US_NUMBERS.filter(lambda p: phonenumbers.is_valid_number(phonenumbers.parse(p))),
        min_size=1,
        max_size=4,
        unique=True,
    ),
    pick=st.integers(min_value=0, max_value=3),
    national=st.booleans(),
)
def test_a_result_goes_to_the_contact_it_names_however_fuse_writes_it(
    client: Client, everywhere: Dependencies, phones: list[str], pick: int, national: bool
) -> None:
    """Fuse's example writes a US number in its ten national digits, the simulator in eleven:
    either way the result is the named contact's, and no other's."""
    listed = list_of(client, phones)
    chosen = listed["calls"][pick % len(phones)]
    written = chosen["phone"].lstrip("+")
    answer = fuse_reports(client, listed["batch_id"], written[1:] if national else written)
    assert json.loads(answer.body) == {"status": "stored", "id": chosen["id"]}
    others = [c["id"] for c in listed["calls"] if c["id"] != chosen["id"]]
    assert all(read_call(client, c)["status"] == "queued" for c in others)
