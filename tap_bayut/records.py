"""Bring the API's drifting row shapes to the one shape each stream's schema declares."""

from __future__ import annotations

import hashlib
import json
import typing as t

from tap_bayut.times import is_empty, parse_instant, to_utc_string

if t.TYPE_CHECKING:
    from zoneinfo import ZoneInfo

#: Top-level fields the schema does not know yet are kept here, not dropped.
EXTRA_FIELDS = "extra_fields"


class RowShapeError(ValueError):
    """A value cannot be read as the type its schema declares."""


Convert = t.Callable[[t.Any], t.Any]


def _types(schema: dict[str, t.Any]) -> set[str]:
    declared = schema.get("type", [])
    return {declared} if isinstance(declared, str) else set(declared)


def _unchanged(value: t.Any) -> t.Any:  # noqa: ANN401
    return value


def converter(schema: dict[str, t.Any], zone: ZoneInfo, path: str) -> Convert:  # noqa: C901
    """Compile a schema, once per stream, into a function that coerces one value to it.

    It makes UTC instants of date-times (bare ones read in ``zone``), integers of counters
    sent as strings, strings of ids sent as integers, JSON text of objects where text is
    declared, and null of the API's empty values ("", "None") in typed fields. Fields the
    schema does not declare pass through unchanged.
    """
    types, fmt = _types(schema), schema.get("format")
    properties = {
        key: converter(sub, zone, f"{path}.{key}") for key, sub in schema.get("properties", {}).items()
    }
    items = converter(schema.get("items", {}), zone, f"{path}[]") if "array" in types else _unchanged
    is_text = "string" in types and fmt is None

    def convert(value: t.Any) -> t.Any:  # noqa: ANN401, PLR0911
        if "object" in types and isinstance(value, dict):
            return {key: properties.get(key, _unchanged)(item) for key, item in value.items()}
        if "array" in types and isinstance(value, list):
            return [items(item) for item in value]
        if is_empty(value):
            # "" is a real (empty) text, so only typed fields read it as "no value".
            return value if value == "" and is_text else None
        try:
            if fmt == "date-time":
                return to_utc_string(parse_instant(str(value), zone))
            if fmt == "date":
                return str(value).strip()[:10]
            if "integer" in types and not isinstance(value, bool):
                return int(value) if not isinstance(value, str) else int(float(value))
        except (TypeError, ValueError) as exc:
            msg = f"{path}: cannot read {value!r} as {fmt or 'integer'}"
            raise RowShapeError(msg) from exc
        if "string" in types and isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if "string" in types and isinstance(value, (dict, list)):
            # An object where text was declared: keep it whole, as JSON text.
            return json.dumps(value, ensure_ascii=False, sort_keys=True)
        return value

    return convert


def gather_extras(row: dict[str, t.Any], schema: dict[str, t.Any]) -> dict[str, t.Any]:
    """Move top-level fields the schema does not declare into ``extra_fields`` (null if none)."""
    known = schema["properties"]
    extras = {key: row.pop(key) for key in list(row) if key not in known}
    row[EXTRA_FIELDS] = {**(row.get(EXTRA_FIELDS) or {}), **extras} or None
    return extras


def dig(row: dict[str, t.Any], dotted: str) -> t.Any:  # noqa: ANN401
    """Read a nested field by its dotted path; a missing part reads as None."""
    value: t.Any = row
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def event_key(parts: t.Sequence[t.Any]) -> str:
    """Hash the values that identify an event and never change into a stable key."""
    canonical = json.dumps(parts, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
