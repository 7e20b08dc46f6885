"""No result lost: ask Fuse about calls whose callback never came, resend failed events and
deliveries, and match a list's early results to its contacts.

Runs on a schedule. It reads the sparse `open_calls` index (never a scan), looks at a bounded
number of calls per run, stops early when the invocation's time runs short or Fuse is in trouble,
and leaves calls alone that Fuse says are still in progress (it looks again later).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.parameters import Parameters
from chalicelib.deliveries.messages import outcome_detail
from chalicelib.deliveries.queueing import deliver_outcome, requeue
from chalicelib.errors import BridgeError, FuseCallNotFound
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.placing.bulk_requests import net_at
from chalicelib.placing.dispatch import expire, expiry, settle_stale_claim
from chalicelib.queues import NotQueued
from chalicelib.records import PENDING, QUEUED, SOURCE_POLL, UNKNOWN, WAITING, CallRecord, Kind
from chalicelib.results.announce import announce_outcome
from chalicelib.results.callbacks import match_unmatched, read_callback
from chalicelib.results.publisher import ResultNotPublished
from chalicelib.store.callbacks import StoreOutcome
from chalicelib.store.deliveries import Delivery

RECHECK_SECONDS = 900  # a call still in progress is asked about again after this
POLL_MARGIN_SECONDS = 1  # beyond one status read: the one write that stores its answer
STALE_LIST_SECONDS = 3600  # a list still pending this long after its lock: its placing died


@dataclass
class ReconcileReport:
    due: int = 0
    settled: int = 0
    in_progress: int = 0
    unreadable: int = 0  # answers that could not be read: kept beside their call, asked again
    published: int = 0
    matched: int = 0  # a list's results kept beside it, now on their contacts' calls
    requeued: int = 0  # deliveries handed to the queue again
    closed: int = 0
    failed: int = 0
    stopped_early: str | None = None


def reconcile(
    deps: Dependencies, parameters: Parameters, time_left: Callable[[], float]
) -> ReconcileReport:
    now = math.floor(deps.clock())
    due = deps.store.due_for_check(now, deps.settings.reconcile_per_run)
    report = ReconcileReport(due=len(due))
    parameters.require("fuse/email", "fuse/developer_key")  # before any call is looked at
    # Stop while one more Fuse request still fits in what is left of the invocation.
    margin = deps.settings.fuse_timeout_seconds + POLL_MARGIN_SECONDS
    for record in due:
        if time_left() < margin:
            report.stopped_early = "time"
            break
        try:
            look_at(deps, parameters, record, now, report)
        except BridgeError as err:  # Fuse (or the store) in trouble: do not hammer it
            report.failed += 1
            report.stopped_early = err.code
            break
        except Exception:  # a bug met by this one alone: the others are still looked at
            report.failed += 1
            logger.exception(
                "reconciling failed unexpectedly", extra={"call_id": record_id(record)}
            )
            if not isinstance(record, Delivery):
                with contextlib.suppress(BridgeError):
                    deps.store.check_again_at(record.id, now + RECHECK_SECONDS, record.kind)
    logger.info("reconciler run", extra=asdict(report))
    return report


def record_id(record: CallRecord | Delivery) -> str:
    return record.call_id if isinstance(record, Delivery) else record.id


def look_at(
    deps: Dependencies,
    parameters: Parameters,
    record: CallRecord | Delivery,
    now: int,
    report: ReconcileReport,
) -> None:
    """What the reconciler does with one thing due in its index."""
    if isinstance(record, Delivery):  # not attempted in its time: SQS lost it, or refused it
        report.requeued += requeue(record, now, deps)
    elif record.kind == Kind.LIST:  # results kept beside it while its contacts were written
        match_list(deps, parameters, record, now, report)
    elif record.status == WAITING:  # its dispatch message was lost, or it was released
        wait_on(deps, parameters, record, now, report)
    elif record.needs_publish and record.result is not None:
        announce_again(deps, parameters, record, now, report)
    elif record.status in (QUEUED, UNKNOWN) and record.fuse_call_id:  # an id learnt late
        try:
            poll(deps, parameters, record, now, report)
        except FuseCallNotFound:
            report.failed += 1
            logger.warning("Fuse does not know a queued call", extra={"call_id": record.id})
            deps.store.check_again_at(record.id, now + RECHECK_SECONDS)
    else:  # settled meanwhile, or nothing to ask Fuse about
        deps.store.close(record.id)
        report.closed += 1


def wait_on(
    deps: Dependencies,
    parameters: Parameters,
    record: CallRecord,
    now: int,
    report: ReconcileReport,
) -> None:
    """A waiting call whose message SQS did not take, or was lost (it is here when it can no
    longer go): expired, or handed to the dispatch queue again while it can still go. A claim
    its dispatcher left is settled by its bulk's status."""
    if record.bulk_id is not None:
        if record.lock_until > now or not settle_stale_claim(record, now, deps):
            deps.store.check_again_at(record.id, now + RECHECK_SECONDS)  # its bulk's, or settled
            return
        record = replace(record, bulk_id=None)  # free again
    if reason := expiry(record, now, deps.settings.dispatch_max_wait_seconds):
        if expire(record, reason, now, parameters, deps):
            deps.store.close(record.id)
            report.closed += 1
        return
    try:
        deps.dispatch.send({"call_id": record.id})
    except NotQueued:
        report.failed += 1
        deps.store.check_again_at(record.id, now + RECHECK_SECONDS)
        return
    report.requeued += 1
    deps.store.check_again_at(record.id, net_at(record, deps))


def match_list(
    deps: Dependencies,
    parameters: Parameters,
    record: CallRecord,
    now: int,
    report: ReconcileReport,
) -> None:
    """A list's results kept beside it go to their contacts' calls, once its placing is over:
    while it is still being placed (an invocation outliving its lock), it is looked at again
    later; one whose placing died never settles, and what can be matched of it is."""
    report.matched += match_unmatched(record.id, parameters, deps)
    abandoned = now > record.lock_until + STALE_LIST_SECONDS
    if record.status == PENDING and not abandoned:
        deps.store.check_again_at(record.id, now + RECHECK_SECONDS, Kind.LIST)
        return
    deps.store.close(record.id, Kind.LIST)
    report.closed += 1


def poll(
    deps: Dependencies,
    parameters: Parameters,
    record: CallRecord,
    now: int,
    report: ReconcileReport,
) -> None:
    read = deps.fuse.call_status(parameters.fuse_credentials, record.fuse_call_id or "")
    callback, outcome = read_callback(record.id, SOURCE_POLL, read.body, read.content_type, now)
    expires_at = deps.settings.expires_at(now)
    if outcome is None:
        if callback.parse_error is not None:
            # Kept beside the call as received (flagged), so nobody has to wonder what Fuse said.
            report.unreadable += 1
            deps.store.callbacks.add(callback, None, now, expires_at)
            logger.warning(
                "unreadable status answer kept",
                extra={"call_id": record.id, "unreadable": callback.parse_error},
            )
        else:
            report.in_progress += 1
        deps.store.check_again_at(record.id, now + RECHECK_SECONDS)
        return
    if deps.store.callbacks.add(callback, outcome, now, expires_at) == StoreOutcome.STORED:
        report.settled += 1
        count("ResultsSettledByReconciler")
        logger.info(
            "result settled by polling",
            extra={"call_id": record.id, "call_status": outcome["status"]},
        )
        announced = announce_outcome(record.id, outcome, now, parameters, deps, record=record)
        report.published += announced
    else:
        deps.store.close(record.id)
        report.closed += 1


def announce_again(
    deps: Dependencies,
    parameters: Parameters,
    record: CallRecord,
    now: int,
    report: ReconcileReport,
) -> None:
    """What its outcome's announcement could not do: its delivery kept and queued (a second
    copy of one outcome keeps the first) and its event sent (an event may come twice)."""
    if deps.deliveries.enabled and parameters.delivering:
        deliver_outcome(record, record.result, now, parameters, deps)
    if deps.publisher.enabled:
        try:
            deps.publisher.publish(record.id, outcome_detail(record, record.result or {}))
        except ResultNotPublished:
            report.failed += 1
            return
        report.published += 1
    else:
        report.closed += 1
    deps.store.close(record.id)
