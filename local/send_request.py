"""Drops a call request on the local SQS queue, as a CRM would drop one on the deployed queue.

    .venv/bin/python -m local.send_request '{"phone": "+16175551234", "reference": "lead-43"}'

`make local` must be running (it consumes the queue as Lambda's event source would).
"""

from __future__ import annotations

import os
import sys

import boto3

from local.run import FAKE_AWS, HOST, stage_environment


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sqs = boto3.client(
        "sqs",
        endpoint_url=f"http://{HOST}:{os.environ.get('MOTO_PORT', '5000')}",
        region_name=FAKE_AWS["AWS_REGION"],
        aws_access_key_id=FAKE_AWS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
    )
    queue_url = sqs.get_queue_url(QueueName=stage_environment()["CALL_REQUESTS_QUEUE"])["QueueUrl"]
    answer = sqs.send_message(QueueUrl=queue_url, MessageBody=sys.argv[1])
    print(f"sent as message {answer['MessageId']} to {queue_url}")


if __name__ == "__main__":
    main()
