"""TalentLMS v1 values: every documented looseness accepted, garbage refused; the path-style URLs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from lmsconnect_talentlms._wire import (
    CourseDetail,
    CourseRow,
    CourseUnits,
    EnrolledUser,
    UserRow,
    build_path,
    custom_fields,
    date_text,
    days_from_minutes,
    error_of,
    make_wire_converter,
    non_negative,
    number,
    stamp,
    talent_id,
    text,
    time_text,
    url,
)

from lmsconnect import InvalidRemoteResponse
from lmsconnect.plugin import structure_wire

UTC = dt.timezone.utc


def enrolled(row: dict[str, Any], *, offset: dt.timedelta = dt.timedelta(0)) -> EnrolledUser:
    detail = structure_wire(
        make_wire_converter(utc_offset=offset),
        {"users": [{"id": "1", "role": "learner", **row}]},
        CourseDetail,
        where="GET x",
    )
    return detail.users[0]


class TestBuildPath:
    def test_path_style_parameters(self) -> None:
        assert build_path("users", {"page_size": 25, "page_number": 2}) == (
            "/v1/users/page_size:25,page_number:2"
        )

    def test_values_are_escaped_but_emails_stay_readable(self) -> None:
        assert build_path("users", {"email": "a.b@x.io"}) == "/v1/users/email:a.b@x.io"
        assert build_path("users", {"username": "a,b:c"}) == "/v1/users/username:a%2Cb%3Ac"

    def test_no_parameters(self) -> None:
        assert build_path("courses") == "/v1/courses"


class TestScalars:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [("12", 12), (12, 12), ("12.0", 12), (" 7 ", 7), ("", None), (None, None), (12.0, 12)],
        ids=["str", "int", "float-str", "padded", "empty", "null", "float"],
    )
    def test_number_accepts_every_documented_form(self, value: Any, expected: int | None) -> None:
        """Numbers come as ints or strings, "" for none."""
        assert number(value) == expected

    @pytest.mark.parametrize(
        "value",
        ["x", True, [1], {"a": 1}, "1e400", float("nan"), 10**30, "9" * 5000],
        ids=["garbage", "bool", "list", "object", "infinite", "nan", "huge", "5000-digits"],
    )
    def test_number_refuses_garbage(self, value: Any) -> None:
        """Garbage where a number belongs is an error, never "missing"."""
        with pytest.raises((TypeError, ValueError)):
            number(value)

    @pytest.mark.parametrize(
        ("value", "expected"),
        [("a", "a"), ("  a ", "a"), ("", None), ("   ", None), (None, None), (40457, "40457")],
        ids=["plain", "padded", "empty", "blank", "null", "int-id"],
    )
    def test_text(self, value: Any, expected: str | None) -> None:
        """Strings are stripped, "" and blanks are none, numbers become their text."""
        assert text(value) == expected

    @pytest.mark.parametrize("value", [[1], {"a": 1}, True], ids=["list", "object", "bool"])
    def test_text_refuses_structures(self, value: Any) -> None:
        """A list or an object where a string belongs is an error."""
        with pytest.raises(TypeError):
            text(value)

    @pytest.mark.parametrize(("value", "expected"), [("12", "12"), (12, "12"), (" 3 ", "3")])
    def test_ids_as_int_or_string(self, value: Any, expected: str) -> None:
        """Ids come as ints or digit strings."""
        assert talent_id(value) == expected

    @pytest.mark.parametrize(
        "value", ["", None, "x1", "1.5", -3, 1.0, "1" * 40, True], ids=str
    )
    def test_an_id_is_never_missing_or_garbage(self, value: Any) -> None:
        """An id that is empty, negative, fractional or huge cannot identify a record: error."""
        with pytest.raises((TypeError, ValueError)):
            talent_id(value)


class TestDates:
    def test_timestamp_sibling_is_preferred(self) -> None:
        """The epoch sibling wins over the formatted date."""
        row = enrolled({"completed_on": "01/01/2000, 00:00:00", "completed_on_timestamp": "1413962775"})
        assert row.completed_at == dt.datetime(2014, 10, 22, 7, 26, 15, tzinfo=UTC)

    def test_int_timestamp(self) -> None:
        """An int epoch works as well as a string one."""
        assert stamp(1415191463) == dt.datetime.fromtimestamp(1415191463, tz=UTC)

    @pytest.mark.parametrize(
        "row",
        [
            {"completed_on": "", "completed_on_timestamp": ""},
            {"completed_on": "", "completed_on_timestamp": None},
            {"completed_on": "Never", "completed_on_timestamp": 0},
            {},
        ],
        ids=["empty-strings", "null-timestamp", "never", "absent"],
    )
    def test_empty_means_none(self, row: dict[str, Any]) -> None:
        """"", null, 0 and "Never" all mean no date."""
        assert enrolled(row).completed_at is None

    def test_formatted_date_fallback_in_the_domain_offset(self) -> None:
        """A formatted date is read in the domain's time zone."""
        row = {"completed_on": "17/07/2012, 15:29:25"}
        assert enrolled(row).completed_at == dt.datetime(2012, 7, 17, 15, 29, 25, tzinfo=UTC)
        athens = enrolled(row, offset=dt.timedelta(hours=2)).completed_at
        assert athens == dt.datetime(2012, 7, 17, 13, 29, 25, tzinfo=UTC)

    def test_date_only_and_bare_epoch(self) -> None:
        """A date without a time, and a bare epoch in a date field, are read."""
        assert date_text("18/04/2013") == dt.datetime(2013, 4, 18, tzinfo=UTC)
        assert date_text("1601510400") == dt.datetime(2020, 10, 1, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("completed_on_timestamp", 1e30),
            ("completed_on_timestamp", "99999999999999"),
            ("completed_on_timestamp", -5),
            ("completed_on_timestamp", "soon"),
            ("completed_on", "31/02/2020"),
            ("enrolled_on", "2020-01-01T00:00:00"),
        ],
        ids=["1e30", "year-3-million", "negative", "word", "february-31", "iso"],
    )
    def test_a_date_that_cannot_be_read_fails_the_record(self, field: str, value: Any) -> None:
        """A mangled date is an InvalidRemoteResponse naming the field, not "no date"."""
        with pytest.raises(InvalidRemoteResponse, match=field):
            enrolled({field: value})


class TestRecords:
    def test_the_reference_examples_are_read(self) -> None:
        """The user and course entries of the v1 reference fit their records."""
        converter = make_wire_converter()
        user = {
            "id": "1", "login": "admin", "first_name": "Super", "last_name": "Admin", "email": "a@b.c",
            "restrict_email": "0", "user_type": "SuperAdmin", "timezone": "(GMT +02:00) Athens",
            "language": "English", "status": "active", "deactivation_date": "", "level": "1",
            "points": "120", "created_on": "17/07/2012, 15:29:25", "last_updated": "27/02/2018, 14:24:31",
            "last_updated_timestamp": "1519743871", "avatar": "x.png", "bio": "", "login_key": "k",
        }
        course = {
            "id": "125", "name": "Course", "code": "", "category_id": "", "description": "",
            "price": "&#36;0.00", "status": "active", "creation_date": "18/04/2013, 10:02:22",
            "last_update_on": "18/04/2013, 10:02:22", "creator_id": "1", "hide_from_catalog": "0",
            "time_limit": "0", "start_datetime": None, "expiration_datetime": None, "level": "1",
        }
        assert structure_wire(converter, user, UserRow, where="u").id == "1"
        row = structure_wire(converter, course, CourseRow, where="c")
        assert (row.code, row.time_limit, row.description) == (None, 0, None)

    @pytest.mark.parametrize("role", [None, 10**30, 1, "", "teacher", ["instructor"]],
                             ids=["null", "huge-number", "number", "empty", "unknown-word", "list"])
    def test_a_role_that_is_not_learner_or_instructor_fails_the_record(self, role: Any) -> None:
        """A role TalentLMS never sends is InvalidRemoteResponse naming `role`, not "a learner"."""
        with pytest.raises(InvalidRemoteResponse, match="role"):
            enrolled({"role": role})

    def test_a_missing_role_fails_the_record(self) -> None:
        """An enrolled user without a role cannot be told learner from trainer: the record fails."""
        converter = make_wire_converter()
        with pytest.raises(InvalidRemoteResponse, match="role"):
            structure_wire(converter, {"users": [{"id": "1"}]}, CourseDetail, where="GET x")

    def test_the_documented_roles_are_read_in_any_case(self) -> None:
        """'learner' and 'Instructor' are read, lower-cased."""
        assert enrolled({"role": "learner"}).role == "learner"
        assert enrolled({"role": " Instructor"}).role == "instructor"

    def test_percentage_over_100_is_refused(self) -> None:
        """A completion percentage outside 0-100 is garbage, not progress."""
        with pytest.raises(InvalidRemoteResponse, match="completion_percentage"):
            enrolled({"completion_percentage": "250"})


class TestIssue13Values:
    @pytest.mark.parametrize(
        ("value", "seconds"),
        [("7m 31s", 451), ("1h 5m 3s", 3903), ("3m 33s", 213), ("0s", 0), ("2h", 7200), ("1d 1s", 86401),
         ("", None), (None, None), ("-", None)],
    )
    def test_total_time_text_is_read_in_seconds(self, value: Any, seconds: int | None) -> None:
        """total_time as the reference writes it ("1h 5m 3s") is seconds; no digits means none."""
        assert time_text(value) == seconds

    @pytest.mark.parametrize("value", ["3 hours", "5m 1h", "1h 5m 3s extra", "-5s"])
    def test_total_time_garbage_is_refused(self, value: str) -> None:
        with pytest.raises(ValueError):
            time_text(value)

    def test_a_negative_time_is_refused(self) -> None:
        """Seconds and days are never negative: -5 is a broken answer, 0 and "" are fine."""
        assert (non_negative("0"), non_negative(""), non_negative(451)) == (0, None, 451)
        with pytest.raises(ValueError):
            non_negative("-5")

    @pytest.mark.parametrize("value", ["javascript:alert(1)", "x.png", "ftp://h/x", "https://" + "a" * 5000])
    def test_only_http_urls_are_urls(self, value: str) -> None:
        with pytest.raises(ValueError):
            url(value)

    def test_custom_fields_keep_the_values_and_leave_out_the_empty(self) -> None:
        """custom_field_N keys with a value are kept (checkboxes as on/off); no keys at all is None."""
        raw = {"id": "1", "custom_field_1": "Sales", "custom_field_2": "", "custom_field_3": "off", "x": "y"}
        assert custom_fields(raw) == {"custom_field_1": "Sales", "custom_field_3": "off"}
        assert custom_fields({"id": "1"}) is None
        with pytest.raises(ValueError, match="custom_field_1"):
            custom_fields({"custom_field_1": {"nested": 1}})

    def test_the_reference_course_detail_units_are_read(self) -> None:
        """The reference's units (a Content unit and a Section with its delay) fit `CourseUnits`."""
        detail = {
            "units": [
                {"id": "1", "type": "Content", "name": "TalentLMS - Introduction",
                 "url": "example.talentlms.com/unit/apiview/id:1"},
                {"id": "2", "type": "Section", "name": "Section 1", "delay_time": "60",
                 "aggregated_delay_time": "60", "formatted_aggregated_delay_time": "1h"},
            ]
        }
        units = structure_wire(make_wire_converter(), detail, CourseUnits, where="GET x").units
        assert [(u.id, u.type, u.name) for u in units] == [
            ("1", "Content", "TalentLMS - Introduction"), ("2", "Section", "Section 1")
        ]

    def test_the_reference_user_entry_gives_the_profile_fields(self) -> None:
        converter = make_wire_converter()
        row = structure_wire(converter, {
            "id": "1", "login": "dummy", "user_type": "SuperAdmin", "language": "English",
            "timezone": "(GMT +02:00) Athens, Istanbul, Minsk", "last_updated": "27/02/2018, 17:04:31",
            "last_updated_timestamp": "1519743871",
        }, UserRow, where="u")
        assert (row.login, row.user_type, row.language) == ("dummy", "SuperAdmin", "English")
        assert row.updated_at == dt.datetime(2018, 2, 27, 15, 4, 31, tzinfo=UTC)
        assert row.custom_fields is None


class TestDays:
    @pytest.mark.parametrize(
        ("minutes", "days"), [(0, 0), (1, 1), (1440, 1), (1441, 2), (2880, 2), (2881, 3)]
    )
    def test_rounds_up(self, minutes: int, days: int) -> None:
        assert days_from_minutes(minutes) == days


class TestErrorBodies:
    def test_v1_shape(self) -> None:
        body = {"error": {"type": "invalid_request_error", "message": "Invalid arguments provided"}}
        assert error_of(body) == ("invalid_request_error", "Invalid arguments provided")

    def test_v2_top_level_shape(self) -> None:
        assert error_of({"type": "api_error", "message": "boom"}) == ("api_error", "boom")

    @pytest.mark.parametrize("body", [[{"id": "1"}], {"id": "1", "message": "x"}, None, "text"])
    def test_not_an_error(self, body: Any) -> None:
        assert error_of(body) == (None, None)
