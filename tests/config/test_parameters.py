"""Secrets come from SSM in one walk per cold start, are cached, and rotate without a deploy."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.parameters import ParameterStore, parse_parameters
from chalicelib.errors import ConfigurationIncomplete
from chalicelib.fuse.callback_urls import callback_token
from infra.parameters import put_parameters
from tests.helpers import (
    ADMIN_TOKEN,
    API_TOKEN,
    FUSE_EXAMPLE,
    OTHER_TOKEN,
    PARAMETERS,
    PHONE,
    PREFIX,
    Aws,
    broken_client,
    error_of,
    post_call,
    post_callback,
    read_call,
)


def count_ssm_calls(deps: Dependencies) -> list[str]:
    calls: list[str] = []
    deps.parameters._ssm_client().meta.events.register(
        "before-call.ssm.*", lambda model, **_: calls.append(model.name)
    )
    return calls


def test_one_walk_on_the_first_request_and_none_after(client: Client, deps: Dependencies) -> None:
    calls = count_ssm_calls(deps)
    for _ in range(3):
        assert post_call(client, {"phone": PHONE}).status_code == 202
    # 12 parameters, 10 a page (the most SSM gives): one walk of two pages, then the cache.
    assert calls == ["GetParametersByPath", "GetParametersByPath"]


def test_a_rotated_token_takes_effect_after_the_ttl(
    client: Client, deps: Dependencies, aws: Aws
) -> None:
    clock = [1000.0]
    deps.parameters = ParameterStore(
        PREFIX, 300, deps.parameters._ssm_client, clock=lambda: clock[0]
    )
    assert post_call(client, {"phone": PHONE}).status_code == 202
    put_parameters(aws.ssm, PREFIX, {"api_tokens": "tok-rotated"})
    clock[0] += 299
    assert post_call(client, {"phone": PHONE}, token="tok-rotated").status_code == 401  # cached
    clock[0] += 1
    assert post_call(client, {"phone": PHONE}, token="tok-rotated").status_code == 202
    assert post_call(client, {"phone": PHONE}).status_code == 401  # the old token is gone


def test_a_missing_parameter_is_named_but_no_value_is_shown(client: Client, aws: Aws) -> None:
    aws.ssm.delete_parameter(Name=f"{PREFIX}/fuse/developer_key")
    response = post_call(client, {"phone": PHONE})
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "configuration_incomplete"
    assert f"{PREFIX}/fuse/developer_key" in error["message"]
    for value in PARAMETERS.values():
        assert value not in json.dumps(error)


def test_a_half_written_campaign_is_out_of_service_and_the_rest_keeps_working(
    client: Client, aws: Aws
) -> None:
    """One campaign without its deployment_id used to take every route down, callbacks too."""
    aws.ssm.delete_parameter(Name=f"{PREFIX}/campaigns/reminders/deployment_id")
    broken = post_call(client, {"phone": PHONE, "campaign": "reminders", "caller_id": PHONE})
    assert broken.status_code == 500
    assert "campaigns/reminders/deployment_id" in error_of(broken)["message"]
    working = post_call(client, {"phone": PHONE})
    assert working.status_code == 202
    call_id = json.loads(working.body)["id"]
    assert post_callback(client, call_id, FUSE_EXAMPLE).status_code == 200  # callbacks too
    assert read_call(client, call_id)["status"] == "completed"


def test_a_stranger_learns_nothing_about_the_configuration(client: Client, aws: Aws) -> None:
    aws.ssm.delete_parameter(Name=f"{PREFIX}/fuse/developer_key")
    aws.ssm.delete_parameter(Name=f"{PREFIX}/campaigns/reminders/deployment_id")
    for answer in (
        client.http.get("/calls?reference=x"),
        client.http.get("/calls/abc", headers={"Authorization": "Bearer wrong"}),
        post_call(client, {"phone": PHONE}, token=None),
    ):
        assert answer.status_code == 401
        assert PREFIX not in answer.body.decode()
        assert "developer_key" not in answer.body.decode()


def test_an_admin_token_may_use_the_caller_routes_too(client: Client) -> None:
    """docs: admin tokens "may also cancel": they are caller tokens that can do more."""
    answer = post_call(client, {"phone": PHONE}, token=ADMIN_TOKEN)
    assert answer.status_code == 202
    call_id = json.loads(answer.body)["id"]
    read = client.http.get(f"/calls/{call_id}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert read.status_code == 200


def test_no_callback_token_is_made_or_checked_with_an_empty_secret() -> None:
    values = {**PARAMETERS, "callback_secret": " "}
    parameters = parse_parameters(values, PREFIX)
    with pytest.raises(ConfigurationIncomplete, match="callback_secret"):
        callback_token("call-1", parameters.callback_secret)


def test_secrets_never_print_their_values() -> None:
    parameters = parse_parameters(PARAMETERS, PREFIX)
    shown = repr(parameters) + str(parameters)
    for name in ("fuse/developer_key", "callback_secret", "api_tokens"):
        assert PARAMETERS[name].split(",")[0] not in shown
    assert parameters.integrations["default"].tokens == (API_TOKEN, OTHER_TOKEN)


def test_an_ssm_outage_after_the_ttl_keeps_the_cached_values_for_an_hour(
    client: Client, deps: Dependencies
) -> None:
    clock = [1000.0]
    healthy = deps.parameters._ssm_client
    deps.parameters = ParameterStore(PREFIX, 300, healthy, clock=lambda: clock[0])
    assert post_call(client, {"phone": PHONE}).status_code == 202
    deps.parameters._ssm_client = lambda: broken_client("ssm")
    clock[0] += 300 + 3599
    assert post_call(client, {"phone": PHONE}).status_code == 202  # stale, but calls go on
    clock[0] += 1
    response = post_call(client, {"phone": PHONE})
    assert response.status_code == 503
    assert error_of(response)["code"] == "secrets_unavailable"
    deps.parameters._ssm_client = healthy
    assert post_call(client, {"phone": PHONE}).status_code == 202  # recovered on the next request
