"""360Learning API v2 payloads as typed classes, and the one converter that reads them.

Only the fields the connector uses are declared; the raw payload is kept in ``remote_data``. Field names
are those of 360Learning's OpenAPI files (``UserDTO``, ``CourseDTO``, ``IntegrationDTO``,
``CourseStatDTO``, the bulk operation and its results, the OAuth token), in snake case here and renamed
on the wire by `make_wire_converter`. The connector structures every answer it reads with
`lmsconnect.plugin.structure_wire`, so an answer that does not fit is an `InvalidRemoteResponse` naming the
endpoint and the field.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Final, NewType

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from lmsconnect.plugin import make_converter as unified_converter
from lmsconnect.plugin import parse_datetime

__all__ = [
    "MAX_TOKEN_LIFETIME_S",
    "AccessTokenDTO",
    "BulkOperationDTO",
    "BulkResultDTO",
    "CourseDTO",
    "CourseStatDTO",
    "CourseTranslationDTO",
    "CustomFieldDTO",
    "CustomFieldValueDTO",
    "ExternalCourseDTO",
    "GroupDTO",
    "GroupRoleDTO",
    "IntegrationDTO",
    "PathStatDTO",
    "UserDTO",
    "is_remote_id",
    "make_wire_converter",
]

#: A token lifetime longer than a day is not believed (360Learning's last an hour); a 401 renews it anyway.
MAX_TOKEN_LIFETIME_S: Final = 86_400.0
# 360Learning ids are 24-hex ObjectIds; integration-made ids are the caller's. No blanks, no controls.
_ID: Final = re.compile(r"[^\s\x00-\x1f\x7f]{1,256}")
# RFC 6750 b64token: what a Bearer header may carry.
_TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]{1,4096}=*")

RemoteId = NewType("RemoteId", str)
PlatformName = NewType("PlatformName", str)
AccessToken = NewType("AccessToken", str)
Lifetime = NewType("Lifetime", float)
Percent = NewType("Percent", float)
Milliseconds = NewType("Milliseconds", float)
Minutes = NewType("Minutes", float)
RoleName = NewType("RoleName", str)


def is_remote_id(value: Any) -> bool:
    """Whether `value` can be a 360Learning id (a non-empty string of at most 256 visible characters)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _remote_id(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected an id string, got {type(value).__name__}")
    if not is_remote_id(value):
        raise ValueError("expected a non-empty id of at most 256 characters without blanks")
    return value


def _platform_name(value: Any, _: Any) -> str:
    # A provider is known by this name (and courses point at it by name): a 5 MB one is a broken answer.
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    if len(value) > 512:
        raise ValueError(f"a platform name of {len(value):,} characters, at most 512")
    return value


def _access_token(value: Any, _: Any) -> str:
    if not isinstance(value, str) or _TOKEN.fullmatch(value) is None:
        raise ValueError("expected an OAuth access token (RFC 6750 characters, at most 4096)")
    return value


def _lifetime(value: Any, _: Any) -> float:
    # The reference types expires_in as a number, its example shows a string: accept both.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"expected a number of seconds, got {type(value).__name__}")
    seconds = float(value) if not isinstance(value, str) or len(value) <= 40 else math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"expected a positive number of seconds, got {str(value)[:40]!r}")
    return min(max(seconds, 1.0), MAX_TOKEN_LIFETIME_S)


def _number(value: Any, low: float, high: float, unit: str) -> float:
    """A finite JSON number within low..high, or the TypeError/ValueError saying what it is instead."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number of {unit}, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"expected {low:g} to {high:g} {unit}, got {str(value)[:40]}")
    return number


def _percent(value: Any, _: Any) -> float:
    # The spec types progress and score as integers from 0 to 100; a 250 % is a broken answer.
    return _number(value, 0.0, 100.0, "percent")


def _milliseconds(value: Any, _: Any) -> float:
    # timeSpent is a number of milliseconds; a negative one (or one over a century) is a broken answer.
    return _number(value, 0.0, 100 * 365.25 * 86_400_000.0, "milliseconds")


def _minutes(value: Any, _: Any) -> float:
    # A course's estimated duration; 360Learning's own imports take at most 100,000 minutes, and a
    # course of more than a year of minutes is a broken answer.
    return _number(value, 0.0, 525_600.0, "minutes")


def _role_name(value: Any, _: Any) -> str:
    # A role is one word of 360Learning's list (admin, coach, ...); an unknown one is kept as sent, but
    # not a page of text.
    if not isinstance(value, str):
        raise TypeError(f"expected a role name, got {type(value).__name__}")
    if not 0 < len(value) <= 64:
        raise ValueError(f"expected a role name of 1 to 64 characters, got {len(value):,}")
    return value


@attrs.frozen(kw_only=True)
class AccessTokenDTO:
    """The answer of ``POST /api/v2/oauth2/token``."""

    access_token: AccessToken
    expires_in: Lifetime = Lifetime(3600.0)


@attrs.frozen(kw_only=True)
class UserDTO:
    id: RemoteId
    status: str | None = None
    mail: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    # The user's language, a code of 360Learning's list ("en", "nl_BE", ...).
    lang: str | None = None
    # The user's job title ("The role title of the user"), not a permission role.
    job: str | None = None
    # Every deletion and reactivation is kept, oldest first.
    deleted_at: tuple[dt.datetime, ...] = ()


@attrs.frozen(kw_only=True)
class GroupDTO:
    id: RemoteId


@attrs.frozen(kw_only=True)
class GroupRoleDTO:
    """One entry of ``GET /api/v2/groups/{groupId}/roles`` (the spec's ``UserRole``): a role a user
    holds in the group; a user holding several is listed once per role."""

    user_id: RemoteId
    role: RoleName


@attrs.frozen(kw_only=True)
class CustomFieldDTO:
    """A custom field definition (``GET /api/v2/custom-fields``); ``targetType`` is users or contents."""

    id: RemoteId
    name: str
    target_type: str | None = None


@attrs.frozen(kw_only=True)
class CustomFieldValueDTO:
    """One value of ``GET /api/v2/users/{userId}/custom-fields/values``: a string, or a date as a
    ``YYYY-MM-DD`` string (``type`` says which)."""

    custom_field_id: RemoteId
    value: str


@attrs.frozen(kw_only=True)
class PathStatDTO:
    """One learner's enrollment in one path session (``GET /api/v2/paths/stats``)."""

    session_id: RemoteId
    user_id: RemoteId
    due_date: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class IntegrationDTO:
    id: RemoteId
    external_platform: PlatformName


@attrs.frozen(kw_only=True)
class CourseTranslationDTO:
    """One language a course is translated into; ``published`` when learners can take it in it."""

    lang: str
    published: bool = False


@attrs.frozen(kw_only=True)
class CourseDTO:
    """A course. ``type`` is required (the spec's ``CourseDTO`` requires it); ``externalPlatform`` is set
    exactly when ``type`` is ``external`` (research note), so an external course without it is a broken
    answer, not a course without a provider: read as "no provider", its provider looked deleted.
    """

    id: RemoteId
    type: str
    name: str | None = None
    description: str | None = None
    status: str | None = None
    external_platform: PlatformName | None = None
    created_at: dt.datetime | None = None
    # Not moved by a translation update nor by archiving/restoring (the spec says so).
    modified_at: dt.datetime | None = None
    current_version_number: int | None = None
    source_lang: str | None = None
    default_lang: str | None = None
    translations: tuple[CourseTranslationDTO, ...] = ()
    duration: Minutes | None = None

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages learners can take the course in: the default one, the one it was written in,
        then its published translations (each once)."""
        langs = [self.default_lang, self.source_lang, *(t.lang for t in self.translations if t.published)]
        return tuple(dict.fromkeys(lang for lang in langs if lang))

    def __attrs_post_init__(self) -> None:
        if self.type == "external" and not self.external_platform:
            raise ValueError("externalPlatform: an external course must name its platform")


@attrs.frozen(kw_only=True)
class CourseStatDTO:
    """One attempt of one user at one course."""

    id: RemoteId
    course_id: RemoteId
    user_id: RemoteId
    # Percentages, 0 to 100 (the spec's bounds; outside them the answer is refused).
    progress: Percent = Percent(0.0)
    time_spent: Milliseconds = Milliseconds(0.0)
    first_activity_at: dt.datetime | None = None
    last_activity_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    score: Percent | None = None
    # Set when the course was played inside a path session.
    path_session_id: RemoteId | None = None


@attrs.frozen(kw_only=True)
class BulkOperationDTO:
    id: RemoteId
    type: str
    status: str
    error_message: str | None = None


@attrs.frozen(kw_only=True)
class BulkResultDTO:
    """One entry of ``GET /api/v2/bulk/operations/{id}/results``."""

    status: str | None = None
    error_message: str | None = None
    resource_id: RemoteId | None = None
    input: dict[str, Any] | None = None

    @property
    def external_id(self) -> str | None:
        """The ``externalId`` of the item this entry reports on, when it is a string."""
        found = (self.input or {}).get("externalId")
        return found if isinstance(found, str) else None


@attrs.frozen(kw_only=True)
class ExternalCourseDTO:
    """``GET /api/v2/integrations/{id}/courses/{externalId}``: the course an integration imported."""

    course_id: RemoteId | None = None


def _camel(name: str) -> str:
    if name in ("access_token", "expires_in"):
        return name  # OAuth's own names
    if name == "id":
        return "_id"
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def make_wire_converter() -> cattrs.Converter:
    """The converter for 360Learning payloads. On top of the core's hooks (`configure_converter`) it:

    - renames every snake-case field to the API's camelCase, and ``id`` to ``_id``;
    - ignores fields it does not declare (the API adds fields; ``remote_data`` keeps them);
    - reads datetimes leniently: ``null`` or an empty string is ``None``;
    - checks ids (`RemoteId`: a non-empty string of visible characters, at most 256), external platform
      names (`PlatformName`: at most 512 characters, since providers are known by them), access tokens
      (`AccessToken`: RFC 6750 characters, so none can break a header) and token lifetimes (`Lifetime`:
      a positive number or numeric string, at most `MAX_TOKEN_LIFETIME_S`);
    - bounds numbers: `Percent` (progress, score) 0 to 100, `Milliseconds` (timeSpent) and `Minutes`
      (a course's duration) finite and not negative; outside them the answer is refused.
    """
    converter = unified_converter(forbid_extra_keys=False)
    converter.register_structure_hook(RemoteId, _remote_id)
    converter.register_structure_hook(AccessToken, _access_token)
    converter.register_structure_hook(PlatformName, _platform_name)
    converter.register_structure_hook(Lifetime, _lifetime)
    converter.register_structure_hook(Percent, _percent)
    converter.register_structure_hook(Milliseconds, _milliseconds)
    converter.register_structure_hook(Minutes, _minutes)
    converter.register_structure_hook(RoleName, _role_name)

    def optional_datetime(value: Any, _: Any) -> dt.datetime | None:
        return parse_datetime(value) if value not in (None, "") else None

    converter.register_structure_hook(dt.datetime | None, optional_datetime)
    for cls in (
        AccessTokenDTO,
        UserDTO,
        GroupDTO,
        GroupRoleDTO,
        CustomFieldDTO,
        CustomFieldValueDTO,
        PathStatDTO,
        IntegrationDTO,
        CourseTranslationDTO,
        CourseDTO,
        CourseStatDTO,
        BulkOperationDTO,
        BulkResultDTO,
        ExternalCourseDTO,
    ):
        renames = {a.name: override(rename=_camel(a.name)) for a in attrs.fields(cls)}
        converter.register_structure_hook(cls, make_dict_structure_fn(cls, converter, **renames))  # type: ignore[arg-type]
    return converter
