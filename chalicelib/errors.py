"""Every failure a caller or an event handler must tell apart, each with its HTTP status and code.

The codes are a stable public interface: integrations branch on them, so a code is never renamed.
Messages name the field at fault and never carry a secret, a token or a full phone number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from chalice import ChaliceUnhandledError

RETRY_AFTER_SECONDS = 30
MAX_DETAILS = 100


@dataclass(frozen=True)
class FieldError:
    """One bad field: `field` is a JSON path such as `variables.name` or a header name."""

    field: str
    message: str


class BridgeError(ChaliceUnhandledError):
    """Base of the errors the bridge answers deliberately; anything else is a bug (500).

    A ChaliceUnhandledError, so Chalice lets it out of a view to the `http` middleware in
    app.py, which gives every route the same error shape.
    """

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    retry_after: ClassVar[int | None] = None

    def __init__(
        self,
        message: str,
        details: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = tuple(details)
        self.headers = dict(headers or {})
        if self.retry_after is not None:
            self.headers.setdefault("Retry-After", str(self.retry_after))

    def body(self) -> dict[str, Any]:
        """The JSON error shape every route answers with. At most MAX_DETAILS details: a body
        of 10,000 bad fields must not make an answer (or a stored rejection) of megabytes; the
        message says how many there were."""
        shown = self.details[:MAX_DETAILS]
        message = self.message
        if len(self.details) > MAX_DETAILS:
            message += f" ({len(self.details)} problems; the first {MAX_DETAILS} are listed)"
        return {
            "error": {
                "code": self.code,
                "message": message,
                "details": [{"field": d.field[:200], "message": d.message} for d in shown],
            }
        }


class InvalidJson(BridgeError):
    status, code = 400, "invalid_json"


class InvalidCursor(BridgeError):
    """A page cursor this bridge did not give out for this listing (forged, or another's)."""

    status, code = 400, "invalid_cursor"

    def __init__(self) -> None:
        super().__init__("the cursor is not one this list gave out; start again without it")


class InvalidQuery(BridgeError):
    """A query parameter given twice: which one was meant cannot be known."""

    status, code = 400, "invalid_query"


class InvalidForm(BridgeError):
    status, code = 400, "invalid_form"


class InvalidXml(BridgeError):
    """A body that is not the XML it must be (a Salesforce outbound message's SOAP envelope)."""

    status, code = 400, "invalid_xml"


class Unauthorized(BridgeError):
    status, code = 401, "unauthorized"


class Forbidden(BridgeError):
    """A valid API token, but the action needs an admin token."""

    status, code = 403, "forbidden"


class InvalidToken(BridgeError):
    """A result callback whose token is not the HMAC of its call id: not from Fuse."""

    status, code = 403, "invalid_token"


class CampaignNotAllowed(BridgeError):
    """The integration's `campaigns` parameter does not list the campaign the request names."""

    status, code = 403, "campaign_not_allowed"


class NotFound(BridgeError):
    status, code = 404, "not_found"


class MethodNotAllowed(BridgeError):
    status, code = 405, "method_not_allowed"


class IdempotencyInProgress(BridgeError):
    status, code = 409, "idempotency_in_progress"


class PayloadTooLarge(BridgeError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(BridgeError):
    status, code = 415, "unsupported_media_type"


class ValidationFailed(BridgeError):
    status, code = 422, "validation_failed"


class IdempotencyKeyReused(BridgeError):
    status, code = 422, "idempotency_key_reused"


class OutsideCallingHours(BridgeError):
    """The request's own window (start_at to end_at) holds no moment inside the callee's
    calling hours: nothing would ring, so nothing is queued."""

    status, code = 422, "outside_calling_hours"


class PhoneSuppressed(BridgeError):
    """The number is on the deployment's do-not-call list (PUT /suppressions/{phone})."""

    status, code = 422, "phone_suppressed"


class CallLimitReached(BridgeError):
    """The number has had its most calls of the last 24 hours (MAX_CALLS_PER_NUMBER, or a
    calling rule's lower cap)."""

    status, code = 422, "call_limit_reached"


class FuseError(BridgeError):
    """Base of every answer about Fuse itself. Each subclass says whether Fuse may have queued
    the call: only FuseOutcomeUnknown leaves that open."""


class FuseRejectedRequest(FuseError):
    """Fuse answered 400: the request was understood and refused; nothing was queued."""

    status, code = 422, "fuse_rejected_request"


class ConfigurationIncomplete(BridgeError):
    """A required setting or SSM parameter is missing: an operator must fix the deployment."""

    status, code = 500, "configuration_incomplete"


class FuseCredentialsRejected(FuseError):
    status, code = 502, "fuse_credentials_rejected"


class FuseDeploymentNotFound(FuseError):
    status, code = 502, "fuse_deployment_not_found"


class FuseCallNotFound(FuseError):
    """Fuse's status API does not know a call the bridge queued (only the reconciler meets this)."""

    status, code = 502, "fuse_call_not_found"


class FuseUnexpectedResponse(FuseError):
    """Fuse answered a status its documentation does not list; nothing was queued."""

    status, code = 502, "fuse_unexpected_response"


class FuseUnavailable(FuseError):
    """Fuse could not take the request (500, refused, DNS): nothing queued, a retry may queue."""

    status, code, retry_after = 503, "fuse_unavailable", RETRY_AFTER_SECONDS


class SecretsUnavailable(BridgeError):
    status, code, retry_after = 503, "secrets_unavailable", RETRY_AFTER_SECONDS


class StoreUnavailable(BridgeError):
    status, code, retry_after = 503, "store_unavailable", RETRY_AFTER_SECONDS


class NoTimeLeft(BridgeError):
    """The request's time ran out before all of it was done (a Salesforce message of many
    notifications): what is done stays done, and the sender's retry does the rest."""

    status, code, retry_after = 503, "no_time_left", RETRY_AFTER_SECONDS


class DeliveriesUnavailable(BridgeError):
    """The delivery queue (SQS) did not take a redriven delivery; it stays failed, for another
    redrive."""

    status, code, retry_after = 503, "deliveries_unavailable", RETRY_AFTER_SECONDS


class FuseOutcomeUnknown(FuseError):
    """The request reached Fuse but no readable answer came back: the call may be queued.

    Never retried by the bridge; the record stays `unknown` until Fuse's callback settles it.
    """

    status, code = 504, "fuse_outcome_unknown"


# How every FuseOutcomeUnknown ends, whatever left the outcome unknown.
NOT_RETRIED = (
    "the call may have been queued. It will not be retried: its result callback will settle it"
)
