"""The lmsconnect conformance kit against the Moodle simulator."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from lmsconnect.plugin import Connector
from lmsconnect.testing import ConformanceSuite


class TestMoodleConformance(ConformanceSuite):
    slug = "moodle"
    simulator_options: ClassVar[dict[str, Any]] = {"users": 30, "courses": 8, "enrollments": 120, "seed": 2}
    passthrough_request = ("POST", "core_webservice_get_site_info")

    async def enroll_candidate(self, lms: Connector[Any]) -> tuple[str, str]:
        """An active user and a course with manual enrolment: the simulator also seeds deleted and
        suspended users and courses without a manual enrolment instance, which Moodle refuses."""
        enrolled = {(p.user_id, p.course_revision_id) async for p in lms.list("course_progressions")}  # type: ignore[union-attr]
        body = (await lms.passthrough("POST", "core_course_get_courses_by_field")).json()
        manual = [
            lms.make_id("course_revisions", c["id"])
            for c in body["courses"]
            if "manual" in c["enrollmentmethods"]
        ]
        async for user in lms.list("users"):
            if user.remote_deleted_at is None and str(user.status) == "ACTIVE":  # type: ignore[union-attr]
                for revision in manual:
                    if (user.id, revision) not in enrolled:
                        return user.id, revision
        pytest.skip("no free active user and manual-enrolment course in the simulator")
