"""360Learning answers that are broken or hostile: only LMSConnectError, and the token stays on its origin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from lmsconnect_360learning.testing import Learning360Simulator

import lmsconnect
from lmsconnect import CheckStatus, InvalidInput, InvalidRemoteResponse, ItemStatus, UserRole
from lmsconnect._models import ModelName
from lmsconnect.plugin import Connector
from lmsconnect.testing import AnswerTamper, Rewrite, WitnessServer, json_rewrite

SMALL: dict[str, Any] = {"users": 30, "courses": 8, "enrollments": 60, "seed": 3, "processing_delay": 0.05}
FAST: dict[str, Any] = {"poll_interval_s": 0.02}
MODELS: tuple[ModelName, ...] = (
    "users", "course_providers", "courses", "course_revisions", "course_progressions"
)


class TamperedLearning360(Learning360Simulator):
    """The simulator, with its answers passed through `tamper` (an `AnswerTamper`) on their way out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tamper = AnswerTamper()

    def make_app(self) -> web.Application:
        return self.tamper.install(super().make_app())


def link_of(path_part: str, target: Callable[[str], str]) -> Rewrite:
    """A tamper replacing the next-page Link of answers to paths containing `path_part`."""

    def tamper(path: str, response: web.Response) -> web.Response:
        if path_part in path and response.status == 200:
            response.headers["Link"] = f'<{target(path)}>; rel="next"'
        return response

    return tamper


def first(**values: Any) -> Callable[[Any], Any]:
    def change(body: Any) -> Any:
        body[0].update(values)
        return body

    return change


@pytest.fixture
async def sim() -> AsyncIterator[TamperedLearning360]:
    async with TamperedLearning360(**SMALL) as running:
        yield running


@pytest.fixture
async def lms(sim: TamperedLearning360) -> AsyncIterator[Connector[Any]]:
    async with lmsconnect.connect("360learning", **sim.connect_config, **FAST) as connector:
        yield connector


@pytest.fixture
async def recorder() -> AsyncIterator[WitnessServer]:
    async with WitnessServer() as running:
        yield running


async def read(lms: Connector[Any], model: ModelName) -> list[Any]:
    with anyio.fail_after(20):
        return [r async for r in lms.list(model)]


class TestLinksStayOnTheOrigin:
    @pytest.mark.parametrize(
        "shape",
        ["absolute", "scheme-relative", "localhost-name"],
    )
    async def test_a_next_link_to_another_origin_is_refused_and_never_followed(
        self, sim: TamperedLearning360, lms: Connector[Any], recorder: WitnessServer, shape: str
    ) -> None:
        """Link to another port/host: InvalidRemoteResponse, and the other server receives no request."""
        port = recorder.url.rsplit(":", 1)[1]
        other = {
            "absolute": f"{recorder.url}/api/v2/users?next=abc",
            "scheme-relative": f"//127.0.0.1:{port}/api/v2/users?next=abc",
            "localhost-name": f"http://localhost:{port}/api/v2/users?next=abc",
        }[shape]
        sim.tamper.rewrite = link_of("/api/v2/users", lambda path: other)
        with pytest.raises(InvalidRemoteResponse, match="origin"):
            await read(lms, "users")
        assert recorder.seen == []

    @pytest.mark.parametrize("model", MODELS)
    async def test_no_model_read_sends_the_token_elsewhere(
        self, sim: TamperedLearning360, lms: Connector[Any], recorder: WitnessServer, model: ModelName
    ) -> None:
        """Every list endpoint pointing its Link elsewhere: each read fails, the recorder sees nothing."""
        sim.tamper.rewrite = link_of("/api/v2/", lambda path: f"{recorder.url}{path}?next=x")
        with pytest.raises(InvalidRemoteResponse):
            await read(lms, model)
        assert recorder.seen == []

    async def test_a_link_back_to_a_page_already_read_stops(
        self, sim: TamperedLearning360, lms: Connector[Any]
    ) -> None:
        """A cursor back to the same page: InvalidRemoteResponse after two requests, not an endless loop."""
        sim.tamper.rewrite = link_of("/api/v2/users", lambda path: f"{sim.url}/api/v2/users")
        with pytest.raises(InvalidRemoteResponse, match=r"does not advance|loops"):
            await read(lms, "users")
        assert sim.calls_by_route["GET /api/v2/users"] == 2

    async def test_the_same_page_under_a_new_cursor_stops(self) -> None:
        """Fresh, valid cursors that bring the same records again: stopped at the repeat, not read twice."""
        first_body: list[bytes] = []

        def same_page(path: str, response: web.Response) -> web.Response:
            if path != "/api/v2/users" or not isinstance(response.body, bytes):
                return response
            first_body[:] = first_body or [response.body]
            response.body = first_body[0]
            return response

        async with (
            TamperedLearning360(**{**SMALL, "users": 1200}) as sim,
            lmsconnect.connect("360learning", **sim.connect_config, **FAST) as lms,
        ):
            sim.tamper.rewrite = same_page
            with pytest.raises(InvalidRemoteResponse, match="does not advance"):
                await read(lms, "users")
            assert sim.calls_by_route["GET /api/v2/users"] <= 3

    @pytest.mark.parametrize("link", ["http://[::1", "http://127.0.0.1:99999/x"], ids=["bracket", "port"])
    async def test_an_unreadable_link_is_invalid_remote_response(
        self, sim: TamperedLearning360, lms: Connector[Any], link: str
    ) -> None:
        """A Link that is not a URL is InvalidRemoteResponse, not ValueError."""
        sim.tamper.rewrite = link_of("/api/v2/users", lambda path: link)
        with pytest.raises(InvalidRemoteResponse):
            await read(lms, "users")

    async def test_a_relative_link_on_the_same_origin_is_followed(self) -> None:
        """Relative links (same origin) still read every page."""
        async with (
            TamperedLearning360(**{**SMALL, "users": 1200}, link_style="relative") as sim,
            lmsconnect.connect("360learning", **sim.connect_config, **FAST) as lms,
        ):
            assert len(await read(lms, "users")) == 1200


class TestRecordsAreValidated:
    @pytest.mark.parametrize(
        ("model", "path", "change", "field"),
        [
            ("users", "/api/v2/users", first(_id=""), "id"),
            ("users", "/api/v2/users", first(_id=12), "id"),
            ("users", "/api/v2/users", first(_id="a\nb"), "id"),
            ("users", "/api/v2/users", first(deletedAt=[1]), "deleted_at"),
            ("courses", "/api/v2/courses", first(createdAt="yesterday"), "created_at"),
            ("courses", "/api/v2/courses", first(createdAt="0001-01-01T00:00:00+05:00"), "created_at"),
            ("course_revisions", "/api/v2/courses", first(name={"en": "x"}), "name"),
            ("course_progressions", "/api/v2/courses/stats", first(progress="50"), "progress"),
            ("course_progressions", "/api/v2/courses/stats", first(userId=None), "user_id"),
            ("course_progressions", "/api/v2/courses/stats", first(progress=250), "progress"),
            ("course_progressions", "/api/v2/courses/stats", first(score=-1), "score"),
            ("course_progressions", "/api/v2/courses/stats", first(score=True), "score"),
            ("course_progressions", "/api/v2/courses/stats", first(timeSpent=-5), "time_spent"),
            ("course_progressions", "/api/v2/courses/stats", first(timeSpent=1e300), "time_spent"),
            ("course_revisions", "/api/v2/courses", first(duration=-3), "duration"),
            ("course_revisions", "/api/v2/courses", first(duration="45"), "duration"),
            ("course_revisions", "/api/v2/courses", first(translations=[{"published": True}]),
             "translations"),
            ("users", "/api/v2/users", first(lang=["en"]), "lang"),
            ("course_providers", "/api/v2/integrations", first(externalPlatform=None), "external_platform"),
            ("course_providers", "/api/v2/courses", first(externalPlatform=7), "external_platform"),
            ("course_providers", "/api/v2/integrations", first(externalPlatform="p" * 1_000_000),
             "external_platform"),
            ("users", "/api/v2/users", lambda body: [body[0], "x"], "listed a str"),
            ("users", "/api/v2/users", lambda body: {"users": body}, "not a list"),
        ],
        ids=[
            "id-empty", "id-int", "id-newline", "deleted-at-numbers", "date-word", "date-overflow",
            "name-object", "progress-string", "user-id-null", "progress-250", "score-negative",
            "score-bool", "time-negative", "time-absurd", "duration-negative", "duration-string",
            "translation-without-lang", "lang-list", "platform-null", "course-platform-int",
            "platform-a-megabyte",
            "entry-a-string",
            "not-a-list",
        ],
    )
    async def test_a_record_that_does_not_fit_fails_the_read_naming_the_field(
        self, sim: TamperedLearning360, lms: Connector[Any], model: ModelName, path: str,
        change: Callable[[Any], Any], field: str,
    ) -> None:
        """InvalidRemoteResponse naming the endpoint and the field; nothing else escapes."""
        sim.tamper.rewrite = json_rewrite(path, change)
        with pytest.raises(InvalidRemoteResponse) as caught:
            await read(lms, model)
        assert field in str(caught.value) and "GET /api/v2/" in str(caught.value)

    @pytest.mark.parametrize("key", ["externalPlatform", "type"])
    async def test_an_external_course_missing_its_platform_deletes_no_provider(
        self, sim: TamperedLearning360, tmp_path: Path, key: str
    ) -> None:
        """An external course without `externalPlatform` (or `type`) fails the sync: no provider deleted."""

        def drop(body: Any) -> Any:
            return [
                {k: v for k, v in c.items() if k != key} if c.get("type") == "external" else c
                for c in body
            ]

        async with (
            lmsconnect.open_store(tmp_path / "s.sqlite") as store,
            lmsconnect.connect("360learning", **sim.connect_config, **FAST) as lms,
        ):
            first = await lmsconnect.sync(lms, store)
            sim.tamper.rewrite = json_rewrite("/api/v2/courses", drop)
            second = await lmsconnect.sync(lms, store)
        assert first.ok and first.models["course_providers"].created > 0
        assert not second.ok and "course_providers" in second.failed
        assert second.totals["deleted"] == 0

    async def test_a_native_course_without_a_platform_still_reads(
        self, sim: TamperedLearning360, lms: Connector[Any]
    ) -> None:
        """`externalPlatform` is absent from native courses by design: they read, with no provider."""
        courses = await read(lms, "courses")
        native = [c for c in courses if c.remote_data["/api/v2/courses"]["type"] != "external"]
        assert native and all(c.provider_id is None for c in native)


def every(**values: Any) -> Callable[[Any], Any]:
    """A change setting `values` in every entry of a listed answer."""
    return lambda body: [{**entry, **values} for entry in body]


ROLES = "/api/v2/groups/{id}/roles"
VALUES = "/api/v2/users/{id}/custom-fields/values"


class TestOptionAnswers:
    """The answers the read options fetch are validated like every other."""

    @pytest.mark.parametrize(
        ("option", "path", "change", "model", "where", "field"),
        [
            ("read_roles", "/roles", every(role="r" * 65), "users", ROLES, "role"),
            ("read_roles", "/roles", every(role=7), "users", ROLES, "role"),
            ("read_roles", "/roles", every(role=None), "users", ROLES, "role"),
            ("read_custom_fields", "/custom-fields/values", lambda body: {"values": body}, "users", VALUES,
             "not a list"),
            ("read_custom_fields", "/custom-fields/values",
             lambda body: [{"customFieldId": "x y", "value": "a"}], "users", VALUES, "custom_field_id"),
            ("read_custom_fields", "/custom-fields/values",
             lambda body: [{"customFieldId": "f1", "value": 5}], "users", VALUES, "value"),
            ("read_path_due_dates", "/api/v2/paths/stats", first(dueDate="soon"), "course_progressions",
             "GET /api/v2/paths/stats", "due_date"),
            ("read_path_due_dates", "/api/v2/paths/stats", first(sessionId=None), "course_progressions",
             "GET /api/v2/paths/stats", "session_id"),
        ],
        ids=["role-long", "role-int", "role-null", "values-not-a-list", "value-id-with-blank",
             "value-number", "due-date-word", "session-null"],
    )
    async def test_an_answer_that_does_not_fit_fails_the_read(
        self, sim: TamperedLearning360, option: str, path: str, change: Callable[[Any], Any],
        model: ModelName, where: str, field: str,
    ) -> None:
        """InvalidRemoteResponse naming the endpoint and the field; nothing else escapes."""
        sim.tamper.rewrite = json_rewrite(path, change)
        async with lmsconnect.connect("360learning", **sim.connect_config, **FAST, **{option: True}) as lms:
            with pytest.raises(InvalidRemoteResponse) as caught:
                await read(lms, model)
        assert field in str(caught.value) and where in str(caught.value)

    async def test_a_role_360learning_adds_later_is_unknown_with_its_name_kept(
        self, sim: TamperedLearning360
    ) -> None:
        """An unlisted role name reads as UserRole.UNKNOWN, the name in remote_role."""
        sim.tamper.rewrite = json_rewrite("/roles", every(role="superLearner"))
        async with lmsconnect.connect("360learning", **sim.connect_config, **FAST, read_roles=True) as lms:
            users = await read(lms, "users")
        grouped = [u for u in users if u.remote_role is not None]
        assert grouped
        assert all(u.role is UserRole.UNKNOWN and u.remote_role == "superLearner" for u in grouped)

    async def test_a_user_gone_before_its_values_are_read_has_none(self, sim: TamperedLearning360) -> None:
        """A 404 on one user's values (deleted meanwhile) leaves its custom_fields None; the read goes on."""
        gone = next(iter(sim.company.user_custom_values))

        def vanish(path: str, response: web.Response) -> web.Response:
            if path.endswith(f"/users/{gone}/custom-fields/values"):
                return web.json_response({"error": {"code": "userNotFound", "message": "gone"}}, status=404)
            return response

        sim.tamper.rewrite = vanish
        async with lmsconnect.connect(
            "360learning", **sim.connect_config, **FAST, read_custom_fields=True
        ) as lms:
            users = {u.remote_id: u for u in await read(lms, "users")}
        assert users[gone].custom_fields is None
        assert len(users) == len(sim.company.users)
        assert any(u.custom_fields for u in users.values())



class TestTokenAnswers:
    @pytest.mark.parametrize(
        "answer",
        [
            {"access_token": "tok\r\nX-Evil: 1", "expires_in": 3600},
            {"access_token": ["x"], "expires_in": 3600},
            {"access_token": "", "expires_in": 3600},
            {"access_token": "ok-token", "expires_in": "soon"},
            {"access_token": "ok-token", "expires_in": float("nan")},
            {"access_token": "ok-token", "expires_in": -5},
            {"access_token": "ok-token", "expires_in": 1e400},
            ["not", "an", "object"],
        ],
        ids=["header-injection", "list", "empty", "word", "nan", "negative", "infinite", "list-body"],
    )
    async def test_a_token_answer_that_does_not_fit_is_invalid_remote_response(
        self, sim: TamperedLearning360, answer: Any
    ) -> None:
        """A bad token answer is InvalidRemoteResponse (not ValueError from aiohttp, not a NaN lifetime)."""
        sim.tamper.rewrite = json_rewrite("/oauth2/token", lambda body: answer)
        async with lmsconnect.connect("360learning", **sim.connect_config, **FAST) as lms:
            with pytest.raises(InvalidRemoteResponse, match="oauth2/token") as caught:
                await read(lms, "users")
        assert "tok\r\n" not in str(caught.value)

    async def test_expires_in_as_a_numeric_string_is_accepted(self) -> None:
        """The reference's example sends expires_in as a string: still read."""
        async with (
            Learning360Simulator(**SMALL, expires_in_as_string=True) as sim,
            lmsconnect.connect("360learning", **sim.connect_config, **FAST) as lms,
        ):
            assert len(await read(lms, "users")) == 30


class TestActionsAndCheck:
    async def test_an_absurd_duration_is_refused_before_any_call(
        self, sim: TamperedLearning360, lms: Connector[Any]
    ) -> None:
        """10^30 minutes is InvalidInput naming the field; 360Learning sees no call."""
        calls = sim.calls
        course = {"title": "T", "course_url": "https://x.example/c", "duration": 10**30}
        with pytest.raises(InvalidInput, match=r"items\[0\]\.course\.duration"):
            await lms.upsert_courses({"items": [{"origin_id": "huge", "course": course}]})
        assert sim.calls == calls

    @pytest.mark.parametrize(
        "location", ["http://[::1", "", "/api/v2/bulk/operations/a b"], ids=["bracket", "empty", "blank-id"]
    )
    async def test_an_unreadable_bulk_location_is_invalid_remote_response(
        self, sim: TamperedLearning360, lms: Connector[Any], location: str
    ) -> None:
        """A 202 whose Location cannot give an operation id: InvalidRemoteResponse, not ValueError."""

        def tamper(path: str, response: web.Response) -> web.Response:
            if "/bulk/integrations/" in path and response.status == 202:
                response.headers["Location"] = location
            return response

        sim.tamper.rewrite = tamper
        course = {"title": "T", "course_url": "https://x.example/c"}
        with pytest.raises(InvalidRemoteResponse, match="Location"):
            await lms.upsert_courses({"items": [{"origin_id": "loc", "course": course}]})

    async def test_bulk_results_that_do_not_fit_are_invalid_remote_response(
        self, sim: TamperedLearning360, lms: Connector[Any]
    ) -> None:
        """A results entry with an object as resourceId fails the call; before, its text became an id."""
        sim.tamper.rewrite = json_rewrite(
            "/results", lambda body: [{**e, "resourceId": {"x": 1}} for e in body]
        )
        course = {"title": "T", "course_url": "https://x.example/c"}
        with pytest.raises(InvalidRemoteResponse, match="resource_id"):
            await lms.upsert_courses({"items": [{"origin_id": "res", "course": course}]})

    async def test_upsert_still_works_untampered(self, lms: Connector[Any]) -> None:
        """The validated upsert path creates a course."""
        course = {"title": "T", "course_url": "https://x.example/c", "duration": 100_000}
        result = await lms.upsert_courses({"items": [{"origin_id": "fine", "course": course}]})
        assert result.items[0].status is ItemStatus.CREATED and result.items[0].remote_id

    async def test_check_reports_hostile_answers_per_item_and_never_raises(
        self, sim: TamperedLearning360, lms: Connector[Any]
    ) -> None:
        """Garbage from the stats endpoint: that probe's items report ERROR, the rest stay OK."""
        sim.tamper.rewrite = lambda path, response: (
            web.Response(status=502, text="<html>bad gateway</html>") if path.endswith("/courses/stats")
            else response
        )
        report = await lms.check()
        by_name = {(item.kind, item.name): item for item in report.items}
        assert by_name[("model", "course_progressions")].status is CheckStatus.ERROR
        assert by_name[("model", "users")].status is CheckStatus.OK
        assert by_name[("action", "enroll_user")].status is CheckStatus.ERROR

    async def test_check_with_a_broken_token_endpoint_reports_and_does_not_raise(
        self, sim: TamperedLearning360, lms: Connector[Any]
    ) -> None:
        """A token answer that does not fit: every item reports the error; check() returns."""
        sim.tamper.rewrite = json_rewrite("/oauth2/token", lambda body: {"access_token": 5})
        report = await lms.check()
        assert {item.status for item in report.items} == {CheckStatus.ERROR}
