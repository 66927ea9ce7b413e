"""Progressions from a Report builder custom report (progressions_via_report) against the simulator, and the
default read's bounded state."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pytest
from lmsconnect_moodle import _report
from lmsconnect_moodle.testing import MoodleSimulator

import lmsconnect
from lmsconnect import ConfigurationError, CourseProgression, InvalidRemoteResponse, ProgressionStatus
from lmsconnect.plugin import CheckStatus

REPORT = "lmsconnect progressions"
LAYOUT = tuple(c.key for c in _report.LAYOUT)


async def read(sim: MoodleSimulator, **config: Any) -> dict[str, CourseProgression]:
    async with lmsconnect.connect("moodle", **sim.connect_config, **config) as lms:
        return {p.remote_id: p async for p in lms.list(CourseProgression)}


def minute(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(second=0, microsecond=0) if value is not None else None


def failed_only(sim: MoodleSimulator, remote_id: str) -> bool:
    """An active learner of a hidden course whose completed activities all failed: the one case where
    Moodle's progress (report) and its completion criteria (default read) disagree."""
    courseid, userid = map(int, remote_id.split(":"))
    states = [sim.activity_state(userid, m.id) for m in sim.modules(courseid)]
    return not sim.site.courses[courseid].visible and 3 in states and not {1, 2} & set(states)


class TestSameAsDefault:
    @pytest.mark.parametrize("seed", [0, 3])
    async def test_same_progressions_statuses_and_minutes(self, seed: int) -> None:
        """Both reads give the same progressions, statuses and completion times to the minute."""
        async with MoodleSimulator(users=120, courses=16, enrollments=900, seed=seed) as sim:
            sim.add_report()
            default = await read(sim)
            report = await read(sim, progressions_via_report=REPORT)
        assert default.keys() == report.keys()
        assert {p.status for p in report.values()} == set(ProgressionStatus) - {ProgressionStatus.UNKNOWN}
        for key, expected in default.items():
            got = report[key]
            if (expected.status, got.status) == (ProgressionStatus.IN_PROGRESS, ProgressionStatus.ENROLLED):
                assert failed_only(sim, key), key
                continue
            assert got.status is expected.status, key
            if expected.status is ProgressionStatus.COMPLETED:
                assert minute(got.completed_at) == minute(expected.completed_at), key
            assert (got.user_id, got.course_revision_id) == (expected.user_id, expected.course_revision_id)

    async def test_enrolled_at_is_the_enrolment_start_to_the_minute(self) -> None:
        """enrolled_at is the enrolment's start (else its creation), to the minute, in UTC."""
        async with MoodleSimulator(users=30, courses=5, enrollments=80, seed=2) as sim:
            sim.add_report()
            key = next(iter(sim.site.enrolments))
            sim.site.enrolments[key].timestart = int(
                dt.datetime(2026, 7, 1, 9, 30, 42, tzinfo=dt.timezone.utc).timestamp()
            )
            report = await read(sim, progressions_via_report=REPORT)
        for (userid, courseid), enrolment in sim.site.enrolments.items():
            if sim.site.users[userid].deleted:
                continue
            started = dt.datetime.fromtimestamp(enrolment.timestart or enrolment.timecreated, dt.timezone.utc)
            assert report[f"{courseid}:{userid}"].enrolled_at == minute(started)
        assert report[f"{key[1]}:{key[0]}"].enrolled_at == dt.datetime(
            2026, 7, 1, 9, 30, tzinfo=dt.timezone.utc
        )

    async def test_whole_site_costs_one_call_per_thousand_rows(self) -> None:
        """The whole site costs one call to find the report and one per 1,000 rows (the reference tenant's
        20,000 enrolments: 22 calls, see benchmarks/moodle_full_read.py)."""
        async with MoodleSimulator(users=400, courses=40, enrollments=4000, seed=0) as sim:
            sim.add_report()
            async with lmsconnect.connect(
                "moodle", **sim.connect_config, progressions_via_report=REPORT
            ) as lms:
                count = sum([1 async for _ in lms.list("course_progressions")])
                calls = lms.stats.calls
            rows = len(sim.site.enrolments) + 2 * (len(sim.site.courses) - 1)
        assert count == len(sim.site.enrolments)
        assert calls == 1 + math.ceil(rows / 1000) == 6

    async def test_small_pages_give_the_same_read(self) -> None:
        """Pages of 7 rows, read concurrently, give exactly what one page gives."""
        async with MoodleSimulator(users=40, courses=6, enrollments=150, seed=4) as sim:
            sim.add_report()
            whole = await read(sim, progressions_via_report=REPORT, report_page_size=100000)
            paged = await read(sim, progressions_via_report=REPORT, report_page_size=7)
            calls = sim.calls_by_function["core_reportbuilder_retrieve_report"]
        assert paged == whole
        rows = len(sim.site.enrolments) + 2 * 6
        assert calls == 1 + math.ceil(rows / 7)

    async def test_report_found_by_id(self) -> None:
        """A number in progressions_via_report is the report's id."""
        async with MoodleSimulator(users=20, courses=3, enrollments=30, seed=1) as sim:
            sim.add_report("another")
            report = sim.add_report("the one we read")
            by_id = await read(sim, progressions_via_report=str(report.id))
        assert len(by_id) == 30


class TestTimeZone:
    async def test_dates_are_read_in_the_token_users_zone(self) -> None:
        """A completion at 09:05 UTC in summer shows as 10:05 AM in London; report_timezone reads it back."""
        async with MoodleSimulator(users=20, courses=3, enrollments=40, seed=1) as sim:
            sim.site.timezone = "Europe/London"
            sim.add_report()
            completed = next(
                (k, cc) for k, cc in sim.site.course_completions.items() if cc.timecompleted is not None
            )
            (userid, courseid), cc = completed
            cc.timecompleted = int(dt.datetime(2026, 7, 1, 9, 5, tzinfo=dt.timezone.utc).timestamp())
            london = await read(sim, progressions_via_report=REPORT, report_timezone="Europe/London")
            utc = await read(sim, progressions_via_report=REPORT)
        assert london[f"{courseid}:{userid}"].completed_at == dt.datetime(
            2026, 7, 1, 9, 5, tzinfo=dt.timezone.utc
        )
        assert utc[f"{courseid}:{userid}"].completed_at == dt.datetime(
            2026, 7, 1, 10, 5, tzinfo=dt.timezone.utc
        )

    async def test_unknown_zone_fails_at_connect(self) -> None:
        """report_timezone must be an IANA zone; the error says so before any call."""
        async with MoodleSimulator(users=5, courses=1, enrollments=3) as sim:
            with pytest.raises(ConfigurationError, match="IANA"):
                async with lmsconnect.connect(
                    "moodle",
                    **sim.connect_config,
                    progressions_via_report=REPORT,
                    report_timezone="Mars/Base",
                ):
                    pass
            assert sim.calls == 0


class TestShapeRefused:
    async def refused(self, **report: Any) -> str:
        async with MoodleSimulator(users=10, courses=2, enrollments=12, seed=1) as sim:
            sim.add_report(**report)
            with pytest.raises(ConfigurationError) as info:
                await read(sim, progressions_via_report=REPORT)
        return str(info.value)

    async def test_missing_report_names_what_is_there(self) -> None:
        """An unknown report name is refused, naming the reports the token's user may view."""
        message = await self.refused(name="something else")
        assert f"no custom report '{REPORT}'" in message
        assert "1 'something else'" in message

    async def test_two_reports_with_the_name(self) -> None:
        """Two reports of the same name: the error asks for the id."""
        async with MoodleSimulator(users=10, courses=2, enrollments=12, seed=1) as sim:
            sim.add_report()
            sim.add_report()
            with pytest.raises(ConfigurationError, match=r"2 reports are named .* \(ids 1, 2\)"):
                await read(sim, progressions_via_report=REPORT)

    async def test_wrong_source(self) -> None:
        """A report on another source is refused, naming the source needed."""
        message = await self.refused(source="core_user\\reportbuilder\\datasource\\users")
        assert "'Users'" in message and "Course participants" in message

    async def test_missing_column(self) -> None:
        """A missing column is named with its identifier."""
        message = await self.refused(columns=[c for c in LAYOUT if c != "completion:timecompleted"])
        assert "add 'Time completed' (completion:timecompleted)" in message

    async def test_extra_column(self) -> None:
        """An extra column (row multiplication, shifted cells) is named for removal."""
        message = await self.refused(columns=[*LAYOUT, "enrol:name"])
        assert "remove 'Enrolment method'" in message

    async def test_wrong_order(self) -> None:
        """The right columns in the wrong order: the error says to reorder them."""
        columns = list(LAYOUT)
        columns[3], columns[4] = columns[4], columns[3]
        message = await self.refused(columns=columns)
        assert "reorder them" in message

    async def test_condition_that_leaves_enrolments_out(self) -> None:
        """The source's default 'Status is Active' condition would hide DROPPED enrolments: refused."""
        message = await self.refused(
            conditiondata=json.dumps({"enrolment:status_operator": 1, "enrolment:status_value": 0})
        )
        assert "enrolment:status" in message and "Any value" in message

    async def test_category_condition_leaves_courses_out(self) -> None:
        """A category condition (operator 0 with a value) restricts the rows too: refused."""
        message = await self.refused(
            conditiondata=json.dumps({"course_category:name_operator": 0, "course_category:name_value": 3})
        )
        assert "course_category:name" in message

    async def test_conditions_set_to_any_value_are_fine(self) -> None:
        """Conditions left at 'Any value' do not filter, so the report is read."""
        async with MoodleSimulator(users=10, courses=2, enrollments=12, seed=1) as sim:
            sim.add_report(conditiondata=json.dumps({"user:suspended_operator": 0}))
            assert len(await read(sim, progressions_via_report=REPORT)) == 12


class TestCheck:
    async def test_check_names_the_report_functions(self) -> None:
        """With progressions_via_report, check() asks for the report builder's functions, not the others."""
        async with (
            MoodleSimulator(users=10, courses=2, enrollments=12, seed=1) as sim,
            lmsconnect.connect("moodle", **sim.connect_config, progressions_via_report=REPORT) as lms,
        ):
            report = await lms.check()
        item = report.get("model", "course_progressions")
        assert item.status is CheckStatus.MISSING_PERMISSION
        assert set(item.permissions) == {
            "core_reportbuilder_list_reports",
            "core_reportbuilder_retrieve_report",
        }


def answer(
    rows: Sequence[Sequence[str | None]], headers: list[str] | None = None, total: int | None = None
) -> Callable[..., Awaitable[Any]]:
    """A Moodle that answers list_reports and retrieve_report with these cells (a hostile or broken site)."""
    details = {"id": 1, "name": REPORT, "source": "core_course\\reportbuilder\\datasource\\participants"}
    header_row = headers or [
        "Course short name with link",
        "Full name with link",
        "Username",
        "Status",
        "Time started",
        "Time completed",
        "Student progress",
    ]

    async def call(function: str, params: Mapping[str, Any]) -> Any:
        if function == "core_reportbuilder_list_reports":
            return {"reports": [details], "warnings": []}
        start = params["page"] * params["perpage"]
        return {
            "details": details,
            "data": {
                "headers": header_row,
                "rows": [{"columns": list(r)} for r in rows[start : start + params["perpage"]]],
                "totalrowcount": len(rows) if total is None else total,
            },
        }

    return call


COURSE = '<a href="https://m.example/course/view.php?id=7">C7</a>'
USER = '<a href="https://m.example/user/profile.php?id=42">Ana</a>'
OTHER = '<a href="https://m.example/course/view.php?id=8">C8</a>'
OTHER_USER = '<a href="https://m.example/user/profile.php?id=43">Bo</a>'
ROW: list[str | None] = [COURSE, USER, "ana", "Active", "", "", ""]


async def parse(
    rows: Sequence[Sequence[str | None]], *, total: int | None = None, page_size: int = 1000
) -> list[CourseProgression]:
    from lmsconnect_moodle._report import ReportReader

    reader = ReportReader(
        call=answer(rows, total=total),
        make_id=lambda model, remote: f"{model}:{remote}",
        wanted=REPORT,
        zone="UTC",
        page_size=page_size,
        concurrency=2,
    )
    return [p async for p in reader.progressions()]


class TestCells:
    async def test_two_enrolment_methods_make_one_progression(self) -> None:
        """Adjacent rows of one course and user merge: active wins, the earliest start is kept."""
        rows = [
            [COURSE, USER, "ana", "Suspended", "Monday, 5 January 2026, 9:00 AM", "", "0.0%"],
            [COURSE, USER, "ana", "Active", "Friday, 2 January 2026, 3:15 PM", "", "50.0%"],
        ]
        (progression,) = await parse(rows)
        assert progression.remote_id == "7:42"
        assert progression.status is ProgressionStatus.IN_PROGRESS
        assert progression.enrolled_at == dt.datetime(2026, 1, 2, 15, 15, tzinfo=dt.timezone.utc)

    async def test_rows_without_a_user_are_skipped(self) -> None:
        """A course's enrolment methods without anyone enrolled give no progression."""
        assert await parse([[COURSE, "", "", None, "", "", ""]]) == []

    @pytest.mark.parametrize(
        ("cells", "says"),
        [
            pytest.param([COURSE, "Ana", "ana", "Active", "", "", ""], "no course or user id", id="no-link"),
            pytest.param([COURSE, USER, "ana", "Aktiv", "", "", ""], "none of Active", id="german-status"),
            pytest.param(
                [COURSE, USER, "ana", "Active", "Montag, 5. Januar 2026, 09:00", "", ""],
                "is not a date",
                id="german-date",
            ),
            pytest.param([COURSE, USER, "ana", "Active", "", "", "half"], "not a percentage", id="progress"),
            pytest.param([COURSE, USER, "ana", "Active"], "has 4 cells", id="short-row"),
        ],
    )
    async def test_cells_that_do_not_fit_are_refused(self, cells: list[str | None], says: str) -> None:
        """A cell lmsconnect cannot read raises InvalidRemoteResponse naming it, never a guess."""
        with pytest.raises(InvalidRemoteResponse, match=says):
            await parse([cells])

    @pytest.mark.parametrize(
        ("rows", "says"),
        [
            pytest.param(
                [
                    ROW,
                    [OTHER, USER, "ana", "Active", "", "", ""],
                    [COURSE, OTHER_USER, "bo", "Active", "", "", ""],
                ],
                "course 7 comes again",
                id="course-again",
            ),
            pytest.param(
                [ROW, [COURSE, OTHER_USER, "bo", "Active", "", "", ""], ROW],
                "user 42 comes again in course 7",
                id="user-apart",
            ),
        ],
    )
    async def test_rows_out_of_order_are_refused(self, rows: list[list[str | None]], says: str) -> None:
        """Rows that break the sort order (a page boundary could skip or repeat one) are refused."""
        with pytest.raises(InvalidRemoteResponse, match=f"{says}.*sort the report"):
            await parse(rows)

    async def test_fewer_rows_than_announced_are_refused(self) -> None:
        """A report announcing more rows than its pages hold is refused, not read as complete."""
        rows: list[list[str | None]] = [[COURSE, USER, "ana", "Active", "", "", ""]]
        with pytest.raises(
            InvalidRemoteResponse, match="has 0 rows, where 5 rows in pages of 1 were announced"
        ):
            await parse(rows, total=5, page_size=1)

    async def test_non_english_headers_are_a_configuration_error(self) -> None:
        """Headers in another language: the error asks for English."""
        from lmsconnect_moodle._report import ReportReader

        reader = ReportReader(
            call=answer(
                [], headers=["Kurs", "Name", "Anmeldename", "Status", "Beginn", "Abschluss", "Fortschritt"]
            ),
            make_id=lambda model, remote: f"{model}:{remote}",
            wanted=REPORT,
            zone="UTC",
            page_size=1000,
            concurrency=2,
        )
        with pytest.raises(ConfigurationError, match="English"):
            [p async for p in reader.progressions()]


class TestDefaultReadIsBounded:
    async def test_one_user_call_per_user_with_an_active_enrolment(self) -> None:
        """The default read asks each user's course list once, only for users Moodle counts active."""
        async with MoodleSimulator(users=60, courses=8, enrollments=300, seed=6) as sim:
            records = await read(sim)
            now = sim.site.now()
            active_users = {
                e.userid
                for e in sim.site.enrolments.values()
                if e.active(now) and (sim.site.courses[e.courseid].visible or e.roleid != 5)
            }
            hidden = sum(1 for c in sim.site.iter_courses() if not c.visible and not c.is_site)
        assert sim.calls_by_function["core_enrol_get_users_courses"] == len(active_users)
        assert sim.calls_by_function["core_enrol_get_enrolled_users"] == 8 + hidden
        assert len(records) == len(sim.site.enrolments)

    async def test_suspended_enrolment_in_an_untracked_course_is_dropped(self) -> None:
        """Moodle no longer counts a suspended enrolment, with or without completion tracking: DROPPED."""
        async with MoodleSimulator(users=20, courses=3, enrollments=30, seed=1) as sim:
            course = sim.find_course(lambda c: c.visible)
            course.enablecompletion = 0
            enrolment = sim.site.course_enrolments(course.id)[0]
            enrolment.status = 1
            records = await read(sim)
        assert records[f"{course.id}:{enrolment.userid}"].status is ProgressionStatus.DROPPED
