"""The callback URLs given to Fuse (its `result_url` field), and the token that proves a callback
to one is genuine.

Fuse signs nothing (docs/fuse-contract.md, "Result callbacks"), so the URL itself carries the
proof: an HMAC-SHA256 of the call id under `callback_secret`. Rotating the secret invalidates
the URLs of calls still in flight, which is why it is rotated rarely and deliberately.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from chalicelib.errors import ConfigurationIncomplete, InvalidToken


def callback_token(call_id: str, secret: str) -> str:
    if not secret:  # never a token made, or checked, with an empty key
        raise ConfigurationIncomplete("SSM parameter callback_secret is missing or empty")
    digest = hmac.new(secret.encode(), call_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def is_genuine_callback(call_id: str, token: str, secret: str) -> bool:
    """Constant time, so a forger learns nothing from how long a wrong token takes."""
    return hmac.compare_digest(callback_token(call_id, secret).encode(), token.encode())


def require_genuine(subject: str, token: str | None, secret: str) -> None:
    """Raises InvalidToken (403) unless `token` is the one made for `subject`."""
    if not token or not is_genuine_callback(subject, token, secret):
        raise InvalidToken("the token in this result URL is not valid for it")


def callback_url(public_base_url: str, call_id: str, secret: str) -> str:
    return f"{public_base_url}/fuse/results/{call_id}?token={callback_token(call_id, secret)}"


def list_token_subject(list_id: str) -> str:
    """What a list's token signs: not a call id, so neither token opens the other's URL."""
    return f"batch/{list_id}"


def list_callback_url(public_base_url: str, list_id: str, secret: str) -> str:
    token = callback_token(list_token_subject(list_id), secret)
    return f"{public_base_url}/fuse/results/batch/{list_id}?token={token}"


def bulk_token_subject(bulk_id: str) -> str:
    """What a bulk's token signs: neither a call id nor a list's subject."""
    return f"bulk/{bulk_id}"


def bulk_callback_url(public_base_url: str, bulk_id: str, secret: str) -> str:
    token = callback_token(bulk_token_subject(bulk_id), secret)
    return f"{public_base_url}/fuse/results/bulk/{bulk_id}?token={token}"


def opt_out_subject(call_id: str, number: str) -> str:
    """What a call's opt-out token signs, its call and its number's key: not its callback's
    subject, so neither opens the other (a result URL cannot put a number on the list)."""
    return f"opt-out/{call_id}/{number}"


def opt_out_url(public_base_url: str, call_id: str, number: str, secret: str) -> str:
    """Where the Fuse application posts when the callee asks not to be called again; `number`
    is the number's key (admission/calls.number_key), never the number."""
    token = callback_token(opt_out_subject(call_id, number), secret)
    return f"{public_base_url}/fuse/opt-out/{call_id}?n={number}&token={token}"
