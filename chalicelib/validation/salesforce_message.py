"""A Salesforce Outbound Messaging request: the SOAP 1.1 envelope of a `notifications` element,
read into plain values. Pure: bytes in, a SalesforceMessage out, or InvalidXml naming what is
wrong.

The envelope is someone else's XML, so it is read with defusedxml (no DTD, no entity, nothing
external) and bounded as it is read: its size before parsing, its depth and its element count
while expat reads it (an iterparse that stops at the first element too many), and at most 100
notifications (Salesforce's own limit). Namespaces are matched, prefixes never: Salesforce
writes `sf:` and `soapenv:`, but any prefix bound to the same namespace is the same element.

`SessionId` is never extracted: it is a live Salesforce session, and what is not taken out of
the parsed document cannot be logged or stored.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from chalicelib.errors import FieldError, InvalidXml, PayloadTooLarge
from chalicelib.validation.fields import SALESFORCE_ID

SOAP_ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
ENTERPRISE = "urn:sobject.enterprise.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_MESSAGE_BYTES = 1024 * 1024  # 100 notifications of a few kilobytes each, with room
MAX_NOTIFICATIONS = 100  # Salesforce sends at most 100 in one message
MAX_XML_DEPTH = 10  # Envelope, Body, notifications, Notification, sObject, field: 6, and room
MAX_ELEMENTS = 60_000  # 100 notifications of 500 fields, and room
MAX_FIELD_CHARS = 131_072  # the longest a Long Text Area field may be made
NIL = {"true", "1"}


@dataclass(frozen=True)
class Notification:
    """One record of the message: its notification `Id` (Salesforce's dedup key, the same on
    every redelivery), its sObject's type (`Contact`, `Lead`, from `xsi:type`) and its fields
    as a plain object: text ("" for an empty element), None for `xsi:nil`, an object for a
    field with fields. No sObject (a record deleted before it was sent) is no fields: its call
    is refused for what it lacks, on its own, not the whole message."""

    id: str
    object_type: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class SalesforceMessage:
    organization_id: str
    action_id: str | None
    notifications: tuple[Notification, ...]


def read_salesforce_message(raw: bytes) -> SalesforceMessage:
    root = parse_bounded(raw)
    if root.tag != f"{{{SOAP_ENVELOPE}}}Envelope":
        raise InvalidXml("the body is not a SOAP 1.1 envelope", [element_error("Envelope", root)])
    bodies = root.findall(f"{{{SOAP_ENVELOPE}}}Body")
    if len(bodies) != 1:
        raise InvalidXml("a SOAP envelope holds exactly one Body")
    found = bodies[0].findall(f"{{{OUTBOUND}}}notifications")
    if len(found) != 1:
        raise InvalidXml(
            "the SOAP body holds no Salesforce outbound message",
            [FieldError("notifications", f"one expected, in namespace {OUTBOUND}")],
        )
    outbound = found[0]
    organization_id = salesforce_id(outbound, "OrganizationId")
    action = outbound.find(f"{{{OUTBOUND}}}ActionId")
    elements = outbound.findall(f"{{{OUTBOUND}}}Notification")
    if not 1 <= len(elements) <= MAX_NOTIFICATIONS:
        raise InvalidXml(
            f"an outbound message holds 1 to {MAX_NOTIFICATIONS} notifications",
            [FieldError("Notification", f"{len(elements)} given")],
        )
    notifications = tuple(read_notification(e, n) for n, e in enumerate(elements))
    return SalesforceMessage(organization_id, text_of(action), notifications)


def parse_bounded(raw: bytes) -> Element:
    """The document's root, read by expat through defusedxml with a DTD refused outright (a
    SOAP message must not have one), stopped at MAX_XML_DEPTH or MAX_ELEMENTS."""
    from defusedxml import DefusedXmlException  # noqa: PLC0415 - only Salesforce's requests
    from defusedxml.ElementTree import ParseError, iterparse  # noqa: PLC0415

    if len(raw) > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge(f"the body is over {MAX_MESSAGE_BYTES // 1024} KiB")
    depth = elements = 0
    root: Element | None = None
    try:
        for event, element in iterparse(io.BytesIO(raw), ("start", "end"), forbid_dtd=True):
            if event == "end":
                depth -= 1
                continue
            root = element if root is None else root
            depth, elements = depth + 1, elements + 1
            if depth > MAX_XML_DEPTH or elements > MAX_ELEMENTS:
                raise InvalidXml(
                    f"the XML is deeper than {MAX_XML_DEPTH} or over {MAX_ELEMENTS} elements"
                )
    except (ParseError, DefusedXmlException, ValueError, LookupError) as err:  # LookupError:
        # an encoding Python does not know, or one that is not text (`encoding="rot13"`)
        raise InvalidXml(f"the body is not readable XML ({type(err).__name__})") from None
    if root is None:
        raise InvalidXml("the body is not readable XML (no element)")
    return root


def read_notification(element: Element, n: int) -> Notification:
    where = f"Notification[{n}]"
    notification_id = salesforce_id(element, "Id", where)
    objects = element.findall(f"{{{OUTBOUND}}}sObject")
    if len(objects) > 1:
        raise InvalidXml(
            "a notification holds one sObject",
            [FieldError(f"{where}.sObject", f"{len(objects)} given")],
        )
    if not objects:  # a record deleted before Salesforce sent it: "contains no data"
        return Notification(notification_id, "", {})
    sobject = objects[0]
    declared = sobject.get(f"{{{XSI}}}type", "")
    object_type = declared.rpartition(":")[2][:80]  # `sf:Contact`: the prefix is the sender's
    return Notification(notification_id, object_type, fields_of(sobject, f"{where}.sObject"))


def fields_of(element: Element, where: str) -> dict[str, Any]:
    """An sObject (or a field with fields, such as an address) as a plain object. Its fields
    are the enterprise namespace's elements; others are not Salesforce's and are left out. A
    field named twice is refused: which value was meant cannot be known."""
    fields: dict[str, Any] = {}
    for child in element:
        namespace, _, name = child.tag.partition("}")
        if namespace != f"{{{ENTERPRISE}" or not name:
            continue
        if name in fields:
            raise InvalidXml(
                "a field is given twice", [FieldError(f"{where}.{name[:64]}", "given twice")]
            )
        fields[name] = value_of(child, f"{where}.{name[:64]}")
    return fields


def value_of(element: Element, where: str) -> Any:
    if element.get(f"{{{XSI}}}nil", "").strip() in NIL:
        return None
    if len(element):
        return fields_of(element, where)
    text = element.text or ""
    if len(text) > MAX_FIELD_CHARS:
        raise InvalidXml(
            "a field is too long", [FieldError(where, f"over {MAX_FIELD_CHARS} characters")]
        )
    return text


def salesforce_id(parent: Element, name: str, where: str = "notifications") -> str:
    found = parent.findall(f"{{{OUTBOUND}}}{name}")
    value = text_of(found[0]) if len(found) == 1 else None
    if value is None or not SALESFORCE_ID.fullmatch(value):
        raise InvalidXml(
            f"the outbound message's {name} is missing or not a Salesforce id",
            [FieldError(f"{where}.{name}", "must be one id of 15 or 18 letters and digits")],
        )
    return value


def text_of(element: Element | None) -> str | None:
    if element is None:
        return None
    return (element.text or "").strip() or None


def element_error(expected: str, element: Element) -> FieldError:
    namespace, _, name = element.tag.rpartition("}")
    return FieldError(expected, f"found {name[:64]!r} in namespace {namespace.lstrip('{')[:100]!r}")
