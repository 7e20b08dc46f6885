"""The floor a cold start is compared with: boto3 and requests, the same clients, one bare POST.

Deliberately imports nothing of the bridge's, so the ratio shows everything the bridge adds.
"""

from __future__ import annotations

import os
import sys

import boto3
import requests
from botocore.config import Config

config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
boto3.client("ssm", config=config, region_name="us-east-1")
boto3.client("dynamodb", config=config, region_name="us-east-1")
answer = requests.post(
    os.environ["BENCH_FUSE_URL"] + "/apps/101/201/queue",
    files={"phone_number": (None, "tel:+16175551234;ani=6175550100")},
    auth=("demo@example.com", "local-developer-key"),  # local/demo.py's, written out: no imports
    timeout=10,
)
sys.exit(0 if answer.status_code == 200 else f"unexpected answer: {answer.status_code}")
