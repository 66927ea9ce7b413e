"""The fields beyond the coverage tables (issue 13) and the course content (CourseItem) on the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lmsconnect_talentlms.testing import CATEGORIES, CUSTOM_USER_TYPE, TalentLMSSimulator

import lmsconnect
from lmsconnect import (
    CourseItem,
    CourseItemType,
    CourseProgression,
    CourseRevision,
    User,
    UserRole,
)
from lmsconnect.plugin import Connector


@pytest.fixture
async def sim() -> AsyncIterator[TalentLMSSimulator]:
    async with TalentLMSSimulator(users=60, courses=8, enrollments=150, seed=13) as simulator:
        yield simulator


@pytest.fixture
async def lms(sim: TalentLMSSimulator) -> AsyncIterator[Connector[Any]]:
    async with lmsconnect.connect("talentlms", **sim.connect_config) as connector:
        yield connector


def api_calls(sim: TalentLMSSimulator) -> int:
    return sim.calls - sim.calls_by_route["GET /v1/ratelimit"]


class TestUserFields:
    async def test_profile_fields_come_from_the_user_list(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        """username, locale, time zone, updated time and custom fields are the list's, with no extra call."""
        users = {u.remote_id: u async for u in lms.list(User)}
        assert set(sim.calls_by_route) <= {"GET /v1/users", "GET /v1/ratelimit"}
        for seeded in sim.users:
            user = users[str(seeded.id)]
            assert user.username == seeded.login
            assert user.remote_role == seeded.user_type
            assert user.locale == seeded.language
            assert user.timezone == seeded.timezone
            assert user.remote_updated_at is not None
            assert int(user.remote_updated_at.timestamp()) == seeded.last_updated
            # Keyed as TalentLMS sends them; empty values are not values.
            assert user.custom_fields == {k: v for k, v in seeded.custom_fields.items() if v}
            assert user.job_title is None

    async def test_default_account_types_map_to_roles_and_custom_ones_are_unknown(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        """Default account types map to ADMIN / INSTRUCTOR / LEARNER; a custom type is UNKNOWN."""
        roles = {u.remote_role: u.role async for u in lms.list(User)}
        assert roles["SuperAdmin"] is UserRole.ADMIN
        assert roles["Admin-Type"] is UserRole.ADMIN
        assert roles["Trainer-Type"] is UserRole.INSTRUCTOR
        assert roles["Learner-Type"] is UserRole.LEARNER
        assert roles[CUSTOM_USER_TYPE] is UserRole.UNKNOWN

    async def test_custom_field_names_cost_one_call_and_key_the_values_by_name(
        self, sim: TalentLMSSimulator
    ) -> None:
        """custom_field_names=True: one call to getcustomregistrationfields, values keyed by field name."""
        async with lmsconnect.connect("talentlms", **sim.connect_config, custom_field_names=True) as lms:
            users = {u.remote_id: u async for u in lms.list(User)}
        assert sim.calls_by_route["GET /v1/getcustomregistrationfields"] == 1
        names = {"custom_field_1": "Department", "custom_field_2": "Office", "custom_field_3": "Newsletter"}
        for seeded in sim.users:
            expected = {names[k]: v for k, v in seeded.custom_fields.items() if v}
            assert users[str(seeded.id)].custom_fields == expected


class TestRevisionFields:
    async def test_course_fields_come_from_the_course_list(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        """code, duration (time_limit days → minutes), thumbnail, updated time; no language; no extra call."""
        revisions = {r.remote_id: r async for r in lms.list(CourseRevision)}
        assert set(sim.calls_by_route) <= {"GET /v1/courses", "GET /v1/ratelimit"}
        for course in sim.courses:
            revision = revisions[str(course.id)]
            assert revision.code == (course.code or None)
            assert revision.duration == (course.time_limit * 1440 if course.time_limit else None)
            assert revision.thumbnail_url is not None and revision.thumbnail_url.startswith("https://")
            if course.avatar:
                assert revision.thumbnail_url == course.avatar
            assert revision.remote_updated_at is not None
            assert int(revision.remote_updated_at.timestamp()) == course.last_update_on
            assert revision.categories is None and revision.languages is None
        assert any(r.duration for r in revisions.values())

    async def test_category_names_cost_one_call_and_give_the_path_outermost_first(
        self, sim: TalentLMSSimulator
    ) -> None:
        """category_names=True: one call to /v1/categories; a nested category reads as (parent, child)."""
        async with lmsconnect.connect("talentlms", **sim.connect_config, category_names=True) as lms:
            revisions = {r.remote_id: r async for r in lms.list(CourseRevision)}
        assert sim.calls_by_route["GET /v1/categories"] == 1
        paths = {1: ("Compliance",), 2: ("Compliance", "Security"), 3: ("Sales",)}
        assert {cid for cid, _, _ in CATEGORIES} == set(paths)
        for course in sim.courses:
            expected = None if course.category_id is None else paths[course.category_id]
            assert revisions[str(course.id)].categories == expected


class TestProgressionFields:
    async def test_progress_and_time_spent_come_from_the_course_detail(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        """progress is completion_percentage, time_spent total_time_seconds (or total_time) in seconds."""
        progressions = [p async for p in lms.list(CourseProgression)]
        assert progressions
        by_pair = {(e.user_id, e.course_id): e for e in sim.enrollments()}
        without_seconds = 0
        for progression in progressions:
            user_id, course_id = (int(part) for part in progression.remote_id.split(":"))
            enrollment = by_pair[(user_id, course_id)]
            assert progression.progress == float(enrollment.completion_percentage)
            assert progression.time_spent == enrollment.total_time_seconds
            without_seconds += not enrollment.time_seconds_given
            assert progression.score is None and progression.started_at is None
            assert progression.last_activity_at is None and progression.due_at is None
        # Some answers had total_time ("1h 5m 3s") only, and were read from it.
        assert without_seconds > 0
        assert any(p.time_spent for p in progressions)


class TestCourseItems:
    async def test_units_become_items_with_sections_as_parents(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        """A Section heads the units after it; positions count within the parent; types are mapped."""
        items = [i async for i in lms.list(CourseItem)]
        first = sim.courses[0]
        revision_id = lms.make_id("course_revisions", str(first.id))
        mine = [i for i in items if i.course_revision_id == revision_id]
        assert [i.remote_id for i in mine] == [f"{first.id}:{u.id}" for u in first.units]
        assert [i.remote_type for i in mine] == [u.type for u in first.units]
        sections = [i for i in mine if i.type is CourseItemType.SECTION]
        assert len(sections) == 2 and all(s.parent_id is None for s in sections)
        assert [s.position for s in sections] == [0, 1]
        in_first = [i for i in mine if i.parent_id == sections[0].id]
        in_second = [i for i in mine if i.parent_id == sections[1].id]
        assert len(in_first) + len(in_second) + 2 == len(mine)
        assert [i.position for i in in_first] == list(range(len(in_first)))
        assert [i.position for i in in_second] == list(range(len(in_second)))
        types = {i.remote_type: i.type for i in mine}
        assert types == {
            "Section": CourseItemType.SECTION,
            "Content": CourseItemType.CONTENT,
            "Web content": CourseItemType.LINK,
            "Video": CourseItemType.VIDEO,
            "Audio": CourseItemType.AUDIO,
            "Presentation | Document": CourseItemType.DOCUMENT,
            "SCORM | xAPI | cmi5": CourseItemType.SCORM,
            "Test": CourseItemType.ASSESSMENT,
            "Survey": CourseItemType.SURVEY,
            "Assignment": CourseItemType.ASSIGNMENT,
            "ILT": CourseItemType.LIVE_SESSION,
            "TalentCraft": CourseItemType.UNKNOWN,  # a type no mapping knows: UNKNOWN, name kept
        }
        assert all(i.title and i.duration is None and i.is_required is None for i in items)

    async def test_units_before_the_first_section_sit_at_the_top(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        """Units ahead of any Section have no parent and share the top-level positions with sections."""
        course = sim.add_course(name="Flat then sectioned")
        for kind in ("Content", "Video", "Section", "Test"):
            sim.add_unit(course.id, type=kind, name=kind)
        items = [i async for i in lms.list(CourseItem) if i.remote_id.startswith(f"{course.id}:")]
        assert [(i.remote_type, i.position) for i in items] == [
            ("Content", 0), ("Video", 1), ("Section", 2), ("Test", 0)
        ]
        assert [i.parent_id for i in items[:3]] == [None, None, None]
        assert items[3].parent_id == items[2].id

    async def test_reading_items_costs_the_course_list_and_one_detail_per_course(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        """lms.list(CourseItem) makes 1 + one call per course (the price the capability note states)."""
        [i async for i in lms.list(CourseItem)]
        assert api_calls(sim) == 1 + len(sim.courses)
        assert sim.calls_by_route["GET /v1/courses/id"] == len(sim.courses)
        assert "one call per course" in lms.capabilities.models["course_items"].note

    async def test_a_default_sync_leaves_items_out_and_makes_no_extra_call(
        self, sim: TalentLMSSimulator, tmp_path: Path
    ) -> None:
        """sync() without models= reads no course_items, so the default sync costs what it cost before."""
        async with (
            lmsconnect.open_store(tmp_path / "s.sqlite") as store,
            lmsconnect.connect("talentlms", **sim.connect_config) as lms,
        ):
            report = await lmsconnect.sync(lms, store)
        assert report.ok and "course_items" not in report.models
        users_pages = len(sim.users) // 500 + 1
        assert api_calls(sim) == users_pages + 3 + len(sim.courses)

    async def test_sync_records_items_added_and_removed_upstream(
        self, sim: TalentLMSSimulator, tmp_path: Path
    ) -> None:
        """A unit added upstream is `created` on the next sync and a removed one `deleted`."""
        course = sim.courses[1]
        async with (
            lmsconnect.open_store(tmp_path / "s.sqlite") as store,
            lmsconnect.connect("talentlms", **sim.connect_config) as lms,
        ):
            first = await lmsconnect.sync(lms, store, models=["course_items"])
            total = sum(len(c.units) for c in sim.courses)
            added = sim.add_unit(course.id, type="Video", name="New video")
            gone = course.units[0]
            sim.remove_unit(course.id, gone.id)
            second = await lmsconnect.sync(lms, store, models=["course_items"])
            changes = [c async for c in store.changes(since=0)]
        assert first.ok and first.models["course_items"].created == total
        report = second.models["course_items"]
        assert (report.created, report.deleted) == (1, 1)
        later = [(c.kind.value, c.remote_id) for c in changes if c.run_id != changes[0].run_id]
        assert ("created", f"{course.id}:{added.id}") in later
        assert ("deleted", f"{course.id}:{gone.id}") in later
