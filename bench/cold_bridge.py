"""One cold start: a fresh process imports the Lambda handler and serves its first POST /calls."""

from __future__ import annotations

import os
import sys

from app import app
from bench.harness import CALL, LambdaContext, api_event, stubbed_dependencies
from chalicelib.config.dependencies import set_dependencies

deps, _ = stubbed_dependencies(os.environ["BENCH_FUSE_URL"], calls=1)
set_dependencies(deps)
answer = app(api_event(CALL), LambdaContext())
sys.exit(0 if answer["statusCode"] == 202 else f"unexpected answer: {answer}")
