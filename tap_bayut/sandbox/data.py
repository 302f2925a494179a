"""The sandbox's rows: deterministic, realistic lead data over the last weeks.

Times are Asia/Dubai wall-clock, as the live API writes them. Some rows carry the live
API's drift (string ids, missed calls with null times, "None" recordings, counters sent
as strings). A few rows are held back as "published late": stamped in the past, but only
served after ``publish_late``.
"""

from __future__ import annotations

import datetime as dt
import random
import typing as t
from dataclasses import dataclass, field

WALL = "%Y-%m-%d %H:%M:%S"
DAILY_TYPES = ("phone_views", "sms_clicks", "whatsapp_views")
EVENT_TYPES = ("call_logs", "leads", "whatsapp_leads", "agent_whatsapp_leads")
TYPES = EVENT_TYPES + DAILY_TYPES

# The newer form: rows by "type/target/is_trulead" (story_leads and call_logs take neither).
ENQUIRY_KEYS = (
    "email/listing/1",
    "email/agent/1",
    "email/agency/1",
    "whatsapp/listing/1",
    "whatsapp/agent/1",
)
VIEW_KEYS = (
    "phone/listing/0",
    "phone/agent/0",
    "phone/agency/0",
    "sms/listing/0",
    "sms/agent/0",
    "whatsapp/listing/0",
    "whatsapp/agent/0",
)
TARGETED_KEYS = (*ENQUIRY_KEYS, "story_leads", *VIEW_KEYS)
#: Every ``type`` the server knows, in either form.
ALL_TYPES = (*TYPES, "email", "whatsapp", "phone", "sms", "story_leads")


def dataset_key(kind: str, target: str | None, is_trulead: str | None) -> str | None:
    """Return which rows a request asks for; None for a combination the API answers with nothing."""
    if target is None and is_trulead is None:
        return kind if kind in (*TYPES, "story_leads") else None
    key = f"{kind}/{target}/{is_trulead}"
    return key if key in TARGETED_KEYS else None


AGENCY = ("Palm Homes Real Estate", "https://www.bayut.com/companies/palm-homes-12345/")
#: The share of rows that carry an optional part (visitor_intent; an e-mail enquiry seen by no agency).
SOME = 0.25
COUNTER_NAMES = {"phone": "phone_views", "sms": "sms_views", "whatsapp": "whatsapp_views"}

LISTINGS = [
    (7446192, "291-Ap-R-23906"),
    (7451033, "291-Ap-S-10422"),
    (7460871, "291-Vi-R-00871"),
    (7462218, "291-Of-R-02218"),
    (7470045, "291-Ap-S-10950"),
]
AGENTS = [
    ("John Doe", "john.doe@agent.example", "https://www.bayut.com/brokers/john-doe-575554.html"),
    ("Aisha Khan", "aisha.khan@agent.example", "https://www.bayut.com/brokers/aisha-khan-575601.html"),
]
PEOPLE = [
    ("Mona Douma", "971585849046"),
    ("Eslam Aziz", "971581260543"),
    ("Shahid", "971558502861"),
    ("Marwa Melhem", "971529952671"),
    ("Ravi Menon", "971501234567"),
    ("Olga Petrova", "971556677889"),
    ("Yousef Haddad", "971527788990"),
]


@dataclass
class Dataset:
    """Every row the sandbox can serve, by type, plus the rows not published yet."""

    rows: dict[str, list[dict[str, t.Any]]] = field(default_factory=dict)
    late: dict[str, list[dict[str, t.Any]]] = field(default_factory=dict)

    def retire_listing(self) -> int:
        """Drop the last listing from the view totals, as if it were unpublished; return rows dropped."""
        listing_id = LISTINGS[-1][0]
        dropped = 0
        for key in VIEW_KEYS:
            kept = [
                r
                for r in self.rows[key]
                if int((r.get("listing_details") or {}).get("listing_id", 0)) != listing_id
            ]
            dropped += len(self.rows[key]) - len(kept)
            self.rows[key] = kept
        return dropped

    def publish_late(self) -> dict[str, int]:
        """Serve the held-back rows from now on; return how many there were, by type."""
        counts = {kind: len(rows) for kind, rows in self.late.items()}
        for kind, rows in self.late.items():
            self.rows[kind].extend(rows)
        self.late = {kind: [] for kind in self.late}
        return counts

    def grow_counters(self, now: dt.datetime) -> dict[str, int]:
        """Add views to today's counter rows (creating them if needed) and to some lifetime totals.

        Return how many rows grew, by type.
        """
        today = now.date()
        touched: dict[str, int] = {}
        for kind in DAILY_TYPES:
            for listing_id, reference in LISTINGS[:2]:
                day = today.isoformat()
                matches = (
                    r for r in self.rows[kind] if (r["date_time"], int(r["listing_id"])) == (day, listing_id)
                )
                row = next(matches, None)
                if row is None:
                    row = {
                        "date_time": day,
                        "listing_id": listing_id,
                        "listing_reference": reference,
                        kind: 0,
                    }
                    if kind == "phone_views":
                        row["lead_id"] = ""
                    self.rows[kind].append(row)
                row[kind] = int(row[kind]) + 3
                touched[kind] = touched.get(kind, 0) + 1
        for key in VIEW_KEYS:
            for row in self.rows[key][:1]:
                counter = COUNTER_NAMES[key.split("/")[0]]
                row[counter] = int(row[counter]) + 5
                row["date_time"] = _wall(now)
                touched[key] = touched.get(key, 0) + 1
        return touched


def _wall(moment: dt.datetime) -> str:
    return moment.strftime(WALL)


def _utc_z(moment: dt.datetime, offset_hours: int = 4) -> str:
    """Dubai wall-clock to the API's UTC notation, as in the document's notifications."""
    return (moment - dt.timedelta(hours=offset_hours)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def _call(rng: random.Random, n: int, when: dt.datetime) -> dict[str, t.Any]:
    listing_id, reference = rng.choice(LISTINGS)
    caller = rng.choice(PEOPLE)[1]
    missed = n % 4 == 3  # noqa: PLR2004 - every fourth call is missed
    # The live API now sends string ids; older rows keep the document's integers.
    call_id: int | str = f"phone|{rng.getrandbits(32):08x}" if n % 2 else 5_000_000 + n
    pickup = when + dt.timedelta(seconds=6)
    talk = rng.randint(20, 400)
    return {
        "call_log_id": call_id,
        "listing_reference": reference,
        "lead_id": call_id if isinstance(call_id, str) else "",
        "object_type_id": 1,
        "object_id": listing_id,
        "stats_ip_id": 900_000 + n,
        "date": when.strftime("%Y-%m-%d"),
        "time": (when if missed else pickup).strftime("%H:%M:%S"),
        "role_id": 11,
        "caller_number": f"+{caller}",
        "proxy_number": "+97143000100",
        "receiver_numbers_list": "+971500000001#35,+971500000002#35",
        "receiver_number": "+971500000001",
        "call_status": "missed" if missed else "connected",
        "call_total_duration": f"0:{(talk + 6) // 60:02d}:{(talk + 6) % 60:02d}",
        "call_connected_duration": "00:00:00" if missed else f"00:{talk // 60:02d}:{talk % 60:02d}",
        "call_time": None if missed else _wall(when),
        "call_pickup_time": None if missed else _wall(pickup),
        "call_recordingurl": "None" if missed else f"https://sr.knowlarity.example/vr/fetchsound/?callid={n}",
        "caller_location": None if missed else "United Arab Emirates",
        "source": "knowlarity",
        "is_object_fetched": 0,
        "reference_log_id": 120_000_000 + n,
        "call_type": None if missed else "in",
    }


def _email(rng: random.Random, when: dt.datetime) -> dict[str, t.Any]:
    listing_id, reference = rng.choice(LISTINGS)
    name, phone = rng.choice(PEOPLE)
    return {
        "property_id": listing_id,
        "lead_id": "",
        "property_reference": reference,
        "current_type": rng.choice(["for_sale", "for_rent"]),
        "date_time": _wall(when),
        "message": f"I would like to inquire about your property Bayut - {reference}. Please contact me.",
        "client_name": name,
        "client_email": f"{name.split()[0].lower()}@example.com",
        "client_phone": phone,
    }


def _notifications(rng: random.Random, when: dt.datetime) -> list[dict[str, str]]:
    steps = ["Sent", "Delivered", "Read"][: rng.randint(1, 3)]
    return [
        {"status": status, "created_at": _utc_z(when + dt.timedelta(seconds=2 + 15 * i))}
        for i, status in reversed(list(enumerate(steps)))
    ]


def _whatsapp(rng: random.Random, when: dt.datetime) -> dict[str, t.Any]:
    listing_id, reference = rng.choice(LISTINGS)
    name, cell = rng.choice(PEOPLE)
    return {
        "date_time": _wall(when),
        "source": "bayut",
        "listing_id": listing_id,
        "listing_reference": reference,
        "detail": {
            "actor_name": name,
            "cell": cell,
            "message": f"Hi, I am interested in your property on Bayut. Ref: {reference}",
        },
        "delivery_notifications": _notifications(rng, when),
    }


def _agent_whatsapp(rng: random.Random, when: dt.datetime) -> dict[str, t.Any]:
    agent, email, url = rng.choice(AGENTS)
    name, cell = rng.choice(PEOPLE)
    return {
        "date_time": _wall(when),
        "source": "bayut",
        "agent_details": {"url": url, "name": agent, "email": email},
        "actor_details": {"name": name, "cell": cell, "message": "Hello, is this still available?"},
        "delivery_notifications": _notifications(rng, when),
    }


def _events(rng: random.Random, now: dt.datetime, days: int, per_day: int) -> list[dt.datetime]:
    """Distinct event instants over the last ``days`` days, oldest first, none after ``now``."""
    moments: set[dt.datetime] = set()
    for day in range(days, -1, -1):
        base = (now - dt.timedelta(days=day)).replace(hour=0, minute=0, second=0, microsecond=0)
        for _ in range(rng.randint(max(per_day - 1, 0), per_day + 1)):
            moment = base + dt.timedelta(seconds=rng.randint(8 * 3600, 23 * 3600))
            if moment < now - dt.timedelta(minutes=5):
                moments.add(moment)
    return sorted(moments)


def build(now: dt.datetime, days: int = 28, seed: int = 7) -> Dataset:
    """Build the rows of the last ``days`` days before ``now`` (Dubai wall-clock, naive)."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    data = Dataset(rows={kind: [] for kind in TYPES}, late={kind: [] for kind in TYPES})
    makers: dict[str, t.Callable[[int, dt.datetime], dict[str, t.Any]]] = {
        "call_logs": lambda n, when: _call(rng, n, when),
        "leads": lambda _n, when: _email(rng, when),
        "whatsapp_leads": lambda _n, when: _whatsapp(rng, when),
        "agent_whatsapp_leads": lambda _n, when: _agent_whatsapp(rng, when),
    }
    for kind, maker in makers.items():
        data.rows[kind] = [maker(n, when) for n, when in enumerate(_events(rng, now, days, per_day=3))]
        # Two rows stamped two and three hours ago, that the API only publishes later.
        hours_ago = (2, 3)
        data.late[kind] = [
            maker(10_000 + n, now - dt.timedelta(hours=h, minutes=7 * n)) for n, h in enumerate(hours_ago)
        ]
    for kind in DAILY_TYPES:
        for day in range(days, -1, -1):
            date = (now - dt.timedelta(days=day)).date()
            for index, (listing_id, reference) in enumerate(LISTINGS):
                count = rng.randint(0, 4)
                if count == 0:
                    continue
                row: dict[str, t.Any] = {
                    "date_time": date.isoformat(),
                    # Drift: some ids and counters arrive as strings.
                    "listing_id": str(listing_id) if index == len(LISTINGS) - 1 else listing_id,
                    "listing_reference": reference,
                }
                if kind == "phone_views":
                    row["lead_id"] = ""
                row[kind] = str(count) if day % 5 == 0 else count
                data.rows[kind].append(row)
    _add_targeted(data, random.Random(seed + 1), now, days)  # noqa: S311
    return data


def _details(
    target: str, listing: tuple[int, str], agent: tuple[str, str, str]
) -> tuple[str, dict[str, t.Any]]:
    """Return the ``*_details`` key and object a row carries for its target."""
    if target == "listing":
        return "listing_details", {
            "listing_id": listing[0],
            "listing_reference": listing[1],
            "current_type": "for_rent",
        }
    if target == "agent":
        return "agent_details", {"url": agent[2], "name": agent[0], "email": agent[1]}
    return "agency_details", {"url": AGENCY[1], "name": AGENCY[0]}


def _enquiry(rng: random.Random, channel: str, when: dt.datetime) -> list[tuple[str, dict[str, t.Any]]]:
    """One enquiry as each target returns it: the same lead_id under listing, agent (and agency)."""
    listing, agent, (name, cell) = rng.choice(LISTINGS), rng.choice(AGENTS), rng.choice(PEOPLE)
    base: dict[str, t.Any] = {
        "lead_id": f"{channel}|{rng.getrandbits(64):016x}",
        "source": "bayut",
        "lead_target": "listing",
        "date_time": _wall(when),
        "inquirer_details": {
            "name": name,
            "cell": cell,
            "email": "" if channel == "whatsapp" else f"{name.split()[0].lower()}@example.com",
            "message": f"Hi, I am interested in {listing[1]}.",
        },
    }
    if channel == "whatsapp":
        steps = ["sent", "delivered", "read"][: rng.randint(1, 3)]
        base["delivery_notifications"] = [
            {"status": step, "created_at": _wall(when + dt.timedelta(seconds=2 + 15 * i))}
            for i, step in reversed(list(enumerate(steps)))
        ]
        base["interested_in_tern"] = None
        if rng.random() < SOME:
            base["visitor_intent"] = rng.choice(["buy", {"intent": "rent", "budget": "120000"}])
    targets = (
        ("listing", "agent")
        if channel == "whatsapp" or rng.random() < SOME
        else ("listing", "agent", "agency")
    )
    rows = []
    for target in targets:
        key, details = _details(target, listing, agent)
        rows.append((f"{channel}/{target}/1", {**base, key: details}))
    return rows


def _story(rng: random.Random, when: dt.datetime) -> dict[str, t.Any]:
    name, cell = rng.choice(PEOPLE)
    listing = rng.choice(LISTINGS)
    kind = rng.choice(["property", "project", "location"])
    story: dict[str, t.Any] = {"story_id": rng.randint(10_000, 99_999)}
    if kind == "property":
        story["listing_details"] = {
            "listing_reference": listing[1],
            "current_type": "for_sale",
            "listing_url": f"https://www.bayut.com/property/details-{listing[0]}.html",
        }
    elif kind == "project":
        story["project_details"] = {
            "project_name_en": "Marina Vista",
            "developer_name_en": "Emaar",
            "project_image_path": "https://images.example/marina-vista.jpg",
        }
    return {
        "lead_id": f"story|{rng.getrandbits(64):016x}",
        "date_time": _wall(when),
        "inquirer_details": {"name": name, "cell": cell},
        "story_details": story,
    }


def _add_targeted(data: Dataset, rng: random.Random, now: dt.datetime, days: int) -> None:
    """Add the newer form's rows: enquiries per target, story leads, lifetime view totals."""
    for key in TARGETED_KEYS:
        data.rows[key], data.late[key] = [], []
    hours_ago = (2, 3)
    for channel in ("email", "whatsapp"):
        for when in _events(rng, now, days, per_day=2):
            for key, row in _enquiry(rng, channel, when):
                data.rows[key].append(row)
        for n, h in enumerate(hours_ago):
            for key, row in _enquiry(rng, channel, now - dt.timedelta(hours=h, minutes=7 * n)):
                data.late[key].append(row)
    data.rows["story_leads"] = [_story(rng, when) for when in _events(rng, now, days, per_day=1)]
    data.late["story_leads"] = [_story(rng, now - dt.timedelta(hours=h)) for h in hours_ago]
    for key in VIEW_KEYS:
        channel, target, _ = key.split("/")
        owners: list[t.Any] = LISTINGS if target == "listing" else AGENTS if target == "agent" else [AGENCY]
        for owner in owners:
            details_key, details = _details(
                target,
                owner if target == "listing" else LISTINGS[0],
                owner if target == "agent" else AGENTS[0],
            )
            last_view = now - dt.timedelta(hours=rng.randint(1, 24 * days))
            count = rng.randint(1, 400)
            data.rows[key].append(
                {
                    "lead_id": f"{channel}|{rng.getrandbits(64):016x}",
                    "date_time": _wall(last_view),
                    details_key: details,
                    # Drift: some counters arrive as strings.
                    COUNTER_NAMES[channel]: str(count) if count % 3 == 0 else count,
                }
            )
