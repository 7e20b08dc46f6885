"""Reading Salesforce's outbound messages (issue 22): the shapes Salesforce writes, with any
prefixes, read to the same values; everything else, however hostile, refused as InvalidXml or
PayloadTooLarge and nothing else."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.errors import InvalidXml, PayloadTooLarge
from chalicelib.validation.salesforce_message import (
    MAX_ELEMENTS,
    MAX_MESSAGE_BYTES,
    MAX_NOTIFICATIONS,
    MAX_XML_DEPTH,
    Notification,
    SalesforceMessage,
    read_salesforce_message,
)
from local.salesforce_demo import (
    ENTERPRISE,
    OUTBOUND,
    SALESFORCE_ORG,
    SALESFORCE_SAMPLE,
    SALESFORCE_SESSION,
    SOAP,
    XSI,
    salesforce_message,
)

EXPECTED = SalesforceMessage(
    SALESFORCE_ORG,
    "04k5e000000AbCdAAK",
    tuple(Notification(n, kind, dict(fields)) for n, kind, fields in SALESFORCE_SAMPLE),
)
# Encodings a declaration may name: text ones, unknown ones, and codecs that are not of text.
ENCODINGS = ["UTF-16", "utf-32", "latin-1", "x-nope", "rot13", "hex", "base64", "zlib", "idna"]
PREFIX = st.from_regex(r"[a-wyz][a-z0-9]{0,6}", fullmatch=True)  # never xml...


def test_a_contact_and_a_lead_read_as_salesforce_sent_them() -> None:
    message = read_salesforce_message(salesforce_message())
    assert message == EXPECTED
    assert [n.object_type for n in message.notifications] == ["Contact", "Lead"]
    assert message.notifications[0].fields["MobilePhone"] is None  # xsi:nil
    assert SALESFORCE_SESSION not in repr(message)  # never read, so never kept


@settings(max_examples=60, deadline=None)
@given(
    prefixes=st.fixed_dictionaries(
        {"soapenv": PREFIX, "sf": PREFIX, "xsi": PREFIX, "out": st.one_of(st.just(""), PREFIX)}
    ).filter(lambda p: len({v for v in p.values() if v}) == sum(1 for v in p.values() if v)),
    declared_on_envelope=st.booleans(),
    session=st.sampled_from([SALESFORCE_SESSION, None]),
)
def test_prefixes_and_where_namespaces_are_declared_change_nothing(
    prefixes: dict[str, str], declared_on_envelope: bool, session: str | None
) -> None:
    body = salesforce_message(
        prefixes=prefixes, declared_on_envelope=declared_on_envelope, session=session
    )
    assert read_salesforce_message(body) == EXPECTED


def test_optional_elements_may_be_missing() -> None:
    body = (
        f'<e:Envelope xmlns:e="{SOAP}"><e:Header/><e:Body><n:notifications xmlns:n="{OUTBOUND}">'
        f"<n:OrganizationId> {SALESFORCE_ORG[:15]} </n:OrganizationId>"
        f"<n:Notification><n:Id>04l5e00000KcAbC</n:Id><n:sObject>"
        f'<f:Phone xmlns:f="{ENTERPRISE}">6175551234</f:Phone>'
        f'<other xmlns="urn:not-salesforce">ignored</other>'
        f'<f:MailingAddress xmlns:f="{ENTERPRISE}"><f:city>Boston</f:city></f:MailingAddress>'
        f"</n:sObject></n:Notification></n:notifications></e:Body></e:Envelope>"
    ).encode()
    message = read_salesforce_message(body)
    assert message.action_id is None
    [notification] = message.notifications
    assert notification.object_type == ""  # no xsi:type: the fields still map
    assert notification.fields == {"Phone": "6175551234", "MailingAddress": {"city": "Boston"}}


def test_a_record_deleted_before_it_was_sent_is_a_notification_with_no_fields() -> None:
    """Salesforce: "If the record is deleted before the notification is delivered, the
    notification contains no data": no sObject, or one with nothing in it."""
    body = envelope(
        "<Notification><Id>04l5e00000KcAbCAAV</Id></Notification>"
        + contact("04l5e00000KcAbDAAV")
        + contact("04l5e00000KcAbEAAV", "<sf:Phone/>")
    )
    fields = [n.fields for n in read_salesforce_message(body).notifications]
    assert fields == [{}, {}, {"Phone": ""}]  # an empty element is "", not null (xsi:nil is)


def test_a_message_in_another_encoding_reads_the_same() -> None:
    text = salesforce_message().decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    assert read_salesforce_message(text.encode("utf-16")) == EXPECTED


def envelope(notifications: str, org: str = SALESFORCE_ORG) -> bytes:
    return (
        f'<s:Envelope xmlns:s="{SOAP}" xmlns:xsi="{XSI}"><s:Body>'
        f'<notifications xmlns="{OUTBOUND}"><OrganizationId>{org}</OrganizationId>'
        f"{notifications}</notifications></s:Body></s:Envelope>"
    ).encode()


def contact(notification_id: str = "04l5e00000KcAbCAAV", fields: str = "") -> str:
    return (
        f"<Notification><Id>{notification_id}</Id>"
        f'<sObject xsi:type="sf:Contact" xmlns:sf="{ENTERPRISE}">{fields}</sObject></Notification>'
    )


LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{n} "{("&lol" + str(n - 1 if n > 1 else "") + ";") * 10}">'.encode()
        for n in range(1, 10)
    )
    + b"]><lolz>&lol9;</lolz>"
)
HOSTILE = {
    "billion laughs": LAUGHS,
    "external entity": (
        b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + envelope(contact(fields="<sf:Phone>&x;</sf:Phone>")).split(b"?>", 1)[-1]
    ),
    "a DTD alone": b'<!DOCTYPE Envelope SYSTEM "http://127.0.0.1:9/x.dtd">' + envelope(contact()),
    "deep": envelope(contact(fields="<sf:A>" * 40 + "x" + "</sf:A>" * 40)),
    "SOAP 1.2": envelope(contact()).replace(
        SOAP.encode(), b"http://www.w3.org/2003/05/soap-envelope"
    ),
    "notifications in another namespace": envelope(contact()).replace(
        OUTBOUND.encode(), b"http://soap.sforce.com/2005/09/inbound"
    ),
    "not SOAP": b'<?xml version="1.0"?><notifications/>',
    "JSON": b'{"phone": "+16175551234"}',
    "empty": b"",
    "not well-formed": envelope(contact())[:-20],
    "no notification": envelope(""),
    "too many notifications": envelope(
        "".join(contact(f"04l5e00000Kc{n:03d}AAV") for n in range(MAX_NOTIFICATIONS + 1))
    ),
    "a field twice": envelope(contact(fields="<sf:Phone>1</sf:Phone><sf:Phone>2</sf:Phone>")),
    "no notification id": envelope(contact("")),
    "a notification id not Salesforce's": envelope(contact("04l5e00000K'; DROP--")),
    "two ids": envelope(contact().replace("<Id>", "<Id>04l5e00000KcAbCAAV</Id><Id>", 1)),
    "two sObjects": envelope(contact().replace("</Notification>", "<sObject/></Notification>")),
    "an org id not Salesforce's": envelope(contact(), org="00D-not-an-id"),
    "a field too long": envelope(contact(fields=f"<sf:Phone>{'1' * 140_000}</sf:Phone>")),
    "two bodies": envelope(contact()).replace(b"</s:Body>", b"</s:Body><s:Body/>"),
    "an unknown encoding": b'<?xml version="1.0" encoding="x-nope"?>' + envelope(contact()),
    "a codec not of text": b'<?xml version="1.0" encoding="rot13"?>' + envelope(contact()),
}


# Why each is refused: the words of its message, and the field named, if any.
REASONS = {
    "billion laughs": ("DTDForbidden", None),
    "external entity": ("DTDForbidden", None),
    "a DTD alone": ("DTDForbidden", None),
    "deep": ("deeper than", None),
    "SOAP 1.2": ("not a SOAP 1.1 envelope", "Envelope"),
    "notifications in another namespace": ("no Salesforce outbound message", "notifications"),
    "not SOAP": ("not a SOAP 1.1 envelope", "Envelope"),
    "JSON": ("not readable XML", None),
    "empty": ("not readable XML", None),
    "not well-formed": ("not readable XML", None),
    "no notification": ("1 to 100 notifications", "Notification"),
    "too many notifications": ("1 to 100 notifications", "Notification"),
    "a field twice": ("given twice", "Notification[0].sObject.Phone"),
    "no notification id": ("Id is missing", "Notification[0].Id"),
    "a notification id not Salesforce's": ("not a Salesforce id", "Notification[0].Id"),
    "two ids": ("not a Salesforce id", "Notification[0].Id"),
    "two sObjects": ("one sObject", "Notification[0].sObject"),
    "an org id not Salesforce's": ("OrganizationId", "notifications.OrganizationId"),
    "a field too long": ("too long", "Notification[0].sObject.Phone"),
    "two bodies": ("exactly one Body", None),
    "an unknown encoding": ("LookupError", None),
    "a codec not of text": ("LookupError", None),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_xml_is_refused_naming_what_is_wrong(name: str) -> None:
    words, field = REASONS[name]
    with pytest.raises(InvalidXml) as refused:
        read_salesforce_message(HOSTILE[name])
    assert refused.value.status == 400
    assert words in refused.value.message
    assert [d.field for d in refused.value.details][:1] == ([field] if field else [])


def test_a_message_over_the_limit_is_refused_before_it_is_read() -> None:
    huge = envelope(contact(fields="<sf:Note>" + "x" * MAX_MESSAGE_BYTES + "</sf:Note>"))
    with pytest.raises(PayloadTooLarge):
        read_salesforce_message(huge)


def test_elements_are_counted_as_they_are_read() -> None:
    """Well under 1 MiB, flat: 60,001 elements are refused while expat reads them."""
    flat = envelope(contact(fields="<sf:A/>" * MAX_ELEMENTS))
    assert len(flat) < MAX_MESSAGE_BYTES
    with pytest.raises(InvalidXml, match="elements"):
        read_salesforce_message(flat)
    fewer = envelope(contact(fields="".join(f"<sf:F{n}/>" for n in range(500))))
    assert len(read_salesforce_message(fewer).notifications[0].fields) == 500


def test_depth_is_bounded_where_salesforce_never_goes() -> None:
    """Six levels to a field, and room for a compound field: deeper is refused."""
    fields = "<sf:A>" * (MAX_XML_DEPTH - 5) + "x" + "</sf:A>" * (MAX_XML_DEPTH - 5)
    read_salesforce_message(envelope(contact(fields=fields)))
    deeper = "<sf:A>" * (MAX_XML_DEPTH - 4) + "x" + "</sf:A>" * (MAX_XML_DEPTH - 4)
    with pytest.raises(InvalidXml):
        read_salesforce_message(envelope(contact(fields=deeper)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_change_to_a_message_is_read_or_refused_never_anything_else(
    data: st.DataObject,
) -> None:
    """Bytes cut, replaced or inserted anywhere in a real message (or any bytes at all): the
    reader gives a message or InvalidXml/PayloadTooLarge, never another exception."""
    original = salesforce_message()
    start = data.draw(st.integers(0, len(original)))
    end = data.draw(st.integers(start, min(len(original), start + 40)))
    inserted = data.draw(
        st.one_of(
            st.binary(max_size=20),
            st.sampled_from(
                [b"<", b">", b"&", b"&lol;", b"<!DOCTYPE a>", b"\x00", b"\xff\xfe", b"]]>", b'"']
                + [f'<?xml version="1.0" encoding="{e}"?>'.encode() for e in ENCODINGS]
            ),
        )
    )
    body = data.draw(st.sampled_from([original[:start] + inserted + original[end:], inserted]))
    try:
        message = read_salesforce_message(body)
    except (InvalidXml, PayloadTooLarge):
        return
    assert isinstance(message, SalesforceMessage)
    assert 1 <= len(message.notifications) <= MAX_NOTIFICATIONS
