"""The lmsconnect conformance kit against the TalentLMS simulator."""

from __future__ import annotations

from typing import Any, ClassVar

from lmsconnect.testing import ConformanceSuite


class TestTalentLMSConformance(ConformanceSuite):
    slug = "talentlms"
    simulator_options: ClassVar[dict[str, Any]] = {"users": 30, "courses": 6, "enrollments": 80, "seed": 3}
    passthrough_request = ("GET", "/v1/siteinfo")
