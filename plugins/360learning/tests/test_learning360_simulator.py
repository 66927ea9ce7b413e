"""The 360Learning simulator, driven with plain aiohttp calls the way the real API is."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from lmsconnect_360learning.testing import ALL_SCOPES, Learning360Simulator

V2 = "/api/v2"


class Client:
    """A bare API v2 client: token, version header, Link-following."""

    def __init__(self, sim: Learning360Simulator, session: aiohttp.ClientSession) -> None:
        self.sim = sim
        self.session = session
        self.token = ""

    async def authenticate(self) -> None:
        async with self.session.post(
            f"{self.sim.url}{V2}/oauth2/token",
            json={
                "grant_type": "client_credentials",
                "client_id": self.sim.client_id,
                "client_secret": self.sim.client_secret,
            },
        ) as response:
            assert response.status == 200
            self.token = (await response.json())["access_token"]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "360-api-version": "v2.0"}

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        url = path if path.startswith("http") else f"{self.sim.url}{path}"
        async with self.session.request(method, url, headers=self.headers(), **kwargs) as response:
            body = await response.json() if response.content_type == "application/json" else None
            return response.status, body, response

    async def all_pages(self, path: str, **params: str) -> tuple[list[Any], int]:
        records: list[Any] = []
        pages = 0
        url: str | None = f"{self.sim.url}{path}"
        query: dict[str, str] | None = params
        while url:
            status, body, response = await self.call("GET", url, params=query)
            assert status == 200, body
            records.extend(body)
            pages += 1
            link = response.links.get("next")
            url = None if link is None else str(response.url.join(link["url"]))  # type: ignore[arg-type]
            query = None
        return records, pages


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def started(session: aiohttp.ClientSession, **options: Any) -> tuple[Learning360Simulator, Client]:
    sim = Learning360Simulator(**{"users": 30, "courses": 12, "enrollments": 60, **options})
    await sim.start()
    client = Client(sim, session)
    await client.authenticate()
    return sim, client


def external_item(external_id: str, **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "externalId": external_id,
        "name": f"Course {external_id}",
        "description": "About it",
        "launchUrl": f"https://content.example.com/{external_id}",
        "imageUrl": "https://content.example.com/i.png",
        "duration": 45,
        "defaultLang": "en",
        "sources": [{"name": "lmsconnect"}],
        "subjects": [],
        "translations": [{"lang": "fr", "translatedFields": {"name": "Cours"}}],
    }
    item.update(overrides)
    return item


async def wait_operation(client: Client, location: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, body, _ = await client.call("GET", location)
        assert status == 200
        if body["status"] in ("completed", "error"):
            return dict(body)
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.02)


class TestToken:
    status = 0

    async def token_body(
        self, session: aiohttp.ClientSession, sim: Learning360Simulator, body: dict[str, str] | None = None
    ) -> Any:
        body = (
            body
            if body is not None
            else {
                "grant_type": "client_credentials",
                "client_id": sim.client_id,
                "client_secret": sim.client_secret,
            }
        )
        async with session.post(f"{sim.url}{V2}/oauth2/token", json=body) as response:
            self.status = response.status
            return await response.json()

    async def test_client_credentials_issue_a_bearer_token(self, session: aiohttp.ClientSession) -> None:
        """The token endpoint answers the documented shape with a one-hour lifetime by default."""
        async with Learning360Simulator(users=3, courses=1, enrollments=0) as sim:
            body = await self.token_body(session, sim)
            status = self.status
        assert status == 200
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["access_token"]

    @pytest.mark.parametrize(
        ("body", "status", "error"),
        [
            pytest.param(
                {"grant_type": "password", "client_id": "x", "client_secret": "y"},
                400,
                "unsupported_grant_type",
                id="wrong-grant",
            ),
            pytest.param({"client_id": "x"}, 400, "invalid_request", id="no-grant"),
            pytest.param(
                {"grant_type": "client_credentials", "client_id": "sim-client-id", "client_secret": "nope"},
                401,
                "invalid_client",
                id="wrong-secret",
            ),
        ],
    )
    async def test_token_errors(
        self, session: aiohttp.ClientSession, body: dict[str, str], status: int, error: str
    ) -> None:
        """Bad token requests fail with the vendor's flat error strings."""
        async with Learning360Simulator(users=3, courses=1, enrollments=0) as sim:
            assert await self.token_body(session, sim, body) == {"error": error}
            assert self.status == status

    async def test_expires_in_can_come_as_a_string(self, session: aiohttp.ClientSession) -> None:
        """The docs' example sends expires_in as a string; the simulator can too."""
        async with Learning360Simulator(users=3, courses=1, enrollments=0, expires_in_as_string=True) as sim:
            assert (await self.token_body(session, sim))["expires_in"] == "3600"

    async def test_token_expires_after_its_lifetime(self, session: aiohttp.ClientSession) -> None:
        """An expired token gets 401 invalid_token; a new one works."""
        sim, client = await started(session, token_lifetime=0.2)
        try:
            assert (await client.call("GET", f"{V2}/users"))[0] == 200
            await asyncio.sleep(0.25)
            status, body, _ = await client.call("GET", f"{V2}/users")
            assert (status, body) == (401, {"error": "invalid_token"})
            await client.authenticate()
            assert (await client.call("GET", f"{V2}/users"))[0] == 200
            assert sim.tokens_issued == 2
        finally:
            await sim.stop()

    async def test_expire_tokens_helper(self, session: aiohttp.ClientSession) -> None:
        """expire_tokens() makes every issued token fail at once."""
        sim, client = await started(session)
        try:
            sim.expire_tokens()
            assert (await client.call("GET", f"{V2}/courses"))[0] == 401
        finally:
            await sim.stop()


class TestHeadersAndScopes:
    async def test_version_header_is_required(self, session: aiohttp.ClientSession) -> None:
        """Calls without 360-api-version: v2.0 are refused."""
        sim, client = await started(session)
        try:
            async with session.get(
                f"{sim.url}{V2}/users", headers={"Authorization": f"Bearer {client.token}"}
            ) as response:
                assert response.status == 400
                assert (await response.json())["error"]["code"] == "invalidInput"
        finally:
            await sim.stop()

    async def test_missing_scope_is_403_invalid_scope(self, session: aiohttp.ClientSession) -> None:
        """A credential without courseStats:read cannot list attempts, and the error names the scope."""
        sim, client = await started(session, scopes=ALL_SCOPES - {"courseStats:read"})
        try:
            status, body, _ = await client.call("GET", f"{V2}/courses/stats")
            assert status == 403
            assert body["error"]["code"] == "invalid_scope" and "courseStats:read" in body["error"]["message"]
            assert (await client.call("GET", f"{V2}/users"))[0] == 200
        finally:
            await sim.stop()


class TestPagination:
    async def test_link_header_walks_fixed_pages_of_500(self, session: aiohttp.ClientSession) -> None:
        """1,200 users come in pages of 500, 500, 200; the last page has no Link."""
        sim, client = await started(session, users=1200, courses=1, enrollments=0)
        try:
            status, first, response = await client.call("GET", f"{V2}/users")
            assert status == 200 and len(first) == 500
            assert response.headers["Link"].startswith(f"<{sim.url}{V2}/users?next=")
            assert response.headers["Link"].endswith('>; rel="next"')
            users, pages = await client.all_pages(f"{V2}/users")
            assert pages == 3 and len(users) == 1200
            assert len({u["_id"] for u in users}) == 1200
            assert [u["_id"] for u in users] == sorted(u["_id"] for u in users)
        finally:
            await sim.stop()

    async def test_relative_links_and_filters_kept_in_cursor(self, session: aiohttp.ClientSession) -> None:
        """The cursor keeps the first request's filters; links can be relative."""
        sim, client = await started(session, users=1100, courses=1, enrollments=0, link_style="relative")
        try:
            _, _, response = await client.call("GET", f"{V2}/users", params={"status[eq]": "active"})
            assert response.headers["Link"].startswith(f"<{V2}/users?next=")
            active, _ = await client.all_pages(f"{V2}/users", **{"status[eq]": "active"})
            assert active and all(u["status"] == "active" for u in active)
            assert len(active) == sum(1 for u in sim.company.users.values() if u.status == "active")
        finally:
            await sim.stop()

    async def test_stats_filters(self, session: aiohttp.ClientSession) -> None:
        """courses/stats filters by courseId (eq and in) and completedAt."""
        sim, client = await started(session, courses=5, enrollments=300)
        try:
            course_ids = list(sim.company.courses)[:2]
            one, _ = await client.all_pages(f"{V2}/courses/stats", **{"courseId[eq]": course_ids[0]})
            assert one and {a["courseId"] for a in one} == {course_ids[0]}
            both, _ = await client.all_pages(f"{V2}/courses/stats", **{"courseId[in]": ",".join(course_ids)})
            assert {a["courseId"] for a in both} == set(course_ids)
            done, _ = await client.all_pages(f"{V2}/courses/stats", **{"completedAt[gte]": "2000-01-01"})
            assert done and all("completedAt" in a for a in done)
            status, body, _ = await client.call("GET", f"{V2}/courses/stats", params={"score[eq]": "1"})
            assert status == 400 and body["error"]["code"] == "invalidInput"
        finally:
            await sim.stop()


class TestRateLimits:
    def test_defaults_are_the_vendor_limits(self) -> None:
        """50 GET/s, 10 writes/s, 3 running bulk operations unless told otherwise."""
        sim = Learning360Simulator(users=1, courses=0, enrollments=0)
        assert (sim.read_limit, sim.write_limit, sim.rate_window, sim.max_running_bulk_operations) == (
            50,
            10,
            1.0,
            3,
        )

    async def test_reads_beyond_the_limit_get_429(self, session: aiohttp.ClientSession) -> None:
        """The sixth read inside the window is refused with tooManyRequests, then the window frees up."""
        sim, client = await started(session, read_limit=5, rate_window=0.3)
        try:
            statuses = [(await client.call("GET", f"{V2}/groups"))[0] for _ in range(6)]
            assert statuses == [200] * 5 + [429]
            status, body, _ = await client.call("GET", f"{V2}/groups")
            assert (status, body) == (429, {"error": "tooManyRequests"})
            assert sim.rejected_calls == 2
            await asyncio.sleep(0.35)
            assert (await client.call("GET", f"{V2}/groups"))[0] == 200
        finally:
            await sim.stop()

    async def test_writes_have_their_own_budget(self, session: aiohttp.ClientSession) -> None:
        """Writes count against the write budget only."""
        sim, client = await started(session, write_limit=2, read_limit=100, rate_window=5)
        try:
            course_id = next(iter(sim.company.courses))
            statuses = [
                (await client.call("PUT", f"{V2}/courses/{course_id}/archive", json={"archived": True}))[0]
                for _ in range(3)
            ]
            assert statuses == [200, 200, 429]
            assert (await client.call("GET", f"{V2}/courses/{course_id}"))[0] == 200
        finally:
            await sim.stop()


class TestCourses:
    async def test_archive_then_restore(self, session: aiohttp.ClientSession) -> None:
        """PUT /courses/{id}/archive archives and restores, keeping the attempts."""
        sim, client = await started(session, archived_share=0.0)
        try:
            attempt = next(iter(sim.company.attempts.values()))
            course_id = attempt.course_id
            status, body, _ = await client.call(
                "PUT", f"{V2}/courses/{course_id}/archive", json={"archived": True}
            )
            assert status == 200 and body["status"] == "archived"
            archived, _ = await client.all_pages(f"{V2}/courses", **{"status[eq]": "archived"})
            assert [c["_id"] for c in archived] == [course_id]
            status, body, _ = await client.call(
                "PUT", f"{V2}/courses/{course_id}/archive", json={"archived": False}
            )
            assert status == 200 and body["status"] == "published"
            assert sim.attempts(course_id=course_id)
            status, body, _ = await client.call(
                "PUT", f"{V2}/courses/{'0' * 24}/archive", json={"archived": True}
            )
            assert status == 404 and body["error"]["code"] == "courseNotFound"
        finally:
            await sim.stop()

    async def test_seeded_courses_have_providers(self) -> None:
        """External courses name an integration or a built-in platform; some courses are archived."""
        sim = Learning360Simulator(users=5, courses=200, enrollments=0)
        courses = list(sim.company.courses.values())
        platforms = {c.external_platform for c in courses if c.type == "external"}
        integration_names = {i.external_platform for i in sim.company.integrations.values()}
        assert platforms & integration_names and platforms - integration_names
        assert any(c.status == "archived" for c in courses)
        assert {c.type for c in courses} == {"native", "external", "elearning standard"}


class TestBulkOperations:
    async def test_upsert_external_courses_is_asynchronous(self, session: aiohttp.ClientSession) -> None:
        """PUT bulk courses answers 202 + Location; the course exists only once the operation has run."""
        sim, client = await started(session, processing_delay=0.3)
        integration = sim.own_integration_id
        try:
            status, _, response = await client.call(
                "PUT",
                f"{V2}/bulk/integrations/{integration}/courses",
                json={"input": [external_item("new-1")]},
            )
            assert status == 202
            location = response.headers["Location"]
            assert location.startswith(f"{sim.url}{V2}/bulk/operations/")
            status, body, _ = await client.call("GET", location)
            assert body["status"] in ("pending", "queued") and body["type"] == "importExternalCourses"
            status, body, _ = await client.call("GET", f"{location}/results")
            assert status == 400 and body["error"]["code"] == "bulkOperationNotRun"
            status, body, _ = await client.call("GET", f"{V2}/integrations/{integration}/courses/new-1")
            assert status == 404
            operation = await wait_operation(client, location)
            assert operation["status"] == "completed" and "endedAt" in operation
            _, results, _ = await client.call("GET", f"{location}/results")
            assert results[0]["status"] == "success"
            course_id = results[0]["resourceId"]
            _, external, _ = await client.call("GET", f"{V2}/integrations/{integration}/courses/new-1")
            assert external["courseId"] == course_id and external["launchUrl"].endswith("/new-1")
            _, course, _ = await client.call("GET", f"{V2}/courses/{course_id}")
            assert course["type"] == "external" and course["externalPlatform"] == "lmsconnect"
            assert course["duration"] == 45 and [t["lang"] for t in course["translations"]] == ["fr"]

            # The same externalId again replaces the course instead of adding one.
            sim.processing_delay = 0
            _, _, response = await client.call(
                "PUT",
                f"{V2}/bulk/integrations/{integration}/courses",
                json={"input": [external_item("new-1", name="Renamed")]},
            )
            await wait_operation(client, response.headers["Location"])
            _, results, _ = await client.call("GET", f"{response.headers['Location']}/results")
            assert results[0]["resourceId"] == course_id
            assert sum(1 for c in sim.company.courses.values() if c.name == "Renamed") == 1
        finally:
            await sim.stop()

    async def test_invalid_bulk_input_is_refused_whole(self, session: aiohttp.ClientSession) -> None:
        """Schema errors are a 400 invalidInput at submission; no operation is made."""
        sim, client = await started(session)
        try:
            status, body, _ = await client.call(
                "PUT",
                f"{V2}/bulk/integrations/{sim.own_integration_id}/courses",
                json={"input": [external_item("x", duration=0)]},
            )
            assert status == 400 and body["error"]["code"] == "invalidInput"
            assert not sim.company.operations
            status, body, _ = await client.call(
                "PUT", f"{V2}/bulk/integrations/{'f' * 24}/courses", json={"input": [external_item("x")]}
            )
            assert status == 404 and body["error"]["code"] == "integrationNotFound"
        finally:
            await sim.stop()

    async def test_enrollment_and_completion_appear_after_the_delay(
        self, session: aiohttp.ClientSession
    ) -> None:
        """A 0 % stats import creates an attempt, a 100 % one completes it, each only once processed."""
        sim, client = await started(session, processing_delay=0.3)
        integration = sim.own_integration_id
        try:
            await client.call(
                "PUT",
                f"{V2}/bulk/integrations/{integration}/courses",
                json={"input": [external_item("enr-1")]},
            )
            sim.process_bulk_operations()
            course_id = next(
                c.id
                for c in sim.company.courses.values()
                if c.external and c.external["externalId"] == "enr-1"
            )
            user_id = next(u.id for u in sim.company.users.values() if u.status == "active")
            stat = {
                "courseIdentifier": {"type": "internalId", "value": course_id},
                "userIdentifier": {"type": "internalId", "value": user_id},
                "progress": 0,
                "timeSpent": 1,
                "firstActivityAt": "2026-01-05T10:00:00.000Z",
                "lastActivityAt": "2026-01-05T10:00:00.000Z",
            }
            status, _, response = await client.call(
                "POST", f"{V2}/bulk/integrations/{integration}/stats", json={"input": [stat]}
            )
            assert status == 202
            query = {"userId[eq]": user_id, "courseId[eq]": course_id}
            assert (await client.all_pages(f"{V2}/courses/stats", **query))[0] == []
            await wait_operation(client, response.headers["Location"])
            attempts, _ = await client.all_pages(f"{V2}/courses/stats", **query)
            assert len(attempts) == 1 and attempts[0]["progress"] == 0 and "completedAt" not in attempts[0]

            done = {
                **stat,
                "progress": 100,
                "score": 88,
                "timeSpent": 60_000,
                "result": "success",
                "lastActivityAt": "2026-01-06T09:30:00.000Z",
            }
            _, _, response = await client.call(
                "POST", f"{V2}/bulk/integrations/{integration}/stats", json={"input": [done]}
            )
            still, _ = await client.all_pages(f"{V2}/courses/stats", **query)
            assert "completedAt" not in still[0]
            await wait_operation(client, response.headers["Location"])
            after, _ = await client.all_pages(f"{V2}/courses/stats", **query)
            assert len(after) == 1 and after[0]["_id"] == attempts[0]["_id"]
            assert after[0]["completedAt"] == "2026-01-06T09:30:00.000Z" and after[0]["score"] == 88
        finally:
            await sim.stop()

    async def test_stats_for_a_foreign_course_fail_per_item(self, session: aiohttp.ClientSession) -> None:
        """A course outside the integration is an error in the results, not in the submission."""
        sim, client = await started(session, processing_delay=0)
        try:
            native = next(c for c in sim.company.courses.values() if c.type == "native")
            user = next(u for u in sim.company.users.values() if u.status == "active")
            stat = {
                "courseIdentifier": {"type": "internalId", "value": native.id},
                "userIdentifier": {"type": "mail", "value": user.mail},
                "progress": 0,
                "timeSpent": 1,
                "firstActivityAt": "2026-01-05T10:00:00Z",
                "lastActivityAt": "2026-01-05T10:00:00Z",
            }
            _, _, response = await client.call(
                "POST", f"{V2}/bulk/integrations/{sim.own_integration_id}/stats", json={"input": [stat]}
            )
            operation = await wait_operation(client, response.headers["Location"])
            assert operation["status"] == "completed"
            _, results, _ = await client.call("GET", f"{response.headers['Location']}/results")
            assert (
                results[0]["status"] == "error"
                and "courseNotBelongToIntegration" in results[0]["errorMessage"]
            )
        finally:
            await sim.stop()

    async def test_three_running_operations_at_most(self, session: aiohttp.ClientSession) -> None:
        """A fourth concurrent bulk operation gets 429 bulkOperationsConcurrencyLimitReached."""
        sim, client = await started(session, processing_delay=30)
        try:
            path = f"{V2}/bulk/integrations/{sim.own_integration_id}/courses"
            for index in range(3):
                assert (await client.call("PUT", path, json={"input": [external_item(f"c{index}")]}))[
                    0
                ] == 202
            status, body, _ = await client.call("PUT", path, json={"input": [external_item("c4")]})
            assert status == 429 and body["error"]["code"] == "bulkOperationsConcurrencyLimitReached"
            sim.process_bulk_operations()
            assert (await client.call("PUT", path, json={"input": [external_item("c4")]}))[0] == 202
        finally:
            sim.process_bulk_operations()
            await sim.stop()


class TestIntegrations:
    async def test_list_create_and_refuse_duplicates(self, session: aiohttp.ClientSession) -> None:
        """Integrations are listed, created with 201, and names are unique and not reserved."""
        sim, client = await started(session, providers=4)
        try:
            listed, _ = await client.all_pages(f"{V2}/integrations")
            assert listed[0]["externalPlatform"] == "lmsconnect" and len(listed) == 4
            status, body, _ = await client.call(
                "POST", f"{V2}/integrations", json={"externalPlatform": "Mine"}
            )
            assert status == 201 and body["externalPlatform"] == "Mine"
            status, body, _ = await client.call(
                "POST", f"{V2}/integrations", json={"externalPlatform": "Mine"}
            )
            assert status == 400 and body["error"]["code"] == "duplicateExternalPlatform"
            status, body, _ = await client.call(
                "POST", f"{V2}/integrations", json={"externalPlatform": "Udemy"}
            )
            assert status == 400 and body["error"]["code"] == "reservedPlatformName"
        finally:
            await sim.stop()


class TestCountersDeterminismFaults:
    async def test_calls_are_counted_per_route(self, session: aiohttp.ClientSession) -> None:
        """Every request counts, the token call included, keyed by method and route template."""
        sim, client = await started(session)
        try:
            await client.call("GET", f"{V2}/users")
            course_id = next(iter(sim.company.courses))
            await client.call("GET", f"{V2}/courses/{course_id}")
            assert sim.calls == 3
            assert sim.calls_by_route[f"POST {V2}/oauth2/token"] == 1
            assert sim.calls_by_route[f"GET {V2}/courses/{{courseId}}"] == 1
        finally:
            await sim.stop()

    def test_same_seed_same_company(self) -> None:
        """Data depends only on the seed."""

        def snapshot(seed: int) -> list[Any]:
            company = Learning360Simulator(users=40, courses=10, enrollments=80, seed=seed).company
            return [
                [u.to_json() for u in company.users.values()],
                [c.to_json() for c in company.courses.values()],
                [a.to_json() for a in company.attempts.values()],
            ]

        assert snapshot(7) == snapshot(7)
        assert snapshot(7) != snapshot(8)

    async def test_faults_are_injected_deterministically(self, session: aiohttp.ClientSession) -> None:
        """The same fault seed gives the same statuses for the same sequence of calls."""

        async def statuses() -> list[int]:
            sim, client = await started(session, fault_rate=0.3, throttle_rate=0.2, fault_seed=3)
            try:
                return [(await client.call("GET", f"{V2}/groups"))[0] for _ in range(30)]
            finally:
                await sim.stop()

        first = await statuses()
        assert first == await statuses()
        assert {200, 500, 429} <= set(first)

    async def test_dropped_connections(self, session: aiohttp.ClientSession) -> None:
        """drop_rate closes the socket without a response."""
        sim, client = await started(session, drop_rate=1.0)
        try:
            with pytest.raises(aiohttp.ClientError):
                await client.call("GET", f"{V2}/users")
            # aiohttp itself retries a GET once on a connection the server closed.
            assert sim.faults_injected["drop"] >= 1
        finally:
            await sim.stop()

    async def test_latency_is_added(self, session: aiohttp.ClientSession) -> None:
        """Each request takes at least the configured latency."""
        sim, client = await started(session, latency=0.05)
        try:
            loop = asyncio.get_running_loop()
            began = loop.time()
            await client.call("GET", f"{V2}/groups")
            assert loop.time() - began >= 0.05
        finally:
            await sim.stop()


class TestOutOfProcess:
    async def test_stats_endpoint_is_not_an_api_call(self, session: aiohttp.ClientSession) -> None:
        """GET /_simulator/stats reports the counters without counting itself."""
        sim, client = await started(session)
        try:
            await client.call("GET", f"{V2}/users")
            async with session.get(f"{sim.url}/_simulator/stats") as response:
                stats = await response.json()
            assert stats["calls"] == 2 == sim.calls
            assert stats["counts"]["users"] == 30 and stats["limits"]["read_limit"] == 50
        finally:
            await sim.stop()

    async def test_cli_simulate_prints_the_connect_config(self, session: aiohttp.ClientSession) -> None:
        """`lmsconnect simulate 360learning --port 0` serves the API and prints how to reach it."""
        code = "import sys; from lmsconnect._cli import main; sys.exit(main())"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            "simulate",
            "360learning",
            "--port",
            "0",
            "--users",
            "7",
            "--option",
            "processing_delay=0.5",
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            config = json.loads(await asyncio.wait_for(process.stdout.readline(), timeout=30))["config"]
            assert set(config) >= {"base_url", "client_id", "client_secret", "integration_id"}
            async with session.get(f"{config['base_url']}/_simulator/stats") as response:
                assert (await response.json())["counts"]["users"] == 7
        finally:
            process.terminate()
            await process.wait()
