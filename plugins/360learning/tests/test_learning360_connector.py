"""The 360Learning connector against its simulator: one class per behaviour issue 6 asks for."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lmsconnect_360learning import CAPABILITIES, Learning360Connector
from lmsconnect_360learning.testing import ALL_SCOPES, Learning360Simulator

import lmsconnect
from lmsconnect import (
    ActionFailed,
    AuthenticationError,
    CheckStatus,
    ConfigurationError,
    Course,
    CourseItem,
    CourseProgression,
    CourseProvider,
    CourseRevision,
    HttpOptions,
    ItemStatus,
    NotSupported,
    PermissionDenied,
    ProgressionStatus,
    RevisionStatus,
    User,
    UserRole,
    UserStatus,
)
from lmsconnect.plugin import Connector

SMALL: dict[str, Any] = {"users": 40, "courses": 15, "enrollments": 120, "seed": 5}
FAST: dict[str, Any] = {"poll_interval_s": 0.02}

# The coverage table (seeds/360learning-connector-coverage.md), field by field.
COVERAGE_MODELS = {
    "users": ["first_name", "last_name", "work_email", "status"],
    "course_providers": ["name"],
    "courses": ["provider_id", "remote_created_at"],
    "course_revisions": ["course_id", "title", "description", "remote_url", "status", "remote_created_at"],
    "course_progressions": ["user_id", "course_revision_id", "status", "enrolled_at", "completed_at"],
}
COMMON = ["id", "remote_id", "changed_at", "remote_deleted_at", "remote_data"]
COVERAGE_ACTIONS = {
    "upsert_courses": [
        "items.origin_id",
        "items.course.type",
        "items.course.title",
        "items.course.description",
        "items.course.course_url",
        "items.course.thumbnail_url",
        "items.course.duration",
        "items.course.languages",
    ],
    "deactivate_course": ["course_id"],
    "enroll_user": ["user_id", "course_revision_id"],
    "complete_course": ["course_progression_id", "completed_at", "score"],
}
COVERAGE_NOTES = {
    "deactivate_course": "This action archives the course in 360Learning. It can be restored later.",
    "enroll_user": "The enrollment is processed asynchronously by 360Learning. The enrollment will be "
    "created in 360Learning after processing completes.",
    "complete_course": "The completion is processed asynchronously by 360Learning. It may take 1-30 seconds "
    "for the completion to appear. Wait before running a sync.",
}


def course_input(origin: str, **overrides: Any) -> dict[str, Any]:
    course: dict[str, Any] = {
        "title": f"Course {origin}",
        "description": "Deep links into our catalog",
        "course_url": f"https://content.example.com/{origin}",
        "thumbnail_url": f"https://content.example.com/{origin}.png",
        "duration": 45,
        "languages": ["en", "fr"],
    }
    course.update(overrides)
    return {"origin_id": origin, "course": course}


@pytest.fixture
async def sim() -> AsyncIterator[Learning360Simulator]:
    async with Learning360Simulator(**SMALL, processing_delay=0.3) as running:
        yield running


@pytest.fixture
async def lms(sim: Learning360Simulator) -> AsyncIterator[Connector[Any]]:
    async with lmsconnect.connect("360learning", **sim.connect_config, **FAST) as connector:
        yield connector


async def read_all(lms: Connector[Any]) -> dict[str, list[Any]]:
    data: dict[str, list[Any]] = {}
    for model in (User, CourseProvider, Course, CourseRevision, CourseProgression):
        data[model.model] = [record async for record in lms.list(model)]
    return data


async def own_course(lms: Connector[Any], origin: str = "own-1") -> str:
    """The revision id of a course of the connector's integration (made by upsert)."""
    result = await lms.upsert_courses({"items": [course_input(origin)]})
    return lms.make_id("course_revisions", str(result.items[0].remote_id))


def active_user(sim: Learning360Simulator, index: int = 0) -> str:
    users = [u for u in sim.company.users.values() if u.status == "active"]
    return lmsconnect.plugin.make_id("360learning", "users", users[index].id)


class TestCapabilities:
    def test_every_coverage_field_and_action_is_supported(self) -> None:
        """The capability JSON marks every field and action of the coverage table supported."""
        data = json.loads(CAPABILITIES.to_json())
        for model, fields in COVERAGE_MODELS.items():
            assert data["models"][model]["supported"], model
            for field in COMMON + fields:
                assert data["models"][model]["fields"][field]["support"] == "supported", (model, field)
        for action, fields in COVERAGE_ACTIONS.items():
            assert data["actions"][action]["supported"], action
            for field in fields:
                assert data["actions"][action]["fields"][field]["support"] == "supported", (action, field)
        assert all(
            data["features"][f]["supported"] for f in ("passthrough", "scope_testing", "per_model_tests")
        )

    def test_notes_quote_the_coverage_table_and_flags(self) -> None:
        """The vendor's notes are in the table; enrollment and completion are flagged asynchronous."""
        for action, note in COVERAGE_NOTES.items():
            assert note in CAPABILITIES.actions[action].note, action  # type: ignore[index]
        assert CAPABILITIES.actions["enroll_user"].asynchronous
        assert CAPABILITIES.actions["complete_course"].asynchronous
        assert not CAPABILITIES.actions["deactivate_course"].destructive
        assert not CAPABILITIES.actions["upsert_courses"].asynchronous

    def test_entry_point_resolves_to_the_connector(self) -> None:
        """`360learning` is installed through the lmsconnect.connectors entry point."""
        infos = {info.slug: info for info in lmsconnect.available_connectors()}
        assert infos["360learning"].ok and infos["360learning"].distribution == "lmsconnect-360learning"


class TestConfig:
    def test_regions_pick_the_vendor_hosts(self) -> None:
        """eu and us map to 360Learning's two production hosts; base_url overrides them."""
        eu = lmsconnect.connect("360learning", client_id="a", client_secret="b")
        us = lmsconnect.connect("360learning", client_id="a", client_secret="b", region="us")
        custom = lmsconnect.connect("360learning", client_id="a", client_secret="b", base_url="http://x:1/")
        assert isinstance(eu, Learning360Connector) and isinstance(us, Learning360Connector)
        assert eu.api_url == "https://app.360learning.com"
        assert us.api_url == "https://app.us.360learning.com"
        assert isinstance(custom, Learning360Connector) and custom.api_url == "http://x:1"

    def test_bad_region_and_hidden_secret(self) -> None:
        """An unknown region is a ConfigurationError; the client secret never shows."""
        with pytest.raises(ConfigurationError, match="region"):
            lmsconnect.connect("360learning", client_id="a", client_secret="b", region="mars")
        connector = lmsconnect.connect("360learning", client_id="a", client_secret="top-secret-value")
        assert "top-secret-value" not in repr(connector)

    async def test_wrong_secret_is_authentication_error(self, sim: Learning360Simulator) -> None:
        """invalid_client from the token endpoint becomes AuthenticationError naming it."""
        config = {**sim.connect_config, "client_secret": "nope-nope"}
        async with lmsconnect.connect("360learning", **config) as lms:
            with pytest.raises(AuthenticationError, match="invalid_client"):
                await lms.list(User).__anext__()


class TestTokens:
    async def test_token_expiring_mid_read_is_refreshed_once(self, sim: Learning360Simulator) -> None:
        """A token revoked between pages of five concurrent reads costs one new token; reads complete."""
        big = Learning360Simulator(users=1600, courses=3, enrollments=0)
        async with big, lmsconnect.connect("360learning", **big.connect_config) as lms:
            clean = [u.id async for u in lms.list(User)]
            assert big.tokens_issued == 1

            expired = asyncio.Event()

            async def read_with_expiry() -> list[str]:
                out = []
                async for user in lms.list(User):
                    out.append(user.id)
                    if len(out) == 700:
                        # The first reader past page 2 makes the token expire; all are past page 1.
                        if not expired.is_set():
                            expired.set()
                            big.expire_tokens()
                        await asyncio.sleep(0.01)
                return out

            results = await asyncio.gather(*(read_with_expiry() for _ in range(5)))
        assert all(result == clean for result in results)
        assert big.tokens_issued == 2
        assert big.calls_by_route["POST /api/v2/oauth2/token"] == 2

    async def test_token_renewed_before_expiry(self) -> None:
        """With a 1 s token lifetime, reads spanning 1.5 s never meet a 401: renewal comes first."""
        async with (
            Learning360Simulator(users=10, courses=2, enrollments=0, token_lifetime=1.0) as short,
            lmsconnect.connect("360learning", **short.connect_config) as lms,
        ):
            for _ in range(8):
                assert [u async for u in lms.list(User)]
                await asyncio.sleep(0.2)
            assert short.tokens_issued >= 2
            assert lms.stats.by_status[401] == 0

    async def test_expires_in_as_a_string(self) -> None:
        """The docs' string form of expires_in is accepted."""
        async with (
            Learning360Simulator(users=5, courses=1, enrollments=0, expires_in_as_string=True) as sim,
            lmsconnect.connect("360learning", **sim.connect_config) as lms,
        ):
            assert len([u async for u in lms.list(User)]) == 5

    async def test_passthrough_can_return_errors(self, lms: Connector[Any]) -> None:
        """With raise_for_status=False (as the CLI calls it) a vendor error comes back as a response."""
        response = await lms.passthrough("GET", f"/api/v2/courses/{'0' * 24}", raise_for_status=False)
        assert response.status == 404 and response.json()["error"]["code"] == "courseNotFound"
        created = await lms.passthrough(
            "POST", "/api/v2/integrations", json_body={"externalPlatform": "Our Catalog"}
        )
        assert created.status == 201 and created.json()["externalPlatform"] == "Our Catalog"

    async def test_every_call_carries_the_version_header(self, lms: Connector[Any]) -> None:
        """The simulator refuses calls without 360-api-version; all reads and a passthrough succeed."""
        await read_all(lms)
        response = await lms.passthrough("GET", "/api/v2/groups")
        assert response.status == 200 and isinstance(response.json(), list)


class TestReads:
    async def test_models_map_the_vendor_fields(self, sim: Learning360Simulator, lms: Connector[Any]) -> None:
        """Users, providers, courses, revisions and per-attempt progressions carry the 360Learning data."""
        data = await read_all(lms)
        company = sim.company
        assert len(data["users"]) == len(company.users)
        deleted = next(u for u in data["users"] if u.remote_data["/api/v2/users"]["status"] == "deleted")
        assert deleted.status is UserStatus.INACTIVE and deleted.remote_deleted_at is not None
        names = {p.name for p in data["course_providers"]}
        assert {i.external_platform for i in company.integrations.values()} <= names
        builtin = {c.external_platform for c in company.courses.values() if c.integration_id is None} - {None}
        assert builtin <= names
        providers = {p.id for p in data["course_providers"]}
        assert all(c.provider_id in providers for c in data["courses"] if c.provider_id)
        archived = [r for r in data["course_revisions"] if r.status is RevisionStatus.INACTIVE]
        assert len(archived) == sum(1 for c in company.courses.values() if c.status != "published")
        revision = data["course_revisions"][0]
        assert revision.remote_url == f"{sim.url}/course/play/{revision.remote_id}"
        assert len(data["course_progressions"]) == len(company.attempts)
        statuses = {p.status for p in data["course_progressions"]}
        assert {
            ProgressionStatus.COMPLETED,
            ProgressionStatus.IN_PROGRESS,
            ProgressionStatus.ENROLLED,
        } <= statuses
        done = next(p for p in data["course_progressions"] if p.status is ProgressionStatus.COMPLETED)
        assert done.completed_at is not None and done.enrolled_at is not None

    async def test_pages_follow_relative_links(self) -> None:
        """Relative Link targets are resolved against the API host."""
        async with (
            Learning360Simulator(users=1100, courses=2, enrollments=0, link_style="relative") as sim,
            lmsconnect.connect("360learning", **sim.connect_config) as lms,
        ):
            assert len([u async for u in lms.list(User)]) == 1100
            assert sim.calls_by_route["GET /api/v2/users"] == 3

    async def test_429s_are_absorbed(self) -> None:
        """Reads past a (tightened) vendor limit get 429s, wait them out and return everything."""
        async with (
            Learning360Simulator(users=2600, courses=2, enrollments=0, read_limit=2, rate_window=0.2) as sim,
            lmsconnect.connect("360learning", **sim.connect_config, reads_per_second=50) as lms,
        ):
            users = [u async for u in lms.list(User)]
            assert len(users) == 2600
            assert sim.rejected_calls > 0 and lms.stats.rejected == sim.rejected_calls

    async def test_full_read_under_faults_equals_a_clean_read(self) -> None:
        """500s, 429s and dropped connections change nothing in what a full read returns."""
        options: dict[str, Any] = {"users": 1200, "courses": 30, "enrollments": 1500, "seed": 9}
        # remote_url would otherwise carry each simulator's own port.
        web: dict[str, Any] = {"web_url": "https://acme.360learning.com"}
        async with (
            Learning360Simulator(**options) as clean_sim,
            lmsconnect.connect("360learning", **clean_sim.connect_config, **web) as lms,
        ):
            clean = await read_all(lms)
        faulty = Learning360Simulator(
            **options, fault_rate=0.2, throttle_rate=0.05, drop_rate=0.05, fault_seed=4
        )
        http = HttpOptions(backoff_base_s=0.01, max_attempts=10)
        async with (
            faulty,
            lmsconnect.connect("360learning", http=http, **faulty.connect_config, **web) as lms,
        ):
            noisy = await read_all(lms)
        assert sum(faulty.faults_injected.values()) > 0
        for model, records in clean.items():
            assert [r.id for r in noisy[model]] == [r.id for r in records], model
            assert noisy[model] == records, model


class TestBeyondTheCoverageTable:
    """Issue 13: the fields 360Learning returns in the answers the connector already reads."""

    async def test_progressions_carry_progress_score_time_and_activity(
        self, sim: Learning360Simulator, lms: Connector[Any]
    ) -> None:
        """Each attempt's progress, score, time spent (ms → s) and activity times are on its progression."""
        progressions = [p async for p in lms.list(CourseProgression)]
        attempts = sim.company.attempts
        assert len(progressions) == len(attempts)
        for progression in progressions:
            attempt = attempts[progression.remote_id.split(":")[2]]
            assert progression.progress == attempt.progress
            assert progression.score == attempt.score
            assert progression.time_spent == round(attempt.time_spent / 1000)
            assert progression.started_at is not None
            assert progression.started_at.isoformat()[:19] == attempt.first_activity_at[:19]
            assert progression.last_activity_at is not None
            assert progression.last_activity_at.isoformat()[:19] == attempt.last_activity_at[:19]
            assert progression.due_at is None and progression.remote_updated_at is None
        done = [p for p in progressions if p.status is ProgressionStatus.COMPLETED]
        assert done and all(p.progress == 100 and p.score is not None for p in done)
        assert any(p.time_spent and p.time_spent > 60 for p in progressions)

    async def test_users_carry_username_language_and_job(
        self, sim: Learning360Simulator, lms: Connector[Any]
    ) -> None:
        """username, locale (`lang`) and job title (`job`) come from the user; role stays unknown (None)."""
        users = {u.remote_id: u async for u in lms.list(User)}
        for remote_id, sim_user in sim.company.users.items():
            user = users[remote_id]
            assert user.username == sim_user.username
            assert user.locale == sim_user.lang
            assert user.job_title == sim_user.job
            assert user.role is None and user.remote_role is None and user.custom_fields is None
        assert any(u.job_title for u in users.values())

    async def test_revisions_carry_languages_duration_and_modification(
        self, sim: Learning360Simulator, lms: Connector[Any]
    ) -> None:
        """languages lists the default language then published translations only; duration in minutes."""
        course = next(c for c in sim.company.courses.values() if c.translations)
        course.draft_translations = ["ja"]
        course.duration = 37
        revisions = {r.remote_id: r async for r in lms.list(CourseRevision)}
        revision = revisions[course.id]
        assert revision.languages == (course.default_lang, *course.translations)
        assert "ja" not in (revision.languages or ())
        assert revision.duration == 37
        assert revision.remote_updated_at is not None
        assert revision.remote_updated_at.isoformat()[:19] == course.modified_at[:19]
        assert all(r.code is None and r.thumbnail_url is None for r in revisions.values())

    async def test_read_roles_gives_each_user_the_strongest_group_role(
        self, sim: Learning360Simulator
    ) -> None:
        """With read_roles, role/remote_role come from group memberships: one call per group, no more."""
        company = sim.company
        # A second group makes the learner an editor: the stronger role wins across groups.
        learner = next(u for u in company.users if u != company.admin_id)
        other = next(g for g in company.groups if learner not in {
            m.user_id for m in company.memberships.get(g, {}).values()
        })
        company.add_membership(other, learner, "editor")
        sim.reset_counters()
        async with lmsconnect.connect("360learning", **sim.connect_config, read_roles=True) as lms:
            users = {u.remote_id: u async for u in lms.list(User)}
        assert sim.calls_by_route["GET /api/v2/groups"] == 1
        assert sim.calls_by_route["GET /api/v2/groups/{groupId}/roles"] == len(company.groups)
        admin = users[company.admin_id]
        assert admin.role is UserRole.ADMIN and admin.remote_role == "owner"
        assert users[learner].role is UserRole.INSTRUCTOR and users[learner].remote_role == "editor"
        held: dict[str, set[str]] = {}
        for memberships in company.memberships.values():
            for m in memberships.values():
                held.setdefault(m.user_id, set()).add(m.role)
        for remote_id, user in users.items():
            if held.get(remote_id) == {"learner"}:
                assert user.role is UserRole.LEARNER and user.remote_role == "learner"
            if held.get(remote_id) == {"learner", "analyst"}:
                assert user.role is UserRole.LEARNER  # analyst is weaker: it maps to no unified role
        assert {UserRole.ADMIN, UserRole.INSTRUCTOR, UserRole.LEARNER} <= {u.role for u in users.values()}

    async def test_read_custom_fields_gives_each_user_its_values_by_name(
        self, sim: Learning360Simulator
    ) -> None:
        """With read_custom_fields, custom_fields maps field names to values: one call per user, no more."""
        company = sim.company
        names = {f.id: f.name for f in company.custom_fields.values() if f.target_type == "users"}
        sim.reset_counters()
        async with lmsconnect.connect("360learning", **sim.connect_config, read_custom_fields=True) as lms:
            users = {u.remote_id: u async for u in lms.list(User)}
        assert sim.calls_by_route["GET /api/v2/custom-fields"] == 1
        assert sim.calls_by_route["GET /api/v2/users/{userId}/custom-fields/values"] == len(company.users)
        for remote_id, user in users.items():
            expected = {names[k]: v for k, v in company.user_custom_values.get(remote_id, {}).items()}
            assert user.custom_fields == (expected or None)
        assert any(u.custom_fields and "Hire date" in u.custom_fields for u in users.values())
        assert all("Content owner" not in (u.custom_fields or {}) for u in users.values())

    async def test_read_path_due_dates_gives_attempts_in_a_path_their_due_date(
        self, sim: Learning360Simulator
    ) -> None:
        """With read_path_due_dates, an attempt played in a path session has the learner's due date there."""
        company = sim.company
        due = {(p.session_id, p.user_id): p.due_date for p in company.path_stats.values()}
        sim.reset_counters()
        async with lmsconnect.connect("360learning", **sim.connect_config, read_path_due_dates=True) as lms:
            progressions = [p async for p in lms.list(CourseProgression)]
        assert sim.calls_by_route["GET /api/v2/paths/stats"] == 1
        with_due = 0
        for progression in progressions:
            attempt = company.attempts[progression.remote_id.split(":")[2]]
            session = attempt.path_session_id
            expected = due.get((session, attempt.user_id)) if session else None
            if expected is None:
                assert progression.due_at is None
            else:
                with_due += 1
                assert progression.due_at is not None
                assert progression.due_at.isoformat()[:19] == expected[:19]
        assert 0 < with_due < len(progressions)

    async def test_without_the_options_no_group_or_custom_field_is_read(
        self, sim: Learning360Simulator, lms: Connector[Any]
    ) -> None:
        """By default no group, custom-field or path endpoint is called; role, custom_fields, due_at None."""
        sim.reset_counters()
        users = [u async for u in lms.list(User)]
        progressions = [p async for p in lms.list(CourseProgression)]
        assert users and all(u.role is None and u.custom_fields is None for u in users)
        assert progressions and all(p.due_at is None for p in progressions)
        assert not any(
            part in route for route in sim.calls_by_route for part in ("groups", "custom-fields", "paths")
        )

    @pytest.mark.parametrize(
        ("option", "scope", "model"),
        [
            ("read_roles", "groups:read", User),
            ("read_custom_fields", "customFields:read", User),
            ("read_path_due_dates", "pathStats:read", CourseProgression),
        ],
    )
    async def test_an_option_without_its_scope_is_named(self, option: str, scope: str, model: Any) -> None:
        """An option whose scope the credential lacks: PermissionDenied and check() name the scope."""
        async with (
            Learning360Simulator(**SMALL, scopes=ALL_SCOPES - {scope}) as sim,
            lmsconnect.connect("360learning", **sim.connect_config, **{option: True}) as lms,
        ):
            with pytest.raises(PermissionDenied) as info:
                await lms.list(model).__anext__()
            report = await lms.check()
        assert info.value.permission == scope
        item = report.get("model", model.model)
        assert item.status is CheckStatus.MISSING_PERMISSION and item.permissions == (scope,)

    async def test_option_calls_are_named_by_their_route(self, lms: Connector[Any]) -> None:
        """Telemetry names the options' per-group and per-user calls by route, never by an id."""
        assert lms.http.route_of("/api/v2/groups/acme-sales/roles") == "/api/v2/groups/{group_id}/roles"
        assert (
            lms.http.route_of("/api/v2/users/jdoe/custom-fields/values")
            == "/api/v2/users/{user_id}/custom-fields/values"
        )
        assert lms.http.route_of("/api/v2/paths/stats") == "/api/v2/paths/stats"

    async def test_course_items_are_not_supported_and_say_why(self, lms: Connector[Any]) -> None:
        """Listing CourseItem raises NotSupported quoting the reason, before any call."""
        before = lms.stats.calls
        with pytest.raises(NotSupported, match="lists no course content"):
            lms.list(CourseItem)
        assert lms.stats.calls == before

    async def test_progress_moving_upstream_is_an_update_in_the_change_feed(
        self, sim: Learning360Simulator, lms: Connector[Any], tmp_path: Path
    ) -> None:
        """An attempt whose progress and time spent grow upstream is one `updated` on the next sync."""
        async with lmsconnect.open_store(tmp_path / "s.sqlite") as store:
            first = await lmsconnect.sync(lms, store, models=["course_progressions"])
            attempt = next(a for a in sim.company.attempts.values() if 0 < a.progress < 90)
            attempt.progress += 10
            attempt.time_spent += 120_000
            second = await lmsconnect.sync(lms, store, models=["course_progressions"])
            progression = await store.get(
                CourseProgression,
                lms.make_id("course_progressions", f"{attempt.course_id}:{attempt.user_id}:{attempt.id}"),
            )
        assert first.ok and second.ok
        assert second.models["course_progressions"].updated == 1
        assert progression is not None and progression.progress == attempt.progress
        assert progression.time_spent == round(attempt.time_spent / 1000)


class TestUpsertAndArchive:
    async def test_upsert_creates_then_finds_the_same_course(
        self, sim: Learning360Simulator, lms: Connector[Any]
    ) -> None:
        """origin_id becomes the externalId; repeats are unchanged, changes update the same course."""
        first = (await lms.upsert_courses({"items": [course_input("cat-1")]})).item("cat-1")
        assert first.status is ItemStatus.CREATED and first.id
        course = sim.course(str(first.remote_id))
        assert course.external is not None
        assert course.external["launchUrl"] == "https://content.example.com/cat-1"
        assert course.external["imageUrl"] == "https://content.example.com/cat-1.png"
        assert (course.name, course.duration, course.default_lang, course.translations) == (
            "Course cat-1",
            45,
            "en",
            ["fr"],
        )
        again = (await lms.upsert_courses({"items": [course_input("cat-1")]})).item("cat-1")
        assert (again.status, again.id) == (ItemStatus.UNCHANGED, first.id)
        changed = await lms.upsert_courses(
            {"items": [course_input("cat-1", title="Renamed"), course_input("cat-2")]}
        )
        assert (changed.item("cat-1").status, changed.item("cat-1").id) == (ItemStatus.UPDATED, first.id)
        assert changed.item("cat-2").status is ItemStatus.CREATED
        assert (
            sum(1 for c in sim.company.courses.values() if c.external and c.external["externalId"] == "cat-1")
            == 1
        )
        revisions = {r.id: r async for r in lms.list(CourseRevision)}
        assert revisions[lms.make_id("course_revisions", str(first.remote_id))].title == "Renamed"

    async def test_upsert_reports_bad_items_without_dropping_others(self, lms: Connector[Any]) -> None:
        """An item without course_url fails by itself; the others are created."""
        result = await lms.upsert_courses(
            {"items": [course_input("ok-1"), course_input("no-url", course_url=None)]}
        )
        assert result.item("ok-1").status is ItemStatus.CREATED
        failed = result.item("no-url")
        assert failed.status is ItemStatus.FAILED and failed.error and "course_url" in failed.error.message

    async def test_upsert_timeout_says_accepted_then_settles(self, sim: Learning360Simulator) -> None:
        """If 360Learning is slower than upsert_timeout_s, items are accepted; waiting settles them."""
        sim.processing_delay = 0.6
        async with lmsconnect.connect(
            "360learning", **sim.connect_config, **FAST, upsert_timeout_s=0.1
        ) as lms:
            result = await lms.upsert_courses({"items": [course_input("slow-1")]})
            assert result.items[0].status is ItemStatus.ACCEPTED
            assert isinstance(lms, Learning360Connector)
            settled = await lms.wait_until_visible(result, timeout_s=5)
        assert settled.items[0].status is ItemStatus.CREATED and settled.items[0].id

    async def test_archive_then_restore(self, sim: Learning360Simulator, lms: Connector[Any]) -> None:
        """deactivate_course archives (progress kept); restore_course brings it back."""
        attempt = next(iter(sim.company.attempts.values()))
        course_id = lms.make_id("courses", attempt.course_id)
        sim.company.courses[attempt.course_id].status = "published"
        result = await lms.deactivate_course(course_id=course_id)
        assert result.items[0].status is ItemStatus.UPDATED
        assert sim.course(attempt.course_id).status == "archived"
        (revision,) = [r async for r in lms.list(CourseRevision) if r.remote_id == attempt.course_id]
        assert revision.status is RevisionStatus.INACTIVE
        assert (await lms.deactivate_course(course_id=course_id)).items[0].status is ItemStatus.UNCHANGED
        assert sim.attempts(course_id=attempt.course_id)
        assert isinstance(lms, Learning360Connector)
        restored = await lms.restore_course(course_id)
        assert (
            restored.status is RevisionStatus.ACTIVE and sim.course(attempt.course_id).status == "published"
        )


class TestAsynchronousActions:
    async def test_enroll_and_complete_are_accepted_then_visible(
        self, sim: Learning360Simulator, lms: Connector[Any]
    ) -> None:
        """Both answer accepted, stay invisible until the delay passes, then show in reads."""
        assert isinstance(lms, Learning360Connector)
        revision_id = await own_course(lms)
        user_id = active_user(sim)
        sim.processing_delay = 0.5
        enrolled = await lms.enroll_user(user_id=user_id, course_revision_id=revision_id)
        assert enrolled.items[0].status is ItemStatus.ACCEPTED
        assert "processed asynchronously" in enrolled.items[0].detail

        def mine() -> list[CourseProgression]:
            return [p for p in progressions if p.user_id == user_id and p.course_revision_id == revision_id]

        progressions = [p async for p in lms.list(CourseProgression)]
        assert mine() == []
        await asyncio.sleep(0.55)
        progressions = [p async for p in lms.list(CourseProgression)]
        assert [p.status for p in mine()] == [ProgressionStatus.ENROLLED]
        progression = mine()[0]

        completed = await lms.complete_course(
            course_progression_id=progression.id, completed_at="2030-01-02T03:04:05Z", score=77
        )
        assert completed.items[0].status is ItemStatus.ACCEPTED
        progressions = [p async for p in lms.list(CourseProgression)]
        assert mine()[0].status is ProgressionStatus.ENROLLED
        await asyncio.sleep(0.55)
        progressions = [p async for p in lms.list(CourseProgression)]
        assert mine()[0].status is ProgressionStatus.COMPLETED
        completed_at = mine()[0].completed_at
        assert completed_at is not None and completed_at.year == 2030
        attempt = sim.attempts(user_id=progression.remote_id.split(":")[1])[-1]
        assert attempt.score == 77

    async def test_wait_returns_when_visible(self, sim: Learning360Simulator, lms: Connector[Any]) -> None:
        """wait_until_visible returns created/updated as soon as reads show the change."""
        assert isinstance(lms, Learning360Connector)
        revision_id = await own_course(lms)
        sim.processing_delay = 0.3
        loop = asyncio.get_running_loop()
        result = await lms.enroll_user(user_id=active_user(sim, 1), course_revision_id=revision_id)
        began = loop.time()
        result = await lms.wait_until_visible(result, timeout_s=10)
        assert loop.time() - began < 2
        item = result.items[0]
        assert item.status is ItemStatus.CREATED and item.id and "visible after" in item.detail
        completed = await lms.complete_course(course_progression_id=item.id, score=90)
        completed = await lms.wait_until_visible(completed, timeout_s=10)
        assert completed.items[0].status is ItemStatus.UPDATED and completed.items[0].id == item.id

    async def test_wait_times_out_honestly(self, sim: Learning360Simulator, lms: Connector[Any]) -> None:
        """A wait shorter than the processing says accepted, timed out, and on what."""
        assert isinstance(lms, Learning360Connector)
        revision_id = await own_course(lms)
        sim.processing_delay = 30
        result = await lms.enroll_user(user_id=active_user(sim, 2), course_revision_id=revision_id)
        waited = await lms.wait_until_visible(result, timeout_s=0.2)
        item = waited.items[0]
        assert item.status is ItemStatus.ACCEPTED and "timed out after 0.2 s" in item.detail
        sim.process_bulk_operations()
        settled = await lms.wait_until_visible(waited, timeout_s=5)
        assert settled.items[0].status is ItemStatus.CREATED

    async def test_wait_option_in_config(self, sim: Learning360Simulator) -> None:
        """wait_for_processing_s makes the action itself wait for visibility."""
        sim.processing_delay = 0.2
        config = {**sim.connect_config, **FAST, "wait_for_processing_s": 5.0}
        async with lmsconnect.connect("360learning", **config) as lms:
            revision_id = await own_course(lms)
            result = await lms.enroll_user(user_id=active_user(sim, 3), course_revision_id=revision_id)
        assert result.items[0].status is ItemStatus.CREATED

    async def test_repeat_enrollment_is_unchanged(
        self, sim: Learning360Simulator, lms: Connector[Any]
    ) -> None:
        """A user with an open attempt is already enrolled: no second attempt."""
        assert isinstance(lms, Learning360Connector)
        revision_id = await own_course(lms)
        user_id = active_user(sim, 4)
        sim.processing_delay = 0
        await lms.wait_until_visible(await lms.enroll_user(user_id=user_id, course_revision_id=revision_id))
        again = await lms.enroll_user(user_id=user_id, course_revision_id=revision_id)
        assert again.items[0].status is ItemStatus.UNCHANGED

    async def test_courses_outside_the_integration_are_refused(
        self, sim: Learning360Simulator, lms: Connector[Any]
    ) -> None:
        """API v2 cannot enroll into a native course: ActionFailed names the reason, nothing is sent."""
        native = next(c for c in sim.company.courses.values() if c.type == "native")
        with pytest.raises(ActionFailed) as info:
            await lms.enroll_user(
                user_id=active_user(sim), course_revision_id=lms.make_id("course_revisions", native.id)
            )
        assert info.value.code == "LMS.COURSE_NOT_IN_INTEGRATION"
        assert info.value.result.items[0].status is ItemStatus.FAILED
        assert not sim.company.operations

    async def test_actions_need_an_integration(self, sim: Learning360Simulator) -> None:
        """Without integration_id the write actions say how to configure one."""
        config = {k: v for k, v in sim.connect_config.items() if k != "integration_id"}
        async with lmsconnect.connect("360learning", **config) as lms:
            with pytest.raises(ConfigurationError, match="integration_id"):
                await lms.upsert_courses({"items": [course_input("x")]})


class TestScopes:
    async def test_missing_scope_is_named(self) -> None:
        """A credential without courseStats:read gets PermissionDenied naming that scope."""
        async with (
            Learning360Simulator(**SMALL, scopes=ALL_SCOPES - {"courseStats:read"}) as sim,
            lmsconnect.connect("360learning", **sim.connect_config) as lms,
        ):
            with pytest.raises(PermissionDenied) as info:
                await lms.list(CourseProgression).__anext__()
            assert info.value.permission == "courseStats:read"
            assert "invalid_scope" in str(info.value)
            report = await lms.check()
        item = report.get("model", "course_progressions")
        assert item.status is CheckStatus.MISSING_PERMISSION and item.permissions == ("courseStats:read",)
        assert report.get("model", "users").status is CheckStatus.OK
        assert report.get("action", "complete_course").status is CheckStatus.MISSING_PERMISSION

    async def test_check_passes_with_full_access(self, lms: Connector[Any]) -> None:
        """Scope testing and per-model tests pass with every scope; write scopes are said untested."""
        report = await lms.check()
        assert report.ok, report.to_dict()
        assert "integrations:bulk cannot be tested" in report.get("action", "enroll_user").detail

    async def test_bulk_api_disabled_is_a_permission_error(self) -> None:
        """503 bulkAPIDisabled says the Bulk API must be enabled by 360Learning."""
        async with (
            Learning360Simulator(**SMALL, bulk_api_enabled=False) as sim,
            lmsconnect.connect(
                "360learning", http=HttpOptions(backoff_base_s=0.01), **sim.connect_config
            ) as lms,
        ):
            with pytest.raises(PermissionDenied, match="Bulk API"):
                await lms.upsert_courses({"items": [course_input("x")]})


class TestBulkConcurrency:
    async def test_a_burst_of_enrollments_waits_out_the_three_operation_limit(
        self, sim: Learning360Simulator, lms: Connector[Any]
    ) -> None:
        """Five enrollments at once: the fourth and fifth get 429 concurrency refusals and are resent."""
        assert isinstance(lms, Learning360Connector)
        revision_id = await own_course(lms)
        sim.processing_delay = 0.3
        results = await asyncio.gather(
            *(lms.enroll_user(user_id=active_user(sim, i), course_revision_id=revision_id) for i in range(5))
        )
        assert [r.items[0].status for r in results] == [ItemStatus.ACCEPTED] * 5
        assert sim.rejected_calls >= 1
        settled = [await lms.wait_until_visible(r, timeout_s=5) for r in results]
        assert [r.items[0].status for r in settled] == [ItemStatus.CREATED] * 5
