"""TalentLMS answers that are broken or hostile: only LMSConnectError, no record dropped or mangled."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
from aiohttp import web
from lmsconnect_talentlms import MAX_DURATION_MINUTES
from lmsconnect_talentlms.testing import TalentLMSSimulator

import lmsconnect
from lmsconnect import (
    CheckStatus,
    ConfigurationError,
    InvalidInput,
    InvalidRemoteResponse,
    ItemStatus,
    ProgressionStatus,
)
from lmsconnect._models import ModelName
from lmsconnect.plugin import Connector
from lmsconnect.testing import AnswerTamper, json_rewrite

MODELS: tuple[ModelName, ...] = (
    "users", "courses", "course_revisions", "course_progressions", "course_items"
)


class TamperedTalentLMS(TalentLMSSimulator):
    """The simulator, with its answers passed through `tamper` (an `AnswerTamper`) on their way out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tamper = AnswerTamper()

    def make_app(self) -> web.Application:
        return self.tamper.install(super().make_app())


@pytest.fixture
async def sim() -> AsyncIterator[TamperedTalentLMS]:
    async with TamperedTalentLMS(users=30, courses=4, enrollments=60, seed=9) as simulator:
        yield simulator


@pytest.fixture
async def lms(sim: TamperedTalentLMS) -> AsyncIterator[Connector[Any]]:
    async with lmsconnect.connect("talentlms", **sim.connect_config) as connector:
        yield connector


def first_row(**values: Any) -> Callable[[Any], Any]:
    def change(body: Any) -> Any:
        body[0].update(values)
        return body

    return change


def first_enrolled(**values: Any) -> Callable[[Any], Any]:
    def change(body: Any) -> Any:
        if body.get("users"):
            body["users"][0].update(values)
        return body

    return change


def _fields(record: Any) -> str:
    """A record's unified fields (not the raw payload), comparable and sortable."""
    return repr(attrs.evolve(record, remote_data=None))


async def read(lms: Connector[Any], model: ModelName) -> list[Any]:
    with anyio.fail_after(20):
        return [r async for r in lms.list(model)]


class TestRecordsAreValidated:
    @pytest.mark.parametrize(
        ("model", "path", "change", "field"),
        [
            ("users", "/v1/users", first_row(id="abc"), "id"),
            ("users", "/v1/users", first_row(id=None), "id"),
            ("users", "/v1/users", first_row(first_name={"x": 1}), "first_name"),
            ("users", "/v1/users", first_row(created_on="45/13/2020, 99:00:00"), "created_on"),
            ("users", "/v1/users", lambda body: [[1, 2], *body[1:]], "UserRow"),
            ("users", "/v1/users", lambda body: {"users": body}, "expected a list"),
            ("courses", "/v1/courses", first_row(id=1.5), "id"),
            ("course_revisions", "/v1/courses", first_row(name=[1]), "name"),
            ("courses", "/v1/courses", first_row(code="c" * 1_000_000), "code"),
            ("course_progressions", "/v1/courses/id:", first_enrolled(id="7.0"), "id"),
            ("course_progressions", "/v1/courses/id:", first_enrolled(completed_on_timestamp=1e30),
             "completed_on_timestamp"),
            ("course_progressions", "/v1/courses/id:", first_enrolled(completion_percentage="lots"),
             "completion_percentage"),
            ("course_progressions", "/v1/courses/id:", lambda body: {**body, "users": "none"}, "users"),
            ("course_progressions", "/v1/courses/id:", lambda body: {**body, "users": None}, "users"),
            ("course_progressions", "/v1/courses/id:",
             lambda body: {k: v for k, v in body.items() if k != "users"}, "users"),
            ("course_progressions", "/v1/courses/id:", first_enrolled(completion_percentage=250),
             "completion_percentage"),
            ("course_progressions", "/v1/courses/id:", first_enrolled(total_time_seconds=-5),
             "total_time_seconds"),
            ("course_progressions", "/v1/courses/id:", first_enrolled(total_time="3 hours"), "total_time"),
            ("users", "/v1/users", first_row(custom_field_1=["a", "b"]), "custom_field_1"),
            ("users", "/v1/users", first_row(last_updated_timestamp="-1"), "last_updated_timestamp"),
            ("course_revisions", "/v1/courses", first_row(big_avatar="javascript:alert(1)"), "big_avatar"),
            ("course_revisions", "/v1/courses", first_row(time_limit="-3"), "time_limit"),
            ("course_items", "/v1/courses/id:",
             lambda body: {k: v for k, v in body.items() if k != "units"}, "units"),
            ("course_items", "/v1/courses/id:", lambda body: {**body, "units": None}, "units"),
            ("course_items", "/v1/courses/id:",
             lambda body: {**body, "units": [{**body["units"][0], "id": "u1"}]}, "id"),
        ],
        ids=[
            "user-id-word", "user-id-null", "name-object", "date-mangled", "row-a-list", "not-a-list",
            "course-id-fraction", "title-list", "code-a-megabyte", "progression-user-id-float",
            "timestamp-1e30",
            "percentage-word", "users-a-string", "users-null", "users-missing",
            "percentage-250", "time-negative", "total-time-word", "custom-field-list",
            "updated-negative", "thumbnail-javascript", "time-limit-negative",
            "units-missing", "units-null", "unit-id-word",
        ],
    )
    async def test_a_record_that_does_not_fit_fails_the_read_naming_the_field(
        self, sim: TamperedTalentLMS, lms: Connector[Any], model: ModelName, path: str,
        change: Callable[[Any], Any], field: str,
    ) -> None:
        """The read raises InvalidRemoteResponse naming endpoint and field; before, the record vanished."""
        sim.tamper.rewrite = json_rewrite(path, change)
        with pytest.raises(InvalidRemoteResponse) as caught:
            await read(lms, model)
        assert field in str(caught.value)
        assert "GET /v1/" in str(caught.value)

    async def test_an_odd_revision_only_field_fails_only_the_revisions(
        self, sim: TamperedTalentLMS, lms: Connector[Any]
    ) -> None:
        """A course image that is not a URL fails course_revisions; courses and progressions still read."""
        sim.tamper.rewrite = json_rewrite("/v1/courses", lambda body: [
            {**row, "big_avatar": "javascript:alert(1)"} for row in body
        ] if isinstance(body, list) else body)
        with pytest.raises(InvalidRemoteResponse, match="big_avatar"):
            await read(lms, "course_revisions")
        assert await read(lms, "courses")
        assert await read(lms, "course_progressions")

    async def test_every_documented_looseness_still_reads(self, sim: TamperedTalentLMS) -> None:
        """Int ids, "" for empty, null timestamps and "Never" read exactly like the simulator's strings."""

        def loosen(body: Any) -> Any:
            rows = body if isinstance(body, list) else body.get("users") if isinstance(body, dict) else None
            units = body.get("units") if isinstance(body, dict) else None
            for unit in units or ():
                unit["id"] = int(unit["id"])
                if unit.get("delay_time") == "":
                    unit["delay_time"] = None
            for row in rows or ():
                if isinstance(row, dict) and "id" in row:
                    row["id"] = int(row["id"])
                    if row.get("completed_on_timestamp") == "":
                        row["completed_on_timestamp"] = None
                    if row.get("expired_on") == "":
                        row["expired_on"], row["expired_on_timestamp"] = "Never", 0
                    if "total_time_seconds" in row:
                        row["total_time_seconds"] = str(row["total_time_seconds"])
                    if row.get("custom_field_2") == "":
                        row["custom_field_2"] = None
            return body

        async with lmsconnect.connect("talentlms", **sim.connect_config) as lms:
            clean = {m: sorted(_fields(r) for r in await read(lms, m)) for m in MODELS}
            sim.tamper.rewrite = json_rewrite("", loosen)
            loose = {m: sorted(_fields(r) for r in await read(lms, m)) for m in MODELS}
        assert loose == clean and all(clean.values())

    async def test_mangled_numbers_fail_the_sync_instead_of_deleting_progressions(
        self, sim: TamperedTalentLMS, tmp_path: Path
    ) -> None:
        """A sync that meets mangled ids is not ok and records no deletion (it recorded 33 before)."""
        async with (
            lmsconnect.open_store(tmp_path / "s.sqlite") as store,
            lmsconnect.connect("talentlms", **sim.connect_config) as lms,
        ):
            first = await lmsconnect.sync(lms, store)
            sim.tamper.rewrite = json_rewrite("/v1/courses/id:", lambda body: {
                **body, "users": [{**u, "id": f"{u['id']}.0"} for u in body["users"]]
            })
            second = await lmsconnect.sync(lms, store)
        assert first.ok and first.models["course_progressions"].created > 0
        assert not second.ok and "course_progressions" in second.failed
        assert second.totals["deleted"] == 0

    @pytest.mark.parametrize("mangle", [
        lambda u: {k: v for k, v in u.items() if k != "role"},
        lambda u: {**u, "role": 10**30},
    ], ids=["role-missing", "role-a-number"])
    async def test_a_trainer_with_a_mangled_role_is_neither_created_nor_deleted(
        self, sim: TamperedTalentLMS, tmp_path: Path, mangle: Callable[[Any], Any]
    ) -> None:
        """A trainer whose role is missing or a number fails the sync; no progression appears or vanishes."""

        def mangle_trainers(body: Any) -> Any:
            users = [mangle(u) if u.get("role") == "instructor" else u for u in body["users"]]
            return {**body, "users": users}

        async with (
            lmsconnect.open_store(tmp_path / "s.sqlite") as store,
            lmsconnect.connect("talentlms", **sim.connect_config) as lms,
        ):
            first = await lmsconnect.sync(lms, store)
            sim.tamper.rewrite = json_rewrite("/v1/courses/id:", mangle_trainers)
            second = await lmsconnect.sync(lms, store)
            sim.tamper.rewrite = None
            third = await lmsconnect.sync(lms, store)
        assert first.ok and third.ok
        assert not second.ok and "course_progressions" in second.failed
        for report in (second, third):
            assert report.totals["created"] == report.totals["deleted"] == 0

    async def test_a_percentage_at_the_bounds_is_read(
        self, sim: TamperedTalentLMS, lms: Connector[Any]
    ) -> None:
        """100 % is a percentage: the detail reads."""
        sim.tamper.rewrite = json_rewrite(
            "/v1/courses/id:", first_enrolled(completion_percentage=100, completed_on="")
        )
        statuses = {p.status for p in await read(lms, "course_progressions")}
        assert statuses <= set(ProgressionStatus)


class TestPaging:
    async def test_a_server_repeating_the_same_page_stops_with_invalid_remote_response(
        self, sim: TamperedTalentLMS
    ) -> None:
        """page_number ignored by the server: InvalidRemoteResponse after two pages, not an endless loop."""
        first: list[Any] = []

        def same_page(body: Any) -> Any:
            first[:] = first or body
            return first

        sim.tamper.rewrite = json_rewrite("/v1/users", same_page)
        async with lmsconnect.connect("talentlms", **sim.connect_config, page_size=5) as lms:
            with pytest.raises(InvalidRemoteResponse, match="do not advance"):
                await read(lms, "users")
        assert sim.calls_by_route["GET /v1/users"] == 2

    async def test_duplicate_courses_are_listed_once(
        self, sim: TamperedTalentLMS, lms: Connector[Any]
    ) -> None:
        """A course listed twice in one answer is one course."""
        sim.tamper.rewrite = json_rewrite(
            "/v1/courses", lambda body: body + body if isinstance(body, list) else body
        )
        ids = [c.id for c in await read(lms, "courses")]
        assert len(ids) == len(set(ids)) == 4


class TestConfigAndInput:
    def test_a_key_with_a_colon_is_a_configuration_error(self) -> None:
        """Basic auth cannot carry a key with ':'; refused at connect, and the key is not quoted."""
        with pytest.raises(ConfigurationError, match="':'") as caught:
            lmsconnect.connect("talentlms", domain="acme.talentlms.com", api_key="abc:def-secret")
        assert "def-secret" not in str(caught.value)

    async def test_an_absurd_duration_is_refused_before_any_call(
        self, sim: TamperedTalentLMS, lms: Connector[Any]
    ) -> None:
        """10^30 minutes is InvalidInput naming the item's field; TalentLMS sees no call."""
        calls = sim.calls
        with pytest.raises(InvalidInput, match=r"items\[1\]\.course\.duration"):
            await lms.upsert_courses(
                {
                    "items": [
                        {"origin_id": "ok", "course": {"title": "A", "duration": 60}},
                        {"origin_id": "huge", "course": {"title": "B", "duration": 10**30}},
                    ]
                }
            )
        assert sim.calls == calls
        assert not sim.courses_with_code("ok")

    async def test_the_longest_duration_is_accepted(
        self, sim: TamperedTalentLMS, lms: Connector[Any]
    ) -> None:
        """Exactly the documented maximum (3,650 days) creates the course."""
        assert MAX_DURATION_MINUTES == 3650 * 24 * 60
        result = await lms.upsert_courses(
            {"items": [{"origin_id": "max", "course": {"title": "A", "duration": MAX_DURATION_MINUTES}}]}
        )
        assert result.items[0].status is ItemStatus.CREATED
        assert sim.courses_with_code("max")[0].time_limit == 3650


class TestActionsAndCheck:
    async def test_a_create_answer_that_is_not_a_course_fails_the_item_honestly(
        self, sim: TamperedTalentLMS, lms: Connector[Any]
    ) -> None:
        """createcourse answering garbage: a failed item saying the outcome is unknown, not an exception."""
        sim.tamper.rewrite = json_rewrite("/v1/createcourse", lambda body: {"id": ["x"]})
        result = await lms.upsert_courses({"items": [{"origin_id": "g", "course": {"title": "A"}}]})
        item = result.items[0]
        assert item.status is ItemStatus.FAILED and item.error is not None
        assert item.error.code == InvalidRemoteResponse.code and "unknown" in item.error.message

    async def test_an_unreadable_enroll_answer_asks_talentlms_for_the_role(
        self, sim: TamperedTalentLMS, lms: Connector[Any]
    ) -> None:
        """addusertocourse answering garbage: the role is read back and the enrollment reported."""
        learner = sim.users_of_type("Learner-Type")[0]
        course = sim.courses[0]
        sim.unenroll(learner.id, course.id)
        sim.tamper.rewrite = json_rewrite("/v1/addusertocourse", lambda body: [[1]])
        result = await lms.enroll_user(
            user_id=lms.make_id("users", str(learner.id)),
            course_revision_id=lms.make_id("course_revisions", str(course.id)),
        )
        assert result.items[0].status is ItemStatus.CREATED

    async def test_hostile_ratelimit_answer_leaves_the_default_budget(self, sim: TamperedTalentLMS) -> None:
        """/v1/ratelimit with an absurd reset or garbage is ignored; reads go on."""
        answers: list[Any] = [
            {"limit": "2000", "remaining": "5", "reset": 10**400},
            {"limit": "2000", "remaining": -1, "reset": "1795773445"},
            {"limit": ["x"]},
            "nope",
        ]
        for answer in answers:
            sim.tamper.rewrite = json_rewrite(
                "/v1/ratelimit", functools.partial(lambda given, body: given, answer)
            )
            async with lmsconnect.connect("talentlms", **sim.connect_config) as lms:
                assert len(await read(lms, "users")) == 30

    async def test_check_reports_hostile_answers_per_item_and_never_raises(
        self, sim: TamperedTalentLMS, lms: Connector[Any]
    ) -> None:
        """Garbage from every endpoint: check() returns a report with errors, it does not raise."""
        garbage = json_rewrite("/v1/", lambda body: {"id": [None]})
        sim.tamper.rewrite = lambda path, response: (
            response if "ratelimit" in path else garbage(path, response)
        )
        report = await lms.check()
        by_name = {item.name: item for item in report.items}
        assert by_name["users"].status is CheckStatus.ERROR
        assert by_name["course_progressions"].status is CheckStatus.ERROR
        sim.tamper.rewrite = json_rewrite("", lambda body: "<html>")
        report = await lms.check()
        assert {item.status for item in report.items} <= set(CheckStatus)
