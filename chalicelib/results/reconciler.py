"""No result lost: ask Fuse about calls whose callback never came, and resend failed events.

Runs on a schedule. It reads the sparse `open_calls` index (never a scan), looks at a bounded
number of calls per run, stops early when the invocation's time runs short or Fuse is in trouble,
and leaves calls alone that Fuse says are still in progress (it looks again later).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.parameters import FuseCredentials, Secrets
from chalicelib.deliveries.attempts import enqueue
from chalicelib.errors import BridgeError, FuseCallNotFound
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.records import POLL, QUEUED, UNKNOWN, CallRecord
from chalicelib.results.callbacks import publish_outcome, read_delivery
from chalicelib.results.events import ResultNotPublished
from chalicelib.store.calls import StoreOutcome

RECHECK_SECONDS = 900  # a call still in progress is asked about again after this


@dataclass
class ReconcileReport:
    due: int = 0
    settled: int = 0
    in_progress: int = 0
    unreadable: int = 0  # answers that could not be read: kept beside their call, asked again
    published: int = 0
    closed: int = 0
    failed: int = 0
    stopped_early: str | None = None


def reconcile(
    deps: Dependencies, secrets: Secrets, time_left: Callable[[], float]
) -> ReconcileReport:
    now = math.floor(deps.clock())
    due = deps.store.due_for_check(now, deps.settings.reconcile_per_run)
    report = ReconcileReport(due=len(due))
    credentials = secrets.fuse_credentials
    # Stop while one more Fuse request still fits in what is left of the invocation.
    margin = deps.settings.fuse_timeout_seconds + 1
    for record in due:
        if time_left() < margin:
            report.stopped_early = "time"
            break
        if record.needs_publish and record.result is not None:
            resend_event(deps, record, report)
        elif record.status in (QUEUED, UNKNOWN) and record.fuse_call_id:  # an id learnt late
            try:
                poll(deps, credentials, record, now, report)
            except FuseCallNotFound:
                report.failed += 1
                logger.warning("Fuse does not know a queued call", extra={"call_id": record.id})
                deps.store.check_again_at(record.id, now + RECHECK_SECONDS)
            except BridgeError as err:  # Fuse (or the store) in trouble: do not hammer it
                report.failed += 1
                report.stopped_early = err.code
                break
            except Exception:  # a bug met by this call alone: the others are still polled
                report.failed += 1
                logger.exception("poll failed unexpectedly", extra={"call_id": record.id})
                with contextlib.suppress(BridgeError):
                    deps.store.check_again_at(record.id, now + RECHECK_SECONDS)
        else:  # settled meanwhile, or nothing to ask Fuse about
            deps.store.close(record.id)
            report.closed += 1
    logger.info("reconciler run", extra=asdict(report))
    return report


def poll(
    deps: Dependencies,
    credentials: FuseCredentials,
    record: CallRecord,
    now: int,
    report: ReconcileReport,
) -> None:
    answer = deps.fuse.call_status(credentials, record.fuse_call_id or "")
    delivery, outcome = read_delivery(record.id, POLL, answer.body, answer.content_type, now)
    expires_at = deps.settings.expires_at(now)
    if outcome is None:
        if delivery.parse_error is not None:
            # Kept beside the call as received (flagged), so nobody has to wonder what Fuse said.
            report.unreadable += 1
            deps.store.store_result(delivery, None, now, expires_at)
            logger.warning(
                "unreadable status answer kept",
                extra={"call_id": record.id, "unreadable": delivery.parse_error},
            )
        else:
            report.in_progress += 1
        deps.store.check_again_at(record.id, now + RECHECK_SECONDS)
        return
    if deps.store.store_result(delivery, outcome, now, expires_at) == StoreOutcome.STORED:
        report.settled += 1
        count("ResultsSettledByReconciler")
        logger.info(
            "result settled by polling",
            extra={"call_id": record.id, "call_status": outcome["status"]},
        )
        report.published += publish_outcome(deps, record.id, outcome, now, record)
    else:
        deps.store.close(record.id)
        report.closed += 1


def resend_event(deps: Dependencies, record: CallRecord, report: ReconcileReport) -> None:
    """What the outcome's first announcement could not do: its event, its delivery's queueing
    (both again: an event may come twice, a delivery is recognised by its webhook-id)."""
    if record.delivery is None and not queue_again(deps, record):
        report.failed += 1
        return
    if not deps.events.enabled:
        deps.store.close(record.id)
        report.closed += 1
        return
    try:
        deps.events.publish(record, record.result or {})
    except ResultNotPublished:
        report.failed += 1
        return
    deps.store.close(record.id)
    report.published += 1


def queue_again(deps: Dependencies, record: CallRecord) -> bool:
    """False only when a delivery is due and could not be queued."""
    return enqueue(record, deps.secrets.get(), deps) is not False
