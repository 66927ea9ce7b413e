"""Typed inputs and results of the four unified actions.

Inputs are frozen attrs classes validated on construction; `structure_action` also accepts a plain dict
of the same shape and turns any problem into `InvalidInput` naming the field path, before any remote call.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal, TypeVar, Union

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError

from ._converters import make_converter
from ._errors import InvalidInput
from ._models import CourseType

__all__ = [
    "ACTIONS",
    "MAX_DURATION_MINUTES",
    "MAX_ID_LENGTH",
    "MAX_REMOTE_ID_LENGTH",
    "ActionName",
    "ActionResult",
    "CompleteCourse",
    "CourseInput",
    "DeactivateCourse",
    "EnrollUser",
    "ItemError",
    "ItemResult",
    "ItemStatus",
    "UpsertCourseItem",
    "UpsertCourses",
    "structure_action",
]

ActionName = Literal["upsert_courses", "deactivate_course", "enroll_user", "complete_course"]

# Bounds every action input is held to before any remote call (docs/guide.md, "Input limits").
# An id: ours (base32 of connector + vendor id) or "remote:<vendor id>"; no vendor's ids come near it.
MAX_ID_LENGTH: Final = 512
# A vendor id inside an id (after "remote:", or decoded from ours).
MAX_REMOTE_ID_LENGTH: Final = 256
# A course duration, in minutes: ten years. Connectors declare tighter bounds of their own
# (`Connector.max_duration_minutes`).
MAX_DURATION_MINUTES: Final = 10 * 365 * 24 * 60
# completed_at: vendors store Unix timestamps; a date before 1970 or from 2100 on is a mistake.
EARLIEST_DATE: Final = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
LATEST_DATE: Final = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)
# NUL (truncates strings in C-based stacks, refused by PostgreSQL) and lone surrogates (cannot be
# encoded as UTF-8, so cannot be sent at all).
_UNSENDABLE = re.compile("[\x00\ud800-\udfff]")

_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")
_v = attrs.validators


def _non_blank(inst: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value.strip():
        raise ValueError(f"{attribute.name} must not be empty")


def _languages(inst: object, attribute: attrs.Attribute[Any], value: tuple[str, ...] | None) -> None:
    for code in value or ():
        if not _LANGUAGE.match(code):
            raise ValueError(
                f"languages: {code!r} is not a BCP 47 code like 'en' or 'de-CH' (ll or ll-CC)"
            )


def _url(inst: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not re.match(r"^https?://\S+$", value):
        raise ValueError(f"{attribute.name}: {value!r} is not an absolute http(s) URL")


@attrs.frozen(kw_only=True)
class CourseInput:
    """The course of an upsert item. ``duration`` is in minutes."""

    title: str = attrs.field(validator=[_v.instance_of(str), _non_blank])
    type: CourseType = attrs.field(default=CourseType.EXTERNAL, validator=_v.in_([CourseType.EXTERNAL]))
    description: str | None = None
    course_url: str | None = attrs.field(default=None, validator=_url)
    thumbnail_url: str | None = attrs.field(default=None, validator=_url)
    duration: int | None = attrs.field(
        default=None, validator=_v.optional([_v.instance_of(int), _v.ge(0)])
    )
    languages: tuple[str, ...] | None = attrs.field(default=None, validator=_languages)


@attrs.frozen(kw_only=True)
class UpsertCourseItem:
    """One course to create or update; ``origin_id`` is your stable key for it."""

    origin_id: str = attrs.field(validator=[_v.instance_of(str), _non_blank])
    course: CourseInput


def _unique_origins(inst: object, attribute: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
    if not value:
        raise ValueError("items must contain at least one item")
    seen: set[str] = set()
    for index, item in enumerate(value):
        if not isinstance(item, UpsertCourseItem):
            raise TypeError(
                f"items[{index}] must be an UpsertCourseItem, got {type(item).__name__} "
                f"(or pass the whole input as a dict)"
            )
        if item.origin_id in seen:
            raise ValueError(f"items: origin_id {item.origin_id!r} appears twice (items[{index}])")
        seen.add(item.origin_id)


def _items(value: Iterable[UpsertCourseItem]) -> tuple[UpsertCourseItem, ...]:
    # A typed converter: with a bare `tuple`, mypy cannot type the `items` argument of __init__.
    return tuple(value)


@attrs.frozen(kw_only=True)
class UpsertCourses:
    """Create or update courses, matched by ``origin_id``.

    >>> UpsertCourses(items=(UpsertCourseItem(origin_id="c-1", course=CourseInput(title="Intro")),))
    """

    items: tuple[UpsertCourseItem, ...] = attrs.field(converter=_items, validator=_unique_origins)


@attrs.frozen(kw_only=True)
class DeactivateCourse:
    """Make a course unavailable for new enrolments (what that means per LMS: see its capabilities)."""

    course_id: str = attrs.field(validator=[_v.instance_of(str), _non_blank])


@attrs.frozen(kw_only=True)
class EnrollUser:
    """Enrol a user in a course revision."""

    user_id: str = attrs.field(validator=[_v.instance_of(str), _non_blank])
    course_revision_id: str = attrs.field(validator=[_v.instance_of(str), _non_blank])


def _aware_or_none(inst: object, attribute: attrs.Attribute[Any], value: dt.datetime | None) -> None:
    if value is not None and not isinstance(value, dt.datetime):
        raise TypeError(f"completed_at must be a datetime, got {type(value).__name__}")
    if value is not None and value.tzinfo is None:
        raise ValueError("completed_at must be timezone-aware (or an ISO string with an offset or Z)")


@attrs.frozen(kw_only=True)
class CompleteCourse:
    """Mark a progression complete; ``completed_at`` defaults to now, ``score`` is 0–100."""

    course_progression_id: str = attrs.field(validator=[_v.instance_of(str), _non_blank])
    completed_at: dt.datetime | None = attrs.field(default=None, validator=_aware_or_none)
    score: int | None = attrs.field(
        default=None, validator=_v.optional([_v.instance_of(int), _v.ge(0), _v.le(100)])
    )


Action = Union[UpsertCourses, DeactivateCourse, EnrollUser, CompleteCourse]
A = TypeVar("A", UpsertCourses, DeactivateCourse, EnrollUser, CompleteCourse)

ACTIONS: Final[dict[ActionName, type[Action]]] = {
    "upsert_courses": UpsertCourses,
    "deactivate_course": DeactivateCourse,
    "enroll_user": EnrollUser,
    "complete_course": CompleteCourse,
}


def action_fields(action: ActionName) -> tuple[str, ...]:
    """The input field paths of an action as the coverage tables spell them (``items.course.title``)."""
    if action == "upsert_courses":
        return ("items.origin_id", *tuple(f"items.course.{a.name}" for a in attrs.fields(CourseInput)))
    return tuple(a.name for a in attrs.fields(ACTIONS[action]))


_converter = make_converter()


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, OverflowError):
        # A date whose UTC form datetime cannot hold (year 1 at +05:00, year 9999 at -05:00).
        return f"is out of range ({exc}); dates must fall within 1970-01-01 .. 2099-12-31 (UTC)"
    # attrs validators raise ValueError/TypeError whose text already says what is wrong.
    if isinstance(exc, (ValueError, TypeError)) and str(exc) and not isinstance(exc, KeyError):
        return str(exc.args[0]) if exc.args else str(exc)
    if isinstance(exc, AttributeError) and attrs.has(type_):
        # cattrs reads an object's keys first: a string or number here fails with AttributeError.
        return f"expected an object (a dict) with the fields of {type_.__name__}"
    return cattrs.v.format_exception(exc, type_)


_LEADING_FIELD = re.compile(r"^'?([a-z_]+)'?(?::| must| appears)")


def _path_message(exc: BaseException) -> tuple[str, str]:
    """(field path, reason) of the first leaf error in a cattrs validation tree."""
    messages = cattrs.transform_error(exc, path="$", format_exception=_format)
    first = messages[0] if messages else str(exc)
    reason, _, path = first.rpartition(" @ ")
    reason = reason or first
    path = path.removeprefix("$").lstrip(".")
    extra = re.match(r"^extra fields found \((.+)\)$", reason)
    if extra:
        # Name the unexpected key itself, so `InvalidInput.field` points at what to remove.
        first_extra = extra.group(1).split(", ")[0]
        path = f"{path}.{first_extra}" if path else first_extra
        reason = f"unknown field(s) {extra.group(1)}"
    # A validator error is reported at its class; name the attribute it was about.
    match = _LEADING_FIELD.match(reason)
    if match and not path.endswith(match.group(1)) and not reason.startswith(f"{match.group(1)}["):
        path = f"{path}.{match.group(1)}" if path else match.group(1)
    return path or "(input)", reason


def structure_action(cls: type[A], value: A | Mapping[str, Any]) -> A:
    """The action input as `cls`, from an instance or a plain dict; `InvalidInput` names the bad field."""
    if isinstance(value, cls):
        # Construction runs the validators, but not every field has one (``description=123``,
        # ``score=True``); checking the instance in its dict form holds it to the same rules. Its
        # values are checked first: a date out of range would not even convert to UTC.
        reason, path = _unsendable(value, "")
        if reason:
            raise InvalidInput(f"invalid {cls.__name__} input: {path}: {reason}", field=path)
        value = _converter.unstructure(value)
    if not isinstance(value, Mapping):
        raise InvalidInput(
            f"{cls.__name__} input must be a {cls.__name__} or a dict of the same shape, "
            f"got {type(value).__name__}"
        )
    problem: InvalidInput | None = None
    try:
        structured: A = _converter.structure(dict(value), cls)
    except (ClassValidationError, ForbiddenExtraKeysError) as exc:
        path, reason = _path_message(exc)
        problem = InvalidInput(f"invalid {cls.__name__} input: {path}: {reason}", field=path)
    except (ValueError, TypeError) as exc:
        problem = InvalidInput(f"invalid {cls.__name__} input: {exc}")
    if problem is not None:
        # Raised outside the except blocks: the converter's exceptions (which quote the input) are
        # not kept as __context__.
        raise problem
    reason, path = _unsendable(structured, "")
    if reason:
        raise InvalidInput(f"invalid {cls.__name__} input: {path}: {reason}", field=path)
    return structured


def _unsendable(value: Any, path: str) -> tuple[str, str]:
    """(what is wrong, field path) for the first value no LMS can take; ("", "") when all are fine.

    Strings with NUL or lone surrogates, ids longer than `MAX_ID_LENGTH`, durations over
    `MAX_DURATION_MINUTES`, completion dates outside 1970-2099.
    """
    if attrs.has(type(value)):
        for attribute in attrs.fields(type(value)):
            inner = getattr(value, attribute.name)
            where = f"{path}.{attribute.name}" if path else attribute.name
            reason, at = _unsendable(inner, where)
            if reason:
                return reason, at
            name = attribute.name
            if isinstance(inner, str) and (name.endswith("_id") or name == "origin_id") and (
                len(inner) > MAX_ID_LENGTH
            ):
                return f"is {len(inner):,} characters long; an id has at most {MAX_ID_LENGTH}", where
            if name == "duration" and isinstance(inner, int) and inner > MAX_DURATION_MINUTES:
                return (
                    f"{inner} minutes is more than ten years ({MAX_DURATION_MINUTES:,} minutes); "
                    "give the duration in minutes",
                    where,
                )
            if isinstance(inner, dt.datetime) and not EARLIEST_DATE <= inner < LATEST_DATE:
                return f"{inner.isoformat()} is outside 1970-01-01 .. 2099-12-31 (UTC)", where
    elif isinstance(value, tuple):
        for index, item in enumerate(value):
            reason, at = _unsendable(item, f"{path}[{index}]")
            if reason:
                return reason, at
    elif isinstance(value, str):
        bad = _UNSENDABLE.search(value)
        if bad is not None:
            char = bad.group()
            kind = "a NUL character" if char == "\x00" else f"a lone surrogate (U+{ord(char):04X})"
            return (
                f"contains {kind} at position {bad.start()}, which no LMS can store; "
                "remove it (lone surrogates come from text decoded with errors='surrogateescape' or "
                "split emoji)",
                path,
            )
    return "", ""


class ItemStatus(str, enum.Enum):
    """What happened to one item of an action."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    ACCEPTED = "accepted"  # queued by the vendor; not visible yet
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@attrs.frozen(kw_only=True)
class ItemError:
    """Why an item failed: a stable ``code`` to branch on and a message that says what to do."""

    code: str
    message: str


@attrs.frozen(kw_only=True)
class ItemResult:
    """The outcome of one item. ``key`` is the origin_id or the input id the item was about."""

    key: str
    status: ItemStatus
    id: str | None = None
    remote_id: str | None = None
    error: ItemError | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not ItemStatus.FAILED


@attrs.frozen(kw_only=True)
class ActionResult:
    """Per-item outcome of an action; nothing is silently dropped."""

    action: ActionName
    items: tuple[ItemResult, ...]

    @classmethod
    def one(
        cls,
        action: ActionName,
        *,
        key: str,
        status: ItemStatus,
        id: str | None = None,
        remote_id: str | None = None,
        error: ItemError | None = None,
        detail: str = "",
    ) -> ActionResult:
        """The result of a single-item action (deactivate, enroll, complete, or one failed item)."""
        item = ItemResult(key=key, status=status, id=id, remote_id=remote_id, error=error, detail=detail)
        return cls(action=action, items=(item,))

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.items)

    @property
    def ids(self) -> tuple[str, ...]:
        """Unified ids of what was created or touched."""
        return tuple(item.id for item in self.items if item.id is not None)

    def item(self, key: str) -> ItemResult:
        for candidate in self.items:
            if candidate.key == key:
                return candidate
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "ok": self.ok,
            "items": [
                {
                    "key": i.key,
                    "status": i.status.value,
                    "id": i.id,
                    "remote_id": i.remote_id,
                    "error": attrs.asdict(i.error) if i.error else None,
                    "detail": i.detail,
                }
                for i in self.items
            ],
        }
