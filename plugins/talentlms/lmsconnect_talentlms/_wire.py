"""TalentLMS v1 wire format: path-style URLs, the typed records of its answers, error bodies.

TalentLMS v1 is loose about types (see the research note): ids and numbers arrive as strings or ints,
empty values as ``""`` or ``null``, dates as ``dd/mm/yyyy, HH:MM:SS`` next to an epoch ``*_timestamp``
sibling that is sometimes a string, sometimes an int, sometimes ``""``. The value readers here accept
every one of those, and "empty" means None. They do not accept garbage: a list where a name belongs, a
word where a number belongs, an id that is not an integer, a date in the year 30,000. `make_wire_converter`
turns each answer into its typed record (`UserRow`, `CourseRow`, `CourseDetail`, ...) through those
readers, and `lmsconnect.plugin.structure_wire` makes any misfit an `InvalidRemoteResponse` naming the
endpoint and the field: a record that cannot be read fails the read instead of vanishing from it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any, Final, NewType
from urllib.parse import quote

import attrs
import cattrs
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn, override

from lmsconnect.plugin import make_converter as unified_converter

__all__ = [
    "MAX_NUMBER",
    "CategoryRow",
    "Code",
    "CourseDetail",
    "CourseRevisionRow",
    "CourseRow",
    "CourseUnits",
    "CreatedCourse",
    "CustomFieldRow",
    "EnrolledUser",
    "RateLimitRow",
    "Role",
    "RoleRow",
    "Text",
    "UnitRow",
    "UserRow",
    "build_path",
    "date_text",
    "days_from_minutes",
    "error_of",
    "is_talent_id",
    "make_wire_converter",
    "minutes_from_days",
    "non_negative",
    "number",
    "parse_str",
    "percentage",
    "role",
    "stamp",
    "talent_id",
    "text",
    "time_text",
    "url",
]

_MINUTES_PER_DAY: Final = 24 * 60
# Characters TalentLMS's path parser treats as separators must be escaped inside values; "@" stays
# readable (emails), as every client library sends it.
_SAFE: Final = "@._-~"
#: Largest number accepted in an answer (ids aside): far above any count, epoch or day count TalentLMS has.
MAX_NUMBER: Final = 10**12
_MAX_NUMBER_CHARS: Final = 40
# TalentLMS ids are MySQL integers (at most 20 digits unsigned); 18 keeps them exact everywhere.
_MAX_ID_DIGITS: Final = 18
# A course code holds an origin_id: as long as an id may be (the core's bound on ids a caller gives).
_MAX_CODE_CHARS: Final = 512
# 9999-12-31T23:59:59Z: the last second a datetime can hold.
_MAX_EPOCH: Final = 253_402_300_799
# Longer than any URL a browser keeps; a 5 MB "thumbnail" is a broken answer.
_MAX_URL_CHARS: Final = 4096
# TalentLMS numbers custom fields custom_field_1 .. custom_field_20 (the reference: "XXX is the index").
_CUSTOM_FIELD: Final = re.compile(r"custom_field_[0-9]{1,4}")
# total_time as TalentLMS writes it: "7m 31s", "1h 5m 3s" (a day part is allowed, never seen).
_TIME_TEXT: Final = re.compile(
    r"(?:(?P<d>[0-9]{1,6})d)?\s*(?:(?P<h>[0-9]{1,7})h)?\s*(?:(?P<m>[0-9]{1,9})m)?\s*(?:(?P<s>[0-9]{1,11})s)?"
)

# Field types of the wire records; each has its reader registered in `make_wire_converter`.
TalentId = NewType("TalentId", str)
Text = NewType("Text", str)
Role = NewType("Role", str)
Code = NewType("Code", str)
Number = NewType("Number", int)
Percentage = NewType("Percentage", int)
Stamp = NewType("Stamp", dt.datetime)
DateText = NewType("DateText", dt.datetime)
NonNegative = NewType("NonNegative", Number)  # a Number that is never negative
TimeText = NewType("TimeText", int)
Url = NewType("Url", str)


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


def _number(value: Any) -> int | None:
    """An integer from ``12``, ``"12"``, ``"12.0"``, ``" 7 "``; None for ``""``/``null``; else ValueError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"expected a number or a numeric string, got {type(value).__name__}")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if len(text) > _MAX_NUMBER_CHARS:
            raise ValueError(f"a number of {len(text)} characters")
        try:
            return _bounded(int(text))
        except ValueError:
            value = float(text)  # ValueError for garbage, which is what we want
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        value = int(value) if abs(value) <= MAX_NUMBER else MAX_NUMBER + 1
    return _bounded(value)


def _bounded(number: int) -> int:
    if abs(number) > MAX_NUMBER:
        raise ValueError(f"{str(number)[:20]}... is out of range (at most {MAX_NUMBER})")
    return number


def number(value: Any) -> int | None:
    """A TalentLMS number (int or numeric string, ``""``/``null`` for none), bounded; ValueError otherwise.

    >>> number("12"), number(12), number("12.0"), number("")
    (12, 12, 12, None)
    """
    return _number(value)


def percentage(value: Any) -> int | None:
    """A completion percentage: a `number` from 0 to 100."""
    result = _number(value)
    if result is not None and not 0 <= result <= 100:
        raise ValueError(f"a percentage of {result}, expected 0 to 100")
    return result


def non_negative(value: Any) -> int | None:
    """A `number` of at least 0, e.g. seconds or days (a negative time is a broken answer)."""
    result = _number(value)
    if result is not None and result < 0:
        raise ValueError(f"{result}, expected 0 or more")
    return result


def time_text(value: Any) -> int | None:
    """Seconds of a ``total_time`` text such as ``"1h 5m 3s"``; None for ``""``/``null``/no digits.

    >>> time_text("1h 5m 3s"), time_text("7m 31s"), time_text("")
    (3903, 451, None)
    """
    shown = text(value)
    if shown is None or not any(c.isdigit() for c in shown):
        return None
    match = _TIME_TEXT.fullmatch(shown)
    if match is None:
        raise ValueError(f"{shown[:40]!r} is not a time like '1h 5m 3s'")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    total = parts.get("d", 0) * 86_400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)
    return _bounded(total)


def url(value: Any) -> str | None:
    """An http(s) URL (`text`), at most 4,096 characters; anything else (``javascript:``...) is an error."""
    result = text(value)
    if result is None:
        return None
    if len(result) > _MAX_URL_CHARS or not result.lower().startswith(("https://", "http://")):
        raise ValueError(f"expected an http(s) URL of at most {_MAX_URL_CHARS:,} chars, got {result[:40]!r}")
    return result


def custom_fields(raw: Mapping[str, Any]) -> dict[str, str] | None:
    """The ``custom_field_N`` entries of a payload with a value, by key; None when it has none at all.

    Checkbox fields arrive as ``"on"``/``"off"`` and are kept as text; empty values are left out.
    """
    keys = [k for k in raw if isinstance(k, str) and _CUSTOM_FIELD.fullmatch(k)]
    if not keys:
        return None
    found: dict[str, str] = {}
    for key in keys:
        try:
            value = text(raw[key])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{key}: {exc}") from None
        if value is not None:
            found[key] = value
    return found


def talent_id(value: Any) -> str:
    """A TalentLMS id: a non-negative integer, sent as an int or a string of digits; ValueError otherwise.

    Unlike other values, an id is never "missing": a record whose id cannot be read cannot be told apart
    from another, so it must not be guessed at or dropped.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"expected an integer id, got {type(value).__name__}")
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_ID_DIGITS:
        raise ValueError(f"expected an integer id of at most {_MAX_ID_DIGITS} digits")
    return text


def is_talent_id(value: str) -> bool:
    """Whether `value` (an id the caller gave) can be a TalentLMS id."""
    try:
        talent_id(value)
    except (TypeError, ValueError):
        return False
    return True


def text(value: Any) -> str | None:
    """A string value, stripped; None for ``""``/``null``/whitespace; numbers become their text."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"expected a string, got {value!r}")
    return str(value).strip() or None


#: The roles a user can have in a course (the v1 reference: ``addusertocourse``'s ``role`` argument).
_ROLES: Final = frozenset({"learner", "instructor"})


def role(value: Any) -> str:
    """A user's role in a course, lower-cased: ``learner`` or ``instructor``; an error for anything else.

    The role decides whether an enrolment is a progression, so it is never guessed: a missing role or a
    number read as "not instructor" turned a trainer into a learner for one sync and a deletion the next.
    """
    if not isinstance(value, str):
        raise TypeError(f"expected 'learner' or 'instructor', got {type(value).__name__}")
    result = value.strip().lower()
    if result not in _ROLES:
        raise ValueError(f"expected 'learner' or 'instructor', got {value[:40]!r}")
    return result


def code(value: Any) -> str | None:
    """A course code (where upsert_courses keeps origin_id): `text` of at most 512 characters.

    The code identifies a course to upsert_courses; a 5 MB one is not a code but a broken answer.
    """
    result = text(value)
    if result is not None and len(result) > _MAX_CODE_CHARS:
        raise ValueError(f"a code of {len(result):,} characters, at most {_MAX_CODE_CHARS}")
    return result


def parse_str(value: Any) -> str | None:
    """Like `text`, but None instead of an error (for error bodies, read only to quote them)."""
    try:
        return text(value)
    except (TypeError, ValueError):
        return None


def stamp(value: Any) -> dt.datetime | None:
    """The aware UTC datetime of an epoch ``*_timestamp`` value; None for ``""``/``null``/``0`` ("never")."""
    seconds = _number(value)
    # 0 is TalentLMS's "never" (e.g. expiration_date_timestamp), not 1970.
    if seconds is None or seconds == 0:
        return None
    if not 0 < seconds <= _MAX_EPOCH:
        raise ValueError(f"epoch seconds {seconds} are out of range")
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


def date_text(value: Any, utc_offset: dt.timedelta = dt.timedelta(0)) -> dt.datetime | None:
    """The aware UTC datetime of a formatted date (``dd/mm/yyyy, HH:MM:SS`` in the domain's time zone).

    None for ``""``/``null`` and for words without a digit (TalentLMS writes ``Never``); a bare epoch is
    read as one (``start_datetime``); anything else with digits that is not a date is a ValueError.
    """
    shown = text(value)
    if shown is None or not any(c.isdigit() for c in shown):
        return None
    if shown.isdigit():
        return stamp(shown)
    for fmt in ("%d/%m/%Y, %H:%M:%S", "%d/%m/%Y, %H:%M", "%d/%m/%Y"):
        try:
            naive = dt.datetime.strptime(shown, fmt)
        except ValueError:
            continue
        return (naive - utc_offset).replace(tzinfo=dt.timezone.utc)  # OverflowError at year 1 or 9999
    raise ValueError(f"{shown[:40]!r} is not a dd/mm/yyyy date")


def days_from_minutes(minutes: int) -> int:
    """TalentLMS keeps course time limits in whole days: round minutes up (1 → 1, 1440 → 1, 1441 → 2)."""
    return -(-minutes // _MINUTES_PER_DAY)


def minutes_from_days(days: int | None) -> int | None:
    """A `time_limit` in days as minutes (1 → 1440); None for no limit (0 or missing)."""
    return days * _MINUTES_PER_DAY if days else None


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


# -- the typed records of TalentLMS answers --------------------------------------------------------------


@attrs.frozen(kw_only=True)
class UserRow:
    """An entry of ``GET /v1/users``."""

    id: TalentId
    first_name: Text | None = None
    last_name: Text | None = None
    email: Text | None = None
    status: Text | None = None
    created_on: DateText | None = None
    login: Text | None = None
    user_type: Text | None = None
    language: Text | None = None
    timezone: Text | None = None
    last_updated: DateText | None = None
    last_updated_timestamp: Stamp | None = None
    #: The ``custom_field_N`` keys with a value (None: the payload has no custom field keys at all).
    custom_fields: dict[str, str] | None = None

    @property
    def updated_at(self) -> dt.datetime | None:
        return self.last_updated_timestamp or self.last_updated


@attrs.frozen(kw_only=True)
class CourseRow:
    """An entry of ``GET /v1/courses`` (and the head of a course detail, or a created course)."""

    id: TalentId
    code: Code | None = None
    name: Text | None = None
    description: Text | None = None
    status: Text | None = None
    creation_date: DateText | None = None
    time_limit: Number | None = None


@attrs.frozen(kw_only=True)
class CourseRevisionRow(CourseRow):
    """An entry of ``GET /v1/courses`` read for a course revision: the course and its descriptive fields.

    Apart from `CourseRow` so that an odd value in a field only revisions show (a course image that is
    not a URL) fails the read of revisions, not the reads of courses and progressions or an upsert.
    """

    time_limit: NonNegative | None = None
    category_id: Number | None = None
    last_update_on: DateText | None = None
    avatar: Url | None = None
    big_avatar: Url | None = None


@attrs.frozen(kw_only=True)
class EnrolledUser:
    """An entry of a course detail's ``users``: one enrolled user's role and completion."""

    id: TalentId
    role: Role
    completion_percentage: Percentage | None = None
    enrolled_on: DateText | None = None
    enrolled_on_timestamp: Stamp | None = None
    completed_on: DateText | None = None
    completed_on_timestamp: Stamp | None = None
    expired_on: DateText | None = None
    expired_on_timestamp: Stamp | None = None
    total_time: TimeText | None = None
    total_time_seconds: NonNegative | None = None

    @property
    def time_spent(self) -> int | None:
        """Seconds in the course: ``total_time_seconds``, else ``total_time`` read ("1h 5m 3s")."""
        return self.total_time_seconds if self.total_time_seconds is not None else self.total_time

    # The epoch sibling has no time-zone ambiguity, hence the preference.
    @property
    def enrolled_at(self) -> dt.datetime | None:
        return self.enrolled_on_timestamp or self.enrolled_on

    @property
    def completed_at(self) -> dt.datetime | None:
        return self.completed_on_timestamp or self.completed_on

    @property
    def expired_at(self) -> dt.datetime | None:
        return self.expired_on_timestamp or self.expired_on


@attrs.frozen(kw_only=True)
class CourseDetail:
    """``GET /v1/courses/id:N``: the users enrolled in the course (the rest is not read).

    ``users`` is required: TalentLMS sends ``[]`` for a course nobody is enrolled in, so an answer without
    the list is broken, and reading it as "no enrolments" would look like every progression was deleted.
    """

    users: list[EnrolledUser]


@attrs.frozen(kw_only=True)
class UnitRow:
    """An entry of a course detail's ``units``: a piece of content, or a ``Section`` heading.

    TalentLMS lists units flat, in the course's order; a ``Section`` unit heads the units after it.
    """

    id: TalentId
    type: Text | None = None
    name: Text | None = None
    url: Text | None = None


@attrs.frozen(kw_only=True)
class CourseUnits:
    """``GET /v1/courses/id:N`` read for its content: the ``units`` list.

    ``units`` is required for the same reason as `CourseDetail.users`: an answer without it is broken,
    and reading it as "no content" would delete every item of the course.
    """

    units: list[UnitRow]


@attrs.frozen(kw_only=True)
class CategoryRow:
    """An entry of ``GET /v1/categories``."""

    id: TalentId
    name: Text | None = None
    parent_category_id: Number | None = None


@attrs.frozen(kw_only=True)
class CustomFieldRow:
    """An entry of ``GET /v1/getcustomregistrationfields``: a custom user field's key and name."""

    key: Text | None = None
    name: Text | None = None


@attrs.frozen(kw_only=True)
class CreatedCourse:
    """The answer of ``POST /v1/createcourse``."""

    id: TalentId
    time_limit: Number | None = None


@attrs.frozen(kw_only=True)
class RoleRow:
    """An answer carrying a user's role in a course (``addusertocourse``, ``getuserstatusincourse``)."""

    role: Role | None = None


@attrs.frozen(kw_only=True)
class RateLimitRow:
    """``GET /v1/ratelimit``."""

    limit: Number | None = None
    remaining: Number | None = None
    reset: Number | None = None


def _rows(value: Any, converter: cattrs.Converter, cls: type[Any], name: str) -> list[Any]:
    """A list of `cls` from a list of objects (and nothing else), each misfit named ``name[index]``."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise TypeError("expected a list of objects")
    rows, errors = [], []
    for index, item in enumerate(value):
        try:
            rows.append(converter.structure(item, cls))
        except (cattrs.BaseValidationError, ValueError, TypeError, OverflowError) as exc:
            # The note cattrs' own list hook adds, so the message names e.g. users[index].
            note = IterableValidationNote(f"Structuring {name} @ index {index}", index, cls)
            setattr(exc, "__notes__", [*getattr(exc, "__notes__", []), note])  # noqa: B010 - 3.10 typing
            errors.append(exc)
    if errors:
        raise IterableValidationError(f"While structuring {name}", errors, list)
    return rows


def make_wire_converter(*, utc_offset: dt.timedelta = dt.timedelta(0)) -> cattrs.Converter:
    """The converter for TalentLMS answers. On top of the core's hooks (`configure_converter`) it:

    - reads `TalentId` with `talent_id`, `Text` with `text`, `Role` with `role`, `Code` with `code`,
      `Number` with `number`, `Percentage` with `percentage`, `Stamp` with `stamp` and `DateText` with
      `date_text` in `utc_offset` (the domain's time zone, which the API does not state);
    - ignores fields a record does not declare (``remote_data`` keeps the raw answer);
    - reads `NonNegative` with `non_negative`, `TimeText` with `time_text` and `Url` with `url`;
    - reads ``list[EnrolledUser]`` and ``list[UnitRow]`` from a list of objects and nothing else (not
      ``null``, not an object);
    - fills `UserRow.custom_fields` from the payload's ``custom_field_N`` keys (`custom_fields`).
    """
    converter = unified_converter(forbid_extra_keys=False)
    converter.register_structure_hook(TalentId, lambda v, _: talent_id(v))
    converter.register_structure_hook(Text, lambda v, _: text(v))
    converter.register_structure_hook(Role, lambda v, _: role(v))
    converter.register_structure_hook(Code, lambda v, _: code(v))
    converter.register_structure_hook(Number, lambda v, _: number(v))
    converter.register_structure_hook(Percentage, lambda v, _: percentage(v))
    converter.register_structure_hook(Stamp, lambda v, _: stamp(v))
    converter.register_structure_hook(DateText, lambda v, _: date_text(v, utc_offset))
    converter.register_structure_hook(NonNegative, lambda v, _: non_negative(v))
    converter.register_structure_hook(TimeText, lambda v, _: time_text(v))
    converter.register_structure_hook(Url, lambda v, _: url(v))
    converter.register_structure_hook_func(
        lambda t: t == list[EnrolledUser], lambda v, _: _rows(v, converter, EnrolledUser, "users")
    )
    converter.register_structure_hook_func(
        lambda t: t == list[UnitRow], lambda v, _: _rows(v, converter, UnitRow, "units")
    )
    records = (
        CourseRow, CourseRevisionRow, EnrolledUser, CourseDetail, CreatedCourse, RoleRow, RateLimitRow,
        UnitRow, CourseUnits, CategoryRow, CustomFieldRow,
    )  # fmt: skip
    for cls in records:
        converter.register_structure_hook(cls, make_dict_structure_fn(cls, converter))
    user_row = make_dict_structure_fn(UserRow, converter, custom_fields=override(omit=True))

    def structure_user(value: Any, _: Any) -> UserRow:
        return attrs.evolve(user_row(value, UserRow), custom_fields=custom_fields(value))

    converter.register_structure_hook(UserRow, structure_user)
    return converter
