"""Fields beyond the coverage tables (issue 13) and course_items, on the recorded site's simulator."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from lmsconnect_moodle.testing import MoodleSimulator
from lmsconnect_moodle.testing._site import add_module

import lmsconnect
from lmsconnect import CourseItemType, ProgressionStatus
from lmsconnect.plugin import CheckStatus, make_id


def ids(model: Any, remote: int | str) -> str:
    return make_id("moodle", model, remote)


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[MoodleSimulator]:
    async with MoodleSimulator(site="fixture") as running:
        yield running


@pytest_asyncio.fixture
async def lms(sim: MoodleSimulator) -> AsyncIterator[Any]:
    async with lmsconnect.connect("moodle", **sim.connect_config) as connector:
        yield connector


async def by_remote(lms: Any, model: str) -> dict[str, Any]:
    return {r.remote_id: r async for r in lms.list(model)}


class TestUserFields:
    async def test_username_locale_and_custom_fields(self, lms: Any) -> None:
        """Users carry their login name, language and custom profile fields (by short name)."""
        users = await by_remote(lms, "users")
        alice = users["3"]
        assert (alice.username, alice.locale) == ("alice.martin", "en")
        assert alice.custom_fields == {"employeeid": "E-40117"}
        assert users["2"].custom_fields is None  # the admin has no custom field value

    async def test_site_default_time_zone_is_none_and_an_own_zone_is_kept(
        self, sim: MoodleSimulator, lms: Any
    ) -> None:
        """Moodle's "99" (the site's default) gives None; a zone the user chose is kept as sent."""
        sim.site.users[4].timezone = "America/Sao_Paulo"
        users = await by_remote(lms, "users")
        assert users["3"].timezone is None
        assert users["4"].timezone == "America/Sao_Paulo"

    async def test_unsupported_fields_stay_none(self, lms: Any) -> None:
        """Role, job title and update time are not in Moodle's answer, so never filled."""
        for user in (await by_remote(lms, "users")).values():
            assert (user.role, user.remote_role, user.job_title, user.remote_updated_at) == (None,) * 4

    async def test_deleted_user_has_no_username(self, sim: MoodleSimulator) -> None:
        """A listed deleted user's username (Moodle's '<email>.<time>') is not given as theirs."""
        async with lmsconnect.connect("moodle", **sim.connect_config, include_deleted_users=True) as lms:
            users = await by_remote(lms, "users")
        assert users["8"].remote_deleted_at is not None
        assert users["8"].username is None


class TestRevisionFields:
    async def test_code_language_and_update_time(self, sim: MoodleSimulator, lms: Any) -> None:
        """The short name is the code; a forced language is the one language; timemodified is kept."""
        sim.site.courses[3].lang = "en"
        sim.site.courses[3].timemodified = 1796000000
        revisions = await by_remote(lms, "course_revisions")
        assert revisions["2"].code == "PY101"
        assert revisions["2"].languages is None  # no forced language: each learner's own
        assert revisions["3"].languages == ("en",)
        assert revisions["3"].remote_updated_at == dt.datetime.fromtimestamp(1796000000, dt.timezone.utc)
        assert all(r.categories is None for r in revisions.values())  # course_categories is off

    async def test_categories_cost_one_call_and_list_parents_first(self, sim: MoodleSimulator) -> None:
        """With course_categories, one more call names each course's category path, outermost first."""
        from lmsconnect_moodle.testing._site import Category

        sim.site.categories[4] = Category(id=4, name="Data", idnumber="DATA", parent=2)
        sim.site.courses[3].categoryid = 4
        async with lmsconnect.connect("moodle", **sim.connect_config) as lms:
            await by_remote(lms, "course_revisions")
            plain = lms.stats.calls
        async with lmsconnect.connect("moodle", **sim.connect_config, course_categories=True) as lms:
            revisions = await by_remote(lms, "course_revisions")
            assert lms.stats.calls == plain + 1
        assert revisions["2"].categories == ("Engineering",)
        assert revisions["3"].categories == ("Engineering", "Data")
        assert revisions["4"].categories == ("Business",)

    async def test_check_asks_for_the_categories_function_only_when_on(self, sim: MoodleSimulator) -> None:
        """check() wants core_course_get_categories for revisions only with course_categories."""
        sim.remove_functions("core_course_get_categories")
        async with lmsconnect.connect("moodle", **sim.connect_config) as lms:
            assert (await lms.check()).get("model", "course_revisions").status is CheckStatus.OK
        async with lmsconnect.connect("moodle", **sim.connect_config, course_categories=True) as lms:
            item = (await lms.check()).get("model", "course_revisions")
        assert item.permissions == ("core_course_get_categories",)


class TestProgressionFields:
    async def test_progress_and_last_access_from_the_users_courses_answer(
        self, sim: MoodleSimulator, lms: Any
    ) -> None:
        """Moodle's progress percentage and the learner's last course access, at no extra call."""
        sim.site.enrolments[(4, 2)].lastaccess = 1795500000
        progressions = await by_remote(lms, "course_progressions")
        assert progressions["2:3"].progress == 100.0
        assert progressions["3:3"].progress == 50.0
        assert progressions["2:4"].progress == 25.0
        assert progressions["2:4"].last_activity_at == dt.datetime.fromtimestamp(1795500000, dt.timezone.utc)
        assert progressions["2:3"].last_activity_at is None  # never accessed, as recorded
        # A teacher is not tracked, a dropped enrolment is not listed: no progress rather than 0.
        assert progressions["2:6"].progress is None
        assert progressions["3:4"].status is ProgressionStatus.DROPPED
        assert progressions["3:4"].progress is None

    async def test_default_read_makes_no_grade_call_and_gives_no_score(
        self, sim: MoodleSimulator, lms: Any
    ) -> None:
        """Scores cost calls, so the default read leaves them out."""
        progressions = await by_remote(lms, "course_progressions")
        assert all(p.score is None for p in progressions.values())
        assert sim.calls_by_function.get("gradereport_user_get_grade_items", 0) == 0

    async def test_scores_are_course_totals_as_percentages(self, sim: MoodleSimulator) -> None:
        """With progression_scores: the course total on 0-100, one grade call per active progression."""
        async with lmsconnect.connect("moodle", **sim.connect_config, progression_scores=True) as lms:
            progressions = await by_remote(lms, "course_progressions")
        assert progressions["2:3"].score == 92.0  # assignment 92/100, quiz ungraded
        assert progressions["2:4"].score == 41.0
        assert progressions["3:5"].score == 77.0
        assert progressions["4:3"].score is None  # no graded activity: no course total
        assert progressions["3:4"].score is None  # dropped: not read
        active = [p for p in progressions.values() if p.status is not ProgressionStatus.DROPPED]
        assert sim.calls_by_function["gradereport_user_get_grade_items"] == len(active)

    async def test_unsupported_progression_fields_stay_none(self, lms: Any) -> None:
        """Moodle has no start time, time spent or due date for a learner: never invented."""
        for p in (await by_remote(lms, "course_progressions")).values():
            assert (p.started_at, p.time_spent, p.due_at, p.remote_updated_at) == (None,) * 4

    async def test_report_path_gives_progress(self, sim: MoodleSimulator) -> None:
        """progressions_via_report reads the progress column it already had, to one decimal."""
        sim.add_report("lmsconnect progressions")
        options = {"progressions_via_report": "lmsconnect progressions", "report_timezone": "Europe/London"}
        async with lmsconnect.connect("moodle", **sim.connect_config, **options) as lms:
            progressions = await by_remote(lms, "course_progressions")
        assert progressions["2:3"].progress == 100.0
        assert progressions["3:3"].progress == 50.0
        assert progressions["2:4"].progress == 25.0


def items_of(items: dict[str, Any], revision: int) -> dict[str, Any]:
    return {k: v for k, v in items.items() if v.course_revision_id == ids("course_revisions", revision)}


class TestCourseItems:
    async def test_sections_and_modules_with_parents_positions_and_types(self, lms: Any) -> None:
        """PY101 as recorded: sections at the top in order, modules in their section in order, typed."""
        items = items_of(await by_remote(lms, "course_items"), 2)
        sections = sorted((i for i in items.values() if i.parent_id is None), key=lambda i: i.position)
        assert [s.title for s in sections] == [
            "General",
            "Week 1: Getting started",
            "Week 2: Core syntax",
            "Week 3: Data structures",
            "Week 4: Testing",
        ]
        assert {s.type for s in sections} == {CourseItemType.SECTION}
        week1, week2 = sections[1], sections[2]
        assert (items["module:5"].parent_id, items["module:5"].position) == (week1.id, 0)
        assert (items["module:6"].parent_id, items["module:6"].position) == (week1.id, 1)
        assert (items["module:7"].parent_id, items["module:8"].parent_id) == (week2.id, week2.id)
        kinds = {k: (i.type, i.remote_type) for k, i in items.items() if k.startswith("module:")}
        assert kinds == {
            "module:1": (CourseItemType.UNKNOWN, "forum"),
            "module:5": (CourseItemType.CONTENT, "page"),
            "module:6": (CourseItemType.ASSIGNMENT, "assign"),
            "module:7": (CourseItemType.ASSESSMENT, "quiz"),
            "module:8": (CourseItemType.LINK, "url"),
            "module:9": (CourseItemType.CONTENT, "label"),
        }
        assert items["module:6"].title == "Assignment 1: Hello, World!"

    async def test_is_required_false_only_where_completion_is_not_tracked(self, lms: Any) -> None:
        """No completion tracking: never required; tracked: unknown (None), not guessed."""
        items = items_of(await by_remote(lms, "course_items"), 2)
        assert items["module:1"].is_required is False  # forum, no tracking
        assert items["module:9"].is_required is False  # label
        assert items["module:6"].is_required is None  # tracked; whether the criteria need it is unknown
        assert all(i.duration is None for i in items.values())

    async def test_hidden_sections_and_modules_are_left_out(self, sim: MoodleSimulator, lms: Any) -> None:
        """What students cannot see is not content: hidden modules and hidden sections with theirs."""
        sim.site.modules[8].visible = 0
        sim.site.courses[2].sections[3].visible = 0  # Week 3, holding the label
        items = items_of(await by_remote(lms, "course_items"), 2)
        assert "module:8" not in items and "module:9" not in items and "section:4" not in items
        assert items["module:7"].position == 0
        assert items["section:5"].position == 3  # positions close up over the hidden section

    async def test_on_request_only_and_one_call_per_course(self, sim: MoodleSimulator, tmp_path: Any) -> None:
        """A sync without models= leaves course_items out; naming it costs one call per course."""
        async with (
            lmsconnect.connect("moodle", **sim.connect_config) as lms,
            lmsconnect.open_store(str(tmp_path / "items.sqlite")) as store,
        ):
            report = await lmsconnect.sync(lms, store)
            assert "course_items" not in report.models
            assert sim.calls_by_function.get("core_course_get_contents", 0) == 0
            before = lms.stats.calls
            report = await lmsconnect.sync(lms, store, models=["course_items"])
            assert report.models["course_items"].created == 28  # 15 sections, 13 modules
            assert lms.stats.calls - before == 1 + 4  # the course list, then each of the 4 courses
            assert sim.calls_by_function["core_course_get_contents"] == 4

    async def test_sync_feeds_added_and_removed_modules(self, sim: MoodleSimulator, tmp_path: Any) -> None:
        """A module added upstream is created, a removed one deleted, and nothing else changes."""
        async with (
            lmsconnect.connect("moodle", **sim.connect_config) as lms,
            lmsconnect.open_store(str(tmp_path / "feed.sqlite")) as store,
        ):
            await lmsconnect.sync(lms, store, models=["course_items"])
            cursor = await store.last_cursor()
            added = add_module(sim.site, sim.site.courses[2], 4, "scorm", "Testing e-learning")
            del sim.site.modules[9]
            report = await lmsconnect.sync(lms, store, models=["course_items"])
            assert report.ok, report.failed
            changes = [(c.kind.value, c.model, c.remote_id) async for c in store.changes(since=cursor)]
        assert sorted(changes) == [
            ("created", "course_items", f"module:{added.id}"),
            ("deleted", "course_items", "module:9"),
        ]
