"""The hello-world connector passes the conformance kit (docs/examples/toylms)."""

from lmsconnect.testing import ConformanceSuite


class TestToyConformance(ConformanceSuite):
    slug = "toylms"
    simulator_options = {"users": 12, "courses": 5, "enrollments": 20}
    passthrough_request = ("GET", "/api/users")
