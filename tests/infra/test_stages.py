"""The stage configuration keeps the promises the code relies on."""

from __future__ import annotations

import json

from chalicelib.config.settings import load_settings
from tests.helpers import ROOT

XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())


def stage_env(stage: str) -> dict[str, str]:
    return {**CONFIG["environment_variables"], **CONFIG["stages"][stage]["environment_variables"]}


def test_every_stage_loads_and_its_in_flight_lock_outlives_the_lambda() -> None:
    for stage in CONFIG["stages"]:
        settings = load_settings(stage_env(stage))
        timeout = CONFIG["stages"][stage].get("lambda_timeout", CONFIG["lambda_timeout"])
        # A request still running must never be taken for a dead one (it would answer 504).
        assert settings.in_flight_seconds >= timeout, stage
        assert timeout > settings.fuse_timeout_seconds, stage


def test_policies_are_ours_and_name_only_the_stage_resources() -> None:
    assert CONFIG["autogen_policy"] is False
    for stage in ("dev", "prod"):
        for function, settings in CONFIG["stages"][stage]["lambda_functions"].items():
            assert settings["iam_policy_file"] == f"policy-{stage}-{function}.json"
            policy = json.loads((ROOT / ".chalice" / settings["iam_policy_file"]).read_text())
            check_only_stage_resources(policy, stage)


def check_only_stage_resources(policy: dict, stage: str) -> None:
    for statement in policy["Statement"]:
        actions = statement["Action"]
        assert "*" not in json.dumps(actions), statement["Sid"]
        resources = statement["Resource"]
        for resource in [resources] if isinstance(resources, str) else resources:
            if resource == "*":  # X-Ray's actions take no resource: AWS requires "*" there
                assert set(actions) <= XRAY_ACTIONS, statement["Sid"]
            if ":ssm:" in resource:
                assert f"parameter/fuse-bridge/{stage}" in resource
            if ":dynamodb:" in resource:
                assert f"table/fuse-bridge-{stage}-calls" in resource
            if ":events:" in resource:
                assert resource.endswith(f"event-bus/fuse-bridge-{stage}-results")
