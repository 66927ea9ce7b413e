"""The lmsconnect conformance kit against the 360Learning simulator."""

from __future__ import annotations

from typing import Any, ClassVar

from lmsconnect import Connector, User, UserStatus
from lmsconnect.testing import ConformanceSuite


class TestLearning360Conformance(ConformanceSuite):
    slug = "360learning"
    simulator_options: ClassVar[dict[str, Any]] = {
        "users": 30,
        "courses": 20,
        "enrollments": 80,
        "seed": 3,
        "processing_delay": 0.05,
    }
    connect_options: ClassVar[dict[str, Any]] = {"poll_interval_s": 0.02}
    passthrough_request = ("GET", "/api/v2/groups")

    async def enroll_candidate(self, lms: Connector[Any]) -> tuple[str, str]:
        """A course of the connector's integration (API v2 enrolls only there) and an active user."""
        result = await lms.upsert_courses(
            {
                "items": [
                    {
                        "origin_id": "kit-enroll",
                        "course": {"title": "Kit", "course_url": "https://e.example/k"},
                    }
                ]
            }
        )
        revision_id = lms.make_id("course_revisions", str(result.items[0].remote_id))
        async for user in lms.list(User):
            if user.status is UserStatus.ACTIVE:
                return user.id, revision_id
        raise AssertionError("the simulator has no active user")
