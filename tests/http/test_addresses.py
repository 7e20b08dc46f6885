"""Where a delivery may go: https to a public address, checked where the name is resolved, and
sent to the very address checked; never the Lambda's own runtime API, the metadata address, a
private range, or credentials in the URL."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.config.integrations import parse_integrations
from chalicelib.deliveries.sender import DeliverySender
from chalicelib.http.addresses import AddressRefused, check_receiver, is_public
from local.receiver import DemoReceiver
from tests.helpers import PREFIX

SECRET = "whsec_" + "cmVzdWx0cy1yZWNlaXZlci1zZWNyZXQtZm9yLXRlc3Rz"
NOT_PUBLIC = [
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.7",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # the instance metadata address
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",  # noqa: S104 - an address refused, not one bound to
    "224.0.0.1",
    "::1",
    "fe80::1",
    "fc00::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::",
    # IPv6 spellings of IPv4 that ipaddress calls global: NAT64's prefix, the deprecated
    # IPv4-compatible form, the deprecated site-local range.
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "::7f00:1",
    "::169.254.169.254",
    "fec0::1",
]
# How a URL can spell a loopback or private address without looking like one: the resolver
# reads them all the same way.
SPELLED = ["2130706433", "0x7f.1", "0177.0.0.1", "127.1", "[::ffff:7f00:1]", "localhost"]


def resolving_to(*addresses: str) -> Any:
    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return resolve


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_no_address_off_the_public_internet_is_public(address: str) -> None:
    assert not is_public(address)


def test_public_addresses_are() -> None:
    assert is_public("93.184.216.34")
    assert is_public("2606:2800:220:1:248:1893:25c8:1946")
    assert is_public("64:ff9b::808:808")  # NAT64 of a public address


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    address=st.sampled_from(NOT_PUBLIC),
    also=st.lists(st.sampled_from(["93.184.216.34", "8.8.8.8"]), max_size=2),
    port=st.one_of(st.none(), st.integers(min_value=1, max_value=65535)),
)
def test_a_name_that_resolves_to_any_private_address_is_refused(
    address: str, also: list[str], port: int | None
) -> None:
    """Every address a name resolves to must be public: one private among public ones (DNS
    rebinding's trick) is enough to refuse it."""
    url = f"https://crm.example.test{f':{port}' if port else ''}/results"
    with pytest.raises(AddressRefused):
        check_receiver(url, private_allowed=False, resolve=resolving_to(*also, address))


@pytest.mark.parametrize("host", SPELLED)
def test_a_loopback_however_spelled_is_refused_by_the_real_resolver(host: str) -> None:
    with pytest.raises(AddressRefused):
        check_receiver(f"https://{host}/results", private_allowed=False)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    url=st.sampled_from(
        [
            "http://crm.example.test/results",  # not https
            "https://user:password@crm.example.test/results",  # credentials
            "https://:token@crm.example.test/",
            "ftp://crm.example.test/",
            "https:///nothing",
            "not a url",
        ]
    )
)
def test_only_https_without_credentials_goes_out(url: str) -> None:
    with pytest.raises(AddressRefused):
        check_receiver(url, private_allowed=False, resolve=resolving_to("93.184.216.34"))


def test_the_checked_address_is_the_one_connected_to() -> None:
    """The request goes to the address the check resolved, under the receiver's own name
    (here a name only the test's resolver knows, pointed at a local receiver)."""
    with DemoReceiver(SECRET) as receiver:
        port = int(receiver.url.rsplit(":", 1)[1].split("/", 1)[0])
        sender = DeliverySender(2, private_allowed=True, resolve=resolving_to("127.0.0.1"))
        answered = sender.post(f"http://crm.example.test:{port}/results", b"{}", {})
        assert answered.status == 401  # the receiver's own answer: unsigned
        [got] = receiver.received
        assert got.headers["host"] == f"crm.example.test:{port}"


def test_a_name_that_does_not_resolve_now_is_retried_not_refused() -> None:
    def failing(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    answered = DeliverySender(2, resolve=failing).post("https://crm.example.test/r", b"{}", {})
    assert not answered.refused  # pending: its backoff brings it back
    assert (answered.status, answered.error) == (None, "the receiver's name did not resolve")
    too_long = "https://" + "a" * 70 + ".test/"  # a label no resolver could ever take
    assert DeliverySender(2).post(too_long, b"{}", {}).refused


def test_an_address_that_takes_no_connection_gives_way_to_the_next() -> None:
    """IPv4 first, in the resolver's order; one refusing connections (nothing listens on
    127.0.0.2 at the receiver's port) is passed over: nothing was sent to it."""
    with DemoReceiver(SECRET) as receiver:
        port = int(receiver.url.rsplit(":", 1)[1].split("/", 1)[0])
        resolve = resolving_to("::1", "127.0.0.2", "127.0.0.1")
        url = f"http://crm.example.test:{port}/results"
        checked = check_receiver(url, private_allowed=True, resolve=resolve)
        assert checked.addresses == ("127.0.0.2", "127.0.0.1", "::1")
        answered = DeliverySender(2, private_allowed=True, resolve=resolve).post(url, b"{}", {})
        assert answered.status == 401  # the receiver's own answer, through the second address
        assert len(receiver.received) == 1


def test_a_refused_address_is_a_final_failure_not_a_retry() -> None:
    sender = DeliverySender(2, resolve=resolving_to("169.254.169.254"))
    answered = sender.post("https://crm.example.test/results", b"{}", {})
    assert answered.refused
    assert answered.status is None
    assert answered.error == "the receiver's address is not on the public internet"


@pytest.mark.parametrize(
    "url",
    [
        "https://user:password@crm.example.test/results",
        "http://crm.example.test/results",
        "http://169.254.169.254/latest",
    ],
)
def test_such_a_results_url_turns_the_integrations_deliveries_off(url: str) -> None:
    parsed = parse_integrations(
        {
            "integrations/crm/token": "t",
            "integrations/crm/results_url": url,
            "integrations/crm/results_secret": SECRET,
        },
        PREFIX,
        api_tokens=(),
    )["crm"]
    assert parsed.delivery_target is None
    assert parsed.delivery_problem is not None
    assert "password" not in parsed.delivery_problem
