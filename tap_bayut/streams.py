"""The Pull API's documented lead types, one stream each, named exactly as the type."""

from __future__ import annotations

import typing as t

from tap_bayut.client import BayutStream


class CallLogsStream(BayutStream):
    """Calls to the agency's tracked numbers, answered or missed."""

    name = "call_logs"
    primary_keys = ("call_log_id",)

    def derive(self, row: dict[str, t.Any]) -> dict[str, t.Any]:
        """Stamp the call with the API's ``date`` + ``time``, present even on missed calls."""
        if not row.get("date_time"):
            date_and_time = f"{row['date']} {row['time']}" if row.get("date") and row.get("time") else None
            row["date_time"] = date_and_time or row.get("call_time") or row.get("call_pickup_time")
        return row


class LeadsStream(BayutStream):
    """E-mail leads sent from a listing's contact form."""

    name = "leads"
    primary_keys = ("lead_key",)
    key_fields = (
        "date_time",
        "property_id|listing_details.listing_id",
        "client_email|inquirer_details.email",
        "client_phone|inquirer_details.cell",
    )


class DailyCounterStream(BayutStream):
    """One listing's count on one day; today's row grows until the day ends."""

    primary_keys = ("date_time", "listing_id")
    daily = True


class PhoneViewsStream(DailyCounterStream):
    """Daily count of phone-number reveals per listing."""

    name = "phone_views"


class SmsClicksStream(DailyCounterStream):
    """Daily count of SMS button clicks per listing."""

    name = "sms_clicks"


class WhatsappViewsStream(DailyCounterStream):
    """Daily count of WhatsApp button views per listing."""

    name = "whatsapp_views"


class WhatsappLeadsStream(BayutStream):
    """WhatsApp messages sent to a listing, with their delivery status."""

    name = "whatsapp_leads"
    primary_keys = ("lead_key",)
    key_fields = ("date_time", "listing_id|listing_details.listing_id", "detail.cell|inquirer_details.cell")


class AgentWhatsappLeadsStream(BayutStream):
    """WhatsApp messages sent to an agent's profile ("not live yet" in the document)."""

    name = "agent_whatsapp_leads"
    primary_keys = ("lead_key",)
    key_fields = (
        "date_time",
        "agent_details.email",
        "agent_details.url",
        "actor_details.cell|inquirer_details.cell",
    )
    may_be_unserved = True


STREAM_TYPES: tuple[type[BayutStream], ...] = (
    CallLogsStream,
    LeadsStream,
    PhoneViewsStream,
    SmsClicksStream,
    WhatsappViewsStream,
    WhatsappLeadsStream,
    AgentWhatsappLeadsStream,
)
