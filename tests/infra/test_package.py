"""The deployment, checked offline by the tools AWS users run: chalice package, cfn-lint, checkov.

Packaging downloads the Lambda's dependencies from PyPI the first time (then chalice caches them
under .chalice/deployments), so these are the suite's slowest tests; CI runs them all the same.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.config.parameters import parse_parameters
from chalicelib.config.settings import load_settings
from infra import permissions
from infra.configure import collect
from infra.parameters import PARAMETERS, Parameter, put_parameters
from infra.precompile import RUNTIME, add_bytecode, loaded_modules
from tests.helpers import ROOT, Aws, chalice_package

BIN = Path(sys.executable).parent
CHECKOV = ROOT / ".venv" / "checkov" / "bin" / "checkov"
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
PYC = f"cpython-{RUNTIME[0]}{RUNTIME[1]}"  # the bytecode files' tag
FUNCTIONS = {
    "APIHandler",
    "CallRequests",
    "CallRequested",
    "ReconcileCalls",
    "DeliverResults",
    "DispatchCalls",
}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("packaged")
    for stage in ("dev", "prod"):
        chalice_package(stage, out / stage, "--merge-template", "infra/resources.json")
    chalice_package("prod", out / "terraform", "--pkg-format", "terraform")
    return {"dev": out / "dev", "prod": out / "prod", "terraform": out / "terraform"}


def template(packaged: dict[str, Path], stage: str) -> dict[str, Any]:
    return json.loads((packaged[stage] / "sam.json").read_text())


def stage_env(stage: str) -> dict[str, str]:
    return {**CONFIG["environment_variables"], **CONFIG["stages"][stage]["environment_variables"]}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_cfn_lint_finds_nothing(packaged: dict[str, Path], stage: str) -> None:
    result = subprocess.run(
        [BIN / "cfn-lint", str(packaged[stage] / "sam.json")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_checkov_finds_nothing_unexplained(packaged: dict[str, Path], stage: str) -> None:
    result = subprocess.run(
        [
            CHECKOV,
            "-f",
            str(packaged[stage] / "sam.json"),
            "--framework",
            "cloudformation",
            "--compact",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [c["check_id"] + " " + c["resource"] for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["passed"] > 0
    for skipped in report["results"]["skipped_checks"]:
        assert len(skipped["check_result"].get("suppress_comment", "")) > 20, skipped["check_id"]


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_policy_grants_only_named_resources(packaged: dict[str, Path], stage: str) -> None:
    roles = [
        r for r in template(packaged, stage)["Resources"].values() if r["Type"] == "AWS::IAM::Role"
    ]
    assert len(roles) == len(FUNCTIONS)
    for role in roles:
        for policy in role["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = (
                    statement["Action"]
                    if isinstance(statement["Action"], list)
                    else [statement["Action"]]
                )
                resources = statement["Resource"]
                resources = resources if isinstance(resources, list) else [resources]
                assert all("*" not in action for action in actions), statement
                for resource in resources:
                    if resource == "*":  # X-Ray's actions take no resource: AWS requires "*"
                        assert set(actions) <= XRAY_ACTIONS, statement
                        assert stage == "prod"  # and only where tracing is on
                        continue
                    assert (
                        f"fuse-bridge-{stage}" in resource
                        or f"fuse-bridge/{stage}" in resource
                        or (resource == "arn:aws:kms:*:*:key/*" and "Condition" in statement)
                    ), resource


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_resources_follow_the_stage_naming_convention(
    packaged: dict[str, Path], stage: str
) -> None:
    resources = template(packaged, stage)["Resources"]
    env = stage_env(stage)
    names = {
        "CallsTable": ("TableName", env["CALLS_TABLE"]),
        "CallRequestsQueue": ("QueueName", env["CALL_REQUESTS_QUEUE"]),
        "DeliveriesQueue": ("QueueName", env["DELIVERY_QUEUE"]),
        "DispatchQueue": ("QueueName", env["DISPATCH_QUEUE"]),
        "ResultsBus": ("Name", env["RESULTS_EVENT_BUS"]),
    }
    for resource, (prop, configured) in names.items():
        declared = resources[resource]["Properties"][prop]["Fn::Sub"]
        assert declared.replace("${Stage}", stage) == configured
    table = resources["CallsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {
        "by_reference",
        "open_calls",
        "by_batch",
    }
    queue = resources["CallRequestsQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * CONFIG["lambda_timeout"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    source = resources["CallRequests"]["Properties"]["Events"]["CallRequestsSqsEventSource"]
    # By reference, not by name: CloudFormation then creates the queue first.
    assert source["Properties"]["Queue"] == {"Fn::Sub": "${CallRequestsQueue.Arn}"}
    assert source["Properties"]["ScalingConfig"]["MaximumConcurrency"] == 2
    api_name = resources["RestAPI"]["Properties"]["Name"]["Fn::Sub"]
    assert api_name == "fuse-bridge-${Stage}"  # dev's and prod's 5xx are not counted together
    dimensions = resources["Api5xxAlarm"]["Properties"]["Dimensions"]
    assert {"Name": "ApiName", "Value": {"Fn::Sub": api_name}} in dimensions
    alarms = {k for k, v in resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert {"DeadLetterQueueNotEmptyAlarm", "Api5xxAlarm"} <= alarms
    assert "DeliveriesDeadLetterQueueNotEmptyAlarm" in alarms
    deliveries = resources["DeliveriesQueue"]["Properties"]
    assert deliveries["VisibilityTimeout"] >= 6 * CONFIG["lambda_timeout"]
    # The dead-letter queue after as many receipts as the delivery function makes attempts.
    attempts = load_settings({**env, "BRIDGE_SSM_PREFIX": "/x", "CALLS_TABLE": "t"})
    assert deliveries["RedrivePolicy"]["maxReceiveCount"] == attempts.delivery_max_attempts
    assert {f"{fn}ErrorsAlarm" for fn in FUNCTIONS} <= alarms
    # Waiting calls: their queue outlives the longest backoff, a stuck one is seen, and the
    # dispatcher runs FUSE_BULK_CONCURRENCY at once: so many bulk_queue requests in flight.
    dispatch = resources["DispatchQueue"]["Properties"]
    assert dispatch["VisibilityTimeout"] >= 6 * CONFIG["lambda_timeout"]
    assert {"DispatchDeadLetterQueueNotEmptyAlarm", "DispatchBacklogAlarm"} <= alarms
    backlog = resources["DispatchBacklogAlarm"]["Properties"]
    assert backlog["MetricName"] == "ApproximateAgeOfOldestMessage"
    source = resources["DispatchCalls"]["Properties"]["Events"]["DispatchCallsSqsEventSource"]
    assert source["Properties"]["Queue"] == {"Fn::Sub": "${DispatchQueue.Arn}"}
    assert source["Properties"]["ScalingConfig"]["MaximumConcurrency"] == int(
        env["FUSE_BULK_CONCURRENCY"]
    )
    assert source["Properties"]["BatchSize"] == int(env["DISPATCH_BATCH_SIZE"])
    assert source["Properties"]["MaximumBatchingWindowInSeconds"] == int(
        env["DISPATCH_WINDOW_SECONDS"]
    )


@pytest.mark.slow
def test_event_functions_know_the_apis_address_for_result_urls(packaged: dict[str, Path]) -> None:
    # No API Gateway request tells an SQS or EventBridge invocation where results must go.
    resources = template(packaged, "prod")["Resources"]
    for name in ("CallRequests", "CallRequested"):
        variables = resources[name]["Properties"]["Environment"]["Variables"]
        assert "${RestAPI}.execute-api" in variables["PUBLIC_BASE_URL"]["Fn::Sub"]
        assert variables["CALLS_TABLE"] == "fuse-bridge-prod-calls"  # merged, not replaced


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_queue_consumer_reports_batch_item_failures(
    packaged: dict[str, Path], stage: str
) -> None:
    """Without it, Lambda ignores batchItemFailures and deletes or returns the whole batch."""
    function = template(packaged, stage)["Resources"]["CallRequests"]["Properties"]
    [source] = function["Events"].values()
    assert source["Type"] == "SQS"
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    delivering = template(packaged, stage)["Resources"]["DeliverResults"]["Properties"]
    [deliveries] = delivering["Events"].values()
    assert deliveries["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert deliveries["Properties"]["Queue"] == {"Fn::Sub": "${DeliveriesQueue.Arn}"}
    assert source["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 2}  # merged, kept


@pytest.mark.slow
def test_functions_run_on_arm64_with_tracing_as_the_stage_says(packaged: dict[str, Path]) -> None:
    for stage, tracing in (("dev", "PassThrough"), ("prod", "Active")):
        resources = template(packaged, stage)["Resources"]
        for name in FUNCTIONS:
            properties = resources[name]["Properties"]
            assert properties["Architectures"] == ["arm64"]
            # A runtime Lambda still creates functions on (python3.11 and 3.10, on Amazon
            # Linux 2, stopped on 2026-07-31), whatever Python packaged it; the bytecode the
            # zip carries is that runtime's.
            assert properties["Runtime"] == f"python{RUNTIME[0]}.{RUNTIME[1]}" == "python3.13"
            assert properties["Tracing"] == tracing
            assert properties["Timeout"] > float(stage_env(stage)["FUSE_TIMEOUT_SECONDS"])


@pytest.mark.slow
def test_every_function_takes_the_powertools_layer_the_tests_pin(packaged: dict[str, Path]) -> None:
    """Powertools comes from AWS's managed layer, found by AWS's public SSM parameter for one
    release: the release requirements-dev.txt pins for the tests, for the functions' own
    architecture and Python."""
    pinned = re.search(
        r"^aws-lambda-powertools==(\S+)$", (ROOT / "requirements-dev.txt").read_text(), re.M
    )
    assert pinned is not None
    for stage in ("dev", "prod"):
        sam = template(packaged, stage)
        for name in FUNCTIONS:
            properties = sam["Resources"][name]["Properties"]
            assert properties["Layers"] == [{"Ref": "PowertoolsLayer"}], name
            expected = (
                f"/aws/service/powertools/python/{CONFIG['lambda_architecture']}/"
                f"{properties['Runtime']}/{pinned[1]}"
            )
            assert sam["Parameters"]["PowertoolsLayer"]["Default"] == expected
        assert sam["Parameters"]["PowertoolsLayer"]["Type"] == "AWS::SSM::Parameter::Value<String>"


@pytest.mark.slow
def test_terraform_packaging_names_the_same_resources(packaged: dict[str, Path]) -> None:
    terraform = json.loads((packaged["terraform"] / "chalice.tf.json").read_text())["resource"]
    sam = template(packaged, "prod")["Resources"]
    handlers_tf = {f["handler"] for f in terraform["aws_lambda_function"].values()}
    handlers_sam = {sam[name]["Properties"]["Handler"] for name in FUNCTIONS}
    assert handlers_tf == handlers_sam
    for function in terraform["aws_lambda_function"].values():
        assert function["environment"]["variables"] == stage_env("prod")
    mappings = {
        m["event_source_arn"].rsplit(":", 1)[1]: m
        for m in terraform["aws_lambda_event_source_mapping"].values()
    }
    assert set(mappings) == {
        stage_env("prod")["CALL_REQUESTS_QUEUE"],
        "fuse-bridge-prod-deliveries",
        stage_env("prod")["DISPATCH_QUEUE"],
    }
    requests = mappings[stage_env("prod")["CALL_REQUESTS_QUEUE"]]
    assert requests["scaling_config"] == {"maximum_concurrency": 2}


def test_configure_writes_what_the_bridge_reads(aws: Aws) -> None:
    answers = {
        "fuse/email": "ops@example.test",
        "fuse/developer_key": "dk-from-the-fuse-ui",
        "campaigns/default/application_id": "101",
        "campaigns/default/deployment_id": "201",
        "campaigns/default/caller_id": "(617) 555-0100",
    }

    def ask(parameter: Parameter) -> str:
        return answers.get(parameter.name, "")  # the rest left empty: generated

    values, generated = collect(ask)
    assert set(generated) == {"callback_secret", "id_secret", "api_tokens", "admin_tokens"}
    assert values["campaigns/default/caller_id"] == "+16175550100"
    put_parameters(aws.ssm, "/fuse-bridge/prod", values)
    stored = aws.ssm.get_parameters_by_path(Path="/fuse-bridge/prod", Recursive=True)["Parameters"]
    types = {p["Name"].removeprefix("/fuse-bridge/prod/"): p["Type"] for p in stored}
    assert {n for n, t in types.items() if t == "SecureString"} == {
        p.name for p in PARAMETERS if p.secret
    }
    decrypted = boto3.client("ssm").get_parameters_by_path(
        Path="/fuse-bridge/prod", Recursive=True, WithDecryption=True
    )["Parameters"]
    parameters = parse_parameters(
        {p["Name"].removeprefix("/fuse-bridge/prod/"): p["Value"] for p in decrypted},
        "/fuse-bridge/prod",
    )
    assert parameters.campaigns["default"].deployment_id == "201"
    assert parameters.integrations["default"].tokens == (generated["api_tokens"],)


@pytest.mark.skipif(
    sys.version_info[:2] != RUNTIME, reason="bytecode is made only by the Lambda's Python"
)
@pytest.mark.slow
def test_the_finished_zip_is_pure_python_with_the_cold_starts_bytecode(
    packaged: dict[str, Path], tmp_path: Path
) -> None:
    zip_path = tmp_path / "deployment.zip"
    zip_path.write_bytes((packaged["dev"] / "deployment.zip").read_bytes())
    assert add_bytecode(zip_path) > 50
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
    assert not [n for n in names if n.endswith(".so")]  # same zip for arm64 and x86_64
    assert f"chalicelib/placing/__pycache__/calls.{PYC}.pyc" in names
    assert f"chalicelib/store/__pycache__/calls.{PYC}.pyc" in names
    assert f"phonenumbers/__pycache__/phonenumberutil.{PYC}.pyc" in names
    assert "phonenumbers/data/region_US.py" in names  # data for other regions: source only
    assert f"phonenumbers/data/__pycache__/region_FR.{PYC}.pyc" not in names
    assert not [n for n in names if n.endswith((".pyi", "/RECORD"))]  # nothing reads them
    assert "chalicelib/openapi.json" in names  # GET /openapi.json serves it
    # What Lambda itself provides is not in the zip: the runtime's SDK and its urllib3 and
    # jmespath, and Powertools, which comes from its layer.
    provided = ("boto3/", "botocore/", "urllib3/", "jmespath/", "aws_lambda_powertools/")
    assert not [n for n in names if n.startswith(provided)]
    assert zip_path.stat().st_size < 1_500_000  # issue 12's target


@pytest.mark.skipif(
    sys.version_info[:2] != RUNTIME, reason="tzdata is trimmed only by the Lambda's Python"
)
@pytest.mark.slow
def test_every_zone_a_number_is_in_reads_from_the_zip_alone(
    packaged: dict[str, Path], tmp_path: Path
) -> None:
    """Calling hours do not depend on the runtime image: with no system zone rules at all
    (PYTHONTZPATH empty), every zone libphonenumber maps a number to loads from the zip's
    trimmed tzdata, and a zone the zip left out is not a known zone (so a request naming it
    is refused as any unknown zone is), not a crash."""
    zip_path = tmp_path / "deployment.zip"
    zip_path.write_bytes((packaged["dev"] / "deployment.zip").read_bytes())
    add_bytecode(zip_path)
    code = tmp_path / "code"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(code)
    probe = (
        "import json, zoneinfo\n"
        "from chalicelib.consent.zones import known_zone, zone_data\n"
        "zones = zone_data()[1]\n"
        "[zoneinfo.ZoneInfo(z) for z in zones]\n"
        "print(json.dumps([len(zones), known_zone('UTC'), known_zone('US/Eastern')]))\n"
    )
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(code), "PYTHONTZPATH": ""}
    done = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    count, utc, alias = json.loads(done.stdout)
    assert count > 250
    assert (utc, alias) == (True, False)


# What a function finds beside its zip: the Python runtime's SDK and its dependencies, and the
# Powertools layer with its own. (certifi: botocore imports it only if present.)
RUNTIME_PACKAGES = {"boto3", "botocore", "dateutil", "jmespath", "s3transfer", "six", "urllib3"}
LAYER_PACKAGES = {"aws_lambda_powertools", "typing_extensions"}
OPTIONAL = {"certifi", "_distutils_hack"}  # _distutils_hack: this venv's setuptools, not Lambda's


@pytest.mark.slow
def test_the_zip_runs_on_what_lambda_provides_beside_it(
    packaged: dict[str, Path], tmp_path: Path
) -> None:
    """Every module any function can load, imported from the unpacked zip: whatever does not
    come from the zip or the standard library must be the runtime's or the layer's. (The
    bench and the rehearsal run the zip with the test venv behind it, which would hide a
    dependency the zip forgot.)"""
    with zipfile.ZipFile(packaged["dev"] / "deployment.zip") as archive:
        archive.extractall(tmp_path)
    code, stdlib = tmp_path.resolve(), Path(sysconfig.get_paths()["stdlib"]).resolve()
    from_elsewhere = {
        name.split(".")[0]
        for name, file in loaded_modules(tmp_path).items()
        if not file.is_relative_to(code) and not file.is_relative_to(stdlib)
    }
    assert from_elsewhere - OPTIONAL <= RUNTIME_PACKAGES | LAYER_PACKAGES, from_elsewhere
    assert {"botocore", "aws_lambda_powertools"} <= from_elsewhere  # the probe sees through


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_alarms_can_publish_to_their_encrypted_topic(packaged: dict[str, Path], stage: str) -> None:
    """CloudWatch alarms cannot use the AWS-managed alias/aws/sns key: the topic's key is the
    stack's own, and its policy lets CloudWatch decrypt and make data keys with it."""
    resources = template(packaged, stage)["Resources"]
    topic = resources["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = resources["AlarmTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    granted = [
        s
        for s in key["KeyPolicy"]["Statement"]
        if s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert granted
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(granted[0]["Action"])
    alarms = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarms
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms)


@pytest.mark.skipif(
    sys.version_info[:2] != RUNTIME, reason="bytecode is made only by the Lambda's Python"
)
@pytest.mark.slow
def test_two_builds_make_the_same_zip_byte_for_byte(
    packaged: dict[str, Path], tmp_path: Path
) -> None:
    """Otherwise every deploy replaces every function: a new build of the same source must give
    the same bytes (times, order, and the bytecode's source paths)."""
    chalice_package("dev", tmp_path / "again", "--merge-template", "infra/resources.json")
    first, second = tmp_path / "first.zip", tmp_path / "again" / "deployment.zip"
    first.write_bytes((packaged["dev"] / "deployment.zip").read_bytes())
    add_bytecode(first)
    add_bytecode(second)
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        code = archive.read(f"chalicelib/placing/__pycache__/calls.{PYC}.pyc")
    assert b"/var/task/chalicelib/placing/calls.py" in code


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_each_role_holds_exactly_its_functions_row(packaged: dict[str, Path], stage: str) -> None:
    """Each function its own role, holding what infra/permissions.py declares for it (which
    tests/test_permissions.py checks against what the function really calls), nothing more;
    and no logs:CreateLogGroup, since the template creates every group."""
    resources = template(packaged, stage)["Resources"]
    roles = set()
    for name in FUNCTIONS:
        properties = resources[name]["Properties"]
        handler = properties["Handler"].removeprefix("app.")
        function = "api_handler" if handler == "app" else handler
        role = properties["Role"]["Fn::GetAtt"][0]
        roles.add(role)
        statements = [
            s
            for policy in resources[role]["Properties"]["Policies"]
            for s in policy["PolicyDocument"]["Statement"]
        ]
        actions = {a for s in statements for a in s["Action"]}
        assert "logs:CreateLogGroup" not in actions
        granted = {a for a in actions if not a.startswith(("logs:", "kms:", "xray:"))}
        assert granted == set().union(*permissions.FUNCTIONS[function].values()), name
    assert len(roles) == len(FUNCTIONS)  # none shared


@pytest.mark.slow
def test_a_dashboard_shows_what_on_call_looks_at(packaged: dict[str, Path]) -> None:
    sam = template(packaged, "prod")
    body_template = sam["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    # What CloudFormation substitutes: the stage's resources, by their logical names.
    body = json.loads(re.sub(r"\$\{([A-Za-z0-9:.]+)\}", r"\1", body_template))
    shown = json.dumps(body)
    for metric in (
        "CallsQueued",
        "CallsRejected",
        "CallbacksStored",
        "FuseErrors",
        "Deliveries",
        "ResultsSettledByReconciler",
        "ApproximateNumberOfMessagesVisible",
        "Errors",
        "Duration",
        "CallsWaiting",
        "CallsDispatched",
        "BulksSent",
        "DispatchLag",
        "ApproximateAgeOfOldestMessage",
    ):
        assert metric in shown, metric
    for function in FUNCTIONS:
        assert f'"{function}"' in shown, function
    for queue in ("CallRequestsDeadLetterQueue", "DeliveriesDeadLetterQueue", "DispatchQueue"):
        assert f"{queue}.QueueName" in shown
    assert "${Dashboard}" in sam["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
