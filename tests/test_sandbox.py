"""The sandbox on its own: strict input, the data it serves, its faults and controls."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import threading
import time

import pytest
import requests

from tap_bayut.sandbox import data
from tap_bayut.sandbox.server import Fault, Server, State, _fault_arg, parse_query
from tests.conftest import SANDBOX_KEY, control_url

DUBAI = dt.timezone(dt.timedelta(hours=4))
AUTH = {"Authorization": f"Bearer {SANDBOX_KEY}"}


def dubai_now() -> dt.datetime:
    """Return Dubai wall-clock time, naive."""
    return dt.datetime.now(DUBAI).replace(tzinfo=None)


def get(
    server,
    kind: str = "leads",
    timestamp: str | None = None,
    headers: dict | None = None,
    raw: str | None = None,
):
    """Ask the sandbox's API the way the tap does (%20 for the space), or with a raw query."""
    stamp = timestamp or (dubai_now() - dt.timedelta(days=40)).strftime("%Y-%m-%d %H:%M:%S")
    query = raw or f"type={kind}&timestamp={stamp.replace(' ', '%20').replace(':', '%3A')}"
    return requests.get(f"{server.url}?{query}", headers=AUTH if headers is None else headers, timeout=10)


def control(server, action: str, json_body=None):
    """Call the control endpoint."""
    if json_body is None and action.partition("?")[0] in {"rows", "requests"}:
        return requests.get(control_url(server, action), timeout=10)
    return requests.post(control_url(server, action), json=json_body, timeout=10)


def test_listens_on_loopback_only(sandbox):
    """The server binds 127.0.0.1, never all interfaces."""
    assert sandbox.server_address[0] == "127.0.0.1"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": SANDBOX_KEY}])
def test_wrong_or_missing_key_is_401(sandbox, headers):
    """Anything but the exact bearer key is 401 Unauthenticated."""
    answer = get(sandbox, headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"message": "Unauthenticated."}


@pytest.mark.parametrize("kind", ["", "emails", "call_log", "LEADS"])
def test_unknown_type_is_422_naming_type(sandbox, kind):
    """An unknown type gets a Laravel-style 422 whose errors name type."""
    answer = get(sandbox, kind=kind)
    assert answer.status_code == 422
    assert list(answer.json()["errors"]) == ["type"]


def test_plus_is_not_a_space(sandbox):
    """A timestamp whose space came as + does not parse: 422 naming timestamp."""
    answer = get(sandbox, raw="type=leads&timestamp=2026-12-01+00%3A00%3A00")
    assert answer.status_code == 422
    assert answer.json()["errors"]["timestamp"] == ["The timestamp field must match the format Y-m-d H:i:s."]


@pytest.mark.parametrize("stamp", ["2026-12-01", "2026-12-01T00:00:00", "2026-02-30 00:00:00", "yesterday"])
def test_malformed_timestamps_are_422(sandbox, stamp):
    """Only Y-m-d H:i:s (a real date) is accepted."""
    assert get(sandbox, timestamp=stamp).status_code == 422


def test_missing_timestamp_is_422(sandbox):
    """timestamp is required."""
    answer = get(sandbox, raw="type=leads")
    assert answer.status_code == 422
    assert answer.json()["message"] == "The timestamp field is required."


@pytest.mark.parametrize(
    ("now", "floor"),
    [
        ("2026-12-04 16:30:05", "2026-06-04 16:30:05"),
        # PHP's month arithmetic overflows: there is no 31 February.
        ("2026-08-31 10:00:00", "2026-03-03 10:00:00"),
        ("2028-08-31 10:00:00", "2028-03-02 10:00:00"),
    ],
)
def test_timestamp_behind_the_floor_is_422_naming_it(now, floor):
    """A second before six calendar months ago is refused, naming the floor; the floor itself is not."""
    pinned = dt.datetime.strptime(now, "%Y-%m-%d %H:%M:%S").replace(tzinfo=DUBAI)
    server = Server(State(api_key=SANDBOX_KEY, clock=lambda: pinned), quiet=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        just_before = (dt.datetime.strptime(floor, "%Y-%m-%d %H:%M:%S") - dt.timedelta(seconds=1)).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        refused = get(server, timestamp=just_before)
        accepted = get(server, timestamp=floor)
    finally:
        server.shutdown()
        server.server_close()
    message = f"The timestamp must be a date after or equal to {floor}."
    assert refused.status_code == 422
    assert refused.json() == {"message": message, "errors": {"timestamp": [message]}}
    assert accepted.status_code == 200


def test_query_parser_keeps_plus_and_decodes_percent():
    """The sandbox's own query parsing: %20 is a space, + stays +."""
    assert parse_query("type=leads&timestamp=2026-12-01%2000%3A00%3A00") == {
        "type": "leads",
        "timestamp": "2026-12-01 00:00:00",
    }
    assert parse_query("timestamp=2026-12-01+00:00:00")["timestamp"] == "2026-12-01+00:00:00"


@pytest.mark.parametrize("kind", data.TYPES)
def test_every_type_serves_dubai_wall_clock_rows_newest_first(sandbox, kind):
    """All seven types answer a JSON array of rows, newest first, in bare wall-clock time."""
    answer = get(sandbox, kind=kind)
    rows = answer.json()
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert len(rows) > 10
    stamps = [f"{r['date']} {r['time']}" if kind == "call_logs" else r["date_time"] for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    pattern = r"\d{4}-\d{2}-\d{2}" if kind in data.DAILY_TYPES else r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"
    assert all(re.fullmatch(pattern, s) for s in stamps)
    assert max(stamps) <= dubai_now().strftime("%Y-%m-%d %H:%M:%S")


def test_rows_carry_the_live_apis_drift(sandbox):
    """String and integer ids, missed calls with null times, "None" recordings, string counters."""
    calls = get(sandbox, kind="call_logs").json()
    assert {type(c["call_log_id"]) for c in calls} == {int, str}
    missed = [c for c in calls if c["call_status"] == "missed"]
    assert missed
    assert all(c["call_time"] is None and c["call_recordingurl"] == "None" for c in missed)
    counters = get(sandbox, kind="sms_clicks").json()
    assert {type(c["sms_clicks"]) for c in counters} == {int, str}
    assert {type(c["listing_id"]) for c in counters} == {int, str}


def test_timestamp_filters_rows_and_days(sandbox):
    """Event rows at or after the timestamp come back; counters from the timestamp's day."""
    stamp = (dubai_now() - dt.timedelta(days=3)).replace(hour=13, minute=0, second=0)
    text = stamp.strftime("%Y-%m-%d %H:%M:%S")
    leads = get(sandbox, kind="leads", timestamp=text).json()
    everything = control(sandbox, "rows?type=leads").json()
    assert leads == [r for r in everything if r["date_time"] >= text]
    assert len(leads) < len(everything)
    counts = get(sandbox, kind="phone_views", timestamp=text).json()
    assert min(r["date_time"] for r in counts) == stamp.date().isoformat()


def test_status_fault_with_retry_after_is_used_up(sandbox):
    """A 429 fault answers its number of times, with Retry-After, then the API is back."""
    control(sandbox, "faults", {"kind": "status", "status": 429, "retry_after": 1.5, "times": 2})
    first, second, third = (get(sandbox) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
    assert first.headers["Retry-After"] == "1.5"


def test_fault_for_one_type_leaves_the_others_alone(sandbox):
    """A fault aimed at one type does not touch another."""
    control(sandbox, "faults", {"kind": "status", "status": 503, "type": "call_logs"})
    assert get(sandbox, kind="leads").status_code == 200
    assert get(sandbox, kind="call_logs").status_code == 503


def test_html_fault_is_a_200_page(sandbox):
    """The WAF page comes with HTTP 200 and text/html."""
    control(sandbox, "faults", {"kind": "html"})
    answer = get(sandbox)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert answer.text.startswith("<!DOCTYPE html>")


def test_truncate_fault_cuts_the_body_short(sandbox):
    """The body stops half-way through its Content-Length."""
    control(sandbox, "faults", {"kind": "truncate"})
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(sandbox)


def test_slow_fault_delays_the_answer(sandbox):
    """A slow answer takes at least its delay."""
    control(sandbox, "faults", {"kind": "slow", "delay": 0.5})
    started = time.monotonic()
    assert get(sandbox).status_code == 200
    assert time.monotonic() - started >= 0.5


def test_refuse_type_fault_answers_422_naming_type(sandbox):
    """The "not live yet" refusal names type."""
    control(sandbox, "faults", {"kind": "refuse_type", "type": "agent_whatsapp_leads", "times": -1})
    for _ in range(2):
        answer = get(sandbox, kind="agent_whatsapp_leads")
        assert answer.status_code == 422
        assert "type" in answer.json()["errors"]


def test_unknown_fault_kind_is_refused(sandbox):
    """The control endpoint says which kinds exist."""
    answer = control(sandbox, "faults", {"kind": "explode"})
    assert answer.status_code == 400
    assert "truncate" in answer.json()["message"]


@pytest.mark.parametrize(
    ("fault", "named"),
    [
        ({"kind": "status", "status": 599}, "status"),
        ({"kind": "status", "status": "429"}, "status"),
        ({"kind": "status", "status": 200}, "status"),
        ({"kind": "status", "retry_after": "2"}, "retry_after"),
        ({"kind": "slow", "delay": -1}, "delay"),
        ({"kind": "html", "times": -2}, "times"),
        ({"kind": "html", "colour": "red"}, "colour"),
    ],
)
def test_malformed_faults_are_refused_and_change_nothing(sandbox, fault, named):
    """A fault the handler could not play is a 400 naming the field; the API stays healthy."""
    answer = control(sandbox, "faults", [{"kind": "html"}, fault])
    assert answer.status_code == 400
    assert named in answer.json()["message"]
    assert get(sandbox).status_code == 200


def test_control_body_that_is_not_json_is_400(sandbox):
    """Garbage to the control endpoint is answered, not a dropped connection."""
    answer = requests.post(control_url(sandbox, "faults"), data=b"{not json", timeout=10)
    assert answer.status_code == 400


def test_late_rows_are_published_in_the_past(sandbox):
    """Publishing adds rows stamped hours before now, for every event type."""
    before = control(sandbox, "rows?type=whatsapp_leads").json()
    held_back = sum(map(len, sandbox.state.dataset.late.values()))
    assert held_back >= 8
    assert control(sandbox, "publish-late").json() == {"published": held_back}
    after = control(sandbox, "rows?type=whatsapp_leads").json()
    new = [r for r in after if r not in before]
    assert len(new) == 2
    hours_ago = [(dubai_now() - dt.datetime.strptime(r["date_time"], "%Y-%m-%d %H:%M:%S")) for r in new]
    assert all(dt.timedelta(hours=1) < age < dt.timedelta(hours=4) for age in hours_ago)


def test_counters_grow_today(sandbox):
    """Growing adds views to today's rows of each counter type."""
    today = dubai_now().date().isoformat()

    def total() -> int:
        rows = control(sandbox, "rows?type=phone_views").json()
        return sum(int(r["phone_views"]) for r in rows if r["date_time"] == today)

    before = total()
    control(sandbox, "grow-counters")
    assert total() == before + 6


def test_request_log_records_paths_statuses_and_rows(sandbox):
    """The request log lists each API request as received, its status and the rows sent."""
    get(sandbox, raw="type=leads&timestamp=2026-12-01+00%3A00%3A00")
    answer = get(sandbox, kind="leads")
    assert control(sandbox, "requests").json() == [
        {
            "path": "/api-v7/stats/website-client-leads?type=leads&timestamp=2026-12-01+00%3A00%3A00",
            "status": 422,
            "rows": None,
        },
        {"path": answer.request.path_url, "status": 200, "rows": len(answer.json())},
    ]


def test_fault_flag_parses_pairs():
    """--fault takes comma-separated key=value pairs."""
    fault = _fault_arg("kind=status,status=429,retry_after=0.5,times=2,type=leads")
    assert fault == Fault(kind="status", status=429, retry_after=0.5, times=2, type="leads")


def test_console_script_serves_until_stopped():
    """tap-bayut-sandbox prints its URL, serves, and stops on SIGTERM."""
    command = [
        sys.executable,
        "-c",
        "from tap_bayut.sandbox.server import main; main()",
        "--port",
        "0",
        "--quiet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = re.search(r"serving (\S+)", line)
        assert url is not None
        answer = requests.get(
            f"{url.group(1)}?type=leads", headers={"Authorization": "Bearer sandbox"}, timeout=10
        )
        assert answer.status_code == 422
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
