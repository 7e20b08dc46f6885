"""Consent through the routes: calling hours move a call's window, the cap counts a number's
calls across integrations, and a suppressed number is refused by every way a call comes in."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.admission.calls import number_key
from chalicelib.config.dependencies import Dependencies, build_dependencies, set_dependencies
from chalicelib.config.settings import load_settings
from chalicelib.fuse.callback_urls import callback_token
from chalicelib.placing.ids import id_for_key
from infra.parameters import put_parameters
from local.fuse_sim import FuseSimulator
from tests.helpers import (
    ADMIN_TOKEN,
    API_TOKEN,
    AUTH,
    CALLBACK_SECRET,
    CRM_PARAMETERS,
    ID_SECRET,
    PREFIX,
    PUBLIC_BASE_URL,
    A,
    Aws,
    bearer,
    bridge_environment,
    error_of,
    list_requests,
    post_call,
    post_list,
    read_call,
    run_batch,
    stop_clock,
)

NY, LA = "+16175551234", "+14155550123"
# 23:00 in New York (EST), 20:00 in Los Angeles: a workflow firing late on the East Coast.
LATE_EASTERN = datetime(2026, 12, 2, 4, 0, tzinfo=UTC).timestamp()
NEXT_NY_MORNING = int(datetime(2026, 12, 2, 13, 0, tzinfo=UTC).timestamp())  # 08:00 EST
NEXT_NY_CLOSE = int(datetime(2026, 12, 3, 2, 0, tzinfo=UTC).timestamp())  # 21:00 EST
LA_CLOSE = int(datetime(2026, 12, 2, 5, 0, tzinfo=UTC).timestamp())  # 21:00 PST


@pytest.fixture
def consent(aws: Aws, fuse: FuseSimulator) -> Iterator[Dependencies]:
    """The bridge with consent as deployed by default: 08:00-21:00, three calls a day."""
    put_parameters(aws.ssm, PREFIX, CRM_PARAMETERS)
    environment = bridge_environment(
        fuse.url, CALLING_HOURS="08:00-21:00", MAX_CALLS_PER_NUMBER="3", SECRETS_TTL_SECONDS="0"
    )
    deps = build_dependencies(load_settings(environment))
    set_dependencies(deps)
    stop_clock(deps, LATE_EASTERN)
    yield deps
    set_dependencies(None)


@pytest.fixture
def bridge(consent: Dependencies) -> Iterator[Client]:
    with Client(app) as client:
        yield client


def body_of(response: Any) -> dict[str, Any]:
    return json.loads(response.body)


def test_a_late_call_rings_when_the_callees_morning_comes(
    bridge: Client, fuse: FuseSimulator
) -> None:
    """At 23:00 Eastern, New York's call waits for 08:00 and stops at 21:00; Los Angeles's,
    at 20:00 there, goes now and stops at its 21:00."""
    ny = post_call(bridge, {"phone": NY, "attempts": 3, "retry_delay": 3600})
    la = post_call(bridge, {"phone": LA})
    assert ny.status_code == la.status_code == 202, (ny.body, la.body)
    ny_sent, la_sent = fuse.queue_requests()
    assert ny_sent.form["start_timestamp"] == str(NEXT_NY_MORNING)
    assert ny_sent.form["end_timestamp"] == str(NEXT_NY_CLOSE)
    assert "start_timestamp" not in la_sent.form
    assert la_sent.form["end_timestamp"] == str(LA_CLOSE)
    shown = read_call(bridge, body_of(ny)["id"])["request"]
    assert (shown["start_at"], shown["end_at"]) == (NEXT_NY_MORNING, NEXT_NY_CLOSE)


def test_a_window_with_no_calling_hour_is_refused_naming_its_field(
    bridge: Client, fuse: FuseSimulator
) -> None:
    start = int(LATE_EASTERN) + 600
    asked = {"phone": NY, "start_at": start, "end_at": start + 3600}
    refused = post_call(bridge, asked, key="night-call")
    assert refused.status_code == 422
    error = error_of(refused)
    assert error["code"] == "outside_calling_hours"
    assert [d["field"] for d in error["details"]] == ["end_at"]
    assert "2026-12-02T13:00:00Z" in error["message"]  # when it may first ring
    assert fuse.queue_requests() == []
    mended = post_call(bridge, {"phone": NY, "end_at": NEXT_NY_CLOSE}, key="night-call")
    assert mended.status_code == 202, mended.body  # the refusal held no key


def test_the_crms_zone_narrows_the_numbers_and_never_widens_them(
    bridge: Client, fuse: FuseSimulator
) -> None:
    """A request's `timezone` can only narrow: added to the number's zones (hours must hold in
    both), or chosen among them; it can never make the number's night a calling hour."""
    london = post_call(bridge, {"phone": NY, "timezone": "Europe/London"})
    assert london.status_code == 202, london.body
    [sent] = fuse.queue_requests()
    london_close = int(datetime(2026, 12, 2, 21, tzinfo=UTC).timestamp())  # 21:00 GMT
    assert (sent.form["start_timestamp"], sent.form["end_timestamp"]) == (
        str(NEXT_NY_MORNING),
        str(london_close),
    )
    # 13:00 in Tokyo, 23:00 in New York: it waits for an hour open in both (18:00 in New York).
    tokyo = post_call(bridge, {"phone": NY, "timezone": "Asia/Tokyo"})
    assert tokyo.status_code == 202, tokyo.body
    tokyo_sent = fuse.queue_requests()[1]
    both = (datetime(2026, 12, 2, 23, tzinfo=UTC), datetime(2026, 12, 3, 2, tzinfo=UTC))
    assert (tokyo_sent.form["start_timestamp"], tokyo_sent.form["end_timestamp"]) == tuple(
        str(int(moment.timestamp())) for moment in both
    )
    boise = post_call(bridge, {"phone": "+12085550100", "timezone": "America/Boise"})
    assert boise.status_code == 202, boise.body  # 21:00 in Boise: closed, and never LA's hours
    boise_sent = fuse.queue_requests()[2]
    boise_morning = int(datetime(2026, 12, 2, 15, tzinfo=UTC).timestamp())  # 08:00 MST
    assert boise_sent.form["start_timestamp"] == str(boise_morning)
    for zone in ("Mars/Olympus_Mons", "../../etc/passwd", "x" * 65, 5, "America", "Etc"):
        refused = post_call(bridge, {"phone": NY, "timezone": zone})
        assert refused.status_code == 422, zone
        assert [d["field"] for d in error_of(refused)["details"]] == ["timezone"]


def test_a_campaigns_hours_and_a_prefix_rule_narrow_the_deployments(
    aws: Aws, bridge: Client, fuse: FuseSimulator
) -> None:
    put_parameters(
        aws.ssm,
        PREFIX,
        {
            "campaigns/default/calling_hours": "10:00-12:00",
            "calling_rules": json.dumps({"+1617": {"hours": "09:00-20:00", "max_calls": 1}}),
        },
    )
    first = post_call(bridge, {"phone": NY})
    assert first.status_code == 202, first.body
    [sent] = fuse.queue_requests()
    opens = datetime(2026, 12, 2, 15, tzinfo=UTC).timestamp()  # 10:00 EST
    closes = datetime(2026, 12, 2, 17, tzinfo=UTC).timestamp()  # 12:00 EST
    assert (sent.form["start_timestamp"], sent.form["end_timestamp"]) == (
        str(int(opens)),
        str(int(closes)),
    )
    second = post_call(bridge, {"phone": NY, "reference": "again"})
    assert second.status_code == 422
    assert error_of(second)["code"] == "call_limit_reached"


def test_the_cap_counts_one_number_across_integrations_and_frees_after_a_day(
    consent: Dependencies, bridge: Client, fuse: FuseSimulator
) -> None:
    for token in (API_TOKEN, A, API_TOKEN):
        assert post_call(bridge, {"phone": LA}, token=token).status_code == 202
    over = post_call(bridge, {"phone": LA}, token=A)
    assert over.status_code == 422
    error = error_of(over)
    assert error["code"] == "call_limit_reached"
    assert "2026-12-03T04:00:00Z" in error["message"]  # 24 h after the first
    assert len(fuse.queue_requests()) == 3
    stop_clock(consent, LATE_EASTERN + 86400 + 1)
    later = post_call(bridge, {"phone": LA, "timezone": "Asia/Tokyo"})
    assert later.status_code == 202, later.body


def test_the_cap_holds_under_concurrent_requests(
    consent: Dependencies, bridge: Client, fuse: FuseSimulator, atomic_dynamodb: None
) -> None:
    answers: list[int] = []

    def one(n: int) -> None:
        answers.append(post_call(bridge, {"phone": LA, "reference": f"r{n}"}).status_code)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answers) == [202] * 3 + [422] * 9
    assert len(fuse.queue_requests()) == 3


def test_a_call_fuse_refused_gives_its_count_back(bridge: Client, fuse: FuseSimulator) -> None:
    fuse.fail_with = (400, "Invalid phone number.")
    for _ in range(3):
        assert post_call(bridge, {"phone": LA}).status_code == 422
    fuse.reset()
    for n in range(3):
        assert post_call(bridge, {"phone": LA, "reference": f"r{n}"}).status_code == 202


def suppress(client: Client, phone: str, token: str = API_TOKEN, **body: Any) -> Any:
    return client.http.put(f"/suppressions/{phone}", headers=bearer(token), body=json.dumps(body))


def test_the_do_not_call_list_is_one_for_every_integration(bridge: Client) -> None:
    put = suppress(bridge, "(415) 555-0123", reason="said stop on 415 555 0123")
    assert put.status_code == 200, put.body
    assert body_of(put)["by"] == "integration:default"
    assert "0123" not in body_of(put)["reason"]  # no number kept, even in a reason
    again = suppress(bridge, LA, token=A)  # the first who and when stay
    assert body_of(again)["suppressed_at"] == body_of(put)["suppressed_at"]
    assert "by" not in body_of(again)  # another CRM learns it is listed, not who listed it
    refused = post_call(bridge, {"phone": LA}, token=A)
    assert refused.status_code == 422
    assert error_of(refused)["code"] == "phone_suppressed"
    assert bridge.http.get(f"/suppressions/{LA}", headers=bearer(A)).status_code == 200
    assert bridge.http.get(f"/suppressions/{NY}", headers=bearer(A)).status_code == 404
    assert bridge.http.delete(f"/suppressions/{LA}", headers=bearer(A)).status_code == 403
    gone = bridge.http.delete(f"/suppressions/{LA}", headers=bearer(ADMIN_TOKEN))
    assert gone.status_code == 204
    assert post_call(bridge, {"phone": LA}, token=A).status_code == 202


def test_a_list_sync_suppresses_thousands_and_names_each_bad_number(bridge: Client) -> None:
    phones = [f"+1415555{n:04d}" for n in range(2000)] + ["nope", 42]
    synced = bridge.http.post(
        "/suppressions", headers=AUTH, body=json.dumps({"phones": phones, "reason": "sync"})
    )
    assert synced.status_code == 200, synced.body
    answer = body_of(synced)
    assert (answer["suppressed"], answer["added"], answer["invalid"]) == (2000, 2000, 2)
    assert [d["field"] for d in answer["invalid_details"]] == ["phones[2000]", "phones[2001]"]
    assert post_call(bridge, {"phone": "+14155551999"}).status_code == 422
    too_many = bridge.http.post(
        "/suppressions", headers=AUTH, body=json.dumps({"phones": ["+14155550100"] * 10_001})
    )
    assert too_many.status_code == 422


def test_a_list_skips_suppressed_contacts_and_goes_in_one_bulk_a_window(
    bridge: Client, fuse: FuseSimulator
) -> None:
    suppress(bridge, "+14155550199")
    contacts = [{"phone": NY}, {"phone": LA}, {"phone": "+14155550199"}, {"phone": "+12125550100"}]
    placed = post_list(bridge, {"contacts": contacts})
    assert placed.status_code == 202, placed.body
    answer = body_of(placed)
    assert [c["index"] for c in answer["calls"]] == [0, 1, 3]
    assert [(s["index"], s["code"]) for s in answer["skipped"]] == [(2, "phone_suppressed")]
    schedules = {
        (r.form.get("start_timestamp"), r.form["end_timestamp"]): str(r.uploads).count("tel:")
        for r in list_requests(fuse)
    }
    # New York's two contacts in one request, Los Angeles's in another.
    assert schedules == {(None, str(LA_CLOSE)): 1, (str(NEXT_NY_MORNING), str(NEXT_NY_CLOSE)): 2}


def test_the_opt_out_url_suppresses_its_calls_number_and_nothing_else(
    bridge: Client, fuse: FuseSimulator
) -> None:
    call_id = body_of(post_call(bridge, {"phone": LA}))["id"]
    [sent] = fuse.queue_requests()
    url = json.loads(sent.form["metadata"])["opt_out_url"]
    number = number_key(ID_SECRET, LA)
    token = callback_token(f"opt-out/{call_id}/{number}", CALLBACK_SECRET)
    assert url == f"{PUBLIC_BASE_URL}/fuse/opt-out/{call_id}?n={number}&token={token}"
    other = number_key(ID_SECRET, NY)
    forged = [
        f"n={number}&token={callback_token(call_id, CALLBACK_SECRET)}",  # the result token
        f"n={other}&token={token}",  # another number under this call's token
        f"n={other}&token={callback_token(f'opt-out/{call_id}/{NY}', CALLBACK_SECRET)}",
        f"n={number}&token=",
        f"n=not-a-key&token={token}",
        f"token={token}",
        f"n={number}&token={token}&token={token}",
    ]
    for query in forged:
        answer = bridge.http.post(f"/fuse/opt-out/{call_id}?{query}", body=b"")
        assert answer.status_code in (400, 403), query
    assert post_call(bridge, {"phone": NY}).status_code == 202  # nothing listed by those
    opted = bridge.http.post(url.removeprefix(PUBLIC_BASE_URL), body=b"digit=9")
    assert opted.status_code == 200, opted.body
    refused = post_call(bridge, {"phone": LA, "reference": "c"})
    assert error_of(refused)["code"] == "phone_suppressed"
    listed = bridge.http.get(f"/suppressions/{LA}", headers=bearer(ADMIN_TOKEN))
    assert body_of(listed)["by"] == "opt-out"


def test_no_phone_number_is_kept_by_consent(aws: Aws, bridge: Client) -> None:
    suppress(bridge, LA, reason="call me at +1 415 555 0123 never")
    post_call(bridge, {"phone": NY})
    items = aws.dynamodb.scan(TableName="fuse-bridge-test-calls")["Items"]
    consent_items = [i for i in items if i["pk"]["S"].startswith("number#")]
    assert len(consent_items) == 2
    for item in consent_items:
        text = json.dumps(item)
        # The numbers in any spelling: digit runs with separators, as the reason wrote one.
        assert not re.search(r"415\D{0,3}555\D{0,3}0123", text)
        assert not re.search(r"617\D{0,3}555\D{0,3}1234", text)


def test_a_suppressed_number_is_refused_by_every_way_in(
    bridge: Client, fuse: FuseSimulator
) -> None:
    suppress(bridge, LA)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    hook = bridge.http.post(
        "/hooks/form-tool?api_key=form-tool-token", headers=form, body=f"phone={LA}"
    )
    assert hook.status_code == 422
    assert error_of(hook)["code"] == "phone_suppressed"
    assert run_batch(bridge, [("m-1", {"phone": LA})]) == []  # decided, never retried
    stored = read_call(bridge, id_for_key(ID_SECRET, "m-1"))
    assert (stored["status"], stored["error"]["code"]) == ("rejected", "phone_suppressed")
    event = bridge.events.generate_cw_event(
        source="crm", detail_type="Fuse Call Requested", detail={"phone": LA}, resources=[]
    )
    event["id"] = "eb-1"
    decided = bridge.lambda_.invoke("call_requested", event).payload
    assert (decided["decision"], decided["code"]) == ("rejected", "phone_suppressed")
    assert fuse.received == []


def test_the_cap_counts_calls_when_they_may_ring_and_each_attempt(
    consent: Dependencies, bridge: Client, fuse: FuseSimulator
) -> None:
    """Three calls scheduled for tomorrow evening fill tomorrow's 24 hours: three more asked
    tomorrow just after are refused, though 24 hours have passed since the first were asked.
    And each attempt may ring: a call of three attempts is three of the cap."""
    tomorrow_evening = int(LATE_EASTERN) + 86400 - 3600  # 19:00 in Los Angeles, tomorrow
    for n in range(3):
        asked = {"phone": LA, "start_at": tomorrow_evening, "reference": f"r{n}"}
        assert post_call(bridge, asked).status_code == 202
    stop_clock(consent, LATE_EASTERN + 86400 + 1)  # 20:00 there, tomorrow
    refused = post_call(bridge, {"phone": LA, "reference": "now"})
    assert error_of(refused)["code"] == "call_limit_reached"
    three = {"phone": NY, "attempts": 3, "retry_delay": 600}
    assert post_call(bridge, three).status_code == 202
    assert error_of(post_call(bridge, {"phone": NY}))["code"] == "call_limit_reached"
    four = post_call(bridge, {**three, "phone": "+12125550100", "attempts": 4})
    assert [d["field"] for d in error_of(four)["details"]] == ["attempts"]


def test_a_rules_cap_holds_with_no_deployment_cap(aws: Aws, fuse: FuseSimulator) -> None:
    put_parameters(aws.ssm, PREFIX, {"calling_rules": json.dumps({"+1415": {"max_calls": 1}})})
    environment = bridge_environment(
        fuse.url, CALLING_HOURS="00:00-24:00", MAX_CALLS_PER_NUMBER="0"
    )
    deps = build_dependencies(load_settings(environment))
    set_dependencies(deps)
    try:
        with Client(app) as client:
            assert post_call(client, {"phone": LA}).status_code == 202
            over = post_call(client, {"phone": LA, "reference": "again"})
            assert error_of(over)["code"] == "call_limit_reached"
            for n in range(3):  # no cap for the rest
                assert post_call(client, {"phone": NY, "reference": f"r{n}"}).status_code == 202
    finally:
        set_dependencies(None)


def test_a_reason_never_keeps_a_phone_and_a_path_may_encode_its_plus(bridge: Client) -> None:
    hidden = "call 617\u2011555\u20111234, or 6 1 7 5 5 5 1 2 3 4, or \uff16\uff11\uff17-555-1234"
    put = bridge.http.put(
        "/suppressions/%2B14155550123", headers=AUTH, body=json.dumps({"reason": hidden})
    )
    assert put.status_code == 200, put.body
    reason = body_of(put)["reason"]
    assert sum(ch.isdigit() for ch in reason) < 7, reason
    assert bridge.http.get(f"/suppressions/{LA}", headers=AUTH).status_code == 200
