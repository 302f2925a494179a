"""The newer form (api_form: targeted): exact requests, merged enquiries, snapshot view totals."""

from __future__ import annotations

import copy
import re

import pytest

from tap_bayut.client import BayutStream
from tap_bayut.tap import TapBayut
from tests.conftest import API_URL, CALL_LOG, CONFIG, run_tap

TARGETED = {"api_form": "targeted"}
WINDOW = "2026-11-01%2004%3A00%3A00"  # start_date 2026-11-01T00:00Z in Dubai
FLOOR = "2026-06-04%2016%3A01%3A00"  # the six-month floor at NOW, in Dubai

EMAIL_ROW = {
    "lead_id": "email|7f28aa01",
    "source": "bayut",
    "lead_target": "listing",
    "date_time": "2026-12-03 22:10:00",
    "inquirer_details": {
        "name": "Mona",
        "cell": "971585849046",
        "email": "mona@example.com",
        "message": "Hi",
    },
}
LISTING = {"listing_id": 7446192, "listing_reference": "291-Ap-R-23906", "current_type": "for_rent"}
AGENT = {
    "url": "https://www.bayut.com/brokers/john-doe-1.html",
    "name": "John Doe",
    "email": "john@agent.example",
}
WHATSAPP_ROW = {
    "lead_id": "whatsapp|9cd3",
    "source": "bayut",
    "lead_target": "listing",
    "date_time": "2026-12-03 15:05:57",
    "listing_details": LISTING,
    "inquirer_details": {"name": "Eslam", "cell": "971581260543", "email": "", "message": "Hi"},
    "delivery_notifications": [{"status": "read", "created_at": "2026-12-03 15:06:15"}],
    "interested_in_tern": None,
    "visitor_intent": {"intent": "rent"},
}
STORY_ROW = {
    "lead_id": "story|11",
    "date_time": "2026-12-02 10:00:00",
    "inquirer_details": {"name": "Ravi", "cell": "971501234567"},
    "story_details": {"story_id": 5521, "project_details": {"project_name_en": "Marina Vista"}},
}
VIEW_ROW = {
    "lead_id": "phone|4ccb",
    "date_time": "2026-12-04 09:00:00",
    "listing_details": LISTING,
    "phone_views": "51",
}

#: Every request the targeted form makes, in order: the only valid combinations.
EXPECTED_REQUESTS = [
    f"type=call_logs&timestamp={WINDOW}",
    f"type=email&target=listing&is_trulead=1&timestamp={WINDOW}",
    f"type=email&target=agent&is_trulead=1&timestamp={WINDOW}",
    f"type=email&target=agency&is_trulead=1&timestamp={WINDOW}",
    f"type=phone&target=listing&is_trulead=0&timestamp={FLOOR}",
    f"type=phone&target=agent&is_trulead=0&timestamp={FLOOR}",
    f"type=phone&target=agency&is_trulead=0&timestamp={FLOOR}",
    f"type=sms&target=listing&is_trulead=0&timestamp={FLOOR}",
    f"type=sms&target=agent&is_trulead=0&timestamp={FLOOR}",
    f"type=story_leads&timestamp={WINDOW}",
    f"type=whatsapp&target=listing&is_trulead=1&timestamp={WINDOW}",
    f"type=whatsapp&target=agent&is_trulead=1&timestamp={WINDOW}",
    f"type=whatsapp&target=listing&is_trulead=0&timestamp={FLOOR}",
    f"type=whatsapp&target=agent&is_trulead=0&timestamp={FLOOR}",
]


def serve(requests_mock, routes: dict[str, list[dict]]) -> None:
    """Answer each "type/target/is_trulead" query with its rows, and anything else with []."""
    requests_mock.get(re.compile(re.escape(API_URL)), json=[])
    for route, rows in routes.items():
        kind, _, rest = route.partition("/")
        target, _, trulead = rest.partition("/")
        query = f"type={kind}" + (f"&target={target}&is_trulead={trulead}" if target else "")
        requests_mock.get(f"{API_URL}?{query}", json=rows)


def queries(requests_mock) -> list[str]:
    """Return each request's raw query string, in order."""
    return [request.url.split("?", 1)[1] for request in requests_mock.request_history]


def test_discovery_offers_the_targeted_streams():
    """The targeted form has its own streams, keys and replication methods."""
    tap = TapBayut(config={**CONFIG, **TARGETED}, parse_env_config=False)
    found = {name: (tuple(s.primary_keys or ()), s.replication_key) for name, s in tap.streams.items()}
    assert found == {
        "call_logs": (("call_log_id",), "date_time"),
        "email_enquiries": (("lead_id",), "date_time"),
        "whatsapp_enquiries": (("lead_id",), "date_time"),
        "story_leads": (("lead_id",), "date_time"),
        "phone_view_totals": (("target", "lead_id"), None),
        "sms_view_totals": (("target", "lead_id"), None),
        "whatsapp_view_totals": (("target", "lead_id"), None),
    }
    assert tap.streams["phone_view_totals"].replication_method == "FULL_TABLE"
    assert tap.streams["email_enquiries"].replication_method == "INCREMENTAL"


def test_every_request_is_a_valid_combination_exactly(requests_mock):
    """The server accepts wrong combinations silently, so every request is pinned here."""
    serve(requests_mock, {})
    run_tap(config=TARGETED)
    assert queries(requests_mock) == EXPECTED_REQUESTS


def test_unknown_api_form_is_one_line_error():
    """An api_form that is neither form is refused, naming the setting."""
    from tap_bayut.tap import SettingError  # noqa: PLC0415

    with pytest.raises(SettingError, match=r"api_form"):
        TapBayut(config={**CONFIG, "api_form": "newest"}, parse_env_config=False)


def test_enquiries_are_stamped_with_the_requests_type_and_target(requests_mock):
    """Rows do not say which type and target they answer; the tap adds both."""
    serve(requests_mock, {"email/agent/1": [{**EMAIL_ROW, "agent_details": AGENT}]})
    [record] = run_tap(config=TARGETED, streams=["email_enquiries"]).records["email_enquiries"]
    assert (record["type"], record["target"], record["targets"]) == ("email", "agent", ["agent"])
    assert record["date_time"] == "2026-12-03T18:10:00+00:00"
    assert record["agent_details"] == AGENT
    assert record["listing_details"] is None


def test_same_lead_under_two_targets_ends_as_one_row_with_both(requests_mock):
    """The last write of a lead in a run carries every target's details: upsert keeps one full row."""
    serve(
        requests_mock,
        {
            "email/listing/1": [{**EMAIL_ROW, "listing_details": LISTING}],
            "email/agent/1": [{**EMAIL_ROW, "agent_details": AGENT}],
        },
    )
    records = run_tap(config=TARGETED, streams=["email_enquiries"]).records["email_enquiries"]
    upserted = {r["lead_id"]: r for r in records}  # what a target's upsert on lead_id keeps
    [row] = upserted.values()
    assert row["targets"] == ["listing", "agent"]
    assert row["listing_details"]["listing_id"] == "7446192"
    assert row["agent_details"] == AGENT


def test_all_targets_ask_from_the_oldest_bookmark(requests_mock):
    """Each target keeps its bookmark, but all ask from the oldest, so leads are read everywhere at once."""
    serve(requests_mock, {})

    def partition(target: str, value: str) -> dict:
        context = {"type": "whatsapp", "target": target}
        return {"context": context, "replication_key": "date_time", "replication_key_value": value}

    state = {
        "bookmarks": {
            "whatsapp_enquiries": {
                "partitions": [
                    partition("listing", "2026-12-03T10:00:00+00:00"),
                    partition("agent", "2026-12-01T10:00:00+00:00"),
                ]
            }
        }
    }
    out = run_tap(config=TARGETED, state=state, streams=["whatsapp_enquiries"])
    # 2026-12-01T10:00Z less 24 h, in Dubai.
    assert queries(requests_mock) == [
        "type=whatsapp&target=listing&is_trulead=1&timestamp=2026-11-30%2014%3A00%3A00",
        "type=whatsapp&target=agent&is_trulead=1&timestamp=2026-11-30%2014%3A00%3A00",
    ]
    partitions = out.states[-1]["bookmarks"]["whatsapp_enquiries"]["partitions"]
    assert [p["replication_key_value"] for p in partitions] == [
        "2026-12-03T10:00:00+00:00",
        "2026-12-01T10:00:00+00:00",
    ]


def test_each_target_moves_its_own_bookmark(requests_mock):
    """A target's bookmark is the newest lead it returned."""
    newer = {**WHATSAPP_ROW, "lead_id": "whatsapp|new", "date_time": "2026-12-04 08:00:00"}
    serve(requests_mock, {"whatsapp/listing/1": [newer, WHATSAPP_ROW], "whatsapp/agent/1": [WHATSAPP_ROW]})
    out = run_tap(config=TARGETED, streams=["whatsapp_enquiries"])
    partitions = out.states[-1]["bookmarks"]["whatsapp_enquiries"]["partitions"]
    assert {p["context"]["target"]: p["replication_key_value"] for p in partitions} == {
        "listing": "2026-12-04T04:00:00+00:00",
        "agent": "2026-12-03T11:05:57+00:00",
    }


def test_whatsapp_enquiry_shape(requests_mock):
    """Bare local created_at becomes a UTC instant; an object visitor_intent is kept as JSON text."""
    serve(requests_mock, {"whatsapp/listing/1": [WHATSAPP_ROW]})
    [record] = run_tap(config=TARGETED, streams=["whatsapp_enquiries"]).records["whatsapp_enquiries"]
    assert record["delivery_notifications"] == [{"status": "read", "created_at": "2026-12-03T11:06:15+00:00"}]
    assert record["visitor_intent"] == '{"intent": "rent"}'
    assert record["interested_in_tern"] is None


def test_story_leads(requests_mock):
    """Story leads are incremental, keyed by lead_id, with their nested story parts."""
    serve(requests_mock, {"story_leads": [STORY_ROW]})
    out = run_tap(config=TARGETED, streams=["story_leads"])
    [record] = out.records["story_leads"]
    assert record["story_details"]["story_id"] == "5521"
    assert record["story_details"]["project_details"]["project_name_en"] == "Marina Vista"
    assert out.bookmark("story_leads") == "2026-12-02T06:00:00+00:00"


def test_view_totals_are_versioned_snapshots(requests_mock):
    """Totals carry the sync's version, one ACTIVATE_VERSION follows the last target, no bookmark."""
    agent_row = {
        **VIEW_ROW,
        "lead_id": "phone|a1",
        "listing_details": None,
        "agent_details": AGENT,
        "phone_views": 7,
    }
    serve(requests_mock, {"phone/listing/0": [VIEW_ROW], "phone/agent/0": [agent_row]})
    out = run_tap(config=TARGETED, streams=["phone_view_totals"])
    kinds = [m["type"] for m in out.messages if m.get("stream") == "phone_view_totals"]
    assert kinds == ["SCHEMA", "RECORD", "RECORD", "ACTIVATE_VERSION"]
    [activate] = [m for m in out.messages if m["type"] == "ACTIVATE_VERSION"]
    versions = {m["version"] for m in out.messages if m["type"] == "RECORD"}
    assert versions == {activate["version"]}
    listing, agent = out.records["phone_view_totals"]
    assert (listing["target"], listing["views"], listing["phone_views"]) == ("listing", 51, 51)
    assert (agent["target"], agent["views"]) == ("agent", 7)
    assert "replication_key_value" not in str(out.states[-1]["bookmarks"].get("phone_view_totals"))


def test_view_totals_read_any_counter_name(requests_mock):
    """The counter's name varies by channel (sms_views here); views takes whichever came."""
    serve(
        requests_mock,
        {"sms/listing/0": [{**{k: v for k, v in VIEW_ROW.items() if k != "phone_views"}, "sms_views": 4}]},
    )
    [record] = run_tap(config=TARGETED, streams=["sms_view_totals"]).records["sms_view_totals"]
    assert record["views"] == 4


def test_failed_snapshot_activates_nothing(requests_mock):
    """If a later target fails, no ACTIVATE_VERSION is sent, so the target drops nothing."""
    serve(requests_mock, {"phone/listing/0": [VIEW_ROW]})
    requests_mock.get(f"{API_URL}?type=phone&target=agent&is_trulead=0", status_code=400, text="bad")
    out = run_tap(config=TARGETED, streams=["phone_view_totals"], allow_error=True)
    assert out.error is not None
    assert len(out.records["phone_view_totals"]) == 1
    assert not [m for m in out.messages if m["type"] == "ACTIVATE_VERSION"]


@pytest.mark.parametrize(
    ("stream", "route", "rows"),
    [
        ("email_enquiries", "email/listing/1", [EMAIL_ROW, {**EMAIL_ROW, "lead_id": "email|2"}]),
        ("story_leads", "story_leads", [STORY_ROW, {**STORY_ROW, "lead_id": "story|12"}]),
        ("phone_view_totals", "phone/listing/0", [VIEW_ROW, {**VIEW_ROW, "lead_id": "phone|b"}]),
    ],
)
def test_targeted_primary_keys_are_unique_and_present(requests_mock, stream, route, rows):
    """Each record has its whole key, and distinct rows keep distinct keys."""
    serve(requests_mock, {route: rows})
    out = run_tap(config=TARGETED, streams=[stream])
    [schema] = [m for m in out.messages if m["type"] == "SCHEMA"]
    keys = [tuple(r[k] for k in schema["key_properties"]) for r in out.records[stream]]
    assert len(set(keys)) == len(keys) == len(rows)
    assert all(part for key in keys for part in key)


def test_switching_forms_keeps_the_call_logs_bookmark(requests_mock):
    """call_logs is the same stream in both forms, so its state carries over."""
    serve(requests_mock, {"call_logs": [copy.deepcopy(CALL_LOG)]})
    documented = run_tap(streams=["call_logs"])
    requests_mock.reset_mock()
    run_tap(config=TARGETED, state=documented.states[-1], streams=["call_logs"])
    # The documented run's bookmark, 2026-12-03T11:26:23Z, less 24 h, in Dubai.
    assert queries(requests_mock) == ["type=call_logs&timestamp=2026-12-02%2015%3A26%3A23"]


def test_a_target_with_no_enquiries_does_not_hold_the_others_back(requests_mock):
    """An agent target that never returns rows is read through, so run two asks from run one's time."""
    serve(requests_mock, {"whatsapp/listing/1": [WHATSAPP_ROW]})
    first = run_tap(config=TARGETED, streams=["whatsapp_enquiries"])
    partitions = first.states[-1]["bookmarks"]["whatsapp_enquiries"]["partitions"]
    assert [p.get("read_until") for p in partitions] == ["2026-12-04T12:00:00+00:00"] * 2
    requests_mock.reset_mock()
    run_tap(config=TARGETED, state=first.states[-1], streams=["whatsapp_enquiries"])
    # NOW (12:00Z) less 24 h is 16:00 in Dubai the day before; not the floor, not start_date.
    assert queries(requests_mock) == [
        "type=whatsapp&target=listing&is_trulead=1&timestamp=2026-12-03%2016%3A00%3A00",
        "type=whatsapp&target=agent&is_trulead=1&timestamp=2026-12-03%2016%3A00%3A00",
    ]


def test_a_failed_target_is_not_marked_read_through(requests_mock, monkeypatch):
    """read_until is written only after all of a target's rows are out, never for a failed one."""
    monkeypatch.setattr(BayutStream, "STATE_MSG_FREQUENCY", 1)
    garbled = {**WHATSAPP_ROW, "lead_id": "whatsapp|bad", "date_time": "garbled"}
    serve(requests_mock, {"whatsapp/listing/1": [WHATSAPP_ROW], "whatsapp/agent/1": [WHATSAPP_ROW, garbled]})
    out = run_tap(config=TARGETED, streams=["whatsapp_enquiries"], allow_error=True)
    assert "garbled" in str(out.error)
    last = {
        p["context"]["target"]: p for p in out.states[-1]["bookmarks"]["whatsapp_enquiries"]["partitions"]
    }
    assert last["listing"]["read_until"] == "2026-12-04T12:00:00+00:00"
    assert "read_until" not in last["agent"]


def test_catalog_from_the_other_form_is_warned_about(caplog):
    """A documented-form catalog used with api_form targeted names the streams it would skip."""
    documented = TapBayut(config=CONFIG, parse_env_config=False).catalog_dict
    TapBayut(config={**CONFIG, **TARGETED}, catalog=documented, parse_env_config=False)
    [warning] = [r.getMessage() for r in caplog.records if "run --discover again" in r.getMessage()]
    assert "agent_whatsapp_leads, leads, phone_views, sms_clicks, whatsapp_leads, whatsapp_views" in warning
    assert "call_logs" not in warning
