"""The Moodle simulator's own behaviour: protocol, tokens and services, debugging, seeding, aggregation,
faults. (Its agreement with real Moodle is test_moodle_fixture_replay.py.)"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio
from lmsconnect_moodle import encode_params
from lmsconnect_moodle.testing import MoodleSimulator

REST = "/webservice/rest/server.php"


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def call(
    session: aiohttp.ClientSession,
    sim: MoodleSimulator,
    function: str,
    token: str | None = None,
    fmt: str = "json",
    **params: Any,
) -> Any:
    query = {"wstoken": token or sim.token, "wsfunction": function, "moodlewsrestformat": fmt}
    async with session.post(sim.url + REST, params=query, data=encode_params(params)) as response:
        assert response.status == 200
        text = await response.text()
        return json.loads(text) if fmt == "json" else text


class TestProtocol:
    async def test_errors_are_http_200_exception_bodies(self, session: aiohttp.ClientSession) -> None:
        """Invalid token, unknown function, function not in service: HTTP 200 with Moodle's codes."""
        async with MoodleSimulator(site="fixture") as sim:
            bad = await call(session, sim, "core_webservice_get_site_info", token="nope")
            assert bad == {
                "exception": "core\\exception\\moodle_exception",
                "errorcode": "invalidtoken",
                "message": "Invalid token - token not found",
            }
            unknown = await call(session, sim, "core_nonexistent_function")
            assert unknown["errorcode"] == "invalidrecordunknown"
            denied = await call(session, sim, "core_user_create_users", users=[{"username": "x"}])
            assert denied == {
                "exception": "webservice_access_exception",
                "errorcode": "accessexception",
                "message": "Access control exception",
            }

    async def test_debug_mode_adds_debuginfo(self, session: aiohttp.ClientSession) -> None:
        """Only with debugging on do exceptions carry debuginfo and the detailed message."""
        async with MoodleSimulator(site="fixture", debug=True) as sim:
            body = await call(session, sim, "core_course_get_contents", courseid="abc")
        assert body["debuginfo"].startswith("courseid => Invalid parameter value detected")
        assert body["message"].startswith("Invalid parameter value detected (courseid => ")

    async def test_slashes_escaped_like_php(self, session: aiohttp.ClientSession) -> None:
        """Answers use PHP's json_encode escaping of '/'."""
        async with (
            MoodleSimulator(site="fixture") as sim,
            session.post(
                sim.url + REST,
                params={
                    "wstoken": sim.token,
                    "moodlewsrestformat": "json",
                    "wsfunction": "core_webservice_get_site_info",
                },
            ) as r,
        ):
            text = await r.text()
        assert '"siteurl":"http:\\/\\/127.0.0.1' in text

    async def test_xml_when_no_json_format(self, session: aiohttp.ClientSession) -> None:
        """Without moodlewsrestformat=json Moodle answers XML."""
        async with MoodleSimulator(site="fixture") as sim:
            text = await call(session, sim, "core_course_get_categories", fmt="xml")
        assert text.startswith('<?xml version="1.0" encoding="UTF-8" ?>\n<RESPONSE>\n<MULTIPLE>')

    async def test_get_and_query_parameters_work(self, session: aiohttp.ClientSession) -> None:
        """Moodle reads parameters from the query string as well as the body."""
        async with MoodleSimulator(site="fixture") as sim:
            query = {
                "wstoken": sim.token,
                "wsfunction": "core_course_get_courses_by_field",
                "moodlewsrestformat": "json",
                "field": "id",
                "value": "2",
            }
            async with session.get(sim.url + REST, params=query) as r:
                body = await r.json(content_type=None)
        assert [c["shortname"] for c in body["courses"]] == ["PY101"]

    async def test_counts_calls(self, session: aiohttp.ClientSession) -> None:
        """Calls are counted per route and per function."""
        async with MoodleSimulator(site="fixture") as sim:
            await call(session, sim, "core_webservice_get_site_info")
            await call(session, sim, "core_course_get_courses")
        assert sim.calls == 2 and sim.calls_by_route[REST] == 2
        assert sim.calls_by_function["core_course_get_courses"] == 1


class TestTokensAndServices:
    async def test_a_service_restricts_functions(self, session: aiohttp.ClientSession) -> None:
        """A token only reaches its service's functions, and site info lists exactly those."""
        async with MoodleSimulator(site="fixture") as sim:
            token = sim.create_token(["core_webservice_get_site_info", "core_course_get_courses"])
            info = await call(session, sim, "core_webservice_get_site_info", token=token)
            assert [f["name"] for f in info["functions"]] == [
                "core_webservice_get_site_info",
                "core_course_get_courses",
            ]
            assert (await call(session, sim, "core_user_get_users", token=token, criteria=[]))[
                "errorcode"
            ] == ("accessexception")


class TestSeeding:
    def test_same_seed_same_site(self) -> None:
        """A seed always gives the same users, courses, enrolments and completion."""
        one, two = MoodleSimulator(seed=7), MoodleSimulator(seed=7)
        assert one.site.users == two.site.users
        assert one.site.courses == two.site.courses
        assert dict(one.site.enrolments) == dict(two.site.enrolments)
        assert one.site.completions == two.site.completions
        assert MoodleSimulator(seed=8).site.users != one.site.users

    def test_sizes_and_variety(self) -> None:
        """Requested sizes are honoured, with suspended and deleted users, hidden and ungraded courses."""
        sim = MoodleSimulator(users=300, courses=40, enrollments=2000, seed=1)
        site = sim.site
        assert len([u for u in site.users.values() if u.id > 2]) == 300
        assert len([c for c in site.courses.values() if not c.is_site]) == 40
        assert len(site.enrolments) == 2000
        assert any(u.suspended for u in site.users.values()) and any(u.deleted for u in site.users.values())
        courses = [c for c in site.courses.values() if not c.is_site]
        assert any(not c.visible for c in courses)
        assert any(not site.graded_modules(c.id) for c in courses)
        assert any(site.graded_modules(c.id) for c in courses)
        assert any(not c.manual_enrol for c in courses)
        states = {c.state for c in site.completions.values()}
        assert {1, 2, 3} <= states

    def test_fixture_site_matches_the_recordings(self) -> None:
        """The fixture seed has the recorded ids and names."""
        site = MoodleSimulator(site="fixture").site
        assert site.users[8].deleted and site.users[7].suspended
        assert site.courses[2].shortname == "PY101" and site.courses[5].visible == 0
        assert [m.id for m in site.course_modules(2)] == [1, 5, 6, 7, 8, 9]


class TestCompletionAggregation:
    async def test_override_completes_at_once(self, session: aiohttp.ClientSession) -> None:
        """Overriding the last open activities completes the course in the same call, as on real Moodle."""
        async with MoodleSimulator(site="fixture") as sim:
            for cmid in (7, 8):
                await call(
                    session,
                    sim,
                    "core_completion_override_activity_completion_status",
                    userid=4,
                    cmid=cmid,
                    newstate=1,
                )
            assert sim.course_completed(4, 2)

    async def test_grade_driven_completion_needs_two_task_runs(self, session: aiohttp.ClientSession) -> None:
        """A completion that comes from a grade shows only after the completion task ran twice."""
        async with MoodleSimulator(site="fixture", completion_cron=math.inf) as sim:
            answer = await call(
                session,
                sim,
                "core_grades_update_grades",
                source="test",
                courseid=2,
                component="mod_quiz",
                activityid=7,
                itemnumber=0,
                grades=[{"studentid": 4, "grade": 9}],
            )
            assert answer == 0
            override = "core_completion_override_activity_completion_status"
            await call(session, sim, override, userid=4, cmid=8, newstate=1)
            completed = []
            for _ in range(3):
                status = await call(
                    session, sim, "core_completion_get_course_completion_status", courseid=2, userid=4
                )
                completed.append(status["completionstatus"]["completed"])
                async with session.get(sim.url + "/admin/cron.php") as response:  # Moodle's web cron
                    assert response.status == 200
        assert completed == [False, False, True]

    async def test_the_task_runs_on_its_schedule(self, session: aiohttp.ClientSession) -> None:
        """Without anyone running cron, the scheduled task aggregates within two periods."""
        now = [1_800_000_000.0]
        async with MoodleSimulator(site="fixture", completion_cron=60, clock=lambda: now[0]) as sim:
            sim.site.set_grade(4, sim.site.modules[7], 9.0)
            sim.site.set_activity_state(4, sim.site.modules[8], 1, overrideby=2, via_override=True)
            assert not sim.course_completed(4, 2)
            now[0] += 61
            assert not sim.course_completed(4, 2)  # the first run only reviewed the criteria
            now[0] += 60
            assert sim.course_completed(4, 2)

    async def test_override_keeps_complete_pass_and_fail(self, session: aiohttp.ClientSession) -> None:
        """Overriding to complete leaves complete-fail (3) as it is, without overrideby (as recorded)."""
        async with MoodleSimulator(site="fixture") as sim:
            answer = await call(
                session,
                sim,
                "core_completion_override_activity_completion_status",
                userid=4,
                cmid=6,
                newstate=1,
            )
        assert (answer["state"], answer["overrideby"]) == (3, None)


class TestFaults:
    async def test_faults_are_deterministic(self, session: aiohttp.ClientSession) -> None:
        """The same fault seed fails the same requests."""
        outcomes = []
        for _ in range(2):
            async with MoodleSimulator(
                site="fixture", fault_rate=0.5, fault_seed=3, fault_kinds=("http_500", "dml")
            ) as sim:
                seen = []
                for _ in range(12):
                    query = {
                        "wstoken": sim.token,
                        "wsfunction": "core_course_get_categories",
                        "moodlewsrestformat": "json",
                    }
                    async with session.post(sim.url + REST, params=query) as r:
                        text = await r.text()
                        seen.append((r.status, "dmlreadexception" in text))
                outcomes.append(seen)
        assert outcomes[0] == outcomes[1]
        assert {(500, False), (200, True), (200, False)} <= set(outcomes[0])

    async def test_connector_rides_out_faults(self) -> None:
        """Reads retry 5xx, dropped connections and Moodle's transient database exceptions."""
        import lmsconnect
        from lmsconnect import HttpOptions

        async with (
            MoodleSimulator(
                site="fixture", fault_rate=0.3, fault_seed=1, fault_kinds=("http_500", "drop", "dml")
            ) as sim,
            lmsconnect.connect(
                "moodle", **sim.connect_config, http=HttpOptions(backoff_base_s=0.01, max_attempts=6)
            ) as lms,
        ):
            progressions = [p async for p in lms.list("course_progressions")]
        assert len(progressions) == 13
