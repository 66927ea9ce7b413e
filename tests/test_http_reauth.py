"""HttpClient: credentials renewed after a 401, and which budget a request spends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web

from lmsconnect import AuthenticationError
from lmsconnect.plugin import HttpClient, RateBudget, RateWindow


class TokenServer:
    """Accepts `Bearer <current>`; `rotate()` makes the old token expire."""

    def __init__(self) -> None:
        self.current = "token-1"
        self.requests: list[str] = []

    def rotate(self) -> None:
        self.current = f"token-{int(self.current.split('-')[1]) + 1}"

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != f"Bearer {self.current}":
            return web.json_response({"error": "expired"}, status=401)
        return web.json_response({"ok": True})


@pytest_asyncio.fixture
async def server() -> AsyncIterator[tuple[TokenServer, str]]:
    state = TokenServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield state, f"http://127.0.0.1:{port}"
    await runner.cleanup()


def client(url: str, state: TokenServer, *, renew: bool) -> tuple[HttpClient, list[int]]:
    held = {"token": state.current}
    renewals: list[int] = []

    async def auth(headers: dict[str, str]) -> None:
        headers["Authorization"] = f"Bearer {held['token']}"

    async def on_unauthorized() -> bool:
        renewals.append(1)
        held["token"] = state.current
        return renew

    return HttpClient(slug="t", base_url=url, auth=auth, on_unauthorized=on_unauthorized), renewals


class TestReauthentication:
    async def test_expired_token_is_renewed_and_a_post_sent_once_more(
        self, server: tuple[TokenServer, str]
    ) -> None:
        """A 401 on a POST triggers one renewal and one resend; the write is not lost."""
        state, url = server
        http, renewals = client(url, state, renew=True)
        state.rotate()
        response = await http.request("POST", "/write", json_body={"a": 1})
        await http.aclose()
        assert response.status == 200
        assert renewals == [1]
        assert state.requests == ["Bearer token-1", "Bearer token-2"]

    async def test_a_second_401_is_an_authentication_error(self, server: tuple[TokenServer, str]) -> None:
        """When renewal does not help, the caller gets AuthenticationError after one retry, not a loop."""
        state, url = server
        http, renewals = client(url, state, renew=False)
        state.rotate()
        with pytest.raises(AuthenticationError):
            await http.request("GET", "/read")
        await http.aclose()
        assert renewals == [1]
        assert len(state.requests) == 1


class TestBudgetChoice:
    @pytest.mark.parametrize(
        ("method", "idempotent", "write"),
        [
            pytest.param("GET", None, False, id="GET-reads"),
            pytest.param("PUT", None, True, id="PUT-writes"),
            pytest.param("DELETE", None, True, id="DELETE-writes"),
            pytest.param("POST", None, True, id="POST-writes"),
            pytest.param("POST", True, False, id="read-only-POST-reads"),
            pytest.param("GET", False, True, id="mutating-GET-writes"),
        ],
    )
    async def test_request_spends_the_right_budget(
        self, server: tuple[TokenServer, str], method: str, idempotent: bool | None, write: bool
    ) -> None:
        """Writes spend the write budget and reads the read budget, by method unless told otherwise."""
        state, url = server
        reads, writes = RateBudget(RateWindow(100, 1.0)), RateBudget(RateWindow(100, 1.0))
        http = HttpClient(slug="t", base_url=url, read_budget=reads, write_budget=writes,
                          headers={"Authorization": f"Bearer {state.current}"})
        await http.request(method, "/x", idempotent=idempotent)
        await http.aclose()
        spent_write = len(writes.windows[0]._sent) == 1
        assert spent_write is write
        assert len(reads.windows[0]._sent) == (0 if write else 1)


class TestLongRetryAfter:
    async def test_a_hint_beyond_the_cap_is_raised_not_slept(self) -> None:
        """A 429 asking for an hour is not slept through: RateLimited carries retry_after at once."""
        import time

        from lmsconnect import RateLimited
        from lmsconnect.plugin import HttpOptions

        calls = []

        async def handle(request: web.Request) -> web.Response:
            calls.append(1)
            return web.json_response({"error": "hourly"}, status=429, headers={"Retry-After": "3600"})

        app = web.Application()
        app.router.add_get("/x", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        http = HttpClient(slug="t", base_url=f"http://127.0.0.1:{port}",
                          options=HttpOptions(max_retry_wait_s=60))
        started = time.monotonic()
        try:
            with pytest.raises(RateLimited) as info:
                await http.request("GET", "/x")
        finally:
            await http.aclose()
            await runner.cleanup()
        assert time.monotonic() - started < 5
        assert info.value.retry_after is not None and info.value.retry_after > 3000
        assert calls == [1]
