"""tap-bayut: settings, stream list and the command line."""

from __future__ import annotations

import sys
import typing as t
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.plugin_base import SingerCommand

from tap_bayut.client import BayutError
from tap_bayut.streams import STREAM_TYPES
from tap_bayut.times import UTC, from_iso, to_wire

if t.TYPE_CHECKING:
    import datetime as dt

    import click

    from tap_bayut.client import BayutStream

BAYUT_URL = "https://www.bayut.com/api-v7/stats/website-client-leads"


class SettingError(ValueError):
    """A setting is malformed; raised before any request."""


class _OneLineErrors(SingerCommand):
    """Report errors the user can fix in one line, without a traceback."""

    def main(self, *args: t.Any, **kwargs: t.Any) -> t.Any:  # noqa: ANN401
        try:
            return super().main(*args, **kwargs)
        except ConfigValidationError as exc:
            for error in exc.errors:
                self.logger.error("Config error: %s", error)  # noqa: TRY400
        except (BayutError, SettingError) as exc:
            self.logger.error("%s", exc)  # noqa: TRY400
        sys.exit(1)


class TapBayut(Tap):
    """Singer tap for the Bayut (and dubizzle) Pull API lead data."""

    name = "tap-bayut"
    message_writer_class = MsgSpecWriter

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_key",
            th.StringType,
            required=True,
            secret=True,
            title="API key",
            description="The Pull API key Bayut issued to the account, sent as a bearer token.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            title="Start date",
            description=(
                "Where a stream without a bookmark starts (UTC when it has no offset). "
                "Absent or older than the API's six-month floor: the floor."
            ),
        ),
        th.Property(
            "api_url",
            th.StringType,
            default=BAYUT_URL,
            title="API URL",
            description=(
                "The Pull API endpoint. dubizzle: "
                "https://dubizzle.com/profolio/api-v7/stats/website-client-leads"
            ),
        ),
        th.Property(
            "api_form",
            th.StringType,
            default="documented",
            allowed_values=list(STREAM_TYPES),
            title="API form",
            description=(
                "documented: the API document's types (call_logs, leads, daily counters, WhatsApp "
                "leads). targeted: the newer type + target + is_trulead form (call_logs, enquiries, "
                "story leads, lifetime view totals). See the README to tell which one an account needs."
            ),
        ),
        th.Property(
            "lookback_hours",
            th.NumberType,
            default=24,
            title="Lookback (hours)",
            description=(
                "Each run re-reads this many hours before the bookmark, to catch rows "
                "published late and rows that changed. Daily counters always re-read "
                "their bookmark's whole day instead."
            ),
        ),
        th.Property(
            "timezone",
            th.StringType,
            default="Asia/Dubai",
            title="API time zone",
            description=(
                "IANA zone of the API's bare date-times and of the request's timestamp. "
                "Emitted date-times are UTC."
            ),
        ),
        th.Property(
            "request_timeout",
            th.IntegerType,
            default=300,
            title="Request timeout (seconds)",
            description="How long one request may take before it is retried.",
        ),
        th.Property(
            "max_retries",
            th.IntegerType,
            default=5,
            title="Max retries",
            description="Retries of a request after 408, 429, 5xx, timeouts and broken connections.",
        ),
        th.Property(
            "backoff_seconds",
            th.NumberType,
            default=2,
            title="Backoff (seconds)",
            description=(
                "First wait before a retry; it doubles each time, up to 60 s. A "
                "Retry-After from the server takes precedence (up to 600 s)."
            ),
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:  # noqa: ANN401
        """Initialise the tap and check the settings that JSON Schema cannot."""
        self._warned: set[str] = set()
        super().__init__(*args, **kwargs)
        if kwargs.get("validate_config", True):
            errors = self._setting_errors()
            if errors:
                raise SettingError(" ".join(errors))
        if self.input_catalog and (unknown := sorted(set(self.input_catalog) - set(self.streams))):
            # Typically a catalog discovered under the other api_form: its streams would be skipped.
            self.logger.warning(
                "The catalog names streams that api_form %r does not have (%s): run --discover again.",
                self.config.get("api_form", "documented"),
                ", ".join(unknown),
            )

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Run the SDK's JSON Schema check; report in one line, never quoting the key."""
        try:
            return super()._validate_config(raise_errors=raise_errors)
        except ConfigValidationError as exc:
            # JSON Schema quotes the offending value, which for api_key is the secret.
            errors = [
                "api_key must be a non-empty string." if "config['api_key']" in error else error
                for error in exc.errors
            ]
            raise SettingError(" ".join(errors)) from None

    def _setting_errors(self) -> list[str]:
        config = self.config
        errors = []
        if not str(config.get("api_key", "")).strip():
            errors.append("api_key is empty: set it to the key Bayut issued to the account.")
        if (start := config.get("start_date")) is not None:
            try:
                from_iso(str(start))
            except ValueError:
                errors.append(f"start_date {start!r} is not a date-time: write it like 2026-06-01T00:00:00Z.")
        try:
            ZoneInfo(str(config["timezone"]))
        except (ZoneInfoNotFoundError, ValueError, OSError):
            errors.append(
                f"timezone {config['timezone']!r} is not an IANA time zone: write it like Asia/Dubai."
            )
        if not str(config["api_url"]).startswith(("http://", "https://")):
            errors.append(f"api_url {config['api_url']!r} is not an http(s) URL.")
        minimums = {"lookback_hours": 0, "request_timeout": 1, "max_retries": 0, "backoff_seconds": 0}
        errors.extend(
            f"{name} is {config[name]}: set it to {least} or more."
            for name, least in minimums.items()
            if config[name] < least
        )
        return errors

    def start_date(self, floor: dt.datetime) -> dt.datetime:
        """Return where a stream without a bookmark starts, and say once if that is the floor."""
        zone = ZoneInfo(self.config["timezone"])
        floor_text = f"{to_wire(floor, zone)} {zone.key}"
        if (configured := self.config.get("start_date")) is None:
            self.warn_once(
                "start_date",
                "start_date is not set: streams without a bookmark start at the API's six-month floor, "
                f"{floor_text}.",
            )
            return floor
        start = from_iso(str(configured))
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
        if start < floor:
            self.warn_once(
                "start_date",
                f"start_date {configured} is older than the API's six-month floor: starting at {floor_text}.",
            )
            return floor
        return start

    def warn_once(self, topic: str, message: str) -> None:
        """Log a warning the first time this run meets its topic."""
        if topic not in self._warned:
            self._warned.add(topic)
            self.logger.warning(message)

    def discover_streams(self) -> list[BayutStream]:
        """Return the streams of the configured API form."""
        form = self.config.get("api_form", "documented")
        if form not in STREAM_TYPES:  # discovery does not validate the settings first
            msg = f"api_form {form!r} is not one of {', '.join(STREAM_TYPES)}."
            raise SettingError(msg)
        return [stream_type(tap=self) for stream_type in STREAM_TYPES[form]]

    @classmethod
    def get_singer_command(cls) -> click.Command:
        """Return the SDK's command, reporting fixable errors in one line."""
        command = super().get_singer_command()
        return _OneLineErrors(
            name=command.name,
            callback=command.callback,
            params=command.params,
            help=command.help,
            context_settings=command.context_settings,
            logger=cls.logger,
        )


if __name__ == "__main__":
    TapBayut.cli()
