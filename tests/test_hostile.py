"""The hostile proxy and the witness server of `lmsconnect.testing` (the weapons of tests/test_fuzz.py)."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from lmsconnect.testing import HostileProxy, SimulatorServer, WitnessServer

MUTATIONS = HostileProxy.MUTATIONS


class Upstream(SimulatorServer):
    """A tiny JSON API: a paged list of users and one record."""

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/users", self._users)
        app.router.add_get("/users/page_size:{size},page_number:{page}", self._users)
        app.router.add_get("/record", self._record)
        app.router.add_post("/ws", self._ws)
        return app

    async def _ws(self, request: web.Request) -> web.Response:
        form = await request.post()
        start = int(str(form.get("options[0][value]", "0")))
        return web.json_response([{"id": i} for i in range(start, start + 3)])

    async def _users(self, request: web.Request) -> web.Response:
        page = int(request.match_info.get("page", request.query.get("page", "1")))
        ids = range(page * 3 - 2, page * 3 + 1)
        users = [{"id": str(i), "name": f"user {i}", "tags": ["a", "b"]} for i in ids]
        return web.json_response(users, headers={"Link": f'<{self.url}/users?page={page + 1}>; rel="next"'})

    async def _record(self, request: web.Request) -> web.Response:
        return web.json_response({"id": 7, "name": "seven", "nested": {"a": [1, 2, 3]}})


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with Upstream() as server:
        yield server


@pytest_asyncio.fixture
async def witness() -> AsyncIterator[WitnessServer]:
    async with WitnessServer() as server:
        yield server


async def fetch_all(proxy: HostileProxy, paths: list[str]) -> list[tuple[int, bytes]]:
    out = []
    async with aiohttp.ClientSession() as session:
        for path in paths:
            try:
                async with session.get(proxy.url + path, allow_redirects=False) as response:
                    out.append((response.status, await response.read()))
            except aiohttp.ClientError as exc:
                out.append((-1, type(exc).__name__.encode()))
    return out


PATHS = [f"/users?page={i}" for i in range(1, 40)] + ["/record"] * 20


class TestHostileProxy:
    async def test_same_seed_same_mutations(self, upstream: Upstream, witness: WitnessServer) -> None:
        """Two runs with one seed mutate the same requests the same way; another seed differs."""
        runs = []
        for seed in (5, 5, 6):
            async with HostileProxy(upstream.url, seed=seed, witness=witness, giant_bytes=2**20) as proxy:
                await fetch_all(proxy, PATHS)
                runs.append([(m.index, m.path, m.mutation, m.detail) for m in proxy.applied])
        assert runs[0] == runs[1]
        assert runs[0] != runs[2]

    async def test_about_a_third_is_mutated_and_counted_by_name(self, upstream: Upstream) -> None:
        """With the default rate roughly a third of the answers is mutated; each is counted by name."""
        async with HostileProxy(upstream.url, seed=1, giant_bytes=2**20) as proxy:
            await fetch_all(proxy, PATHS * 3)
        mutated = sum(proxy.counts.values())
        assert 0.2 * proxy.requests < mutated < 0.5 * proxy.requests
        assert set(proxy.counts) <= set(MUTATIONS)
        assert len(proxy.applied) == mutated

    @pytest.mark.parametrize("name", sorted(set(MUTATIONS) - {"giant_body"}))
    async def test_each_mutation_changes_the_answer(
        self, name: str, upstream: Upstream, witness: WitnessServer
    ) -> None:
        """Restricted to one mutation at rate 1, every answer differs from the upstream's."""
        paths = ["/users?page=2", "/record"]
        async with HostileProxy(upstream.url, seed=3, rate=0.0) as clean:
            expected = await fetch_all(clean, paths)
        async with HostileProxy(upstream.url, seed=3, rate=1.0, mutations=[name], witness=witness) as proxy:
            got = await fetch_all(proxy, paths)
        assert proxy.counts[name] >= 1
        mutated = [i for i, (old, new) in enumerate(zip(expected, got, strict=True)) if old != new]
        if name in ("wrong_content_type", "foreign_link", "repeat_page"):
            return  # the body is the same; the headers carry the mutation (checked below)
        assert mutated, f"{name} left every answer as it was"

    async def test_deep_nesting_is_deep(self, upstream: Upstream) -> None:
        """The deep-nesting mutation nests 100,000 levels, which a naive JSON parser cannot take."""
        async with HostileProxy(upstream.url, rate=1.0, mutations=["deep_nesting"]) as proxy:
            [(status, body)] = await fetch_all(proxy, ["/record"])
        assert status == 200 and body.count(b"[") >= 100_000
        with pytest.raises(RecursionError):
            json.loads(body)

    async def test_repeated_page_never_advances(self, upstream: Upstream) -> None:
        """After a repeat_page, every later page of that listing is the same page, with a self link."""
        async with HostileProxy(upstream.url, rate=1.0, mutations=["repeat_page"]) as proxy:
            async with aiohttp.ClientSession() as session:
                bodies, links = [], []
                for page in (1, 2, 3):
                    async with session.get(f"{proxy.url}/users/page_size:3,page_number:{page}") as response:
                        bodies.append(await response.read())
                        links.append(response.headers["Link"])
            proxy.unstick()
        assert bodies[0] == bodies[1] == bodies[2]
        assert links[0] == links[2] and "page_number:1" in links[0]

    async def test_repeated_page_of_a_form_post(self, upstream: Upstream) -> None:
        """A POST listing paged by a PHP-style option (Moodle's limitfrom) is stuck on one page too."""
        proxy = HostileProxy(upstream.url, rate=1.0, mutations=["repeat_page"])
        bodies = []
        async with proxy, aiohttp.ClientSession() as session:
            for start in (0, 3, 6):
                form = {"wsfunction": "f", "options[0][name]": "limitfrom", "options[0][value]": str(start)}
                async with session.post(f"{proxy.url}/ws", data=form) as response:
                    bodies.append(await response.json())
        assert bodies[0] == bodies[1] == bodies[2] == [{"id": 0}, {"id": 1}, {"id": 2}]

    async def test_links_and_redirects_point_at_the_witness(
        self, upstream: Upstream, witness: WitnessServer
    ) -> None:
        """Foreign links and redirects target the witness's port, and the witness records what came."""
        async with HostileProxy(
            upstream.url, rate=1.0, mutations=["foreign_link", "redirect_to_witness"], witness=witness
        ) as proxy, aiohttp.ClientSession() as session:
            for path in PATHS[:10]:
                async with session.get(proxy.url + path, allow_redirects=False) as response:
                    target = response.headers.get("Location") or response.headers["Link"]
                    assert witness.url in target
        redirecting = HostileProxy(upstream.url, rate=1.0, mutations=["redirect_to_witness"], witness=witness)
        async with redirecting, aiohttp.ClientSession() as session, session.get(
            redirecting.url + "/record?x=1"
        ) as response:
            assert await response.json() == []
        assert witness.seen[-1].path == "/record?x=1"

    async def test_giant_body_is_streamed_not_held(self, upstream: Upstream) -> None:
        """A 200 MB giant body reaches the client in chunks while this process's memory stays flat."""
        if not sys.platform.startswith("linux"):
            pytest.skip("reads the current RSS from /proc")

        def rss() -> int:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096

        size = 200 * 2**20
        giant = HostileProxy(upstream.url, rate=1.0, mutations=["giant_body"], giant_bytes=size)
        async with giant, aiohttp.ClientSession() as session, session.get(giant.url + "/record") as response:
            start, peak, got = rss(), 0, 0
            async for chunk in response.content.iter_chunked(2**20):
                got += len(chunk)
                peak = max(peak, rss() - start)
        assert got == size
        assert peak < 64 * 2**20, f"memory grew by {peak / 2**20:.0f} MB while {size / 2**20:.0f} MB streamed"

    def test_only_loopback(self) -> None:
        """The proxy refuses an upstream that is not on 127.0.0.1."""
        with pytest.raises(ValueError, match="loopback"):
            HostileProxy("https://example.com/api")


class TestWitness:
    @pytest.mark.parametrize(
        ("headers", "body", "leaked"),
        [
            ({"Authorization": "Bearer abc"}, b"", True),
            ({"Authorization": "Basic " + base64.b64encode(b"the-api-key:").decode()}, b"", True),
            ({}, b"wstoken=the-api-key&x=1", True),
            ({}, b"access_token=issued-elsewhere", True),
            ({"Accept": "application/json"}, b"x=1", False),
        ],
        ids=["bearer", "basic", "token-in-body", "token-parameter", "nothing"],
    )
    async def test_credentials_are_recognised(
        self, witness: WitnessServer, headers: dict[str, str], body: bytes, leaked: bool
    ) -> None:
        """A credential header or a known secret anywhere in a request counts as a leak; nothing else."""
        async with aiohttp.ClientSession() as session, session.post(
            witness.url + "/x", headers=headers, data=body
        ) as response:
            assert response.status == 200
        assert bool(witness.leaks(secrets=["the-api-key"])) is leaked

    async def test_answers_an_empty_list(self, witness: WitnessServer) -> None:
        """The witness answers every request with `[]` and records it."""
        async with aiohttp.ClientSession() as session, session.get(witness.url + "/a?b=c") as response:
            body: Any = await response.json()
        assert body == [] and witness.seen[0].path == "/a?b=c"
