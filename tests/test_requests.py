"""The exact request on the wire: URL, encoding, headers, window start."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from tests.conftest import API_KEY, API_URL, FLOOR_WIRE, bookmark_state, run_tap


def wire_timestamp(api, stream: str) -> str:
    """Return the raw timestamp query of the one request made for a stream."""
    [request] = [r for r in api.request_history if f"type={stream}&" in r.url]
    return request.url.split("timestamp=", 1)[1]


def test_wire_url_encodes_space_as_percent_20_and_colons(api):
    """The space is %20, never +, and the URL is exactly the document's form."""
    run_tap(streams=["call_logs"])
    [request] = api.request_history
    assert request.url == f"{API_URL}?type=call_logs&timestamp=2026-11-01%2004%3A00%3A00"
    assert "+" not in request.url


def test_bearer_header_and_nothing_else_carries_the_key(api):
    """The key travels only in the Authorization header."""
    run_tap(streams=["leads"])
    [request] = api.request_history
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in request.url
    assert request.headers["Accept"] == "application/json"


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        ("call_logs", "2026-11-01%2004%3A00%3A00"),
        ("leads", "2026-11-01%2004%3A00%3A00"),
        ("whatsapp_leads", "2026-11-01%2004%3A00%3A00"),
        ("agent_whatsapp_leads", "2026-11-01%2004%3A00%3A00"),
        # Daily counters ask from 00:00 of the start's day in Dubai.
        ("phone_views", "2026-11-01%2000%3A00%3A00"),
        ("sms_clicks", "2026-11-01%2000%3A00%3A00"),
        ("whatsapp_views", "2026-11-01%2000%3A00%3A00"),
    ],
)
def test_first_run_starts_at_start_date_in_dubai_wall_clock(api, stream, expected):
    """start_date 2026-11-01T00:00Z is 04:00 in Dubai; counters round down to the day."""
    run_tap(streams=[stream])
    assert wire_timestamp(api, stream) == expected


def test_every_documented_type_is_requested_once(api):
    """A full run asks each of the seven types exactly once."""
    run_tap()
    types = sorted(r.qs["type"][0] for r in api.request_history)
    assert types == sorted(
        [
            "call_logs",
            "leads",
            "phone_views",
            "sms_clicks",
            "whatsapp_views",
            "whatsapp_leads",
            "agent_whatsapp_leads",
        ]
    )


def test_bookmark_minus_lookback_in_configured_zone(api):
    """A bookmark of 10:00 UTC with 24 h lookback asks from the day before, 14:00 Dubai."""
    state = bookmark_state("leads", "2026-12-03T10:00:00+00:00")
    run_tap(state=state, streams=["leads"])
    assert wire_timestamp(api, "leads") == "2026-12-02%2014%3A00%3A00"


def test_lookback_setting_and_timezone_setting_apply(api):
    """A 6 h lookback in UTC asks from the bookmark less 6 hours, written in UTC."""
    state = bookmark_state("leads", "2026-12-03T10:00:00+00:00")
    run_tap(config={"lookback_hours": 6, "timezone": "UTC"}, state=state, streams=["leads"])
    assert wire_timestamp(api, "leads") == "2026-12-03%2004%3A00%3A00"


def test_daily_counter_asks_from_midnight_of_its_bookmark_day(api):
    """A counter bookmarked on 2026-12-03 asks again from that day's 00:00, without lookback."""
    state = bookmark_state("sms_clicks", "2026-12-03")
    run_tap(state=state, streams=["sms_clicks"])
    assert wire_timestamp(api, "sms_clicks") == "2026-12-03%2000%3A00%3A00"


def test_no_start_date_starts_at_the_floor_and_warns_once(api, caplog):
    """Without start_date every stream starts at the six-month floor, said in one warning."""
    run_tap(config={"start_date": None}, streams=["leads", "call_logs"])
    assert wire_timestamp(api, "leads") == FLOOR_WIRE.replace(" ", "%20").replace(":", "%3A")
    assert wire_timestamp(api, "call_logs") == FLOOR_WIRE.replace(" ", "%20").replace(":", "%3A")
    warnings = [r for r in caplog.records if "start_date is not set" in r.getMessage()]
    assert len(warnings) == 1


def test_old_start_date_is_clamped_to_the_floor_with_a_warning(api, caplog):
    """A start_date a year back starts at the floor instead, and says so."""
    run_tap(config={"start_date": "2025-12-01T00:00:00Z"}, streams=["leads", "sms_clicks"])
    assert wire_timestamp(api, "leads") == "2026-06-04%2016%3A01%3A00"
    # The floor is not a midnight, so a counter starts at the floor itself.
    assert wire_timestamp(api, "sms_clicks") == "2026-06-04%2016%3A01%3A00"
    assert sum("older than the API's six-month floor" in r.getMessage() for r in caplog.records) == 1


def test_lookback_never_reaches_behind_the_floor(api, caplog):
    """A bookmark just after the floor minus 24 h lookback is clamped to the floor, quietly."""
    state = bookmark_state("leads", "2026-06-05T00:00:00+00:00")
    run_tap(state=state, streams=["leads"])
    assert wire_timestamp(api, "leads") == "2026-06-04%2016%3A01%3A00"
    assert not [r for r in caplog.records if r.name.startswith("tap-bayut") and r.levelno >= logging.WARNING]


def test_bookmark_behind_the_floor_warns_about_the_gap(api, caplog):
    """A bookmark older than the floor means a gap; the tap says so and starts at the floor."""
    state = bookmark_state("leads", "2026-05-01T00:00:00+00:00")
    run_tap(state=state, streams=["leads"])
    assert wire_timestamp(api, "leads") == "2026-06-04%2016%3A01%3A00"
    [warning] = [r for r in caplog.records if "can no longer be fetched" in r.getMessage()]
    assert "leads" in warning.getMessage()


def test_dubizzle_endpoint_is_used_as_given(requests_mock):
    """The api_url setting is the whole endpoint, so dubizzle's works the same."""
    url = "https://dubizzle.com/profolio/api-v7/stats/website-client-leads"
    requests_mock.get(url, json=[])
    run_tap(config={"api_url": url}, streams=["leads"])
    assert requests_mock.request_history[0].url.startswith(f"{url}?type=leads&timestamp=")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 31 Aug less six months: PHP overflows to 3 Mar; clamping would say 28 Feb, before it.
        ("2026-08-31T06:00:00+00:00", "2026-03-03%2010%3A01%3A00"),
        ("2026-12-04T12:00:00+00:00", "2026-06-04%2016%3A01%3A00"),
    ],
)
def test_floor_is_never_before_the_servers_on_month_ends(requests_mock, monkeypatch, now, expected):
    """The floor uses PHP's overflowing month arithmetic, the later of the two readings."""
    monkeypatch.setattr("tap_bayut.client.utc_now", lambda: dt.datetime.fromisoformat(now))
    requests_mock.get(f"{API_URL}?type=leads", json=[])
    run_tap(config={"start_date": None}, streams=["leads"])
    assert wire_timestamp(requests_mock, "leads") == expected
