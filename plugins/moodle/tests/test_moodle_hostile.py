"""Broken and hostile Moodle answers: only LMSConnectError, never a false complete read, never a wrong write.

A small aiohttp server on 127.0.0.1 sits between the connector and the simulator and rewrites the answers
of chosen web-service functions; everything else reaches the simulator untouched.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from lmsconnect_moodle.testing import MoodleSimulator

import lmsconnect
from lmsconnect import InvalidRemoteResponse, ItemStatus, LMSConnectError
from lmsconnect._store import open_store
from lmsconnect._sync import sync
from lmsconnect.plugin import CheckStatus, make_id
from lmsconnect.testing import SimulatorServer

Rewrite = Callable[[Any], Any]


class Tamper(SimulatorServer):
    """Forwards every request to ``upstream``; answers of the functions in `rewrites` are rewritten."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.rewrites: dict[str, Rewrite] = {}
        self.calls: dict[str, int] = {}

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        return app

    async def _forward(self, request: web.Request) -> web.Response:
        function = request.query.get("wsfunction", "")
        self.calls[function] = self.calls.get(function, 0) + 1
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                self.upstream + request.path_qs,
                data=await request.read(),
                headers={"Content-Type": request.headers.get("Content-Type", "")},
            ) as answer,
        ):
            body = await answer.text()
        if function in self.rewrites:
            body = json.dumps(self.rewrites[function](json.loads(body)))
        return web.Response(text=body, content_type="application/json")


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[MoodleSimulator]:
    async with MoodleSimulator(site="fixture") as running:
        yield running


@pytest_asyncio.fixture
async def tamper(sim: MoodleSimulator) -> AsyncIterator[Tamper]:
    async with Tamper(sim.url) as proxy:
        yield proxy


@pytest_asyncio.fixture
async def lms(sim: MoodleSimulator, tamper: Tamper) -> AsyncIterator[Any]:
    async with lmsconnect.connect("moodle", base_url=tamper.url, token=sim.token) as connector:
        yield connector


async def collect(lms: Any, model: str) -> list[Any]:
    return [r async for r in lms.list(model)]


def edit(path: str, value: Any) -> Rewrite:
    """A rewrite setting ``value`` at ``path`` (keys and list indexes joined by dots; ``*`` for each).

    Answers without that path (an exception body, an empty list) pass unchanged.
    """

    def step(targets: list[Any], head: str) -> list[Any]:
        if head == "*":
            return [item for t in targets if isinstance(t, list) for item in t]
        if head.isdigit():
            return [t[int(head)] for t in targets if isinstance(t, list) and len(t) > int(head)]
        return [t[head] for t in targets if isinstance(t, dict) and head in t]

    def rewrite(body: Any) -> Any:
        body = copy.deepcopy(body)
        *heads, last = path.split(".")
        targets = [body]
        for head in heads:
            targets = step(targets, head)
        for target in targets:
            if last.isdigit() and isinstance(target, list) and len(target) > int(last):
                target[int(last)] = value
            elif isinstance(target, dict) and (last in target or not last.isdigit()):
                target[last] = value
        return body

    return rewrite


def users_without_guest(body: Any) -> Any:
    """The answer to a narrower users query: right shape, one user."""
    return {"users": [u for u in body["users"] if u["username"] == "alice.martin"], "warnings": []}


class TestReadsFailRatherThanMislead:
    @pytest.mark.parametrize(
        ("function", "rewrite", "model", "field"),
        [
            ("core_user_get_users", edit("users.3.id", None), "users", "UserWire.id"),
            ("core_user_get_users", edit("users.3.id", "4"), "users", "UserWire.id"),
            ("core_user_get_users", edit("users.3.id", -4), "users", "UserWire.id"),
            ("core_user_get_users", edit("users", None), "users", "UsersWire.users"),
            ("core_user_get_users", edit("warnings", "none"), "users", "UsersWire.warnings"),
            ("core_user_get_users", edit("users.2.suspended", "no"), "users", "UserWire.suspended"),
            ("core_course_get_courses", lambda body: None, "courses", "expected a list, got null"),
            ("core_course_get_courses", edit("2.timecreated", 10**30), "courses", "CourseWire.timecreated"),
            (
                "core_course_get_courses",
                edit("2.timecreated", -1),
                "course_revisions",
                "CourseWire.timecreated",
            ),
            (
                "core_course_get_courses",
                edit("2.timecreated", "yesterday"),
                "courses",
                "CourseWire.timecreated",
            ),
            ("core_course_get_courses", edit("2.visible", "1"), "course_revisions", "CourseWire.visible"),
            ("core_course_get_courses", edit("2", "PY101"), "courses", "expected an object"),
            (
                "core_completion_get_course_completion_status",
                edit("completionstatus.completions.0.timecompleted", 10**30),
                "course_progressions",
                "completions[0].timecompleted",
            ),
            (
                "core_completion_get_course_completion_status",
                edit("completionstatus", None),
                "course_progressions",
                "CompletionStatusWire.completionstatus",
            ),
            ("core_enrol_get_users_courses", edit("0.completed", "yes"), "course_progressions", "completed"),
            ("core_enrol_get_users_courses", edit("0", 3), "course_progressions", "expected an object"),
            (
                "core_enrol_get_enrolled_users",
                edit("0.id", "3"),
                "course_progressions",
                "EnrolledUserWire.id",
            ),
            ("core_competency_list_competencies", edit("0.id", 2**70), "skills", "CompetencyWire.id"),
            ("core_enrol_get_users_courses", edit("*.progress", 250), "course_progressions", "progress"),
            ("core_enrol_get_users_courses", edit("*.progress", -1), "course_progressions", "progress"),
            ("core_enrol_get_users_courses", edit("*.lastaccess", -5), "course_progressions", "lastaccess"),
            ("core_user_get_users", edit("users.3.customfields", "x"), "users", "customfields"),
            ("core_user_get_users", edit("users.3.timezone", 1), "users", "UserWire.timezone"),
            ("core_course_get_courses", edit("2.timemodified", -1), "course_revisions", "timemodified"),
            ("core_course_get_contents", edit("1.modules.0.id", 0), "course_items", "modules[0].id"),
            ("core_course_get_contents", edit("1.modules.0.modname", ""), "course_items", "module type"),
            ("core_course_get_contents", edit("1.modules", {}), "course_items", "SectionWire.modules"),
            (
                "core_competency_list_course_competencies",
                edit("0.coursecompetency", None),
                "revision_skills",
                "coursecompetency",
            ),
        ],
        ids=[
            "user-id-null",
            "user-id-string",
            "user-id-negative",
            "users-null",
            "warnings-string",
            "suspended-string",
            "courses-null",
            "timecreated-huge",
            "timecreated-negative",
            "timecreated-text",
            "visible-string",
            "course-a-string",
            "timecompleted-huge",
            "completionstatus-null",
            "completed-string",
            "users-courses-number",
            "enrolled-id-string",
            "competency-id-huge",
            "progress-250",
            "progress-negative",
            "lastaccess-negative",
            "customfields-string",
            "timezone-number",
            "timemodified-negative",
            "module-id-zero",
            "modname-empty",
            "modules-object",
            "coursecompetency-null",
        ],
    )
    async def test_a_misfit_fails_the_read_naming_function_and_field(
        self, tamper: Tamper, lms: Any, function: str, rewrite: Rewrite, model: str, field: str
    ) -> None:
        """A value Moodle never sends fails the read with InvalidRemoteResponse naming function and field."""
        tamper.rewrites[function] = rewrite
        with pytest.raises(InvalidRemoteResponse) as info:
            await collect(lms, model)
        assert function in str(info.value) and field in str(info.value)

    async def test_an_answer_for_another_users_query_is_not_a_complete_read(
        self, tamper: Tamper, lms: Any
    ) -> None:
        """A well-formed users answer without the guest account (another query's answer) fails the read."""
        tamper.rewrites["core_user_get_users"] = users_without_guest
        with pytest.raises(InvalidRemoteResponse, match="guest account"):
            await collect(lms, "users")

    async def test_a_repeated_module_fails_the_content_read(self, tamper: Tamper, lms: Any) -> None:
        """A course module listed in two sections is not Moodle's answer."""

        def repeat(body: Any) -> Any:
            if isinstance(body, list) and len(body) > 1 and body[1]["modules"]:
                body[0]["modules"].append(body[1]["modules"][0])
            return body

        tamper.rewrites["core_course_get_contents"] = repeat
        with pytest.raises(InvalidRemoteResponse, match="appears twice"):
            await collect(lms, "course_items")

    async def test_a_category_path_not_ending_in_its_id_fails(
        self, tamper: Tamper, sim: MoodleSimulator
    ) -> None:
        """course_categories: a category whose path does not lead to itself names no category path."""
        tamper.rewrites["core_course_get_categories"] = edit("1.path", "/1")
        async with lmsconnect.connect(
            "moodle", base_url=tamper.url, token=sim.token, course_categories=True
        ) as lms:
            with pytest.raises(InvalidRemoteResponse, match="path"):
                await collect(lms, "course_revisions")

    async def test_a_course_total_above_its_maximum_gives_no_score(
        self, tamper: Tamper, sim: MoodleSimulator, caplog: pytest.LogCaptureFixture
    ) -> None:
        """progression_scores: a total over the maximum (some sites allow it) is left out, with a warning."""

        def overgrade(body: Any) -> Any:
            for item in body["usergrades"][0]["gradeitems"]:
                if item["itemtype"] == "course" and item["graderaw"] is not None:
                    item["graderaw"] = item["grademax"] * 2.5
            return body

        tamper.rewrites["gradereport_user_get_grade_items"] = overgrade
        async with lmsconnect.connect(
            "moodle", base_url=tamper.url, token=sim.token, progression_scores=True
        ) as lms:
            progressions = {p.remote_id: p async for p in lms.list("course_progressions")}
        assert progressions["2:3"].score is None
        assert progressions["2:3"].status is not None
        assert "outside its range" in caplog.text

    async def test_grades_of_another_user_fail_the_read(self, tamper: Tamper, sim: MoodleSimulator) -> None:
        """progression_scores: an answer with another user's grades is not taken as this learner's."""
        tamper.rewrites["gradereport_user_get_grade_items"] = edit("usergrades.0.userid", 9999)
        async with lmsconnect.connect(
            "moodle", base_url=tamper.url, token=sim.token, progression_scores=True
        ) as lms:
            with pytest.raises(InvalidRemoteResponse, match="course total"):
                await collect(lms, "course_progressions")

    async def test_a_repeated_user_fails_the_read(self, tamper: Tamper, lms: Any) -> None:
        """A user listed twice is not Moodle's answer."""
        tamper.rewrites["core_user_get_users"] = lambda b: {**b, "users": [*b["users"], b["users"][3]]}
        with pytest.raises(InvalidRemoteResponse, match="appears twice"):
            await collect(lms, "users")

    async def test_warnings_fail_the_users_read(self, tamper: Tamper, lms: Any) -> None:
        """A users answer carrying warnings may leave users out: not a complete read."""
        warning = {"item": "email", "warningcode": "invalidfieldparameter", "message": "not supported"}
        tamper.rewrites["core_user_get_users"] = lambda body: {**body, "warnings": [warning]}
        with pytest.raises(InvalidRemoteResponse, match="warning") as info:
            await collect(lms, "users")
        assert "invalidfieldparameter" in str(info.value)

    @pytest.mark.parametrize(
        "model", ["courses", "course_revisions", "course_progressions", "revision_skills"]
    )
    async def test_courses_without_the_site_course_are_not_a_complete_read(
        self, tamper: Tamper, lms: Any, model: str
    ) -> None:
        """Every course listing has the site course; one without it (another query's answer) fails."""
        tamper.rewrites["core_course_get_courses"] = lambda body: [c for c in body if c["id"] != 1]
        with pytest.raises(InvalidRemoteResponse, match="site course"):
            await collect(lms, model)

    async def test_a_second_site_format_course_fails_the_read(self, tamper: Tamper, lms: Any) -> None:
        """Only the site course has the site format: a course is never silently left out for it."""
        tamper.rewrites["core_course_get_courses"] = edit("2.format", "site")
        with pytest.raises(InvalidRemoteResponse, match="site format"):
            await collect(lms, "courses")

    async def test_competencies_of_another_framework_fail_the_read(self, tamper: Tamper, lms: Any) -> None:
        """A by-framework listing answering another framework's competencies is a wrong answer."""
        tamper.rewrites["core_competency_list_competencies"] = edit("*.competencyframeworkid", 7)
        with pytest.raises(InvalidRemoteResponse, match="framework 1"):
            await collect(lms, "skills")

    async def test_course_links_of_another_course_fail_the_read(self, tamper: Tamper, lms: Any) -> None:
        """A per-course listing answering another course's links is a wrong answer."""
        tamper.rewrites["core_competency_list_course_competencies"] = edit("*.coursecompetency.courseid", 99)
        with pytest.raises(InvalidRemoteResponse, match="course 99"):
            await collect(lms, "revision_skills")

    async def test_enrolled_users_page_that_never_advances(self, tamper: Tamper, lms: Any) -> None:
        """A full page answered again for every offset stops with InvalidRemoteResponse, not forever."""
        page = [{"id": i, "roles": [], "enrolledcourses": []} for i in range(1, 1001)]
        tamper.rewrites["core_enrol_get_enrolled_users"] = lambda body: page
        with pytest.raises(InvalidRemoteResponse, match="appears twice"):
            await asyncio.wait_for(collect(lms, "course_progressions"), 20)
        assert tamper.calls["core_enrol_get_enrolled_users"] <= 2 * 4

    async def test_competency_page_that_never_advances(self, tamper: Tamper, lms: Any) -> None:
        """A full page of competencies answered again for every offset stops, not forever."""
        page = [{"id": i, "competencyframeworkid": 1, "shortname": f"c{i}"} for i in range(1, 501)]
        tamper.rewrites["core_competency_list_competencies"] = lambda body: page
        with pytest.raises(InvalidRemoteResponse, match="appears twice"):
            await asyncio.wait_for(collect(lms, "skills"), 20)

    async def test_deleted_users_with_an_absurd_highest_id(
        self, sim: MoodleSimulator, tamper: Tamper
    ) -> None:
        """A user id near 2**62 does not make include_deleted_users probe quintillions of ids."""
        tamper.rewrites["core_user_get_users"] = edit("users.2.id", 2**62)
        config = {"base_url": tamper.url, "token": sim.token, "include_deleted_users": True}
        async with lmsconnect.connect("moodle", **config) as lms:
            with pytest.raises(InvalidRemoteResponse, match="far above"):
                await asyncio.wait_for(collect(lms, "users"), 20)

    @pytest.mark.parametrize("stamp", ["9" * 5000, "99999999999999", "\u00b2\u00b3"])
    async def test_deleted_user_with_an_odd_deletion_stamp(
        self, sim: MoodleSimulator, tamper: Tamper, stamp: str
    ) -> None:
        """A deleted account's renamed username with an odd time is listed without a deletion time."""
        tamper.rewrites["core_user_get_users_by_field"] = edit("*.username", f"fatima@example.com.{stamp}")
        config = {"base_url": tamper.url, "token": sim.token, "include_deleted_users": True}
        async with lmsconnect.connect("moodle", **config) as lms:
            deleted = [u for u in await collect(lms, "users") if u.remote_id == "8"]
        assert deleted and deleted[0].remote_deleted_at is None

    async def test_deleted_users_answer_with_ids_not_asked_for(
        self, sim: MoodleSimulator, tamper: Tamper
    ) -> None:
        """A by-id lookup answering ids it was not asked for is a wrong answer."""
        tamper.rewrites["core_user_get_users_by_field"] = edit("*.id", 3)
        config = {"base_url": tamper.url, "token": sim.token, "include_deleted_users": True}
        async with lmsconnect.connect("moodle", **config) as lms:
            with pytest.raises(InvalidRemoteResponse, match="not asked for"):
                await collect(lms, "users")


class TestSyncDeletesNothingOnAWrongAnswer:
    async def test_wrong_users_answer_marks_nobody_deleted(
        self, sim: MoodleSimulator, tamper: Tamper
    ) -> None:
        """After a clean sync, a users answer for another query fails the model and records no deletion."""
        async with open_store(":memory:") as store:
            async with lmsconnect.connect("moodle", base_url=tamper.url, token=sim.token) as lms:
                first = await sync(lms, store, models=["users"], connection="moodle-hostile")
                assert first.ok and first.models["users"].created == 6
                tamper.rewrites["core_user_get_users"] = users_without_guest
                second = await sync(lms, store, models=["users"], connection="moodle-hostile")
            assert second.models["users"].status == "failed"
            assert second.models["users"].deleted == 0
            kinds = [c.kind.value async for c in store.changes(since=0)]
            assert "deleted" not in kinds


class TestActionsNeverActOnAWrongAnswer:
    async def test_upsert_never_updates_a_course_it_did_not_ask_for(
        self, sim: MoodleSimulator, tamper: Tamper, lms: Any
    ) -> None:
        """A lookup by ID number answering another course fails the item and changes no course."""
        before = sim.find_course(lambda c: c.id == 2).fullname
        other = {"id": 2, "idnumber": "PY101-2026A", "fullname": before, "shortname": "PY101"}
        tamper.rewrites["core_course_get_courses_by_field"] = lambda body: {
            "courses": [other],
            "warnings": [],
        }
        result = await lms.upsert_courses({"items": [{"origin_id": "NEW-1", "course": {"title": "Hijack"}}]})
        item = result.items[0]
        assert item.status is ItemStatus.FAILED and item.error.code == "REMOTE.INVALID_RESPONSE"
        assert "ID number 'NEW-1'" in item.error.message
        assert sim.find_course(lambda c: c.id == 2).fullname == before
        assert tamper.calls.get("core_course_update_courses", 0) == 0

    async def test_upsert_never_touches_the_site_course(self, tamper: Tamper, lms: Any) -> None:
        """An origin_id that is the site course's ID number fails the item; nothing is created or updated."""
        site = {"id": 1, "idnumber": "SITE-X", "format": "site", "fullname": "Site"}
        tamper.rewrites["core_course_get_courses_by_field"] = lambda body: {"courses": [site], "warnings": []}
        result = await lms.upsert_courses({"items": [{"origin_id": "SITE-X", "course": {"title": "Hijack"}}]})
        assert result.items[0].status is ItemStatus.FAILED and "site course" in result.items[0].error.message
        assert not {"core_course_update_courses", "core_course_create_courses"} & set(tamper.calls)

    async def test_upsert_with_warnings_in_the_lookup_fails_the_item(self, tamper: Tamper, lms: Any) -> None:
        """A lookup answer with warnings is not trusted to say "no such course" (that would create one)."""
        warning = {"warningcode": "x", "message": "partial"}
        tamper.rewrites["core_course_get_courses_by_field"] = lambda body: {**body, "warnings": [warning]}
        result = await lms.upsert_courses({"items": [{"origin_id": "NEW-2", "course": {"title": "T"}}]})
        assert result.items[0].status is ItemStatus.FAILED
        assert tamper.calls.get("core_course_create_courses", 0) == 0

    @pytest.mark.parametrize(
        "answer", [None, [], [{"id": 0, "shortname": "NEW-3"}], [{"id": 7}], {"id": 7}], ids=str
    )
    async def test_create_answer_that_does_not_fit(self, tamper: Tamper, lms: Any, answer: Any) -> None:
        """A create answer without exactly one new course id fails the item instead of inventing one."""
        tamper.rewrites["core_course_create_courses"] = lambda body: answer
        result = await lms.upsert_courses({"items": [{"origin_id": "NEW-3", "course": {"title": "T"}}]})
        assert result.items[0].status is ItemStatus.FAILED
        assert result.items[0].error.code == "REMOTE.INVALID_RESPONSE"

    @pytest.mark.parametrize(
        "answer",
        [
            "x",
            {"warnings": "none"},
            {"warnings": [None]},
            {"warnings": [{"warningcode": ["a"], "message": 1}]},
        ],
        ids=["string", "warnings-string", "warning-null", "warning-fields"],
    )
    async def test_deactivate_with_odd_warnings(self, tamper: Tamper, lms: Any, answer: Any) -> None:
        """An update answer of odd shape is InvalidRemoteResponse, not AttributeError or a false success."""
        tamper.rewrites["core_course_update_courses"] = lambda body: answer
        with pytest.raises(InvalidRemoteResponse, match="core_course_update_courses"):
            await lms.deactivate_course(course_id=make_id("moodle", "courses", 2))

    async def test_enrol_answer_other_than_null(self, tamper: Tamper, lms: Any) -> None:
        """enrol_manual_enrol_users answers null; anything else is not taken for success."""
        tamper.rewrites["enrol_manual_enrol_users"] = lambda body: {"enrolled": True}
        with pytest.raises(InvalidRemoteResponse, match="expected null"):
            await lms.enroll_user(
                user_id=make_id("moodle", "users", 5),
                course_revision_id=make_id("moodle", "course_revisions", 4),
            )

    async def test_enrolled_users_without_ids(self, tamper: Tamper, lms: Any) -> None:
        """The already-enrolled check refuses users without a readable id."""
        tamper.rewrites["core_enrol_get_enrolled_users"] = edit("*.id", None)
        with pytest.raises(InvalidRemoteResponse, match=r"EnrolledUserWire\.id"):
            await lms.enroll_user(
                user_id=make_id("moodle", "users", 5),
                course_revision_id=make_id("moodle", "course_revisions", 2),
            )

    @pytest.mark.parametrize(
        ("rewrite", "message"),
        [
            (edit("usergrades.0.userid", 99), "grades of user 99"),
            (edit("usergrades.0.gradeitems.0.grademax", "abc"), r"gradeitems\[0\]\.grademax"),
            (edit("usergrades.0.gradeitems.0.grademin", 1000), "grade range"),
            (edit("usergrades.0.gradeitems.0.itemmodule", None), "itemmodule"),
            (edit("usergrades", None), "GradeItemsWire.usergrades"),
        ],
        ids=["other-user", "grademax-text", "range-reversed", "no-module", "usergrades-null"],
    )
    async def test_complete_course_refuses_a_wrong_grade_report_and_changes_nothing(
        self, sim: MoodleSimulator, tamper: Tamper, lms: Any, rewrite: Rewrite, message: str
    ) -> None:
        """A grade report that does not fit stops complete_course before any grade or completion is set."""
        tamper.rewrites["gradereport_user_get_grade_items"] = rewrite
        with pytest.raises(InvalidRemoteResponse, match=message):
            await lms.complete_course(
                course_progression_id=make_id("moodle", "course_progressions", "2:5"), score=80
            )
        assert sim.grade(5, 6) is None
        assert tamper.calls.get("core_grades_update_grades", 0) == 0
        assert tamper.calls.get("core_completion_override_activity_completion_status", 0) == 0

    @pytest.mark.parametrize(
        ("function", "rewrite", "message"),
        [
            ("core_course_get_contents", edit("0.modules.0.id", "1"), r"modules\[0\]\.id"),
            ("core_course_get_contents", lambda body: {"sections": body}, "expected a list"),
            ("core_grades_update_grades", lambda body: "0", "status number"),
            (
                "core_completion_override_activity_completion_status",
                edit("cmid", 1),
                "answered the completion",
            ),
            ("core_completion_override_activity_completion_status", lambda body: None, "OverrideWire"),
            ("core_completion_get_course_completion_status", lambda body: [], "CompletionStatusWire"),
        ],
        ids=[
            "module-id-text",
            "contents-object",
            "grade-status-text",
            "override-other",
            "override-null",
            "status-list",
        ],
    )
    async def test_complete_course_misfits(
        self, tamper: Tamper, lms: Any, function: str, rewrite: Rewrite, message: str
    ) -> None:
        """Every answer complete_course reads is checked; a misfit is InvalidRemoteResponse naming it."""
        tamper.rewrites[function] = rewrite
        with pytest.raises(InvalidRemoteResponse, match=message):
            await lms.complete_course(
                course_progression_id=make_id("moodle", "course_progressions", "2:5"), score=80
            )


class TestCheckNeverRaises:
    @pytest.mark.parametrize(
        "answer",
        [None, {"functions": "all"}, {"userid": 2, "functions": [{"name": 5}]}, [], {"exception": 1}],
        ids=["null", "functions-string", "function-name-number", "list", "exception-number"],
    )
    async def test_odd_site_info_is_reported(self, tamper: Tamper, lms: Any, answer: Any) -> None:
        """check() reports an odd site-info answer as an error item and still tests the models."""
        tamper.rewrites["core_webservice_get_site_info"] = lambda body: answer
        report = await lms.check()
        scope = [i for i in report.items if i.name == "scope_testing"]
        assert scope and scope[0].status is CheckStatus.ERROR
        assert any(i.name == "users" and i.status is CheckStatus.OK for i in report.items)

    async def test_every_answer_null(self, tamper: Tamper, lms: Any) -> None:
        """With every function answering null, check() returns a report of errors instead of raising."""
        for function in (
            "core_webservice_get_site_info",
            "core_user_get_users",
            "core_course_get_courses",
            "core_competency_list_competency_frameworks",
        ):
            tamper.rewrites[function] = lambda body: None
        report = await lms.check()
        assert {i.name for i in report.items if i.status is CheckStatus.ERROR} >= {
            "users",
            "courses",
            "skills",
        }


Operation = Callable[[Any, int], Any]


OPERATIONS: dict[str, Operation] = {
    "users": lambda lms, n: collect(lms, "users"),
    "courses": lambda lms, n: collect(lms, "courses"),
    "course_progressions": lambda lms, n: collect(lms, "course_progressions"),
    "skills": lambda lms, n: collect(lms, "skills"),
    "revision_skills": lambda lms, n: collect(lms, "revision_skills"),
    "check": lambda lms, n: lms.check(),
    "upsert": lambda lms, n: lms.upsert_courses(
        {"items": [{"origin_id": f"FUZZ-{n}", "course": {"title": "T", "description": "D"}}]}
    ),
    "update": lambda lms, n: lms.upsert_courses(
        {"items": [{"origin_id": "PY101-2026A", "course": {"title": f"T{n}"}}]}
    ),
    "deactivate": lambda lms, n: lms.deactivate_course(course_id=make_id("moodle", "courses", 3)),
    "enroll": lambda lms, n: lms.enroll_user(
        user_id=make_id("moodle", "users", 5), course_revision_id=make_id("moodle", "course_revisions", 4)
    ),
    "complete": lambda lms, n: lms.complete_course(
        course_progression_id=make_id("moodle", "course_progressions", "2:5"), score=60
    ),
}
# Which operations call each function, so each wrong answer meets every operation that reads it.
CALLERS: dict[str, tuple[str, ...]] = {
    "core_webservice_get_site_info": ("check",),
    "core_user_get_users": ("users",),
    "core_course_get_courses": ("courses", "course_progressions", "revision_skills"),
    "core_enrol_get_enrolled_users": ("course_progressions", "enroll"),
    "core_enrol_get_users_courses": ("course_progressions",),
    "core_completion_get_course_completion_status": ("course_progressions", "complete"),
    "core_competency_list_competency_frameworks": ("skills",),
    "core_competency_list_competencies": ("skills",),
    "core_competency_list_course_competencies": ("revision_skills",),
    "core_course_get_courses_by_field": ("upsert", "update"),
    "core_course_create_courses": ("upsert",),
    "core_course_update_courses": ("update", "deactivate"),
    "enrol_manual_enrol_users": ("enroll",),
    "core_course_get_contents": ("complete",),
    "gradereport_user_get_grade_items": ("complete",),
    "core_grades_update_grades": ("complete",),
    "core_completion_override_activity_completion_status": ("complete",),
}
SHAPES: list[Any] = [
    None,
    0,
    "x",
    True,
    [],
    {},
    [None],
    [{}],
    [{"id": None}],
    [[]],
    {"warnings": {}},
    {"users": [{}]},
]


@pytest.mark.parametrize("function", sorted(CALLERS))
async def test_nothing_but_lmsconnect_errors(tamper: Tamper, lms: Any, function: str) -> None:
    """Every operation reading ``function`` raises only LMSConnectError subclasses, whatever it answers."""
    for n, shape in enumerate(SHAPES):
        tamper.rewrites = {function: lambda body, shape=shape: shape}
        for name in CALLERS[function]:
            try:
                await OPERATIONS[name](lms, n)
            except LMSConnectError:
                pass
