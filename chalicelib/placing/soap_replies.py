"""What a Salesforce outbound message is answered: a SOAP 1.1 envelope, since Salesforce keeps
redelivering a message until an envelope says `<Ack>true</Ack>` (a bare 200 is not enough).

A refusal is a SOAP fault: `soapenv:Client` for a request at fault (4xx), `soapenv:Server` for a
passing fault (5xx), with the HTTP status and the stable code every other route answers, so an
admin reading Salesforce's outbound message queue sees the same words as the API's callers.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape, quoteattr

from chalicelib.errors import BridgeError

XML_CONTENT_TYPE = "text/xml; charset=utf-8"
ENVELOPE_START = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    "<soapenv:Body>"
)
ENVELOPE_END = "</soapenv:Body></soapenv:Envelope>"
ACKNOWLEDGED = (
    ENVELOPE_START
    + '<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">'
    + "<Ack>true</Ack></notificationsResponse>"
    + ENVELOPE_END
)
ERRORS_NAMESPACE = "urn:fuse-bridge:errors"
MAX_SHOWN_DETAILS = 10
# Characters XML 1.0 cannot carry at all, even escaped.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    return escape(NOT_XML.sub("?", text))


def soap_fault(err: BridgeError) -> str:
    """The fault for `err`: its code and message in `faultstring` (what Salesforce shows), and
    the code and the fields at fault in `detail`, for a program."""
    faultcode = "soapenv:Client" if err.status < 500 else "soapenv:Server"
    error = err.body()["error"]
    problems = "".join(
        f"<problem field={quoteattr(NOT_XML.sub('?', d['field']))}>"
        f"{xml_text(d['message'])}</problem>"
        for d in error["details"][:MAX_SHOWN_DETAILS]
    )
    first = error["details"][0] if error["details"] else None
    shown = f" ({first['field']}: {first['message']})" if first else ""
    faultstring = xml_text(f"{err.code}: {error['message']}{shown}")
    return (
        ENVELOPE_START
        + "<soapenv:Fault>"
        + f"<faultcode>{faultcode}</faultcode>"
        + f"<faultstring>{faultstring}</faultstring>"
        + f'<detail><error xmlns="{ERRORS_NAMESPACE}"><code>{err.code}</code>'
        + f"<status>{err.status}</status>{problems}</error></detail>"
        + "</soapenv:Fault>"
        + ENVELOPE_END
    )
