"""Records: UTC instants, drifted shapes, kept fields and stable primary keys."""

from __future__ import annotations

import copy

import pytest

from tests.conftest import (
    AGENT_WHATSAPP_LEAD,
    API_URL,
    CALL_LOG,
    EMAIL_LEAD,
    MISSED_CALL,
    SAMPLES,
    WHATSAPP_LEAD,
    run_tap,
)


@pytest.mark.usefixtures("api")
def test_call_log_times_become_utc_instants():
    """Dubai 15:26:17 is 11:26:17Z; the date stays a date and the id a string."""
    [answered, _] = run_tap(streams=["call_logs"]).records["call_logs"]
    assert answered["call_log_id"] == "1234567"
    assert answered["call_time"] == "2026-12-03T11:26:17+00:00"
    assert answered["call_pickup_time"] == "2026-12-03T11:26:23+00:00"
    assert answered["date"] == "2026-12-03"
    assert answered["time"] == "15:26:23"
    assert answered["date_time"] == "2026-12-03T11:26:23+00:00"
    assert answered["object_id"] == "1234567"
    assert answered["is_object_fetched"] == 0


@pytest.mark.usefixtures("api")
def test_missed_call_keeps_a_replication_key_and_nulls():
    """A missed call has null times and a "None" recording, yet date_time from date + time."""
    [_, missed] = run_tap(streams=["call_logs"]).records["call_logs"]
    assert missed["call_log_id"] == "phone|06af3568"
    assert missed["date_time"] == "2026-12-02T05:00:05+00:00"
    assert missed["call_time"] is None
    assert missed["call_pickup_time"] is None
    assert missed["call_type"] is None
    assert missed["call_recordingurl"] is None


@pytest.mark.usefixtures("api")
def test_whatsapp_times_bare_local_and_utc_z_agree():
    """The document's own check: date_time 15:05:57 Dubai is 4 h ahead of Sent 11:05:59Z."""
    [lead] = run_tap(streams=["whatsapp_leads"]).records["whatsapp_leads"]
    assert lead["date_time"] == "2026-12-03T11:05:57+00:00"
    assert lead["delivery_notifications"][2] == {"status": "Sent", "created_at": "2026-12-03T11:05:59+00:00"}
    assert lead["listing_id"] == "7446192"


@pytest.mark.usefixtures("api")
def test_timezone_setting_changes_how_bare_times_are_read():
    """With timezone UTC a bare 22:10:00 is 22:10:00Z."""
    [lead] = run_tap(config={"timezone": "UTC"}, streams=["leads"]).records["leads"]
    assert lead["date_time"] == "2026-12-03T22:10:00+00:00"


@pytest.mark.usefixtures("api")
def test_counters_as_strings_become_integers_and_dates_stay_dates():
    """A counter sent as "2" is emitted as 2; date_time stays a date."""
    rows = run_tap(streams=["phone_views"]).records["phone_views"]
    assert [(r["date_time"], r["listing_id"], r["phone_views"]) for r in rows] == [
        ("2026-12-04", "1234567", 1),
        ("2026-12-03", "1234568", 2),
    ]


def test_empty_values_become_null_only_where_typed(requests_mock):
    """ "" and "None" are null in ids, counters and times; "" stays "" in free text."""
    row = {"date_time": "2026-12-04", "listing_id": 5, "listing_reference": "", "sms_clicks": ""}
    requests_mock.get(f"{API_URL}?type=sms_clicks", json=[row])
    [record] = run_tap(streams=["sms_clicks"]).records["sms_clicks"]
    assert record["sms_clicks"] is None
    assert record["listing_reference"] == ""


def test_unknown_fields_are_kept_in_extra_fields(requests_mock, caplog):
    """A field the schema does not know yet lands in extra_fields and is named once."""
    rows = [
        {**EMAIL_LEAD, "visitor_intent": "buy"},
        {**EMAIL_LEAD, "client_email": "b@example.com", "visitor_intent": "rent"},
    ]
    requests_mock.get(f"{API_URL}?type=leads", json=rows)
    records = run_tap(streams=["leads"]).records["leads"]
    assert [r["extra_fields"] for r in records] == [{"visitor_intent": "buy"}, {"visitor_intent": "rent"}]
    assert sum("visitor_intent" in r.getMessage() for r in caplog.records) == 1


def test_unknown_nested_fields_are_kept_in_place(requests_mock):
    """A new field inside a known object stays in that object."""
    row = copy.deepcopy(WHATSAPP_LEAD)
    row["detail"]["email"] = "x@example.com"
    requests_mock.get(f"{API_URL}?type=whatsapp_leads", json=[row])
    [record] = run_tap(streams=["whatsapp_leads"]).records["whatsapp_leads"]
    assert record["detail"]["email"] == "x@example.com"


@pytest.mark.usefixtures("caplog")
def test_unreadable_time_stops_with_the_field_named(requests_mock):
    """A date-time the tap cannot read fails the run naming the field, not silently nulls it."""
    requests_mock.get(f"{API_URL}?type=leads", json=[{**EMAIL_LEAD, "date_time": "yesterday"}])
    with pytest.raises(Exception, match=r"leads\.date_time: cannot read 'yesterday' as date-time"):
        run_tap(streams=["leads"])


def test_lead_key_is_stable_across_drift_and_changing_status(requests_mock):
    """The key ignores delivery status, names and id types, and tells different leads apart."""
    later = copy.deepcopy(WHATSAPP_LEAD)
    later["listing_id"] = "7446192"
    later["delivery_notifications"] = [{"status": "read", "created_at": "2026-12-03 15:07:00"}]
    later["detail"]["actor_name"] = "Eslam A."
    other = {**copy.deepcopy(WHATSAPP_LEAD), "date_time": "2026-12-03 15:06:57"}
    requests_mock.get(f"{API_URL}?type=whatsapp_leads", json=[WHATSAPP_LEAD, later, other])
    first, second, third = run_tap(streams=["whatsapp_leads"]).records["whatsapp_leads"]
    assert first["lead_key"] == second["lead_key"]
    assert third["lead_key"] != first["lead_key"]
    assert len(first["lead_key"]) == 32


def test_lead_key_survives_a_corrected_timezone(requests_mock):
    """Keys hash the API's wall-clock time, so fixing the timezone setting upserts, not duplicates."""
    requests_mock.get(f"{API_URL}?type=leads", json=[EMAIL_LEAD])
    dubai = run_tap(streams=["leads"]).records["leads"][0]
    utc = run_tap(config={"timezone": "UTC"}, streams=["leads"]).records["leads"][0]
    assert dubai["date_time"] != utc["date_time"]
    assert dubai["lead_key"] == utc["lead_key"]


@pytest.mark.parametrize("stream", sorted(SAMPLES))
def test_primary_keys_are_present_and_unique(requests_mock, stream):
    """Every record has its full primary key, and no two records of a run share one."""
    rows = SAMPLES[stream]
    requests_mock.get(f"{API_URL}?type={stream}", json=rows)
    out = run_tap(streams=[stream])
    [schema] = [m for m in out.messages if m["type"] == "SCHEMA"]
    keys = [tuple(r[k] for k in schema["key_properties"]) for r in out.records[stream]]
    assert schema["key_properties"]
    assert all(all(part not in (None, "") for part in key) for key in keys)
    assert len(set(keys)) == len(keys) == len(rows)


def test_call_log_id_as_integer_or_string_is_one_key(requests_mock):
    """The same call sent once with an integer id and once with a string id upserts as one."""
    requests_mock.get(
        f"{API_URL}?type=call_logs", json=[CALL_LOG, MISSED_CALL, {**CALL_LOG, "call_log_id": "1234567"}]
    )
    records = run_tap(streams=["call_logs"]).records["call_logs"]
    assert [r["call_log_id"] for r in records] == ["1234567", "phone|06af3568", "1234567"]
    assert len({r["call_log_id"] for r in records}) == 2


def test_two_leads_in_the_same_second_keep_two_keys(requests_mock):
    """Different people writing in the same second are two leads, in every lead stream."""
    other_person = {**EMAIL_LEAD, "client_email": "b@example.com", "client_phone": "971500000009"}
    requests_mock.get(f"{API_URL}?type=leads", json=[EMAIL_LEAD, other_person])
    other_cell = copy.deepcopy(WHATSAPP_LEAD)
    other_cell["detail"]["cell"] = "971500000009"
    requests_mock.get(f"{API_URL}?type=whatsapp_leads", json=[WHATSAPP_LEAD, other_cell])
    other_actor = copy.deepcopy(AGENT_WHATSAPP_LEAD)
    other_actor["actor_details"]["cell"] = "971500000009"
    requests_mock.get(f"{API_URL}?type=agent_whatsapp_leads", json=[AGENT_WHATSAPP_LEAD, other_actor])
    out = run_tap(streams=["leads", "whatsapp_leads", "agent_whatsapp_leads"])
    for stream in ("leads", "whatsapp_leads", "agent_whatsapp_leads"):
        first, second = out.records[stream]
        assert first["date_time"] == second["date_time"]
        assert first["lead_key"] != second["lead_key"], stream


def test_newer_row_shape_under_a_documented_type_keys_on_nested_fields(requests_mock):
    """Rows in the newer shape (inquirer_details, listing_details) still get distinct, stable keys."""
    newer = {
        "lead_id": "email|7f28aa",
        "date_time": "2026-12-03 22:10:00",
        "listing_details": {"listing_id": 7446192, "listing_reference": "291-Ap-R-23906"},
        "inquirer_details": {"name": "A", "cell": "971500000001", "email": "a@example.com", "message": "Hi"},
    }
    second = copy.deepcopy(newer)
    second["inquirer_details"] = {
        "name": "B",
        "cell": "971500000002",
        "email": "b@example.com",
        "message": "Hi",
    }
    drifted = copy.deepcopy(newer)
    drifted["listing_details"]["listing_id"] = "7446192"
    requests_mock.get(f"{API_URL}?type=leads", json=[newer, second, drifted])
    first, other, same = run_tap(streams=["leads"]).records["leads"]
    assert first["lead_key"] != other["lead_key"]
    assert first["lead_key"] == same["lead_key"]
    assert first["extra_fields"]["inquirer_details"]["email"] == "a@example.com"


def test_lead_without_any_identifying_field_is_not_merged(requests_mock):
    """With no contact or listing at all, two different messages of one second stay two keys."""
    bare = {"date_time": "2026-12-03 22:10:00", "message": "first"}
    requests_mock.get(f"{API_URL}?type=leads", json=[bare, {**bare, "message": "second"}])
    first, second = run_tap(streams=["leads"]).records["leads"]
    assert first["lead_key"] != second["lead_key"]


def test_row_without_date_time_is_emitted_and_warned_about(requests_mock, caplog):
    """A row lacking date_time still arrives; the bookmark comes from the rows that have one."""
    requests_mock.get(
        f"{API_URL}?type=leads", json=[EMAIL_LEAD, {k: v for k, v in EMAIL_LEAD.items() if k != "date_time"}]
    )
    out = run_tap(streams=["leads"])
    assert [r["date_time"] for r in out.records["leads"]] == ["2026-12-03T18:10:00+00:00", None]
    assert out.bookmark("leads") == "2026-12-03T18:10:00+00:00"
    assert sum("do not move the bookmark" in r.getMessage() for r in caplog.records) == 1


def test_call_without_time_falls_back_to_call_time(requests_mock):
    """A call log whose time is null is stamped from call_time instead."""
    requests_mock.get(f"{API_URL}?type=call_logs", json=[{**CALL_LOG, "time": None}])
    [record] = run_tap(streams=["call_logs"]).records["call_logs"]
    assert record["date_time"] == "2026-12-03T11:26:17+00:00"


def test_content_key_does_not_depend_on_field_order(requests_mock):
    """A row keyed by its content gets the same key whatever order the API sends its fields in."""
    bare = {"date_time": "2026-12-03 22:10:00", "message": "first", "note": {"a": 1, "b": 2}}
    reordered = {"note": {"b": 2, "a": 1}, "message": "first", "date_time": "2026-12-03 22:10:00"}
    requests_mock.get(f"{API_URL}?type=leads", json=[bare, reordered])
    first, second = run_tap(streams=["leads"]).records["leads"]
    assert first["lead_key"] == second["lead_key"]
