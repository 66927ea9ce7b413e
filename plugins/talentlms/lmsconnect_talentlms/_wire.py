"""TalentLMS v1 wire format: path-style URLs, lenient value parsing, error bodies.

TalentLMS v1 is loose about types (see the research note): ids and numbers arrive as strings or ints,
empty values as ``""`` or ``null``, dates as ``dd/mm/yyyy, HH:MM:SS`` next to an epoch ``*_timestamp``
sibling that is sometimes a string, sometimes an int, sometimes ``""``. Everything here accepts all of
those and returns ``None`` for "missing" rather than raising, because one odd record must not stop a read.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

__all__ = [
    "build_path",
    "days_from_minutes",
    "error_of",
    "parse_datetime",
    "parse_int",
    "parse_str",
]

_MINUTES_PER_DAY: Final = 24 * 60
# Characters TalentLMS's path parser treats as separators must be escaped inside values; "@" stays
# readable (emails), as every client library sends it.
_SAFE: Final = "@._-~"


def build_path(action: str, params: Mapping[str, Any] | None = None) -> str:
    """The v1 path of `action` with path-style parameters.

    >>> build_path("users", {"page_size": 25, "page_number": 2})
    '/v1/users/page_size:25,page_number:2'
    """
    path = f"/v1/{action}"
    if params:
        pairs = ",".join(
            f"{quote(str(k), safe=_SAFE)}:{quote(str(v), safe=_SAFE)}" for k, v in params.items()
        )
        path += "/" + pairs
    return path


def parse_str(value: Any) -> str | None:
    """A non-empty string, or None for ``""``/``null``/whitespace."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text or None


def parse_int(value: Any) -> int | None:
    """An int from ``"12"``, ``12``, ``"12.0"``; None for empty or garbage."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None
            return int(number) if math.isfinite(number) else None
    return None


def _from_timestamp(value: Any) -> dt.datetime | None:
    seconds = parse_int(value)
    # 0 is TalentLMS's "never" (e.g. expiration_date_timestamp), not 1970.
    if seconds is None or seconds <= 0:
        return None
    try:
        return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _from_text(value: Any, utc_offset: dt.timedelta) -> dt.datetime | None:
    text = parse_str(value)
    if text is None:
        return None
    for fmt in ("%d/%m/%Y, %H:%M:%S", "%d/%m/%Y, %H:%M", "%d/%m/%Y"):
        try:
            naive = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        return (naive - utc_offset).replace(tzinfo=dt.timezone.utc)
    if text.isdigit():
        # Some fields (start_datetime) carry a bare epoch instead of a formatted date.
        return _from_timestamp(text)
    return None


def parse_datetime(
    payload: Mapping[str, Any], field: str, *, utc_offset: dt.timedelta = dt.timedelta(0)
) -> dt.datetime | None:
    """The aware UTC datetime of ``payload[field]``, preferring ``payload[field + "_timestamp"]``.

    The formatted date is in the domain's time zone, which the API does not state; `utc_offset` is that
    zone's offset (UTC by default). The epoch sibling has no such ambiguity, hence the preference.
    """
    stamp = _from_timestamp(payload.get(f"{field}_timestamp"))
    if stamp is not None:
        return stamp
    return _from_text(payload.get(field), utc_offset)


def days_from_minutes(minutes: int) -> int:
    """TalentLMS keeps course time limits in whole days: round minutes up (1 → 1, 1440 → 1, 1441 → 2)."""
    return -(-minutes // _MINUTES_PER_DAY)


def error_of(body: Any) -> tuple[str | None, str | None]:
    """(type, message) of a TalentLMS error body, or (None, None) if `body` is not one.

    v1 sends ``{"error": {"type": ..., "message": ...}}``; v2's docs also show the pair at the top
    level, so both are read.
    """
    if not isinstance(body, Mapping):
        return None, None
    inner = body.get("error")
    if isinstance(inner, Mapping):
        return parse_str(inner.get("type")), parse_str(inner.get("message"))
    if isinstance(inner, str):
        return None, parse_str(inner)
    if "message" in body and body.get("type") in ("invalid_request_error", "api_error"):
        return parse_str(body.get("type")), parse_str(body.get("message"))
    return None, None
