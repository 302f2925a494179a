"""Over a real loopback socket: the raw request line, and bodies the connection cuts short."""

from __future__ import annotations

import json
import socket
import threading
import typing as t

import pytest

from tests.conftest import EMAIL_LEAD, run_tap

GOOD_BODY = json.dumps([EMAIL_LEAD]).encode()


class RawServer:
    """Answer each connection with the next scripted raw response, and record request lines."""

    def __init__(self, responses: list[bytes]) -> None:
        """Listen on a free loopback port."""
        self.responses = responses
        self.request_lines: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/api-v7/stats/website-client-leads"
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        for response in self.responses:
            conn, _ = self.sock.accept()
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += conn.recv(4096)
                line = head.split(b"\r\n", 1)[0].decode()
                self.request_lines.append(line)
                # The live API does not read "+" as a space: such a timestamp fails to parse.
                conn.sendall(unprocessable() if "+" in line else response)

    def __enter__(self) -> RawServer:  # noqa: PYI034
        """Start serving."""
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop listening."""
        self.sock.close()
        self.thread.join(timeout=5)


def ok(body: bytes = GOOD_BODY) -> bytes:
    """Return a whole 200 answer with a Content-Length."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    return head + body


def unprocessable() -> bytes:
    """Return the 422 a malformed timestamp gets."""
    body = b'{"message": "The timestamp does not match the format Y-m-d H:i:s."}'
    return b"HTTP/1.1 422 Unprocessable Content\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def run(server: RawServer, **config: t.Any) -> t.Any:
    """Sync the leads stream against the raw server."""
    return run_tap(config={"api_url": server.url, **config}, streams=["leads"], allow_error=True)


def test_request_line_on_the_wire_uses_percent_20():
    """The request line a real server reads has %20 and %3A, never +."""
    with RawServer([ok()]) as server:
        out = run(server)
    assert out.error is None
    assert server.request_lines == [
        "GET /api-v7/stats/website-client-leads?type=leads&timestamp=2026-11-01%2004%3A00%3A00 HTTP/1.1"
    ]
    assert len(out.records["leads"]) == 1


@pytest.mark.parametrize(
    "broken",
    [
        # Shorter than its Content-Length, then the connection closes.
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(GOOD_BODY), GOOD_BODY[:40]),
        # A chunked stream that stops mid-chunk.
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s"
        % (len(GOOD_BODY), GOOD_BODY[:40]),
    ],
    ids=["short-content-length", "broken-chunked"],
)
def test_body_cut_by_the_connection_is_retried(broken):
    """A body the connection cuts short is retried, and the whole answer's rows arrive."""
    with RawServer([broken, ok()]) as server:
        out = run(server)
    assert out.error is None
    assert len(server.request_lines) == 2
    assert len(out.records["leads"]) == 1


def test_body_cut_on_every_try_fails_and_keeps_the_bookmark():
    """If every answer is cut, the run fails after its retries and no bookmark is written."""
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n[{"
    with RawServer([cut, cut, cut]) as server:
        out = run(server)
    assert out.error is not None
    assert len(server.request_lines) == 3
    assert out.records["leads"] == []
    assert all("replication_key_value" not in s["bookmarks"].get("leads", {}) for s in out.states)
