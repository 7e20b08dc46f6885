"""How a simulated call ends and reports: its call_details, and the encodings its result
callback may come in (Fuse documents the shape, not the encoding)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

ENCODINGS = ("json", "form", "multipart")
OUTCOMES = ("completed", "failed", "canceled", "rejected")


@dataclass
class SimCall:
    """A queued call and how it will end."""

    deployment: tuple[str, str]
    form: dict[str, str]
    queued_at: float
    completes_at: float
    outcome: str
    encoding: str
    calls_back: bool  # False: the callback is "lost" (the reconciler must poll)
    copies: int
    reported: bool = False

    def details(self, now: float) -> dict[str, Any]:
        """Fuse's call_details as its docs' example types them: numbers as digit strings (but
        event timestamps and duration as numbers), the phone in stray single quotes, and start
        and end timestamps empty when none were given."""
        queued, ended = int(self.queued_at), int(self.completes_at)
        done = now >= self.completes_at
        dialing = queued + (ended - queued) // 4
        connected = queued + (ended - queued) // 2
        events = [{"event": "queued", "timestamp": queued}]
        if done and self.outcome in ("completed", "failed", "rejected"):
            events.append({"event": "dialing", "timestamp": dialing})
        if done and self.outcome == "completed":
            events += [
                {"event": "connected", "timestamp": connected},
                {"event": "disconnected", "timestamp": ended},
            ]
        phone = self.form["phone_number"].removeprefix("tel:").split(";")[0].lstrip("+")
        details: dict[str, Any] = {
            "status": self.outcome if done else "queued",
            "attempts": "1" if done and self.outcome != "canceled" else "0",
            "max_attempts": self.form.get("max_attempts", "1"),
            "queued_timestamp": str(queued),
            "start_timestamp": self.form.get("start_timestamp", ""),
            "end_timestamp": self.form.get("end_timestamp", ""),
            "reattempt_wait": self.form.get("reattempt_wait", "0"),
            "events": events,
            "phone_number": f"'{phone}'",
        }
        if done and self.outcome == "completed":
            details["duration"] = ended - connected
        return details


def encode_result(details: dict[str, Any], encoding: str) -> tuple[bytes, str]:
    """A result body in one of the encodings Fuse might use (its docs do not say which)."""
    if encoding == "json":
        return json.dumps(details).encode(), "application/json"
    pairs = []
    for name, value in details.items():
        if name == "events":
            for index, event in enumerate(value):
                pairs += [(f"events[{index}][{k}]", str(v)) for k, v in event.items()]
        else:
            pairs.append((name, str(value)))
    if encoding == "form":
        return urlencode(pairs).encode(), "application/x-www-form-urlencoded"
    boundary = "fuse-simulator-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in pairs
    ]
    body = "".join(parts) + f"--{boundary}--\r\n"
    return body.encode(), f"multipart/form-data; boundary={boundary}"


def post_result(call: SimCall) -> list[dict[str, Any]]:
    """POSTs an ended call's call_details to its result_url, as Fuse does (twice when told to
    duplicate); loopback URLs only, so a simulator never sends anything off this machine.
    Returns what happened to each copy: url, the bridge's status and the start of its answer."""
    url = call.form.get("result_url")
    if not url:
        return []
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
        return [{"url": url, "status": None, "answer": "not sent: not a loopback URL"}]
    body, content_type = encode_result(call.details(call.completes_at), call.encoding)
    sent = []
    for _ in range(call.copies):
        try:
            answer = requests.post(
                url, data=body, headers={"Content-Type": content_type}, timeout=10
            )
            sent.append({"url": url, "status": answer.status_code, "answer": answer.text[:200]})
        except requests.RequestException as err:
            sent.append({"url": url, "status": None, "answer": type(err).__name__})
    return sent
