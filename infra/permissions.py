"""What each function calls on AWS, declared once, and the least-privilege policy of each.

`python -m infra.permissions` writes `.chalice/policy-{stage}-{function}.json` from the table
below; the tests check that the written files are what the table says, that each packaged role
holds exactly them, and that what each function really calls (recorded under moto) is in its
row. Transactions need the actions they hold (PutItem, UpdateItem, ConditionCheckItem); Lambda's
SQS event source polls with the consuming function's role; an EventBridge function's failed
events go to the call-request DLQ with its role.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("dev", "prod")
READ_PARAMETERS = {"ssm:GetParametersByPath"}
SEND_DELIVERIES = {"sqs:SendMessage", "sqs:GetQueueUrl"}
SEND_TO_WAIT = {"sqs:SendMessage", "sqs:GetQueueUrl"}  # a call that waits for a bulk
CONSUME = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
PLACE = {
    "dynamodb:PutItem",  # the key's lock, a rejection kept
    "dynamodb:UpdateItem",  # Fuse's answer on it
    "dynamodb:DeleteItem",  # the lock freed when Fuse queued nothing
    "dynamodb:GetItem",  # a replay
    "dynamodb:Query",  # an expired key reused: what its earlier life left
    "dynamodb:BatchWriteItem",  # ... deleted
    "dynamodb:ConditionCheckItem",  # the number not on the do-not-call list, as it is counted
}
# function -> resource kind -> actions
FUNCTIONS: dict[str, dict[str, set[str]]] = {
    "api_handler": {
        "parameters": READ_PARAMETERS,
        # a callback's transaction; a list's result read several ways (which contacts exist)
        # and the do-not-call list: a list's contacts read 100 at a time, a list sync written
        "table": PLACE | {"dynamodb:BatchGetItem"},
        "bus": {"events:PutEvents"},
        "deliveries": SEND_DELIVERIES,
        "dispatch": SEND_TO_WAIT,
    },
    "call_requests": {
        "parameters": READ_PARAMETERS,
        "table": PLACE,
        "call-requests": CONSUME,
        "deliveries": SEND_DELIVERIES,
        "dispatch": SEND_TO_WAIT,
    },
    "call_requested": {
        "parameters": READ_PARAMETERS,
        "table": PLACE,
        "call-requests-dlq": {"sqs:SendMessage"},
        "deliveries": SEND_DELIVERIES,
        "dispatch": SEND_TO_WAIT,
    },
    "dispatch_calls": {
        "parameters": READ_PARAMETERS,
        # the budget's breaker read and shut; waiting calls read, claimed, settled; a bulk kept
        "table": {
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:UpdateItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:BatchWriteItem",
        },
        "dispatch": CONSUME | {"sqs:ChangeMessageVisibility", "sqs:GetQueueUrl"},
        "deliveries": SEND_DELIVERIES,  # an expired call's delivery
    },
    "reconcile_calls": {
        "parameters": READ_PARAMETERS,
        "table": {
            "dynamodb:Query",
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:PutItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:BatchGetItem",  # a list's early results, read several ways
        },
        "bus": {"events:PutEvents"},
        "deliveries": SEND_DELIVERIES,
        "dispatch": SEND_TO_WAIT,  # a waiting call whose message was lost
    },
    "deliver_results": {
        "parameters": READ_PARAMETERS,
        # an attempt on its delivery and call; a failure's mark kept, and cleared by a success
        "table": {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
        },
        "deliveries": CONSUME | {"sqs:ChangeMessageVisibility", "sqs:GetQueueUrl"},
    },
}


def resources(kind: str, stage: str) -> list[str]:
    name = f"fuse-bridge-{stage}"
    return {
        "parameters": [
            f"arn:aws:ssm:*:*:parameter/fuse-bridge/{stage}",
            f"arn:aws:ssm:*:*:parameter/fuse-bridge/{stage}/*",
        ],
        "table": [
            f"arn:aws:dynamodb:*:*:table/{name}-calls",
            f"arn:aws:dynamodb:*:*:table/{name}-calls/index/*",
        ],
        "bus": [f"arn:aws:events:*:*:event-bus/{name}-results"],
        "call-requests": [f"arn:aws:sqs:*:*:{name}-call-requests"],
        "call-requests-dlq": [f"arn:aws:sqs:*:*:{name}-call-requests-dlq"],
        "deliveries": [f"arn:aws:sqs:*:*:{name}-deliveries"],
        "dispatch": [f"arn:aws:sqs:*:*:{name}-dispatch"],
    }[kind]


def policy(function: str, stage: str) -> dict:
    """Its own logs (the template creates the groups: no CreateLogGroup), SecureStrings
    decrypted only through SSM, its row of the table, and X-Ray where tracing is on (prod)."""
    statements = [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"arn:aws:logs:*:*:log-group:/aws/lambda/fuse-bridge-{stage}*",
        },
        {
            "Sid": "DecryptSecureStringsThroughSsmOnly",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": "arn:aws:kms:*:*:key/*",
            "Condition": {"StringLike": {"kms:ViaService": "ssm.*.amazonaws.com"}},
        },
    ]
    for kind, actions in FUNCTIONS[function].items():
        sid = "".join(part.capitalize() for part in kind.split("-"))
        statements.append(
            {
                "Sid": sid,
                "Effect": "Allow",
                "Action": sorted(actions),
                "Resource": resources(kind, stage),
            }
        )
    if stage == "prod":
        statements.append(
            {
                "Sid": "XRayTracing",
                "Effect": "Allow",
                "Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
                "Resource": "*",
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def policy_file(function: str, stage: str) -> str:
    return f"policy-{stage}-{function}.json"


def rendered(function: str, stage: str) -> str:
    return json.dumps(policy(function, stage), indent=2) + "\n"


def main() -> None:
    for stage in STAGES:
        for function in FUNCTIONS:
            (ROOT / ".chalice" / policy_file(function, stage)).write_text(rendered(function, stage))
    config_path = ROOT / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    for stage in STAGES:
        settings = config["stages"][stage]
        settings.pop("iam_policy_file", None)
        settings["lambda_functions"] = {
            function: {
                **settings.get("lambda_functions", {}).get(function, {}),
                "iam_policy_file": policy_file(function, stage),
            }
            for function in FUNCTIONS
        }
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {len(STAGES) * len(FUNCTIONS)} policies", file=sys.stderr)


if __name__ == "__main__":
    main()
