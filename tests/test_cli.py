"""The command line: discovery, settings, and one-line errors that never show the key."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from tap_bayut.tap import TapBayut
from tests.conftest import API_KEY, API_URL, CONFIG, SAMPLES

README = Path(__file__).parent.parent / "README.md"
STREAMS = {
    "call_logs": (["call_log_id"], "date_time"),
    "leads": (["lead_key"], "date_time"),
    "phone_views": (["date_time", "listing_id"], "date_time"),
    "sms_clicks": (["date_time", "listing_id"], "date_time"),
    "whatsapp_views": (["date_time", "listing_id"], "date_time"),
    "whatsapp_leads": (["lead_key"], "date_time"),
    "agent_whatsapp_leads": (["lead_key"], "date_time"),
}


@pytest.fixture
def cli(capsys, tmp_path):
    """Run the tap's command line in-process; return (exit code, stdout, stderr)."""
    root = logging.getLogger()
    handlers = list(root.handlers)

    def run(*args: str, config: dict | None = None) -> tuple[int, str, str]:
        path = tmp_path / "config.json"
        path.write_text(json.dumps({**CONFIG, **(config or {})}))
        try:
            code = TapBayut.cli.main(["--config", str(path), *args], standalone_mode=False) or 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield run
    # The SDK adds a console handler per invocation; drop ours so tests stay independent.
    root.handlers[:] = handlers


def error_lines(stderr: str) -> list[str]:
    """Return the ERROR lines of the tap's console log."""
    return [line for line in stderr.splitlines() if "ERROR" in line]


def test_discover_offers_the_seven_streams_with_keys(cli):
    """Discovery lists every documented type with its primary and replication keys."""
    code, out, _ = cli("--discover")
    catalog = json.loads(out)
    found = {s["tap_stream_id"]: (s["key_properties"], s.get("replication_key")) for s in catalog["streams"]}
    assert code == 0
    assert found == STREAMS
    for stream in catalog["streams"]:
        assert stream["replication_method"] == "INCREMENTAL"


def test_about_marks_the_key_secret(cli):
    """--about declares api_key required and secret, so Meltano and the Hub hide it."""
    code, out, _ = cli("--about", "--format=json")
    settings = json.loads(out)["settings"]
    assert code == 0
    assert settings["properties"]["api_key"]["secret"] is True
    assert settings["required"] == ["api_key"]


def test_readme_settings_table_matches_about(cli):
    """The README's settings table is exactly the one --about prints."""
    _, out, _ = cli("--about", "--format=markdown")
    table = re.search(r"^\| Setting \|.*?(?=\n\n)", out, re.DOTALL | re.MULTILINE)
    assert table is not None
    assert table.group(0) in README.read_text()


def test_rejected_key_is_one_line_without_traceback_or_key(cli, requests_mock):
    """A 401 exits 1 with one ERROR line naming the key setting, and never prints the key."""
    requests_mock.get(API_URL, status_code=401, text=f"invalid token {API_KEY}")
    code, out, err = cli()
    # The SDK adds one line naming the failed stream; the cause is ours, last, in one line.
    lines = error_lines(err)
    assert code == 1
    assert lines[-1].endswith(
        "Bayut rejected the API key (HTTP 401 for type=agent_whatsapp_leads): check the api_key setting."
    )
    assert sum("rejected" in line for line in lines) == 1
    assert "Traceback" not in err
    assert API_KEY not in out + err
    assert len(requests_mock.request_history) == 1


def test_test_mode_reports_a_rejected_key_in_one_line(cli, requests_mock):
    """--test takes the same one-line path."""
    requests_mock.get(API_URL, status_code=403)
    code, _, err = cli("--test")
    assert code == 1
    assert sum("rejected the API key" in line for line in error_lines(err)) == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"start_date": "2026-13-45"}, "start_date"),
        ({"api_key": ""}, "api_key"),
        ({"timezone": "Dubai"}, "timezone"),
        ({"api_key": 987654321123}, "api_key"),
    ],
)
def test_bad_setting_is_one_line_before_any_request(cli, requests_mock, override, named):
    """A malformed setting exits 1 with one line naming it, before any request."""
    code, out, err = cli(config=override)
    lines = error_lines(err)
    assert code == 1
    assert len(lines) == 1
    assert named in lines[0]
    assert "Traceback" not in err
    assert requests_mock.request_history == []
    assert API_KEY not in out + err
    assert "987654321123" not in out + err


def test_full_sync_never_prints_the_key(cli, requests_mock):
    """A whole successful run's stdout and stderr hold no trace of the key."""
    for name, rows in SAMPLES.items():
        requests_mock.get(f"{API_URL}?type={name}", json=rows)
    code, out, err = cli()
    assert code == 0
    assert sum(json.loads(line)["type"] == "RECORD" for line in out.splitlines()) == sum(
        map(len, SAMPLES.values())
    )
    assert API_KEY not in out + err


def test_discover_with_an_unknown_api_form_is_one_line(cli):
    """Discovery skips setting validation, yet an unknown api_form is still one clear line."""
    code, out, err = cli("--discover", config={"api_form": "newest"})
    assert code == 1
    assert "api_form 'newest' is not one of documented, targeted." in error_lines(err)[-1]
    assert "Traceback" not in err
    assert out == ""
