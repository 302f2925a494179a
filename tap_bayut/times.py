"""Time handling: the API's bare wall-clock times, UTC instants and the six-month floor."""

from __future__ import annotations

import calendar
import datetime as dt

UTC = dt.UTC

#: The wire format of the request's ``timestamp`` and of the API's bare date-times.
WIRE_FORMAT = "%Y-%m-%d %H:%M:%S"

#: Requests start this much after the computed floor, so that a few seconds of clock
#: skew or latency do not push them behind the server's own, moving floor.
FLOOR_MARGIN = dt.timedelta(minutes=1)

_EMPTY = ("", "None", "null")


def utc_now() -> dt.datetime:
    """Return the current instant (one place, so tests can pin the clock)."""
    return dt.datetime.now(UTC)


def from_iso(value: str) -> dt.datetime:
    """Parse ISO 8601 ("Z" and "+0400" included, as Python 3.11 reads them)."""
    return dt.datetime.fromisoformat(value.strip())


def parse_instant(value: str, zone: dt.tzinfo) -> dt.datetime:
    """Parse an API date-time; a bare one is wall-clock time in ``zone``."""
    parsed = from_iso(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def to_utc_string(value: dt.datetime) -> str:
    """Format an instant in the one canonical form bookmarks are compared in."""
    return value.astimezone(UTC).isoformat()


def to_wire(value: dt.datetime, zone: dt.tzinfo) -> str:
    """Format an instant as the API's bare wall-clock ``timestamp`` in ``zone``."""
    return value.astimezone(zone).strftime(WIRE_FORMAT)


def is_empty(value: object) -> bool:
    """Tell whether the API meant "no value" (it says so as null, ``""`` or ``"None"``)."""
    return value is None or (isinstance(value, str) and value.strip() in _EMPTY)


def minus_months(moment: dt.datetime, months: int) -> dt.datetime:
    """Go back calendar months; a day the month lacks overflows into the next (31 Aug - 6: 3 Mar).

    That is PHP's (and Carbon's default) arithmetic. Clamping instead (28 Feb) gives an
    earlier date, so the overflowed one is never before the server's floor, whichever of
    the two the server uses.
    """
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    clamped = moment.replace(year=year, month=month + 1, day=min(moment.day, last_day))
    return clamped + dt.timedelta(days=max(moment.day - last_day, 0))


def six_month_floor(now: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """Return the oldest instant the API still serves, plus a safety margin."""
    return minus_months(now.astimezone(zone), 6) + FLOOR_MARGIN


def start_of_day(moment: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """Return 00:00:00 of the day ``moment`` falls on in ``zone``."""
    local = moment.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)
