"""The simulated Fuse: the endpoints as documented, the calls they start, and the control API.

It checks what the documentation states (Basic auth, known application/deployment, multipart form,
the field rules) and answers as documented: 200 with a `call_id` and a `Link` header, or an error
status with `{"error": "..."}`. Switches make it fail on purpose (500, hang, garbage), and it keeps
every request it received so tests can assert exactly what the bridge sent.
"""

from __future__ import annotations

import csv
import heapq
import io
import itertools
import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from werkzeug.wrappers import Request, Response

from local.demo import DEPLOYMENTS, DEVELOPER_KEY, FUSE_EMAIL
from local.fuse_sim.http_server import serve
from local.fuse_sim.results import ENCODINGS, OUTCOMES, SimCall, post_result
from local.fuse_sim.rules import field_problem, phone_problem

# normal; error500: Fuse's documented 500; hang: queue, then answer after the client gave up;
# garbage: queue, then answer 200 with an unreadable body; link_only: 200 whose only call id is
# in the Link header (the body's layout is undocumented, so the bridge must cope with either);
# drip: queue, then send the whole 200 one byte every `drip_seconds` (each read is quick, the
# answer is not: only a total deadline ends it).
MODES = ("normal", "error500", "hang", "garbage", "link_only", "drip")
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
    at: float = 0.0  # when it arrived (time.time())

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
    email: str = FUSE_EMAIL
    developer_key: str = DEVELOPER_KEY
    deployments: Iterable[tuple[str, str]] = DEPLOYMENTS
    host: str = "127.0.0.1"
    port: int = 0
    hang_seconds: float = 30.0
    drip_seconds: float = 0.04  # about 3.5 s for a queue answer
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
    # Plum: looping the single queue API "can cause DDoS, which will result in all calls
    # failing". With a limit, single queue requests past that many in one second (of the clock)
    # are refused 500, as an overloaded Fuse would; 0 is no limit.
    queue_rate_limit: int = 0
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
        self._generation = 0  # counts resets: a request hung across one queues nothing
        self._singles: dict[int, int] = {}  # single queue requests by second
        self._bulks_in_flight = 0
        self.most_bulks_in_flight = 0
        self.answers: list[tuple[str, float, int]] = []  # (path, when, status) of each answer

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The base URL the bridge calls FUSE_BASE_URL."""
        if self._server is None:
            raise RuntimeError("start() the simulator first")
        return f"http://{self.host}:{self._server.server_address[1]}/api"

    def start(self) -> FuseSimulator:
        self._server = serve(self.host, self.port, self.handle)
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
            self._generation += 1
            self._due.clear()
            self.mode = mode
            self.fail_with = None
            self.callback_delay, self.callback_encoding, self.outcome = 2.0, "json", "completed"
            self.lose_callbacks = self.duplicate_callbacks = False
            self.queue_rate_limit = 0
            self._singles.clear()
            self.most_bulks_in_flight = 0
            self.answers.clear()
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
            at=time.time(),
        )
        with self._lock:
            self.received.append(received)
            mode = self.mode
        if match := QUEUE_PATH.match(request.path):
            answer = self.queue(request, received, match.group(1), match.group(2), mode)
            return self.answered(received, answer)
        if match := BULK_PATH.match(request.path):
            with self._lock:
                self._bulks_in_flight += 1
                self.most_bulks_in_flight = max(self.most_bulks_in_flight, self._bulks_in_flight)
            try:
                answer = self.bulk_queue(request, received, match.group(1), match.group(2), mode)
            finally:
                with self._lock:
                    self._bulks_in_flight -= 1
            return self.answered(received, answer)
        if match := CANCEL_PATH.match(request.path):
            return self.cancel(request, received, match.group(1), match.group(2))
        if match := STATUS_PATH.match(request.path):
            return self.status(request, received, match.group(1))
        return error(404, "Not found.")

    def hung(self) -> bool:
        """Holds a request for `hang_seconds`; False if the simulator was reset meanwhile: a
        request a finished test left hanging must not queue a call in the next test's Fuse."""
        with self._lock:
            generation = self._generation
        self._stopping.wait(self.hang_seconds)
        with self._lock:
            return generation == self._generation

    def answered(self, received: Received, answer: Response) -> Response:
        with self._lock:
            self.answers.append((received.path, received.at, answer.status_code))
        return answer

    def over_rate(self, received: Received) -> bool:
        """Whether this single queue request is one too many for its second."""
        if not self.queue_rate_limit:
            return False
        second = int(received.at)
        with self._lock:
            self._singles[second] = self._singles.get(second, 0) + 1
            return self._singles[second] > self.queue_rate_limit

    def stats(self) -> dict[str, Any]:
        """What a burst did to Fuse (`GET /_sim/stats`): single queue requests, the most in
        one second, those refused for coming too fast, bulk requests and the most at once, and
        how many calls each phone got."""
        with self._lock:
            singles = [a for a in self.answers if QUEUE_PATH.match(a[0])]
            bulks = [a for a in self.answers if BULK_PATH.match(a[0])]
            per_second: dict[int, int] = {}
            for _, at, _ in singles:
                per_second[int(at)] = per_second.get(int(at), 0) + 1
            phones: dict[str, int] = {}
            for form in self.queued.values():
                phones[form.get("phone_number", "")] = (
                    phones.get(form.get("phone_number", ""), 0) + 1
                )
            return {
                "single_queues": len(singles),
                "most_single_queues_in_a_second": max(per_second.values(), default=0),
                "single_queues_refused": sum(1 for a in singles if a[2] >= 400),
                "refused_for_rate": sum(
                    max(0, n - self.queue_rate_limit) for n in self._singles.values()
                )
                if self.queue_rate_limit
                else 0,
                "bulk_queues": len(bulks),
                "bulk_queues_refused": sum(1 for a in bulks if a[2] >= 400),
                "most_bulks_in_flight": self.most_bulks_in_flight,
                "calls": len(self.queued),
                "calls_by_phone": phones,
            }

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
            calls_back=not self.lose_callbacks,
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
        if self.over_rate(received):
            return error(500, "Too many requests: all calls are failing.")
        # Hang: Fuse got it and queues it, but answers too late: exactly the "unknown" case.
        if mode == "hang" and not self.hung():
            return error(503, "The simulator was reset while this request hung.")
        with self._lock:
            call_id = self._start_call((app_id, deployment_id), dict(received.form))
        if mode == "garbage":
            return Response("<html>Service temporarily confused", 200, mimetype="text/html")
        link = f"<{request.host_url}api/outbound/{call_id}>"
        if mode == "drip":
            answer = Response(json.dumps({"call_id": call_id}), 200, mimetype="application/json")
            answer.drip_seconds = self.drip_seconds  # type: ignore[attr-defined]
            return answer
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
        if mode == "hang" and not self.hung():
            return error(503, "The simulator was reset while this request hung.")
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
        sent = post_result(call) if call.calls_back else []
        with self._lock:
            self.callbacks += sent

    def control(self, request: Request) -> Response:
        """`GET /_sim/requests` lists what arrived; `POST /_sim/mode {"mode": ...}` flips faults."""
        if request.path == "/_sim/requests":
            with self._lock:
                body = [r.to_json() for r in self.received]
            return Response(json.dumps(body), 200, mimetype="application/json")
        if request.path == "/_sim/stats":
            return Response(json.dumps(self.stats()), 200, mimetype="application/json")
        if request.path == "/_sim/callbacks":
            with self._lock:
                body = list(self.callbacks)
            return Response(json.dumps(body), 200, mimetype="application/json")
        if request.path in ("/_sim/mode", "/_sim/config") and request.method == "POST":
            # JSON whatever the Content-Type: `curl -d '{"mode": "hang"}'` sends it as a form.
            settings = request.get_json(force=True, silent=True) if request.get_data() else {}
            if not isinstance(settings, dict):
                return error(400, 'send a JSON object of settings, such as {"mode": "hang"}')
            return self.configure(settings)
        return error(404, "Not found.")

    def configure(self, settings: dict[str, Any]) -> Response:
        """`POST /_sim/config` with any of: mode, callback_delay, callback_encoding, outcome,
        lose_callbacks, duplicate_callbacks, queue_rate_limit."""
        rules = {
            "mode": lambda v: v in MODES,
            "callback_delay": lambda v: isinstance(v, int | float) and 0 <= v <= 3600,
            "callback_encoding": lambda v: v in ENCODINGS,
            "outcome": lambda v: v in OUTCOMES,
            "lose_callbacks": lambda v: isinstance(v, bool),
            "duplicate_callbacks": lambda v: isinstance(v, bool),
            "queue_rate_limit": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        }
        for name, value in settings.items():
            if name not in rules or not rules[name](value):
                return error(400, f"invalid setting {name}={value!r}")
        with self._lock:
            for name, value in settings.items():
                setattr(self, name, value)
            current = {name: getattr(self, name) for name in rules}
        return Response(json.dumps(current), 200, mimetype="application/json")


def error(status: int, message: str) -> Response:
    return Response(json.dumps({"error": message}), status, mimetype="application/json")
