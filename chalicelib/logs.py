"""The one logger: JSON lines (Powertools Logger) shared with Chalice's own `app.log`.

Log call ids, references, campaigns and outcome codes freely; phones only through `mask_phone`,
and never a secret or token.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger

SERVICE = "fuse-bridge"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))
