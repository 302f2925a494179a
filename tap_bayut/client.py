"""The one base stream: URL, auth, request parameters, time window, errors and retries."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import random
import re
import typing as t
from functools import cached_property
from http import HTTPStatus
from urllib.parse import quote, quote_plus, urlencode
from zoneinfo import ZoneInfo

import msgspec
import requests
from singer_sdk import RESTStream
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.schema.source import SchemaDirectory, StreamSchema
from singer_sdk.streams.rest import HTTPRequest

from tap_bayut import schemas
from tap_bayut.records import Convert, RowShapeError, converter, dig, event_key, gather_extras
from tap_bayut.times import (
    FLOOR_MARGIN,
    UTC,
    WIRE_FORMAT,
    from_iso,
    parse_instant,
    six_month_floor,
    start_of_day,
    to_utc_string,
    to_wire,
    utc_now,
)

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable

    from backoff.types import Details
    from singer_sdk.helpers.types import Context
    from singer_sdk.streams.rest import PageContext

    from tap_bayut.tap import TapBayut

#: Longest wait a server's Retry-After is honoured for.
MAX_RETRY_AFTER = 600.0
#: Exponential waits stop growing here.
MAX_BACKOFF = 60.0
#: Fields that change after a lead first appears: never part of its key.
VOLATILE_FIELDS = frozenset({"delivery_notifications", "lead_key"})
#: How much of an error body an error message quotes.
BODY_EXCERPT = 300

_FLOOR_RE = re.compile(r"after or equal to (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})")
_TYPE_RE = re.compile(r"\btype\b", re.IGNORECASE)


class BayutError(FatalAPIError):
    """A failure the user can act on, reported as one line without a traceback."""


class FloorMovedError(Exception):
    """The server refused the request's timestamp as older than its six-month floor."""

    def __init__(self, floor: str) -> None:
        """Keep the floor the server named, as it wrote it."""
        super().__init__(floor)
        self.floor = floor


class TypeNotServedError(Exception):
    """The server does not serve this stream's type for this account."""


class _BearerAuth(requests.auth.AuthBase):
    """Add the bearer header and leave the URL alone (SDK authenticators re-encode it)."""

    def __init__(self, api_key: str) -> None:
        """Keep the header value only."""
        self._header = f"Bearer {api_key}"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request


class _PercentEncodedRequest(HTTPRequest):
    """Encode a space as %20: the API does not read ``+`` back as a space."""

    def encode_params(self) -> str:
        return urlencode(self.params, quote_via=quote)


class BayutStream(RESTStream):
    """One lead type of the Pull API, replicated incrementally on ``date_time``."""

    schema = StreamSchema(SchemaDirectory(schemas))
    path = ""
    replication_key: str | None = "date_time"
    is_sorted = False  # newest first, and a lookback re-reads older rows anyway
    # post_process already brings every value to its schema; the SDK's second pass would
    # cost about a third of the time per record for nothing.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    #: Daily counters: one row per listing per day, ``date_time`` is a date.
    daily: t.ClassVar[bool] = False
    #: ``date_time``, then the fields that identify an event, hashed into ``lead_key``
    #: (empty: the API has an id). ``a|b`` takes the first of a and b that has a value.
    key_fields: t.ClassVar[tuple[str, ...]] = ()
    #: The document marks this type "not live yet": a refusal skips it with a warning.
    may_be_unserved: t.ClassVar[bool] = False
    #: The API's ``type`` when it is not the stream's name.
    api_type: t.ClassVar[str | None] = None
    #: The newer form's ``is_trulead``: 1 for enquiries, 0 for view totals, None: not sent.
    is_trulead: t.ClassVar[int | None] = None
    #: The newer form's ``target`` values, one partition each, synced in this order.
    targets: t.ClassVar[tuple[str, ...]] = ()

    _tap: TapBayut

    @property
    def url_base(self) -> str:
        """Return the Pull API endpoint from the settings."""
        return str(self.config["api_url"])

    @property
    def timeout(self) -> int:
        """Return the per-request timeout in seconds from the settings."""
        return int(self.config["request_timeout"])

    @cached_property
    def authenticator(self) -> _BearerAuth:
        """Return the bearer-header auth."""
        return _BearerAuth(str(self.config["api_key"]))

    @property
    def http_headers(self) -> dict[str, str]:
        """Ask for JSON explicitly."""
        return {**super().http_headers, "Accept": "application/json"}

    @property
    def partitions(self) -> list[dict[str, t.Any]] | None:
        """Return one partition per target, or none for a type that takes no target."""
        return [{"type": self.lead_type, "target": target} for target in self.targets] or None

    @property
    def lead_type(self) -> str:
        """Return the ``type`` this stream asks the API for."""
        return self.api_type or self.name

    @cached_property
    def zone(self) -> ZoneInfo:
        """Return the zone the API's bare date-times are written in."""
        return ZoneInfo(self.config["timezone"])

    @cached_property
    def _normalise(self) -> Convert:
        """Return the stream's schema compiled into one row converter."""
        return converter(self.schema, self.zone, self.name)

    # Request window

    def _bookmark(self, context: Context | None) -> str | None:
        state = self.get_context_state(context)
        if state.get("replication_key") != self.replication_key:
            return None
        value = state.get("replication_key_value")
        return str(value) if value else None

    def request_start(self, context: Context | None, now: dt.datetime) -> dt.datetime:
        """Return the instant to ask from: bookmark minus lookback, or start_date, never before the floor."""
        floor = six_month_floor(now, self.zone)
        if self.replication_key is None:
            return floor  # a snapshot: the server ignores the timestamp, so send the safest one
        bookmark = self._bookmark(context)
        if bookmark is None:
            start = self._tap.start_date(floor)
        elif self.daily:
            start = from_iso(bookmark[:10]).replace(tzinfo=self.zone)
        else:
            start = parse_instant(bookmark, UTC) - dt.timedelta(hours=self.config["lookback_hours"])
        if self.daily:
            # Ask from 00:00 of the day, so the day's growing counts come again.
            start = start_of_day(start, self.zone)
        if bookmark is not None and parse_instant(bookmark, self.zone) < floor - FLOOR_MARGIN:
            self.logger.warning(
                "Stream %s: bookmark %s is older than the API's six-month floor (%s %s); "
                "rows between them can no longer be fetched.",
                self.name,
                bookmark,
                to_wire(floor - FLOOR_MARGIN, self.zone),
                self.zone.key,
            )
        return max(start, floor)

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, str]:  # noqa: ANN401, ARG002
        """Return the query: type (target, is_trulead) and the window's start in local wall-clock time."""
        params = {"type": self.lead_type}
        if context and "target" in context:
            params["target"] = str(context["target"])
        if self.is_trulead is not None:
            params["is_trulead"] = str(self.is_trulead)
        params["timestamp"] = to_wire(self._start, self.zone)
        return params

    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        """Build the request with the query percent-encoded."""
        request = super().get_http_request(page=page)
        return _PercentEncodedRequest(url=request.url, headers=request.headers, params=request.params)

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        """Fetch the window; if the server's floor has moved past its start, ask once more from there."""
        self._asked_at = utc_now()
        self._start = self.request_start(context, self._asked_at)
        for attempt in (1, 2):
            try:
                yield from super().get_records(context)
            except FloorMovedError as exc:
                sent = to_wire(self._start, self.zone)
                retry_from = (
                    dt.datetime.strptime(exc.floor, WIRE_FORMAT).replace(tzinfo=self.zone) + FLOOR_MARGIN
                )
                if attempt == 2 or retry_from <= self._start:  # noqa: PLR2004
                    msg = f"Stream {self.name}: the API refused timestamp {sent} (floor {exc.floor}) twice."
                    raise BayutError(msg) from exc
                self.logger.warning(
                    "Stream %s: the API's six-month floor is %s; asking again from %s.",
                    self.name,
                    exc.floor,
                    to_wire(retry_from, self.zone),
                )
                self._start = retry_from
            except TypeNotServedError as exc:
                self.logger.warning(
                    "Stream %s skipped: the API does not serve type=%s (%s).", self.name, self.lead_type, exc
                )
                return
            else:
                return

    # Responses

    def _excerpt(self, response: requests.Response) -> str:
        """Quote the start of a body, the key blanked out first in every form a server echoes it."""
        text = response.text
        key = str(self.config["api_key"])
        for form in {key, json.dumps(key)[1:-1], quote(key, safe=""), quote(key), quote_plus(key)} - {""}:
            text = text.replace(form, "[api_key]")
        return " ".join(text.split())[:BODY_EXCERPT]

    def validate_response(self, response: requests.Response) -> None:
        """Sort a response into success, retriable, skippable and fatal."""
        status = response.status_code
        where = f"type={self.lead_type}"
        if status < HTTPStatus.BAD_REQUEST:
            return
        if status in {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}:
            msg = f"Bayut rejected the API key (HTTP {status} for {where}): check the api_key setting."
            raise BayutError(msg)
        if (
            status in {HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_MANY_REQUESTS}
            or status >= HTTPStatus.INTERNAL_SERVER_ERROR
        ):
            msg = f"HTTP {status} for {where}"
            raise RetriableAPIError(msg, response)
        body = self._excerpt(response)
        if status == HTTPStatus.UNPROCESSABLE_ENTITY and (floor := _FLOOR_RE.search(response.text)):
            raise FloorMovedError(floor.group(1))
        if self.may_be_unserved and (status == HTTPStatus.NOT_FOUND or _names_type(response)):
            msg = f"HTTP {status}: {body}"
            raise TypeNotServedError(msg)
        msg = f"Bayut answered HTTP {status} for {where}: {body}"
        raise BayutError(msg)

    def parse_response(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:
        """Read the body as one JSON array; an empty body is no rows, anything else fails.

        The whole body is checked to be a JSON array before any row is read, but each row
        becomes a dict only when it is read: memory holds the body and one row, not every
        row at once.
        """
        body = response.content
        if not body or body.isspace():
            return []
        try:
            raw_rows = msgspec.json.decode(body, type=list[msgspec.Raw])
        except msgspec.ValidationError:
            self._not_rows(response)
        except msgspec.DecodeError:
            kind = response.headers.get("Content-Type", "no content type")
            msg = (
                f"Bayut answered type={self.lead_type} with HTTP {response.status_code} and a body "
                f"that is not JSON ({kind}: {self._excerpt(response)[:80]!r}); an expired key "
                "or a proxy's error page looks like this."
            )
            raise BayutError(msg) from None
        return self._rows(raw_rows, response)

    def _rows(self, raw_rows: list[msgspec.Raw], response: requests.Response) -> Iterable[dict[str, t.Any]]:
        for raw in raw_rows:
            row = msgspec.json.decode(raw)
            if not isinstance(row, dict):
                self._not_rows(response)
            yield row

    def _not_rows(self, response: requests.Response) -> t.NoReturn:
        msg = (
            f"Bayut answered type={self.lead_type} with JSON that is not an array of objects: "
            f"{self._excerpt(response)}"
        )
        raise BayutError(msg)

    # Records

    def derive(self, row: dict[str, t.Any]) -> dict[str, t.Any]:
        """Add fields computed from the raw row; streams override what they need."""
        return row

    def post_process(self, row: dict[str, t.Any], context: Context | None = None) -> dict[str, t.Any] | None:
        """Normalise types and times, add the derived key, and keep unknown fields."""
        schema = self.schema
        try:
            record: dict[str, t.Any] = self._normalise(self.derive(row))
        except RowShapeError as exc:
            raise BayutError(str(exc)) from exc
        if self.replication_key and not record.setdefault(self.replication_key, None):
            self._tap.warn_once(
                f"{self.name}.no_replication_key",
                f"Stream {self.name}: rows without {self.replication_key} are emitted "
                "but do not move the bookmark.",
            )
        # Rows do not say which type and target they answer: stamp the request's.
        record.update(context or {})
        if self.key_fields:
            record["lead_key"] = self._lead_key(record)
        if extras := gather_extras(record, schema):
            self._tap.warn_once(
                f"{self.name}.extra_fields",
                f"Stream {self.name}: fields not in the schema kept in extra_fields: "
                f"{', '.join(sorted(extras))}",
            )
        return record

    def _lead_key(self, record: dict[str, t.Any]) -> str:
        """Hash the fields that identify the lead; each may name alternatives as ``a|b``."""
        time_field, *identity_fields = self.key_fields
        time_value = record.get(time_field)
        # Hash the API's own wall-clock time, so a corrected timezone setting keeps keys.
        parts: list[t.Any] = [self.name, to_wire(from_iso(time_value), self.zone) if time_value else None]
        for field in identity_fields:
            value = next((v for alt in field.split("|") if (v := dig(record, alt)) not in (None, "")), None)
            parts.append(None if value is None else str(value))
        if all(part is None for part in parts[2:]):
            # None of the identifying fields came: hash the row's stable content instead,
            # so that two leads of the same second are never merged into one.
            parts.append({k: v for k, v in record.items() if k not in VOLATILE_FIELDS})
        return event_key(parts)

    # Retries

    def backoff_max_tries(self) -> int:
        """Return the number of attempts: the first one plus the configured retries."""
        return int(self.config["max_retries"]) + 1

    def backoff_wait_generator(self) -> Generator[float, t.Any, None]:
        """Wait what Retry-After says, or exponentially with jitter when it says nothing."""
        base = float(self.config["backoff_seconds"])
        attempt = 0
        exception = yield  # type: ignore[misc]
        while True:
            retry_after = _retry_after(exception)
            if retry_after is None:
                wait = min(base * 2**attempt, MAX_BACKOFF) * random.uniform(0.8, 1.0)  # noqa: S311
            elif retry_after > MAX_RETRY_AFTER:
                msg = (
                    f"Bayut asked to retry type={self.lead_type} after {retry_after:.0f} s, longer than the "
                    f"{MAX_RETRY_AFTER:.0f} s the tap waits: run it again later."
                )
                raise BayutError(msg)
            else:
                wait = retry_after
            attempt += 1
            exception = yield wait

    def backoff_jitter(self, value: float) -> float:
        """Leave the wait as computed: jitter must not shorten a server's Retry-After."""
        return value

    def backoff_handler(self, details: Details) -> None:
        """Log each retry in one line."""
        self.logger.warning(
            "Stream %s: %s; retry %d of %d in %.1f s.",
            self.name,
            _describe(details.get("exception")),
            details["tries"],
            self.backoff_max_tries() - 1,
            details.get("wait", 0.0),
        )


class EnquiryStream(BayutStream):
    """Enquiries of the newer form: one partition per target, each with its own bookmark.

    All targets ask from the oldest of their read positions, so a lead that several
    targets return is read under all of them in one run; each row then carries the details
    and targets seen so far for its ``lead_id``, so the last write of a run holds them all.
    A target's read position is its bookmark or, if later, when it was last read through
    (``read_until``), so a target with few or no enquiries does not hold the others back.
    """

    primary_keys = ("lead_id",)
    is_trulead = 1
    DETAILS: t.ClassVar[tuple[str, ...]] = ("listing_details", "agent_details", "agency_details")
    READ_UNTIL: t.ClassVar[str] = "read_until"

    def _bookmark(self, context: Context | None) -> str | None:  # noqa: ARG002
        """Return the oldest read position of all targets (None while a target was never read)."""
        own_bookmark = super()._bookmark
        positions = []
        for partition in self.partitions or []:
            read_until = self.get_context_state(partition).get(self.READ_UNTIL)
            marks = [mark for mark in (own_bookmark(partition), read_until) if mark]
            if not marks:
                return None
            positions.append(max(marks, key=_instant))
        return min(positions, key=_instant) if positions else None

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        """Read one target; once all its rows are out, note that it was read through."""
        yield from super().get_records(context)
        self.get_context_state(context)[self.READ_UNTIL] = to_utc_string(self._asked_at)

    @cached_property
    def _seen(self) -> dict[str, dict[str, t.Any]]:
        """Details and targets seen in this run, by lead_id."""
        return {}

    def post_process(self, row: dict[str, t.Any], context: Context | None = None) -> dict[str, t.Any] | None:
        """Merge the details and targets this run has seen for the same lead_id."""
        record = super().post_process(row, context)
        if record is None:
            return None
        if not record.get("lead_id"):
            # The API always sends one; if not, derive a stable one rather than drop the row.
            identity = [self.name, record.get("date_time"), dig(record, "inquirer_details.cell")]
            record["lead_id"] = f"derived|{event_key([*identity, dig(record, 'inquirer_details.email')])}"
        seen = self._seen.setdefault(record["lead_id"], {"targets": []})
        for key in self.DETAILS:
            if record.get(key):
                seen[key] = record[key]
            else:
                record[key] = seen.get(key)
        if record["target"] not in seen["targets"]:
            seen["targets"] = [
                target for target in self.targets if target in {*seen["targets"], record["target"]}
            ]
        record["targets"] = list(seen["targets"])
        return record


class ViewTotalsStream(BayutStream):
    """Lifetime view totals of the newer form: a full snapshot of every target on each sync.

    The server ignores ``timestamp`` here, so there is no bookmark. Records carry the
    sync's version and an ACTIVATE_VERSION follows the last target, so targets that
    support it drop listings and agents that are gone; a failed sync activates nothing.
    """

    replication_key = None
    primary_keys = ("target", "lead_id")
    is_trulead = 0

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        """Read one target; after the last one, activate this sync's version."""
        # Records carry the version; the SDK only sets it when it announces one up front,
        # which would make a target drop rows before this sync has read any.
        self._stream_version = self._initialized_at // 1000
        yield from super().get_records(context)
        if self.partitions and context == self.partitions[-1]:
            self._write_activate_version_message(self._stream_version)

    def derive(self, row: dict[str, t.Any]) -> dict[str, t.Any]:
        """Copy the channel's counter (``whatsapp_views``, ``sms_views``, ...) into ``views``."""
        counters = [key for key in row if key.endswith(("_views", "_clicks"))]
        row["views"] = next((row[key] for key in counters if row[key] not in (None, "")), None)
        return row


def _instant(mark: str) -> dt.datetime:
    return parse_instant(mark, UTC)


def _retry_after(exception: BaseException | None) -> float | None:
    """Read the server's wait: Retry-After seconds or HTTP date, or a JSON ``retry_after``."""
    response = getattr(exception, "response", None)
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if value is None:
        try:
            value = response.json().get("retry_after")
        except (ValueError, AttributeError):
            return None
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None  # unreadable: fall back to the exponential wait
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max((when - utc_now()).total_seconds(), 0.0)


def _names_type(response: requests.Response) -> bool:
    """Tell whether a 4xx is a JSON validation answer about ``type`` (never an HTML page)."""
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    errors = body.get("errors")
    return (isinstance(errors, dict) and "type" in errors) or bool(
        _TYPE_RE.search(str(body.get("message", "")))
    )


def _describe(exception: BaseException | None) -> str:
    if isinstance(exception, RetriableAPIError):
        return str(exception)
    return type(exception).__name__
