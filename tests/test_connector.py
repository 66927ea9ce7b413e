"""The connector base class: lifecycle, list(), actions' gatekeeping, passthrough, check(), ids, secrets.

Uses the toy connector (docs/examples/toylms) and small in-test connectors against loopback servers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote, quote_plus

import attrs
import pytest
from aiohttp import web

import lmsconnect
from lmsconnect import (
    ActionResult,
    AuthenticationError,
    CheckStatus,
    ConfigurationError,
    DeactivateCourse,
    DestructiveActionRefused,
    InvalidInput,
    ItemResult,
    ItemStatus,
    LMSConnectError,
    NotSupported,
    RemoteError,
    User,
)
from lmsconnect.plugin import (
    Capabilities,
    CheckItem,
    Connector,
    ConnectorSpec,
    HttpClient,
    HttpOptions,
    Secret,
    action_support,
    config_field,
    make_id,
    model_support,
)
from lmsconnect.testing import simulator

# Characters that percent-encode differently under quote and quote_plus, so every form is checked.
SECRET = "wsT0ken/with+plus=and&amp space"
SECRET_FORMS = (SECRET, quote(SECRET, safe=""), quote_plus(SECRET, safe=""))


@attrs.frozen(kw_only=True)
class QueryConfig:
    base_url: str = config_field(help="Loopback server")
    wstoken: Secret = config_field(help="Web-service token", secret=True)


class QueryTokenConnector(Connector[QueryConfig]):
    """Like Moodle: the token travels in the query string, so it is in every URL."""

    spec = ConnectorSpec(slug="querytoken", name="Query Token LMS", config=QueryConfig)
    capabilities = Capabilities.build(
        slug="querytoken",
        name="Query Token LMS",
        models={"users": model_support("first_name")},
        actions={"deactivate_course": action_support("course_id", flags={"destructive"},
                                                     note="Deletes the course and its grades.")},
        features={"passthrough": ""},
    )

    def create_http(self) -> HttpClient:
        token = self.config.wstoken.reveal()
        return HttpClient(slug=self.slug, base_url=self.config.base_url, secrets=[token],
                          options=self.http_options)

    async def read_users(self) -> AsyncIterator[User]:
        body = await self.http.get_json("/webservice", params={"wstoken": self.config.wstoken.reveal(),
                                                                "wsfunction": "users"})
        for raw in body:
            yield User(id=self.make_id("users", raw["id"]), remote_id=str(raw["id"]), first_name=raw["name"])

    async def handle_deactivate_course(self, action: DeactivateCourse) -> ActionResult:
        course = self.remote_id("courses", action.course_id, field="course_id")
        await self.http.request("POST", "/webservice",
                                data={"wstoken": self.config.wstoken.reveal(), "course": course})
        return ActionResult(action="deactivate_course", items=(
            ItemResult(key=action.course_id, status=ItemStatus.UPDATED, id=self.make_id("courses", course),
                       remote_id=course),))


@attrs.define
class Vendor:
    url: str
    hits: list[str]
    mode: list[str]  # what /webservice does next: ok, echo-404, echo-500, drop, 401, html, slow, deep, huge


@pytest.fixture
async def vendor() -> AsyncIterator[Vendor]:
    """A loopback vendor that can echo the full request URL (with the token) back in its errors."""
    state = Vendor(url="", hits=[], mode=["ok"])

    async def webservice(request: web.Request) -> web.StreamResponse:
        state.hits.append(request.method)
        mode = state.mode[0]
        if mode == "drop":
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        if mode == "slow":
            await asyncio.sleep(1.0)
        if mode == "html":
            return web.Response(text=f"<p>{request.raw_path}</p>")
        if mode == "deep":
            return web.Response(body=b"[" * 100_000 + b"]" * 100_000, content_type="application/json")
        if mode == "huge":
            return web.Response(body=b"[" + b"1," * 100_000 + b"1]", content_type="application/json")
        if mode == "401":
            return web.json_response({"error": f"invalid token {request.query.get('wstoken')}"}, status=401)
        if mode.startswith("echo-"):
            body = await request.text()
            return web.Response(status=int(mode[5:]), text=f"cannot serve {request.url} body={body}")
        return web.json_response([{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}])

    app = web.Application()
    app.router.add_route("*", "/webservice", webservice)
    runner = web.AppRunner(app, shutdown_timeout=0.2)  # do not wait out a "slow" handler
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    state.url = f"http://{host}:{port}"
    lmsconnect.register_connector(QueryTokenConnector, replace=True)
    yield state
    lmsconnect._registry.registry.unregister("querytoken")
    await runner.cleanup()


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        # The token's distinctive start must be gone, whatever encoding the rest of it got.
        assert "wsT0ken" not in text, f"secret leaked in: {text[:200]}"
        for form in SECRET_FORMS:
            assert form not in text, f"secret leaked in: {text[:200]}"


class TestSecretsNeverShow:
    async def test_not_in_logs_reprs_or_errors(
        self, vendor: Vendor, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A secret given to connect() is absent from every log record, repr and error, in every form."""
        caplog.set_level(logging.DEBUG, logger="lmsconnect")
        lms = lmsconnect.connect("querytoken", base_url=vendor.url, wstoken=SECRET,
                                 http=HttpOptions(max_attempts=2, backoff_base_s=0.01))
        shown = [repr(lms), repr(lms.config), str(lms.config), repr(lms.config.wstoken)]
        errors: list[LMSConnectError] = []
        async with lms:
            shown.append(repr(lms))
            assert [u.first_name async for u in lms.list(User)] == ["Ada", "Grace"]
            calls: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                ("echo-404", lambda: lms.list(User).__anext__()),
                ("echo-500", lambda: lms.list(User).__anext__()),
                ("401", lambda: lms.list(User).__anext__()),
                ("drop", lambda: lms.list(User).__anext__()),
                ("html", lambda: lms.list(User).__anext__()),
                ("echo-500", lambda: lms.deactivate_course(course_id="remote:7")),
                ("drop", lambda: lms.deactivate_course(course_id="remote:7")),
                ("echo-404", lambda: lms.passthrough("GET", f"/webservice?wstoken={quote(SECRET, safe='')}")),
                ("echo-500", lambda: lms.passthrough("POST", "/webservice", data={"wstoken": SECRET})),
            ]
            for mode, call in calls:
                vendor.mode[:] = [mode]
                with pytest.raises(LMSConnectError) as caught:
                    await call()
                errors.append(caught.value)
        assert {type(e) for e in errors} >= {
            RemoteError, AuthenticationError, lmsconnect.NotFound, lmsconnect.InvalidRemoteResponse}
        assert any("cannot serve" in (e.vendor_message or "") for e in errors), "vendor text kept"
        for error in errors:
            shown += [str(error), repr(error), *map(str, error.args), json.dumps(error.context()),
                      "".join(traceback.format_exception(error))]
        shown += [record.getMessage() for record in caplog.records]
        shown += [str(record.args) for record in caplog.records]
        assert caplog.records
        assert_no_secret(*shown)

    async def test_connect_errors_do_not_echo_it(self) -> None:
        """Configuration errors name the field but never show the secret."""
        with pytest.raises(ConfigurationError) as caught:
            lmsconnect.connect("toylms", base_url="http://127.0.0.1:9", token=SECRET, calls_per_second=SECRET)
        assert_no_secret(str(caught.value), repr(caught.value))

    def test_repr_shows_the_config_without_secrets(self) -> None:
        """repr(connector) shows its state and config, with secrets as ***."""
        lms = lmsconnect.connect("toylms", base_url="http://127.0.0.1:9", token=SECRET)
        assert repr(lms) == (
            "<ToyConnector closed base_url='http://127.0.0.1:9' token=*** calls_per_second=20>"
        )


@pytest.fixture
async def toy() -> AsyncIterator[tuple[Any, Connector[Any]]]:
    async with simulator("toylms") as sim:
        # The toy's default 20 calls/s would only slow these tests down.
        lms = lmsconnect.connect("toylms", **sim.connect_config, calls_per_second=1000)
        async with lms:
            yield sim, lms


class TestLifecycle:
    async def test_async_with_opens_and_closes_the_session(self) -> None:
        """The connector owns one HTTP session from __aenter__ to __aexit__."""
        async with simulator("toylms") as sim:
            lms = lmsconnect.connect("toylms", **sim.connect_config)
            async with lms:
                assert "open" in repr(lms)
                session = lms.http.session
                await lms.list(User).__anext__()
                assert lms.http.session is session
            assert session.closed
            assert "closed" in repr(lms)

    async def test_use_before_open_says_how_to_open(self) -> None:
        """Using a connector that is not open is a ConfigurationError showing `async with`."""
        lms = lmsconnect.connect("toylms", base_url="http://127.0.0.1:9", token="toy-token")
        with pytest.raises(ConfigurationError, match=r"async with lmsconnect\.connect"):
            lms.list(User)
        with pytest.raises(ConfigurationError, match="not open"):
            await lms.enroll_user(user_id="remote:1", course_revision_id="remote:1")
        with pytest.raises(ConfigurationError):
            _ = lms.stats

    async def test_open_failure_closes_the_session(self) -> None:
        """If on_open fails, the session is closed and the error propagates."""

        class Failing(QueryTokenConnector):
            async def on_open(self) -> None:
                self.opened_session = self.http.session
                raise AuthenticationError("token refused at open")

        lms = Failing(QueryConfig(base_url="http://127.0.0.1:9", wstoken=Secret("x" * 8)))
        with pytest.raises(AuthenticationError):
            await lms.open()
        assert lms.opened_session.closed
        assert "closed" in repr(lms)

    async def test_cancelling_a_read_leaves_the_connector_usable(self, vendor: Vendor) -> None:
        """A read cancelled mid-request raises CancelledError, and the connection keeps working."""
        async with lmsconnect.connect("querytoken", base_url=vendor.url, wstoken=SECRET) as lms:
            vendor.mode[:] = ["slow"]

            async def first_user() -> User:
                return await lms.list(User).__anext__()

            reading = asyncio.create_task(first_user())
            while not vendor.hits:  # noqa: ASYNC110 - waiting for the request to reach the vendor
                await asyncio.sleep(0.01)
            reading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reading
            vendor.mode[:] = ["ok"]
            assert [u.first_name async for u in lms.list(User)] == ["Ada", "Grace"]
            session = lms.http.session
        assert session.closed

    async def test_stats_count_the_calls(self, toy: tuple[Any, Connector[Any]]) -> None:
        """lms.stats.calls equals the requests the vendor received."""
        sim, lms = toy
        [u async for u in lms.list(User)]
        [c async for c in lms.list(lmsconnect.Course)]
        assert lms.stats.calls == sim.calls > 0


class TestList:
    @pytest.mark.parametrize("model", [User, "users"], ids=["class", "key"])
    async def test_model_by_class_or_key(self, toy: tuple[Any, Connector[Any]], model: Any) -> None:
        """list() takes the model class or its table key and streams typed records."""
        sim, lms = toy
        users = [u async for u in lms.list(model)]
        assert len(users) == len(sim.users)
        assert all(isinstance(u, User) for u in users)
        assert users[0].id == make_id("toylms", "users", users[0].remote_id)

    async def test_unknown_model_is_invalid_input(self, toy: tuple[Any, Connector[Any]]) -> None:
        """An unknown model names the valid ones."""
        _, lms = toy
        with pytest.raises(InvalidInput, match="expected one of users, course_providers"):
            lms.list("learners")  # type: ignore[call-overload]

    async def test_stream_is_lazy(self) -> None:
        """Stopping after the first record fetches no further page."""
        async with simulator("toylms", users=120) as sim:
            lms = lmsconnect.connect("toylms", **sim.connect_config)
            async with lms:
                stream = lms.list(User)
                await stream.__anext__()
                await stream.aclose()  # type: ignore[attr-defined]
            assert sim.calls == 1

    async def test_reader_returning_wrong_type_is_caught(self, vendor: Vendor) -> None:
        """A plugin yielding the wrong record type fails loudly instead of handing it to the caller."""

        class Wrong(QueryTokenConnector):
            async def read_users(self) -> AsyncIterator[Any]:
                yield lmsconnect.Course(id="crs_x", remote_id="1")

        async with Wrong(QueryConfig(base_url=vendor.url, wstoken=Secret(SECRET))) as lms:
            with pytest.raises(TypeError, match="yielded Course, expected User"):
                [u async for u in lms.list(User)]


class TestActions:
    async def test_destructive_action_refused_when_forbidden(self, vendor: Vendor) -> None:
        """With allow_destructive=False a destructive action raises before any call, quoting the note."""
        lms = lmsconnect.connect("querytoken", allow_destructive=False, base_url=vendor.url, wstoken=SECRET)
        async with lms:
            with pytest.raises(DestructiveActionRefused) as caught:
                await lms.deactivate_course(course_id="remote:7")
        assert "Deletes the course and its grades." in str(caught.value)
        assert "allow_destructive=True" in str(caught.value)
        assert vendor.hits == []

    async def test_destructive_refusal_follows_the_connections_resolved_table(self, vendor: Vendor) -> None:
        """A connector with modes: the table resolve_capabilities() finds decides, not the class's."""
        table = QueryTokenConnector.capabilities
        gentle = table.variant(mode="gentle", actions={"deactivate_course": action_support("course_id")})
        moded = table.variant(modes={"gentle": gentle, "harsh": table.variant(mode="harsh")})

        class Moded(QueryTokenConnector):
            capabilities = moded
            found = "gentle"

            async def resolve_capabilities(self) -> Capabilities:
                self.capabilities = moded.modes[self.found]
                return self.capabilities

        config = QueryConfig(base_url=vendor.url, wstoken=Secret(SECRET))
        closed = Moded(config, allow_destructive=False)
        with pytest.raises(DestructiveActionRefused):  # closed: the class table, which flags it, decides
            await closed.deactivate_course(course_id="remote:7")
        async with Moded(config, allow_destructive=False) as lms:
            result = await lms.deactivate_course(course_id="remote:7")
            assert result.items[0].status is ItemStatus.UPDATED and lms.capabilities.mode == "gentle"
        Moded.found = "harsh"
        async with Moded(config, allow_destructive=False) as lms:
            with pytest.raises(DestructiveActionRefused):
                await lms.deactivate_course(course_id="remote:7")
        assert len(vendor.hits) == 1

    @pytest.mark.parametrize("value", ["false", "no", 0, None], ids=repr)
    def test_allow_destructive_must_be_a_bool(self, value: Any) -> None:
        """allow_destructive="false" (say, from an env var) is refused rather than read as true."""
        with pytest.raises(ConfigurationError, match="allow_destructive must be True or False"):
            lmsconnect.connect("toylms", allow_destructive=value, base_url="http://127.0.0.1:9",
                               token="t0ken")

    def test_http_options_must_be_http_options(self) -> None:
        """http= takes an HttpOptions, not a dict."""
        with pytest.raises(ConfigurationError, match=r"http must be an lmsconnect\.HttpOptions"):
            lmsconnect.connect("toylms", http={"max_attempts": 1},  # type: ignore[arg-type]
                               base_url="http://127.0.0.1:9", token="t0ken")

    async def test_destructive_action_runs_when_allowed(self, vendor: Vendor) -> None:
        """By default the destructive action runs and reports per item."""
        async with lmsconnect.connect("querytoken", base_url=vendor.url, wstoken=SECRET) as lms:
            result = await lms.deactivate_course(course_id="remote:7")
        assert result.items[0].status is ItemStatus.UPDATED
        assert vendor.hits == ["POST"]

    async def test_handler_must_return_its_result(self, vendor: Vendor) -> None:
        """A handler returning something other than its ActionResult is a TypeError, not silent."""

        class Sloppy(QueryTokenConnector):
            async def handle_deactivate_course(self, action: DeactivateCourse) -> ActionResult:
                return ActionResult(action="enroll_user", items=())

        async with Sloppy(QueryConfig(base_url=vendor.url, wstoken=Secret(SECRET))) as lms:
            with pytest.raises(TypeError, match=r"must return ActionResult\('deactivate_course'\)"):
                await lms.deactivate_course(course_id="remote:7")

    async def test_defaults_do_not_count_as_given_fields(self, vendor: Vendor) -> None:
        """A table without items.course.type still upserts: the default type is not a field the caller set."""

        class TitlesOnly(QueryTokenConnector):
            capabilities = Capabilities.build(
                slug="querytoken", name="Query Token LMS", models={"users": model_support()},
                actions={"upsert_courses": action_support("items.origin_id", "items.course.title")},
                features={},
            )

            async def handle_upsert_courses(self, action: lmsconnect.UpsertCourses) -> ActionResult:
                return ActionResult(action="upsert_courses", items=tuple(
                    ItemResult(key=i.origin_id, status=ItemStatus.CREATED) for i in action.items))

        async with TitlesOnly(QueryConfig(base_url=vendor.url, wstoken=Secret(SECRET))) as lms:
            result = await lms.upsert_courses({"items": [{"origin_id": "c-1", "course": {"title": "T"}}]})
            assert result.ok
            with pytest.raises(NotSupported, match=r"'items\.course\.description'"):
                await lms.upsert_courses(
                    {"items": [{"origin_id": "c-1", "course": {"title": "T", "description": "D"}}]}
                )

    async def test_enrolment_through_the_toy_connector(self, toy: tuple[Any, Connector[Any]]) -> None:
        """An enrolment made with our ids shows up in the next read of progressions."""
        _, lms = toy
        enrolled = {(p.user_id, p.course_revision_id) async for p in lms.list(lmsconnect.CourseProgression)}
        revisions = [r.id async for r in lms.list(lmsconnect.CourseRevision)]
        users = [u.id async for u in lms.list(User)]
        user, revision = next((u, r) for u in users for r in revisions if (u, r) not in enrolled)
        result = await lms.enroll_user(user_id=user, course_revision_id=revision)
        assert result.ok and result.items[0].status is ItemStatus.CREATED
        after = {(p.user_id, p.course_revision_id) async for p in lms.list(lmsconnect.CourseProgression)}
        assert (user, revision) in after
        assert result.ids[0] in {p.id async for p in lms.list(lmsconnect.CourseProgression)}


class TestRemoteId:
    CONNECTOR = QueryTokenConnector(QueryConfig(base_url="http://127.0.0.1:9", wstoken=Secret("x" * 8)))

    def test_our_id_gives_back_the_vendor_id(self) -> None:
        """Our id turns back into the vendor's id for the call."""
        ours = self.CONNECTOR.make_id("courses", "c/42")
        assert self.CONNECTOR.remote_id("courses", ours, field="course_id") == "c/42"

    def test_remote_prefix(self) -> None:
        """'remote:<vendor id>' passes the vendor id through."""
        assert self.CONNECTOR.remote_id("users", "remote:a:b", field="user_id") == "a:b"

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (make_id("querytoken", "users", 1), "is an id of users, expected one of courses"),
            (make_id("moodle", "courses", 1), "is an id from the 'moodle' connector"),
            ("42", "neither an lmsconnect id nor 'remote:<vendor id>'"),
            ("remote:", "must be followed by the vendor's id"),
        ],
        ids=["wrong-model", "other-connector", "bare-vendor-id", "empty-remote"],
    )
    def test_rejected_naming_the_field(self, value: str, message: str) -> None:
        """An id of the wrong model or connector, or no id at all, is InvalidInput naming the field."""
        with pytest.raises(InvalidInput) as caught:
            self.CONNECTOR.remote_id("courses", value, field="course_id")
        assert caught.value.field == "course_id"
        assert str(caught.value).startswith("course_id: ")
        assert message in str(caught.value)

    async def test_wrong_model_id_in_an_action_makes_no_call(self, toy: tuple[Any, Connector[Any]]) -> None:
        """Enrolling with a course id where a revision id belongs fails before any call."""
        sim, lms = toy
        with pytest.raises(InvalidInput) as caught:
            await lms.enroll_user(user_id=make_id("toylms", "users", 1),
                                  course_revision_id=make_id("toylms", "courses", 1))
        assert caught.value.field == "course_revision_id"
        assert sim.calls == 0


class TestPassthrough:
    async def test_uses_the_connection_auth(self, toy: tuple[Any, Connector[Any]]) -> None:
        """passthrough reaches the vendor with the connector's credentials and counts as a call."""
        sim, lms = toy
        response = await lms.passthrough("GET", "/api/users", params={"page": 1})
        assert response.status == 200
        assert len(response.json()["data"]) == len(sim.users)
        assert lms.stats.calls == 1

    async def test_not_offered(self, vendor: Vendor) -> None:
        """A connector whose table lacks passthrough raises NotSupported without a call."""

        class NoPassthrough(QueryTokenConnector):
            capabilities = Capabilities.build(
                slug="querytoken", name="Query Token LMS", models={"users": model_support()}, actions={},
                features={},
            )

        async with NoPassthrough(QueryConfig(base_url=vendor.url, wstoken=Secret(SECRET))) as lms:
            with pytest.raises(NotSupported, match="does not offer API Passthrough"):
                await lms.passthrough("GET", "/webservice")
        assert vendor.hits == []


class TestCheck:
    async def test_all_ok_with_full_access(self, toy: tuple[Any, Connector[Any]]) -> None:
        """With full scopes every model and action is ok; unsupported ones are simply not listed as errors."""
        _, lms = toy
        report = await lms.check()
        assert report.ok, report.to_dict()
        for model in ("users", "courses", "course_revisions", "course_progressions"):
            assert report.get("model", model).status is CheckStatus.OK
        assert report.get("action", "enroll_user").status is CheckStatus.OK

    async def test_missing_scope_is_named_the_vendor_way(self) -> None:
        """A token without a scope reports that model as missing_permission with the vendor's scope name."""
        scopes = ("users:read", "courses:read", "courses:write")
        async with simulator("toylms", scopes=scopes) as sim:
            lms = lmsconnect.connect("toylms", **sim.connect_config)
            async with lms:
                report = await lms.check()
        assert not report.ok
        progressions = report.get("model", "course_progressions")
        assert progressions.status is CheckStatus.MISSING_PERMISSION
        assert progressions.permissions == ("enrollments:read",)
        assert report.get("action", "enroll_user").permissions == ("enrollments:write",)
        assert report.get("model", "users").status is CheckStatus.OK
        data = report.to_dict()
        assert data["ok"] is False
        assert {"kind": "model", "name": "course_progressions", "status": "missing_permission",
                "permissions": ["enrollments:read"]}.items() <= next(
            i for i in data["items"] if i["name"] == "course_progressions").items()

    async def test_wrong_credentials_are_reported_not_raised(self) -> None:
        """check() with a bad token reports a credentials error (and untested models) instead of raising."""
        async with simulator("toylms") as sim:
            config = {**sim.connect_config, "token": "not-the-token"}
            async with lmsconnect.connect("toylms", **config) as lms:
                report = await lms.check()
        assert not report.ok
        assert report.get("credentials", "credentials").status is CheckStatus.ERROR
        assert report.get("model", "users").detail == "not tested: authentication failed"
        assert "not-the-token" not in json.dumps(report.to_dict())


class TestPassthroughStaysOnTheOrigin:
    @pytest.mark.parametrize(
        "target",
        ["{other}/api/users", "//{other_host}/api/users", "ftp://{other_host}/x", "javascript:alert(1)",
         "/api/users\r\nHost: evil", "\\\\{other_host}\\api"],
        ids=["other-origin", "scheme-relative", "other-scheme", "scheme-only", "header-injection",
             "backslashes"],
    )
    async def test_refused_before_any_call(
        self, toy: tuple[Any, Connector[Any]], recorder: Any, target: str
    ) -> None:
        """passthrough to anything but a path or a same-origin URL is InvalidInput; no server is called."""
        sim, lms = toy
        other = recorder.url  # another server, on another port: it must receive nothing
        with pytest.raises(InvalidInput) as caught:
            await lms.passthrough("GET", target.format(other=other, other_host=other.split("//")[1]))
        assert caught.value.field == "path"
        assert recorder.paths == []
        assert sim.calls == 0 and lms.stats.calls == 0

    async def test_same_origin_url_is_accepted(self, toy: tuple[Any, Connector[Any]]) -> None:
        """An absolute URL on the connection's own origin is a path by another name."""
        sim, lms = toy
        response = await lms.passthrough("GET", f"{sim.connect_config['base_url']}/api/users?page=1")
        assert response.status == 200 and sim.calls == 1


class TestCheckNeverRaisesForRemoteFailures:
    @pytest.mark.parametrize("mode", ["html", "deep", "huge"])
    async def test_broken_answers_are_reported_per_model(self, vendor: Vendor, mode: str) -> None:
        """An HTML page, JSON nested 100,000 deep or an oversized body: check() reports an error item."""
        vendor.mode[0] = mode
        class Checked(QueryTokenConnector):
            capabilities = attrs.evolve(
                QueryTokenConnector.capabilities,
                features=Capabilities.build(
                    slug="querytoken", name="Query Token LMS", models={}, actions={},
                    features={"passthrough": "", "per_model_tests": "", "scope_testing": ""},
                ).features,
            )

            async def check_access(self) -> list[CheckItem]:
                await self.http.get_json("/webservice")  # the scope test meets the same broken answer
                return []

        options = HttpOptions(max_attempts=1, max_response_bytes=64 * 1024)
        lms = Checked(QueryConfig(base_url=vendor.url, wstoken=Secret(SECRET)), http=options)
        async with lms:
            report = await lms.check()
        for item in (report.get("model", "users"), report.get("credentials", "scope_testing")):
            assert item.status is CheckStatus.ERROR
            assert "expected JSON" in item.detail or "max_response_bytes" in item.detail
        assert_no_secret(json.dumps(report.to_dict()))


    async def test_failure_while_closing_the_read_is_reported(self, vendor: Vendor) -> None:
        """A read whose cleanup call meets a broken answer (closing after one record) is an error item."""

        class CleansUp(QueryTokenConnector):
            capabilities = attrs.evolve(
                QueryTokenConnector.capabilities,
                features=Capabilities.build(
                    slug="querytoken", name="Query Token LMS", models={}, actions={},
                    features={"per_model_tests": ""},
                ).features,
            )

            async def read_users(self) -> AsyncIterator[User]:
                try:
                    yield User(id=self.make_id("users", 1), remote_id="1", first_name="Ada")
                finally:
                    vendor.mode[0] = "deep"
                    await self.http.get_json("/webservice")  # e.g. releasing a server-side cursor

        async with CleansUp(QueryConfig(base_url=vendor.url, wstoken=Secret(SECRET))) as lms:
            report = await lms.check()
        item = report.get("model", "users")
        assert item.status is CheckStatus.ERROR and "expected JSON" in item.detail


class TestOversizedIds:
    CONNECTOR = QueryTokenConnector(QueryConfig(base_url="http://127.0.0.1:9", wstoken=Secret("x" * 8)))

    @pytest.mark.parametrize(
        "value",
        ["remote:" + "7" * 100_000, "remote:" + "7" * 257, make_id("querytoken", "courses", "9" * 300),
         "remote:12\n34"],
        ids=["100k-digits", "257-chars", "ours-wrapping-300", "control-char"],
    )
    def test_invalid_input_not_value_error(self, value: str) -> None:
        """A 100,000-digit or otherwise oversized vendor id is InvalidInput naming the field, not quoted."""
        with pytest.raises(InvalidInput) as caught:
            self.CONNECTOR.remote_id("courses", value, field="course_id")
        assert caught.value.field == "course_id"
        assert len(str(caught.value)) < 500

    def test_longest_vendor_id_passes(self) -> None:
        """A 256-character vendor id is still accepted, raw or inside our id."""
        remote = "v" * 256
        assert self.CONNECTOR.remote_id("courses", f"remote:{remote}", field="course_id") == remote
        ours = self.CONNECTOR.make_id("courses", remote)
        assert self.CONNECTOR.remote_id("courses", ours, field="course_id") == remote
