"""The simulator's HTTP front: a keep-alive HTTP/1.1 server on loopback that hands each request
to a WSGI-style handler (a werkzeug Request in, a Response out)."""

from __future__ import annotations

import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from typing import Any

from werkzeug.wrappers import Request, Response


def serve(host: str, port: int, handle: Callable[[Request], Response]) -> ThreadingHTTPServer:
    """A server (not yet serving) that answers every request with `handle`."""
    server = ThreadingHTTPServer((host, port), handler_for(host, handle))
    server.daemon_threads = True
    return server


def handler_for(host: str, handle: Callable[[Request], Response]) -> type[BaseHTTPRequestHandler]:
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
                "SERVER_NAME": host,
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
            response = handle(Request(environ))
            data = response.get_data()
            if drip := getattr(response, "drip_seconds", 0):
                self.drip(response, data, drip)
                return
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

        def drip(self, response: Response, data: bytes, seconds: float) -> None:
            """The whole answer, status line included, one byte at a time."""
            head = f"HTTP/1.1 {response.status}\r\n" + "".join(
                f"{name}: {value}\r\n"
                for name, value in response.headers.items()
                if name.lower() != "content-length"
            )
            tail = f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
            raw = head.encode() + tail.encode() + data
            self.close_connection = True
            for byte in raw:
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:  # the client gave up: expected
                    return
                time.sleep(seconds)

        do_GET = do_POST = do_DELETE = do_PUT = handle_one_request_of  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests and make local read what matters from `received`."""

    return Handler
