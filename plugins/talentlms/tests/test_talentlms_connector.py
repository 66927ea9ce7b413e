"""The TalentLMS connector against its simulator without API v2: reads, the v1 quirks, errors, limits, faults.

Every test on the `sim`/`lms` fixtures runs twice, for the two ways a connection is v1 only: a tenant
without API v2 (api_v2=auto falls back on its 404), and api_v2=off on a tenant that has it. The v2 mode is
tested in test_talentlms_v2.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from lmsconnect_talentlms import (
    COURSE_UPDATE_NOT_SUPPORTED,
    ENROLLED_AS_TRAINER,
    ROLLBACK_FAILED,
    TalentLMSConnector,
)
from lmsconnect_talentlms.testing import TalentLMSSimulator

import lmsconnect
from lmsconnect import (
    ActionFailed,
    AuthenticationError,
    CheckStatus,
    DestructiveActionRefused,
    HttpOptions,
    InvalidInput,
    ItemStatus,
    NotFound,
    NotSupported,
    PermissionDenied,
    ProgressionStatus,
    RateLimited,
    RemoteError,
)
from lmsconnect._models import ModelName
from lmsconnect.plugin import Connector

# 12 attempts: the fault tests fail ~37% of calls in an order that concurrency shuffles; 8 attempts lost a
# call now and then (0.37^8 ≈ 1 in 3,000 calls), 12 make it ~1 in 150,000.
FAST_RETRIES = HttpOptions(max_attempts=12, backoff_base_s=0.01, backoff_max_s=0.05)
MODELS: tuple[ModelName, ...] = ("users", "courses", "course_revisions", "course_progressions")


V1_WAYS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "tenant-without-v2": ({"api_v2": False}, {}),
    "api_v2-off": ({}, {"api_v2": "off"}),
}


@pytest.fixture(params=list(V1_WAYS))
def v1_way(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def v1_options(v1_way: str) -> dict[str, Any]:
    """connect() options that make the connection v1 only (with the `sim` of the same way)."""
    return V1_WAYS[v1_way][1]


@pytest.fixture
async def sim(v1_way: str) -> AsyncIterator[TalentLMSSimulator]:
    options = V1_WAYS[v1_way][0]
    async with TalentLMSSimulator(users=40, courses=6, enrollments=90, seed=5, **options) as simulator:
        yield simulator


@pytest.fixture
async def lms(sim: TalentLMSSimulator, v1_options: dict[str, Any]) -> AsyncIterator[Connector[Any]]:
    async with lmsconnect.connect(
        "talentlms", **sim.connect_config, **v1_options, http=FAST_RETRIES
    ) as connector:
        yield connector


async def read_all(lms: Connector[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for model in MODELS:
        out[model] = sorted([r async for r in lms.list(model)], key=lambda r: r.id)
    return out


def upsert(origin: str, **course: Any) -> dict[str, Any]:
    return {"items": [{"origin_id": origin, "course": {"title": "Course", **course}}]}


class TestConfig:
    def test_domain_becomes_the_https_api_root(self) -> None:
        lms = lmsconnect.connect("talentlms", domain="acme.talentlms.com", api_key="k" * 30)
        assert lms.config.api_root == "https://acme.talentlms.com/api"
        assert "k" * 30 not in repr(lms)

    @pytest.mark.parametrize(
        "config",
        [
            {"api_key": "x"},
            {"api_key": "x", "domain": "a.talentlms.com", "base_url": "https://a.talentlms.com/api"},
            {"api_key": "x", "domain": "https://a.talentlms.com"},
            {"api_key": "x", "domain": "a.talentlms.com", "hourly_budget": 0},
        ],
        ids=["neither", "both", "url-as-domain", "zero-budget"],
    )
    def test_bad_config_is_a_configuration_error(self, config: dict[str, Any]) -> None:
        with pytest.raises(lmsconnect.ConfigurationError):
            lmsconnect.connect("talentlms", **config)


class TestCapabilities:
    def test_every_coverage_field_and_action_is_supported_with_quirk_notes(self) -> None:
        """The coverage table's fields and actions are all `supported`; the quirks are in the v1 mode's
        notes."""
        data = json.loads(TalentLMSConnector.capabilities.to_json())["modes"]["v1"]
        coverage = {
            "users": ["first_name", "last_name", "work_email", "status", "remote_created_at"],
            "courses": ["remote_created_at"],
            "course_revisions": ["course_id", "title", "description", "status", "remote_created_at"],
            "course_progressions": ["user_id", "course_revision_id", "status", "completed_at"],
        }
        base = ["id", "remote_id", "changed_at", "remote_deleted_at", "remote_data"]
        for model, fields in coverage.items():
            assert data["models"][model]["supported"]
            for field in base + fields:
                assert data["models"][model]["fields"][field]["support"] == "supported", (model, field)
        actions = data["actions"]
        upsert_fields = [
            "items.origin_id",
            "items.course.type",
            "items.course.title",
            "items.course.description",
            "items.course.duration",
        ]
        for field in upsert_fields:
            assert actions["upsert_courses"]["fields"][field]["support"] == "supported"
        assert "rounded up" in actions["upsert_courses"]["note"]
        assert COURSE_UPDATE_NOT_SUPPORTED in actions["upsert_courses"]["note"]
        assert actions["deactivate_course"]["flags"] == ["destructive"]
        assert "DELETES" in actions["deactivate_course"]["note"]
        assert actions["enroll_user"]["flags"] == ["rollback"]
        assert "trainer" in actions["enroll_user"]["note"]
        assert not actions["complete_course"]["supported"]
        assert all(f["supported"] for f in data["features"].values())

    async def test_complete_course_is_not_supported(self, lms: Connector[Any]) -> None:
        with pytest.raises(NotSupported):
            await lms.complete_course(course_progression_id="remote:1:1")
        assert lms.stats.calls == 0


class TestReads:
    async def test_users_match_the_tenant(self, lms: Connector[Any], sim: TalentLMSSimulator) -> None:
        users = [u async for u in lms.list(lmsconnect.User)]
        assert [u.remote_id for u in users] == [str(u.id) for u in sim.users]
        first = users[0]
        assert first.work_email == sim.users[0].email
        assert first.status is lmsconnect.UserStatus.ACTIVE
        assert first.remote_created_at is not None
        assert int(first.remote_created_at.timestamp()) == sim.users[0].created_on
        assert first.remote_data is not None and "/v1/users" in first.remote_data
        inactive = {str(u.id) for u in sim.users if u.status == "inactive"}
        assert {u.remote_id for u in users if u.status is lmsconnect.UserStatus.INACTIVE} == inactive

    async def test_users_are_paged_path_style(self, sim: TalentLMSSimulator) -> None:
        """40 users at page_size 15 → 3 calls."""
        async with lmsconnect.connect("talentlms", **sim.connect_config, page_size=15) as lms:
            assert len([u async for u in lms.list("users")]) == 40
        assert sim.calls_by_route["GET /v1/users"] == 3

    async def test_revisions_one_per_course(self, lms: Connector[Any], sim: TalentLMSSimulator) -> None:
        revisions = [r async for r in lms.list(lmsconnect.CourseRevision)]
        assert len(revisions) == len(sim.courses)
        for revision, course in zip(revisions, sim.courses, strict=True):
            assert revision.remote_id == str(course.id)
            assert revision.course_id == lms.make_id("courses", course.id)
            assert revision.title == course.name
            assert revision.status.value == course.status.upper()  # type: ignore[union-attr]

    async def test_progressions_skip_trainers_and_map_status(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        """Learners only; completed/expired/in-progress/enrolled from the course detail's users."""
        progressions = {p.remote_id: p async for p in lms.list(lmsconnect.CourseProgression)}
        learners = [e for e in sim.enrollments() if e.role == "learner"]
        assert any(e.role == "instructor" for e in sim.enrollments())
        assert set(progressions) == {f"{e.user_id}:{e.course_id}" for e in learners}
        for e in learners:
            p = progressions[f"{e.user_id}:{e.course_id}"]
            assert p.user_id == lms.make_id("users", e.user_id)
            assert p.course_revision_id == lms.make_id("course_revisions", e.course_id)
            if e.completed_on:
                assert p.status is ProgressionStatus.COMPLETED
                assert p.completed_at is not None and int(p.completed_at.timestamp()) == e.completed_on
            elif e.expired_on:
                assert p.status is ProgressionStatus.DROPPED
            elif e.completion_percentage:
                assert p.status is ProgressionStatus.IN_PROGRESS
            else:
                assert p.status is ProgressionStatus.ENROLLED
            assert p.enrolled_at is not None and int(p.enrolled_at.timestamp()) == e.enrolled_on

    async def test_full_read_costs_one_call_per_course_not_per_pair(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        """users: 1 page; courses, revisions, progressions: 1 list each; plus 1 detail per course."""
        await read_all(lms)
        counted = sim.calls - sim.calls_by_route["GET /v1/ratelimit"]
        assert counted == 1 + 3 + len(sim.courses)
        assert sim.calls_by_route["GET /v1/courses/id"] == len(sim.courses)
        assert sim.calls_by_route["GET /v1/getuserstatusincourse"] == 0

    async def test_models_read_together_share_one_course_list(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        """Courses, revisions and progressions streamed concurrently list /v1/courses once; a later read
        lists again (fresh data)."""

        async def count(model: ModelName) -> int:
            return len([r async for r in lms.list(model)])

        counts = await asyncio.gather(*(count(m) for m in MODELS))
        assert counts[1] == counts[2] == len(sim.courses) and counts[3] > 0
        assert sim.calls_by_route["GET /v1/courses"] == 1
        assert await count("courses") == len(sim.courses)
        assert sim.calls_by_route["GET /v1/courses"] == 2


class TestUpsertCourses:
    @pytest.mark.parametrize(
        ("minutes", "days"),
        [(1, 1), (1440, 1), (1441, 2), (2 * 1440, 2), (0, 0)],
        ids=["1min", "1day", "1441min", "2days", "zero"],
    )
    async def test_duration_rounds_up_to_whole_days_on_the_wire(
        self, lms: Connector[Any], sim: TalentLMSSimulator, minutes: int, days: int
    ) -> None:
        result = await lms.upsert_courses(upsert(f"d-{minutes}", duration=minutes))
        item = result.item(f"d-{minutes}")
        assert item.status is ItemStatus.CREATED
        (course,) = sim.courses_with_code(f"d-{minutes}")
        assert course.time_limit == days
        assert item.remote_id == str(course.id)

    async def test_repeated_upsert_creates_one_course(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        payload = upsert("same", description="About it", duration=90)
        first = (await lms.upsert_courses(payload)).item("same")
        second = (await lms.upsert_courses(payload)).item("same")
        assert (first.status, second.status) == (ItemStatus.CREATED, ItemStatus.UNCHANGED)
        assert first.id == second.id
        assert len(sim.courses_with_code("same")) == 1

    async def test_changed_course_fails_per_item_with_update_not_supported(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        """v1 has no course edit: differing fields are a per-item failure, never 'updated'."""
        await lms.upsert_courses(upsert("edit-me", duration=60))
        payload = {
            "items": [
                {"origin_id": "edit-me", "course": {"title": "Renamed", "duration": 60 * 24 * 3}},
                {"origin_id": "fresh", "course": {"title": "Fresh"}},
            ]
        }
        result = await lms.upsert_courses(payload)
        failed = result.item("edit-me")
        assert failed.status is ItemStatus.FAILED
        assert failed.error is not None and failed.error.code == COURSE_UPDATE_NOT_SUPPORTED
        assert "title, duration" in failed.error.message
        assert result.item("fresh").status is ItemStatus.CREATED
        (course,) = sim.courses_with_code("edit-me")
        assert course.name == "Course" and course.time_limit == 1

    async def test_create_whose_answer_was_lost_is_found_not_duplicated(self) -> None:
        """A dropped createcourse answer (applied by TalentLMS) is confirmed by listing; a retry
        finds the course by code."""
        async with TalentLMSSimulator(
            users=4, courses=1, enrollments=0, drop_rate=1.0, fault_routes={"POST /v1/createcourse"}
        ) as sim:
            async with lmsconnect.connect("talentlms", **sim.connect_config, http=FAST_RETRIES) as lms:
                first = (await lms.upsert_courses(upsert("lost"))).item("lost")
                second = (await lms.upsert_courses(upsert("lost"))).item("lost")
            assert sim.calls_by_route["POST /v1/createcourse"] == 1
            assert first.status is ItemStatus.CREATED and "confirmed" in first.detail
            assert second.status is ItemStatus.UNCHANGED
            assert len(sim.courses_with_code("lost")) == 1

    async def test_write_refused_with_429_is_sent_again(self) -> None:
        """A 429 on createcourse was not applied: the write waits and is sent again, once created."""
        sim = TalentLMSSimulator(users=4, courses=1, enrollments=0, burst_limit=1, burst_window=0.3)
        async with sim, lmsconnect.connect("talentlms", **sim.connect_config) as lms:
            item = (await lms.upsert_courses(upsert("throttled"))).item("throttled")
            assert lms.stats.rejected >= 1
        assert item.status is ItemStatus.CREATED
        assert sim.rejected_calls >= 1
        assert len(sim.courses_with_code("throttled")) == 1

    async def test_unsupported_inputs_are_refused_before_any_call(self, lms: Connector[Any]) -> None:
        with pytest.raises(NotSupported):
            await lms.upsert_courses(upsert("u", course_url="https://x.example/c"))
        with pytest.raises(InvalidInput):
            await lms.upsert_courses(upsert("u", duration=-5))
        assert lms.stats.calls == 0


class TestDeactivateCourse:
    async def test_deletes_the_course_and_the_table_says_destructive(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        assert (await lms.resolve_capabilities()).actions["deactivate_course"].destructive
        course = sim.courses[0]
        assert sim.enrollments(course_id=course.id)
        result = await lms.deactivate_course(course_id=lms.make_id("courses", course.id))
        assert result.items[0].status is ItemStatus.UPDATED
        assert "deleted" in result.items[0].detail
        assert sim.course(course.id) is None
        assert sim.enrollments(course_id=course.id) == []
        assert str(course.id) not in {c.remote_id async for c in lms.list("courses")}

    async def test_refused_when_the_connection_forbids_destructive_actions(
        self, sim: TalentLMSSimulator, v1_options: dict[str, Any]
    ) -> None:
        """Refused before any write; api_v2=off makes no call at all, auto only its probe."""
        course = sim.courses[0]
        async with lmsconnect.connect(
            "talentlms", **sim.connect_config, **v1_options, allow_destructive=False
        ) as lms:
            with pytest.raises(DestructiveActionRefused) as info:
                await lms.deactivate_course(course_id=lms.make_id("courses", course.id))
            assert lms.capabilities.mode == "v1"
        assert info.value.code == "LMS.DESTRUCTIVE_REFUSED"
        assert sim.course(course.id) is not None
        assert set(sim.calls_by_route) <= {"GET /v1/ratelimit", "GET /v2/health"}
        if v1_options:
            assert sim.calls == 0

    async def test_unknown_course_is_not_found(self, lms: Connector[Any]) -> None:
        with pytest.raises(NotFound) as info:
            await lms.deactivate_course(course_id="remote:9999")
        assert info.value.status == 404
        assert "does not exist" in (info.value.vendor_message or "")

    async def test_a_user_id_is_not_a_course_id(self, lms: Connector[Any]) -> None:
        with pytest.raises(InvalidInput):
            await lms.deactivate_course(course_id=lms.make_id("users", 1))


class TestEnrollUser:
    async def test_learner_is_enrolled_then_unchanged(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        course = sim.add_course(name="New")
        revision = lms.make_id("course_revisions", course.id)
        user = lms.make_id("users", 4)
        first = await lms.enroll_user(user_id=user, course_revision_id=revision)
        assert first.items[0].status is ItemStatus.CREATED
        assert first.items[0].id == lms.make_id("course_progressions", f"4:{course.id}")
        again = await lms.enroll_user(user_id=user, course_revision_id=revision)
        assert again.items[0].status is ItemStatus.UNCHANGED
        enrollment = sim.enrollment(4, course.id)
        assert enrollment is not None and enrollment.role == "learner"

    @pytest.mark.parametrize("user_id", [1, 2, 3], ids=["SuperAdmin", "Admin-Type", "Trainer-Type"])
    async def test_trainer_enrollment_is_rolled_back_and_raised(
        self, lms: Connector[Any], sim: TalentLMSSimulator, user_id: int
    ) -> None:
        course = sim.add_course(name="New")
        with pytest.raises(ActionFailed) as info:
            await lms.enroll_user(
                user_id=lms.make_id("users", user_id),
                course_revision_id=lms.make_id("course_revisions", course.id),
            )
        error = info.value.result.items[0].error
        assert error is not None and error.code == ENROLLED_AS_TRAINER
        assert "rolled back" in str(info.value)
        assert sim.enrollment(user_id, course.id) is None
        assert sim.calls_by_route["GET /v1/removeuserfromcourse"] == 1

    async def test_failed_rollback_says_the_user_is_still_a_trainer(self) -> None:
        async with TalentLMSSimulator(
            users=4,
            courses=1,
            enrollments=0,
            fault_rate=1.0,
            fault_routes={"GET /v1/removeuserfromcourse"},
        ) as sim:
            options = HttpOptions(max_attempts=2, backoff_base_s=0.01)
            async with lmsconnect.connect("talentlms", **sim.connect_config, http=options) as lms:
                with pytest.raises(ActionFailed) as info:
                    await lms.enroll_user(user_id="remote:3", course_revision_id="remote:1")
            error = info.value.result.items[0].error
            assert error is not None and error.code == ROLLBACK_FAILED
            assert "STILL ENROLLED AS A TRAINER" in str(info.value)
            enrollment = sim.enrollment(3, 1)
            assert enrollment is not None and enrollment.role == "instructor"

    async def test_existing_trainer_enrollment_is_left_alone(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        course = sim.add_course(name="New")
        sim.enroll(3, course.id)
        with pytest.raises(ActionFailed) as info:
            await lms.enroll_user(user_id="remote:3", course_revision_id=f"remote:{course.id}")
        assert "already enrolled" in str(info.value)
        assert sim.enrollment(3, course.id) is not None


class TestErrorsAndCheck:
    async def test_bad_key_is_401_authentication_error(self, sim: TalentLMSSimulator) -> None:
        config = {**sim.connect_config, "api_key": "wrong-key-123"}
        async with lmsconnect.connect("talentlms", **config) as lms:
            with pytest.raises(AuthenticationError) as info:
                await lms.list("users").__anext__()
            assert info.value.status == 401
            report = await lms.check()
        assert not report.ok
        assert report.get("credentials", "credentials").status is CheckStatus.ERROR
        assert "wrong-key-123" not in json.dumps(report.to_dict())

    async def test_api_not_enabled_is_403_permission_denied(self) -> None:
        sim = TalentLMSSimulator(users=2, courses=1, enrollments=0, api_enabled=False)
        async with sim, lmsconnect.connect("talentlms", **sim.connect_config) as lms:
            with pytest.raises(PermissionDenied) as info:
                await lms.list("courses").__anext__()
            assert info.value.status == 403
            report = await lms.check()
        item = report.get("credentials", "api_enabled")
        assert item.status is CheckStatus.MISSING_PERMISSION
        assert "Enable API" in item.permissions[0]
        assert report.get("model", "users").status is CheckStatus.MISSING_PERMISSION

    async def test_check_passes_per_model(self, lms: Connector[Any]) -> None:
        report = await lms.check()
        assert report.ok
        for model in MODELS:
            assert report.get("model", model).status is CheckStatus.OK

    async def test_persistent_500_is_a_remote_error(self) -> None:
        async with TalentLMSSimulator(users=2, courses=1, enrollments=0, fault_rate=1.0) as sim:
            options = HttpOptions(max_attempts=2, backoff_base_s=0.01)
            async with lmsconnect.connect("talentlms", **sim.connect_config, http=options) as lms:
                with pytest.raises(RemoteError) as info:
                    await lms.list("users").__anext__()
        assert info.value.status == 500
        assert info.value.code == "REMOTE.ERROR"

    async def test_persistent_429_is_rate_limited(self) -> None:
        async with TalentLMSSimulator(
            users=2, courses=1, enrollments=0, throttle_rate=1.0, throttle_seconds=0.05
        ) as sim:
            options = HttpOptions(max_attempts=1)
            async with lmsconnect.connect("talentlms", **sim.connect_config, http=options) as lms:
                with pytest.raises(RateLimited) as info:
                    await lms.list("users").__anext__()
        assert info.value.status == 429
        assert info.value.code == "REMOTE.RATE_LIMITED"

    async def test_vendor_rate_limit_is_waited_out(self) -> None:
        """A vendor window tighter than ours produces 429s that are waited out, not raised."""
        async with TalentLMSSimulator(
            users=20, courses=12, enrollments=60, burst_limit=6, burst_window=0.3
        ) as sim:
            async with lmsconnect.connect("talentlms", **sim.connect_config, http=FAST_RETRIES) as lms:
                progressions = [p async for p in lms.list("course_progressions")]
                assert lms.stats.rejected > 0
            assert sim.rejected_calls > 0
            assert len(progressions) == len([e for e in sim.enrollments() if e.role == "learner"])

    async def test_hourly_budget_is_calibrated_from_ratelimit(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """/v1/ratelimit's limit, remaining and reset pace the client: no 429 from the hour."""
        monkeypatch.setattr(TalentLMSConnector, "plan_window_s", 1.0)
        async with TalentLMSSimulator(
            users=5, courses=4, enrollments=10, hourly_limit=3, hourly_window=1.0
        ) as sim:
            async with lmsconnect.connect("talentlms", **sim.connect_config) as lms:
                started = time.monotonic()
                records = await read_all(lms)
                elapsed = time.monotonic() - started
                assert isinstance(lms, TalentLMSConnector) and lms.plan_limit == 3
            assert sim.rejected_calls == 0
            assert len(records["courses"]) == 4
            # 10 counted calls at 3 per (1 s) window need at least 3 window resets.
            assert elapsed >= 2.0

    async def test_passthrough_uses_basic_auth(self, lms: Connector[Any], sim: TalentLMSSimulator) -> None:
        response = await lms.passthrough("GET", "/v1/siteinfo")
        assert response.status == 200
        assert response.json()["total_users"] == str(len(sim.users))


class TestFaults:
    async def test_full_read_under_faults_equals_a_clean_read(self) -> None:
        """500s, dropped connections, slow answers and 429 bursts change nothing in the records."""
        size: dict[str, Any] = {"users": 60, "courses": 10, "enrollments": 200, "seed": 9}
        clean_sim = TalentLMSSimulator(**size)
        async with (
            clean_sim,
            lmsconnect.connect("talentlms", **clean_sim.connect_config, page_size=20) as lms,
        ):
            clean = await read_all(lms)
        faults: dict[str, Any] = {
            "fault_rate": 0.25,
            "drop_rate": 0.1,
            "slow_rate": 0.1,
            "slow_seconds": 0.05,
            "throttle_rate": 0.02,
            "throttle_seconds": 0.05,
            "fault_seed": 4,
        }
        async with TalentLMSSimulator(**size, **faults) as sim:
            async with lmsconnect.connect(
                "talentlms", **sim.connect_config, page_size=20, http=FAST_RETRIES
            ) as lms:
                faulty = await read_all(lms)
                assert lms.stats.retries > 0
            assert sim.faults["500"] > 0 and sim.faults["drop"] > 0
        assert faulty == clean
        assert sum(len(v) for v in clean.values()) > 100
