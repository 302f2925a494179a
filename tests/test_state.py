"""Incremental state: bookmarks, the next run's window, and interrupted runs losing nothing."""

from __future__ import annotations

import pytest

from tap_bayut.client import BayutStream
from tests.conftest import API_URL, EMAIL_LEAD, SAMPLES, bookmark_state, run_tap

OLD = {"replication_key": "date_time", "replication_key_value": "2026-12-01T00:00:00+00:00"}


@pytest.mark.usefixtures("api")
def test_final_state_holds_the_newest_instant_of_every_stream():
    """After a full run each stream's bookmark is its newest date_time, in canonical UTC."""
    out = run_tap()
    final = out.states[-1]["bookmarks"]
    assert final["call_logs"]["replication_key_value"] == "2026-12-03T11:26:23+00:00"
    assert final["leads"]["replication_key_value"] == "2026-12-03T18:10:00+00:00"
    assert final["whatsapp_leads"]["replication_key_value"] == "2026-12-03T11:05:57+00:00"
    assert final["agent_whatsapp_leads"]["replication_key_value"] == "2026-12-03T11:05:57+00:00"
    for counter in ("phone_views", "sms_clicks", "whatsapp_views"):
        assert final[counter]["replication_key_value"] == "2026-12-04"
    for stream_state in final.values():
        assert set(stream_state) == {"replication_key", "replication_key_value"}


def test_bookmark_is_the_maximum_not_the_last_row(requests_mock):
    """Rows come newest first; the bookmark is still the newest, not the last one read."""
    rows = [
        {**EMAIL_LEAD, "date_time": t, "client_email": t}
        for t in ("2026-12-03 10:00:00", "2026-12-04 09:00:00", "2026-12-02 08:00:00")
    ]
    requests_mock.get(f"{API_URL}?type=leads", json=rows)
    assert run_tap(streams=["leads"]).bookmark("leads") == "2026-12-04T05:00:00+00:00"


def test_second_run_asks_from_the_first_runs_bookmark_less_lookback(api):
    """Run two starts where run one's state says, 24 h back, in Dubai time."""
    first = run_tap(streams=["leads", "sms_clicks"])
    api.reset_mock()
    run_tap(state=first.states[-1], streams=["leads", "sms_clicks"])
    urls = {r.qs["type"][0]: r.url for r in api.request_history}
    # 2026-12-03T18:10Z is 22:10 Dubai; less 24 h.
    assert urls["leads"].endswith("timestamp=2026-12-02%2022%3A10%3A00")
    assert urls["sms_clicks"].endswith("timestamp=2026-12-04%2000%3A00%3A00")


def test_empty_answer_keeps_the_bookmark(requests_mock):
    """A run that finds nothing new leaves the bookmark where it was."""
    requests_mock.get(f"{API_URL}?type=leads", text="")
    out = run_tap(state={"bookmarks": {"leads": dict(OLD)}}, streams=["leads"])
    assert out.records["leads"] == []
    assert out.bookmark("leads") == OLD["replication_key_value"]


def test_bookmark_written_with_an_offset_is_read_as_the_same_instant(api):
    """A bookmark stored as +04:00 by another tool starts the window at the same instant."""
    state = bookmark_state("leads", "2026-12-03T14:00:00+04:00")
    run_tap(state=state, streams=["leads"])
    assert api.request_history[0].url.endswith("timestamp=2026-12-02%2014%3A00%3A00")


def test_failed_stream_never_moves_its_bookmark(requests_mock, monkeypatch):
    """A stream that fails after emitting rows leaves every STATE at its old bookmark."""
    monkeypatch.setattr(BayutStream, "STATE_MSG_FREQUENCY", 1)
    rows = [{**EMAIL_LEAD, "date_time": "2026-12-04 09:00:00"}, {**EMAIL_LEAD, "date_time": "garbled"}]
    requests_mock.get(f"{API_URL}?type=leads", json=rows)
    out = run_tap(state={"bookmarks": {"leads": dict(OLD)}}, streams=["leads"], allow_error=True)
    assert "garbled" in str(out.error)
    assert len(out.records["leads"]) == 1
    assert out.states
    assert all(
        s["bookmarks"]["leads"]["replication_key_value"] == OLD["replication_key_value"] for s in out.states
    )


def test_resume_from_last_state_of_a_failed_run_refetches_what_was_cut(requests_mock):
    """Resuming from a failed run's last STATE re-asks the cut stream's old window."""
    for stream, rows in SAMPLES.items():
        requests_mock.get(f"{API_URL}?type={stream}", json=rows)
    cut = [{**EMAIL_LEAD, "date_time": "2026-12-04 09:00:00"}, {**EMAIL_LEAD, "date_time": "bad"}]
    requests_mock.get(f"{API_URL}?type=leads", json=cut)
    failed = run_tap(state={"bookmarks": {"leads": dict(OLD)}}, allow_error=True)
    assert failed.error is not None
    last = failed.states[-1]["bookmarks"]
    # call_logs finished before leads failed, so its bookmark moved; leads' did not.
    assert last["call_logs"]["replication_key_value"] == "2026-12-03T11:26:23+00:00"
    assert last["leads"]["replication_key_value"] == OLD["replication_key_value"]

    requests_mock.get(f"{API_URL}?type=leads", json=cut[:1])
    requests_mock.reset_mock()
    resumed = run_tap(state=failed.states[-1], streams=["leads", "call_logs"])
    urls = {r.qs["type"][0]: r.url for r in requests_mock.request_history}
    assert urls["leads"].endswith("timestamp=2026-11-30%2004%3A00%3A00")
    assert urls["call_logs"].endswith("timestamp=2026-12-02%2015%3A26%3A23")
    assert resumed.records["leads"] == failed.records["leads"]
    assert resumed.bookmark("leads") == "2026-12-04T05:00:00+00:00"
