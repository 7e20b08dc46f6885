"""The outbound HTTP client's own promises: sent once, never redirected, answers bounded, and a
failure told apart by whether a connection was ever made."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import ClassVar

import pytest

from chalicelib.http.client import MAX_RESPONSE_BYTES, HttpClient, NoAnswer, NotSent, basic_auth
from chalicelib.http.deadlines import DeadlinePassed


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[str, Message, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Handler.seen.append((self.path, self.headers, body))
        if self.path == "/flood":
            self.reply(200, b"x" * (MAX_RESPONSE_BYTES * 3))
        elif self.path == "/redirect":
            self.send_response(307)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/drip":  # a whole answer, a byte at a time: no read ever times out
            self.send_response(200)
            self.send_header("Content-Length", "6")
            self.end_headers()
            for byte in b"sloooo":
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.25)
        elif self.path == "/hang-up":
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # read it, then no answer at all
        else:
            self.reply(200, "é".encode("latin-1"), "text/plain; charset=latin-1")

    def reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Handler.seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_flood_is_cut_and_the_next_request_still_works(server: str) -> None:
    client = HttpClient(5)
    answer = client.request("POST", f"{server}/flood", {}, body=b"")
    assert len(answer.body) == MAX_RESPONSE_BYTES
    assert client.request("POST", f"{server}/ok", {}, body=b"").text == "é"  # its own charset


def test_a_redirect_is_answered_not_followed(server: str) -> None:
    answer = HttpClient(5).request("POST", f"{server}/redirect", {}, body=b"signed")
    assert answer.status == 307
    assert [path for path, _, _ in Handler.seen] == ["/redirect"]


def test_fields_are_plain_multipart_parts_and_files_keep_their_type(server: str) -> None:
    fields = {"phone_number": "tel:+16175551234", "csv": ("contacts.csv", b"a,b\n", "text/csv")}
    auth = basic_auth("demo@example.com", "key:with:colons")
    HttpClient(5).request("POST", f"{server}/ok", auth, fields=fields)
    [(_, headers, body)] = Handler.seen
    assert headers["Authorization"] == "Basic ZGVtb0BleGFtcGxlLmNvbTprZXk6d2l0aDpjb2xvbnM="
    head = f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode()
    parts = list(BytesParser(policy=HTTP).parsebytes(head + body).iter_parts())
    plain, csv = parts
    assert plain.get_param("name", header="content-disposition") == "phone_number"
    assert plain.get_content_type() == "text/plain"  # i.e. no Content-Type of its own was sent
    assert "Content-Type" not in plain
    assert plain.get_payload(decode=True) == b"tel:+16175551234"
    assert (csv.get_filename(), csv.get_content_type()) == ("contacts.csv", "text/csv")


def test_a_refused_connection_is_not_sent_and_a_hang_up_is_no_answer(server: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(NotSent):
            HttpClient(5).request("POST", f"http://127.0.0.1:{closed}/", {}, body=b"")
    with pytest.raises(NoAnswer):
        HttpClient(5).request("POST", f"{server}/hang-up", {}, body=b"")
    assert [path for path, _, _ in Handler.seen] == ["/hang-up"]  # sent once, not retried


def test_a_dripping_answer_ends_at_the_deadline_and_comes_late(server: str) -> None:
    """Each byte comes well within the read timeout, the whole answer does not: the request
    ends at its deadline, and the answer, when it has all come, goes to `late`."""
    arrived = threading.Event()
    got: list[bytes] = []
    started = time.monotonic()
    with pytest.raises(DeadlinePassed):
        HttpClient(0.5).request(
            "POST",
            f"{server}/drip",
            {},
            body=b"",
            late=lambda answer: (got.append(answer.body), arrived.set()),
        )
    assert time.monotonic() - started < 1.0
    assert arrived.wait(5)
    assert got == [b"sloooo"]
