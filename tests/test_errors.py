"""Errors: what is retried, what stops, what is skipped, and how each is reported."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest
import requests

from tap_bayut.client import BayutError
from tap_bayut.tap import SettingError, TapBayut
from tests.conftest import API_KEY, API_URL, CONFIG, EMAIL_LEAD, SAMPLES, bookmark_state, run_tap

LEADS = f"{API_URL}?type=leads"


@pytest.fixture
def sleeps(monkeypatch):
    """Record backoff's waits instead of sleeping them."""
    waits: list[float] = []
    monkeypatch.setattr("backoff._sync.time.sleep", waits.append)
    return waits


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried_then_succeed(requests_mock, sleeps, status):
    """408, 429 and 5xx are retried; the rows of the good answer arrive."""
    requests_mock.get(LEADS, [{"status_code": status, "text": "busy"}, {"json": [EMAIL_LEAD]}])
    out = run_tap(streams=["leads"])
    assert len(requests_mock.request_history) == 2
    assert len(out.records["leads"]) == 1
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ConnectTimeout,
        requests.exceptions.ReadTimeout,
        requests.exceptions.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
    ],
)
def test_network_failures_and_cut_bodies_are_retried(requests_mock, sleeps, exc):
    """Timeouts, dropped connections and bodies cut short are retried."""
    requests_mock.get(LEADS, [{"exc": exc}, {"json": [EMAIL_LEAD]}])
    out = run_tap(streams=["leads"])
    assert len(out.records["leads"]) == 1
    assert len(sleeps) == 1


def test_retry_after_seconds_is_honoured_exactly(requests_mock, sleeps):
    """A 429 with Retry-After: 7 waits 7 s, with no jitter."""
    requests_mock.get(LEADS, [{"status_code": 429, "headers": {"Retry-After": "7"}}, {"json": []}])
    run_tap(config={"backoff_seconds": 1}, streams=["leads"])
    assert sleeps == [7.0]


def test_retry_after_in_the_body_is_honoured(requests_mock, sleeps):
    """A Profolio-style retry_after in the JSON body counts too."""
    requests_mock.get(LEADS, [{"status_code": 429, "json": {"retry_after": 3}}, {"json": []}])
    run_tap(streams=["leads"])
    assert sleeps == [3.0]


def test_retry_after_http_date_is_honoured(requests_mock, sleeps):
    """Retry-After as an HTTP date waits until then (the clock is pinned at NOW)."""
    requests_mock.get(
        LEADS,
        [{"status_code": 503, "headers": {"Retry-After": "Fri, 04 Dec 2026 12:00:30 GMT"}}, {"json": []}],
    )
    run_tap(streams=["leads"])
    assert sleeps == [30.0]


def test_without_retry_after_waits_grow_exponentially(requests_mock, sleeps):
    """Without Retry-After the waits double from backoff_seconds, jittered downwards only."""
    requests_mock.get(LEADS, [{"status_code": 500}, {"status_code": 500}, {"status_code": 500}, {"json": []}])
    run_tap(config={"backoff_seconds": 1, "max_retries": 3}, streams=["leads"])
    assert len(sleeps) == 3
    for wait, ceiling in zip(sleeps, (1, 2, 4), strict=True):
        assert 0.8 * ceiling <= wait <= ceiling


def test_retries_give_up_after_max_retries_with_the_status(requests_mock, sleeps):
    """Past max_retries the run fails, saying which status it kept getting."""
    requests_mock.get(LEADS, status_code=503)
    out = run_tap(streams=["leads"], allow_error=True)
    assert "503" in str(out.error)
    assert len(requests_mock.request_history) == CONFIG["max_retries"] + 1
    assert len(sleeps) == CONFIG["max_retries"]


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_stops_at_once_without_retry(requests_mock, sleeps, status):
    """401 and 403 fail on the first answer, saying the key was rejected."""
    requests_mock.get(LEADS, status_code=status, text="Unauthenticated.")
    out = run_tap(streams=["leads"], allow_error=True)
    assert isinstance(out.error, BayutError)
    assert "rejected the API key" in str(out.error)
    assert len(requests_mock.request_history) == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [200, 503])
@pytest.mark.usefixtures("sleeps")
def test_html_page_is_an_error_never_zero_rows(requests_mock, status):
    """An HTML page fails the run (after retries if 5xx) and the bookmark stays."""
    html = "<!DOCTYPE html><html><body>Access denied</body></html>"
    requests_mock.get(LEADS, text=html, status_code=status, headers={"Content-Type": "text/html"})
    state = bookmark_state("leads", "2026-12-01T00:00:00+00:00")
    out = run_tap(state=state, streams=["leads"], allow_error=True)
    assert out.error is not None
    if status == 200:
        assert "not JSON" in str(out.error)
        assert "text/html" in str(out.error)
    assert out.records["leads"] == []
    assert all(
        s["bookmarks"]["leads"]["replication_key_value"] == "2026-12-01T00:00:00+00:00" for s in out.states
    )


@pytest.mark.parametrize("body", ["", "[]", "  \n"])
def test_empty_body_and_empty_array_are_zero_rows(requests_mock, body):
    """An empty body or [] is a quiet run with no rows."""
    requests_mock.get(LEADS, text=body)
    out = run_tap(streams=["leads"])
    assert out.records["leads"] == []


@pytest.mark.parametrize("body", ['{"data": []}', '"ok"', "[1, 2]"])
def test_json_that_is_not_an_array_of_objects_is_an_error(requests_mock, body):
    """JSON of another shape fails loudly rather than being guessed at."""
    requests_mock.get(LEADS, text=body)
    out = run_tap(streams=["leads"], allow_error=True)
    assert "not an array of objects" in str(out.error)


def test_body_cut_inside_the_json_is_an_error_not_rows(requests_mock):
    """A body that ends mid-array (no Content-Length to catch it) is not read as rows."""
    requests_mock.get(LEADS, text=json.dumps([EMAIL_LEAD])[:-20])
    out = run_tap(streams=["leads"], allow_error=True)
    assert "not JSON" in str(out.error)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, "Not Found"),
        (422, json.dumps({"message": "The selected type is invalid.", "errors": {"type": ["Invalid."]}})),
        (400, '{"message": "Unknown type agent_whatsapp_leads"}'),
    ],
)
def test_agent_whatsapp_leads_not_live_is_skipped_with_a_warning(api, caplog, status, body):
    """A refused agent_whatsapp_leads warns once, naming the stream, and the others still sync."""
    api.get(f"{API_URL}?type=agent_whatsapp_leads", status_code=status, text=body)
    out = run_tap()
    [warning] = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert "agent_whatsapp_leads" in warning.getMessage()
    assert out.records["agent_whatsapp_leads"] == []
    assert {s for s, rows in out.records.items() if rows} == set(SAMPLES) - {"agent_whatsapp_leads"}
    assert "replication_key_value" not in out.states[-1]["bookmarks"].get("agent_whatsapp_leads", {})


def test_other_streams_do_not_swallow_a_refused_type(requests_mock):
    """A documented, live type that is refused is an error, not a skipped stream."""
    requests_mock.get(LEADS, status_code=404, text="Not Found")
    out = run_tap(streams=["leads"], allow_error=True)
    assert isinstance(out.error, BayutError)
    assert "404" in str(out.error)


def test_floor_422_is_retried_from_the_servers_floor(requests_mock, caplog):
    """A 422 naming the floor is asked again from that floor plus a minute, once."""
    floor_422 = {
        "status_code": 422,
        "json": {
            "message": "The timestamp must be a date after or equal to 2026-06-04 16:30:00.",
            "errors": {"timestamp": ["The timestamp must be a date after or equal to 2026-06-04 16:30:00."]},
        },
    }
    requests_mock.get(LEADS, [floor_422, {"json": [EMAIL_LEAD]}])
    out = run_tap(config={"start_date": None}, streams=["leads"])
    first, second = requests_mock.request_history
    assert first.url.endswith("timestamp=2026-06-04%2016%3A01%3A00")
    assert second.url.endswith("timestamp=2026-06-04%2016%3A31%3A00")
    assert len(out.records["leads"]) == 1
    assert any("six-month floor is 2026-06-04 16:30:00" in r.getMessage() for r in caplog.records)


def test_floor_422_twice_stops_with_a_clear_error(requests_mock):
    """If the retried window is refused again the run stops instead of looping."""
    floor_422 = {
        "status_code": 422,
        "json": {"message": "The timestamp must be a date after or equal to 2026-06-04 16:30:00."},
    }
    requests_mock.get(LEADS, [floor_422, floor_422])
    out = run_tap(config={"start_date": None}, streams=["leads"], allow_error=True)
    assert isinstance(out.error, BayutError)
    assert "refused timestamp 2026-06-04 16:31:00 (floor 2026-06-04 16:30:00) twice" in str(out.error)
    assert len(requests_mock.request_history) == 2


def test_other_4xx_quotes_the_body_without_the_key(requests_mock):
    """A 400 is fatal, quotes the server's words, and blanks out the key if echoed."""
    requests_mock.get(LEADS, status_code=400, text=f"bad request for token {API_KEY}")
    out = run_tap(streams=["leads"], allow_error=True)
    assert "HTTP 400" in str(out.error)
    assert "bad request for token [api_key]" in str(out.error)
    assert API_KEY not in str(out.error)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"start_date": "last tuesday"}, "start_date"),
        ({"api_key": "   "}, "api_key"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"api_url": "www.bayut.com/api-v7"}, "api_url"),
        ({"timezone": "Asia"}, "timezone"),
        ({"lookback_hours": -1}, "lookback_hours"),
        ({"request_timeout": 0}, "request_timeout"),
    ],
)
def test_malformed_setting_fails_at_construction(override, named):
    """A bad setting stops the tap when it is built, in one line naming the setting."""
    with pytest.raises(SettingError) as info:
        TapBayut(config={**CONFIG, **override}, parse_env_config=False)
    assert str(info.value).startswith(named)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "answer",
    [
        {"headers": {"Retry-After": "soon"}},
        {"json": {"retry_after": "a minute"}},
        {"headers": {"Retry-After": "Fri, 04 Dec 2026 12:00:02 -0000"}},
    ],
    ids=["words", "words-in-body", "date-without-zone"],
)
def test_unreadable_or_odd_retry_after_still_retries(requests_mock, sleeps, answer):
    """A Retry-After the tap cannot read falls back to the exponential wait, never crashes."""
    requests_mock.get(LEADS, [{"status_code": 429, **answer}, {"json": [EMAIL_LEAD]}])
    out = run_tap(config={"backoff_seconds": 1}, streams=["leads"])
    assert len(out.records["leads"]) == 1
    assert len(sleeps) == 1
    assert sleeps[0] <= 2.0


def test_retry_after_longer_than_the_tap_waits_fails_clearly(requests_mock, sleeps):
    """A server asking for an hour gets a clear error, not a premature retry."""
    requests_mock.get(LEADS, status_code=429, headers={"Retry-After": "3600"})
    out = run_tap(streams=["leads"], allow_error=True)
    assert isinstance(out.error, BayutError)
    assert "after 3600 s" in str(out.error)
    assert sleeps == []
    assert len(requests_mock.request_history) == 1


def test_html_4xx_on_agent_whatsapp_leads_is_not_a_refused_type(requests_mock):
    """A WAF page mentioning type= in its markup is an error, not a quiet skip."""
    page = '<html><script type="text/javascript">x()</script>Request blocked</html>'
    requests_mock.get(f"{API_URL}?type=agent_whatsapp_leads", status_code=400, text=page)
    out = run_tap(streams=["agent_whatsapp_leads"], allow_error=True)
    assert isinstance(out.error, BayutError)
    assert "HTTP 400" in str(out.error)


@pytest.mark.parametrize("key", ["sk-live/abc+def=", "k" * 20])
def test_echoed_key_is_blanked_in_every_form_before_cutting(requests_mock, key):
    """The key is blanked as sent, JSON-escaped and URL-quoted, even where the excerpt ends."""
    body = json.dumps({"message": f"bad token {key}"}) + f" q={quote_plus(key)} " + "x" * 250 + key
    requests_mock.get(LEADS, status_code=400, text=body)
    out = run_tap(config={"api_key": key}, streams=["leads"], allow_error=True)
    message = str(out.error)
    assert "[api_key]" in message
    assert key not in message
    assert key[:6] not in message.replace("[api_key]", "")
