"""A small, honest model of Plum Fuse's queue API (shared/fuse-api.md), for tests and make local.

It checks what the documentation states (Basic auth, known application/deployment, multipart form,
the field rules) and answers as documented: 200 with a `call_id` and a `Link` header, or an error
status with `{"error": "..."}`. Switches make it fail on purpose (500, hang, garbage), and it keeps
every request it received so tests can assert exactly what the bridge sent.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import io
import itertools
import json
import re
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from werkzeug.wrappers import Request, Response

# normal; error500: Fuse's documented 500; hang: queue, then answer after the client gave up;
# garbage: queue, then answer 200 with an unreadable body; link_only: 200 whose only call id is
# in the Link header (the body's layout is undocumented, so the bridge must cope with either).
MODES = ("normal", "error500", "hang", "garbage", "link_only")
ENCODINGS = ("json", "form", "multipart")
OUTCOMES = ("completed", "failed", "canceled", "rejected")
PHONE = re.compile(r"^(tel:)?\+?\d{7,15}$")
ANI = re.compile(r"^\+?\d{7,15}$")
POSTD = re.compile(r"^[0-9*#,w]+$")
QUEUE_PATH = re.compile(r"^/api/apps/([^/]+)/([^/]+)/queue$")
BULK_PATH = re.compile(r"^/api/apps/([^/]+)/([^/]+)/bulk_queue$")
CANCEL_PATH = re.compile(r"^/api/apps/([^/]+)/([^/]+)/cancel$")
STATUS_PATH = re.compile(r"^/api/outbound/([^/]+)$")


@dataclass(frozen=True)
class Received:
    """One request as the simulator saw it."""

    method: str
    path: str
    content_type: str
    auth: tuple[str, str] | None
    form: dict[str, str]
    files: tuple[str, ...] = ()
    client_port: int = 0  # one port for many requests means the client kept its connection
    uploads: dict[str, str] = field(default_factory=dict)  # file parts, as text

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "content_type": self.content_type,
            "form": self.form,
            "files": list(self.files),
        }


@dataclass
class FuseSimulator:
    email: str = "demo@example.com"
    developer_key: str = "local-developer-key"
    deployments: Iterable[tuple[str, str]] = (("101", "201"), ("102", "202"))
    host: str = "127.0.0.1"
    port: int = 0
    hang_seconds: float = 30.0
    mode: str = "normal"
    # (status, message): answer every queue request so, after auth; for statuses no rule produces.
    fail_with: tuple[int, str] | None = None
    # How queued calls end: after `callback_delay` seconds Fuse has an outcome, which its status
    # API shows and which it POSTs to the call's result_url (loopback URLs only: a simulator
    # never sends anything off this machine).
    callback_delay: float = 2.0
    callback_encoding: str = "json"  # json | form | multipart
    outcome: str = "completed"  # completed | failed | canceled | rejected
    lose_callbacks: bool = False  # never POST the result: only the status API has it
    duplicate_callbacks: bool = False  # POST each result twice
    received: list[Received] = field(default_factory=list)
    queued: dict[str, dict[str, str]] = field(default_factory=dict)
    callbacks: list[dict[str, Any]] = field(default_factory=list)  # what was POSTed, and answers

    def __post_init__(self) -> None:
        self.deployments = {tuple(d) for d in self.deployments}
        self._ids = itertools.count(1001)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._calls: dict[str, SimCall] = {}
        # Calls to end, by when: one thread ends them all (a timer thread per call would not
        # survive a list of ten thousand).
        self._due: list[tuple[float, int, str]] = []
        self._due_order = itertools.count()
        self._wake = threading.Condition(self._lock)
        self._ender: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The base URL the bridge calls FUSE_BASE_URL."""
        if self._server is None:
            raise RuntimeError("start() the simulator first")
        return f"http://{self.host}:{self._server.server_address[1]}/api"

    def start(self) -> FuseSimulator:
        self._server = ThreadingHTTPServer((self.host, self.port), handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._ender = threading.Thread(target=self._end_calls, daemon=True)
        self._ender.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases any request held by "hang"
        with self._lock:
            self._wake.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in (self._thread, self._ender):
            if thread is not None:
                thread.join(timeout=5)

    def __enter__(self) -> FuseSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self, mode: str = "normal") -> None:
        with self._lock:
            self._due.clear()
            self.mode = mode
            self.fail_with = None
            self.callback_delay, self.callback_encoding, self.outcome = 2.0, "json", "completed"
            self.lose_callbacks = self.duplicate_callbacks = False
            self._ids = itertools.count(1001)
            self.received.clear()
            self.queued.clear()
            self.callbacks.clear()
            self._calls.clear()

    def queue_requests(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if QUEUE_PATH.match(r.path)]

    # --- HTTP ------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.path.startswith("/_sim/"):
            return self.control(request)
        auth = request.authorization
        received = Received(
            method=request.method,
            path=request.path,
            content_type=request.mimetype,
            auth=(auth.username or "", auth.password or "") if auth else None,
            form={k: v for k, v in request.form.items()},
            files=tuple(request.files.keys()),
            uploads={
                name: upload.read().decode("utf-8", "replace")
                for name, upload in request.files.items()
            },
            client_port=int(request.environ.get("REMOTE_PORT") or 0),
        )
        with self._lock:
            self.received.append(received)
            mode = self.mode
        if match := QUEUE_PATH.match(request.path):
            return self.queue(request, received, match.group(1), match.group(2), mode)
        if match := BULK_PATH.match(request.path):
            return self.bulk_queue(request, received, match.group(1), match.group(2), mode)
        if match := CANCEL_PATH.match(request.path):
            return self.cancel(request, received, match.group(1), match.group(2))
        if match := STATUS_PATH.match(request.path):
            return self.status(request, received, match.group(1))
        return error(404, "Not found.")

    def authorised(self, received: Received) -> bool:
        return received.auth == (self.email, self.developer_key)

    def refusal(
        self,
        request: Request,
        received: Received,
        method: str,
        deployment: tuple[str, str] | None = None,
    ) -> Response | None:
        """What every endpoint checks first, in the documented order of its error codes."""
        if request.method != method:
            return error(405, f"Method not allowed. Use {method}.")
        if not self.authorised(received):
            return error(401, "Invalid credentials or inactive account.")
        if deployment is not None and deployment not in self.deployments:
            return error(404, "No deployment was found by that application id and deployment id.")
        if self.mode == "error500":
            return error(500, "Database error.")
        if self.fail_with is not None:
            return error(*self.fail_with)
        return None

    def _start_call(self, deployment: tuple[str, str], form: dict[str, str]) -> str:
        """A queued call, ending after callback_delay as the switches say. Lock held."""
        call_id = str(next(self._ids))
        self.queued[call_id] = form
        self._calls[call_id] = SimCall(
            deployment=deployment,
            form=form,
            queued_at=time.time(),
            completes_at=time.time() + self.callback_delay,
            outcome=self.outcome,
            encoding=self.callback_encoding,
            deliver=not self.lose_callbacks,
            copies=2 if self.duplicate_callbacks else 1,
        )
        self._complete_later(call_id, self.callback_delay)
        return call_id

    def queue(
        self, request: Request, received: Received, app_id: str, deployment_id: str, mode: str
    ) -> Response:
        if refusal := self.refusal(request, received, "POST", (app_id, deployment_id)):
            return refusal
        if received.content_type != "multipart/form-data":
            return error(400, "Content-type must be multipart/form-data.")
        if problem := field_problem(received.form):
            return error(400, problem)
        if mode == "hang":
            # Fuse got it and queues it, but answers too late: exactly the "unknown" case.
            self._stopping.wait(self.hang_seconds)
        with self._lock:
            call_id = self._start_call((app_id, deployment_id), dict(received.form))
        if mode == "garbage":
            return Response("<html>Service temporarily confused", 200, mimetype="text/html")
        link = f"<{request.host_url}api/outbound/{call_id}>"
        if mode == "link_only":
            return Response("", 200, headers={"Link": link})
        return Response(
            json.dumps({"call_id": call_id}),
            200,
            mimetype="application/json",
            headers={"Link": link},
        )

    def status(self, request: Request, received: Received, call_id: str) -> Response:
        if refusal := self.refusal(request, received, "GET"):
            return refusal
        with self._lock:
            call = self._calls.get(call_id)
        if call is None:
            return error(404, "Call not found.")
        details = call.details(time.time())
        return Response(json.dumps({"call_details": details}), 200, mimetype="application/json")

    def bulk_queue(
        self, request: Request, received: Received, app_id: str, deployment_id: str, mode: str
    ) -> Response:
        """A CSV of contacts (`destination` first, extra columns become call variables) and the
        shared fields; each row becomes a call that ends and reports like a single one."""
        if refusal := self.refusal(request, received, "POST", (app_id, deployment_id)):
            return refusal
        if received.content_type != "multipart/form-data":
            return error(400, "Content-type must be multipart/form-data.")
        if "csv" not in received.uploads:
            return error(400, "A csv file is required.")
        rows = list(csv.reader(io.StringIO(received.uploads["csv"])))
        if not rows or not rows[0] or rows[0][0].strip().lower() != "destination":
            return error(400, "The first column of the csv must be destination.")
        if len(rows) < 2:
            return error(400, "The csv has no contacts.")
        for number, row in enumerate(rows[1:], start=1):
            if problem := phone_problem(row[0] if row else None):
                return error(400, f"Row {number}: {problem}")
        if problem := field_problem({**received.form, "phone_number": rows[1][0]}):
            return error(400, problem)
        if mode == "hang":
            self._stopping.wait(self.hang_seconds)
        with self._lock:
            call_ids = [
                self._start_call((app_id, deployment_id), {**received.form, "phone_number": row[0]})
                for row in rows[1:]
            ]
        if mode == "garbage":
            return Response("<html>Service temporarily confused", 200, mimetype="text/html")
        if mode == "link_only":
            return Response("", 200)
        body = {"success": True, "call_ids": call_ids}
        return Response(json.dumps(body), 200, mimetype="application/json")

    def _complete_later(self, call_id: str, delay: float) -> None:
        """Called with the lock held."""
        heapq.heappush(self._due, (time.time() + delay, next(self._due_order), call_id))
        self._wake.notify()

    def _end_calls(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                if not self._due or self._due[0][0] > time.time():
                    wait = self._due[0][0] - time.time() if self._due else 1.0
                    self._wake.wait(timeout=max(0.01, min(wait, 1.0)))
                    continue
                _, _, call_id = heapq.heappop(self._due)
            self._complete(call_id)

    def cancel(
        self, request: Request, received: Received, app_id: str, deployment_id: str
    ) -> Response:
        """As documented: every pending call of the deployment is canceled; 202 and no body.
        Each canceled call then ends, and its result (canceled) is POSTed to its result_url."""
        if refusal := self.refusal(request, received, "DELETE", (app_id, deployment_id)):
            return refusal
        now = time.time()
        with self._lock:
            for call_id, call in self._calls.items():
                if call.deployment == (app_id, deployment_id) and now < call.completes_at:
                    call.outcome, call.completes_at = "canceled", now
                    self._complete_later(call_id, 0)
        return Response("", 202)

    def _complete(self, call_id: str) -> None:
        """The call has ended: POST its call_details to its result_url, as Fuse does (once)."""
        with self._lock:
            call = self._calls.get(call_id)
            if call is None or call.reported:
                return
            call.reported = True
        url = call.form.get("result_url")
        if not call.deliver or not url:
            return
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
            self._record_callback(url, None, "not sent: not a loopback URL")
            return
        body, content_type = encode_result(call.details(call.completes_at), call.encoding)
        for _ in range(call.copies):
            try:
                answer = requests.post(
                    url, data=body, headers={"Content-Type": content_type}, timeout=10
                )
                self._record_callback(url, answer.status_code, answer.text[:200])
            except requests.RequestException as err:
                self._record_callback(url, None, type(err).__name__)

    def _record_callback(self, url: str, status: int | None, answer: str) -> None:
        with self._lock:
            self.callbacks.append({"url": url, "status": status, "answer": answer})

    def control(self, request: Request) -> Response:
        """`GET /_sim/requests` lists what arrived; `POST /_sim/mode {"mode": ...}` flips faults."""
        if request.path == "/_sim/requests":
            with self._lock:
                body = [r.to_json() for r in self.received]
            return Response(json.dumps(body), 200, mimetype="application/json")
        if request.path == "/_sim/callbacks":
            with self._lock:
                body = list(self.callbacks)
            return Response(json.dumps(body), 200, mimetype="application/json")
        if request.path in ("/_sim/mode", "/_sim/config") and request.method == "POST":
            return self.configure(request.get_json(silent=True) or {})
        return error(404, "Not found.")

    def configure(self, settings: dict[str, Any]) -> Response:
        """`POST /_sim/config` with any of: mode, callback_delay, callback_encoding, outcome,
        lose_callbacks, duplicate_callbacks."""
        rules = {
            "mode": lambda v: v in MODES,
            "callback_delay": lambda v: isinstance(v, int | float) and 0 <= v <= 3600,
            "callback_encoding": lambda v: v in ENCODINGS,
            "outcome": lambda v: v in OUTCOMES,
            "lose_callbacks": lambda v: isinstance(v, bool),
            "duplicate_callbacks": lambda v: isinstance(v, bool),
        }
        for name, value in settings.items():
            if name not in rules or not rules[name](value):
                return error(400, f"invalid setting {name}={value!r}")
        with self._lock:
            for name, value in settings.items():
                setattr(self, name, value)
            current = {name: getattr(self, name) for name in rules}
        return Response(json.dumps(current), 200, mimetype="application/json")


@dataclass
class SimCall:
    """A queued call and how it will end."""

    deployment: tuple[str, str]
    form: dict[str, str]
    queued_at: float
    completes_at: float
    outcome: str
    encoding: str
    deliver: bool
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


def handler_for(simulator: FuseSimulator) -> type[BaseHTTPRequestHandler]:
    """HTTP/1.1 with keep-alive, as a real API front end has (werkzeug's server closes every
    connection, which would hide whether the bridge reuses its connection to Fuse)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 15  # an idle kept-alive connection is dropped, so no thread waits forever
        # Headers and body go out in two writes; with Nagle on, the body would wait for the
        # client's delayed ACK (40 ms), a delay no real front end adds.
        disable_nagle_algorithm = True

        def handle_one_request_of(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            environ = {
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(length),
                "SERVER_NAME": simulator.host,
                "SERVER_PORT": str(self.server.server_address[1]),
                "SERVER_PROTOCOL": self.request_version,
                "REMOTE_ADDR": self.client_address[0],
                "REMOTE_PORT": str(self.client_address[1]),
                "wsgi.input": BytesIO(body),
                "wsgi.url_scheme": "http",
                **{
                    "HTTP_" + name.upper().replace("-", "_"): value
                    for name, value in self.headers.items()
                    if name.lower() not in ("content-type", "content-length")
                },
            }
            response = simulator.handle(Request(environ))
            data = response.get_data()
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up waiting ("hang"): expected

        do_GET = do_POST = do_DELETE = do_PUT = handle_one_request_of  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests and make local read what matters from `received`."""

    return Handler


def error(status: int, message: str) -> Response:
    return Response(json.dumps({"error": message}), status, mimetype="application/json")


def field_problem(form: dict[str, str]) -> str | None:
    """The documented field rules (shared/fuse-api.md section 1); None when the form is valid."""
    problem = phone_problem(form.get("phone_number"))
    if problem:
        return problem
    for name in ("start_timestamp", "end_timestamp"):
        if name in form and not form[name].isdigit():
            return f"{name} must be a Unix timestamp."
    start, end = form.get("start_timestamp"), form.get("end_timestamp")
    if start and end and int(end) <= int(start):
        return "end_timestamp must be after start_timestamp."
    attempts = form.get("max_attempts")
    if attempts is not None:
        if not attempts.isdigit() or not 1 <= int(attempts) <= 10:
            return "max_attempts must be an integer from 1 to 10."
        if int(attempts) > 1 and "reattempt_wait" not in form:
            return "reattempt_wait is required when max_attempts is set."
    wait = form.get("reattempt_wait")
    if wait is not None and (not wait.isdigit() or not 60 <= int(wait) <= 86400):
        return "reattempt_wait must be between 60 and 86400 seconds."
    if "metadata" in form:
        try:
            metadata = json.loads(form["metadata"])
        except ValueError:
            metadata = None
        if not isinstance(metadata, dict):
            return "metadata must be a JSON object."
    if form.get("is_pci", "0") not in ("0", "1"):
        return "is_pci must be 0 or 1."
    url = form.get("result_url")
    if url is not None and not re.match(r"^https?://[^\s]+$", url):
        return "result_url must be a URL."
    return None


def phone_problem(value: str | None) -> str | None:
    if not value:
        return "phone_number is required."
    number, *params = value.split(";")
    if not PHONE.match(number):
        return "phone_number is invalid."
    seen = set()
    for param in params:
        name, _, param_value = param.partition("=")
        if name in seen or name not in ("ani", "postd"):
            return f"phone_number has an invalid parameter: {name}."
        seen.add(name)
        if not (ANI if name == "ani" else POSTD).match(param_value):
            return f"phone_number has an invalid {name} value."
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the Fuse simulator on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--mode", choices=MODES, default="normal")
    args = parser.parse_args()
    simulator = FuseSimulator(port=args.port, mode=args.mode).start()
    print(f"Fuse simulator on {simulator.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()


if __name__ == "__main__":
    main()
