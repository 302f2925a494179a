"""The streams of both forms of the Pull API: declarations only.

The documented form has one stream per ``type``, named exactly as the type. The newer
("targeted") form asks by ``type`` + ``target`` + ``is_trulead``; its streams are named for
what a row is, so no table means daily counts under one form and lifetime totals under
the other. ``call_logs`` is the same request, and the same stream, in both.
"""

from __future__ import annotations

import typing as t

from tap_bayut.client import BayutStream, EnquiryStream, ViewTotalsStream


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


class EmailEnquiriesStream(EnquiryStream):
    """E-mail enquiries, one row per person, as the listing, the agent and the agency see them."""

    name = "email_enquiries"
    api_type = "email"
    targets = ("listing", "agent", "agency")


class WhatsappEnquiriesStream(EnquiryStream):
    """WhatsApp enquiries, one row per person, as the listing and the agent see them."""

    name = "whatsapp_enquiries"
    api_type = "whatsapp"
    targets = ("listing", "agent")


class StoryLeadsStream(BayutStream):
    """Enquiries from TruBroker stories (property, project or location stories)."""

    name = "story_leads"
    primary_keys = ("lead_id",)


class PhoneViewTotalsStream(ViewTotalsStream):
    """Lifetime phone-number reveals per listing, agent and agency."""

    name = "phone_view_totals"
    api_type = "phone"
    targets = ("listing", "agent", "agency")


class SmsViewTotalsStream(ViewTotalsStream):
    """Lifetime SMS views per listing and agent."""

    name = "sms_view_totals"
    api_type = "sms"
    targets = ("listing", "agent")


class WhatsappViewTotalsStream(ViewTotalsStream):
    """Lifetime WhatsApp views per listing and agent."""

    name = "whatsapp_view_totals"
    api_type = "whatsapp"
    targets = ("listing", "agent")


#: The streams of each ``api_form``.
STREAM_TYPES: dict[str, tuple[type[BayutStream], ...]] = {
    "documented": (
        CallLogsStream,
        LeadsStream,
        PhoneViewsStream,
        SmsClicksStream,
        WhatsappViewsStream,
        WhatsappLeadsStream,
        AgentWhatsappLeadsStream,
    ),
    "targeted": (
        CallLogsStream,
        EmailEnquiriesStream,
        WhatsappEnquiriesStream,
        StoryLeadsStream,
        PhoneViewTotalsStream,
        SmsViewTotalsStream,
        WhatsappViewTotalsStream,
    ),
}
