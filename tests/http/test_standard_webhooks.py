"""Standard Webhooks, both ways: the specification's vector verifies, what the bridge signs the
reference library accepts, and what the reference library signs the bridge accepts."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from chalicelib.http.standard_webhooks import StandardWebhooks, secret_key

# The specification's reference library's signing vector (libraries/python tests).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_HEADERS = {
    "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "webhook-timestamp": "1614265330",
    "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_NOW = 1614265330


def test_the_specifications_vector_verifies_and_nothing_else_does() -> None:
    signer = StandardWebhooks.of([VECTOR_SECRET])
    assert signer is not None
    assert signer.verify(VECTOR_HEADERS, VECTOR_BODY, VECTOR_NOW)
    rotating = StandardWebhooks.of(["whsec_b2xkLXNlY3JldA==", VECTOR_SECRET])
    assert rotating is not None
    assert rotating.verify(VECTOR_HEADERS, VECTOR_BODY, VECTOR_NOW)
    assert not signer.verify(VECTOR_HEADERS, VECTOR_BODY, VECTOR_NOW + 301)  # too old
    assert not signer.verify(VECTOR_HEADERS, b'{"test": 2432232315}', VECTOR_NOW)  # tampered
    assert not signer.verify({**VECTOR_HEADERS, "webhook-id": "msg_other"}, VECTOR_BODY, VECTOR_NOW)


def test_the_bridges_signature_is_the_specifications() -> None:
    """Signing the vector's message gives the vector's signature, and the reference library
    verifies what the bridge signs."""
    signer = StandardWebhooks.of([VECTOR_SECRET])
    assert signer is not None
    signed = signer.signature("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", VECTOR_BODY)
    assert signed == VECTOR_HEADERS["webhook-signature"]
    now = datetime.now(UTC).timestamp()
    headers = signer.headers("msg_1", b'{"a": 1}', now)
    assert Webhook(VECTOR_SECRET).verify(b'{"a": 1}', headers) == {"a": 1}


def test_what_the_reference_library_signs_verifies() -> None:
    moment = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_2",
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(VECTOR_SECRET).sign("msg_2", moment, '{"b": 2}'),
    }
    signer = StandardWebhooks.of([VECTOR_SECRET])
    assert signer is not None
    assert signer.verify(headers, b'{"b": 2}', moment.timestamp())


def test_only_whsec_base64_secrets_make_a_signer() -> None:
    assert StandardWebhooks.of([]) is None
    assert StandardWebhooks.of(["whsec_not base64!"]) is None
    assert StandardWebhooks.of([VECTOR_SECRET, "whsec_"]) is None  # every one must be usable
    assert secret_key("whsec_b2xkLXNlY3JldA==") == b"old-secret"
    assert "Mf" not in repr(StandardWebhooks.of([VECTOR_SECRET]))  # never printed


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    message_id=st.from_regex(r"[A-Za-z0-9_.]{1,30}", fullmatch=True),
    zeros=st.integers(min_value=0, max_value=2),
)
def test_each_signed_field_is_read_as_the_sender_writes_it(message_id: str, zeros: int) -> None:
    """A timestamp with a leading zero is refused even when signed, and so is an id holding
    the separator `.` with a body that starts like a timestamp: otherwise two different (id,
    timestamp) could sign the same string, and a replay could come with another webhook-id,
    the key of its call. An id with a `.` and any other body is the sender's own."""
    signer = StandardWebhooks.of([VECTOR_SECRET])
    assert signer is not None
    timestamp = "0" * zeros + str(VECTOR_NOW)
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signer.signature(message_id, timestamp, VECTOR_BODY),
    }
    assert signer.verify(headers, VECTOR_BODY, VECTOR_NOW) == (zeros == 0)
    two_ways = f"{VECTOR_NOW}.".encode() + VECTOR_BODY  # id `a.b` and this body: or id `a`
    signed = {**headers, "webhook-signature": signer.signature(message_id, timestamp, two_ways)}
    assert signer.verify(signed, two_ways, VECTOR_NOW) == (zeros == 0 and "." not in message_id)
