"""The Moodle connector against a real, seeded Moodle 5.0.6+, through the public API only.

The seeded truth is the site of ``fixtures/moodle-5`` (users 2–8, courses 2–5, their enrolments, progress and
competencies; see ../shared/fixtures/moodle-5/README.md "Seeded data"). Tests that write get a reset site.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lmsconnect_moodle import COMPLETION_NOT_TRACKED, NO_GRADED_ACTIVITY

import lmsconnect
from lmsconnect import (
    ActionFailed,
    InvalidInput,
    ItemStatus,
    NotFound,
    ProgressionStatus,
    RevisionStatus,
    UserStatus,
)
from lmsconnect.plugin import CheckStatus, make_id

pytestmark = pytest.mark.xdist_group("real_moodle")


def ids(model: Any, remote: int | str) -> str:
    return make_id("moodle", model, remote)


@pytest_asyncio.fixture
async def lms(real_moodle: Any) -> AsyncIterator[Any]:
    async with lmsconnect.connect("moodle", **real_moodle.connect_config) as connector:
        yield connector


async def records(lms: Any, model: str) -> dict[str, Any]:
    return {r.remote_id: r async for r in lms.list(model)}


async def status_of(lms: Any, remote: str) -> ProgressionStatus:
    return (await records(lms, "course_progressions"))[remote].status  # type: ignore[no-any-return]


SEEDED_PROGRESSIONS = {
    "2:3": ProgressionStatus.COMPLETED,  # Alice: every PY101 activity, so the course
    "2:4": ProgressionStatus.IN_PROGRESS,  # Bruno: page viewed, assignment complete-fail (41 < 50)
    "2:5": ProgressionStatus.IN_PROGRESS,  # Wei: page viewed
    "2:6": ProgressionStatus.ENROLLED,  # Dana, editing teacher: not tracked
    "2:7": ProgressionStatus.ENROLLED,  # Erik: suspended user, active enrolment, no progress
    "3:3": ProgressionStatus.IN_PROGRESS,  # Alice viewed the DS201 page
    "3:4": ProgressionStatus.DROPPED,  # Bruno's suspended DS201 enrolment
    "3:5": ProgressionStatus.COMPLETED,  # Wei: page + assignment 77
    "3:6": ProgressionStatus.ENROLLED,
    "4:3": ProgressionStatus.ENROLLED,
    "4:4": ProgressionStatus.COMPLETED,  # Bruno marked MGT110's page (manual)
    "4:6": ProgressionStatus.ENROLLED,  # Dana, non-editing teacher
    "5:3": ProgressionStatus.ENROLLED,  # LEG050: hidden, no completion tracking
}


class TestModels:
    async def test_users_incl_suspended_without_deleted_and_guest(self, seeded_moodle: Any, lms: Any) -> None:
        """Users 2–7; Erik (suspended) INACTIVE; Fatima (deleted) and the guest account left out."""
        users = await records(lms, "users")
        assert sorted(users) == ["2", "3", "4", "5", "6", "7"]
        assert users["3"].work_email == "alice.martin@example.com"
        assert (users["3"].first_name, users["3"].last_name) == ("Alice", "Martin")
        assert users["3"].status is UserStatus.ACTIVE
        assert users["7"].status is UserStatus.INACTIVE and users["7"].remote_deleted_at is None

    async def test_deleted_user_on_request(self, seeded_moodle: Any) -> None:
        """include_deleted_users finds Fatima, INACTIVE, with her email and Moodle's deletion time."""
        config = {**seeded_moodle.connect_config, "include_deleted_users": True}
        async with lmsconnect.connect("moodle", **config) as lms:
            users = await records(lms, "users")
        fatima = users["8"]
        assert fatima.status is UserStatus.INACTIVE
        assert fatima.work_email == "fatima.haddad@example.com"
        assert fatima.remote_deleted_at is not None
        assert fatima.remote_deleted_at > dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)

    async def test_courses_without_the_site_course(self, seeded_moodle: Any, lms: Any) -> None:
        """Courses 2–5 with their ID numbers as origin ids; course 1 (the site) is not a course."""
        courses = await records(lms, "courses")
        assert {k: c.origin_id for k, c in courses.items()} == {
            "2": "PY101-2026A",
            "3": "DS201-2026A",
            "4": "MGT110-2026B",
            "5": "LEG050-2024",
        }

    async def test_revisions_incl_the_hidden_one(self, seeded_moodle: Any, lms: Any) -> None:
        """Every course is a revision; hidden LEG050 is INACTIVE."""
        revisions = await records(lms, "course_revisions")
        assert {k: (r.title, r.status) for k, r in revisions.items()} == {
            "2": ("Introduction to Python Programming", RevisionStatus.ACTIVE),
            "3": ("Data Science Fundamentals", RevisionStatus.ACTIVE),
            "4": ("Project Management Essentials", RevisionStatus.ACTIVE),
            "5": ("Legacy Compliance Training (archived)", RevisionStatus.INACTIVE),
        }
        assert revisions["2"].course_id == ids("courses", 2)
        assert revisions["2"].remote_url == f"{seeded_moodle.base_url}/course/view.php?id=2"

    async def test_progressions(self, seeded_moodle: Any, lms: Any) -> None:
        """Every enrolment with Moodle's status: completed (with time), in progress, enrolled, dropped."""
        progressions = await records(lms, "course_progressions")
        assert {k: p.status for k, p in progressions.items()} == SEEDED_PROGRESSIONS
        for key, progression in progressions.items():
            assert (progression.completed_at is not None) == (key in ("2:3", "3:5", "4:4")), key
            course, user = key.split(":")
            assert progression.user_id == ids("users", user)
            assert progression.course_revision_id == ids("course_revisions", course)

    async def test_issue13_fields(self, seeded_moodle: Any, lms: Any) -> None:
        """Username, language, custom fields; course code; Moodle's progress, all as the real site gives."""
        users = await records(lms, "users")
        assert (users["3"].username, users["3"].locale, users["3"].timezone) == ("alice.martin", "en", None)
        assert users["3"].custom_fields == {"employeeid": "E-40117"}
        revisions = await records(lms, "course_revisions")
        assert {k: r.code for k, r in revisions.items()} == {
            "2": "PY101",
            "3": "DS201",
            "4": "MGT110",
            "5": "LEG050",
        }
        assert revisions["2"].remote_updated_at is not None
        progressions = await records(lms, "course_progressions")
        assert (progressions["2:3"].progress, progressions["3:3"].progress) == (100, 50)
        assert progressions["2:4"].progress == 25

    async def test_categories_and_scores_on_request(self, seeded_moodle: Any) -> None:
        """course_categories names each course's category; progression_scores gives the course total."""
        config = {**seeded_moodle.connect_config, "course_categories": True, "progression_scores": True}
        async with lmsconnect.connect("moodle", **config) as lms:
            revisions = await records(lms, "course_revisions")
            progressions = await records(lms, "course_progressions")
        assert {k: r.categories for k, r in revisions.items()} == {
            "2": ("Engineering",),
            "3": ("Engineering",),
            "4": ("Business",),
            "5": ("Business",),
        }
        scores = {k: progressions[k].score for k in ("2:3", "2:4", "3:5")}
        assert scores == {"2:3": 92, "2:4": 41, "3:5": 77}

    async def test_course_items(self, seeded_moodle: Any, lms: Any) -> None:
        """PY101's sections and activities, in Moodle's order, each in its section, with its type."""
        items = {
            k: i
            for k, i in (await records(lms, "course_items")).items()
            if i.course_revision_id == ids("course_revisions", 2)
        }
        sections = sorted((i for i in items.values() if i.parent_id is None), key=lambda i: i.position)
        assert [s.remote_id for s in sections] == [f"section:{n}" for n in range(1, 6)]
        modules = {k: (i.remote_type, i.parent_id, i.position) for k, i in items.items() if i.parent_id}
        section = {n: ids("course_items", f"section:{n}") for n in range(1, 6)}
        assert modules == {
            "module:1": ("forum", section[1], 0),
            "module:5": ("page", section[2], 0),
            "module:6": ("assign", section[2], 1),
            "module:7": ("quiz", section[3], 0),
            "module:8": ("url", section[3], 1),
            "module:9": ("label", section[4], 0),
        }

    async def test_skills_and_revision_skills(self, seeded_moodle: Any, lms: Any) -> None:
        """The framework's four competencies; PY101 links three of them, DS201 one."""
        skills = await records(lms, "skills")
        assert {k: s.name for k, s in skills.items()} == {
            "1": "Python syntax and semantics",
            "2": "Version control with Git",
            "3": "Automated testing",
            "4": "Writing unit tests with pytest",
        }
        links = list((await records(lms, "revision_skills")).values())
        by_revision: dict[str, set[str]] = {}
        for link in links:
            by_revision.setdefault(link.course_revision_id, set()).add(link.skill_id)
        assert by_revision == {
            ids("course_revisions", 2): {ids("skills", 1), ids("skills", 2), ids("skills", 3)},
            ids("course_revisions", 3): {ids("skills", 1)},
        }


async def test_check_reports_every_model_and_action_ok(seeded_moodle: Any, lms: Any) -> None:
    """The package's service holds every function the connector needs: check() is all OK."""
    report = await lms.check()
    assert report.ok, report
    names = {(item.kind, item.name) for item in report.items}
    for model in ("users", "courses", "course_revisions", "course_progressions", "skills", "revision_skills"):
        assert ("model", model) in names
        assert report.get("model", model).status is CheckStatus.OK
    for action in ("upsert_courses", "deactivate_course", "enroll_user", "complete_course"):
        assert report.get("action", action).status is CheckStatus.OK


class TestUpsertCourses:
    async def test_created_unchanged_updated(self, fresh_moodle: Any, lms: Any) -> None:
        """A new origin id creates a course; the same input is unchanged; a new title updates it."""
        item: dict[str, Any] = {
            "origin_id": "CLD100-2027A",
            "course": {"title": "Cloud Computing Foundations", "description": "<p>Cloud.</p>"},
        }
        first = (await lms.upsert_courses({"items": [item]})).items[0]
        assert first.status is ItemStatus.CREATED
        assert (await lms.upsert_courses({"items": [item]})).items[0].status is ItemStatus.UNCHANGED
        item["course"]["title"] = "Cloud Computing Foundations (2027)"
        changed = (await lms.upsert_courses({"items": [item]})).items[0]
        assert changed.status is ItemStatus.UPDATED and changed.id == first.id
        assert "fullname" in (changed.detail or "")
        courses = await records(lms, "courses")
        assert [c.origin_id for c in courses.values()].count("CLD100-2027A") == 1
        revision = (await records(lms, "course_revisions"))[first.remote_id]
        assert revision.title == "Cloud Computing Foundations (2027)"
        assert revision.description == "<p>Cloud.</p>"

    async def test_shortname_clash_and_missing_language_fail_their_items(
        self, fresh_moodle: Any, lms: Any
    ) -> None:
        """A short name in use and a language pack the site lacks (only `en` is installed) fail per item."""
        result = await lms.upsert_courses(
            {
                "items": [
                    {"origin_id": "PY101", "course": {"title": "Clash"}},
                    {"origin_id": "FR-1", "course": {"title": "Cours", "languages": ["fr"]}},
                    {"origin_id": "EN-1", "course": {"title": "Course", "languages": ["en"]}},
                ]
            }
        )
        clash, french, english = (result.item(k) for k in ("PY101", "FR-1", "EN-1"))
        assert clash.status is ItemStatus.FAILED and clash.error is not None
        assert "Short name is already used" in clash.error.message
        assert french.status is ItemStatus.FAILED and french.error is not None
        assert "language pack 'fr' is not installed" in french.error.message
        assert english.status is ItemStatus.CREATED
        origins = {c.origin_id for c in (await records(lms, "courses")).values()}
        assert "EN-1" in origins and "FR-1" not in origins and "PY101" not in origins


class TestDeactivateCourse:
    async def test_hide_then_restore(self, fresh_moodle: Any, lms: Any) -> None:
        """Deactivating hides the course (INACTIVE revision) and keeps its enrolments; restore undoes it."""
        result = await lms.deactivate_course(course_id=ids("courses", 3))
        assert result.items[0].status is ItemStatus.UPDATED
        assert (await records(lms, "course_revisions"))["3"].status is RevisionStatus.INACTIVE
        kept = [k for k in await records(lms, "course_progressions") if k.startswith("3:")]
        assert sorted(kept) == ["3:3", "3:4", "3:5", "3:6"]
        await lms.restore_course(ids("courses", 3))
        assert (await records(lms, "course_revisions"))["3"].status is RevisionStatus.ACTIVE

    async def test_refusals(self, seeded_moodle: Any, lms: Any) -> None:
        """An unknown course is NotFound; the site course is refused before any call; nothing changes."""
        with pytest.raises(NotFound):
            await lms.deactivate_course(course_id="remote:9999")
        calls = lms.stats.calls
        with pytest.raises(InvalidInput):
            await lms.deactivate_course(course_id="remote:1")
        assert lms.stats.calls == calls
        revisions = await records(lms, "course_revisions")
        assert [k for k, r in revisions.items() if r.status is RevisionStatus.INACTIVE] == ["5"]


class TestEnrollUser:
    async def test_new_then_already_enrolled(self, fresh_moodle: Any, lms: Any) -> None:
        """A new enrolment is created (ENROLLED progression); enrolling again is unchanged."""
        result = await lms.enroll_user(user_id=ids("users", 5), course_revision_id=ids("course_revisions", 4))
        assert result.items[0].status is ItemStatus.CREATED
        assert result.items[0].id == ids("course_progressions", "4:5")
        assert await status_of(lms, "4:5") is ProgressionStatus.ENROLLED
        again = await lms.enroll_user(user_id=ids("users", 5), course_revision_id=ids("course_revisions", 4))
        assert again.items[0].status is ItemStatus.UNCHANGED

    async def test_suspended_enrolment_is_left_alone(self, fresh_moodle: Any, lms: Any) -> None:
        """Bruno's suspended DS201 enrolment counts as enrolled: unchanged, and still DROPPED."""
        result = await lms.enroll_user(user_id=ids("users", 4), course_revision_id=ids("course_revisions", 3))
        assert result.items[0].status is ItemStatus.UNCHANGED
        assert await status_of(lms, "3:4") is ProgressionStatus.DROPPED

    async def test_refusals(self, seeded_moodle: Any, lms: Any) -> None:
        """Unknown user or course: NotFound; a role the token may not assign: LMS.ROLE_NOT_ASSIGNABLE."""
        with pytest.raises(NotFound):
            await lms.enroll_user(user_id="remote:9999", course_revision_id=ids("course_revisions", 4))
        with pytest.raises(NotFound):
            await lms.enroll_user(user_id=ids("users", 5), course_revision_id="remote:9999")
        config = {**seeded_moodle.connect_config, "enrol_role_id": 99}
        revision = ids("course_revisions", 4)
        async with lmsconnect.connect("moodle", **config) as other:
            with pytest.raises(ActionFailed) as info:
                await other.enroll_user(user_id=ids("users", 5), course_revision_id=revision)
        assert info.value.code == "LMS.ROLE_NOT_ASSIGNABLE"
        progressions = await records(lms, "course_progressions")
        assert {k: p.status for k, p in progressions.items()} == SEEDED_PROGRESSIONS


class TestCompleteCourse:
    async def test_with_score_is_accepted_until_the_completion_task_ran(
        self, fresh_moodle: Any, lms: Any
    ) -> None:
        """Grades and overrides are written at once; Moodle shows the course complete after its cron task."""
        key = ids("course_progressions", "2:5")
        result = await lms.complete_course(course_progression_id=key, score=80)
        assert result.items[0].status is ItemStatus.ACCEPTED
        assert await status_of(lms, "2:5") is ProgressionStatus.IN_PROGRESS
        fresh_moodle.cron_completion()
        waited = await lms.wait_until_visible(result, timeout_s=30)
        assert waited.items[0].status is ItemStatus.UPDATED
        progression = (await records(lms, "course_progressions"))["2:5"]
        assert progression.status is ProgressionStatus.COMPLETED and progression.completed_at is not None
        grades = await lms.passthrough(
            "POST", "gradereport_user_get_grade_items", params={"courseid": 2, "userid": 5}
        )
        items = grades.json()["usergrades"][0]["gradeitems"]
        assert {i["cmid"]: i["graderaw"] for i in items if i.get("cmid")} == {6: 80.0, 7: 8.0}

    async def test_failing_score_completes_as_complete_fail(self, fresh_moodle: Any, lms: Any) -> None:
        """A score under the pass grade still completes the course (Moodle's 'complete, fail')."""
        result = await lms.complete_course(course_progression_id=ids("course_progressions", "2:4"), score=30)
        assert result.items[0].status is ItemStatus.ACCEPTED
        fresh_moodle.cron_completion()
        assert await status_of(lms, "2:4") is ProgressionStatus.COMPLETED

    async def test_without_score(self, fresh_moodle: Any, lms: Any) -> None:
        """Overriding MGT110's only activity completes the course (at once, or after the task)."""
        result = await lms.complete_course(course_progression_id=ids("course_progressions", "4:3"))
        assert result.items[0].status in (ItemStatus.UPDATED, ItemStatus.ACCEPTED)
        if result.items[0].status is ItemStatus.ACCEPTED:
            fresh_moodle.cron_completion()
        assert await status_of(lms, "4:3") is ProgressionStatus.COMPLETED
        again = await lms.complete_course(course_progression_id=ids("course_progressions", "4:3"))
        assert again.items[0].status is ItemStatus.UNCHANGED

    async def test_score_on_a_course_without_graded_activity_changes_nothing(
        self, seeded_moodle: Any, lms: Any
    ) -> None:
        """MGT110 has no grade item: a score is refused before any write."""
        with pytest.raises(ActionFailed) as info:
            await lms.complete_course(course_progression_id=ids("course_progressions", "4:3"), score=90)
        assert info.value.code == NO_GRADED_ACTIVITY
        seeded_moodle.cron_completion()
        assert await status_of(lms, "4:3") is ProgressionStatus.ENROLLED

    async def test_completion_not_tracked(self, fresh_moodle: Any, lms: Any) -> None:
        """No completion tracking (LEG050), a teacher, no criteria (a new course): refused with the reason."""
        with pytest.raises(ActionFailed) as info:
            await lms.complete_course(course_progression_id=ids("course_progressions", "5:3"))
        assert info.value.code == COMPLETION_NOT_TRACKED and "completion tracking" in info.value.message
        with pytest.raises(ActionFailed) as info:
            await lms.complete_course(course_progression_id=ids("course_progressions", "4:6"))
        assert info.value.code == COMPLETION_NOT_TRACKED and "tracked (student) role" in info.value.message
        created = await lms.upsert_courses({"items": [{"origin_id": "NC-1", "course": {"title": "New"}}]})
        revision = ids("course_revisions", created.items[0].remote_id or "")
        await lms.enroll_user(user_id=ids("users", 3), course_revision_id=revision)
        with pytest.raises(ActionFailed) as info:
            await lms.complete_course(
                course_progression_id=ids("course_progressions", f"{created.items[0].remote_id}:3")
            )
        assert info.value.code == COMPLETION_NOT_TRACKED
        assert "no course-completion criteria" in info.value.message
        assert "No completion criteria set for this course" in (info.value.vendor_message or "")

    async def test_unknown_ids(self, seeded_moodle: Any, lms: Any) -> None:
        """An unknown course is NotFound; a malformed progression id is refused without a call."""
        with pytest.raises(NotFound):
            await lms.complete_course(course_progression_id="remote:9999:4")
        calls = lms.stats.calls
        with pytest.raises(InvalidInput):
            await lms.complete_course(course_progression_id="remote:abc")
        assert lms.stats.calls == calls


async def test_sync_three_times_with_the_change_feed(fresh_moodle: Any, lms: Any, tmp_path: Path) -> None:
    """A full sync records everything; later syncs record exactly what the actions between them changed."""
    async with lmsconnect.open_store(str(tmp_path / "real.sqlite")) as store:
        first = await lmsconnect.sync(lms, store)
        assert first.ok
        assert {m: r.created for m, r in first.models.items()} == {
            "users": 6,
            "courses": 4,
            "course_revisions": 4,
            "course_progressions": 13,
            "skills": 4,
            "revision_skills": 4,
        }
        cursor = await store.last_cursor()

        await lms.enroll_user(user_id=ids("users", 5), course_revision_id=ids("course_revisions", 4))
        await lms.deactivate_course(course_id=ids("courses", 3))
        second = await lmsconnect.sync(lms, store)
        feed = [(c.kind.value, c.model, c.remote_id) async for c in store.changes(since=cursor)]
        # Hidden, DS201 leaves its learners' lists of courses (core_enrol_get_users_courses), the only
        # source of progress and last access by default: its two active learners lose them, once.
        assert sorted(feed) == [
            ("created", "course_progressions", "4:5"),
            ("updated", "course_progressions", "3:3"),
            ("updated", "course_progressions", "3:5"),
            ("updated", "course_revisions", "3"),
        ]
        assert second.totals == {"created": 1, "updated": 3, "deleted": 0}
        cursor = await store.last_cursor()

        await lms.restore_course(ids("courses", 3))
        done = await lms.complete_course(course_progression_id=ids("course_progressions", "4:3"))
        if done.items[0].status is ItemStatus.ACCEPTED:
            fresh_moodle.cron_completion()
        third = await lmsconnect.sync(lms, store)
        feed = [(c.kind.value, c.model, c.remote_id) async for c in store.changes(since=cursor)]
        assert sorted(feed) == [
            ("updated", "course_progressions", "3:3"),  # visible again: progress is back
            ("updated", "course_progressions", "3:5"),
            ("updated", "course_progressions", "4:3"),
            ("updated", "course_revisions", "3"),
        ]
        assert third.totals == {"created": 0, "updated": 4, "deleted": 0}
        stored = await store.get("course_progressions", ids("course_progressions", "4:3"))
        assert stored.status is ProgressionStatus.COMPLETED
