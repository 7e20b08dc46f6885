"""Salesforce Outbound Messaging (issue 22): a SOAP message of notifications on POST
/hooks/{integration}, one call each keyed by its notification Id, acknowledged only when every
notification is decided, a SOAP fault (which Salesforce redelivers) otherwise.

Every test counts what reached the simulator: a redelivery never rings a phone again."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client
from defusedxml.ElementTree import fromstring
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.config.dependencies import Dependencies, build_dependencies, set_dependencies
from chalicelib.config.settings import load_settings
from chalicelib.errors import (
    BridgeError,
    FuseRejectedRequest,
    FuseUnavailable,
    NoTimeLeft,
    StoreUnavailable,
)
from chalicelib.integrations.signatures import WebhookRequest
from chalicelib.placing.salesforce import place_salesforce_message
from chalicelib.store.calls import CallStore
from infra.parameters import put_parameters
from local.aws_setup import create_dispatch_queue
from local.fuse_sim import FuseSimulator
from local.salesforce_demo import (
    SALESFORCE_DEMO_PARAMETERS,
    SALESFORCE_ORG,
    SALESFORCE_SAMPLE,
    SALESFORCE_SESSION,
    SALESFORCE_TOKEN,
    salesforce_message,
)
from local.send_hook import SOAP_HEADERS
from tests.helpers import (
    ADMIN_TOKEN,
    PREFIX,
    PUBLIC_BASE_URL,
    TABLE,
    Aws,
    bridge_environment,
    broken_client,
    calls_by_phone,
    consume,
    emitted,
    get,
    list_requests,
    post_call,
)

HOOK = f"/hooks/salesforce-demo?api_key={SALESFORCE_TOKEN}"
XML = SOAP_HEADERS  # what Salesforce sends, as local/send_hook.py sends it
OUT = "{http://soap.sforce.com/2005/09/outbound}"
ENV = "{http://schemas.xmlsoap.org/soap/envelope/}"
ERRORS = "{urn:fuse-bridge:errors}"
CONTACT, LEAD = SALESFORCE_SAMPLE
DISPATCH = "fuse-bridge-test-dispatch"


@pytest.fixture(autouse=True)
def salesforce_demo(aws: Aws) -> None:
    """The demo's Salesforce integration (make local seeds it too)."""
    put_parameters(aws.ssm, PREFIX, SALESFORCE_DEMO_PARAMETERS)


def post_message(client: Client, body: bytes, path: str = HOOK) -> Any:
    return client.http.post(path, headers=XML, body=body)


def acknowledged(response: Any) -> bool:
    """True for `<Ack>true</Ack>`; False for a SOAP fault (any other answer fails the test)."""
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    body = fromstring(response.body).find(f"{ENV}Body")
    assert body is not None
    ack = body.find(f"{OUT}notificationsResponse/{OUT}Ack")
    if ack is not None:
        assert (response.status_code, ack.text) == (200, "true")
        return True
    assert body.find(f"{ENV}Fault") is not None, response.body
    assert response.status_code >= 400
    return False


def fault_of(response: Any) -> tuple[str, str, str]:
    """(faultcode, the stable code, faultstring) of a SOAP fault."""
    assert not acknowledged(response)
    fault = fromstring(response.body).find(f"{ENV}Body/{ENV}Fault")
    assert fault is not None
    code = fault.find(f"detail/{ERRORS}error/{ERRORS}code")
    assert code is not None
    return fault.findtext("faultcode", ""), code.text or "", fault.findtext("faultstring", "")


def notification(n: int, **fields: str | None) -> tuple[str, str, dict[str, str | None]]:
    return (f"04l5e00000Kc{n:04d}AV", "Contact", {"Id": f"0035e00000B1{n:04d}AJ", **fields})


def read_by_reference(client: Client, reference: str, token: str = SALESFORCE_TOKEN) -> Any:
    listed = json.loads(get(client, f"/calls?reference={reference}", token).body)
    [call] = listed["calls"]
    return call


def table_items(aws: Aws) -> list[dict[str, Any]]:
    return aws.dynamodb.scan(TableName=TABLE)["Items"]


def test_a_contact_and_a_lead_are_two_calls_and_a_redelivery_rings_no_one(
    client: Client, fuse: FuseSimulator
) -> None:
    assert acknowledged(post_message(client, salesforce_message()))
    assert calls_by_phone(fuse) == {"tel:+16175551234": 1, "tel:+16175551235": 1}
    assert acknowledged(post_message(client, salesforce_message()))  # Salesforce sends it again
    assert len(fuse.queue_requests()) == 2
    # The integration's token reads its own calls (the record's id is the reference)...
    call = read_by_reference(client, CONTACT[2]["Id"])
    assert call["request"]["variables"] == {"first_name": "Ada"}
    assert call["status"] == "queued"
    # ...and places calls only by its org's messages, not on POST /calls.
    assert post_call(client, {"phone": "+16175551299"}, token=SALESFORCE_TOKEN).status_code == 401


def test_a_redelivery_with_other_values_keeps_the_first_request(
    client: Client, fuse: FuseSimulator
) -> None:
    """Salesforce sends a record as it is when it sends: the first request stands."""
    assert acknowledged(post_message(client, salesforce_message([CONTACT])))
    changed = (CONTACT[0], CONTACT[1], {**CONTACT[2], "Phone": "+1 617 555 1299"})
    assert acknowledged(post_message(client, salesforce_message([changed])))
    assert calls_by_phone(fuse) == {"tel:+16175551234": 1}
    assert read_by_reference(client, CONTACT[2]["Id"])["request"]["phone"] == "+16175551234"


def test_salesforce_number_and_checkbox_fields_map_as_their_values(
    client: Client, aws: Aws, fuse: FuseSimulator
) -> None:
    """Salesforce writes a Number field as `2.0` and a checkbox as `true`."""
    mapping = {"phone": "Phone", "attempts": "Attempts__c", "pci": "Pci__c", "reference": "Id"}
    put_parameters(
        aws.ssm,
        PREFIX,
        {
            "integrations/sf-numbers/auth": "salesforce",
            "integrations/sf-numbers/token": "sf-numbers-token",
            "integrations/sf-numbers/org_ids": SALESFORCE_ORG,
            "integrations/sf-numbers/mapping": json.dumps(mapping),
        },
    )
    fields = {"Phone": "+16175551234", "Attempts__c": "2.0", "Pci__c": "true"}
    body = salesforce_message([notification(5, **fields)])
    assert acknowledged(post_message(client, body, "/hooks/sf-numbers?api_key=sf-numbers-token"))
    call = read_by_reference(client, "0035e00000B10005AJ", ADMIN_TOKEN)
    assert (call["request"]["attempts"], call["request"]["pci"]) == (2, True)
    half = salesforce_message([notification(7, **{**fields, "Attempts__c": "2.5"})])
    assert acknowledged(post_message(client, half, "/hooks/sf-numbers?api_key=sf-numbers-token"))
    refused = read_by_reference(client, "0035e00000B10007AJ", ADMIN_TOKEN)
    assert refused["error"]["details"][0]["field"] == "attempts (from Attempts__c)"


def test_a_refused_notification_is_acknowledged_kept_and_counted_never_retried(
    client: Client, fuse: FuseSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad phone, and a record deleted before Salesforce sent it (its sObject holds no
    fields), beside a good one: the good one rings, the others are kept as rejected, readable
    and counted, and the message is acknowledged (Salesforce would retry for 24 hours)."""
    message = salesforce_message(
        [notification(1, Phone="+16175551234"), notification(2, Phone="call me"), notification(3)]
    )
    capsys.readouterr()
    assert acknowledged(post_message(client, message))
    assert len(fuse.queue_requests()) == 1
    rejected = read_by_reference(client, "0035e00000B10002AJ")
    assert rejected["status"] == "rejected"
    assert rejected["error"]["code"] == "validation_failed"
    assert rejected["error"]["details"][0]["field"] == "phone (from Phone || MobilePhone)"
    assert read_by_reference(client, "0035e00000B10003AJ")["status"] == "rejected"
    counted = [m for m in emitted(capsys.readouterr().out) if m["name"] == "CallsRejected"]
    assert [m["reason"] for m in counted] == ["validation_failed", "validation_failed"]
    assert acknowledged(post_message(client, message))  # again: answered, not counted again
    assert len(fuse.queue_requests()) == 1
    assert not [m for m in emitted(capsys.readouterr().out) if m["name"] == "CallsRejected"]


def test_fuse_down_is_a_fault_and_the_redelivery_places_only_the_rest(
    client: Client, deps: Dependencies, fuse: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_call = deps.fuse.queue_call

    def down_for_the_lead(credentials: Any, campaign: Any, fields: Any, **kwargs: Any) -> Any:
        if "+16175551235" in json.dumps(fields):
            raise FuseUnavailable("Fuse answered 500")
        return queue_call(credentials, campaign, fields, **kwargs)

    monkeypatch.setattr(deps.fuse, "queue_call", down_for_the_lead)
    answer = post_message(client, salesforce_message())
    faultcode, code, text = fault_of(answer)
    assert (answer.status_code, faultcode, code) == (503, "soapenv:Server", "fuse_unavailable")
    assert "1 of 2 notifications not placed yet" in text
    assert calls_by_phone(fuse) == {"tel:+16175551234": 1}

    monkeypatch.setattr(deps.fuse, "queue_call", queue_call)  # Fuse is back; Salesforce retries
    assert acknowledged(post_message(client, salesforce_message()))
    assert calls_by_phone(fuse) == {"tel:+16175551234": 1, "tel:+16175551235": 1}


def place_directly(
    deps: Dependencies, body: bytes, remaining_ms: Callable[[], int] = lambda: 30_000
) -> Any:
    """The door itself, as app.py calls it (by default with a whole invocation's time): its
    outcome, or the code of the fault it raised."""
    request = WebhookRequest(
        url=f"{PUBLIC_BASE_URL}{HOOK}",
        headers={"content-type": "text/xml"},
        query={"api_key": [SALESFORCE_TOKEN]},
        body=body,
    )
    try:
        return place_salesforce_message(
            "salesforce-demo",
            request,
            PUBLIC_BASE_URL,
            deps.parameters.get(),
            deps,
            remaining_ms=remaining_ms,
        )
    except NoTimeLeft as err:
        return f"{err.code}: {err.message}"
    except BridgeError as err:
        return err.code


@pytest.mark.usefixtures("atomic_dynamodb")
def test_a_redelivery_with_other_values_while_the_first_is_placed_is_not_acknowledged(
    deps: Dependencies, fuse: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first delivery is with Fuse when a redelivery with another phone comes: the
    redelivery must not be acknowledged on the first's behalf, since the first may still fail
    (here Fuse is down, and there is no dispatch queue to wait in): it is a fault, and the
    delivery after places the call."""
    inside, go_on = threading.Event(), threading.Event()

    def slow_then_down(*args: Any, **kwargs: Any) -> Any:
        inside.set()
        go_on.wait(10)
        raise FuseUnavailable("Fuse answered 500")

    monkeypatch.setattr(deps.fuse, "queue_call", slow_then_down)
    first: list[Any] = []
    thread = threading.Thread(
        target=lambda: first.append(place_directly(deps, salesforce_message([CONTACT])))
    )
    thread.start()
    assert inside.wait(10)
    changed = (CONTACT[0], CONTACT[1], {**CONTACT[2], "Phone": "+1 617 555 1299"})
    assert place_directly(deps, salesforce_message([changed])) == "idempotency_in_progress"
    go_on.set()
    thread.join(10)
    assert first == ["fuse_unavailable"]
    monkeypatch.undo()  # Fuse is back; Salesforce sends the message again, as it is now
    outcome = place_directly(deps, salesforce_message([changed]))
    assert (outcome.placed, outcome.rejected) == (1, 0)
    assert calls_by_phone(fuse) == {"tel:+16175551299": 1}


def test_a_refusal_whose_key_could_not_be_freed_is_not_acknowledged(
    deps: Dependencies, fuse: FuseSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fuse refuses the call for good, but DynamoDB cannot free its key: the rejection cannot
    be kept under it, so the message is not acknowledged as if it were."""

    def refuses(*args: Any, **kwargs: Any) -> Any:
        raise FuseRejectedRequest("Fuse rejected the call: invalid caller id")

    def store_down(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailable("DynamoDB is throttling")

    monkeypatch.setattr(deps.fuse, "queue_call", refuses)
    monkeypatch.setattr(deps.store, "release", store_down)
    assert place_directly(deps, salesforce_message([CONTACT])) == "idempotency_in_progress"


def test_a_record_naming_a_campaign_its_integration_may_not_use_is_refused_for_good(
    client: Client, aws: Aws, fuse: FuseSimulator
) -> None:
    mapping = {"phone": "Phone", "reference": "Id", "campaign": "Campaign__c"}
    put_parameters(
        aws.ssm,
        PREFIX,
        {
            "integrations/salesforce-demo/campaigns": "default",
            "integrations/salesforce-demo/mapping": json.dumps(mapping),
        },
    )
    body = salesforce_message([notification(8, Phone="+16175551234", Campaign__c="reminders")])
    assert acknowledged(post_message(client, body))
    kept = read_by_reference(client, "0035e00000B10008AJ")
    assert (kept["status"], kept["error"]["code"]) == ("rejected", "campaign_not_allowed")
    assert fuse.queue_requests() == []


def test_a_store_out_of_reach_is_a_fault_and_nothing_rings(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    deps.store = CallStore(TABLE, lambda: broken_client("dynamodb"))
    answer = post_message(client, salesforce_message())
    assert fault_of(answer)[:2] == ("soapenv:Server", "store_unavailable")
    assert fuse.queue_requests() == []


def test_a_message_whose_time_runs_out_is_a_fault_and_its_redelivery_does_the_rest(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    times = iter([30_000, 1_000])  # time for the first notification, not for the second
    ran_out = place_directly(deps, salesforce_message(), lambda: next(times))
    assert ran_out.startswith("no_time_left: 1 of 2")
    assert len(fuse.queue_requests()) == 1
    outcome = place_directly(deps, salesforce_message())
    assert (outcome.placed, outcome.rejected) == (2, 0)
    assert len(fuse.queue_requests()) == 2


def test_only_the_configured_org_with_the_token_is_heard(
    client: Client, aws: Aws, fuse: FuseSimulator
) -> None:
    other_org = salesforce_message(org="00D5e000000ZzZzEAF")
    lowered = salesforce_message(org=SALESFORCE_ORG.lower())  # ids are case-sensitive
    unknown = "/hooks/salesforce-nobody?api_key=" + SALESFORCE_TOKEN
    for path, body in [
        (HOOK, other_org),
        (HOOK, lowered),
        ("/hooks/salesforce-demo?api_key=wrong", salesforce_message()),
        ("/hooks/salesforce-demo", salesforce_message()),
        (HOOK + "&api_key=" + SALESFORCE_TOKEN, salesforce_message()),
        (unknown, salesforce_message()),
    ]:
        answer = post_message(client, body, path)
        assert answer.status_code == 401, path
        assert fault_of(answer)[:2] == ("soapenv:Client", "unauthorized")
    assert fuse.queue_requests() == []
    assert table_items(aws) == []
    short = salesforce_message(org=SALESFORCE_ORG[:15])  # the 15-character form is the same org
    assert acknowledged(post_message(client, short))


HOSTILE = {
    "entities": (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<l>&b;</l>",
        400,
    ),
    "huge": (salesforce_message().replace(b"Ada", b"A" * (2 * 1024 * 1024)), 413),
    "deep": (b"<a>" * 5000 + b"</a>" * 5000, 400),
    "JSON said to be XML": (b'{"phone": "+16175551234"}', 400),
    "an encoding Python does not know": (b'<?xml version="1.0" encoding="x-nope"?><a/>', 400),
    "an encoding that is not text": (b'<?xml version="1.0" encoding="rot13"?><a/>', 400),
    "SOAP 1.2": (
        salesforce_message().replace(
            b"http://schemas.xmlsoap.org/soap/envelope/", b"http://www.w3.org/2003/05/soap-envelope"
        ),
        400,
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_xml_is_a_client_fault_and_places_nothing(
    name: str, client: Client, aws: Aws, fuse: FuseSimulator
) -> None:
    body, status = HOSTILE[name]
    answer = post_message(client, body)
    assert answer.status_code == status
    assert fault_of(answer)[0] == "soapenv:Client"
    assert fuse.queue_requests() == []
    assert table_items(aws) == []


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=st.binary(max_size=300))
def test_any_bytes_are_answered_with_a_fault_never_a_5xx(client: Client, body: bytes) -> None:
    answer = post_message(client, body)
    assert answer.status_code in {400, 413}
    assert fault_of(answer)[0] == "soapenv:Client"


def test_json_to_salesforce_and_xml_to_another_kind_are_415(
    client: Client, crm: None, fuse: FuseSimulator
) -> None:
    json_body = client.http.post(
        HOOK, headers={"Content-Type": "application/json"}, body=b'{"phone": "+16175551234"}'
    )
    assert json_body.status_code == 415
    assert json.loads(json_body.body)["error"]["code"] == "unsupported_media_type"
    answer = post_message(client, salesforce_message(), "/hooks/form-tool?api_key=form-tool-token")
    assert answer.status_code == 415
    assert fault_of(answer)[1] == "unsupported_media_type"  # asked in SOAP, answered in SOAP
    signed = post_message(client, salesforce_message(), "/hooks/hubspot-demo")
    assert signed.status_code == 401  # a signed kind: this XML carries no HubSpot signature
    assert fuse.queue_requests() == []


def test_the_session_id_is_never_logged_stored_or_answered(
    client: Client, aws: Aws, bridge_logs: Any
) -> None:
    message = salesforce_message([CONTACT, notification(9, Phone="not a phone")])
    answer = post_message(client, message)
    assert acknowledged(answer)
    secret = SALESFORCE_SESSION.split("!")[1]
    assert secret not in answer.body.decode()
    assert secret not in bridge_logs.getvalue()
    assert len(table_items(aws)) > 2  # the call, its rejected neighbour, and what they keep
    assert secret not in json.dumps(table_items(aws))
    admin = json.loads(get(client, "/calls?reference=0035e00000B10009AJ", ADMIN_TOKEN).body)
    assert secret not in json.dumps(admin)


@pytest.fixture
def dispatching(client: Client, aws: Aws, fuse: FuseSimulator) -> Iterator[Dependencies]:
    """The bridge paced as deployed: a dispatch queue, 2 single queues a second (set after the
    test client's own collaborators, which it replaces)."""
    create_dispatch_queue(boto3.client("sqs"), DISPATCH)
    environment = bridge_environment(fuse.url, DISPATCH_QUEUE=DISPATCH, FUSE_QUEUE_RATE="2")
    dependencies = build_dependencies(load_settings(environment))
    set_dependencies(dependencies)
    yield dependencies
    set_dependencies(None)


@pytest.mark.slow
def test_a_message_of_100_goes_to_fuse_in_bulks_not_100_single_queues(
    client: Client, dispatching: Dependencies, fuse: FuseSimulator
) -> None:
    fuse.queue_rate_limit = 2  # Plum's warning, as the simulator keeps it
    message = salesforce_message(
        [notification(n, Phone=f"+1617555{n:04d}", FirstName=f"N{n}") for n in range(100)]
    )
    assert acknowledged(post_message(client, message))
    assert fuse.queue_requests() == []  # every notification waits for a bulk
    assert read_by_reference(client, "0035e00000B10042AJ")["status"] == "waiting"
    assert consume(DISPATCH, "dispatch_calls", batch_size=100) == 100
    bulks = list_requests(fuse)
    assert 1 <= len(bulks) <= 2
    assert calls_by_phone(fuse) == Counter({f"tel:+1617555{n:04d}": 1 for n in range(100)})
    assert acknowledged(post_message(client, message))  # Salesforce sends it again
    assert consume(DISPATCH, "dispatch_calls", batch_size=100) == 0
    assert len(list_requests(fuse)) == len(bulks)
    assert fuse.queue_requests() == []
    assert fuse.stats()["single_queues_refused"] == 0
    assert read_by_reference(client, "0035e00000B10042AJ")["status"] == "queued"


def test_fuse_down_as_deployed_is_acknowledged_and_the_calls_wait(
    client: Client, dispatching: Dependencies, fuse: FuseSimulator
) -> None:
    """With a dispatch queue, Fuse failing is not Salesforce's to retry: the calls are accepted
    and wait for a bulk, so the message is acknowledged and leaves Salesforce's queue."""
    fuse.fail_with = (500, "Internal Server Error")
    assert acknowledged(post_message(client, salesforce_message([CONTACT])))
    assert len(fuse.queue_requests()) == 1  # tried alone once, refused: the breaker shuts
    assert read_by_reference(client, CONTACT[2]["Id"])["status"] == "waiting"
    fuse.fail_with = None
    assert acknowledged(post_message(client, salesforce_message([CONTACT, LEAD])))
    assert len(fuse.queue_requests()) == 1  # the breaker is shut: the Lead waits too
    assert read_by_reference(client, LEAD[2]["Id"])["status"] == "waiting"
