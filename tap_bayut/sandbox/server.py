"""The sandbox HTTP server: one linear handler, strict where the live API is known to be.

Run ``tap-bayut-sandbox --help``. The README's "Sandbox" section lists what it does and
does not emulate.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import threading
import time
import typing as t
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from tap_bayut.sandbox import data

API_PATHS = ("/api-v7/stats/website-client-leads", "/profolio/api-v7/stats/website-client-leads")
CONTROL = "/_sandbox/"
DUBAI = dt.timezone(dt.timedelta(hours=4), "Asia/Dubai")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
FAULT_KINDS = ("status", "html", "truncate", "slow", "refuse_type")
HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
    b"<body>Checking your browser</body></html>"
)


@dataclass
class Fault:
    """A misbehaviour applied to the next ``times`` matching requests (-1: all of them)."""

    kind: str
    times: int = 1
    type: str | None = None
    status: int = 503
    retry_after: float | None = None
    delay: float = 5.0

    @classmethod
    def parse(cls, spec: dict[str, t.Any]) -> Fault:
        """Build a fault from JSON or from ``kind=status,status=429,times=2`` pairs, or say what is wrong."""
        fault = cls(**spec)
        number = (int, float)
        problems = [
            f"kind must be one of {', '.join(FAULT_KINDS)}" if fault.kind not in FAULT_KINDS else "",
            "times must be a whole number, -1 or more"
            if not _is_int(fault.times) or fault.times < -1
            else "",
            "type must be text" if fault.type is not None and not isinstance(fault.type, str) else "",
            "status must be an HTTP error status (400-599)" if not _is_status(fault.status) else "",
            "retry_after must be a number of seconds"
            if fault.retry_after is not None and not isinstance(fault.retry_after, number)
            else "",
            "delay must be a number of seconds"
            if not isinstance(fault.delay, number) or fault.delay < 0
            else "",
        ]
        if problems := [problem for problem in problems if problem]:
            raise ValueError("; ".join(problems))
        return fault


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_status(value: object) -> bool:
    return _is_int(value) and value in {s.value for s in HTTPStatus if s.value >= HTTPStatus.BAD_REQUEST}


@dataclass
class State:
    """Everything the handler reads and the control endpoint changes, behind one lock."""

    api_key: str
    timestamp_zone: dt.tzinfo = DUBAI
    #: The server's clock, as an aware datetime (tests pin it).
    clock: t.Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(DUBAI))
    days: int = 28
    faults: list[Fault] = field(default_factory=list)
    requests: list[dict[str, t.Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    dataset: data.Dataset = field(init=False)

    def __post_init__(self) -> None:
        """Build the rows around the current Dubai wall-clock time."""
        self.reset_data()

    def reset_data(self) -> None:
        """Rebuild the rows, faults and request log from scratch."""
        self.dataset = data.build(self.dubai_now(), days=self.days)
        self.faults.clear()
        self.requests.clear()

    def dubai_now(self) -> dt.datetime:
        """Return the server's Dubai wall-clock time, naive, to the second."""
        return self.clock().astimezone(DUBAI).replace(tzinfo=None, microsecond=0)

    def take_fault(self, kind: str) -> Fault | None:
        """Return the first fault for this type, using up one of its times."""
        for fault in self.faults:
            if fault.type in (None, kind) and fault.times != 0:
                fault.times -= 1
                return fault
        return None


def six_months_before(moment: dt.datetime) -> dt.datetime:
    """Go back six calendar months the way PHP and Carbon's subMonths do by default.

    A day the target month lacks overflows into the next month: 31 August less six
    months is 3 March (2 March in a leap year), not 28 February.
    """
    month_index = moment.year * 12 + moment.month - 1 - 6
    year, month = divmod(month_index, 12)
    first_of_month = moment.replace(year=year, month=month + 1, day=1)
    return first_of_month + dt.timedelta(days=moment.day - 1)


def parse_query(raw: str) -> dict[str, str]:
    """Split a query string; percent-escapes are decoded, and "+" stays a plus sign."""
    params: dict[str, str] = {}
    for pair in filter(None, raw.split("&")):
        key, _, value = pair.partition("=")
        params[unquote(key)] = unquote(value)
    return params


def row_time(kind: str, row: dict[str, t.Any]) -> str:
    """Return the wall-clock text a row is filtered and sorted by."""
    if kind == "call_logs":
        return f"{row['date']} {row['time']}"
    return str(row["date_time"])


def invalid(field_name: str, message: str) -> tuple[int, dict[str, t.Any]]:
    """Return a Laravel-style validation failure."""
    return HTTPStatus.UNPROCESSABLE_ENTITY, {"message": message, "errors": {field_name: [message]}}


class Handler(BaseHTTPRequestHandler):
    """Serve the Pull API and the sandbox's control endpoint."""

    server: Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002, ANN401
        """Log one line per request to stderr, without the Authorization header."""
        if not self.server.quiet:
            sys.stderr.write(f"sandbox: {self.address_string()} {format % args}\n")

    def do_GET(self) -> None:  # noqa: C901, PLR0911, PLR0912, PLR0915 - one linear handler, on purpose
        """Answer a Pull API request, step by step as the live API is known to."""
        state = self.server.state
        path, _, raw_query = self.path.partition("?")
        if path.startswith(CONTROL):
            self.control("GET", path, raw_query)
            return
        # The request log: what was asked, and what was answered (status, rows sent).
        self.entry: dict[str, t.Any] = {"path": self.path, "status": None, "rows": None}
        with state.lock:
            state.requests.append(self.entry)
        if path not in API_PATHS:
            self.send_json(HTTPStatus.NOT_FOUND, {"message": "Not Found"})
            return
        if self.headers.get("Authorization") != f"Bearer {state.api_key}":
            self.send_json(HTTPStatus.UNAUTHORIZED, {"message": "Unauthenticated."})
            return
        query = parse_query(raw_query)
        kind = query.get("type", "")
        if kind not in data.ALL_TYPES:
            # The live answer to an unknown type is undocumented; Laravel's 422 is our guess.
            self.send_json(*invalid("type", "The selected type is invalid."))
            return
        timestamp = query.get("timestamp")
        if not timestamp:
            self.send_json(*invalid("timestamp", "The timestamp field is required."))
            return
        if not TIMESTAMP_RE.match(timestamp):
            self.send_json(*invalid("timestamp", "The timestamp field must match the format Y-m-d H:i:s."))
            return
        try:
            since = dt.datetime.strptime(timestamp, data.WALL)  # noqa: DTZ007 - wall-clock by design
        except ValueError:
            self.send_json(*invalid("timestamp", "The timestamp field must be a valid date."))
            return
        floor = six_months_before(
            state.clock().astimezone(state.timestamp_zone).replace(tzinfo=None, microsecond=0)
        )
        if since < floor:
            message = f"The timestamp must be a date after or equal to {floor.strftime(data.WALL)}."
            self.send_json(*invalid("timestamp", message))
            return
        # A wrong type/target/is_trulead combination is accepted silently, and answers nothing.
        key = data.dataset_key(kind, query.get("target"), query.get("is_trulead"))
        with state.lock:
            fault = state.take_fault(kind)
            if state.timestamp_zone is not DUBAI:
                # The server read the timestamp in another zone: compare in Dubai wall-clock.
                since = since.replace(tzinfo=state.timestamp_zone).astimezone(DUBAI).replace(tzinfo=None)
            cutoff = since.date().isoformat() if kind in data.DAILY_TYPES else since.strftime(data.WALL)
            rows = list(state.dataset.rows[key]) if key else []
            if key not in data.VIEW_KEYS:  # view totals ignore the timestamp
                rows = [r for r in rows if row_time(kind, r) >= cutoff]
            rows.sort(key=lambda r: row_time(kind, r), reverse=True)
            body = json.dumps(rows).encode()
            if fault is None or fault.kind in {"slow", "truncate"}:
                self.entry["rows"] = len(rows)
        if fault is None:
            self.send_bytes(HTTPStatus.OK, body)
        elif fault.kind == "status":
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            self.send_json(fault.status, {"message": HTTPStatus(fault.status).phrase}, headers)
        elif fault.kind == "html":
            self.send_bytes(HTTPStatus.OK, HTML_PAGE, content_type="text/html; charset=UTF-8")
        elif fault.kind == "refuse_type":
            self.send_json(*invalid("type", "The selected type is invalid."))
        elif fault.kind == "slow":
            time.sleep(fault.delay)
            self.send_bytes(HTTPStatus.OK, body)
        else:  # truncate: promise the whole body, send half of it, hang up.
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True

    def do_POST(self) -> None:
        """Only the control endpoint takes POST."""
        path, _, raw_query = self.path.partition("?")
        if path.startswith(CONTROL):
            self.control("POST", path, raw_query)
        else:
            self.send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"message": "The POST method is not supported."})

    def control(self, method: str, path: str, raw_query: str) -> None:
        """Change or inspect the sandbox: faults, late rows, counters, rows, request log."""
        state = self.server.state
        action = path.removeprefix(CONTROL)
        length = int(self.headers.get("Content-Length") or 0)
        try:
            payload = json.loads(self.rfile.read(length)) if length else None
        except ValueError:
            self.send_json(HTTPStatus.BAD_REQUEST, {"message": "the body is not JSON"})
            return
        with state.lock:
            if (method, action) == ("POST", "faults"):
                try:
                    specs: list[t.Any] = payload if isinstance(payload, list) else [payload]
                    faults = [Fault.parse(dict(spec)) for spec in specs]
                except (TypeError, ValueError) as exc:
                    self.send_json(HTTPStatus.BAD_REQUEST, {"message": str(exc)})
                    return
                state.faults.extend(faults)
                self.send_json(HTTPStatus.OK, {"faults": len(state.faults)})
            elif (method, action) == ("POST", "publish-late"):
                self.send_json(HTTPStatus.OK, {"published": sum(state.dataset.publish_late().values())})
            elif (method, action) == ("POST", "grow-counters"):
                self.send_json(
                    HTTPStatus.OK, {"touched": sum(state.dataset.grow_counters(state.dubai_now()).values())}
                )
            elif (method, action) == ("POST", "reset"):
                state.reset_data()
                self.send_json(HTTPStatus.OK, {"reset": True})
            elif (method, action) == ("POST", "retire-listing"):
                self.send_json(HTTPStatus.OK, {"dropped": state.dataset.retire_listing()})
            elif (method, action) == ("GET", "rows"):
                query = parse_query(raw_query)
                kind = query.get("type", "")
                key = data.dataset_key(kind, query.get("target"), query.get("is_trulead"))
                rows = sorted(
                    state.dataset.rows.get(key or "", []), key=lambda r: row_time(kind, r), reverse=True
                )
                self.send_json(HTTPStatus.OK if key else HTTPStatus.NOT_FOUND, rows)
            elif (method, action) == ("GET", "requests"):
                self.send_json(HTTPStatus.OK, state.requests)
            else:
                self.send_json(HTTPStatus.NOT_FOUND, {"message": f"no control action {method} {action}"})

    def send_response(self, code: int, message: str | None = None) -> None:
        """Send the status line, and note the status in the request log."""
        if entry := getattr(self, "entry", None):
            entry["status"] = int(code)
        super().send_response(code, message)

    def send_json(self, status: int, payload: t.Any, headers: dict[str, str] | None = None) -> None:  # noqa: ANN401
        """Send a whole JSON answer."""
        self.send_bytes(status, json.dumps(payload).encode(), headers=headers)

    def send_bytes(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        """Send a whole answer with its Content-Length."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    """A threading HTTP server on loopback that carries the sandbox's state."""

    daemon_threads = True

    def __init__(self, state: State, port: int = 0, *, quiet: bool = False) -> None:
        """Listen on 127.0.0.1 only (port 0: any free port)."""
        self.state = state
        self.quiet = quiet
        super().__init__(("127.0.0.1", port), Handler)

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:  # noqa: ANN401
        """Ignore clients that hung up (a tap that timed out on a slow answer); report the rest."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        """Return the Pull API endpoint this server serves."""
        return f"http://127.0.0.1:{self.server_address[1]}{API_PATHS[0]}"


def _fault_arg(text: str) -> Fault:
    spec: dict[str, t.Any] = {}
    for pair in text.split(","):
        key, _, value = pair.partition("=")
        spec[key] = value if key in {"kind", "type"} else float(value) if "." in value else int(value)
    try:
        return Fault.parse(spec)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def main(argv: list[str] | None = None) -> None:
    """Run the sandbox until interrupted."""
    parser = argparse.ArgumentParser(prog="tap-bayut-sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--api-key", default="sandbox", help="the bearer key it accepts")
    parser.add_argument("--days", type=int, default=28, help="how many days of rows to serve")
    parser.add_argument(
        "--read-timestamp-as",
        choices=["dubai", "utc"],
        default="dubai",
        help="the zone it reads the request's timestamp in (the live API's is undocumented)",
    )
    parser.add_argument(
        "--fault",
        type=_fault_arg,
        action="append",
        default=[],
        metavar="SPEC",
        help="e.g. kind=status,status=429,retry_after=1,times=2,type=leads (repeatable)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    zone = DUBAI if args.read_timestamp_as == "dubai" else dt.UTC
    state = State(api_key=args.api_key, timestamp_zone=zone, days=args.days)
    state.faults.extend(args.fault)
    server = Server(state, args.port, quiet=args.quiet)
    print(f"tap-bayut-sandbox: serving {server.url} (api_key {args.api_key!r})", flush=True)  # noqa: T201
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
