"""The error tree: one root, stable codes, messages that say what to do, HTTP failures mapped into it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

import lmsconnect
from lmsconnect import (
    ActionFailed,
    ActionResult,
    AuthenticationError,
    ConfigurationError,
    DestructiveActionRefused,
    InvalidInput,
    InvalidRemoteResponse,
    ItemResult,
    ItemStatus,
    LMSConnectError,
    NotFound,
    NotSupported,
    PermissionDenied,
    PluginLoadError,
    RateLimited,
    RemoteError,
)
from lmsconnect.plugin import HttpClient, HttpOptions, Response, default_error, trim

# Every public error with its code and its parent in the tree.
TREE: list[tuple[type[LMSConnectError], str, type[Exception]]] = [
    (ConfigurationError, "CONFIG.INVALID", LMSConnectError),
    (PluginLoadError, "CONFIG.PLUGIN_BROKEN", ConfigurationError),
    (InvalidInput, "INPUT.INVALID", LMSConnectError),
    (NotSupported, "LMS.NOT_SUPPORTED", LMSConnectError),
    (DestructiveActionRefused, "LMS.DESTRUCTIVE_REFUSED", LMSConnectError),
    (AuthenticationError, "REMOTE.AUTHENTICATION", LMSConnectError),
    (PermissionDenied, "REMOTE.PERMISSION_DENIED", LMSConnectError),
    (NotFound, "REMOTE.NOT_FOUND", LMSConnectError),
    (RateLimited, "REMOTE.RATE_LIMITED", LMSConnectError),
    (RemoteError, "REMOTE.ERROR", LMSConnectError),
    (InvalidRemoteResponse, "REMOTE.INVALID_RESPONSE", RemoteError),
    (ActionFailed, "LMS.ACTION_FAILED", LMSConnectError),
]


def make(cls: type[LMSConnectError], message: str = "it failed", **kwargs: Any) -> LMSConnectError:
    if cls is PluginLoadError:
        return PluginLoadError(message, entry_point="pkg:Cls", distribution="lmsconnect-x")
    if cls is ActionFailed:
        return ActionFailed(message, result=ActionResult(action="enroll_user", items=()), **kwargs)
    return cls(message, **kwargs)


class TestTree:
    @pytest.mark.parametrize(("cls", "code", "parent"), TREE, ids=[c.__name__ for c, _, _ in TREE])
    def test_place_and_code(self, cls: type[LMSConnectError], code: str, parent: type[Exception]) -> None:
        """Each error sits under its documented parent and carries its stable code."""
        assert issubclass(cls, parent)
        assert issubclass(cls, LMSConnectError)
        assert make(cls).code == code

    def test_codes_are_unique(self) -> None:
        """No two errors share a code, so callers can branch on it."""
        codes = [code for _, code, _ in TREE]
        assert len(codes) == len(set(codes))

    def test_every_exported_error_is_in_the_tree(self) -> None:
        """Every exception lmsconnect exports derives from LMSConnectError; the core ones are exported."""
        exported = {getattr(lmsconnect, n) for n in lmsconnect.__all__}
        errors = {e for e in exported if isinstance(e, type) and issubclass(e, BaseException)}
        assert all(issubclass(e, LMSConnectError) for e in errors)
        assert {cls for cls, _, _ in TREE} | {LMSConnectError} <= errors

    @pytest.mark.parametrize(
        "cls",
        [ConfigurationError, PluginLoadError, NotSupported, DestructiveActionRefused, AuthenticationError,
         PermissionDenied, RateLimited, RemoteError, InvalidRemoteResponse],
        ids=lambda c: c.__name__,
    )
    def test_message_says_what_to_do(self, cls: type[LMSConnectError]) -> None:
        """Errors the caller can act on end with a hint saying how."""
        error = make(cls)
        assert error.hint
        assert str(error).endswith(error.hint)


class TestMessage:
    def test_context_in_the_message(self) -> None:
        """The text names the connector, the HTTP status and the vendor's own words."""
        error = RemoteError("GET /v1/users failed", connector="talentlms", status=502,
                            vendor_message="Bad gateway")
        assert str(error) == (
            "[talentlms] GET /v1/users failed (HTTP 502) — vendor said: Bad gateway. "
            "Retry later; if it persists, the vendor is having trouble"
        )
        assert repr(error).startswith("RemoteError(code='REMOTE.ERROR', message='[talentlms]")

    def test_vendor_message_is_trimmed(self) -> None:
        """A huge vendor body is cut to 300 characters with its whitespace collapsed."""
        error = RemoteError("failed", vendor_message="<html>\n" + "x" * 5000)
        assert error.vendor_message is not None
        assert len(error.vendor_message) == 300
        assert error.vendor_message.endswith("…")
        assert trim("a \n\t b") == "a b"

    def test_context_is_json_ready(self) -> None:
        """context() is a JSON-serialisable dict for logs and --json output."""
        error = NotFound("user 7 found nothing", connector="moodle", status=404)
        data = json.loads(json.dumps(error.context()))
        assert data == {"type": "NotFound", "code": "REMOTE.NOT_FOUND", "message": "user 7 found nothing",
                        "connector": "moodle", "status": 404, "vendor_message": None}

    def test_specific_attributes(self) -> None:
        """Errors carry what the caller needs: the field, the permission, the wait, the result."""
        assert InvalidInput("bad", field="score").field == "score"
        denied = PermissionDenied("no", permission="core_user_get_users")
        assert denied.permission == "core_user_get_users"
        assert "Grant 'core_user_get_users'" in str(denied)
        limited = RateLimited("slow down", retry_after=12.0)
        assert limited.retry_after == 12.0 and "Retry after 12.0 s" in str(limited)
        result = ActionResult(action="enroll_user", items=(ItemResult(key="u", status=ItemStatus.FAILED),))
        assert ActionFailed("not enrolled", result=result).result is result
        plugin = PluginLoadError("broken", entry_point="pkg:Cls", distribution="lmsconnect-x")
        assert "'lmsconnect-x'" in str(plugin)

    def test_custom_code(self) -> None:
        """A connector can give an error a more specific code."""
        assert ActionFailed("x", result=ActionResult(action="enroll_user", items=()),
                            code="LMS.ENROLLMENT_ROLLED_BACK").code == "LMS.ENROLLMENT_ROLLED_BACK"


@pytest.fixture
async def statuses() -> AsyncIterator[str]:
    """A loopback server answering /status/<n> with that status and a JSON body."""

    async def answer(request: web.Request) -> web.StreamResponse:
        status = int(request.match_info["status"])
        return web.json_response({"error": f"vendor says {status}", "scope": "users:read"}, status=status)

    async def not_json(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html>maintenance</html>")

    app = web.Application()
    app.router.add_get("/status/{status}", answer)
    app.router.add_get("/html", not_json)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


class TestHttpMapping:
    @pytest.mark.parametrize(
        ("status", "error"),
        [(400, RemoteError), (401, AuthenticationError), (403, PermissionDenied), (404, NotFound),
         (409, RemoteError), (429, RateLimited), (500, RemoteError), (503, RemoteError)],
        ids=lambda v: v if isinstance(v, int) else v.__name__,
    )
    async def test_default_mapping(self, statuses: str, status: int, error: type[LMSConnectError]) -> None:
        """Without a vendor mapper, HTTP statuses map to the matching error, with status and body."""
        http = HttpClient(slug="probe", base_url=statuses, options=HttpOptions(max_attempts=1))
        try:
            with pytest.raises(LMSConnectError) as caught:
                await http.request("GET", f"/status/{status}")
        finally:
            await http.aclose()
        assert type(caught.value) is error
        assert caught.value.status == status
        assert caught.value.connector == "probe"
        assert caught.value.vendor_message is not None
        assert f"vendor says {status}" in caught.value.vendor_message
        assert f"/status/{status}" in str(caught.value)

    async def test_vendor_mapper_wins(self, statuses: str) -> None:
        """A connector's error_mapper turns a vendor body into a specific error (the scope named)."""

        def mapper(response: Response) -> LMSConnectError | None:
            if response.status == 403:
                return PermissionDenied(response.json()["error"], permission=response.json()["scope"])
            return None

        http = HttpClient(slug="probe", base_url=statuses, error_mapper=mapper,
                          options=HttpOptions(max_attempts=1))
        try:
            with pytest.raises(PermissionDenied) as denied:
                await http.request("GET", "/status/403")
            with pytest.raises(NotFound):  # the mapper declined: default mapping
                await http.request("GET", "/status/404")
        finally:
            await http.aclose()
        assert denied.value.permission == "users:read"
        assert denied.value.connector == "probe"

    async def test_unparseable_body_is_invalid_remote_response(self, statuses: str) -> None:
        """A body that is not the JSON the vendor documents is InvalidRemoteResponse, quoting its start."""
        http = HttpClient(slug="probe", base_url=statuses)
        try:
            with pytest.raises(InvalidRemoteResponse, match="expected JSON") as caught:
                await http.get_json("/html")
        finally:
            await http.aclose()
        assert "<html>maint" in str(caught.value)
        assert isinstance(caught.value, RemoteError)

    def test_default_error_without_a_body(self) -> None:
        """default_error works on a bare response and keeps Retry-After on a 429."""
        response = Response(method="GET", url="http://x/y", status=429, headers={"Retry-After": "3"},
                            body=b"")
        error = default_error(response, slug="probe")
        assert isinstance(error, RateLimited)
        assert error.retry_after == 3.0
        assert error.vendor_message is None
