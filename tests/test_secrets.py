"""Secrets come from SSM in one walk per cold start, are cached, and rotate without a deploy."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from chalicelib.dependencies import Dependencies
from chalicelib.errors import ConfigurationIncomplete
from chalicelib.secrets import SecretStore, parse_secrets
from infra.parameters import put_parameters
from tests.helpers import (
    API_TOKEN,
    OTHER_TOKEN,
    PARAMETERS,
    PHONE,
    PREFIX,
    Aws,
    broken_client,
    error_of,
    post_call,
)


def count_ssm_calls(deps: Dependencies) -> list[str]:
    calls: list[str] = []
    deps.secrets._ssm_client().meta.events.register(
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
    deps.secrets = SecretStore(PREFIX, 300, deps.secrets._ssm_client, clock=lambda: clock[0])
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


def test_a_campaign_without_its_deployment_id_is_named() -> None:
    values = {**PARAMETERS}
    del values["campaigns/reminders/deployment_id"]
    with pytest.raises(ConfigurationIncomplete, match="campaigns/reminders/deployment_id"):
        parse_secrets(values, PREFIX)


def test_secrets_never_print_their_values() -> None:
    secrets = parse_secrets(PARAMETERS, PREFIX)
    shown = repr(secrets) + str(secrets)
    for name in ("fuse/developer_key", "callback_secret", "api_tokens"):
        assert PARAMETERS[name].split(",")[0] not in shown
    assert secrets.api_tokens == (API_TOKEN, OTHER_TOKEN)


def test_an_ssm_outage_after_the_ttl_keeps_the_cached_values_for_an_hour(
    client: Client, deps: Dependencies
) -> None:
    clock = [1000.0]
    healthy = deps.secrets._ssm_client
    deps.secrets = SecretStore(PREFIX, 300, healthy, clock=lambda: clock[0])
    assert post_call(client, {"phone": PHONE}).status_code == 202
    deps.secrets._ssm_client = lambda: broken_client("ssm")
    clock[0] += 300 + 3599
    assert post_call(client, {"phone": PHONE}).status_code == 202  # stale, but calls go on
    clock[0] += 1
    response = post_call(client, {"phone": PHONE})
    assert response.status_code == 503
    assert error_of(response)["code"] == "secrets_unavailable"
    deps.secrets._ssm_client = healthy
    assert post_call(client, {"phone": PHONE}).status_code == 202  # recovered on the next request
