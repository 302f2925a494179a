"""The tap as its own process against the sandbox over real HTTP: syncs, faults, a kill."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import typing as t

import pytest

from tap_bayut.sandbox import data
from tests.conftest import (
    SANDBOX_KEY,
    TARGETED_ROUTES,
    bookmark_state,
    control,
    expected,
    expected_targeted,
    got,
    got_targeted,
    parse_messages,
    request_log,
    run_cli,
    sandbox_rows,
    upsert,
)


@pytest.fixture
def config(sandbox) -> dict[str, t.Any]:
    """Point the tap at the sandbox, with short waits."""
    return {
        "api_key": SANDBOX_KEY,
        "api_url": sandbox.url,
        "backoff_seconds": 0.05,
        "max_retries": 3,
        "request_timeout": 2,
    }


def test_full_sync_equals_the_sandboxs_rows(sandbox, config, tmp_path):
    """A first run emits every row of every type, once, in the tap's shape."""
    code, out, err = run_cli(config, tmp_path=tmp_path)
    assert code == 0, err
    for kind in data.TYPES:
        assert got(out.records[kind], kind) == expected(sandbox, kind), kind
    assert SANDBOX_KEY not in err


def test_incremental_run_picks_up_late_rows_and_grown_counters_only(sandbox, config, tmp_path):
    """Run two asks from the bookmarks less the lookback, and after upsert equals the sandbox."""
    code, first, err = run_cli(config, tmp_path=tmp_path)
    assert code == 0, err
    control(sandbox, "publish-late")
    control(sandbox, "grow-counters")
    log_before = len(request_log(sandbox))

    code, second, err = run_cli(config, first.states[-1], tmp_path=tmp_path)
    assert code == 0, err
    bookmarks = first.states[-1]["bookmarks"]
    requested = [entry["path"] for entry in request_log(sandbox)[log_before:]]
    for kind in data.TYPES:
        bookmark = bookmarks[kind]["replication_key_value"]
        if kind in data.DAILY_TYPES:
            window = f"{bookmark}%2000%3A00%3A00"
        else:
            start = dt.datetime.fromisoformat(bookmark) + dt.timedelta(hours=4) - dt.timedelta(hours=24)
            window = start.strftime("%Y-%m-%d%%20%H%%3A%M%%3A%S")
        assert f"/api-v7/stats/website-client-leads?type={kind}&timestamp={window}" in requested
        # Only the overlap is read again, not everything.
        assert len(second.records[kind]) < len(first.records[kind]), kind
    store = upsert(first, second)
    for kind in data.TYPES:
        assert got(list(store[kind].values()), kind) == expected(sandbox, kind), kind


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 429, "retry_after": 0.2, "times": 2},
        {"kind": "status", "status": 503, "times": 2},
        {"kind": "status", "status": 408, "times": 1},
        {"kind": "truncate", "times": 2},
        {"kind": "slow", "delay": 3, "times": 1},
    ],
    ids=["429-retry-after", "503", "408", "body-cut-short", "slow-timeout"],
)
def test_transient_faults_are_retried_and_lose_nothing(sandbox, config, tmp_path, fault):
    """Each transient fault on leads is retried; every row still arrives."""
    control(sandbox, "faults", {**fault, "type": "leads"})
    code, out, err = run_cli(config, tmp_path=tmp_path)
    assert code == 0, err
    assert got(out.records["leads"], "leads") == expected(sandbox, "leads")
    assert "Stream leads:" in err
    assert "retry 1 of 3" in err


def test_html_page_fails_the_run_and_keeps_the_bookmark(sandbox, config, tmp_path):
    """An HTML 200 fails in one line; the stream's bookmark does not move."""
    control(sandbox, "faults", {"kind": "html", "type": "leads"})
    old = bookmark_state("leads", "2026-01-01T00:00:00+00:00")
    code, out, err = run_cli(config, old, tmp_path=tmp_path)
    assert code == 1
    assert "not JSON (text/html" in err.splitlines()[-1]
    assert "Traceback" not in err
    assert out.records["leads"] == []
    assert all(s["bookmarks"]["leads"] == old["bookmarks"]["leads"] for s in out.states)


def test_refused_agent_whatsapp_leads_is_skipped(sandbox, config, tmp_path):
    """ "Not live yet": the refusal warns once and the other six streams sync."""
    control(sandbox, "faults", {"kind": "refuse_type", "type": "agent_whatsapp_leads", "times": -1})
    code, out, err = run_cli(config, tmp_path=tmp_path)
    assert code == 0, err
    assert err.count("Stream agent_whatsapp_leads skipped") == 1
    assert out.records["agent_whatsapp_leads"] == []
    for kind in set(data.TYPES) - {"agent_whatsapp_leads"}:
        assert got(out.records[kind], kind) == expected(sandbox, kind)


def test_wrong_key_stops_in_one_line_without_the_key(config, tmp_path):
    """A wrong key is one line, exit 1, and the key is nowhere in the output."""
    wrong = "not-the-sandbox-key-91c2"
    code, out, err = run_cli({**config, "api_key": wrong}, tmp_path=tmp_path)
    assert code == 1
    assert "rejected the API key" in err.splitlines()[-1]
    assert wrong not in err
    assert not out.records


def test_killed_mid_run_and_resumed_loses_nothing(sandbox, config, tmp_path):
    """SIGKILL while a stream hangs; resuming from the last STATE still delivers every row."""
    control(sandbox, "faults", {"kind": "slow", "delay": 20, "type": "phone_views"})
    config_file = tmp_path / "killed.json"
    config_file.write_text(json.dumps({**config, "request_timeout": 60}))
    command = [sys.executable, "-m", "tap_bayut.tap", "--config", str(config_file)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    assert process.stdout is not None
    try:
        for line in process.stdout:
            lines.append(line)
            message = json.loads(line)
            # Streams sync in name order: phone_views hangs after leads has finished.
            if message["type"] == "STATE" and "replication_key_value" in message["value"]["bookmarks"].get(
                "leads", {}
            ):
                break
        process.kill()
    finally:
        process.wait(timeout=10)
        process.stdout.close()
    killed = parse_messages("".join(lines))
    assert killed.records["leads"]
    assert not killed.records["phone_views"]

    # The slow fault was used up by the killed run, so the resumed run meets a healthy API.
    code, resumed, err = run_cli(config, killed.states[-1], tmp_path=tmp_path)
    assert code == 0, err
    store = upsert(killed, resumed)
    for kind in data.TYPES:
        assert got(list(store[kind].values()), kind) == expected(sandbox, kind), kind


def test_targeted_form_full_then_incremental_equals_the_sandbox(sandbox, config, tmp_path):
    """The newer form over HTTP: after upsert, every stream equals the sandbox, run after run."""
    targeted = {**config, "api_form": "targeted"}
    code, first, err = run_cli(targeted, tmp_path=tmp_path)
    assert code == 0, err
    for stream in TARGETED_ROUTES:
        assert got_targeted(list(upsert(first)[stream].values()), stream) == expected_targeted(
            sandbox, stream
        ), stream

    control(sandbox, "publish-late")
    control(sandbox, "grow-counters")
    control(sandbox, "retire-listing")
    code, second, err = run_cli(targeted, first.states[-1], tmp_path=tmp_path)
    assert code == 0, err
    store = upsert(first, second)
    for stream in ("call_logs", "email_enquiries", "whatsapp_enquiries", "story_leads"):
        assert got_targeted(list(store[stream].values()), stream) == expected_targeted(sandbox, stream), (
            stream
        )
        assert len(second.records[stream]) < len(first.records[stream]), stream
    # Snapshots: the second sync alone is the truth; the retired listing's totals are gone.
    for stream in ("phone_view_totals", "sms_view_totals", "whatsapp_view_totals"):
        assert got_targeted(second.records[stream], stream) == expected_targeted(sandbox, stream), stream
        assert len(second.records[stream]) < len(first.records[stream]), stream
        assert [m["stream"] for m in second.messages if m["type"] == "ACTIVATE_VERSION"].count(stream) == 1


def test_floor_refused_over_http_is_asked_again_from_the_servers_floor(sandbox, config, tmp_path):
    """Read as UTC, the tap's floor is 4 hours behind the sandbox's Dubai floor: 422, then a retry."""
    code, out, err = run_cli({**config, "timezone": "UTC"}, tmp_path=tmp_path)
    assert code == 0, err
    leads = [entry["status"] for entry in request_log(sandbox) if "type=leads&" in entry["path"]]
    assert leads == [422, 200]
    assert "Stream leads: the API's six-month floor is" in err
    assert len(out.records["leads"]) == len(sandbox_rows(sandbox, "leads"))
