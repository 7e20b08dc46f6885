"""Where a delivery may go: only https, without credentials in the URL, to addresses on the public
internet, checked where the name is resolved, and the request then sent to the very address
checked (so a name that resolves differently a moment later cannot send it elsewhere).

A receiver's URL is an integration's configuration, and a mistaken or hostile one must not reach
what the Lambda can: its runtime API on 127.0.0.1, the metadata address 169.254.169.254, the
VPC's private ranges. Every address a name resolves to must be public, in any spelling
(`2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]` are loopback too: the resolver reads them so). The
local stage (`make local`, the tests) allows loopback and plain http, for its demo receiver.

A name that does not resolve now may resolve later (DNS fails for a while): that is no refusal,
the attempt is retried. A name with several addresses is tried at each in turn (IPv4 first, in
the resolver's order: a Lambda outside a VPC has no IPv6 route), all of them checked first.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

Resolver = Callable[..., list[tuple[Any, ...]]]


class AddressRefused(Exception):
    """The receiver's address is not one the bridge sends to; the message says why (no URL)."""


class NameNotResolved(Exception):
    """The receiver's name did not resolve now: the attempt is retried later."""


@dataclass(frozen=True)
class Receiver:
    """A checked destination: connect to `address`, present `host` (TLS name, Host header)."""

    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]  # each checked; tried in this order
    path: str

    @property
    def address(self) -> str:
        return self.addresses[0]


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # a NAT64 gateway turns these into IPv4
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated, still routed by some stacks
SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")  # deprecated private range ipaddress calls global


def is_public(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address in SITE_LOCAL:
            return False
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in NAT64 or address in IPV4_COMPATIBLE:
            address = ipaddress.IPv4Address(address.packed[12:])
    return address.is_global and not address.is_multicast


def check_receiver(url: str, *, private_allowed: bool, resolve: Resolver | None = None) -> Receiver:
    """The receiver `url` names, resolved (by `resolve`, else the system's resolver) and
    checked; AddressRefused if it may not be sent to."""
    resolve = resolve or socket.getaddrinfo
    try:
        parsed = parse_url(url)
    except LocationParseError:
        raise AddressRefused("the receiver's URL cannot be read") from None
    allowed = ("https", "http") if private_allowed else ("https",)
    if parsed.scheme not in allowed or not parsed.host:
        raise AddressRefused("the receiver's URL must be https")
    if parsed.auth:
        raise AddressRefused("the receiver's URL must not hold credentials")
    host = parsed.host.strip("[]")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        found = resolve(host, port, type=socket.SOCK_STREAM)
    except UnicodeError:
        raise AddressRefused("the receiver's name is not a valid host name") from None
    except OSError:
        raise NameNotResolved("the receiver's name did not resolve") from None
    ordered = list(dict.fromkeys(str(info[4][0]) for info in found))
    addresses = tuple(sorted(ordered, key=lambda a: ":" in a))  # IPv4 first, order kept
    if not addresses:
        raise NameNotResolved("the receiver's name did not resolve")
    if not private_allowed and not all(map(is_public, addresses)):
        raise AddressRefused("the receiver's address is not on the public internet")
    return Receiver(parsed.scheme, host, port, addresses, parsed.request_uri or "/")
