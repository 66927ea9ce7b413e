"""What Moodle's web-service functions answer, as typed wire records: nothing unvalidated reaches a model.

Each record lists only the keys the connector reads; Moodle's other keys are allowed (they vary by
version, settings and the token's capabilities) and stay in ``remote_data`` as Moodle sent them. The
connector turns answers into records with ``lmsconnect.plugin.structure_wire`` (`CONVERTER`), so a value
that does not fit raises ``InvalidRemoteResponse`` naming the function and the field.

`make_converter` registers, on top of the unified hooks (strict ``str`` and ``int``, lists checked up to
their first misfit):

- `Id`: a Moodle record id, an integer 1 ≤ id < 2**63 (Moodle's ids are positive BIGINTs);
- `UnixTime`: seconds since 1970 as Moodle writes its ``time*`` fields, 0 ≤ t ≤ 253402300799 (the last
  second of year 9999, the largest a datetime holds); 0 means "never";
- `Flag`: Moodle's booleans, ``true``/``false`` (PARAM_BOOL) or ``0``/``1`` (PARAM_INT, as
  ``visible`` and ``enablecompletion`` come from ``core_course_get_courses``);
- `Number`: a finite JSON number (PARAM_FLOAT, sent as an integer when whole);
- `Percent`: a `Number` from 0 to 100 (the ``progress`` Moodle computes as a share of activities).

The shapes follow the real recordings in ``fixtures/moodle-5``; `tests/test_moodle_wire.py` structures
every recording of every function the connector calls.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Final, NewType

import attrs
import cattrs

from lmsconnect.plugin import make_converter as unified_converter

__all__ = [
    "CONVERTER",
    "MAX_ID",
    "MAX_UNIX_TIME",
    "CategoryWire",
    "CompetencyWire",
    "CompletionStatusWire",
    "CourseCompetencyWire",
    "CourseWire",
    "CoursesByFieldWire",
    "CreatedCourseWire",
    "CustomFieldWire",
    "EnrolledCourseWire",
    "EnrolledUserWire",
    "ExceptionWire",
    "Flag",
    "FrameworkWire",
    "GradeItemWire",
    "GradeItemsWire",
    "Id",
    "ModuleWire",
    "Number",
    "OverrideWire",
    "Percent",
    "SectionWire",
    "SiteInfoWire",
    "UnixTime",
    "UpdateCoursesWire",
    "UserCourseWire",
    "UserWire",
    "UsersWire",
    "WarningWire",
    "make_converter",
    "timestamp",
]

MAX_ID: Final = 2**63 - 1
MAX_UNIX_TIME: Final = 253402300799

Id = NewType("Id", int)
UnixTime = NewType("UnixTime", int)
Flag = NewType("Flag", bool)
Number = NewType("Number", float)
Percent = NewType("Percent", float)


def timestamp(value: int | None) -> dt.datetime | None:
    """A validated `UnixTime` as an aware UTC datetime; 0 and None (never) as None."""
    return dt.datetime.fromtimestamp(value, dt.timezone.utc) if value else None


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _id(value: Any, _: Any) -> Id:
    if not 1 <= _integer(value) <= MAX_ID:
        raise ValueError(f"a Moodle id is a positive integer below 2**63, got {value}")
    return Id(value)


def _unix_time(value: Any, _: Any) -> UnixTime:
    if not 0 <= _integer(value) <= MAX_UNIX_TIME:
        raise ValueError(f"a Unix time is between 0 and {MAX_UNIX_TIME} (year 9999), got {value}")
    return UnixTime(value)


def _flag(value: Any, _: Any) -> Flag:
    if isinstance(value, bool):
        return Flag(value)
    if isinstance(value, int) and value in (0, 1):
        return Flag(bool(value))
    raise TypeError(f"expected true/false or 0/1, got {value!r:.40}")


def _number(value: Any, _: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    try:
        result = float(value)
    except OverflowError:
        raise ValueError("the number is too large") from None
    if not math.isfinite(result):
        raise ValueError(f"expected a finite number, got {result}")
    return Number(result)


def _percent(value: Any, _: Any) -> Percent:
    result = _number(value, _)
    if not 0 <= result <= 100:
        raise ValueError(f"a percentage is between 0 and 100, got {result}")
    return Percent(result)


def make_converter() -> cattrs.Converter:
    """The Moodle wire converter: the unified hooks plus `Id`, `UnixTime`, `Flag`, `Number` and `Percent`.

    Extra keys are allowed: Moodle adds keys by version and by the caller's capabilities.
    """
    converter = unified_converter(forbid_extra_keys=False)
    converter.register_structure_hook(Id, _id)
    converter.register_structure_hook(UnixTime, _unix_time)
    converter.register_structure_hook(Flag, _flag)
    converter.register_structure_hook(Number, _number)
    converter.register_structure_hook(Percent, _percent)
    return converter


CONVERTER: Final = make_converter()

_frozen = attrs.frozen(kw_only=True)


# -- the exception body and warnings -------------------------------------------------------------------


@_frozen
class ExceptionWire:
    """``{"exception", "errorcode", "message"}`` (+ ``debuginfo`` with debugging on), always HTTP 200."""

    exception: str
    errorcode: str = ""
    message: str = ""
    debuginfo: str | None = None


@_frozen
class WarningWire:
    """One entry of a ``warnings`` array (``external_warnings``)."""

    warningcode: str
    message: str
    item: str | None = None
    itemid: int | None = None


# -- site ----------------------------------------------------------------------------------------------


@_frozen
class SiteFunctionWire:
    name: str


@_frozen
class SiteInfoWire:
    """``core_webservice_get_site_info``: who the token is and which functions its service allows."""

    userid: Id
    functions: list[SiteFunctionWire]


# -- users ---------------------------------------------------------------------------------------------


@_frozen
class CustomFieldWire:
    """A custom profile field of a user: ``shortname`` identifies it, ``value`` is as stored (PARAM_RAW)."""

    shortname: str
    value: str | None = None
    name: str = ""


@_frozen
class UserWire:
    """A user of ``core_user_get_users`` / ``core_user_get_users_by_field`` (``user_description``).

    ``timezone`` is an IANA name, or ``"99"`` for the site's default; ``lang`` a language pack name.
    """

    id: Id
    username: str = ""
    firstname: str = ""
    lastname: str = ""
    email: str = ""
    suspended: Flag = Flag(False)
    lang: str = ""
    timezone: str = ""
    customfields: list[CustomFieldWire] = attrs.Factory(list)


@_frozen
class UsersWire:
    """``core_user_get_users``; the users are structured one by one (`UserWire`)."""

    users: list[Any]
    warnings: list[WarningWire] = attrs.Factory(list)


# -- courses -------------------------------------------------------------------------------------------


@_frozen
class CourseWire:
    """A course of ``core_course_get_courses`` or ``core_course_get_courses_by_field``."""

    id: Id
    shortname: str = ""
    fullname: str = ""
    idnumber: str = ""
    summary: str = ""
    format: str = ""
    lang: str = ""
    visible: Flag = Flag(True)
    enablecompletion: Flag = Flag(False)
    timecreated: UnixTime = UnixTime(0)
    timemodified: UnixTime = UnixTime(0)
    categoryid: int = 0


@_frozen
class CategoryWire:
    """A category of ``core_course_get_categories``; ``path`` is ``/<id>/.../<id>``, outermost first."""

    id: Id
    name: str = ""
    parent: int = 0
    path: str = ""


@_frozen
class CoursesByFieldWire:
    """``core_course_get_courses_by_field``; the courses are structured one by one (`CourseWire`)."""

    courses: list[Any]
    warnings: list[WarningWire] = attrs.Factory(list)


@_frozen
class CreatedCourseWire:
    """An entry of ``core_course_create_courses``'s bare list."""

    id: Id
    shortname: str


@_frozen
class UpdateCoursesWire:
    """``core_course_update_courses``: per-item problems come as warnings in an otherwise normal answer."""

    warnings: list[WarningWire] = attrs.Factory(list)


@_frozen
class ModuleWire:
    """A course module of ``core_course_get_contents``; ``completion`` 0 none, 1 manual, 2 automatic.

    ``visible`` 0 is hidden from students; ``instance`` is the id in the module type's own table (for a
    subsection, the delegated section's ``itemid``).
    """

    id: Id
    completion: int | None = None
    name: str = ""
    modname: str = ""
    instance: int | None = None
    visible: Flag = Flag(True)


@_frozen
class SectionWire:
    """A section of ``core_course_get_contents``: ``section`` its number; a delegated section (Moodle 5's
    subsections) has ``component`` ``"mod_subsection"`` and ``itemid`` the subsection's instance."""

    id: int
    modules: list[ModuleWire] = attrs.Factory(list)
    name: str = ""
    section: int = 0
    visible: Flag = Flag(True)
    component: str | None = None
    itemid: int | None = None


# -- competencies --------------------------------------------------------------------------------------


@_frozen
class FrameworkWire:
    """A framework of ``core_competency_list_competency_frameworks``."""

    id: Id


@_frozen
class CompetencyWire:
    """A competency of ``core_competency_list_competencies``."""

    id: Id
    competencyframeworkid: Id
    shortname: str = ""
    idnumber: str = ""
    timecreated: UnixTime = UnixTime(0)


@_frozen
class CourseCompetencyLinkWire:
    id: Id
    courseid: Id
    competencyid: Id


@_frozen
class CourseCompetencyWire:
    """An entry of ``core_competency_list_course_competencies``: ``{competency, coursecompetency}``."""

    coursecompetency: CourseCompetencyLinkWire
    competency: dict[str, Any] = attrs.Factory(dict)


# -- enrolments and completion -------------------------------------------------------------------------


@_frozen
class EnrolledCourseWire:
    """A course of an enrolled user's ``enrolledcourses`` (the courses Moodle counts as active)."""

    id: Id


@_frozen
class EnrolledUserWire:
    """A user of ``core_enrol_get_enrolled_users``; ``enrolledcourses`` only when asked for."""

    id: Id
    enrolledcourses: list[EnrolledCourseWire] | None = None


@_frozen
class UserCourseWire:
    """A course of ``core_enrol_get_users_courses``, with Moodle's completion flag and progress."""

    id: Id
    completed: Flag | None = None
    progress: Percent | None = None
    completionusertracked: Flag = Flag(False)
    lastaccess: UnixTime | None = None


@_frozen
class CriterionWire:
    """A completion criterion of ``core_completion_get_course_completion_status``."""

    complete: Flag = Flag(False)
    timecompleted: UnixTime | None = None


@_frozen
class CourseCompletionWire:
    completed: Flag
    aggregation: int = 1
    completions: list[CriterionWire] = attrs.Factory(list)


@_frozen
class CompletionStatusWire:
    """``core_completion_get_course_completion_status``."""

    completionstatus: CourseCompletionWire
    warnings: list[WarningWire] = attrs.Factory(list)


@_frozen
class OverrideWire:
    """``core_completion_override_activity_completion_status``: the activity's completion record."""

    cmid: Id
    userid: Id
    state: int


# -- grades --------------------------------------------------------------------------------------------


@_frozen
class GradeItemWire:
    """A grade item of ``gradereport_user_get_grade_items`` (course and category items have no cmid)."""

    itemtype: str
    itemmodule: str | None = None
    cmid: Id | None = None
    itemnumber: int | None = None
    grademin: Number = Number(0.0)
    grademax: Number = Number(100.0)
    graderaw: Number | None = None


@_frozen
class UserGradesWire:
    courseid: Id
    userid: Id
    gradeitems: list[GradeItemWire] = attrs.Factory(list)


@_frozen
class GradeItemsWire:
    """``gradereport_user_get_grade_items``."""

    usergrades: list[UserGradesWire]
    warnings: list[WarningWire] = attrs.Factory(list)
