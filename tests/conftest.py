"""Shared fixtures: a pinned clock, the document's sample rows and an in-process tap runner."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import threading
import typing as t
from collections import defaultdict
from contextlib import redirect_stdout
from dataclasses import dataclass, field

import pytest
import requests

from tap_bayut.client import BayutStream
from tap_bayut.sandbox import data
from tap_bayut.sandbox.server import Server, State
from tap_bayut.tap import TapBayut

if t.TYPE_CHECKING:
    from pathlib import Path

API_URL = "https://api.test/api-v7/stats/website-client-leads"
API_KEY = "sk-test-7f5b7b15737b5ff3"
SANDBOX_KEY = "sandbox-key-4b1d"
#: The pinned "now" of these tests: 2026-12-04 12:00:00 UTC = 16:00:00 in Dubai.
NOW = dt.datetime(2026, 12, 4, 12, 0, 0, tzinfo=dt.UTC)
#: Six calendar months before NOW in Dubai wall-clock, plus the tap's one-minute margin.
FLOOR_WIRE = "2026-06-04 16:01:00"

CONFIG: dict[str, t.Any] = {
    "api_key": API_KEY,
    "api_url": API_URL,
    "start_date": "2026-11-01T00:00:00Z",
    "backoff_seconds": 0,
    "max_retries": 2,
}

# Rows as the document shows them (its JSON repaired), dated near NOW.
CALL_LOG = {
    "call_log_id": 1234567,
    "listing_reference": "",
    "lead_id": "",
    "object_type_id": 1,
    "object_id": 1234567,
    "stats_ip_id": 1234567,
    "date": "2026-12-03",
    "time": "15:26:23",
    "role_id": 11,
    "caller_number": "+97112345678",
    "proxy_number": "+97112345678",
    "receiver_numbers_list": "+971123456789#35,+971123456789#35",
    "receiver_number": "+971123456789",
    "call_status": "connected",
    "call_total_duration": "0:03:23",
    "call_connected_duration": "00:02:54",
    "call_time": "2026-12-03 15:26:17",
    "call_pickup_time": "2026-12-03 15:26:23",
    "call_recordingurl": "https://sr.knowlarity.com/vr/fetchsound/?callid=abc",
    "caller_location": "United Arab Emirates",
    "source": "knowlarity",
    "is_object_fetched": 0,
    "reference_log_id": 123456789,
    "call_type": "in",
}
# The live API's drift: string id, a missed call with null times, "None" recording.
MISSED_CALL = {
    **CALL_LOG,
    "call_log_id": "phone|06af3568",
    "lead_id": "phone|06af3568",
    "date": "2026-12-02",
    "time": "09:00:05",
    "call_status": "missed",
    "call_time": None,
    "call_pickup_time": None,
    "caller_location": None,
    "call_type": None,
    "call_recordingurl": "None",
}
EMAIL_LEAD = {
    "property_id": 1234567,
    "lead_id": "",
    "property_reference": "",
    "current_type": "",
    "date_time": "2026-12-03 22:10:00",
    "message": "I would like to inquire about your property Bayut - ABC-2-123.",
    "client_name": "Mona Douma",
    "client_email": "mona@example.com",
    "client_phone": "971585849046",
}
WHATSAPP_LEAD = {
    "date_time": "2026-12-03 15:05:57",
    "source": "bayut",
    "listing_id": 7446192,
    "listing_reference": "291-Ap-R-23906",
    "detail": {"actor_name": "Eslam Aziz", "cell": "971581260543", "message": "Hi, I am interested."},
    "delivery_notifications": [
        {"status": "Read", "created_at": "2026-12-03T11:06:15.000000Z"},
        {"status": "Delivered", "created_at": "2026-12-03T11:06:00.000000Z"},
        {"status": "Sent", "created_at": "2026-12-03T11:05:59.000000Z"},
    ],
}
AGENT_WHATSAPP_LEAD = {
    "date_time": "2026-12-03 15:05:57",
    "source": "bayut",
    "agent_details": {
        "url": "https://www.bayut.com/brokers/john-doe-575554.html",
        "name": "John Doe",
        "email": "john.doe@agent.com",
    },
    "actor_details": {"name": "Jane Doe", "cell": "971581231111", "message": "message from lead actor user"},
    "delivery_notifications": [{"status": "Sent", "created_at": "2026-12-03T11:05:59.000000Z"}],
}


def counters(kind: str) -> list[dict]:
    """Return two days of a daily counter, newest first, the second with a string count."""
    rows = [
        {"date_time": "2026-12-04", "listing_id": 1234567, "listing_reference": "ABC-D-1234", kind: 1},
        {"date_time": "2026-12-03", "listing_id": "1234568", "listing_reference": "ABC-D-1235", kind: "2"},
    ]
    # Only the document's phone_views rows carry an (empty) lead_id.
    return [{**row, "lead_id": ""} for row in rows] if kind == "phone_views" else rows


SAMPLES: dict[str, list[dict]] = {
    "call_logs": [CALL_LOG, MISSED_CALL],
    "leads": [EMAIL_LEAD],
    "phone_views": counters("phone_views"),
    "sms_clicks": counters("sms_clicks"),
    "whatsapp_views": counters("whatsapp_views"),
    "whatsapp_leads": [WHATSAPP_LEAD],
    "agent_whatsapp_leads": [AGENT_WHATSAPP_LEAD],
}


@dataclass
class Output:
    """What one tap run wrote to stdout, sorted by message type."""

    messages: list[dict] = field(default_factory=list)
    records: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    error: Exception | None = None

    @property
    def states(self) -> list[dict]:
        """Return the STATE values in the order written."""
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    def bookmark(self, stream: str) -> t.Any:
        """Return the stream's bookmark in the final state."""
        return self.states[-1]["bookmarks"].get(stream, {}).get("replication_key_value")


def run_tap(
    config: dict | None = None,
    state: dict | None = None,
    streams: t.Iterable[str] | None = None,
    *,
    allow_error: bool = False,
) -> Output:
    """Run a full sync in-process and return its Singer messages, those of a failed run too."""
    tap = TapBayut(config={**CONFIG, **(config or {})}, state=state, parse_env_config=False)
    if streams is not None:
        for name, stream in tap.streams.items():
            stream.selected = name in set(streams)
    buffer = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    error: Exception | None = None
    try:
        with redirect_stdout(buffer):
            tap.sync_all()
    except Exception as exc:
        if not allow_error:
            raise
        error = exc
    buffer.seek(0)
    out = parse_messages(buffer.read())
    out.error = error
    return out


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pin the tap's clock, so floors, request windows and the SDK's bookmark cap are exact."""
    monkeypatch.setattr("tap_bayut.client.utc_now", lambda: NOW)
    # The SDK caps date-time bookmarks at the run's start; pin that to NOW too.
    monkeypatch.setattr(BayutStream, "get_replication_key_signpost", lambda _self, _context=None: NOW)


@pytest.fixture
def api(requests_mock: t.Any) -> t.Any:
    """Serve every documented type with the document's sample rows."""
    for name, rows in SAMPLES.items():
        requests_mock.get(f"{API_URL}?type={name}", json=rows)
    return requests_mock


@pytest.fixture
def sandbox() -> t.Iterator[Server]:
    """Run a fresh sandbox on a free loopback port for one test, and stop it after."""
    server = Server(State(api_key=SANDBOX_KEY), quiet=True)
    # A short poll interval keeps shutdown() quick between tests.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def run_cli(
    config: dict[str, t.Any],
    state: dict | None = None,
    *args: str,
    tmp_path: Path,
    timeout: float = 120,
) -> tuple[int, Output, str]:
    """Run the tap as its own process; return its exit code, messages and stderr."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    command = [sys.executable, "-m", "tap_bayut.tap", "--config", str(config_file), *args]
    if state is not None:
        state_file = tmp_path / "state.json"
        state_file.write_text(json.dumps(state))
        command += ["--state", str(state_file)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    return done.returncode, parse_messages(done.stdout), done.stderr


def parse_messages(stdout: str) -> Output:
    """Sort Singer messages, one JSON object a line, by type."""
    out = Output()
    for line in stdout.splitlines():
        message = json.loads(line)
        out.messages.append(message)
        if message["type"] == "RECORD":
            out.records[message["stream"]].append(message["record"])
    return out


# Comparing what the sandbox serves with what the tap (or a database) holds, independently
# of the tap's own code.

WALL = "%Y-%m-%d %H:%M:%S"


def utc(wall: str) -> str:
    """Dubai wall-clock text to the UTC instant the tap must emit (Dubai is UTC+4, no DST)."""
    return (dt.datetime.strptime(wall, WALL) - dt.timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def counter(kind: str) -> tuple[t.Callable[[dict], tuple], t.Callable[[dict], tuple]]:
    """Identify a daily counter row: day, listing, count."""
    return (
        lambda raw: (raw["date_time"], str(raw["listing_id"]), int(raw[kind])),
        lambda rec: (rec["date_time"], rec["listing_id"], rec[kind]),
    )


#: For each stream: how to identify a sandbox row, and the tap's record of it, independently.
IDENTITY: dict[str, tuple[t.Callable[[dict], tuple], t.Callable[[dict], tuple]]] = {
    "call_logs": (
        lambda raw: (str(raw["call_log_id"]), utc(f"{raw['date']} {raw['time']}")),
        lambda rec: (rec["call_log_id"], rec["date_time"]),
    ),
    "leads": (
        lambda raw: (str(raw["property_id"]), raw["client_email"], utc(raw["date_time"])),
        lambda rec: (rec["property_id"], rec["client_email"], rec["date_time"]),
    ),
    "whatsapp_leads": (
        lambda raw: (str(raw["listing_id"]), raw["detail"]["cell"], utc(raw["date_time"])),
        lambda rec: (rec["listing_id"], rec["detail"]["cell"], rec["date_time"]),
    ),
    "agent_whatsapp_leads": (
        lambda raw: (raw["agent_details"]["email"], raw["actor_details"]["cell"], utc(raw["date_time"])),
        lambda rec: (rec["agent_details"]["email"], rec["actor_details"]["cell"], rec["date_time"]),
    ),
    **{kind: counter(kind) for kind in data.DAILY_TYPES},
}


def control_url(server, action: str) -> str:
    """The URL of one action of the sandbox's control endpoint."""
    return f"{server.url.split('/api-v7')[0]}/_sandbox/{action}"


def sandbox_rows(server, kind: str) -> list[dict]:
    """Every row the sandbox serves now for a type."""
    return requests.get(control_url(server, "rows"), params={"type": kind}, timeout=10).json()


def request_log(server) -> list[dict]:
    """The API requests the sandbox has received: path, status, rows sent."""
    return requests.get(control_url(server, "requests"), timeout=10).json()


def control(server, action: str, body=None) -> None:
    """Change the sandbox."""
    requests.post(control_url(server, action), json=body, timeout=10).raise_for_status()


def expected(server, kind: str) -> list[tuple]:
    """The sandbox's rows of a type, as identities."""
    return sorted(map(IDENTITY[kind][0], sandbox_rows(server, kind)))


def got(records: list[dict], kind: str) -> list[tuple]:
    """The tap's records of a type, as identities."""
    return sorted(map(IDENTITY[kind][1], records))


def upsert(*runs: Output) -> dict[str, dict[tuple, dict]]:
    """Load runs into a keyed store the way a target's upsert does: the last write wins."""
    store: dict[str, dict[tuple, dict]] = {}
    for run in runs:
        keys = {m["stream"]: m["key_properties"] for m in run.messages if m["type"] == "SCHEMA"}
        for kind, records in run.records.items():
            for record in records:
                store.setdefault(kind, {})[tuple(record[k] for k in keys[kind])] = record
    return store


#: The newer form's streams: which "type/target/is_trulead" rows of the sandbox feed them.
TARGETED_ROUTES: dict[str, tuple[str, ...]] = {
    "call_logs": ("call_logs",),
    "email_enquiries": ("email/listing/1", "email/agent/1", "email/agency/1"),
    "whatsapp_enquiries": ("whatsapp/listing/1", "whatsapp/agent/1"),
    "story_leads": ("story_leads",),
    "phone_view_totals": ("phone/listing/0", "phone/agent/0", "phone/agency/0"),
    "sms_view_totals": ("sms/listing/0", "sms/agent/0"),
    "whatsapp_view_totals": ("whatsapp/listing/0", "whatsapp/agent/0"),
}


def expected_targeted(server, stream: str) -> list[tuple]:
    """The sandbox's rows behind a targeted stream, as identities (one per lead for enquiries)."""
    if stream == "call_logs":
        return expected(server, "call_logs")
    found: dict[tuple, dict[str, t.Any]] = {}
    for route in TARGETED_ROUTES[stream]:
        kind, _, rest = route.partition("/")
        target, _, trulead = rest.partition("/")
        params = {"type": kind, **({"target": target, "is_trulead": trulead} if target else {})}
        for row in requests.get(control_url(server, "rows"), params=params, timeout=10).json():
            if stream.endswith("_view_totals"):
                count = next(v for k, v in row.items() if k.endswith("_views"))
                found[(target, row["lead_id"], int(count), utc(row["date_time"]))] = {}
            else:
                # One lead, seen under several targets: its targets and each target's details.
                seen = found.setdefault((row["lead_id"], utc(row["date_time"])), {"targets": []})
                seen["targets"].append(target)
                seen |= {
                    key: row[key]
                    for key in ("listing_details", "agent_details", "agency_details")
                    if key in row
                }
    if stream == "story_leads" or stream.endswith("_view_totals"):
        return sorted(found)
    return sorted((*key, tuple(seen["targets"]), *_details_identity(seen)) for key, seen in found.items())


def _details_identity(row: dict) -> tuple:
    """The listing id, agent e-mail and agency name a lead carries (None where absent)."""
    listing, agent, agency = (
        row.get(key) or {} for key in ("listing_details", "agent_details", "agency_details")
    )
    listing_id = listing.get("listing_id")
    return (None if listing_id is None else str(listing_id), agent.get("email"), agency.get("name"))


def got_targeted(records: list[dict], stream: str) -> list[tuple]:
    """The tap's (upserted) records of a targeted stream, as identities."""
    if stream == "call_logs":
        return got(records, "call_logs")
    if stream.endswith("_view_totals"):
        return sorted((r["target"], r["lead_id"], r["views"], r["date_time"]) for r in records)
    if stream == "story_leads":
        return sorted((r["lead_id"], r["date_time"]) for r in records)
    return sorted((r["lead_id"], r["date_time"], tuple(r["targets"]), *_details_identity(r)) for r in records)


def bookmark_state(stream: str, value: str) -> dict[str, t.Any]:
    """A state holding one stream's date_time bookmark."""
    return {"bookmarks": {stream: {"replication_key": "date_time", "replication_key_value": value}}}
