"""A rehearsal deploy: what `make deploy` does, against a moto server instead of AWS.

`chalice package` with the merge template, the zip finished by infra/precompile,
`aws cloudformation package` uploading it (to moto's S3), the template expanded by AWS's own SAM
translator, `aws cloudformation deploy` creating the stack on moto; then each deployed handler is
run from the deployed function's own environment (read back from moto's Lambda) against moto and
the Fuse simulator. What moto cannot create is named below and checked another way; nothing is
skipped silently. `make rehearse` runs this module alone.

Powertools is not in the zip: each function takes AWS's managed layer, found by the template's
public SSM parameter for the pinned version. moto knows neither, so the rehearsal publishes that
version (the one installed for the tests) as a layer on moto and seeds the public parameter with
its ARN, as AWS does; the stack must then attach it to every function.
"""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_lambda_powertools
import boto3
import pytest
from chalice.local import LambdaContext
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.utils import utcnow
from moto.server import ThreadedMotoServer
from moto.ssm.models import Parameter, ssm_backends
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

from app import app
from chalicelib.config.dependencies import build_dependencies, set_dependencies
from chalicelib.config.settings import load_settings
from chalicelib.fuse.callback_urls import callback_token
from infra.parameters import put_parameters
from infra.precompile import add_bytecode
from local.demo import CALLBACK_SECRET, demo_parameters
from local.fuse_sim import FuseSimulator
from local.receiver import DemoReceiver
from local.sqs_poller import sqs_event
from tests.helpers import API_TOKEN, FUSE_EXAMPLE, PHONE, ROOT, chalice_package

OTHER_PHONE = "+16175551299"

pytestmark = [pytest.mark.slow, pytest.mark.rehearse, pytest.mark.timeout(600)]
AWS_CLI = Path(sys.executable).parent / "aws"
STAGE = "dev"
STACK = f"fuse-bridge-{STAGE}"
# What moto's CloudFormation cannot create, each checked another way below.
NOT_IN_MOTO = {
    "AWS::CloudWatch::Alarm": "moto has no CloudFormation support for alarms",
    "AWS::ApiGateway::Deployment": "moto does not import an API's methods from its Body",
    "AWS::ApiGateway::Stage": "it needs the Deployment",
}
CONFIG = (ROOT / ".chalice" / "config.json").read_text()
RESULTS_SECRET = "whsec_" + "cmVoZWFyc2FsLXJlY2VpdmVyLXNlY3JldA=="


@dataclass
class Deployed:
    packaged_size: int  # bytes of the template `aws cloudformation package` wrote
    endpoint: str
    template: dict[str, Any]  # as deployed (expanded, without what moto cannot create)
    left_out: dict[str, dict[str, Any]]  # logical id -> its definition
    resources: dict[str, dict[str, Any]]  # logical id -> describe_stack_resources entry
    environment: dict[str, dict[str, str]]  # handler -> the deployed function's variables
    parameters: dict[str, str]  # the stack's parameters, as CloudFormation resolved them
    powertools_layer: str  # the ARN of the layer moto holds for the pinned Powertools


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def referenced(value: Any) -> Iterator[str]:
    """The logical ids a template value refers to (Ref, GetAtt, Sub)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                yield inner[0] if isinstance(inner, list) else inner.split(".")[0]
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                yield from re.findall(r"\$\{([A-Za-z0-9]+)[.}]", text)
                yield from referenced(inner)
            else:
                yield from referenced(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from referenced(inner)


def without_what_moto_cannot_create(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Removes those resources, what depends on them, and outputs naming them; returns them."""
    resources = template["Resources"]
    left_out = {k: v for k, v in resources.items() if v["Type"] in NOT_IN_MOTO}
    grown = True
    while grown:
        grown = False
        for name, resource in resources.items():
            depends = resource.get("DependsOn", [])
            depends = [depends] if isinstance(depends, str) else depends
            needs = set(referenced(resource.get("Properties", {}))) | set(depends)
            if name not in left_out and needs & set(left_out):
                left_out[name] = resource
                grown = True
    for name in left_out:
        del resources[name]
    template["Outputs"] = {
        k: v
        for k, v in template.get("Outputs", {}).items()
        if not set(referenced(v)) & set(left_out)
    }
    return left_out


def publish_powertools_layer(template: dict[str, Any]) -> str:
    """The installed Powertools as a layer on moto, and the template's public parameter naming
    it (moto, like AWS, refuses to let anyone else write under /aws/: it is seeded as moto
    seeds its own public parameters). Returns the layer version's ARN."""
    package = Path(aws_lambda_powertools.__file__).parent
    content = io.BytesIO()
    with zipfile.ZipFile(content, "w", zipfile.ZIP_DEFLATED) as layer:
        for path in sorted(package.rglob("*.py")):
            layer.write(path, f"python/{path.relative_to(package.parent)}")
    arn = boto3.client("lambda").publish_layer_version(
        LayerName="AWSLambdaPowertoolsPythonV3-python313-arm64",
        Content={"ZipFile": content.getvalue()},
    )["LayerVersionArn"]
    name = template["Parameters"]["PowertoolsLayer"]["Default"]
    parameters = ssm_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]._parameters
    parameters[name].append(
        Parameter(
            account_id=DEFAULT_ACCOUNT_ID,
            name=name,
            value=arn,
            parameter_type="String",
            description=None,
            allowed_pattern=None,
            keyid=None,
            last_modified_date=utcnow(),
            version=1,
            data_type="text",
        )
    )
    return arn


def aws(endpoint: str, *arguments: str) -> None:
    environment = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "rehearsal",
        "AWS_SECRET_ACCESS_KEY": "rehearsal",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [str(AWS_CLI), *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    build = tmp_path_factory.mktemp("rehearsal")
    chalice_package(STAGE, build / STAGE, "--merge-template", "infra/resources.json")
    add_bytecode(build / STAGE / "deployment.zip")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", endpoint)
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        try:
            boto3.client("s3").create_bucket(Bucket="deploy-code")
            packaged = build / "packaged.json"
            aws(
                endpoint, "cloudformation", "package", "--template-file",
                str(build / STAGE / "sam.json"), "--s3-bucket", "deploy-code", "--use-json",
                "--output-template-file", str(packaged),
            )  # fmt: skip
            expanded = transform(
                json.loads(packaged.read_text()),
                {"Stage": STAGE},
                ManagedPolicyLoader(boto3.client("iam")),
            )
            left_out = without_what_moto_cannot_create(expanded)
            powertools_layer = publish_powertools_layer(expanded)
            # Inline: moto's CloudFormation cannot read a template from its own S3, and the
            # expanded template is past the 51,200 bytes `aws cloudformation deploy` sends
            # inline, so the stack is created by create-stack (which leaves the size to the
            # service; moto takes it). The --s3-bucket that make deploy needs for the packaged
            # template is checked in test_make_deploy_sends_its_template_by_s3.
            (build / "expanded.json").write_text(json.dumps(expanded, separators=(",", ":")))
            aws(
                endpoint, "cloudformation", "create-stack", "--template-body",
                f"file://{build / 'expanded.json'}",
                "--stack-name", STACK, "--capabilities", "CAPABILITY_IAM",
                "CAPABILITY_AUTO_EXPAND", "--parameters",
                f"ParameterKey=Stage,ParameterValue={STAGE}",
            )  # fmt: skip
            aws(endpoint, "cloudformation", "wait", "stack-create-complete", "--stack-name", STACK)
            packaged_size = packaged.stat().st_size
            stack = boto3.client("cloudformation").describe_stack_resources(StackName=STACK)
            functions = boto3.client("lambda").list_functions()["Functions"]
            yield Deployed(
                packaged_size=packaged_size,
                endpoint=endpoint,
                template=expanded,
                left_out=left_out,
                resources={r["LogicalResourceId"]: r for r in stack["StackResources"]},
                environment={
                    f["Handler"].removeprefix("app."): f["Environment"]["Variables"]
                    for f in functions
                },
                parameters={
                    p["ParameterKey"]: p.get("ResolvedValue", p["ParameterValue"])
                    for p in boto3.client("cloudformation").describe_stacks(StackName=STACK)[
                        "Stacks"
                    ][0]["Parameters"]
                },
                powertools_layer=powertools_layer,
            )
        finally:
            server.stop()


def test_the_stack_is_created_and_only_what_moto_cannot_create_is_left_out(
    deployed: Deployed,
) -> None:
    assert set(deployed.resources) == set(deployed.template["Resources"])
    assert {r["ResourceStatus"] for r in deployed.resources.values()} == {"CREATE_COMPLETE"}
    assert {r["Type"] for r in deployed.left_out.values()} == set(NOT_IN_MOTO)  # named, no more
    functions = {"call_requests", "call_requested", "reconcile_calls", "deliver_results"}
    assert {"app", "dispatch_calls", *functions} == set(deployed.environment)
    # Powertools: the stack resolved the public parameter to the layer, and every function takes
    # it. (moto's CloudFormation does not pass a function's Layers on to its Lambda, so they are
    # read in the template the stack was made from.)
    assert deployed.parameters["PowertoolsLayer"] == deployed.powertools_layer
    functions = [
        r for r in deployed.template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
    ]
    assert len(functions) == len(deployed.environment)
    assert all(f["Properties"]["Layers"] == [{"Ref": "PowertoolsLayer"}] for f in functions)


def test_what_moto_cannot_create_is_checked_another_way(deployed: Deployed) -> None:
    """Each alarm watches a resource the stack did create and notifies its topic; the API's
    definition (the Body its Deployment would publish) has exactly the app's routes."""
    resources = deployed.resources
    alarms = {
        name: r["Properties"]
        for name, r in deployed.left_out.items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert len(alarms) >= 8
    api_name = deployed.template["Resources"]["RestAPI"]["Properties"]["Name"]
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        for dimension in alarm["Dimensions"]:
            watched = set(referenced(dimension["Value"]))
            if dimension["Name"] == "ApiName":
                assert dimension["Value"] == api_name, name  # the API the stack created
            elif dimension["Name"] == "Stage":  # the API's stage: the one chalice deploys
                assert dimension["Value"] == json.loads(CONFIG)["api_gateway_stage"], name
            else:
                assert watched, (name, dimension)
                assert watched <= set(resources), (name, watched - set(resources))
    assert resources["AlarmTopic"]["ResourceStatus"] == "CREATE_COMPLETE"
    api = resources["RestAPI"]
    assert api["ResourceType"] == "AWS::ApiGateway::RestApi"
    body = deployed.template["Resources"]["RestAPI"]["Properties"]["Body"]
    documented = {(path, method) for path, item in body["paths"].items() for method in item}
    routes = {(p, m.lower()) for p, views in app.routes.items() for m in views}
    assert routes <= documented  # (chalice adds OPTIONS for none here: no CORS)


def test_each_deployed_handler_works_from_its_own_environment(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call placed over an API Gateway event, its callback stored, an SQS message placed,
    and the result delivered to a receiver: the deployed functions' variables, moto's
    resources the stack made, the Fuse simulator."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", deployed.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    api_env = deployed.environment["app"]
    with FuseSimulator() as fuse, DemoReceiver(RESULTS_SECRET) as receiver:
        put_parameters(
            boto3.client("ssm"),
            api_env["BRIDGE_SSM_PREFIX"],
            {
                **demo_parameters(),
                "integrations/default/results_url": receiver.url,
                "integrations/default/results_secret": RESULTS_SECRET,
            },
        )

        def use(handler: str) -> None:
            variables = {
                **deployed.environment[handler],
                "FUSE_BASE_URL": fuse.url,
                "DELIVERY_PRIVATE_ADDRESSES": "true",  # the receiver is on this machine
            }
            variables.setdefault("PUBLIC_BASE_URL", "https://rehearsal.example/api")
            set_dependencies(build_dependencies(load_settings(variables)))

        try:
            use("app")
            context = LambdaContext("api_handler", 512, max_runtime_ms=30_000)
            answer = app(api_gateway_post("/calls", {"phone": PHONE}), context)
            assert answer["statusCode"] == 202, answer["body"]
            call_id = json.loads(answer["body"])["id"]
            stored = app(callback_event(call_id), context)
            assert json.loads(stored["body"])["status"] == "stored"

            use("call_requests")
            sqs = boto3.client("sqs")
            queue = sqs.get_queue_url(QueueName=api_env["CALL_REQUESTS_QUEUE"])["QueueUrl"]
            for phone in (PHONE, OTHER_PHONE):  # a batch of two: they wait for one bulk
                sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"phone": phone}))
            event, arn = received(sqs, queue, 2)
            outcome = app.handler_map["call_requests"](sqs_event(event, arn, "us-east-1"), context)
            assert outcome == {"batchItemFailures": []}
            assert len(fuse.queue_requests()) == 1  # the API's call alone; the batch's wait

            use("dispatch_calls")
            dispatch = deployed.environment["dispatch_calls"]["DISPATCH_QUEUE"]
            event, arn = received(sqs, sqs.get_queue_url(QueueName=dispatch)["QueueUrl"], 2)
            outcome = app.handler_map["dispatch_calls"](sqs_event(event, arn, "us-east-1"), context)
            assert outcome == {"batchItemFailures": []}
            [bulk] = [r for r in fuse.received if r.path.endswith("/bulk_queue")]
            assert bulk.uploads["csv"].count("\n") == 3  # its header and the two calls

            use("deliver_results")
            deliveries = sqs.get_queue_url(QueueName=api_env["DELIVERY_QUEUE"])["QueueUrl"]
            event, arn = received(sqs, deliveries)
            outcome = app.handler_map["deliver_results"](
                sqs_event(event, arn, "us-east-1"), context
            )
            assert outcome == {"batchItemFailures": []}
            [got] = receiver.received
            assert got.verified
            assert got.json["data"]["id"] == call_id
        finally:
            set_dependencies(None)


def received(sqs: Any, url: str, count: int = 1) -> tuple[list[dict[str, Any]], str]:
    """At least `count` messages of a queue, in at most five receives."""
    messages: list[dict[str, Any]] = []
    for _ in range(5):
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2, AttributeNames=["All"]
        )
        messages += answer.get("Messages", [])
        if len(messages) >= count:
            break
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return messages, arn["Attributes"]["QueueArn"]


def api_gateway_post(path: str, body: dict[str, Any], query: dict | None = None) -> dict:
    return {
        "resource": path,
        "path": path,
        "httpMethod": "POST",
        "headers": {"content-type": "application/json", "authorization": f"Bearer {API_TOKEN}"},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": "POST",
            "stage": "api",
            "domainName": "rehearsal.example",
            "requestId": "r-1",
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def callback_event(call_id: str) -> dict[str, Any]:
    event = api_gateway_post(
        f"/fuse/results/{call_id}",
        FUSE_EXAMPLE,
        {"token": callback_token(call_id, CALLBACK_SECRET)},
    )
    resource = "/fuse/results/{target_id}"
    event["resource"] = event["requestContext"]["resourcePath"] = resource
    event["pathParameters"] = {"target_id": call_id}
    return event


def test_make_deploy_sends_its_template_by_s3(deployed: Deployed) -> None:
    """The packaged template is over the 51,200 bytes CloudFormation takes inline: without
    --s3-bucket, `aws cloudformation deploy` refuses it (found by this rehearsal)."""
    assert deployed.packaged_size > 51_200
    makefile = (ROOT / "Makefile").read_text()
    deploy = makefile.split("cloudformation deploy", 1)[1].split("--parameter-overrides", 1)[0]
    assert "--s3-bucket $(DEPLOY_BUCKET)" in deploy
