"""The Moodle connector against the simulator: errors, models, actions, scope testing, passthrough."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from lmsconnect_moodle import NO_GRADED_ACTIVITY, NO_MANUAL_ENROLMENT, MoodleConnector
from lmsconnect_moodle.testing import MoodleSimulator
from lmsconnect_moodle.testing._site import Category, add_module, add_subsection

import lmsconnect
from lmsconnect import (
    ActionFailed,
    AuthenticationError,
    CourseItemType,
    HttpOptions,
    InvalidInput,
    ItemStatus,
    NotFound,
    PermissionDenied,
    ProgressionStatus,
    RevisionStatus,
    UserStatus,
)
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


async def collect(lms: Any, model: str) -> list[Any]:
    return [r async for r in lms.list(model)]


class TestExceptionBodies:
    async def test_invalid_token_is_an_authentication_error(self, sim: MoodleSimulator) -> None:
        """Moodle's HTTP-200 invalidtoken body raises AuthenticationError without the token."""
        async with lmsconnect.connect("moodle", base_url=sim.url, token="0123456789abcdef") as lms:
            with pytest.raises(AuthenticationError) as info:
                await collect(lms, "users")
        assert "0123456789abcdef" not in str(info.value)
        assert "invalidtoken" in str(info.value)

    async def test_function_missing_from_service_names_the_function(
        self, sim: MoodleSimulator, lms: Any
    ) -> None:
        """accessexception becomes PermissionDenied whose permission is the missing wsfunction."""
        sim.remove_functions("core_user_get_users")
        with pytest.raises(PermissionDenied) as info:
            await collect(lms, "users")
        assert info.value.permission == "core_user_get_users"
        assert "core_user_get_users" in str(info.value)

    async def test_invalid_parameter_is_invalid_input(self, lms: Any) -> None:
        """invalidparameter (here a non-integer courseid) becomes InvalidInput."""
        with pytest.raises(InvalidInput):
            await lms.call("core_course_get_contents", {"courseid": "abc"})

    async def test_missing_record_is_not_found(self, lms: Any) -> None:
        """invalidrecordunknown (an unknown course) becomes NotFound."""
        with pytest.raises(NotFound):
            await lms.call("core_course_get_contents", {"courseid": 9999})

    async def test_debuginfo_reaches_the_vendor_message(self, sim: MoodleSimulator, lms: Any) -> None:
        """With debugging on, Moodle's debuginfo (naming the offending key) is kept in the error."""
        sim.debug = True
        with pytest.raises(InvalidInput) as info:
            await lms.call(
                "enrol_manual_unenrol_users",
                {"enrolments": [{"userid": 4, "courseid": 2, "roleid": 5}]},
                write=True,
            )
        assert "Unexpected keys (roleid)" in (info.value.vendor_message or "")

    async def test_an_exception_body_is_never_data(self, sim: MoodleSimulator, lms: Any) -> None:
        """Passthrough raises on an exception body too, instead of returning it as a response."""
        with pytest.raises(NotFound) as info:
            await lms.passthrough("POST", "core_nonexistent_function")
        assert "no such web-service function" in str(info.value)


class TestModels:
    async def test_users(self, lms: Any) -> None:
        """Suspended users are INACTIVE; deleted users and the guest account are left out."""
        users = {u.remote_id: u for u in await collect(lms, "users")}
        assert sorted(users) == ["2", "3", "4", "5", "6", "7"]
        assert users["3"].status is UserStatus.ACTIVE and users["3"].work_email == "alice.martin@example.com"
        assert users["7"].status is UserStatus.INACTIVE and users["7"].remote_deleted_at is None
        assert lms.stats.calls == 1

    async def test_deleted_users_on_request(self, sim: MoodleSimulator) -> None:
        """include_deleted_users lists deleted users as INACTIVE with Moodle's deletion time."""
        async with lmsconnect.connect("moodle", **sim.connect_config, include_deleted_users=True) as lms:
            users = {u.remote_id: u for u in await collect(lms, "users")}
        assert "1" not in users
        assert users["3"].status is UserStatus.ACTIVE and users["3"].work_email == "alice.martin@example.com"
        assert users["7"].status is UserStatus.INACTIVE and users["7"].remote_deleted_at is None
        fatima = users["8"]
        assert fatima.status is UserStatus.INACTIVE
        assert fatima.work_email == "fatima.haddad@example.com"
        assert fatima.remote_deleted_at == dt.datetime.fromtimestamp(1795431564, dt.timezone.utc)

    async def test_courses_and_revisions_never_the_site_course(self, lms: Any) -> None:
        """Courses and revisions skip course 1; hidden courses are INACTIVE revisions."""
        courses = await collect(lms, "courses")
        revisions = {r.remote_id: r for r in await collect(lms, "course_revisions")}
        assert sorted(c.remote_id for c in courses) == ["2", "3", "4", "5"]
        assert revisions["5"].status is RevisionStatus.INACTIVE
        assert revisions["2"].status is RevisionStatus.ACTIVE
        assert revisions["2"].title == "Introduction to Python Programming"
        assert revisions["2"].course_id == ids("courses", 2)
        assert next(c for c in courses if c.remote_id == "2").origin_id == "PY101-2026A"

    async def test_competencies_are_skills_and_course_competencies_revision_skills(self, lms: Any) -> None:
        """Every competency of every framework is a skill; course competencies link revisions to them."""
        skills = {s.remote_id: s.name for s in await collect(lms, "skills")}
        assert skills == {
            "1": "Python syntax and semantics",
            "2": "Version control with Git",
            "3": "Automated testing",
            "4": "Writing unit tests with pytest",
        }
        links = await collect(lms, "revision_skills")
        py101 = {r.skill_id for r in links if r.course_revision_id == ids("course_revisions", 2)}
        assert py101 == {ids("skills", 1), ids("skills", 2), ids("skills", 3)}
        assert {r.skill_id for r in links if r.course_revision_id == ids("course_revisions", 3)} == {
            ids("skills", 1)
        }

    async def test_progressions(self, lms: Any) -> None:
        """Status from Moodle's completion: completed (with time), in progress, enrolled, dropped."""
        progressions = {p.remote_id: p for p in await collect(lms, "course_progressions")}
        alice_py = progressions["2:3"]
        assert alice_py.status is ProgressionStatus.COMPLETED
        assert alice_py.completed_at == dt.datetime.fromtimestamp(1795431563, dt.timezone.utc)
        assert alice_py.user_id == ids("users", 3) and alice_py.course_revision_id == ids(
            "course_revisions", 2
        )
        assert progressions["2:4"].status is ProgressionStatus.IN_PROGRESS  # page viewed, assignment failed
        assert progressions["4:4"].status is ProgressionStatus.COMPLETED
        assert progressions["3:4"].status is ProgressionStatus.DROPPED  # suspended enrolment
        assert progressions["4:3"].status is ProgressionStatus.ENROLLED
        assert progressions["5:3"].status is ProgressionStatus.ENROLLED  # hidden course, no completion
        assert "2:8" not in progressions  # the deleted user's enrolment is gone

    async def test_complete_fail_is_completed(self, sim: MoodleSimulator, lms: Any) -> None:
        """A course completed with a failing grade ('complete fail') reads as COMPLETED."""
        result = await lms.complete_course(course_progression_id=ids("course_progressions", "2:4"), score=30)
        assert result.items[0].status is ItemStatus.ACCEPTED  # grade-driven: the completion task aggregates
        assert sim.activity_state(4, 6) == 3  # complete-fail
        sim.run_completion_cron()
        progression = next(p for p in await collect(lms, "course_progressions") if p.remote_id == "2:4")
        assert progression.status is ProgressionStatus.COMPLETED

    async def test_reads_are_concurrent_and_frugal(self) -> None:
        """A progression read makes about one call per course plus one per enrolled user."""
        async with (
            MoodleSimulator(users=40, courses=10, enrollments=150, seed=5) as sim,
            lmsconnect.connect("moodle", **sim.connect_config, completion_dates=False) as lms,
        ):
            records = await collect(lms, "course_progressions")
        users = len({r.user_id for r in records})
        assert sim.calls_by_function["core_enrol_get_enrolled_users"] == 10
        assert sim.calls_by_function["core_enrol_get_users_courses"] == users
        assert (
            sim.calls
            <= 1 + 10 + users + sum(1 for r in records if r.status is ProgressionStatus.DROPPED) + 15
        )


class TestUpsertCourses:
    async def test_create_then_unchanged_then_update(self, sim: MoodleSimulator, lms: Any) -> None:
        """origin_id lives in idnumber: created once, unchanged when equal, updated when changed."""
        sim.site.languages = ("en", "de")
        item: dict[str, Any] = {
            "origin_id": "CLD100-2027A",
            "course": {
                "title": "Cloud Computing Foundations",
                "description": "<p>Cloud.</p>",
                "languages": ["de"],
            },
        }
        first = (await lms.upsert_courses({"items": [item]})).items[0]
        assert first.status is ItemStatus.CREATED
        course = sim.site.courses[int(first.remote_id)]
        assert (course.idnumber, course.fullname, course.lang, course.categoryid) == (
            "CLD100-2027A",
            "Cloud Computing Foundations",
            "de",
            1,
        )
        again = (await lms.upsert_courses({"items": [item]})).items[0]
        assert again.status is ItemStatus.UNCHANGED and again.id == first.id
        item["course"]["title"] = "Cloud Computing Foundations (2027)"
        changed = (await lms.upsert_courses({"items": [item]})).items[0]
        assert changed.status is ItemStatus.UPDATED
        assert course.fullname == "Cloud Computing Foundations (2027)"
        assert sum(1 for c in sim.site.courses.values() if c.idnumber == "CLD100-2027A") == 1

    async def test_configured_category_and_failed_items_are_reported(self, sim: MoodleSimulator) -> None:
        """New courses go to course_category_id; a language Moodle lacks fails that item only."""
        async with lmsconnect.connect("moodle", **sim.connect_config, course_category_id=3) as lms:
            result = await lms.upsert_courses(
                {
                    "items": [
                        {"origin_id": "NEW-1", "course": {"title": "New"}},
                        {"origin_id": "NEW-2", "course": {"title": "Klingon", "languages": ["tlh"]}},
                    ]
                }
            )
        assert result.item("NEW-1").status is ItemStatus.CREATED
        assert sim.site.courses[int(result.item("NEW-1").remote_id or 0)].categoryid == 3
        failed = result.item("NEW-2")
        assert failed.status is ItemStatus.FAILED and failed.error is not None
        assert "language pack 'tlh' is not installed" in failed.error.message


class TestDeactivateCourse:
    async def test_hide_then_restore(self, sim: MoodleSimulator, lms: Any) -> None:
        """Deactivate hides the course (visible 0), keeps its enrolments, and can be undone."""
        enrolments = len(sim.site.course_enrolments(2))
        result = await lms.deactivate_course(course_id=ids("courses", 2))
        assert result.items[0].status is ItemStatus.UPDATED
        assert sim.site.courses[2].visible == 0
        assert len(sim.site.course_enrolments(2)) == enrolments
        revision = next(r for r in await collect(lms, "course_revisions") if r.remote_id == "2")
        assert revision.status is RevisionStatus.INACTIVE
        await lms.restore_course(ids("courses", 2))
        assert sim.site.courses[2].visible == 1

    async def test_unknown_course_is_not_found(self, lms: Any) -> None:
        """Moodle's per-item warning for an unknown course becomes NotFound."""
        with pytest.raises(NotFound):
            await lms.deactivate_course(course_id="remote:9999")


class TestEnrollUser:
    async def test_role_5_by_default(self, sim: MoodleSimulator, lms: Any) -> None:
        """A manual enrolment with the student role (5) unless configured otherwise."""
        result = await lms.enroll_user(user_id=ids("users", 5), course_revision_id=ids("course_revisions", 4))
        assert result.items[0].status is ItemStatus.CREATED
        assert result.items[0].id == ids("course_progressions", "4:5")
        enrolment = sim.enrolment(5, 4)
        assert enrolment is not None and enrolment.roleid == 5
        again = await lms.enroll_user(user_id=ids("users", 5), course_revision_id=ids("course_revisions", 4))
        assert again.items[0].status is ItemStatus.UNCHANGED

    async def test_configured_role(self, sim: MoodleSimulator) -> None:
        """enrol_role_id picks another role."""
        async with lmsconnect.connect("moodle", **sim.connect_config, enrol_role_id=4) as lms:
            await lms.enroll_user(user_id=ids("users", 5), course_revision_id=ids("course_revisions", 4))
        enrolment = sim.enrolment(5, 4)
        assert enrolment is not None and enrolment.roleid == 4

    async def test_no_manual_instance_is_a_clear_error(self, sim: MoodleSimulator, lms: Any) -> None:
        """A course without manual enrolment fails with LMS.NO_MANUAL_ENROLMENT and enrols nobody."""
        sim.site.courses[4].manual_enrol = False
        with pytest.raises(ActionFailed) as info:
            await lms.enroll_user(user_id=ids("users", 5), course_revision_id=ids("course_revisions", 4))
        assert info.value.code == NO_MANUAL_ENROLMENT
        assert "manual enrolment" in str(info.value)
        assert sim.enrolment(5, 4) is None


class TestCompleteCourse:
    async def test_complete_with_score(self, sim: MoodleSimulator, lms: Any) -> None:
        """All tracked activities complete, every graded activity scored, the progression COMPLETED."""
        result = await lms.complete_course(course_progression_id=ids("course_progressions", "2:5"), score=80)
        assert result.items[0].status is ItemStatus.ACCEPTED
        sim.run_completion_cron()
        assert (await lms.wait_until_visible(result, timeout_s=5)).items[0].status is ItemStatus.UPDATED
        for module in sim.modules(2):
            if module.tracking:
                assert sim.activity_state(5, module.id) in (1, 2), module.name
        assert sim.grade(5, 6) == 80  # assignment out of 100
        assert sim.grade(5, 7) == 8  # quiz out of 10
        progression = next(p for p in await collect(lms, "course_progressions") if p.remote_id == "2:5")
        assert progression.status is ProgressionStatus.COMPLETED
        assert progression.completed_at is not None

    async def test_score_refused_without_graded_activity_and_nothing_changes(
        self, sim: MoodleSimulator, lms: Any
    ) -> None:
        """MGT110 has no grade item: a score is refused before any write."""
        writes_before = sum(
            sim.calls_by_function[f]
            for f in ("core_grades_update_grades", "core_completion_override_activity_completion_status")
        )
        state_before = sim.activity_state(3, 12)
        with pytest.raises(ActionFailed) as info:
            await lms.complete_course(course_progression_id=ids("course_progressions", "4:3"), score=90)
        assert info.value.code == NO_GRADED_ACTIVITY
        assert sim.activity_state(3, 12) == state_before == 0
        assert not sim.course_completed(3, 4)
        assert (
            sum(
                sim.calls_by_function[f]
                for f in ("core_grades_update_grades", "core_completion_override_activity_completion_status")
            )
            == writes_before
        )

    async def test_without_score_on_ungraded_course(self, sim: MoodleSimulator, lms: Any) -> None:
        """Without a score an ungraded course completes by the overrides alone."""
        result = await lms.complete_course(course_progression_id=ids("course_progressions", "4:3"))
        assert result.items[0].status is ItemStatus.UPDATED
        assert sim.course_completed(3, 4)

    async def test_accepted_while_moodle_aggregates_then_visible(self) -> None:
        """With Moodle's cron pending the result is `accepted`; reads show what Moodle reports."""
        async with (
            MoodleSimulator(site="fixture", completion_cron=math.inf) as sim,
            lmsconnect.connect("moodle", **sim.connect_config) as lms,
        ):
            key = ids("course_progressions", "2:5")
            result = await lms.complete_course(course_progression_id=key, score=90)
            assert result.items[0].status is ItemStatus.ACCEPTED
            assert "cron" in result.items[0].detail
            before = next(p for p in await collect(lms, "course_progressions") if p.id == key)
            assert before.status is not ProgressionStatus.COMPLETED
            sim.run_completion_cron()
            waited = await lms.wait_until_visible(result, timeout_s=5)
            assert waited.items[0].status is ItemStatus.UPDATED
            after = next(p for p in await collect(lms, "course_progressions") if p.id == key)
            assert after.status is ProgressionStatus.COMPLETED

    async def test_writes_go_two_at_a_time(self) -> None:
        """A progression's overrides are not all sent at once (real Moodle refuses some when they are)."""
        async with (
            MoodleSimulator(site="fixture", latency=0.05) as sim,
            lmsconnect.connect("moodle", **sim.connect_config) as lms,
        ):
            await lms.complete_course(course_progression_id=ids("course_progressions", "2:5"), score=80)
        assert sim.calls_by_function["core_completion_override_activity_completion_status"] == 4
        assert sim.peak_in_flight["core_completion_override_activity_completion_status"] == 2
        assert sim.peak_in_flight["core_grades_update_grades"] == 2

    async def test_transient_refusals_are_repeated_and_counted(self) -> None:
        """dmlwriteexception and ex_unabletolock (HTTP 200 bodies) are repeated; stats.retries counts each."""
        faults = {"fault_rate": 0.3, "fault_seed": 4, "fault_kinds": ("dml_write", "lock")}
        http = HttpOptions(backoff_base_s=0.001, max_attempts=10)
        async with (
            MoodleSimulator(site="fixture", completion_cron=0, **faults) as sim,
            lmsconnect.connect("moodle", **sim.connect_config, http=http) as lms,
        ):
            key = ids("course_progressions", "2:5")
            result = await lms.complete_course(course_progression_id=key, score=80)
            progressions = {p.remote_id: p.status async for p in lms.list("course_progressions")}
            assert result.items[0].status is ItemStatus.UPDATED
            assert progressions["2:5"] is ProgressionStatus.COMPLETED
            assert sim.faults["dml_write"] > 0 and sim.faults["lock"] > 0
            assert lms.stats.retries == sum(sim.faults.values())

    async def test_not_tracked_is_refused(self, lms: Any) -> None:
        """A course without completion tracking is refused with a clear reason."""
        with pytest.raises(ActionFailed) as info:
            await lms.complete_course(course_progression_id=ids("course_progressions", "5:3"))
        assert "completion tracking" in str(info.value)


async def test_one_sync_rides_out_transient_read_refusals(tmp_path: Any) -> None:
    """dmlreadexception / dmlwriteexception answers to reads: one sync still reads everything."""
    faults = {"fault_rate": 0.25, "fault_seed": 7, "fault_kinds": ("dml", "dml_write", "lock")}
    # The seed fixes the draws, not which concurrent call meets them: with the default 5 attempts one
    # call in ~1,000 meets five faults in a row and a run failed now and then; 12 make that ~1 in 17
    # million.
    http = HttpOptions(backoff_base_s=0.001, max_attempts=12)
    async with (
        MoodleSimulator(site="fixture", **faults) as sim,
        lmsconnect.connect("moodle", **sim.connect_config, http=http) as lms,
        lmsconnect.open_store(str(tmp_path / "faults.sqlite")) as store,
    ):
        report = await lmsconnect.sync(lms, store)
        assert report.ok, report.failed
        assert report.totals["created"] == 35
        assert lms.stats.retries == sum(sim.faults.values()) > 0


class TestScopeTesting:
    async def test_check_names_missing_functions(self, sim: MoodleSimulator, lms: Any) -> None:
        """check() reports per model and action which required functions the service lacks."""
        sim.remove_functions("core_enrol_get_users_courses", "enrol_manual_enrol_users")
        report = await lms.check()
        progressions = report.get("model", "course_progressions")
        assert progressions.status is CheckStatus.MISSING_PERMISSION
        assert "core_enrol_get_users_courses" in progressions.permissions
        assert report.get("action", "enroll_user").permissions == ("enrol_manual_enrol_users",)
        assert report.get("model", "users").status is CheckStatus.OK
        assert report.get("action", "complete_course").status is CheckStatus.OK

    async def test_restricted_token(self, sim: MoodleSimulator) -> None:
        """A token whose service holds only the user functions reads users and nothing else."""
        token = sim.create_token(
            ["core_webservice_get_site_info", "core_user_get_users", "core_user_get_users_by_field"]
        )
        async with lmsconnect.connect("moodle", base_url=sim.url, token=token) as lms:
            report = await lms.check()
        assert report.get("model", "users").status is CheckStatus.OK
        assert report.get("model", "skills").status is CheckStatus.MISSING_PERMISSION
        assert not report.ok


class TestPassthrough:
    async def test_any_wsfunction(self, lms: Any) -> None:
        """Passthrough calls any wsfunction with the token, encoding nested parameters."""
        response = await lms.passthrough(
            "POST", "core_course_get_courses", params={"options": {"ids": [2, 5]}}
        )
        assert sorted(c["id"] for c in response.json()) == [2, 5]

    async def test_connector_class_is_registered(self) -> None:
        """The entry point resolves to the connector."""
        async with MoodleSimulator(users=3, courses=1, enrollments=1) as sim:
            connector = lmsconnect.connect("moodle", **sim.connect_config)
            assert isinstance(connector, MoodleConnector)
            assert "***" in repr(connector) and sim.token not in repr(connector)


class TestInputChecks:
    async def test_language_tags_become_moodle_packs(self, sim: MoodleSimulator) -> None:
        """A BCP 47 region tag maps onto Moodle's pack name (pt-BR -> pt_br)."""
        sim.site.languages = ("en", "pt_br")
        async with lmsconnect.connect("moodle", **sim.connect_config) as lms:
            result = await lms.upsert_courses(
                {"items": [{"origin_id": "PT-1", "course": {"title": "Curso", "languages": ["pt-BR"]}}]}
            )
        assert sim.site.courses[int(result.items[0].remote_id or 0)].lang == "pt_br"

    async def test_unknown_user_is_not_found(self, lms: Any) -> None:
        """Enrolling a user Moodle does not have is NotFound, not a silent success."""
        with pytest.raises(NotFound):
            await lms.enroll_user(user_id="remote:9999", course_revision_id=ids("course_revisions", 4))

    async def test_progression_id_must_be_moodle_shaped(self, lms: Any) -> None:
        """A progression id that is not '<course>:<user>' is rejected before any call."""
        before = lms.stats.calls
        with pytest.raises(InvalidInput):
            await lms.complete_course(course_progression_id="remote:abc")
        assert lms.stats.calls == before

    async def test_site_course_cannot_be_deactivated(self, lms: Any) -> None:
        """Course 1 is the site, not a course."""
        with pytest.raises(InvalidInput):
            await lms.deactivate_course(course_id="remote:1")


# -- fields beyond the coverage tables (issue 13) and course_items ----------------------------------------


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

    async def test_a_subsection_holds_its_own_modules(self, sim: MoodleSimulator, lms: Any) -> None:
        """Moodle 5 subsections: a SECTION item in its section, its delegated section's modules inside it."""
        course = sim.site.courses[2]
        sub, inner = add_subsection(sim.site, course, 4, "Week 4: extra practice")
        quiz = add_module(sim.site, course, inner, "quiz", "Practice quiz")
        hidden = add_module(sim.site, course, inner, "page", "Draft")
        hidden.visible = 0
        items = items_of(await by_remote(lms, "course_items"), 2)
        subsection = items[f"module:{sub.id}"]
        assert (subsection.type, subsection.remote_type) == (CourseItemType.SECTION, "subsection")
        assert (subsection.parent_id, subsection.position) == (items["section:5"].id, 0)
        inside = items[f"module:{quiz.id}"]
        assert (inside.parent_id, inside.position) == (subsection.id, 0)
        assert f"module:{hidden.id}" not in items
        # The delegated section is the subsection itself, not another top-level section.
        assert len([i for i in items.values() if i.parent_id is None]) == 5

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
