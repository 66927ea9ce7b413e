"""The TalentLMS v1 simulator, driven with plain aiohttp calls (no connector involved)."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from lmsconnect_talentlms.testing import INSTRUCTOR_USER_TYPES, TalentLMSSimulator

DATE_RE = re.compile(r"^\d{2}/\d{2}/\d{4}, \d{2}:\d{2}:\d{2}$")


def _auth(key: str) -> dict[str, str]:
    token = base64.b64encode(f"{key}:".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class Client:
    """A thin raw client: status + decoded JSON + headers."""

    def __init__(self, sim: TalentLMSSimulator, session: aiohttp.ClientSession) -> None:
        self.sim = sim
        self.session = session

    async def get(self, path: str, *, key: str | None = None) -> tuple[int, Any, Any]:
        headers = _auth(self.sim.api_key if key is None else key)
        async with self.session.get(self.sim.url + path, headers=headers) as resp:
            return resp.status, await resp.json(), resp.headers

    async def post(self, path: str, data: dict[str, str], *, json_body: bool = False) -> tuple[int, Any, Any]:
        headers = _auth(self.sim.api_key)
        kwargs: dict[str, Any] = {"json": data} if json_body else {"data": data}
        async with self.session.post(self.sim.url + path, headers=headers, **kwargs) as resp:
            return resp.status, await resp.json(), resp.headers


@pytest.fixture
async def sim() -> AsyncIterator[TalentLMSSimulator]:
    async with TalentLMSSimulator(users=30, courses=6, enrollments=60, seed=7) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: TalentLMSSimulator) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(sim, session)


async def _raw(sim: TalentLMSSimulator, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as session:
        return await Client(sim, session).get(path, **kwargs)


class TestAuth:
    async def test_missing_key_is_401_with_error_body(self, sim: TalentLMSSimulator) -> None:
        """No Authorization header → 401 and TalentLMS's error shape."""
        async with aiohttp.ClientSession() as session, session.get(sim.url + "/v1/users") as resp:
            assert resp.status == 401
            body = await resp.json()
        assert body == {"error": {"type": "invalid_request_error", "message": "Invalid API key provided"}}

    async def test_wrong_key_is_401(self, client: Client) -> None:
        """A wrong key in Basic auth → 401."""
        status, body, _ = await client.get("/v1/users", key="nope")
        assert status == 401
        assert "error" in body

    async def test_api_not_enabled_is_403(self) -> None:
        """A domain without API access → 403 with the reference's message."""
        async with TalentLMSSimulator(users=2, courses=1, enrollments=0, api_enabled=False) as sim:
            status, body, _ = await _raw(sim, "/v1/users")
        assert status == 403
        assert body["error"]["message"].startswith("API is not enabled")


class TestUsers:
    async def test_list_shapes_follow_the_reference(self, client: Client) -> None:
        """Ids and numbers as strings, dd/mm/yyyy dates, timestamp siblings, "" for empty."""
        status, users, _ = await client.get("/v1/users")
        assert status == 200
        assert len(users) == 30
        first = users[0]
        assert first["id"] == "1" and first["user_type"] == "SuperAdmin"
        assert DATE_RE.match(first["created_on"])
        assert first["last_updated_timestamp"].isdigit()
        assert first["deactivation_date"] == ""
        assert "courses" not in first
        assert {u["status"] for u in users} <= {"active", "inactive"}

    async def test_seeded_tenant_has_every_user_type(self, sim: TalentLMSSimulator) -> None:
        """Ids 1-4 are SuperAdmin, Admin-Type, Trainer-Type, Learner-Type."""
        types = [u.user_type for u in sim.users[:4]]
        assert types == ["SuperAdmin", "Admin-Type", "Trainer-Type", "Learner-Type"]

    @pytest.mark.parametrize(
        ("path", "ids"),
        [
            ("/v1/users/page_size:10", list(range(1, 11))),
            ("/v1/users/page_size:10,page_number:3", list(range(21, 31))),
            ("/v1/users/page_size:25,page_number:2", list(range(26, 31))),
            ("/v1/users/page_size:10,page_number:4", []),
        ],
        ids=["first-page", "third-page", "short-last-page", "past-the-end"],
    )
    async def test_path_style_pagination(self, client: Client, path: str, ids: list[int]) -> None:
        """page_size/page_number as path parameters."""
        status, users, _ = await client.get(path)
        assert status == 200
        assert [int(u["id"]) for u in users] == ids

    async def test_detail_has_courses(self, client: Client, sim: TalentLMSSimulator) -> None:
        """/users/id:N nests the user's courses with completion data."""
        enrollment = sim.enrollments()[0]
        status, user, _ = await client.get(f"/v1/users/id:{enrollment.user_id}")
        assert status == 200
        assert str(enrollment.course_id) in {c["id"] for c in user["courses"]}
        assert {"completion_status", "completion_percentage", "enrolled_on_timestamp"} <= set(
            user["courses"][0]
        )

    async def test_lookup_by_email(self, client: Client, sim: TalentLMSSimulator) -> None:
        """/users/email:x finds the user."""
        user = sim.users[5]
        status, body, _ = await client.get(f"/v1/users/email:{user.email}")
        assert status == 200 and body["id"] == str(user.id)

    @pytest.mark.parametrize(
        ("path", "status"),
        [
            ("/v1/users/id:999", 404),
            ("/v1/users/id:abc", 400),
            ("/v1/users/page_size:0", 400),
            ("/v1/users/garbage", 400),
            ("/v1/nosuchaction", 400),
        ],
        ids=["unknown-id", "non-integer-id", "zero-page-size", "malformed-params", "unknown-action"],
    )
    async def test_errors(self, client: Client, path: str, status: int) -> None:
        """Bad requests get the documented status and an error body."""
        got, body, _ = await client.get(path)
        assert got == status
        assert set(body["error"]) == {"type", "message"}


class TestCourses:
    async def test_list_and_detail(self, client: Client, sim: TalentLMSSimulator) -> None:
        """The list is abridged; the detail lists enrolled users with completion data."""
        status, courses, _ = await client.get("/v1/courses")
        assert status == 200 and len(courses) == 6
        assert "users" not in courses[0]
        assert DATE_RE.match(courses[0]["creation_date"])
        course_id = sim.enrollments()[0].course_id
        status, detail, _ = await client.get(f"/v1/courses/id:{course_id}")
        assert status == 200
        assert len(detail["users"]) == len(sim.enrollments(course_id=course_id))
        row = detail["users"][0]
        assert row["completion_percentage"].isdigit()
        assert row["completed_on"] == "" or DATE_RE.match(row["completed_on"])
        assert isinstance(row["total_time_seconds"], int)

    async def test_instructors_have_no_progress(self, sim: TalentLMSSimulator) -> None:
        """Seeded instructor enrolments never carry completion."""
        instructors = [e for e in sim.enrollments() if e.role == "instructor"]
        assert instructors
        assert all(e.completed_on is None and e.completion_percentage == 0 for e in instructors)
        for e in sim.enrollments():
            user = sim.user(e.user_id)
            assert user is not None
            assert (e.role == "instructor") == (user.user_type in INSTRUCTOR_USER_TYPES)

    async def test_create_and_delete(self, client: Client, sim: TalentLMSSimulator) -> None:
        """createcourse takes a form body; deletecourse really deletes, enrolments included."""
        status, course, _ = await client.post(
            "/v1/createcourse", {"name": "Sim 101", "code": "ORIGIN-1", "time_limit": "2"}
        )
        assert status == 200
        assert course["code"] == "ORIGIN-1" and course["time_limit"] == "2"
        assert isinstance(course["id"], str)
        course_id = int(course["id"])
        sim.enroll(4, course_id)
        status, body, _ = await client.post("/v1/deletecourse", {"course_id": str(course_id)})
        assert status == 200 and body == {"message": "Operation completed successfully"}
        assert sim.course(course_id) is None
        assert sim.enrollments(course_id=course_id) == []
        status, _, _ = await client.get(f"/v1/courses/id:{course_id}")
        assert status == 404
        status, _, _ = await client.post("/v1/deletecourse", {"course_id": str(course_id)})
        assert status == 404

    async def test_create_needs_a_name_and_a_form(self, client: Client) -> None:
        """A missing name, or a JSON body instead of a form, is a 400."""
        status, _, _ = await client.post("/v1/createcourse", {"code": "x"})
        assert status == 400
        status, _, _ = await client.post("/v1/createcourse", {"name": "x"}, json_body=True)
        assert status == 400

    async def test_create_rejects_a_get(self, client: Client) -> None:
        """Writes that the reference documents as POST refuse GET."""
        status, _, _ = await client.get("/v1/createcourse/name:x")
        assert status == 400


class TestEnrollment:
    async def test_learner_enrolled_as_learner(self, client: Client, sim: TalentLMSSimulator) -> None:
        """A Learner-Type user becomes a learner."""
        course = sim.add_course(name="Fresh")
        status, body, _ = await client.post(
            "/v1/addusertocourse", {"user_id": "4", "course_id": str(course.id)}
        )
        assert status == 200
        assert body == [{"user_id": "4", "course_id": str(course.id), "role": "learner"}]

    @pytest.mark.parametrize("user_id", [1, 2, 3], ids=["SuperAdmin", "Admin-Type", "Trainer-Type"])
    async def test_account_type_forces_instructor(
        self, client: Client, sim: TalentLMSSimulator, user_id: int
    ) -> None:
        """Admins and trainers become instructors even when asked to be learners."""
        course = sim.add_course(name="Fresh")
        status, body, _ = await client.post(
            "/v1/addusertocourse",
            {"user_id": str(user_id), "course_id": str(course.id), "role": "learner"},
        )
        assert status == 200 and body[0]["role"] == "instructor"
        enrollment = sim.enrollment(user_id, course.id)
        assert enrollment is not None and enrollment.role == "instructor"

    async def test_double_enrollment_and_removal(self, client: Client, sim: TalentLMSSimulator) -> None:
        """Enrolling twice is a 400; removeuserfromcourse (a GET) un-enrols."""
        course = sim.add_course(name="Fresh")
        form = {"user_id": "4", "course_id": str(course.id)}
        assert (await client.post("/v1/addusertocourse", form))[0] == 200
        status, body, _ = await client.post("/v1/addusertocourse", form)
        assert status == 400
        assert body["error"]["message"] == "The requested user is already enrolled in this course"
        status, body, _ = await client.get(f"/v1/removeuserfromcourse/user_id:4,course_id:{course.id}")
        assert status == 200 and body["course_name"] == "Fresh"
        assert sim.enrollment(4, course.id) is None
        status, _, _ = await client.get(f"/v1/removeuserfromcourse/user_id:4,course_id:{course.id}")
        assert status == 400

    async def test_user_status_in_course(self, client: Client, sim: TalentLMSSimulator) -> None:
        """getuserstatusincourse returns the capitalised status and units."""
        course = sim.add_course(name="Fresh")
        sim.enroll(4, course.id)
        sim.set_progress(4, course.id, percentage=100, completed_on=1_700_000_000)
        status, body, _ = await client.get(f"/v1/getuserstatusincourse/course_id:{course.id},user_id:4")
        assert status == 200
        assert body["completion_status"] == "Completed"
        assert body["completed_on_timestamp"] == "1700000000"
        assert body["completed_on"] == "14/11/2023, 22:13:20"


class TestRateLimits:
    async def test_defaults_are_the_vendor_limits(self) -> None:
        """200 calls per 5 s and the Small/Basic plan's 2,000 per hour."""
        sim = TalentLMSSimulator(users=1, courses=0, enrollments=0)
        assert (sim.burst_limit, sim.burst_window) == (200, 5.0)
        assert (sim.hourly_limit, sim.hourly_window) == (2000, 3600.0)

    async def test_ratelimit_endpoint_does_not_count(self, sim: TalentLMSSimulator, client: Client) -> None:
        """/v1/ratelimit reports the hourly budget and leaves it alone."""
        await client.get("/v1/users/id:1")
        for _ in range(3):
            status, body, _ = await client.get("/v1/ratelimit")
            assert status == 200
            assert body["limit"] == "2000" and body["remaining"] == "1999"
            assert int(body["reset"]) > time.time()
        assert sim.calls == 4

    async def test_burst_window_rejects_then_recovers(self) -> None:
        """Over the short-window limit → 429 with X-RateLimit-* headers, not counted; OK later."""
        async with TalentLMSSimulator(
            users=3, courses=1, enrollments=0, burst_limit=3, burst_window=0.3
        ) as sim:
            statuses = [(await _raw(sim, "/v1/users"))[0] for _ in range(3)]
            status, body, headers = await _raw(sim, "/v1/users")
            assert statuses == [200, 200, 200]
            assert status == 429
            assert body["error"]["type"] == "api_error"
            assert headers["X-RateLimit-Limit"] == "3"
            assert headers["X-RateLimit-Remaining"] == "0"
            assert int(headers["X-RateLimit-Reset"]) >= int(time.time())
            assert sim.rejected_calls == 1
            await asyncio.sleep(0.35)
            assert (await _raw(sim, "/v1/users"))[0] == 200
            assert sim.rate_limit_status()["remaining"] == 2000 - 4

    async def test_hourly_budget(self) -> None:
        """The hourly plan budget rejects once spent."""
        async with TalentLMSSimulator(users=3, courses=1, enrollments=0, hourly_limit=2) as sim:
            assert [(await _raw(sim, "/v1/users"))[0] for _ in range(3)] == [200, 200, 429]
            status, body, _ = await _raw(sim, "/v1/ratelimit")
            assert status == 200 and body["remaining"] == "0"

    async def test_limits_can_be_turned_off(self) -> None:
        """rate_limits=False admits everything."""
        async with TalentLMSSimulator(
            users=1, courses=0, enrollments=0, rate_limits=False, burst_limit=1
        ) as sim:
            assert [(await _raw(sim, "/v1/users"))[0] for _ in range(3)] == [200] * 3


class TestFaults:
    async def test_500_share_is_deterministic(self) -> None:
        """The same fault_seed faults the same requests, as a TalentLMS api_error 500."""

        async def run() -> list[int]:
            async with TalentLMSSimulator(
                users=5, courses=1, enrollments=0, fault_rate=0.5, fault_seed=3
            ) as sim:
                return [(await _raw(sim, f"/v1/users/id:{i % 5 + 1}"))[0] for i in range(30)]

        first, second = await run(), await run()
        assert first == second
        assert 0 < first.count(500) < 30
        assert set(first) == {200, 500}

    async def test_500_body(self) -> None:
        async with TalentLMSSimulator(users=1, courses=0, enrollments=0, fault_rate=1.0) as sim:
            status, body, _ = await _raw(sim, "/v1/users")
        assert status == 500
        assert body == {"error": {"type": "api_error", "message": "Internal server error"}}

    async def test_dropped_connection(self) -> None:
        """drop_rate closes the connection without an answer."""
        async with TalentLMSSimulator(users=1, courses=0, enrollments=0, drop_rate=1.0) as sim:
            with pytest.raises(aiohttp.ClientConnectionError):
                await _raw(sim, "/v1/users")
            assert sim.faults["drop"] >= 1

    async def test_throttle_burst(self) -> None:
        """throttle_rate starts a 429 burst that ends after throttle_seconds."""
        async with TalentLMSSimulator(
            users=1, courses=0, enrollments=0, throttle_rate=1.0, throttle_seconds=0.2
        ) as sim:
            status, _, headers = await _raw(sim, "/v1/users")
            assert status == 429 and "X-RateLimit-Reset" in headers
            assert (await _raw(sim, "/v1/siteinfo"))[0] == 429
            sim.throttle_rate = 0.0
            await asyncio.sleep(0.25)
            assert (await _raw(sim, "/v1/siteinfo"))[0] == 200
            assert sim.rejected_calls == 2

    async def test_slow_responses(self) -> None:
        async with TalentLMSSimulator(
            users=1, courses=0, enrollments=0, slow_rate=1.0, slow_seconds=0.2
        ) as sim:
            started = time.monotonic()
            assert (await _raw(sim, "/v1/users"))[0] == 200
            assert time.monotonic() - started >= 0.2


class TestDeterminismAndCounters:
    async def test_same_seed_same_tenant(self) -> None:
        """Two simulators with one seed serve identical data."""
        bodies = []
        for _ in range(2):
            async with TalentLMSSimulator(users=20, courses=4, enrollments=40, seed=11) as sim:
                bodies.append((await _raw(sim, "/v1/users"))[1] + [(await _raw(sim, "/v1/courses/id:2"))[1]])
        assert bodies[0] == bodies[1]

    async def test_enrollment_count_is_exact(self) -> None:
        sim = TalentLMSSimulator(users=50, courses=10, enrollments=123, seed=2)
        assert sim.enrollment_count == 123

    async def test_calls_by_route(self, client: Client, sim: TalentLMSSimulator) -> None:
        """Every request is counted, per route."""
        await client.get("/v1/users/page_size:5")
        await client.get("/v1/courses")
        await client.get("/v1/courses/id:1")
        await client.get("/v1/courses/id:2")
        await client.get("/v1/ratelimit")
        assert sim.calls == 5
        assert sim.calls_by_route["GET /v1/users"] == 1
        assert sim.calls_by_route["GET /v1/courses"] == 1
        assert sim.calls_by_route["GET /v1/courses/id"] == 2
        assert sim.calls_by_route["GET /v1/ratelimit"] == 1

    async def test_url_and_connect_config(self, sim: TalentLMSSimulator) -> None:
        assert sim.url.startswith("http://127.0.0.1:") and sim.url.endswith("/api")
        assert sim.connect_config == {"base_url": sim.url, "api_key": sim.api_key}


class TestStatsEndpoint:
    async def test_stats_are_served_without_auth_and_not_counted(self, sim: TalentLMSSimulator) -> None:
        """/_simulator/stats (not part of TalentLMS) reports counters, sizes and limits."""
        await _raw(sim, "/v1/courses")
        root = sim.url.removesuffix("/api")
        async with aiohttp.ClientSession() as session, session.get(root + "/_simulator/stats") as resp:
            stats = await resp.json()
        assert stats["calls"] == 1
        assert stats["calls_by_route"] == {"GET /v1/courses": 1}
        assert stats["counts"]["enrollments"] == sim.enrollment_count
        assert stats["limits"]["burst_limit"] == 200

    def test_fault_routes_from_the_cli_string(self) -> None:
        sim = TalentLMSSimulator(users=1, courses=0, enrollments=0, fault_routes="POST /v1/x, GET /v1/y")
        assert sim.fault_routes == frozenset({"POST /v1/x", "GET /v1/y"})
