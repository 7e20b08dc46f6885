"""The floor a cold start is compared with: a minimal hand-written Lambda doing the same AWS and
Fuse work as a first POST /calls, with boto3 and requests: get_parameters_by_path, one
conditional put_item (the key), one transaction (the number not suppressed, its count taken),
the callee's zone from a prefix table (the same libphonenumber data the bridge carries, read
as a hand-written Lambda would: json.load and a longest-prefix loop) and its local time there
(calling hours), one conditional update_item (the single-queue budget's slot), one multipart
POST to Fuse, one update_item.

AWS is answered by botocore's Stubber here exactly as on the bridge's side (bench/harness.py),
so neither pays for a network; it imports nothing of the bridge's, so the ratio shows everything
the bridge adds.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import boto3
import requests
from botocore.config import Config
from botocore.stub import Stubber

config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
ssm = boto3.client("ssm", config=config, region_name="us-east-1")
dynamodb = boto3.client("dynamodb", config=config, region_name="us-east-1")
ssm_stub, dynamodb_stub = Stubber(ssm), Stubber(dynamodb)
ssm_stub.add_response("get_parameters_by_path", {"Parameters": []})
dynamodb_stub.add_response("put_item", {})
dynamodb_stub.add_response("transact_write_items", {})
dynamodb_stub.add_response("update_item", {})
dynamodb_stub.add_response("update_item", {})
ssm_stub.activate()
dynamodb_stub.activate()

parameters = ssm.get_parameters_by_path(Path="/fuse-bridge/bench", WithDecryption=True)
item = {"pk": {"S": "call-1"}, "sk": {"S": "call"}, "status": {"S": "pending"}}
dynamodb.put_item(TableName="calls", Item=item, ConditionExpression="attribute_not_exists(pk)")
number = {"pk": {"S": "number#1"}}
dynamodb.transact_write_items(
    TransactItems=[
        {
            "ConditionCheck": {
                "TableName": "calls",
                "Key": {**number, "sk": {"S": "suppressed"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
        {
            "Update": {
                "TableName": "calls",
                "Key": {**number, "sk": {"S": "calls"}},
                "UpdateExpression": "SET calls = list_append(if_not_exists(calls, :none), :c)",
                "ConditionExpression": "attribute_not_exists(calls) OR size(calls) < :cap",
                "ExpressionAttributeValues": {
                    ":none": {"L": []},
                    ":c": {"L": [{"N": "1"}]},
                    ":cap": {"N": "3"},
                },
            }
        },
    ]
)
# chalicelib/'s data file, read by path: the floor imports nothing of the bridge.
zone_data = Path(__file__).resolve().parent.parent / "chalicelib" / "consent" / "zone_prefixes.json"
table = json.loads(zone_data.read_text())
digits = "16175551234"
prefix = next(digits[:n] for n in range(len(digits), 0, -1) if digits[:n] in table["prefixes"])
zone = table["zones"][int(table["prefixes"][prefix].split(",")[0])]
local = datetime.now(UTC).astimezone(ZoneInfo(zone))
in_hours = 8 <= local.hour < 21  # a hand-written check: one zone, the deployment's hours
dynamodb.update_item(
    TableName="calls",
    Key={"pk": {"S": "budget"}, "sk": {"S": "budget"}},
    UpdateExpression="SET next_slot_ms = :next",
    ConditionExpression="attribute_not_exists(next_slot_ms) OR next_slot_ms <= :now",
    ExpressionAttributeValues={":now": {"N": "1000"}, ":next": {"N": "1500"}},
)
answer = requests.post(
    os.environ["BENCH_FUSE_URL"] + "/apps/101/201/queue",
    files={"phone_number": (None, "tel:+16175551234;ani=6175550100")},
    auth=("demo@example.com", "local-developer-key"),  # local/demo.py's, written out: no imports
    timeout=10,
)
dynamodb.update_item(
    TableName="calls",
    Key={"pk": {"S": "call-1"}, "sk": {"S": "call"}},
    UpdateExpression="SET #s = :s",
    ExpressionAttributeNames={"#s": "status"},
    ExpressionAttributeValues={":s": {"S": "queued"}},
)
sys.exit(0 if answer.status_code == 200 else f"unexpected answer: {answer.status_code}")
