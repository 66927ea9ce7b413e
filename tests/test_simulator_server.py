"""`lmsconnect.testing.SimulatorServer`: the shared aiohttp lifecycle of plugin simulators."""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp
import pytest
from aiohttp import web

from lmsconnect.testing import SimulatorServer


class EchoSimulator(SimulatorServer):
    """A minimal simulator: its own state and counter, one route."""

    def __init__(self, *, greeting: str = "hello") -> None:
        self.greeting = greeting
        self.calls = 0
        self.apps_made = 0

    def make_app(self) -> web.Application:
        self.apps_made += 1
        app = web.Application()
        app.router.add_get("/hello", self._hello)
        return app

    async def _hello(self, request: web.Request) -> web.Response:
        self.calls += 1
        return web.json_response({"greeting": self.greeting})


class PrefixedSimulator(EchoSimulator):
    url_path = "/api"

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/hello", self._hello)
        return app


async def get_json(url: str) -> object:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        response.raise_for_status()
        return await response.json()


class TestSimulatorServer:
    def test_make_app_is_required(self) -> None:
        """A subclass without make_app cannot be instantiated."""

        class Incomplete(SimulatorServer):
            pass

        with pytest.raises(TypeError):
            Incomplete()  # type: ignore[abstract]

    def test_url_before_start_is_a_clear_error(self) -> None:
        """url before start raises RuntimeError naming the class and what to do."""
        with pytest.raises(RuntimeError, match=r"EchoSimulator is not started.*start\(\)"):
            _ = EchoSimulator().url

    async def test_start_serves_on_a_free_loopback_port(self) -> None:
        """start() with port 0 binds a free port; url says where; stop() ends serving."""
        sim = EchoSimulator(greeting="hi")
        await sim.start()
        try:
            assert sim.url.startswith("http://127.0.0.1:")
            port = int(sim.url.rsplit(":", 1)[1])
            assert port > 0
            assert await get_json(f"{sim.url}/hello") == {"greeting": "hi"}
            assert sim.calls == 1
        finally:
            await sim.stop()
        with pytest.raises(aiohttp.ClientConnectionError):
            await get_json(f"{sim.url}/hello")

    async def test_async_with_returns_the_subclass_instance(self) -> None:
        """async with starts and stops, yielding the simulator itself."""
        async with EchoSimulator() as sim:
            assert isinstance(sim, EchoSimulator)
            assert await get_json(f"{sim.url}/hello") == {"greeting": "hello"}
        assert sim.calls == 1

    async def test_url_path_is_appended(self) -> None:
        """url_path (e.g. TalentLMS's /api) is part of url."""
        async with PrefixedSimulator() as sim:
            assert sim.url.endswith("/api")
            assert await get_json(f"{sim.url}/hello") == {"greeting": "hello"}

    async def test_double_start_refused_stop_twice_safe_restart_works(self) -> None:
        """A second start is refused; stop is idempotent; a stopped simulator starts again with a new app."""
        sim = EchoSimulator()
        await sim.start()
        try:
            with pytest.raises(RuntimeError, match="already started"):
                await sim.start()
        finally:
            await sim.stop()
        await sim.stop()
        async with sim:
            assert await get_json(f"{sim.url}/hello") == {"greeting": "hello"}
        assert sim.apps_made == 2

    async def test_explicit_port(self) -> None:
        """An explicit port is used as given."""
        async with EchoSimulator() as first:
            port = int(first.url.rsplit(":", 1)[1])
        sim = EchoSimulator()
        await sim.start("127.0.0.1", port)
        try:
            assert sim.url == f"http://127.0.0.1:{port}"
        finally:
            await sim.stop()


class BigAnswerSimulator(EchoSimulator):
    """One route whose answer is far larger than a socket's buffers."""

    def make_app(self) -> web.Application:
        app = super().make_app()
        app.router.add_get("/big", self._big)
        return app

    async def _big(self, request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 32_000_000)


def socket_fds() -> int:
    return sum(1 for link in _fd_links() if link.startswith("socket:"))


def _fd_links() -> list[str]:
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return links


class TestStop:
    @pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc/self/fd")
    async def test_stop_closes_every_connection_at_once(self) -> None:
        """A client that stopped reading half-way, an idle keep-alive one and a silent one: stop() returns
        at once (aiohttp alone waits a minute per stalled connection) with all their sockets closed, and
        each client sees its connection end."""
        sim = BigAnswerSimulator()
        await sim.start()
        host, port = sim.url.removeprefix("http://").split(":")
        clients = [await asyncio.open_connection(host, int(port)) for _ in range(3)]
        (stalled_r, stalled_w), (idle_r, idle_w), _ = clients
        stalled_w.write(b"GET /big HTTP/1.1\r\nHost: sim\r\n\r\n")
        idle_w.write(b"GET /hello HTTP/1.1\r\nHost: sim\r\n\r\n")
        await stalled_r.readexactly(100)  # the answer has started; the rest is never read
        await idle_r.readuntil(b"}")
        open_before = socket_fds()
        started = time.monotonic()
        await asyncio.wait_for(sim.stop(), 30)
        assert time.monotonic() - started < 10
        assert socket_fds() == open_before - 4  # the listener and the three server-side connections
        try:
            for reader, _ in clients:
                with pytest.raises((asyncio.IncompleteReadError, ConnectionResetError)):
                    await asyncio.wait_for(reader.readexactly(64_000_000), 10)
        finally:
            for _, writer in clients:
                writer.close()
