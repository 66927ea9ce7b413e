"""TalentLMS API v2 mode: course updates and reversible deactivation through batch tasks, and the fallback."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from lmsconnect_talentlms import COURSE_BATCH_FAILED, COURSE_UPDATE_NOT_SUPPORTED, TalentLMSConnector
from lmsconnect_talentlms._v2 import read_task, task_id_of
from lmsconnect_talentlms.testing import TalentLMSSimulator

import lmsconnect
from lmsconnect import (
    AuthenticationError,
    CheckStatus,
    HttpOptions,
    ItemStatus,
    NotFound,
    RemoteError,
)
from lmsconnect.plugin import Connector

FAST = HttpOptions(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.02)


@pytest.fixture
async def sim() -> AsyncIterator[TalentLMSSimulator]:
    options: dict[str, Any] = {"users": 20, "courses": 4, "enrollments": 40, "seed": 7, "task_seconds": 0.05}
    async with TalentLMSSimulator(**options) as simulator:
        yield simulator


@pytest.fixture
async def lms(sim: TalentLMSSimulator) -> AsyncIterator[Connector[Any]]:
    async with lmsconnect.connect("talentlms", **sim.connect_config, http=FAST) as connector:
        yield connector


def upsert(origin: str, **course: Any) -> dict[str, Any]:
    return {"items": [{"origin_id": origin, "course": {"title": "Course", **course}}]}


async def created(lms: Connector[Any], origin: str, **course: Any) -> str:
    item = (await lms.upsert_courses(upsert(origin, **course))).item(origin)
    assert item.status is ItemStatus.CREATED and item.remote_id
    return item.remote_id


class TestMode:
    async def test_auto_finds_v2_and_the_connection_table_says_so(self, lms: Connector[Any]) -> None:
        """With v2, a connection's table updates courses and deactivates reversibly (asynchronous)."""
        caps = await lms.resolve_capabilities()
        assert caps is lms.capabilities and caps.mode == "v2"
        deactivate = caps.actions["deactivate_course"]
        assert not deactivate.destructive and deactivate.asynchronous
        assert "reversible" in deactivate.note
        assert caps.actions["upsert_courses"].asynchronous
        assert COURSE_UPDATE_NOT_SUPPORTED in caps.actions["upsert_courses"].note  # the duration

    async def test_probe_runs_once_per_connection(self, lms: Connector[Any], sim: TalentLMSSimulator) -> None:
        """Health plus one authenticated v2 read, once, however often the table is asked for."""
        await asyncio.gather(*(lms.resolve_capabilities() for _ in range(5)))
        await lms.upsert_courses(upsert("once"))
        assert sim.calls_by_route["GET /v2/health"] == 1
        assert sim.calls_by_route["GET /v2/courses"] == 1

    @pytest.mark.parametrize(
        ("sim_options", "config"),
        [({"api_v2": False}, {}), ({"api_enabled": False}, {}), ({}, {"api_key": "not-the-key"})],
        ids=["404-no-v2", "403-api-disabled", "401-bad-key"],
    )
    async def test_auto_falls_back_to_v1_on_401_403_404(
        self, sim_options: dict[str, Any], config: dict[str, Any]
    ) -> None:
        """v2 answering 401/403/404 makes the connection v1 only: the destructive table, said by check()."""
        sim = TalentLMSSimulator(users=4, courses=1, enrollments=0, **sim_options)
        async with sim, lmsconnect.connect("talentlms", **{**sim.connect_config, **config}) as lms:
            caps = await lms.resolve_capabilities()
            report = await lms.check(models=False)
        assert caps.mode == "v1" and caps.actions["deactivate_course"].destructive
        if "api_key" in config:  # a key v1 refuses too: check() stops at the credentials
            assert report.get("credentials", "credentials").status is CheckStatus.ERROR
            return
        item = report.get("credentials", "api_v2")
        assert item.status is CheckStatus.NOT_SUPPORTED
        assert "unavailable" in item.detail and "DELETES" in item.detail

    async def test_an_outage_during_the_probe_is_no_fallback(self) -> None:
        """A 500 on the probe raises and leaves the mode open: deactivate never falls back to delete."""
        async with TalentLMSSimulator(
            users=4, courses=2, enrollments=0, fault_rate=1.0, fault_routes={"GET /v2/health"}
        ) as sim:
            async with lmsconnect.connect("talentlms", **sim.connect_config, http=FAST) as lms:
                with pytest.raises(RemoteError):
                    await lms.deactivate_course(course_id="remote:1")
                assert lms.capabilities.mode == ""
                report = await lms.check(models=False)
            assert sim.course(1) is not None
            assert sim.calls_by_route["POST /v1/deletecourse"] == 0
        assert report.get("credentials", "capabilities").status is CheckStatus.ERROR

    async def test_reads_need_no_probe(self, lms: Connector[Any], sim: TalentLMSSimulator) -> None:
        """A full read with api_v2=auto makes no v2 call: only actions and check() need the mode."""
        for model in ("users", "courses", "course_revisions", "course_progressions"):
            assert [r async for r in lms.list(model)]
        assert not [route for route in sim.calls_by_route if "/v2/" in route]

    async def test_check_says_v2_is_available(self, lms: Connector[Any]) -> None:
        report = await lms.check()
        assert report.ok
        assert report.get("credentials", "api_v2").status is CheckStatus.OK

    async def test_api_v2_on_without_v2_is_a_missing_permission_in_check(self) -> None:
        sim = TalentLMSSimulator(users=4, courses=1, enrollments=0, api_v2=False)
        async with sim, lmsconnect.connect("talentlms", **sim.connect_config, api_v2="on") as lms:
            assert lms.capabilities.mode == "v2"  # said, not probed
            report = await lms.check(models=False)
        assert report.get("credentials", "api_v2").status is CheckStatus.MISSING_PERMISSION
        assert not report.ok

    def test_bad_api_v2_option_is_a_configuration_error(self) -> None:
        with pytest.raises(lmsconnect.ConfigurationError, match="api_v2"):
            lmsconnect.connect("talentlms", domain="a.talentlms.com", api_key="k", api_v2="yes")
        with pytest.raises(lmsconnect.ConfigurationError, match="api_version"):
            lmsconnect.connect("talentlms", domain="a.talentlms.com", api_key="k", api_version="latest")

    def test_class_table_shows_both_modes(self) -> None:
        """The class table carries both modes; its flags are either mode's, and the docs list both."""
        table = TalentLMSConnector.capabilities
        assert set(table.modes) == {"v1", "v2"}
        assert table.modes["v1"].actions["deactivate_course"].destructive
        assert not table.modes["v2"].actions["deactivate_course"].destructive
        assert table.actions["deactivate_course"].destructive  # what a connection may turn out to do
        page = table.to_markdown()
        assert "## Connection modes" in page and "### Mode `v2`" in page and "### Mode `v1`" in page


class TestUpsertThroughV2:
    async def test_title_and_description_change_is_accepted_then_updated(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        remote = await created(lms, "edit", description="Old", duration=60)
        result = await lms.upsert_courses(upsert("edit", title="Renamed", description="New", duration=60))
        item = result.item("edit")
        assert item.status is ItemStatus.ACCEPTED and item.error is None
        assert sim.course(int(remote)).name == "Course"  # type: ignore[union-attr]  # not applied yet
        waited = (await lms.wait_until_visible(result, timeout_s=10)).item("edit")
        assert waited.status is ItemStatus.UPDATED
        course = sim.course(int(remote))
        assert course is not None and (course.name, course.description) == ("Renamed", "New")
        assert sim.calls_by_route["POST /v2/batch/courses"] == 1

    async def test_rerun_is_unchanged(self, lms: Connector[Any], sim: TalentLMSSimulator) -> None:
        await created(lms, "again")
        payload = upsert("again", title="Second title")
        await lms.wait_until_visible(await lms.upsert_courses(payload), timeout_s=10)
        item = (await lms.upsert_courses(payload)).item("again")
        assert item.status is ItemStatus.UNCHANGED
        assert sim.calls_by_route["POST /v2/batch/courses"] == 1

    async def test_duration_change_alone_fails_with_its_code(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        """The batch has no duration field: the item says so, nothing is sent."""
        remote = await created(lms, "long", duration=60)
        item = (await lms.upsert_courses(upsert("long", duration=3 * 1440))).item("long")
        assert item.status is ItemStatus.FAILED
        assert item.error is not None and item.error.code == COURSE_UPDATE_NOT_SUPPORTED
        assert "duration" in item.error.message
        assert sim.course(int(remote)).time_limit == 1  # type: ignore[union-attr]
        assert sim.calls_by_route["POST /v2/batch/courses"] == 0

    async def test_duration_with_a_title_change_is_reported_not_applied(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        remote = await created(lms, "both", duration=60)
        result = await lms.upsert_courses(upsert("both", title="New title", duration=3 * 1440))
        waited = (await lms.wait_until_visible(result, timeout_s=10)).item("both")
        assert waited.status is ItemStatus.UPDATED
        assert waited.error is not None and waited.error.code == COURSE_UPDATE_NOT_SUPPORTED
        assert "NOT applied" in waited.detail
        course = sim.course(int(remote))
        assert course is not None and (course.name, course.time_limit) == ("New title", 1)

    async def test_250_changes_go_in_batches_of_at_most_100(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        for n in range(250):
            sim.add_course(name=f"Old {n}", code=f"bulk-{n}")
        payload = {"items": [{"origin_id": f"bulk-{n}", "course": {"title": f"New {n}"}} for n in range(250)]}
        result = await lms.upsert_courses(payload)
        assert {i.status for i in result.items} == {ItemStatus.ACCEPTED}
        assert sorted(len(t.items) for t in sim.v2.tasks.values()) == [50, 100, 100]
        waited = await lms.wait_until_visible(result, timeout_s=20)
        assert {i.status for i in waited.items} == {ItemStatus.UPDATED}
        assert sim.calls_by_route["POST /v2/batch/courses"] == 3
        assert [c.name for c in sim.courses if c.code == "bulk-249"] == ["New 249"]

    async def test_a_task_failing_one_item_is_reported_on_that_item(self) -> None:
        async with TalentLMSSimulator(
            users=4, courses=0, enrollments=0, task_seconds=0.05, batch_fail_codes={"bad"}
        ) as sim:
            sim.add_course(name="Old", code="bad")
            sim.add_course(name="Old", code="good")
            async with lmsconnect.connect("talentlms", **sim.connect_config) as lms:
                payload = {"items": [{"origin_id": c, "course": {"title": "New"}} for c in ("bad", "good")]}
                waited = await lms.wait_until_visible(await lms.upsert_courses(payload), timeout_s=10)
        bad, good = waited.item("bad"), waited.item("good")
        assert good.status is ItemStatus.UPDATED
        assert bad.status is ItemStatus.FAILED
        assert bad.error is not None and bad.error.code == COURSE_BATCH_FAILED
        assert "could not be saved" in bad.error.message
        assert [c.name for c in sim.courses if c.code == "bad"] == ["Old"]

    async def test_unfinished_task_stays_accepted_until_the_timeout(self) -> None:
        async with TalentLMSSimulator(users=4, courses=0, enrollments=0, task_seconds=30) as sim:
            sim.add_course(name="Old", code="slow")
            async with lmsconnect.connect("talentlms", **sim.connect_config) as lms:
                result = await lms.upsert_courses(upsert("slow"))
                waited = await lms.wait_until_visible(result, timeout_s=0.3)
        assert waited.item("slow").status is ItemStatus.ACCEPTED

    async def test_failed_batch_call_fails_its_items_without_a_resend(self) -> None:
        """A 500 on the batch POST is not retried (it may have been applied) and fails each item."""
        async with TalentLMSSimulator(
            users=4, courses=0, enrollments=0, fault_rate=1.0, fault_routes={"POST /v2/batch/courses"}
        ) as sim:
            sim.add_course(name="Old", code="x")
            async with lmsconnect.connect("talentlms", **sim.connect_config, http=FAST) as lms:
                item = (await lms.upsert_courses(upsert("x"))).item("x")
            assert sim.calls_by_route["POST /v2/batch/courses"] == 1
        assert item.status is ItemStatus.FAILED
        assert item.error is not None and item.error.code == "REMOTE.ERROR"
        assert "may or may not" in item.error.message

    async def test_v2_json_error_is_mapped_per_item(self) -> None:
        """api_v2=on against a tenant without v2: the batch's 404 JSON error becomes NotFound's code."""
        async with TalentLMSSimulator(users=4, courses=0, enrollments=0, api_v2=False) as sim:
            sim.add_course(name="Old", code="y")
            async with lmsconnect.connect("talentlms", **sim.connect_config, api_v2="on") as lms:
                item = (await lms.upsert_courses(upsert("y"))).item("y")
        assert item.status is ItemStatus.FAILED
        assert item.error is not None and item.error.code == NotFound.code
        assert "nothing was applied" in item.error.message


    async def test_a_422_from_the_batch_is_a_refusal_per_item(
        self, lms: Connector[Any], sim: TalentLMSSimulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """TalentLMS's JSON 422 maps to InvalidInput: the items fail saying nothing was applied."""
        from lmsconnect_talentlms._simv2 import _V2Error

        def refuse(body: bytes) -> Any:
            raise _V2Error(422, "courses[0].name is too long")

        monkeypatch.setattr(sim.v2, "_batch", refuse)
        await created(lms, "long-name")
        item = (await lms.upsert_courses(upsert("long-name", title="T" * 300))).item("long-name")
        assert item.status is ItemStatus.FAILED
        assert item.error is not None and item.error.code == lmsconnect.InvalidInput.code
        assert "nothing was applied" in item.error.message and "too long" in item.error.message


class TestDeactivateThroughV2:
    async def test_course_becomes_inactive_and_keeps_its_learners(
        self, sim: TalentLMSSimulator
    ) -> None:
        """Not destructive: allowed with allow_destructive=False; enrolments and progress stay."""
        course = next(c for c in sim.courses if sim.enrollments(course_id=c.id) and c.status == "active")
        before = [(e.user_id, e.completion_percentage) for e in sim.enrollments(course_id=course.id)]
        async with lmsconnect.connect("talentlms", **sim.connect_config, allow_destructive=False) as lms:
            result = await lms.deactivate_course(course_id=lms.make_id("courses", course.id))
            assert result.items[0].status is ItemStatus.ACCEPTED
            waited = await lms.wait_until_visible(result, timeout_s=10)
            revisions = {r.remote_id: r async for r in lms.list(lmsconnect.CourseRevision)}
        assert waited.items[0].status is ItemStatus.UPDATED
        assert sim.course(course.id) is not None and sim.course(course.id).status == "inactive"  # type: ignore[union-attr]
        assert [(e.user_id, e.completion_percentage) for e in sim.enrollments(course_id=course.id)] == before
        assert revisions[str(course.id)].status is lmsconnect.RevisionStatus.INACTIVE
        assert sim.calls_by_route["POST /v1/deletecourse"] == 0

    async def test_upsert_of_the_same_origin_id_reactivates(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        remote = await created(lms, "back", description="D")
        deactivated = await lms.deactivate_course(course_id=lms.make_id("courses", remote))
        await lms.wait_until_visible(deactivated, timeout_s=10)
        assert sim.course(int(remote)).status == "inactive"  # type: ignore[union-attr]
        again = await lms.deactivate_course(course_id=lms.make_id("courses", remote))
        assert again.items[0].status is ItemStatus.UNCHANGED
        result = await lms.upsert_courses(upsert("back", description="D"))
        assert result.item("back").status is ItemStatus.ACCEPTED
        waited = await lms.wait_until_visible(result, timeout_s=10)
        assert waited.item("back").status is ItemStatus.UPDATED
        assert sim.course(int(remote)).status == "active"  # type: ignore[union-attr]
        assert len(sim.courses_with_code("back")) == 1

    async def test_unknown_course_is_not_found(self, lms: Connector[Any]) -> None:
        with pytest.raises(NotFound):
            await lms.deactivate_course(course_id="remote:9999")


class TestV2Wire:
    async def test_simulator_requires_key_version_and_answers_json_errors(
        self, sim: TalentLMSSimulator
    ) -> None:
        """401 without or with a wrong key, 400 without X-API-Version, HTML errors without Accept JSON."""
        url = f"{sim.url}/v2/courses"
        good = {"X-API-Key": sim.api_key, "X-API-Version": "2024-11-01", "Accept": "application/json"}
        async with aiohttp.ClientSession() as session:
            for headers, status in [
                ({**good, "X-API-Key": ""}, 401),
                ({**good, "X-API-Key": "wrong"}, 401),
                ({k: v for k, v in good.items() if k != "X-API-Version"}, 400),
            ]:
                async with session.get(url, headers=headers) as resp:
                    assert resp.status == status
                    body = await resp.json()
                    assert body["type"] == "invalid_request_error" and body["message"]
            async with session.get(url, headers={**good, "X-API-Key": "", "Accept": "*/*"}) as resp:
                assert resp.status == 401 and resp.content_type == "text/html"
            async with session.get(url, headers=good, params={"page[size]": "2"}) as resp:
                page = await resp.json()
                assert resp.headers["X-RateLimit-Limit"] == "2000"
        assert len(page["_data"]) == 2
        assert page["_meta"]["pagination"]["total_items"] == len(sim.courses)
        assert "page%5Bnumber%5D=2" in page["_links"]["next"]

    async def test_v2_calls_share_the_v1_rate_limit(self) -> None:
        """The simulator counts v1 and v2 calls in one window: v2 is refused once v1 has filled it."""
        async with TalentLMSSimulator(users=4, courses=1, enrollments=0, burst_limit=2) as sim:
            headers = {"X-API-Key": sim.api_key, "X-API-Version": "2024-11-01", "Accept": "application/json"}
            basic = {"Authorization": "Basic " + base64.b64encode(f"{sim.api_key}:".encode()).decode()}
            async with aiohttp.ClientSession() as session:
                for _ in range(2):
                    async with session.get(f"{sim.url}/v1/courses", headers=basic) as resp:
                        assert resp.status == 200
                async with session.get(f"{sim.url}/v2/courses", headers=headers) as resp:
                    assert resp.status == 429
                    assert (await resp.json())["message"] == "API rate limit exceeded"
            assert sim.rejected_calls == 1

    async def test_one_http_client_and_budget_for_v1_and_v2(self, lms: Connector[Any]) -> None:
        """Through the connector, v2 calls go through the connection's one client and rate budget."""
        await lms.upsert_courses(upsert("budget"))
        await lms.wait_until_visible(await lms.upsert_courses(upsert("budget", title="T")), timeout_s=10)
        v2_calls = sum(n for status, n in lms.stats.by_status.items() if status < 300)
        assert lms.stats.calls == v2_calls  # every call, v1 and v2, counted by the one client

    async def test_v2_passthrough_carries_the_v2_headers(
        self, lms: Connector[Any], sim: TalentLMSSimulator
    ) -> None:
        response = await lms.passthrough("GET", "/v2/courses", params={"page[size]": "100"})
        assert response.status == 200
        assert [c["id"] for c in response.json()["_data"]] == [c.id for c in sim.courses]

    async def test_bad_key_on_a_v2_passthrough_is_an_authentication_error(
        self, sim: TalentLMSSimulator
    ) -> None:
        config = {**sim.connect_config, "api_key": "wrong-key-456"}
        async with lmsconnect.connect("talentlms", **config) as lms:
            with pytest.raises(AuthenticationError) as info:
                await lms.passthrough("GET", "/v2/courses")
        assert info.value.status == 401
        assert "wrong-key-456" not in str(info.value)

    @pytest.mark.parametrize(
        ("body", "finished", "failed"),
        [
            ({"_data": {"status": "processing"}}, False, False),
            ({"status": "something-new"}, False, False),
            ({"_data": {"state": {"name": "Completed"}}}, True, False),
            ({"data": "not what we know"}, False, False),
            ({"_data": {"status": "FAILED"}}, True, True),
            ([1, 2], False, False),
        ],
        ids=["processing", "unknown-word", "nested-state", "no-status", "failed", "not-an-object"],
    )
    def test_task_status_is_read_leniently(self, body: Any, finished: bool, failed: bool) -> None:
        """Unknown or missing statuses are 'still running', never finished or failed."""
        state = read_task(body, "7")
        assert (state.finished, state.failed) == (finished, failed)

    def test_task_item_errors_and_ids_are_found_under_several_names(self) -> None:
        body = {"_data": {"status": "completed_with_errors", "results": [
            {"code": "a", "status": "success"}, {"code": "b", "status": "failed", "message": "no"},
            {"id": 12, "error": "locked"}, "junk"]}}  # fmt: skip
        assert read_task(body, "1").item_errors == {"b": "no", "12": "locked"}
        answers: list[Any] = [{"_data": {"task_id": 5}}, {"taskId": "t-9"}, {"id": True}, []]
        assert [task_id_of(answer) for answer in answers] == ["5", "t-9", None, None]


class TestCapabilitiesCli:
    async def test_capabilities_json_of_a_connection_differs_by_mode(self) -> None:
        """`capabilities talentlms --config-json ... --json` prints the connection's own table."""
        tables = {}
        ways: tuple[tuple[str, dict[str, Any]], ...] = (("v2", {}), ("v1", {"api_v2": False}))
        for name, options in ways:
            async with TalentLMSSimulator(users=4, courses=1, enrollments=0, **options) as sim:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "lmsconnect", "capabilities", "talentlms",
                    "--config-json", json.dumps(sim.connect_config), "--json",
                    stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                out, _ = await asyncio.wait_for(proc.communicate(), 60)
                assert proc.returncode == 0
                tables[name] = json.loads(out)
                await asyncio.sleep(0.05)  # let the simulator see the CLI's connections close
        assert tables["v2"]["mode"] == "v2" and tables["v1"]["mode"] == "v1"
        assert tables["v2"]["actions"]["deactivate_course"]["flags"] == ["asynchronous"]
        assert tables["v1"]["actions"]["deactivate_course"]["flags"] == ["destructive"]
        assert "modes" not in tables["v2"]


class TestUntrustedV2Answers:
    async def test_a_task_answer_of_unknown_shape_is_confirmed_by_reading_back(
        self, lms: Connector[Any], sim: TalentLMSSimulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No status we know: polled until the timeout, then the read-back says `updated`."""
        monkeypatch.setattr(sim.v2, "_task", lambda task: {"_data": {"status": {"x": [1]}, "errors": "?"}})
        await created(lms, "odd")
        result = await lms.upsert_courses(upsert("odd", title="Odd title"))
        waited = (await lms.wait_until_visible(result, timeout_s=0.8)).item("odd")
        assert waited.status is ItemStatus.UPDATED
        assert sim.calls_by_route["GET /v2/tasks/id"] >= 2

    async def test_a_batch_answer_without_a_usable_task_id_fails_its_items(
        self, lms: Connector[Any], sim: TalentLMSSimulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A task id that would leave /v2/tasks/ is not one: the item fails, nothing else is called."""
        monkeypatch.setattr(sim.v2, "_batch", lambda body: {"_data": {"task_id": "../../v1/deletecourse"}})
        await created(lms, "path")
        item = (await lms.upsert_courses(upsert("path", title="Other"))).item("path")
        assert item.status is ItemStatus.FAILED
        assert item.error is not None and item.error.code == "REMOTE.INVALID_RESPONSE"
        assert sim.calls_by_route["GET /v2/tasks/id"] == 0
        assert sim.calls_by_route["POST /v1/deletecourse"] == 0


class TestSimulatorCli:
    async def test_option_api_v2_false_serves_a_tenant_without_v2(self) -> None:
        """`lmsconnect simulate talentlms --option api_v2=false`: v1 answers, every v2 path is a 404."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lmsconnect", "simulate", "talentlms", "--port", "0", "--users", "3",
            "--option", "api_v2=false", stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            config = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))["config"]
            async with lmsconnect.connect("talentlms", **config) as lms:
                caps = await lms.resolve_capabilities()
                users = [u async for u in lms.list("users")]
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
        assert caps.mode == "v1" and len(users) == 3
