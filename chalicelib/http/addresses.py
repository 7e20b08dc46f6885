"""Where a delivery may go: only https, without credentials in the URL, to addresses on the public
internet, checked where the name is resolved, and the request then sent to the very address
checked (so a name that resolves differently a moment later cannot send it elsewhere).

A receiver's URL is an integration's configuration, and a mistaken or hostile one must not reach
what the Lambda can: its runtime API on 127.0.0.1, the metadata address 169.254.169.254, the
VPC's private ranges. Every address a name resolves to must be public, in any spelling
(`2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]` are loopback too: the resolver reads them so). The
local stage (`make local`, the tests) allows loopback and plain http, for its demo receiver.
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


@dataclass(frozen=True)
class Receiver:
    """A checked destination: connect to `address`, present `host` (TLS name, Host header)."""

    scheme: str
    host: str
    port: int
    address: str
    path: str


def is_public(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
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
    except (OSError, UnicodeError):
        raise AddressRefused("the receiver's name does not resolve") from None
    addresses = sorted({str(info[4][0]) for info in found})
    if not addresses:
        raise AddressRefused("the receiver's name does not resolve")
    if not private_allowed and not all(map(is_public, addresses)):
        raise AddressRefused("the receiver's address is not on the public internet")
    return Receiver(parsed.scheme, host, port, addresses[0], parsed.request_uri or "/")
