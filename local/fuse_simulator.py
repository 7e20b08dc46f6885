"""A small, honest model of Plum Fuse's queue API (shared/fuse-api.md), for tests and make local.

It checks what the documentation states (Basic auth, known application/deployment, multipart form,
the field rules) and answers as documented: 200 with a `call_id` and a `Link` header, or an error
status with `{"error": "..."}`. Switches make it fail on purpose (500, hang, garbage), and it keeps
every request it received so tests can assert exactly what the bridge sent.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import signal
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from typing import Any

from werkzeug.wrappers import Request, Response

# normal; error500: Fuse's documented 500; hang: queue, then answer after the client gave up;
# garbage: queue, then answer 200 with an unreadable body; link_only: 200 whose only call id is
# in the Link header (the body's layout is undocumented, so the bridge must cope with either).
MODES = ("normal", "error500", "hang", "garbage", "link_only")
PHONE = re.compile(r"^(tel:)?\+?\d{7,15}$")
ANI = re.compile(r"^\+?\d{7,15}$")
POSTD = re.compile(r"^[0-9*#,w]+$")
QUEUE_PATH = re.compile(r"^/api/apps/([^/]+)/([^/]+)/queue$")
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
    received: list[Received] = field(default_factory=list)
    queued: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.deployments = {tuple(d) for d in self.deployments}
        self._ids = itertools.count(1001)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

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
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases any request held by "hang"
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FuseSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self, mode: str = "normal") -> None:
        with self._lock:
            self.mode = mode
            self.fail_with = None
            self._ids = itertools.count(1001)
            self.received.clear()
            self.queued.clear()

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
            client_port=int(request.environ.get("REMOTE_PORT") or 0),
        )
        with self._lock:
            self.received.append(received)
            mode = self.mode
        if match := QUEUE_PATH.match(request.path):
            return self.queue(request, received, match.group(1), match.group(2), mode)
        if match := STATUS_PATH.match(request.path):
            return self.status(request, received, match.group(1))
        return error(404, "Not found.")

    def authorised(self, received: Received) -> bool:
        return received.auth == (self.email, self.developer_key)

    def queue(
        self, request: Request, received: Received, app_id: str, deployment_id: str, mode: str
    ) -> Response:
        if request.method != "POST":
            return error(405, "Method not allowed. Use POST.")
        if not self.authorised(received):
            return error(401, "Invalid credentials or inactive account.")
        if (app_id, deployment_id) not in self.deployments:
            return error(404, "No deployment was found by that application id and deployment id.")
        if mode == "error500":
            return error(500, "Database error.")
        if self.fail_with is not None:
            return error(*self.fail_with)
        if received.content_type != "multipart/form-data":
            return error(400, "Content-type must be multipart/form-data.")
        if problem := field_problem(received.form):
            return error(400, problem)
        if mode == "hang":
            # Fuse got it and queues it, but answers too late: exactly the "unknown" case.
            self._stopping.wait(self.hang_seconds)
        with self._lock:
            call_id = str(next(self._ids))
            self.queued[call_id] = dict(received.form)
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
        if request.method != "GET":
            return error(405, "Method not allowed. Use GET.")
        if not self.authorised(received):
            return error(401, "Invalid credentials or inactive account.")
        with self._lock:
            form = self.queued.get(call_id)
        if form is None:
            return error(404, "Call not found.")
        # As documented: numbers as strings of digits, the phone in stray single quotes.
        phone = form["phone_number"].removeprefix("tel:").split(";")[0].lstrip("+")
        details = {
            "status": "queued",
            "attempts": "0",
            "max_attempts": form.get("max_attempts", "1"),
            "queued_timestamp": "0",
            "start_timestamp": form.get("start_timestamp", ""),
            "end_timestamp": form.get("end_timestamp", ""),
            "reattempt_wait": form.get("reattempt_wait", "0"),
            "events": [{"event": "queued", "timestamp": 0}],
            "phone_number": f"'{phone}'",
        }
        return Response(json.dumps({"call_details": details}), 200, mimetype="application/json")

    def control(self, request: Request) -> Response:
        """`GET /_sim/requests` lists what arrived; `POST /_sim/mode {"mode": ...}` flips faults."""
        if request.path == "/_sim/requests":
            with self._lock:
                body = [r.to_json() for r in self.received]
            return Response(json.dumps(body), 200, mimetype="application/json")
        if request.path == "/_sim/mode" and request.method == "POST":
            mode = (request.get_json(silent=True) or {}).get("mode")
            if mode not in MODES:
                return error(400, f"mode must be one of {', '.join(MODES)}")
            with self._lock:
                self.mode = mode
            return Response(json.dumps({"mode": mode}), 200, mimetype="application/json")
        return error(404, "Not found.")


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
