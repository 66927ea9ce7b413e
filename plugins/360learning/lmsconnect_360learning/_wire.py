"""360Learning API v2 payloads as typed classes, and the one converter that reads them.

Only the fields the connector uses are declared; the raw payload is kept in ``remote_data``. Field names
are those of 360Learning's OpenAPI files (``UserDTO``, ``CourseDTO``, ``IntegrationDTO``,
``CourseStatDTO``, the bulk operation), in snake case here and renamed on the wire by `make_wire_converter`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from lmsconnect import InvalidRemoteResponse
from lmsconnect.plugin import configure_converter, parse_datetime

__all__ = [
    "BulkOperationDTO",
    "CourseDTO",
    "CourseStatDTO",
    "IntegrationDTO",
    "UserDTO",
    "make_wire_converter",
    "structure",
]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class UserDTO:
    id: str
    status: str | None = None
    mail: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    # Every deletion and reactivation is kept, oldest first.
    deleted_at: tuple[dt.datetime, ...] = ()


@attrs.frozen(kw_only=True)
class IntegrationDTO:
    id: str
    external_platform: str


@attrs.frozen(kw_only=True)
class CourseDTO:
    id: str
    name: str | None = None
    description: str | None = None
    status: str | None = None
    type: str | None = None
    external_platform: str | None = None
    created_at: dt.datetime | None = None
    current_version_number: int | None = None


@attrs.frozen(kw_only=True)
class CourseStatDTO:
    """One attempt of one user at one course."""

    id: str
    course_id: str
    user_id: str
    progress: int = 0
    time_spent: int = 0
    first_activity_at: dt.datetime | None = None
    last_activity_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    score: int | None = None


@attrs.frozen(kw_only=True)
class BulkOperationDTO:
    id: str
    type: str
    status: str
    error_message: str | None = None


def _camel(name: str) -> str:
    if name == "id":
        return "_id"
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def make_wire_converter() -> cattrs.Converter:
    """The converter for 360Learning payloads. On top of the core's hooks (`configure_converter`) it:

    - renames every snake-case field to the API's camelCase, and ``id`` to ``_id``;
    - ignores fields it does not declare (the API adds fields; ``remote_data`` keeps them);
    - reads datetimes leniently: ``null`` or an empty string is ``None``.
    """
    converter = cattrs.Converter(forbid_extra_keys=False)
    configure_converter(converter)

    def optional_datetime(value: Any, _: Any) -> dt.datetime | None:
        return parse_datetime(value) if value not in (None, "") else None

    converter.register_structure_hook(dt.datetime | None, optional_datetime)
    for cls in (UserDTO, IntegrationDTO, CourseDTO, CourseStatDTO, BulkOperationDTO):
        renames = {a.name: override(rename=_camel(a.name)) for a in attrs.fields(cls)}
        converter.register_structure_hook(cls, make_dict_structure_fn(cls, converter, **renames))  # type: ignore[arg-type]
    return converter


_CONVERTER = make_wire_converter()


def structure(raw: Any, cls: type[T], where: str) -> T:
    """`raw` as `cls`; `InvalidRemoteResponse` naming the endpoint when it does not have the shape."""
    if not isinstance(raw, dict):
        raise InvalidRemoteResponse(f"{where} returned {type(raw).__name__} where an object was expected")
    try:
        return _CONVERTER.structure(raw, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        detail = (
            "; ".join(cattrs.transform_error(exc)) if isinstance(exc, cattrs.BaseValidationError) else exc
        )
        raise InvalidRemoteResponse(f"{where} returned an unexpected {cls.__name__}: {detail}") from None
