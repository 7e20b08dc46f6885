"""A demo results receiver on 127.0.0.1: what a CRM's endpoint does with the bridge's deliveries.

It verifies each delivery's Standard Webhooks signature with the specification's reference
library (`standardwebhooks`, an implementation not the bridge's), keeps it, and prints it when
asked. Tests script its answers (a status, after a delay) to play a receiver that fails, refuses
or hangs. `make local` starts one and points the demo integrations' results_url at it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY = 1 << 20
MAX_DELAY_SECONDS = 10  # a scripted hang never outlives a test by much


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class DemoReceiver:
    def __init__(self, secret: str, port: int = 0, *, echo: bool = False) -> None:
        self._webhook = Webhook(secret)
        self._echo = echo
        self._answers: deque[tuple[int, float]] = deque()
        self._lock = threading.Lock()
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
                receiver.handle(self, self.rfile.read(length))

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/results"

    def script(self, *answers: tuple[int, float]) -> None:
        """The next answers, in order, as (status, seconds to wait first); then 200 at once."""
        with self._lock:
            self._answers.extend(answers)

    def handle(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            self._webhook.verify(body, headers)
            verified = True
        except WebhookVerificationError:
            verified = False
        with self._lock:
            status, delay = self._answers.popleft() if self._answers else (200, 0.0)
            if not verified:
                status = 401
        time.sleep(min(delay, MAX_DELAY_SECONDS))
        with self._lock:
            self.received.append(Received(headers, body, verified, status))
        if self._echo:
            mark = "verified" if verified else "SIGNATURE INVALID"
            print(f"receiver: {headers.get('webhook-id')} ({mark}) {body.decode()}", flush=True)
        request.send_response(status)
        request.send_header("Content-Length", "0")
        request.end_headers()

    def start(self) -> DemoReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> DemoReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
