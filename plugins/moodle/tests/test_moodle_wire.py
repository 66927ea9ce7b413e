"""The wire records accept every answer recorded from a real Moodle 5.0 and refuse what Moodle never sends."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from lmsconnect_moodle._wire import (
    CONVERTER,
    CategoryWire,
    CompetencyWire,
    CompletionStatusWire,
    CourseCompetencyWire,
    CoursesByFieldWire,
    CourseWire,
    CreatedCourseWire,
    EnrolledUserWire,
    ExceptionWire,
    FrameworkWire,
    GradeItemsWire,
    OverrideWire,
    SectionWire,
    SiteInfoWire,
    UpdateCoursesWire,
    UserCourseWire,
    UsersWire,
    UserWire,
)

from lmsconnect import InvalidRemoteResponse
from lmsconnect.plugin import structure_wire

FIXTURES = Path(
    os.environ.get(
        "LMSCONNECT_MOODLE_FIXTURES",
        Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "moodle-5",
    )
)

# For each function the connector calls: the record of its answer, and for list answers the record of
# each entry (``list`` as the answer record) or of the entries of an envelope's list.
RECORDS: dict[str, tuple[Any, str | None, Any]] = {
    "core_webservice_get_site_info": (SiteInfoWire, None, None),
    "core_user_get_users": (UsersWire, "users", UserWire),
    "core_user_get_users_by_field": (list, None, UserWire),
    "core_course_get_courses": (list, None, CourseWire),
    "core_course_get_courses_by_field": (CoursesByFieldWire, "courses", CourseWire),
    "core_course_get_contents": (list, None, SectionWire),
    "core_course_get_categories": (list, None, CategoryWire),
    "core_course_create_courses": (list, None, CreatedCourseWire),
    "core_course_update_courses": (UpdateCoursesWire, None, None),
    "core_competency_list_competency_frameworks": (list, None, FrameworkWire),
    "core_competency_list_competencies": (list, None, CompetencyWire),
    "core_competency_list_course_competencies": (list, None, CourseCompetencyWire),
    "core_enrol_get_enrolled_users": (list, None, EnrolledUserWire),
    "core_enrol_get_users_courses": (list, None, UserCourseWire),
    "core_completion_get_course_completion_status": (CompletionStatusWire, None, None),
    "core_completion_override_activity_completion_status": (OverrideWire, None, None),
    "gradereport_user_get_grade_items": (GradeItemsWire, None, None),
}


def recordings() -> list[tuple[str, str, str, Any]]:
    found = []
    for path in sorted(FIXTURES.glob("*.request.json")):
        request = json.loads(path.read_text())
        body = json.loads(path.with_name(path.name.replace(".request.json", ".json")).read_text())
        found.append((path.name.split(".")[0], request["wsfunction"], request["response"]["kind"], body))
    return found


RECORDED = recordings() if (FIXTURES / "README.md").exists() else []
SUCCESSES = [r for r in RECORDED if r[2] == "success" and r[1] in RECORDS]
EXCEPTIONS = [r for r in RECORDED if r[2] == "exception"]


def structure(raw: Any, cls: Any, where: str = "core_x") -> Any:
    return structure_wire(CONVERTER, raw, cls, where=where, connector="moodle")


@pytest.mark.skipif(not SUCCESSES, reason=f"no recordings at {FIXTURES}")
@pytest.mark.parametrize(("function", "body"), [r[1::2] for r in SUCCESSES], ids=[r[0] for r in SUCCESSES])
def test_every_recorded_answer_fits(function: str, body: Any) -> None:
    """Each real answer of a function the connector calls structures into its wire record, entries too."""
    answer, envelope_list, entry = RECORDS[function]
    if answer is list:
        assert isinstance(body, list)
        entries = body
    else:
        structured = structure(body, answer, function)
        entries = getattr(structured, envelope_list) if envelope_list else []
    for raw in entries:
        structure(raw, entry, function)


def test_every_function_the_connector_calls_is_recorded() -> None:
    """The table above covers recordings of each function it lists (none is checked against nothing)."""
    if not RECORDED:
        pytest.skip(f"no recordings at {FIXTURES}")
    assert set(RECORDS) <= {r[1] for r in SUCCESSES}


@pytest.mark.skipif(not EXCEPTIONS, reason=f"no recordings at {FIXTURES}")
@pytest.mark.parametrize("body", [r[3] for r in EXCEPTIONS], ids=[r[0] for r in EXCEPTIONS])
def test_every_recorded_exception_fits(body: Any) -> None:
    """Each real exception body, debuginfo variants included, structures as an ExceptionWire."""
    assert structure(body, ExceptionWire).errorcode == body["errorcode"]


class TestRefused:
    @pytest.mark.parametrize(
        "value", [0, -3, "7", 7.0, True, None, 2**63, 10**30], ids=lambda v: f"{type(v).__name__}:{v!s:.12}"
    )
    def test_ids_are_positive_integers(self, value: Any) -> None:
        """An id that is not a positive integer below 2**63 names the field."""
        with pytest.raises(InvalidRemoteResponse, match=r"core_x answered a UserWire .*UserWire\.id"):
            structure({"id": value}, UserWire)

    @pytest.mark.parametrize("value", [-1, 10**30, 253402300800, "1795431563", 1.5e9, None])
    def test_timestamps_are_bounded_unix_times(self, value: Any) -> None:
        """Negative, past year 9999 or non-integer times are refused, not an OverflowError later."""
        with pytest.raises(InvalidRemoteResponse, match=r"CourseWire\.timecreated"):
            structure({"id": 2, "timecreated": value}, CourseWire)

    def test_largest_timestamp_fits(self) -> None:
        """The last second of year 9999 is still a time."""
        assert structure({"id": 2, "timecreated": 253402300799}, CourseWire).timecreated == 253402300799

    @pytest.mark.parametrize("value", [2, -1, "1", None])
    def test_flags_are_booleans_or_zero_one(self, value: Any) -> None:
        """``visible`` is true/false or 0/1; anything else is refused."""
        with pytest.raises(InvalidRemoteResponse, match=r"CourseWire\.visible"):
            structure({"id": 2, "visible": value}, CourseWire)

    @pytest.mark.parametrize("value", [float("nan"), float("inf"), "50", True, 10**400])
    def test_numbers_are_finite(self, value: Any) -> None:
        """Progress is a finite number."""
        with pytest.raises(InvalidRemoteResponse, match=r"UserCourseWire\.progress"):
            structure({"id": 2, "progress": value}, UserCourseWire)

    @pytest.mark.parametrize(
        "warnings",
        ["x", [None], [{"warningcode": 5, "message": "m"}], [{"message": "no code"}], {"a": 1}],
        ids=["string", "null-entry", "numeric-code", "no-code", "object"],
    )
    def test_odd_warnings(self, warnings: Any) -> None:
        """A ``warnings`` array of odd shape is refused, naming the warnings field."""
        with pytest.raises(InvalidRemoteResponse, match=r"UpdateCoursesWire\.warnings"):
            structure({"warnings": warnings}, UpdateCoursesWire)

    def test_null_answer(self) -> None:
        """A bare null where an object belongs says what was expected."""
        with pytest.raises(InvalidRemoteResponse, match=r"core_x answered a SiteInfoWire .*got null"):
            structure(None, SiteInfoWire)
