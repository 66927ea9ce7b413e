"""The transport (`lmsconnect.plugin.HttpClient`) against real aiohttp servers on 127.0.0.1.

Retries, `Retry-After`, idempotency, rate budgets measured on the server side, timeouts, pagination,
`stream_map`, call counts, and secret scrubbing in messages and logs.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import email.utils
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

import attrs
import pytest
from aiohttp import web
from multidict import CIMultiDict

from lmsconnect import HttpOptions, InvalidRemoteResponse, LMSConnectError, RateLimited, RemoteError, _http
from lmsconnect.plugin import (
    BudgetWait,
    HttpClient,
    PageGuard,
    RateBudget,
    RateWindow,
    next_link,
    paginate_link,
    paginate_offset,
    paginate_pages,
    retry_after,
    stream_map,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Fast retries: the behaviour under test is whether and when a request is retried, not the default waits.
FAST = HttpOptions(backoff_base_s=0.01, backoff_max_s=0.05, max_attempts=3)
# The server stamps arrivals after the client stamped its send; loopback jitter between the two is
# well under this on an idle machine. Window limits are checked on admissions (AdmissionLog), not on
# arrivals: on a loaded 2-core machine arrivals of two windows bunch into one.
JITTER_S = 0.02


@attrs.frozen
class Arrival:
    at: float
    method: str
    path: str


class Loopback:
    """A real aiohttp server on 127.0.0.1 that records the arrival of every request."""

    def __init__(self, routes: dict[tuple[str, str], Handler]) -> None:
        self.app = web.Application(middlewares=[self._record])
        for (method, path), handler in routes.items():
            self.app.router.add_route(method, path, handler)
        self.arrivals: list[Arrival] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.arrivals.append(Arrival(time.monotonic(), request.method, request.path))
        return await handler(request)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def count(self, path: str | None = None, method: str | None = None) -> int:
        return sum(
            1 for a in self.arrivals if (path is None or a.path == path) and (method in (None, a.method))
        )

    def times(self, method: str | None = None) -> list[float]:
        return sorted(a.at for a in self.arrivals if method in (None, a.method))


Serve = Callable[..., Awaitable[tuple[Loopback, HttpClient]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start a loopback server with the given routes and an HttpClient pointed at it."""
    opened: list[tuple[Loopback, HttpClient]] = []

    async def start(routes: dict[tuple[str, str], Handler], **client: Any) -> tuple[Loopback, HttpClient]:
        server = Loopback(routes)
        await server.start()
        client.setdefault("options", FAST)
        prefix = client.pop("prefix", "")  # a base URL with a path, like https://host/api/v2
        http = HttpClient(slug="probe", base_url=server.url + prefix, **client)
        opened.append((server, http))
        return server, http

    yield start
    for server, http in opened:
        await http.aclose()
        await server.close()


def answers(*responses: Callable[[], web.StreamResponse] | int) -> Handler:
    """A handler giving these answers in turn (an int is an empty response with that status), then 200."""
    queue = list(responses)

    async def handler(request: web.Request) -> web.StreamResponse:
        if not queue:
            return web.json_response({"ok": True})
        answer = queue.pop(0)
        if isinstance(answer, int):
            return web.Response(status=answer, text=f"status {answer}")
        return answer()

    return handler


def failing(kind: str, times: int = 1) -> Handler:
    """A handler that fails `times` times (a 500, or a connection dropped after the request arrived)."""
    left = [times]

    async def handler(request: web.Request) -> web.StreamResponse:
        if left[0] > 0:
            left[0] -= 1
            if kind == "dropped connection":
                assert request.transport is not None
                request.transport.abort()
                return web.Response(status=500)  # discarded: the connection is gone
            return web.Response(status=500, text="internal error")
        return web.json_response({"ok": True})

    return handler


class AdmissionLog(RateWindow):
    """A real rate window that also keeps every admission time, by the window's own clock.

    The budget's promise is about when it admits calls; the server's arrival stamps add the event
    loop's and the network's delays on top (a loaded machine bunches two windows' arrivals into one),
    so the exact check is made here and the server only confirms every call arrived."""

    def __init__(self, limit: int, period: float) -> None:
        super().__init__(limit, period)
        self.admitted: list[float] = []

    def record(self, now: float) -> None:
        super().record(now)
        self.admitted.append(now)

    def busiest(self) -> int:
        """The most admissions in any half-open window [t, t + period)."""
        times = sorted(self.admitted)
        return max(
            (bisect.bisect_left(times, start + self.period, lo=i) - i for i, start in enumerate(times)),
            default=0,
        )


def too_many_requests(seconds: str, header: str = "Retry-After") -> Callable[[], web.StreamResponse]:
    return lambda: web.Response(status=429, headers={header: seconds}, text="slow down")


class TestRetryAfter:
    async def test_429_with_retry_after_is_waited_out_and_retried(self, serve: Serve) -> None:
        """A 429 with Retry-After: 0.4 is retried once, no sooner than 0.4 s later, and then succeeds."""
        server, http = await serve({("GET", "/users"): answers(too_many_requests("0.4"))})
        response = await http.request("GET", "/users")
        assert response.status == 200
        first, second = server.times()
        assert second - first >= 0.4
        assert (http.stats.calls, http.stats.retries, http.stats.rejected) == (2, 1, 1)

    async def test_x_ratelimit_reset_seconds_is_honoured(self, serve: Serve) -> None:
        """Without Retry-After, X-RateLimit-Reset (seconds from now) sets the wait before the retry."""
        server, http = await serve(
            {("GET", "/users"): answers(too_many_requests("0.3", header="X-RateLimit-Reset"))}
        )
        assert (await http.request("GET", "/users")).status == 200
        first, second = server.times()
        assert second - first >= 0.3

    async def test_429_holds_back_every_other_request_of_the_budget(self, serve: Serve) -> None:
        """After a 429, a request started elsewhere on the same budget also waits out Retry-After."""
        limited_at: list[float] = []

        async def limited(request: web.Request) -> web.StreamResponse:
            if not limited_at:
                limited_at.append(time.monotonic())
                return web.Response(status=429, headers={"Retry-After": "0.4"})
            return web.json_response({})

        server, http = await serve({("GET", "/a"): limited, ("GET", "/b"): answers()})
        first = asyncio.create_task(http.request("GET", "/a"))
        while not http.stats.rejected:  # noqa: ASYNC110 - the client's own counter is what we wait on
            await asyncio.sleep(0.005)
        await http.request("GET", "/b")
        await first
        (b_arrival,) = [a.at for a in server.arrivals if a.path == "/b"]
        assert b_arrival - limited_at[0] >= 0.4 - 0.01

    async def test_malformed_retry_after_falls_back_to_backoff(self, serve: Serve) -> None:
        """A 429 whose Retry-After cannot be read is retried with ordinary backoff, not a crash or a hang."""
        server, http = await serve({("GET", "/users"): answers(too_many_requests("in a while"))})
        assert (await http.request("GET", "/users")).status == 200
        assert server.count() == 2

    async def test_persistent_429_becomes_rate_limited_after_the_attempts(self, serve: Serve) -> None:
        """A GET that keeps getting 429 is tried max_attempts times, then raises RateLimited."""
        server, http = await serve(
            {("GET", "/users"): answers(*[too_many_requests("0")] * 5)},
            options=HttpOptions(max_attempts=3, backoff_base_s=0.01),
        )
        with pytest.raises(RateLimited) as caught:
            await http.request("GET", "/users")
        assert server.count() == 3
        assert caught.value.retry_after == 0.0
        assert caught.value.status == 429

    async def test_429_on_a_post_is_not_retried_and_says_when_to_retry(self, serve: Serve) -> None:
        """A POST answered 429 is not retried; RateLimited carries the vendor's Retry-After at once."""
        server, http = await serve({("POST", "/courses"): answers(too_many_requests("5"))})
        started = time.monotonic()
        with pytest.raises(RateLimited) as caught:
            await http.request("POST", "/courses", json_body={"title": "x"})
        assert time.monotonic() - started < 1.0
        assert server.count() == 1
        assert caught.value.retry_after == 5.0
        assert "5.0 s" in str(caught.value)


class TestRetryAfterHeaderParsing:
    @pytest.mark.parametrize(
        ("headers", "expected"),
        [
            ({"Retry-After": "7"}, 7.0),
            ({"Retry-After": "0.25"}, 0.25),
            ({"Retry-After": "-3"}, 0.0),
            ({"X-RateLimit-Reset": "12"}, 12.0),
            ({"X-RateLimit-Reset": "1700000030"}, 30.0),
            ({"X-RateLimit-Reset": "soon"}, None),
            ({"Retry-After": "soon"}, None),
            ({"Retry-After": "inf"}, None),
            ({"Retry-After": "nan"}, None),
            ({"X-RateLimit-Reset": "inf"}, None),
            ({"Retry-After": "soon", "X-RateLimit-Reset": "4"}, 4.0),
            ({}, None),
        ],
        ids=["seconds", "fractional", "negative-clamped", "reset-delta", "reset-epoch", "reset-garbage",
             "garbage", "infinite", "nan", "reset-infinite", "garbage-then-reset", "none"],
    )
    def test_seconds_to_wait(self, headers: dict[str, str], expected: float | None) -> None:
        """Retry-After seconds and X-RateLimit-Reset (delta or epoch) give the seconds to wait."""
        assert retry_after(headers, now=1_700_000_000.0) == expected

    def test_http_date(self) -> None:
        """Retry-After as an HTTP date gives the seconds until then."""
        when = email.utils.formatdate(time.time() + 30, usegmt=True)
        wait = retry_after({"Retry-After": when})
        assert wait is not None
        assert 28 <= wait <= 30


class TestIdempotency:
    @pytest.mark.parametrize("kind", ["500", "dropped connection"])
    async def test_post_is_never_retried(self, serve: Serve, kind: str) -> None:
        """A POST that fails (500 or dropped connection) reaches the server exactly once."""
        server, http = await serve({("POST", "/courses"): failing(kind, times=5)})
        with pytest.raises(RemoteError) as caught:
            await http.request("POST", "/courses", json_body={"title": "Intro"})
        assert server.count("/courses") == 1
        assert http.stats.retries == 0
        if kind == "dropped connection":
            assert "not retried" in str(caught.value)

    @pytest.mark.parametrize("kind", ["500", "dropped connection"])
    async def test_get_is_retried(self, serve: Serve, kind: str) -> None:
        """A GET that fails once (500 or dropped connection) is retried and succeeds."""
        server, http = await serve({("GET", "/users"): failing(kind, times=1)})
        response = await http.request("GET", "/users")
        assert response.json() == {"ok": True}
        assert server.count("/users") == 2
        assert http.stats.retries == 1

    @pytest.mark.parametrize(
        ("method", "attempts"),
        [("GET", 3), ("PUT", 3), ("DELETE", 3), ("HEAD", 3), ("POST", 1), ("PATCH", 1)],
        ids=lambda v: str(v),
    )
    async def test_retries_follow_the_method(self, serve: Serve, method: str, attempts: int) -> None:
        """Idempotent methods are tried max_attempts times on 500; POST and PATCH once."""
        server, http = await serve({(method, "/x"): failing("500", times=10)})
        with pytest.raises(RemoteError):
            await http.request(method, "/x")
        assert server.count("/x") == attempts

    async def test_read_only_post_marked_idempotent_is_retried(self, serve: Serve) -> None:
        """A POST marked idempotent=True (a read-only web-service call) is retried."""
        server, http = await serve({("POST", "/webservice"): failing("dropped connection", times=1)})
        assert (await http.request("POST", "/webservice", idempotent=True)).status == 200
        assert server.count() == 2

    @pytest.mark.parametrize("kind", ["500", "dropped connection"])
    async def test_mutating_get_marked_not_idempotent_is_not_retried(self, serve: Serve, kind: str) -> None:
        """A GET marked idempotent=False (a vendor that writes through GET) is sent once, even by aiohttp."""
        server, http = await serve({("GET", "/createuser"): failing(kind, times=5)})
        with pytest.raises(RemoteError):
            await http.request("GET", "/createuser", idempotent=False)
        assert server.count() == 1

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
    async def test_client_errors_are_not_retried(self, serve: Serve, status: int) -> None:
        """A 4xx other than 429 is final even for a GET: one request, then the mapped error."""
        server, http = await serve({("GET", "/x"): answers(*[status] * 5)})
        with pytest.raises(LMSConnectError):  # which error: see test_errors
            await http.request("GET", "/x")
        assert server.count() == 1

    async def test_backoff_is_capped(self, serve: Serve) -> None:
        """Exponential backoff never waits longer than backoff_max_s between attempts."""
        server, http = await serve(
            {("GET", "/x"): failing("500", times=3)},
            options=HttpOptions(backoff_base_s=30.0, backoff_max_s=0.05, max_attempts=4),
        )
        started = time.monotonic()
        assert (await http.request("GET", "/x")).status == 200
        assert time.monotonic() - started < 1.0
        assert server.count() == 4

    async def test_exhausted_retries_raise_with_the_attempt_count(self, serve: Serve) -> None:
        """A GET failing every attempt raises RemoteError with the last status."""
        server, http = await serve({("GET", "/x"): failing("500", times=10)})
        with pytest.raises(RemoteError) as caught:
            await http.request("GET", "/x")
        assert caught.value.status == 500
        assert server.count() == FAST.max_attempts
        assert http.stats.calls == FAST.max_attempts
        assert http.stats.by_status[500] == FAST.max_attempts


class TestRateBudget:
    async def test_one_window_is_never_exceeded_under_high_concurrency(self, serve: Serve) -> None:
        """200 concurrent GETs under 20 per 0.25 s: no 0.25 s window on the server sees more than 20."""
        window = AdmissionLog(20, 0.25)
        budget = RateBudget(window)
        server, http = await serve({("GET", "/x"): answers()}, read_budget=budget)
        # Open the client's connections first: on a busy machine, 20 TCP connects at once delay the first
        # window's arrivals into the next window's, which says nothing about the budget.
        await asyncio.gather(*(http.request("GET", "/x") for _ in range(20)))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await asyncio.gather(*(http.request("GET", "/x") for _ in range(200)))
        elapsed = time.monotonic() - started
        times = [t for t in server.times() if t >= started]
        assert len(times) == 200
        assert window.busiest() == 20
        assert elapsed >= budget.floor_seconds(200) - JITTER_S
        # The budget admits work as soon as the window allows; it does not serialise beyond that.
        assert elapsed < budget.floor_seconds(200) + 1.5

    async def test_two_windows_hold_at_once(self, serve: Serve) -> None:
        """Under 5 per 0.1 s and 15 per 0.6 s together, neither window is ever exceeded."""
        short, long = AdmissionLog(5, 0.1), AdmissionLog(15, 0.6)
        budget = RateBudget(short, long)
        server, http = await serve({("GET", "/x"): answers()}, read_budget=budget)
        await asyncio.gather(*(http.request("GET", "/x") for _ in range(40)))
        times = server.times()
        assert len(times) == 40
        assert short.busiest() <= 5
        assert long.busiest() == 15
        assert short.admitted[-1] - short.admitted[0] >= budget.floor_seconds(40)

    async def test_writes_have_their_own_budget(self, serve: Serve) -> None:
        """POSTs wait for the write budget while GETs on the read budget flow freely."""
        writes = AdmissionLog(2, 0.3)
        server, http = await serve(
            {("GET", "/x"): answers(), ("POST", "/x"): answers()},
            read_budget=RateBudget(),
            write_budget=RateBudget(writes),
        )
        await asyncio.gather(
            *(http.request("POST", "/x") for _ in range(6)), *(http.request("GET", "/x") for _ in range(20))
        )
        posts, gets = server.times("POST"), server.times("GET")
        assert len(posts) == 6 and writes.busiest() == 2
        assert writes.admitted[-1] - writes.admitted[0] >= 0.6
        assert gets[-1] - gets[0] < 0.3  # reads were not held behind the writes

    async def test_retries_are_counted_against_the_budget(self, serve: Serve) -> None:
        """Every attempt, retries included, is admitted by the budget (2 per 0.3 s here)."""
        server, http = await serve(
            {("GET", "/x"): failing("500", times=2)}, read_budget=RateBudget(RateWindow(2, 0.3))
        )
        await http.request("GET", "/x")
        times = server.times()
        assert len(times) == 3
        assert times[2] - times[0] >= 0.3 - JITTER_S

    async def test_cancelled_waiter_gives_up_its_turn(self, serve: Serve) -> None:
        """A request cancelled while waiting for the budget uses no slot: the next one goes in its place."""
        server, http = await serve({("GET", "/x"): answers()}, read_budget=RateBudget(RateWindow(1, 0.3)))
        await http.request("GET", "/x")
        waiting = asyncio.create_task(http.request("GET", "/x"))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await http.request("GET", "/x")
        first, second = server.times()
        assert 0.3 - JITTER_S <= second - first < 0.5

    @pytest.mark.parametrize(
        ("windows", "calls", "floor"),
        [
            ([(200, 5.0)], 200, 0.0),
            ([(200, 5.0)], 201, 5.0),
            ([(200, 5.0)], 1000, 20.0),
            ([(200, 5.0), (10_000, 3600.0)], 10_001, 3600.0),
            ([], 10**6, 0.0),
        ],
        ids=["within-one-window", "one-over", "five-windows", "hourly-dominates", "unlimited"],
    )
    def test_floor_seconds(self, windows: list[tuple[int, float]], calls: int, floor: float) -> None:
        """floor_seconds is the least time the limits allow for that many calls."""
        budget = RateBudget(*(RateWindow(n, p) for n, p in windows))
        assert budget.floor_seconds(calls) == floor

    @pytest.mark.parametrize(("limit", "period"), [(0, 1.0), (5, 0.0), (5, -1.0)], ids=str)
    def test_invalid_window_is_refused(self, limit: int, period: float) -> None:
        """A window needs limit >= 1 and period > 0."""
        with pytest.raises(ValueError, match="limit >= 1"):
            RateWindow(limit, period)


class TestHttpOptions:
    @pytest.mark.parametrize(
        "options",
        [{"max_attempts": 0}, {"timeout_s": 0}, {"connect_timeout_s": -1}, {"backoff_base_s": -0.1},
         {"max_connections": 0}],
        ids=lambda o: next(iter(o)),
    )
    def test_nonsense_is_refused_at_construction(self, options: dict[str, float]) -> None:
        """Zero attempts, a zero timeout or a negative backoff fail when the options are made."""
        with pytest.raises(ValueError, match=next(iter(options))):
            HttpOptions(**options)  # type: ignore[arg-type]

    async def test_options_reach_the_transport(self) -> None:
        """connect(..., http=HttpOptions(...)) is what the connector's client uses."""
        import lmsconnect

        options = HttpOptions(max_attempts=1, timeout_s=5)
        lms = lmsconnect.connect("toylms", base_url="http://127.0.0.1:9", token="toy-token", http=options)
        async with lms:
            assert lms.http.options is options


class TestTimeouts:
    async def test_slow_response_times_out_and_is_retried_then_fails(self, serve: Serve) -> None:
        """A response slower than timeout_s is abandoned, retried (GET), then reported as RemoteError."""

        async def slow(request: web.Request) -> web.StreamResponse:
            await asyncio.sleep(0.3)
            return web.json_response({})

        server, http = await serve(
            {("GET", "/slow"): slow},
            options=HttpOptions(timeout_s=0.1, max_attempts=2, backoff_base_s=0.01),
        )
        with pytest.raises(RemoteError, match=r"after 2 attempt\(s\)"):
            await http.request("GET", "/slow")
        assert server.count() == 2


class TestBadBaseUrl:
    @pytest.mark.parametrize(
        "base_url",
        ["lms.example.org", "ftp://127.0.0.1:9", "http://", "127.0.0.1:8080",
         "https://.../api", "https://a..b/api", f"https://{'x' * 64}.example/api"],
        ids=["no-scheme", "ftp", "no-host", "host-port-only", "idna-dots", "idna-empty-label", "idna-long"],
    )
    async def test_is_a_configuration_error_at_once(self, base_url: str) -> None:
        """A malformed base URL is a ConfigurationError at the first call, not retried as a vendor error."""
        from lmsconnect import ConfigurationError

        http = HttpClient(slug="probe", base_url=base_url)
        try:
            with pytest.raises(ConfigurationError, match="not a valid http"):
                await http.request("GET", "/users")
        finally:
            await http.aclose()
        assert http.stats.retries == 0


class TestStats:
    async def test_calls_count_every_request_sent(self, serve: Serve) -> None:
        """stats.calls counts requests sent, retries included; by_status tallies the answers."""
        server, http = await serve({("GET", "/x"): answers(503, 502), ("POST", "/y"): answers()})
        await http.request("GET", "/x")
        await http.request("POST", "/y")
        assert http.stats.calls == server.count() == 4
        assert http.stats.retries == 2
        assert dict(http.stats.by_status) == {503: 1, 502: 1, 200: 2}


class TestHttpClient:
    async def test_auth_is_applied_to_every_attempt(self, serve: Serve) -> None:
        """The auth callback is awaited before each send, so a retried request is authenticated too."""
        seen: list[str | None] = []

        async def record(request: web.Request) -> web.StreamResponse:
            seen.append(request.headers.get("Authorization"))
            return web.Response(status=500 if len(seen) == 1 else 200)

        tokens = iter(["Bearer one", "Bearer two"])

        async def auth(headers: dict[str, str]) -> None:
            headers["Authorization"] = next(tokens)

        _, http = await serve({("GET", "/x"): record}, auth=auth)
        await http.request("GET", "/x")
        assert seen == ["Bearer one", "Bearer two"]

    async def test_raise_for_status_false_returns_the_error_response(self, serve: Serve) -> None:
        """raise_for_status=False hands back the 404 response for the connector to inspect."""
        _, http = await serve({("GET", "/x"): answers(404)})
        response = await http.request("GET", "/x", raise_for_status=False)
        assert (response.status, response.text) == (404, "status 404")

    async def test_urls_join_the_base_and_pass_absolute_ones(self, serve: Serve) -> None:
        """Paths are joined to base_url; an absolute URL (a next link) is used as is."""
        server, http = await serve({("GET", "/api/users"): answers()})
        assert http.url("api/users") == http.url("/api/users") == f"{server.url}/api/users"
        assert http.url("https://elsewhere.example/x") == "https://elsewhere.example/x"

    async def test_aclose_closes_the_session(self, serve: Serve) -> None:
        """aclose() closes the aiohttp session; a later request opens a fresh one."""
        _, http = await serve({("GET", "/x"): answers()})
        await http.request("GET", "/x")
        session = http.session
        await http.aclose()
        assert session.closed
        assert (await http.request("GET", "/x")).status == 200


class TestSecretScrubbing:
    SECRET = "s3cr3t/t0ken+with=chars&more"

    @pytest.fixture
    def forms(self) -> list[str]:
        from urllib.parse import quote, quote_plus

        return [self.SECRET, quote(self.SECRET, safe=""), quote_plus(self.SECRET)]

    async def test_secret_never_reaches_messages_or_logs(
        self, serve: Serve, forms: list[str], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A secret in the query, the path and the vendor's echoed body is scrubbed from errors and logs."""
        caplog.set_level(logging.DEBUG, logger="lmsconnect")

        async def echo(request: web.Request) -> web.StreamResponse:
            return web.Response(status=int(request.query.get("status", "500")), text=f"bad: {request.url}")

        server, http = await serve(
            {("GET", "/{tail:.*}"): echo, ("POST", "/{tail:.*}"): echo}, secrets=[self.SECRET]
        )
        from urllib.parse import quote

        errors: list[LMSConnectError] = []
        for method, path, params in [
            ("GET", f"/webservice?wstoken={quote(self.SECRET, safe='')}&status=404", None),
            ("GET", "/webservice", {"wstoken": self.SECRET, "status": "403"}),
            ("GET", f"/api/{quote(self.SECRET, safe='')}/users", None),
            ("POST", "/webservice", {"wstoken": self.SECRET, "status": "500"}),
        ]:
            with pytest.raises(LMSConnectError) as caught:
                await http.request(method, path, params=params)
            errors.append(caught.value)
        await server.close()  # now the connection is refused, with the secret in the URL
        with pytest.raises(RemoteError) as refused:
            await http.request("GET", f"/x?wstoken={quote(self.SECRET, safe='')}")
        errors.append(refused.value)
        texts = [t for e in errors for t in (str(e), repr(e), *map(str, e.args), str(e.context()))]
        texts += [r.getMessage() for r in caplog.records]
        assert caplog.records, "the transport logs at DEBUG"
        # The secret's distinctive start must be gone, whatever encoding the rest of it got.
        assert not [t for t in texts if "s3cr3t" in t]
        assert any("bad: " in t for t in texts), "the vendor's echoed body is kept, scrubbed"
        for text in texts:
            for form in forms:
                assert form not in text

    async def test_unparseable_body_echoing_a_secret(self, serve: Serve, forms: list[str]) -> None:
        """A 200 that is not JSON and echoes the token is quoted in the error with the token scrubbed."""
        from lmsconnect import InvalidRemoteResponse

        async def html(request: web.Request) -> web.StreamResponse:
            return web.Response(text=f"<p>{request.query['wstoken']}</p> sent as {request.raw_path}")

        _, http = await serve({("GET", "/webservice"): html}, secrets=[self.SECRET])
        with pytest.raises(InvalidRemoteResponse) as caught:
            await http.get_json("/webservice", params={"wstoken": self.SECRET})
        assert "<p>***</p> sent as /webservice?wstoken=***" in str(caught.value)
        assert "s3cr3t" not in str(caught.value)
        for form in forms:
            assert form not in str(caught.value)

    async def test_added_secret_is_scrubbed_too(self, serve: Serve) -> None:
        """A token learnt at runtime (add_secret) is scrubbed from later error messages."""

        async def echo(request: web.Request) -> web.StreamResponse:
            return web.Response(status=404, text=f"no user for token {request.headers['X-Token']}")

        _, http = await serve({("GET", "/me"): echo})
        http.add_secret("runtime-token-123")
        with pytest.raises(LMSConnectError) as caught:
            await http.request("GET", "/me", headers={"X-Token": "runtime-token-123"})
        assert "runtime-token-123" not in str(caught.value)
        assert "***" in str(caught.value)


class TestPagination:
    ITEMS: ClassVar[list[int]] = list(range(23))

    @pytest.fixture
    async def pages(self, serve: Serve) -> tuple[Loopback, HttpClient]:
        async def page(request: web.Request) -> web.StreamResponse:
            number, size = int(request.query["page"]), int(request.query["size"])
            return web.json_response(self.ITEMS[(number - 1) * size : number * size])

        async def offset(request: web.Request) -> web.StreamResponse:
            start, limit = int(request.query["offset"]), int(request.query["limit"])
            return web.json_response(self.ITEMS[start : start + limit])

        async def cursor(request: web.Request) -> web.StreamResponse:
            at = int(request.query.get("cursor", "0"))
            headers = CIMultiDict[str]()
            if at + 10 < len(self.ITEMS):
                # Vendors mix absolute and relative targets; alternate to cover both.
                target = f"/cursor?cursor={at + 10}"
                if at == 0:
                    target = f"{request.url.origin()}{target}"
                headers.add("Link", f'<{request.url.origin()}/cursor?cursor=0>; rel="first"')
                headers.add("Link", f'<{target}>; rel="next"')
            return web.json_response(self.ITEMS[at : at + 10], headers=headers)

        return await serve(
            {("GET", "/page"): page, ("GET", "/offset"): offset, ("GET", "/cursor"): cursor}
        )

    @pytest.mark.parametrize(("size", "calls"), [(10, 3), (23, 2), (50, 1)], ids=lambda v: str(v))
    async def test_page_numbers(self, pages: tuple[Loopback, HttpClient], size: int, calls: int) -> None:
        """paginate_pages yields every item in order and stops after the first short page."""
        server, http = pages

        async def fetch(number: int) -> list[int]:
            return list(await http.get_json("/page", params={"page": number, "size": size}))

        assert [i async for i in paginate_pages(fetch, page_size=size)] == self.ITEMS
        assert server.count() == calls

    async def test_offsets(self, pages: tuple[Loopback, HttpClient]) -> None:
        """paginate_offset advances by the items received and stops after a short page."""
        server, http = pages

        async def fetch(start: int, limit: int) -> list[int]:
            return list(await http.get_json("/offset", params={"offset": start, "limit": limit}))

        assert [i async for i in paginate_offset(fetch, limit=10)] == self.ITEMS
        assert server.count() == 3

    async def test_link_header_cursor(self, pages: tuple[Loopback, HttpClient]) -> None:
        """paginate_link follows Link rel="next" (absolute or relative) until there is none."""
        server, http = pages
        items = [i async for response in paginate_link(http, "/cursor") for i in response.json()]
        assert items == self.ITEMS
        assert server.count() == 3

    @pytest.mark.parametrize(
        "link", ["/api/v2/items?cursor={n}", "items?cursor={n}", "{origin}/api/v2/items?cursor={n}"],
        ids=["root-relative", "relative", "absolute"],
    )
    async def test_link_targets_resolve_against_a_base_with_a_path(self, serve: Serve, link: str) -> None:
        """With base_url https://host/api/v2, a next link "/api/v2/items?..." is not doubled up."""

        async def items(request: web.Request) -> web.StreamResponse:
            n = int(request.query.get("cursor", "0"))
            target = link.format(n=n + 1, origin=request.url.origin())
            return web.json_response([n], headers={"Link": f'<{target}>; rel="next"'} if n < 2 else {})

        server, http = await serve({("GET", "/api/v2/items"): items}, prefix="/api/v2")
        assert [i async for r in paginate_link(http, "/items") for i in r.json()] == [0, 1, 2]
        assert server.count("/api/v2/items") == 3

    async def test_pages_stream_lazily(self, pages: tuple[Loopback, HttpClient]) -> None:
        """Stopping after the first page makes no further request."""
        server, http = pages
        async for response in paginate_link(http, "/cursor"):
            assert response.json()[0] == 0
            break
        assert server.count() == 1

    @pytest.mark.parametrize(
        ("links", "expected"),
        [
            (['<https://x.example/u?c=2>; rel="next"'], "https://x.example/u?c=2"),
            (['<https://x.example/u?c=1>; rel="prev", <https://x.example/u?c=3>; rel="next"'],
             "https://x.example/u?c=3"),
            (["</u?c=2>; rel=next"], "/u?c=2"),
            (['<https://x.example/u?c=2>; title="more"; rel="next"'], "https://x.example/u?c=2"),
            (['<https://x.example/u?c=1>; rel="first"', '<https://x.example/u?c=4>; rel="next"'],
             "https://x.example/u?c=4"),
            (['<https://x.example/u?c=1>; rel="prev"'], None),
            ([], None),
        ],
        ids=["next-only", "prev-and-next", "unquoted-relative", "extra-params", "repeated-header",
             "no-next", "no-link"],
    )
    def test_next_link(self, links: list[str], expected: str | None) -> None:
        """next_link finds rel="next" in one or several Link headers."""
        headers = CIMultiDict[str]()
        for link in links:
            headers.add("Link", link)
        assert next_link(headers) == expected


class TestStreamMap:
    async def test_results_keep_input_order(self) -> None:
        """Results come back in input order even when later items finish first."""

        async def slow_first(n: int) -> int:
            await asyncio.sleep(0.02 * (5 - n))
            return n * 10

        assert [r async for r in stream_map(range(5), slow_first, concurrency=5)] == [0, 10, 20, 30, 40]

    async def test_concurrency_is_bounded(self) -> None:
        """No more than `concurrency` calls are in flight, and that many are used."""
        in_flight, peak = 0, 0

        async def work(n: int) -> int:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            return n

        async def source() -> AsyncIterator[int]:
            for n in range(30):
                yield n

        assert [r async for r in stream_map(source(), work, concurrency=4)] == list(range(30))
        assert peak == 4

    async def test_stopping_early_cancels_the_calls_in_flight(self) -> None:
        """Breaking out of the stream cancels the calls still running."""
        cancelled: list[int] = []

        async def work(n: int) -> int:
            try:
                await asyncio.sleep(0 if n == 0 else 10)
            except asyncio.CancelledError:
                cancelled.append(n)
                raise
            return n

        stream = stream_map(range(10), work, concurrency=3)
        async for first in stream:
            assert first == 0
            break
        await stream.aclose()  # type: ignore[attr-defined]
        assert sorted(cancelled) == [1, 2]

    async def test_a_failing_call_stops_the_stream_and_cancels_the_rest(self) -> None:
        """An exception from one call reaches the caller; the calls still running are cancelled."""
        cancelled: list[int] = []

        async def work(n: int) -> int:
            if n == 1:
                raise RuntimeError("item 1 failed")
            try:
                await asyncio.sleep(0 if n == 0 else 10)
            except asyncio.CancelledError:
                cancelled.append(n)
                raise
            return n

        seen = []
        with pytest.raises(RuntimeError, match="item 1 failed"):
            async for result in stream_map(range(10), work, concurrency=3):
                seen.append(result)
        assert seen == [0]
        # Item 2 was running and is cancelled; item 3 may be cancelled before it even started.
        assert cancelled[:1] == [2] and set(cancelled) <= {2, 3}

    async def test_concurrency_must_be_positive(self) -> None:
        """concurrency < 1 is refused."""

        async def work(n: int) -> int:
            return n

        with pytest.raises(ValueError, match="concurrency"):
            await stream_map([1], work, concurrency=0).__anext__()



class TestResponseBodies:
    @pytest.mark.parametrize(
        "body",
        [
            b'{"users": [1, 2',
            b"{'single': 'quotes'}",
            b'\xff\xfe{"a": 1}',
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            b"[" * 100_000 + b"]" * 100_000,
            b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
            b"[NaN, Infinity]",
            b"",
            b"1" * 10_000,
        ],
        ids=["truncated", "invalid", "not-utf8", "html", "deep-lists", "deep-objects", "nan", "empty",
             "huge-number"],
    )
    async def test_anything_but_json_is_invalid_remote_response(self, serve: Serve, body: bytes) -> None:
        """Response.json raises InvalidRemoteResponse naming the endpoint, never RecursionError etc."""
        _, http = await serve({("GET", "/users"): _serving(body)})
        with pytest.raises(InvalidRemoteResponse) as caught:
            await http.get_json("/users", params={"token": "abc"})
        assert "GET http://127.0.0.1:" in str(caught.value)
        assert "/users" in str(caught.value) and "token" not in str(caught.value)
        assert caught.value.connector == "probe"
        assert caught.value.__context__ is None

    async def test_lone_surrogates_become_replacement_characters(self, serve: Serve) -> None:
        """A lone UTF-16 surrogate escape in a vendor string (key or value) reads as U+FFFD, so it can be
        stored and encoded; a valid surrogate pair stays the character it encodes."""
        body = rb'{"name\ud800": ["x\udc00y", {"k": "\ud83d\ude00", "n": 1}]}'
        _, http = await serve({("GET", "/users"): _serving(body)})
        got = await http.get_json("/users")
        assert got == {"name\ufffd": ["x\ufffdy", {"k": "\U0001f600", "n": 1}]}
        assert json.dumps(got, ensure_ascii=False).encode("utf-8")

    @pytest.mark.parametrize(("depth", "accepted"), [(64, True), (65, False)], ids=["at-limit", "over"])
    async def test_default_depth_limit(self, serve: Serve, depth: int, accepted: bool) -> None:
        """JSON nested 64 levels is read; 65 levels is refused by default (HttpOptions.max_json_depth)."""
        body = b'{"a": "[[[[[[", "b": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
        _, http = await serve({("GET", "/x"): _serving(body)})
        if accepted:
            assert (await http.get_json("/x"))["a"] == "[[[[[["  # brackets inside strings do not count
        else:
            with pytest.raises(InvalidRemoteResponse, match="max_json_depth"):
                await http.get_json("/x")

    async def test_depth_limit_is_a_setting(self, serve: Serve) -> None:
        """HttpOptions(max_json_depth=3) refuses a body four levels deep."""
        _, http = await serve({("GET", "/x"): _serving(b'[[[["deep"]]]]')},
                              options=HttpOptions(max_json_depth=3))
        with pytest.raises(InvalidRemoteResponse, match="deeper than 3 levels"):
            await http.get_json("/x")

    async def test_announced_length_over_the_cap_is_refused_before_reading(self, serve: Serve) -> None:
        """A Content-Length above max_response_bytes fails at once, without waiting for the body."""

        async def huge(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Length": str(50 * 1024 * 1024)})
            await response.prepare(request)
            await response.write(b"[" + b"0," * 1000)
            await asyncio.sleep(30)  # the rest never comes: a client that waits for it hangs
            return response

        _, http = await serve({("GET", "/big"): huge}, options=HttpOptions(max_response_bytes=1024 * 1024))
        with pytest.raises(InvalidRemoteResponse, match="max_response_bytes") as caught:
            await asyncio.wait_for(http.get_json("/big"), timeout=10)
        assert "52,428,800 bytes (Content-Length)" in str(caught.value)

    async def test_growing_body_is_abandoned_at_the_cap(self, serve: Serve) -> None:
        """A chunked body is read only up to max_response_bytes: past it the read stops, the rest unread."""
        sent = [0]

        async def endless(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            chunk = b"[" + b"0," * 32_000
            with contextlib.suppress(ConnectionError, RuntimeError):
                while sent[0] < 200 * 1024 * 1024:
                    await response.write(chunk)
                    sent[0] += len(chunk)
            return response

        _, http = await serve({("GET", "/big"): endless}, options=HttpOptions(max_response_bytes=1024 * 1024))
        with pytest.raises(InvalidRemoteResponse, match="more than the 1,048,576 bytes"):
            await asyncio.wait_for(http.get_json("/big"), timeout=10)
        assert sent[0] < 50 * 1024 * 1024

    @pytest.mark.parametrize("announced", [False, True], ids=["chunked", "content-length"])
    async def test_concurrent_bodies_share_one_connection_wide_budget(
        self, serve: Serve, announced: bool
    ) -> None:
        """Two 3 MiB answers read at once under a 4 MiB max_buffered_bytes: one is refused, the other
        is read whole, and the budget is free again afterwards (no deadlock, nothing leaked)."""
        size = 3 * 1024 * 1024
        body = b"[" + b"0," * (size // 2 - 1) + b"0]"
        arrived = [0]
        both = asyncio.Event()

        async def slow(request: web.Request) -> web.StreamResponse:
            arrived[0] += 1
            if arrived[0] >= 2:
                both.set()
            headers = {"Content-Length": str(len(body))} if announced else {}
            response = web.StreamResponse(headers={"Content-Type": "application/json", **headers})
            if not announced:
                response.enable_chunked_encoding()
            await response.prepare(request)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(both.wait(), timeout=2)  # the later reads are alone
            with contextlib.suppress(ConnectionError, RuntimeError):
                for start in range(0, len(body), 64 * 1024):
                    await response.write(body[start : start + 64 * 1024])
                    await asyncio.sleep(0.001)
            return response

        options = attrs.evolve(FAST, max_attempts=1, max_buffered_bytes=4 * 1024 * 1024)
        _, http = await serve({("GET", "/big"): slow}, options=options)
        results = await asyncio.wait_for(
            asyncio.gather(http.get_json("/big"), http.get_json("/big"), return_exceptions=True),
            timeout=20,
        )
        refused = [r for r in results if isinstance(r, BaseException)]
        assert len(refused) == 1 and isinstance(refused[0], InvalidRemoteResponse)
        assert "max_buffered_bytes" in str(refused[0])
        assert [len(r) for r in results if isinstance(r, list)] == [size // 2]
        again = await asyncio.wait_for(http.get_json("/big"), timeout=20)
        assert len(again) == size // 2

    @pytest.mark.parametrize("slice_size", [1, 2, 7, 1024 * 1024], ids=lambda n: f"slice-{n}")
    def test_depth_scan_agrees_with_the_parsed_depth(
        self, monkeypatch: pytest.MonkeyPatch, slice_size: int
    ) -> None:
        """The linear depth scan matches the real nesting of random JSON full of quotes, brackets and
        backslashes in strings, however the body is sliced."""
        monkeypatch.setattr(_http, "_SCAN_SLICE", slice_size)
        rng = random.Random(slice_size)
        tricky = ['[[[', '"]}', "\\", '\\"', "a\\]", "{[", ""]

        def value(depth: int) -> Any:
            roll = rng.random()
            if depth > 9 or roll < 0.3:
                return rng.choice([*tricky, 1, None])
            if roll < 0.65:
                return [value(depth + 1) for _ in range(rng.randint(0, 3))]
            return {rng.choice(tricky) + str(i): value(depth + 1) for i in range(rng.randint(0, 3))}

        def nesting(root: Any) -> int:
            deepest, todo = 0, [(root, 0)]
            while todo:
                node, level = todo.pop()
                if isinstance(node, (list, dict)):
                    deepest = max(deepest, level + 1)
                    children = node.values() if isinstance(node, dict) else node
                    todo += [(child, level + 1) for child in children]
            return deepest

        for _ in range(300):
            document = value(0)
            body, depth = json.dumps(document).encode(), nesting(document)
            assert not _http.json_depth_exceeds(body, depth)
            assert depth == 0 or _http.json_depth_exceeds(body, depth - 1)

    async def test_secret_across_the_cut_is_not_half_shown(self, serve: Serve) -> None:
        """A token echoed where the vendor message is cut to 300 characters leaves no prefix of itself."""
        token = "tok-" + "s3cr3t" * 10

        async def echo(request: web.Request) -> web.StreamResponse:
            return web.Response(status=500, text="x" * 280 + token + " trailing text")

        options = attrs.evolve(FAST, max_attempts=1)
        _, http = await serve({("GET", "/x"): echo}, secrets=[token], options=options)
        with pytest.raises(RemoteError) as caught:
            await http.request("GET", "/x")
        assert "tok-s3cr" not in str(caught.value)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("max_response_bytes", 0), ("max_buffered_bytes", 0), ("max_json_depth", 0),
            ("max_json_depth", 10_000), ("max_wait_s", -1),
        ],
        ids=str,
    )
    def test_settings_are_validated(self, field: str, value: int) -> None:
        """A zero size cap, a depth outside 1..512 or a negative wait is refused by HttpOptions."""
        with pytest.raises(ValueError):
            HttpOptions(**{field: value})


def _serving(body: bytes) -> Handler:
    """A handler answering `body` (as application/json) to every request."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="application/json")

    return handler


class TestCredentialsStayOnTheOrigin:
    """Against a second server on another port (`elsewhere`) that must receive nothing."""

    @pytest.fixture
    def elsewhere(self, recorder: Any) -> Any:
        return recorder

    @staticmethod
    async def _client(serve: Serve, routes: dict[tuple[str, str], Handler]) -> tuple[Loopback, HttpClient]:
        async def auth(headers: dict[str, str]) -> None:
            headers["Authorization"] = "Bearer origin-only-token"

        return await serve(routes, auth=auth, secrets=["origin-only-token"])

    @pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
    async def test_redirect_to_another_origin_is_not_followed(
        self, serve: Serve, elsewhere: Any, status: int
    ) -> None:
        """A redirect to another port is InvalidRemoteResponse and the other server receives nothing."""
        _, http = await self._client(serve, {("POST", "/token"): _redirecting(status, elsewhere.url)})
        with pytest.raises(InvalidRemoteResponse, match="not on the connection's origin"):
            await http.request("POST", "/token", data={"wstoken": "origin-only-token"})
        assert elsewhere.paths == []

    async def test_redirect_within_the_origin_is_followed(self, serve: Serve) -> None:
        """A 307 to another path of the same origin is followed with its method and body."""
        bodies: list[str] = []

        async def target(request: web.Request) -> web.StreamResponse:
            bodies.append(await request.text())
            return web.json_response({"ok": True})

        _, http = await self._client(
            serve, {("POST", "/old"): _redirecting(307, "/new"), ("POST", "/new"): target}
        )
        assert (await http.request("POST", "/old", data={"a": "1"})).json() == {"ok": True}
        assert bodies == ["a=1"]

    async def test_endless_redirects_stop(self, serve: Serve) -> None:
        """A redirect loop within the origin stops after a bounded number of hops."""
        server, http = await self._client(serve, {("GET", "/loop"): _redirecting(302, "/loop")})
        with pytest.raises(InvalidRemoteResponse, match="redirected more than"):
            await http.request("GET", "/loop")
        assert server.count("/loop") == 11

    @pytest.mark.parametrize(
        "link",
        ["{other}/page2", "//127.0.0.1:{other_port}/page2", "http://127.0.0.1:{port}@127.0.0.1:{other_port}/p",
         "https://127.0.0.1:{port}/page2"],
        ids=["other-port", "scheme-relative", "userinfo-trick", "other-scheme"],
    )
    async def test_next_link_to_another_origin_is_refused(
        self, serve: Serve, elsewhere: Any, link: str
    ) -> None:
        """paginate_link refuses a next link off the origin before sending, with the credentials, anything."""
        other_port = elsewhere.url.rsplit(":", 1)[1]

        async def first(request: web.Request) -> web.StreamResponse:
            target = link.format(other=elsewhere.url, other_port=other_port, port=request.url.port)
            return web.json_response([1], headers={"Link": f'<{target}>; rel="next"'})

        _, http = await self._client(serve, {("GET", "/page1"): first})
        pages = []
        with pytest.raises(InvalidRemoteResponse, match="not on the connection's origin"):
            async for response in paginate_link(http, "/page1"):
                pages.append(response.json())
        assert pages == [[1]]
        assert elsewhere.paths == []

    async def test_absolute_url_of_another_origin_is_refused(self, serve: Serve, elsewhere: Any) -> None:
        """HttpClient.request never sends to an absolute URL off the base URL's origin."""
        _, http = await self._client(serve, {})
        with pytest.raises(InvalidRemoteResponse):
            await http.request("GET", f"{elsewhere.url}/steal")
        assert elsewhere.paths == []
        assert http.stats.calls == 0


class TestSameOrigin:
    HTTP = HttpClient(slug="probe", base_url="https://Bücher.example/api/v2")

    @pytest.mark.parametrize(
        ("url", "same"),
        [
            ("/users", True),
            ("users?x=1", True),
            ("https://xn--bcher-kva.example:443/api/v2/users", True),
            ("https://BÜCHER.example/other", True),
            ("http://bücher.example/api/v2/users", False),
            ("https://bücher.example:8443/api/v2/users", False),
            ("https://bücher.example.evil.test/api", False),
            ("https://bücher.example@evil.test/api", False),
            ("https://evil.test/?https://bücher.example", False),
            ("https://bücher.example:99999/", False),
        ],
    )
    def test_scheme_host_and_port_must_match(self, url: str, same: bool) -> None:
        """Only the base URL's scheme, host (IDNA or not, any case) and port count as its origin."""
        assert self.HTTP.same_origin(url) is same


def _redirecting(status: int, location: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return handler


class TestPaginationThatDoesNotAdvance:
    async def test_same_page_for_every_number(self, serve: Serve) -> None:
        """paginate_pages stops with InvalidRemoteResponse when page 2 repeats page 1."""
        server, http = await serve({("GET", "/page"): _serving(b"[1, 2, 3]")})

        async def fetch(number: int) -> list[int]:
            return list(await http.get_json("/page", params={"page": number}))

        items = []
        with pytest.raises(InvalidRemoteResponse, match="page 2 is identical to page 1"):
            async for item in paginate_pages(fetch, page_size=3, where="GET /page", connector="probe"):
                items.append(item)
        assert items == [1, 2, 3]
        assert server.count() == 2

    async def test_same_page_for_every_offset(self, serve: Serve) -> None:
        """paginate_offset stops when the page at the next offset is the same page."""
        server, http = await serve({("GET", "/offset"): _serving(b"[7, 8]")})

        async def fetch(start: int, limit: int) -> list[int]:
            return list(await http.get_json("/offset", params={"offset": start, "limit": limit}))

        with pytest.raises(InvalidRemoteResponse, match="does not advance"):
            async for _ in paginate_offset(fetch, limit=2):
                pass
        assert server.count() == 2

    @pytest.mark.parametrize("loop", ["self", "cycle"])
    async def test_link_that_leads_back(self, serve: Serve, loop: str) -> None:
        """A next link followed before (to itself, or A -> B -> A) stops the read."""

        async def page(request: web.Request) -> web.StreamResponse:
            n = int(request.query.get("n", "0"))
            after = n if loop == "self" else (n + 1) % 2
            return web.json_response([n], headers={"Link": f'</p?n={after}>; rel="next"'})

        server, http = await serve({("GET", "/p"): page})
        with pytest.raises(InvalidRemoteResponse, match="pagination"):
            async for _ in paginate_link(http, "/p", params={"n": 0}):
                pass
        assert server.count() <= 3

    async def test_identical_pages_under_new_links(self, serve: Serve) -> None:
        """New cursors that keep returning the same page stop at the second one."""

        async def page(request: web.Request) -> web.StreamResponse:
            n = int(request.query.get("n", "0"))
            return web.json_response([1, 2], headers={"Link": f'</p?n={n + 1}>; rel="next"'})

        server, http = await serve({("GET", "/p"): page})
        with pytest.raises(InvalidRemoteResponse, match="identical"):
            async for _ in paginate_link(http, "/p"):
                pass
        assert server.count() == 2

    def test_page_guard_keeps_digests_only(self) -> None:
        """PageGuard, for plugins with their own loops: a repeated cursor or page raises, a new one passes."""
        guard = PageGuard("GET /v1/users", connector="toy")
        guard.page(b"page one")
        guard.cursor("c1")
        guard.page(b"page two")
        guard.cursor("c2")
        with pytest.raises(InvalidRemoteResponse, match=r"\[toy\] GET /v1/users"):
            guard.cursor("c1")
        with pytest.raises(InvalidRemoteResponse):
            guard.page(b"page two")


class TestBudgetWaits:
    async def test_wait_longer_than_max_wait_raises_rate_limited(self, serve: Serve) -> None:
        """With max_wait_s=1, a call the budget admits only in ~30 s raises RateLimited at once."""
        server, http = await serve(
            {("GET", "/x"): answers()},
            read_budget=RateBudget(RateWindow(1, 30.0)),
            options=attrs.evolve(FAST, max_wait_s=1.0),
        )
        await http.request("GET", "/x")
        started = time.monotonic()
        with pytest.raises(RateLimited) as caught:
            await http.request("GET", "/x")
        assert time.monotonic() - started < 1.0
        assert caught.value.retry_after is not None and 28 < caught.value.retry_after <= 30
        assert "max_wait_s" in str(caught.value)
        assert server.count() == 1

    async def test_vendor_says_window_spent_for_an_hour(self, serve: Serve) -> None:
        """Remaining: 0 with a reset an hour away: the next call raises RateLimited, not a silent hour."""
        spent = lambda: web.json_response(  # noqa: E731
            {}, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3600"}
        )
        server, http = await serve({("GET", "/x"): answers(spent)})
        await http.request("GET", "/x")
        with pytest.raises(RateLimited) as caught:
            await asyncio.wait_for(http.request("GET", "/x"), timeout=5)
        assert caught.value.retry_after is not None and caught.value.retry_after > 3500
        assert server.count() == 1

    async def test_long_wait_is_logged_once_and_reported(
        self, serve: Serve, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A wait over report_wait_s is logged once with its end time and handed to the wait listeners."""
        server, http = await serve(
            {("GET", "/x"): answers()},
            read_budget=RateBudget(RateWindow(2, 0.6)),
            options=attrs.evolve(FAST, report_wait_s=0.3),
        )
        waits: list[BudgetWait] = []
        remove = http.add_wait_listener(waits.append)
        with caplog.at_level(logging.WARNING, logger="lmsconnect.http"):
            await asyncio.gather(*(http.request("GET", "/x") for _ in range(4)))
        remove()
        await asyncio.gather(*(http.request("GET", "/x") for _ in range(2)))
        assert server.count() == 6
        assert len(waits) == 1  # the third call waited (the fourth fit with it); none after remove()
        assert all(w.budget == "2/0.6s" and 0.3 <= w.seconds <= 0.6 for w in waits)
        assert all(w.until.tzinfo is not None for w in waits)
        logged = [r.getMessage() for r in caplog.records if "waiting" in r.getMessage()]
        assert len(logged) >= 1 and "until" in logged[0] and "2/0.6s" in logged[0]
