"""The demo's Salesforce org: its Outbound Messaging integration and messages as Salesforce
writes them. `make local` seeds and prints them, the tests and the bench's figure 11 send them.

Apart from local/demo.py, which every cold start the bench measures imports: these are only
for whoever sends Salesforce's messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

# A Salesforce org's Outbound Messaging (docs/integrations.md): its token goes in the endpoint
# URL, its org id in every message. SALESFORCE_SESSION is a distinctive stand-in for the live
# session id Salesforce may send, which the bridge must never log or keep.
SALESFORCE_TOKEN = "local-salesforce-token"
SALESFORCE_ORG = "00D5e000000AbCdEAF"
SALESFORCE_SESSION = "00D5e000000AbCd!AQ4AQLocalSalesforceSessionNeverLogged"
SALESFORCE_MAPPING = {
    "phone": "Phone || MobilePhone",
    "reference": "Id",
    "variables": "{first_name: FirstName}",
}

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
ENTERPRISE = "urn:sobject.enterprise.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
# A Contact and a Lead as Salesforce sends them: (notification Id, sObject type, its fields).
SALESFORCE_SAMPLE = (
    (
        "04l5e00000KcAbCAAV",
        "Contact",
        {
            "Id": "0035e00000B1xYzAAJ",
            "FirstName": "Ada",
            "Phone": "(617) 555-1234",
            "MobilePhone": None,
        },
    ),
    (
        "04l5e00000KcAbDAAV",
        "Lead",
        {
            "Id": "00Q5e00000C2wXyEAK",
            "FirstName": "Grace",
            "Company": "Navy",
            "Phone": "+1 617 555 1235",
        },
    ),
)


def salesforce_message(
    notifications: Sequence[tuple[str, str, Mapping[str, str | None]]] = SALESFORCE_SAMPLE,
    *,
    org: str = SALESFORCE_ORG,
    session: str | None = SALESFORCE_SESSION,
    prefixes: Mapping[str, str] | None = None,
    declared_on_envelope: bool = False,
) -> bytes:
    """An outbound message as Salesforce writes it (its WSDL's shape: `soapenv:`, `sf:` and a
    default namespace on `notifications`), or with other `prefixes` (keys soapenv, out, sf,
    xsi; an empty `out` is the default namespace) and every namespace declared on the
    Envelope; `session` None is `<SessionId xsi:nil="true"/>`, as with Send Session ID off."""
    p = {"soapenv": "soapenv", "out": "", "sf": "sf", "xsi": "xsi", **(prefixes or {})}
    o = f"{p['out']}:" if p["out"] else ""
    out_ns = f'xmlns{":" + p["out"] if p["out"] else ""}="{OUTBOUND}"'
    sf_ns = f'xmlns:{p["sf"]}="{ENTERPRISE}"'
    envelope_ns = f'xmlns:{p["soapenv"]}="{SOAP}" xmlns:{p["xsi"]}="{XSI}"'
    if declared_on_envelope:
        envelope_ns += f" {out_ns} {sf_ns}"
    nil = f'{p["xsi"]}:nil="true"'

    def field(name: str, value: str | None) -> str:
        tag = f"{p['sf']}:{name}"
        return f"<{tag} {nil}/>" if value is None else f"<{tag}>{escape(value)}</{tag}>"

    def notification(notification_id: str, kind: str, fields: Mapping[str, str | None]) -> str:
        declared = "" if declared_on_envelope else f" {sf_ns}"
        return (
            f"<{o}Notification><{o}Id>{notification_id}</{o}Id>"
            f'<{o}sObject {p["xsi"]}:type="{p["sf"]}:{kind}"{declared}>'
            + "".join(field(name, value) for name, value in fields.items())
            + f"</{o}sObject></{o}Notification>"
        )

    session_element = (
        f"<{o}SessionId {nil}/>" if session is None else f"<{o}SessionId>{session}</{o}SessionId>"
    )
    instance = f"https://example.my.salesforce.com/services/Soap/c/62.0/{org[:15]}"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{p["soapenv"]}:Envelope {envelope_ns}>'
        f"<{p['soapenv']}:Body><{o}notifications{'' if declared_on_envelope else ' ' + out_ns}>"
        f"<{o}OrganizationId>{org}</{o}OrganizationId>"
        f"<{o}ActionId>04k5e000000AbCdAAK</{o}ActionId>{session_element}"
        f"<{o}EnterpriseUrl>{instance}</{o}EnterpriseUrl>"
        f"<{o}PartnerUrl>{instance.replace('/c/', '/u/')}</{o}PartnerUrl>"
        + "".join(notification(*n) for n in notifications)
        + f"</{o}notifications></{p['soapenv']}:Body></{p['soapenv']}:Envelope>"
    ).encode()


# Seeded by `make local` and by the tests and figures of Salesforce's messages, apart from the
# demo's: every parameter more is walked on every cold start, and the cold figures compare
# like with like.
SALESFORCE_DEMO_PARAMETERS = {
    "integrations/salesforce-demo/auth": "salesforce",
    "integrations/salesforce-demo/token": SALESFORCE_TOKEN,
    "integrations/salesforce-demo/org_ids": SALESFORCE_ORG,
    "integrations/salesforce-demo/mapping": json.dumps(SALESFORCE_MAPPING),
}
