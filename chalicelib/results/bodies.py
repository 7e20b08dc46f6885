"""Reading a result body, by its encoding, into plain fields: JSON, a form with PHP-style nested
keys, multipart, or Fuse's XML. Pure, and bounded in every direction.

Fuse documents the shape of its result (`call_details`) but not its encoding, and a genuine
callback must always be stored: so every failure here is an UnreadableResult whose message is
kept as the callback's `parse_error`, never a crash. Bounds: the JSON nesting limit of
validation/json_body.py; forms' PHP keys as validation/form_body.py reads them (at most
MAX_KEY_DEPTH deep, repeated `a[]=` keys in linear time); at most MAX_MULTIPART_PARTS parts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from chalicelib.errors import BridgeError
from chalicelib.validation.form_body import nest_php_keys
from chalicelib.validation.json_body import MAX_DEPTH, read_json

MAX_JSON_BYTES = 10 * 1024 * 1024  # API Gateway's own limit: anything it passes is read
MAX_MULTIPART_PARTS = 1000  # read; a form's pairs are read in linear time, all


class UnreadableResult(ValueError):
    """The body could not be read; the message says why (stored beside the raw body)."""


def read_fields(raw: bytes, content_type: str) -> dict[str, Any]:
    """The fields of a result body, by its Content-Type (JSON when it names none)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not raw.strip():
        raise UnreadableResult("the body is empty")
    if media_type == "application/x-www-form-urlencoded":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UnreadableResult("the form body is not UTF-8") from None
        return with_json_events(nest_php_keys(parse_qsl(text, keep_blank_values=True)))
    if media_type == "multipart/form-data":
        return with_json_events(nest_php_keys(multipart_fields(raw, content_type)))
    if media_type in ("application/xml", "text/xml") or raw.lstrip()[:1] == b"<":
        return xml_fields(raw)
    return json_fields(raw, media_type)


def json_fields(raw: bytes, media_type: str) -> dict[str, Any]:
    """The JSON reader callers' bodies go through (size, UTF-8, depth, surrogates), its
    refusal kept as this result's parse_error."""
    try:
        data = read_json(raw, MAX_JSON_BYTES)
    except BridgeError as err:  # InvalidJson, PayloadTooLarge
        raise UnreadableResult(
            f"the JSON body cannot be read (Content-Type {media_type or 'none'}): {err.message}"
        ) from None
    if not isinstance(data, dict):
        raise UnreadableResult("the JSON body is not an object")
    return data


def multipart_fields(raw: bytes, content_type: str) -> list[tuple[str, str]]:
    # Imported here: the email package costs ~12 ms of every cold start, and only a multipart
    # callback (not the usual JSON one, nor POST /calls) needs it.
    from email.parser import BytesParser  # noqa: PLC0415
    from email.policy import HTTP  # noqa: PLC0415

    try:
        header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    except UnicodeEncodeError:
        raise UnreadableResult("the multipart Content-Type is not Latin-1 text") from None
    message = BytesParser(policy=HTTP).parsebytes(header + raw)
    if not message.is_multipart():
        raise UnreadableResult("the multipart body has no parts (is the boundary right?)")
    fields = []
    for part in list(message.iter_parts())[:MAX_MULTIPART_PARTS]:
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        fields.append((str(name), payload.decode("utf-8", errors="replace")))
    return fields


def with_json_events(fields: dict[str, Any]) -> dict[str, Any]:
    """A form may carry `events` as one JSON string: read it, within the same bounds."""
    events = fields.get("events")
    if isinstance(events, str) and events.lstrip()[:1] == "[":
        try:
            parsed = json_fields(b'{"events": ' + events.encode() + b"}", "form field")
        except UnreadableResult:
            return fields
        return {**fields, "events": parsed["events"]}
    return fields


def xml_fields(raw: bytes) -> dict[str, Any]:
    """Fuse's XML form: `<result><call_details>...<events><item>...</item></events>`.

    defusedxml, not the standard parser: a result body is someone else's input, and entity
    expansion or external entities must not be able to reach us. Imported only for XML."""
    from xml.etree.ElementTree import Element  # noqa: PLC0415

    from defusedxml import DefusedXmlException  # noqa: PLC0415
    from defusedxml.ElementTree import ParseError, fromstring  # noqa: PLC0415

    try:
        root: Element = fromstring(raw)
    except (ParseError, DefusedXmlException, ValueError) as err:
        raise UnreadableResult(f"the XML body cannot be read ({type(err).__name__})") from None

    def to_value(element: Element, depth: int) -> Any:
        children = list(element)
        if not children or depth >= MAX_DEPTH:
            return (element.text or "").strip()
        if all(child.tag == "item" for child in children):
            return [to_value(child, depth + 1) for child in children]
        return {child.tag: to_value(child, depth + 1) for child in children}

    fields = to_value(root, 0)
    if not isinstance(fields, dict):
        raise UnreadableResult("the XML body holds no fields")
    return fields
