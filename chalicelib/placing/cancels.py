"""Campaign-wide actions: cancelling every pending call of a campaign's Fuse deployment."""

from __future__ import annotations

import math

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.parameters import Parameters
from chalicelib.errors import ConfigurationIncomplete, NotFound
from chalicelib.logs import logger
from chalicelib.records import CANCEL_REQUESTED, Reply
from chalicelib.timestamps import iso


def cancel_pending(name: str, parameters: Parameters, deps: Dependencies) -> Reply:
    """Fuse cancels all pending calls of the deployment (it has no per-call cancel); the
    campaign's queued calls then read `cancel_requested` until their `canceled` results arrive."""
    campaign = parameters.campaigns.get(name)
    if campaign is None:
        known = ", ".join(sorted(parameters.campaigns)) or "none"
        raise NotFound(f"no campaign {name[:64]!r}; configured campaigns: {known}")
    if campaign.problem:
        raise ConfigurationIncomplete(campaign.problem)
    deps.fuse.cancel_pending(parameters.fuse_credentials, campaign)
    now = math.floor(deps.clock())
    deps.store.markers.mark_cancel_requested(name, now)
    logger.info("campaign cancel requested", extra={"campaign": name})
    return Reply(202, {"campaign": name, "status": CANCEL_REQUESTED, "requested_at": iso(now)})
