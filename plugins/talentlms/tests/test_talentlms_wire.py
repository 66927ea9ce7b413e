"""Lenient parsing of TalentLMS v1 values and the path-style URLs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from lmsconnect_talentlms._wire import (
    build_path,
    days_from_minutes,
    error_of,
    parse_datetime,
    parse_int,
    parse_str,
)

UTC = dt.timezone.utc


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
        [("12", 12), (12, 12), ("12.0", 12), (" 7 ", 7), ("", None), (None, None), ("x", None), (True, None)],
        ids=["str", "int", "float-str", "padded", "empty", "null", "garbage", "bool"],
    )
    def test_parse_int(self, value: Any, expected: int | None) -> None:
        assert parse_int(value) == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [("a", "a"), ("  a ", "a"), ("", None), ("   ", None), (None, None), (40457, "40457")],
        ids=["plain", "padded", "empty", "blank", "null", "int-id"],
    )
    def test_parse_str(self, value: Any, expected: str | None) -> None:
        assert parse_str(value) == expected


class TestDates:
    def test_timestamp_sibling_is_preferred(self) -> None:
        row = {"completed_on": "01/01/2000, 00:00:00", "completed_on_timestamp": "1413962775"}
        assert parse_datetime(row, "completed_on") == dt.datetime(2014, 10, 22, 7, 26, 15, tzinfo=UTC)

    def test_int_timestamp(self) -> None:
        row = {"issued_on_timestamp": 1415191463}
        assert parse_datetime(row, "issued_on") == dt.datetime.fromtimestamp(1415191463, tz=UTC)

    @pytest.mark.parametrize(
        "row",
        [
            {"completed_on": "", "completed_on_timestamp": ""},
            {"completed_on": "", "completed_on_timestamp": None},
            {"expiration_date": "Never", "expiration_date_timestamp": 0},
            {},
        ],
        ids=["empty-strings", "null-timestamp", "never", "absent"],
    )
    def test_empty_means_none(self, row: dict[str, Any]) -> None:
        field = next(iter(row), "completed_on").removesuffix("_timestamp")
        assert parse_datetime(row, field) is None

    def test_formatted_date_fallback_in_the_domain_offset(self) -> None:
        row = {"created_on": "17/07/2012, 15:29:25"}
        assert parse_datetime(row, "created_on") == dt.datetime(2012, 7, 17, 15, 29, 25, tzinfo=UTC)
        athens = parse_datetime(row, "created_on", utc_offset=dt.timedelta(hours=2))
        assert athens == dt.datetime(2012, 7, 17, 13, 29, 25, tzinfo=UTC)

    def test_date_only_and_bare_epoch(self) -> None:
        assert parse_datetime({"d": "18/04/2013"}, "d") == dt.datetime(2013, 4, 18, tzinfo=UTC)
        assert parse_datetime({"d": "1601510400"}, "d") == dt.datetime(2020, 10, 1, tzinfo=UTC)


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
